"""Pages written whole by the generator: the preset index and the CLI reference (read from the typer app)."""

from __future__ import annotations

import enum
import re
from typing import Any

from uvdocs import n, size, trace

from unetviz.presets import PRESETS

_MARKUP = re.compile(r"\[/?[a-z ]+\]")


def plain(text: str | None) -> str:
    """Help text without rich markup (``[bold]...[/bold]``)."""
    return _MARKUP.sub("", text or "").strip()


def examples(epilog: str) -> list[str]:
    """A command's ``Examples: a · b`` epilog as a code block, a command a line (copied and pasted as they are:
    prose would get its ``--`` typeset)."""
    head, _, body = plain(epilog).partition(": ")
    return [f"{head}:", "", "```text", *(f"$ {c.strip()}" for c in body.split(" · ")), "```"]


def preset_index() -> str:
    """Every preset with its figures, computed now, and the toctree of their pages."""
    rows = ["| preset | model | input | params | tensors | skips |", "|---|---|---:|---:|---:|---:|"]
    for name in PRESETS:
        t = trace(name)
        rows.append(f"| [{name}]({name}.md) | {t.family} {t.model} | {t.in_channels}x{size(t.in_size)} |"
                    f" {n(t.params)} | {len(t.manifest)} | {len(t.skips)} |")
    toc = "\n".join(PRESETS)
    return ("# Presets\n\nOne page per built-in preset: the diagram, the unit table, the skip stack, the concat"
            " arithmetic, parameters and tensors, all computed from the preset's config while this site was"
            " built.\n\n" + "\n".join(rows) + "\n\n```{toctree}\n:hidden:\n\n" + toc + "\n```\n")


def _param_row(p: Any) -> str:
    names = " / ".join(f"`{o}`" for o in (*p.opts, *p.secondary_opts))
    if p.param_type_name == "argument":
        names = f"`{p.human_readable_name}`"
    kind = getattr(p.type, "choices", None)
    what = " \\| ".join(str(c) for c in kind) if kind else p.type.name
    value = p.default.value if isinstance(p.default, enum.Enum) else p.default  # `rich`, not `Format.rich`
    default = "" if value is None or p.param_type_name == "argument" else f"`{value}`"
    if isinstance(p.default, bool) or getattr(p, "is_flag", False):
        what, default = "flag", ""
    return f"| {names} | {what} | {default} | {plain(getattr(p, 'help', '') or '').replace('|', '/')} |"


def _usage(cmd: Any, name: str) -> str:
    import click

    ctx = click.Context(cmd, info_name=f"unetviz {name}")
    return " ".join(cmd.collect_usage_pieces(ctx))


def cli_reference() -> str:
    """One section per command of ``unetviz.cli.app``: usage, help, options, examples."""
    import typer

    from unetviz.cli import app

    root = typer.main.get_command(app)
    out = ["# Command line", "", plain(root.help), "",
           "Generated from the typer app (`unetviz.cli.app`) while this site was built: every command, in the order"
           " `unetviz --help` lists them.", ""]
    commands: dict[str, Any] = getattr(root, "commands", {})
    for name, cmd in commands.items():
        out += [f"## `unetviz {name}`", "", plain(cmd.help), "", "```text", f"unetviz {name} {_usage(cmd, name)}",
                "```", "", "| option | value | default | meaning |", "|---|---|---|---|"]
        out += [_param_row(p) for p in cmd.params if p.name not in ("help",)]
        if cmd.epilog:
            out += ["", *examples(cmd.epilog)]
        out.append("")
    return "\n".join(out)
