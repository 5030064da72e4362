"""Plain-text formats of a trace: JSON, CSV, Markdown and the notebook's HTML table.

Every table format loops over ``columns.COLUMNS`` and ``rows.build_rows``: one declaration. Each format
imports what it needs when it runs: the JSON trace reads neither rows nor columns, and starts faster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import bad_value
from ..core.records import Trace

if TYPE_CHECKING:
    from .rows import Row

FORMATS = ("rich", "json", "csv", "md")


def to_csv(trace: Trace, depth: str = "units") -> str:
    import csv
    import io

    from .columns import csv_fields
    from .rows import build_rows

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    fields = csv_fields()
    w.writerow([name for name, _ in fields])
    for r in build_rows(trace, depth):
        if r.kind != "heading":
            w.writerow([cell(r) for _, cell in fields])
    return buf.getvalue()


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _md_row(r: Row) -> str:
    from .columns import COLUMNS
    from .rows import relative

    if r.kind == "heading":
        return f"| | **{_md(relative(r.path, r.parent))}** | **{_md(r.type)}** |" + " |" * (len(COLUMNS) - 3)
    cells = [_md(c.cell(r)) for c in COLUMNS]
    if r.kind == "concat":
        cells = [f"*{x}*" if x else x for x in cells]
    return "| " + " | ".join(cells) + " |"


def to_markdown(trace: Trace, depth: str = "units") -> str:
    from .columns import COLUMNS
    from .explain import explain
    from .rows import build_rows, skip_fate, skip_width
    from .table import summary_lines, title

    lines = [f"### {title(trace)}", "", "| " + " | ".join(c.title for c in COLUMNS) + " |",
             "|" + "|".join("---:" if c.align == "right" else "---" for c in COLUMNS) + "|"]
    lines += [_md_row(r) for r in build_rows(trace, depth)]
    lines += ["", "| skip # | pushed by | channels | size | popped by |", "|---:|---|---:|---:|---|"]
    for s in trace.skips:
        ch, size = skip_width(s)
        lines.append(f"| {s.index} | {s.unit} | {ch} | {size} | {skip_fate(s)} |")
    why = explain(trace)
    if why:
        lines += ["", why[0], ""] + [f"- {w.strip()}" if w.startswith("  ") else f"\n{w}\n" for w in why[1:]]
    lines += [""] + [f"**{line}**" for line in summary_lines(trace)]
    return "\n".join(lines) + "\n"


_HTML_STYLE = ("<style>"
               # !important: Jupyter's and nbconvert's stylesheets right-align and centre every table cell and
               # cap widths with more specific selectors; a trace reads left to right, numbers right-aligned
               "table.uv{margin-left:0 !important;margin-right:auto !important;border-collapse:collapse}"
               ".uv td,.uv th{text-align:left !important;white-space:nowrap !important;padding:1px 8px !important;"
               "font-family:monospace;font-size:12px;vertical-align:top !important;max-width:none !important}"
               ".uv .r{text-align:right !important}.uv tr.concat{background:#fff6d5}"
               ".uv tr.heading td{font-weight:bold;padding-top:6px !important}"
               ".uv td.note{white-space:normal !important;min-width:24em;max-width:60em !important}</style>")


def to_html(trace: Trace, depth: str = "units") -> str:
    """The notebook view (``Trace._repr_html_``): compact, left-aligned text, numbers right-aligned,
    then the skip stack, the arithmetic and the totals."""
    import html

    from .columns import COLUMNS
    from .explain import explain
    from .rows import build_rows, relative, skip_fate, skip_width
    from .table import summary_lines, title

    e = html.escape
    out = [_HTML_STYLE, f"<p><b>{e(title(trace))}</b></p>", "<table class='uv'><tr>"
           + "".join(f"<th class='{'r' if c.align == 'right' else ''}'>{e(c.title)}</th>" for c in COLUMNS) + "</tr>"]
    for r in build_rows(trace, depth):
        if r.kind == "heading":
            out.append(f"<tr class='heading'><td></td><td colspan='{len(COLUMNS) - 1}'>"
                       f"{e(relative(r.path, r.parent))} <span style='font-weight:normal'>{e(r.type)}</span></td></tr>")
            continue
        # a concat's arithmetic is a sentence: it gets the row's width on a line of its own instead of a narrow
        # note cell that a notebook would clip or stack four lines tall
        aside = r.kind == "concat" and bool(r.note)
        tds = "".join(f"<td class='{'r' if c.align == 'right' else c.name}'>"
                      f"{'' if aside and c.name == 'note' else e(c.cell(r))}</td>" for c in COLUMNS)
        out.append(f"<tr class='{r.kind}'>{tds}</tr>")
        if aside:
            out.append(f"<tr class='concat'><td></td><td colspan='{len(COLUMNS) - 1}'>{e(r.note)}</td></tr>")
    out.append("</table>")
    if trace.skips:
        out.append("<p><b>skip stack</b> (push order)</p><table class='uv'><tr><th class='r'>#</th><th>pushed by</th>"
                   "<th class='r'>ch</th><th class='r'>size</th><th>popped by</th></tr>")
        out += [f"<tr><td class='r'>{s.index}</td><td>{e(s.unit)}</td><td class='r'>{skip_width(s)[0]}</td>"
                f"<td class='r'>{skip_width(s)[1]}</td><td>{e(skip_fate(s))}</td></tr>"
                for s in trace.skips]
        out.append("</table>")
    why = explain(trace)
    if why:
        out.append("<pre style='font-size:12px'>" + e("\n".join(why)) + "</pre>")
    out += [f"<p>{e(line)}</p>" for line in summary_lines(trace)]
    return "\n".join(out)


def render_text(trace: Trace, fmt: str, depth: str = "units") -> str:
    """A non-rich format as text."""
    if fmt == "json":
        from .json_trace import trace_json

        return trace_json(trace) + "\n"
    if fmt == "csv":
        return to_csv(trace, depth)
    if fmt == "md":
        return to_markdown(trace, depth)
    raise bad_value("--format", fmt, FORMATS)
