"""The ``verify`` report as a rich renderable: a one-line verdict and a table of disagreements.

Returns renderables, never prints; ``unetviz.cli`` prints them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the report needs only the types: rendering never imports the verify machinery
    from rich.console import RenderableType

    from ..analysis.compare import Report


def _shape(v: tuple[int, ...] | None) -> str:
    if v is None:
        return "-"
    return f"{v[0]}ch " + "x".join(str(d) for d in v[1:])


def verdict(report: Report) -> str:
    """The one-line summary: what agrees, the parameter totals and the torchinfo witness."""
    c = report.counts
    witness = "n/a" if report.params_torchinfo is None else f"{report.params_torchinfo:,}"
    size = "x".join(str(d) for d in report.size)
    name = report.preset or report.model
    head = f"{name} at {size}: "
    what = (f"{c['layers']} layers, {c.get('units', 0)} units, {c.get('blocks', 0)} blocks, {c['concats']} concats,"
            f" {c['tensors']} tensors")
    if report.ok:
        if c["layers"] == 0 and report.error_ours is not None:
            what = f"no layer runs before the failure; {c['tensors']} tensors"
        body = f"{what} agree; params {report.params_real:,} (torchinfo {witness})"
        if report.error_ours is not None:
            body += "; both fail at this input, at the same place"
        return head + "OK: " + body
    return (head + f"{len(report.disagreements)} disagreement(s) over {what}; params ours {report.params_ours:,},"
            f" real {report.params_real:,} (torchinfo {witness})")


def render_report(report: Report) -> RenderableType:
    """Verdict line, the failure both sides report (if any), and every disagreement with both values."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[RenderableType] = [Text(verdict(report), style="bold green" if report.ok else "bold red")]
    if report.error_ours is not None or report.error_real is not None:
        parts.append(Text(f"  unetviz: {report.error_ours or 'runs'}"))
        parts.append(Text(f"  real:    {report.error_real or 'runs'}"))
    else:
        parts.append(Text(f"  output: unetviz {_shape(report.output_ours)}, real {_shape(report.output_real)}"))
    if report.disagreements:
        table = Table(title="disagreements", show_lines=False)
        for col in ("what", "where", "unetviz", "real model"):
            table.add_column(col, overflow="fold")
        for d in report.disagreements:
            table.add_row(d.what, d.path, d.ours, d.real)
        parts.append(table)
    for note in report.notes:
        parts.append(Text(f"  note: {note}", style="dim"))
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in report.timings.items())
    if timing:
        parts.append(Text(f"  time: {timing}", style="dim"))
    return Group(*parts)
