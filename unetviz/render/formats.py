"""Plain-text formats of a trace: JSON, CSV, Markdown and the notebook's HTML table."""

from __future__ import annotations

import csv
import html
import io

from ..errors import bad_value
from ..records import Trace
from ..tracer import fmt_size
from .explain import explain
from .rows import build_rows
from .table import summary_lines, title

FORMATS = ("rich", "json", "csv", "md")
_COLUMNS = ("kind", "index", "path", "type", "in_channels", "out_channels", "in_size", "out_size", "params",
            "skip", "note")


def to_csv(trace: Trace, depth: str = "layers") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_COLUMNS)
    for r in build_rows(trace, depth):
        w.writerow([r.kind, "" if r.index is None else r.index, r.path, r.type, r.in_channels, r.out_channels,
                    r.in_size, r.out_size, "" if r.params is None else r.params, r.skip, r.note])
    return buf.getvalue()


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(trace: Trace, depth: str = "layers") -> str:
    lines = [f"### {title(trace)}", "", "| # | path | type | in -> out ch | size | params | skip | note |",
             "|---:|---|---|---:|---:|---:|---|---|"]
    for r in build_rows(trace, depth):
        if r.kind == "block" and depth != "blocks":
            lines.append(f"| | **{r.path}** | **{_md_cell(r.type)}** | | | | | |")
            continue
        size = r.in_size if r.in_size == r.out_size else f"{r.in_size} -> {r.out_size}"
        ch = r.in_channels if r.kind == "concat" else f"{r.in_channels} -> {r.out_channels}"
        path = f"*{r.path}*" if r.kind == "concat" else r.path
        lines.append(f"| {'' if r.index is None else r.index} | {_md_cell(path)} | {_md_cell(r.type)} | {ch} |"
                     f" {size} | {'' if r.params is None else f'{r.params:,}'} | {_md_cell(r.skip)} |"
                     f" {_md_cell(r.note)} |")
    lines += ["", "| skip # | pushed by | channels | size | popped by |", "|---:|---|---:|---:|---|"]
    for s in trace.skips:
        lines.append(f"| {s.index} | {s.unit} | {s.channels} | {fmt_size(s.size)} | {s.to or '(never popped)'} |")
    why = explain(trace)
    if why:
        lines += ["", why[0], ""] + [f"- {w.strip()}" if w.startswith("  ") else f"\n{w}\n" for w in why[1:]]
    lines += [""] + [f"**{line}**" for line in summary_lines(trace)]
    return "\n".join(lines) + "\n"


def to_html(trace: Trace, depth: str = "units") -> str:
    """The notebook view (``Trace._repr_html_``): units by default, to stay one screen wide."""
    e = html.escape
    out = [f"<p><b>{e(title(trace))}</b></p>", "<table>",
           "<tr><th>#</th><th>path</th><th>type</th><th>in &rarr; out ch</th><th>size</th><th>params</th>"
           "<th>skip</th><th>note</th></tr>"]
    for r in build_rows(trace, depth):
        if r.kind == "block":
            out.append(f"<tr><td></td><td colspan='7'><b>{e(r.path)}</b> {e(r.type)}</td></tr>")
            continue
        size = r.in_size if r.in_size == r.out_size else f"{r.in_size} &rarr; {r.out_size}"
        ch = e(r.in_channels) if r.kind == "concat" else f"{e(r.in_channels)} &rarr; {e(r.out_channels)}"
        style = " style='background:#fff6d5'" if r.kind == "concat" else ""
        out.append(f"<tr{style}><td>{'' if r.index is None else r.index}</td><td>{e(r.path)}</td><td>{e(r.type)}"
                   f"</td><td>{ch}</td><td>{size}</td><td>{'' if r.params is None else f'{r.params:,}'}</td>"
                   f"<td>{e(r.skip)}</td><td>{e(r.note)}</td></tr>")
    out.append("</table>")
    out += [f"<p>{e(line)}</p>" for line in summary_lines(trace)]
    return "\n".join(out)


def render_text(trace: Trace, fmt: str, depth: str = "layers") -> str:
    """A non-rich format as text."""
    if fmt == "json":
        return trace.to_json() + "\n"
    if fmt == "csv":
        return to_csv(trace, depth)
    if fmt == "md":
        return to_markdown(trace, depth)
    raise bad_value("--format", fmt, FORMATS)
