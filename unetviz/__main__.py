"""The process entry (``unetviz``, ``python -m unetviz``): ``--version`` answers before the CLI's imports
(typer, click, rich) are paid for; everything else goes to ``unetviz.cli``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:
        from . import __version__

        print(f"unetviz {__version__}")
        sys.exit(0)
    from .cli import main as cli_main

    cli_main(args)


if __name__ == "__main__":
    main()
