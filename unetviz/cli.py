"""The command line: the only module that prints.

Exit codes: 0 ok; 1 the model fails at this input or ``verify`` found a disagreement; 2 bad input.
argparse, not typer: typer 0.29 imports pydantic on every call (~95 ms), over the start-up budget.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import UnetvizError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # usage errors: one line, exit 2, as the spec asks
        raise UnetvizError(message)


def _source(a: argparse.Namespace) -> str | Path:
    """--preset only names presets, --config only reads files (a Path), whatever the strings look like."""
    if (a.preset is None) == (a.config is None):
        raise UnetvizError("give exactly one of --preset NAME or --config FILE")
    if a.config is not None:
        return Path(a.config)
    from .presets import find_preset

    return find_preset(a.preset).name  # an unknown name is an error here, never a file path


def _trace(a: argparse.Namespace) -> Any:
    from .api import trace

    return trace(_source(a), size=getattr(a, "size", None))


def width() -> int:
    """The terminal's width; piped output honours ``COLUMNS`` (default 120)."""
    import os
    import shutil

    if sys.stdout.isatty():
        return shutil.get_terminal_size((120, 40)).columns
    try:
        return max(40, int(os.environ.get("COLUMNS", "120")))
    except ValueError:
        return 120


def _print(renderable: Any) -> None:
    if isinstance(renderable, str):
        sys.stdout.write(renderable)
        return
    from rich.console import Console

    if sys.stdout.isatty():
        Console(width=width()).print(renderable)
        return
    console = Console(width=width(), color_system=None)
    with console.capture() as cap:
        console.print(renderable)
    sys.stdout.write("\n".join(line.rstrip() for line in cap.get().splitlines()) + "\n")


def _model_fails(trace: Any, printed_error: bool) -> int:
    if trace.error is None:
        return 0
    if not printed_error:
        print(f"error: the model fails at this input: {trace.error.message}", file=sys.stderr)
    return 1


def cmd_table(a: argparse.Namespace) -> int:
    from .render.formats import render_text

    t = _trace(a)
    if a.format == "rich":
        from .render.table import render_table

        _print(render_table(t, a.depth, width()))
        return _model_fails(t, printed_error=True)
    _print(render_text(t, a.format, a.depth))
    return _model_fails(t, printed_error=False)


def cmd_weights(a: argparse.Namespace) -> int:
    from .api import weights
    from .render.weights import check_weights, read_shapes, render_check, render_weights

    t = weights(_source(a))
    if a.check is not None:
        result = check_weights(t, read_shapes(Path(a.check)))
        _print(render_check(result, a.check) + "\n")
        return 0 if result.ok else 1
    _print(json.dumps(t.weights(), indent=1) + "\n" if a.format == "json" else render_weights(t))
    return 0


def cmd_graph(a: argparse.Namespace) -> int:
    from .render.graph import write_graph

    t = _trace(a)
    print(write_graph(t, Path(a.out), a.detail))
    return _model_fails(t, printed_error=False)


def cmd_verify(a: argparse.Namespace) -> int:
    from .config import parse_size
    from .render.report import render_report
    from .verification import verify

    report = verify(_source(a), parse_size(a.size))
    _print(render_report(report))
    # verify answers "does the trace agree with the real model": agreeing on where the model fails is
    # agreement (0); the report names the failure, and `unetviz table` exits 1 for it
    return 0 if report.ok else 1


def cmd_presets(a: argparse.Namespace) -> int:
    from .presets import PRESETS

    if a.names:
        _print("".join(f"{n}\n" for n in PRESETS))
        return 0
    from rich.table import Table

    from .api import trace
    from .records import fmt_size

    table = Table(title="unetviz presets (figures computed now)", title_justify="left", pad_edge=False)
    for col in ("name", "model", "input", "params", "tensors", "description"):
        table.add_column(col, justify="right" if col in ("params", "tensors") else "left")
    for name, p in PRESETS.items():
        tr = trace(name)
        table.add_row(name, f"{tr.family} {tr.model}", f"{tr.in_channels}x{fmt_size(tr.in_size)}", f"{tr.params:,}",
                      str(len(tr.manifest)), p.description)
    _print(table)
    return 0


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="unetviz", description="Show how a U-Net's channels, skip connections and resolutions"
                                            " evolve, layer by layer, from its config alone.")
    p.add_argument("--debug", action="store_true", help="show a traceback on errors")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def model(sp: argparse.ArgumentParser, size: bool = True) -> None:
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--preset", "-p", help="a preset name (see `unetviz presets`)")
        g.add_argument("--config", "-c", help="a config .json (or .yaml) file")
        if size:
            sp.add_argument("--size", "-s", help="N (NxN) or HxW (height x width); default: the config's own")
        sp.add_argument("--debug", action="store_true", help="show a traceback on errors")

    t = sub.add_parser("table", help="every layer's channels and sizes, skip pushes/pops and concat sums")
    model(t)
    t.add_argument("--format", "-f", choices=("rich", "json", "csv", "md"), default="rich")
    t.add_argument("--depth", "-d", choices=("units", "layers", "blocks"), default="units",
                   help="one row per resnet/attention/sampler (default), per layer, or per block")
    t.set_defaults(run=cmd_table)
    w = sub.add_parser("weights", help="the state_dict manifest: every key and shape, in the model's order")
    model(w, size=False)
    w.add_argument("--format", "-f", choices=("rich", "json"), default="rich")
    w.add_argument("--check", help="compare with a .safetensors file's header or a .json manifest")
    w.set_defaults(run=cmd_weights)
    g = sub.add_parser("graph", help="a U-shaped Graphviz diagram with labelled skip connections")
    model(g)
    g.add_argument("--out", "-o", required=True, help="FILE.svg | .png | .pdf | .dot")
    g.add_argument("--detail", choices=("blocks", "layers"), default="blocks")
    g.set_defaults(run=cmd_graph)
    v = sub.add_parser("verify", help="check the trace against the real model built on the meta device")
    model(v)
    v.set_defaults(run=cmd_verify)
    ps = sub.add_parser("presets", help="the built-in presets")
    ps.add_argument("--names", action="store_true", help="only the names, one a line")
    ps.set_defaults(run=cmd_presets)
    return p


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``UnetvizError`` -> ``error: ...`` on stderr and exit 2, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        ns = parser().parse_args(args)
        code = ns.run(ns)
    except UnetvizError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `unetviz table ... | head`
        code = 0
    sys.exit(code)
