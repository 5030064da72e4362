"""The command line (typer): the only module that prints.

Exit codes: 0 ok; 1 the model fails at this input or ``verify`` found a disagreement; 2 bad input,
as one line on stderr. Everything heavy (rich, the tracer, torch) is imported inside the commands,
so ``unetviz --help`` and a JSON trace start fast.
"""

from __future__ import annotations

import copy
import gc
import sys

import click
import typer

from ..core.errors import UnetvizError
from . import files, models  # noqa: F401  (registers the commands on the app)
from .common import app, width

__all__ = ["app", "main", "width"]


def _command(args: list[str]) -> click.Command:
    """The click group, with only the subcommand that ``args`` name when they name one: typer makes each
    command's options from its signature, a cost every run would pay for commands it does not run. Help,
    shell completion and anything else get every command."""
    import os

    chosen = [c for c in app.registered_commands if args and _name(c) == args[0]]
    if not chosen or "_UNETVIZ_COMPLETE" in os.environ:
        return typer.main.get_command(app)
    one = copy.copy(app)  # the same group (callback, --version, settings) with the one command
    one.registered_commands = chosen
    return typer.main.get_command(one)


def _name(command: typer.models.CommandInfo) -> str:
    """A registered command's name, as typer derives it."""
    if command.name:
        return command.name
    return typer.main.get_command_name(command.callback.__name__) if command.callback else ""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: bad input -> ``error: ...`` on stderr and exit 2, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    # one command per process, whose records (tens of thousands for SDXL) live until it exits: the cyclic
    # collector's passes over them would free nothing, and took ~10% of a JSON trace's run
    saved = gc.get_threshold()
    gc.set_threshold(50_000)
    try:
        code = _run(args)
    finally:
        gc.set_threshold(*saved)
    sys.exit(code)


def _run(args: list[str]) -> int:
    """The command's exit code."""
    debug = "--debug" in args
    command = _command(args)
    try:
        code = command.main(args=args, prog_name="unetviz", standalone_mode=False)
    except UnetvizError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except click.exceptions.NoArgsIsHelpError:  # click has printed the usage: a bare `unetviz` is no error
        code = 0
    except click.UsageError as e:
        hint = f" (see `unetviz {e.ctx.info_name} --help`)" if e.ctx and e.ctx.info_name != "unetviz" else ""
        print(f"error: {e.format_message()}{hint}", file=sys.stderr)
        code = 2
    except click.exceptions.Exit as e:
        code = e.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        code = 130
    except BrokenPipeError:  # `unetviz table ... | head`
        code = 0
    return code if isinstance(code, int) else 0
