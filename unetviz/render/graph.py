"""``unetviz graph``: a U-shaped Graphviz diagram of a trace with labelled skip edges.

The encoder descends on the left, the bottleneck runs along the bottom, the decoder rises on the
right (its edges are written upwards with ``dir=back`` so dot ranks it bottom-up), and every skip's
source and consumer share a rank, so each skip edge is a short horizontal line labelled
``#6 640ch 16x16`` instead of a long crossing curve. The layout itself is in ``graph_layout.py``.
"""

from __future__ import annotations

import html
import shutil
import textwrap
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..errors import UnetvizError, bad_value
from ..records import Trace
from ..tracer import fmt_size as fmt
from .graph_layout import DETAILS, Item, Layout, build_layout

FORMATS = (".svg", ".png", ".pdf", ".dot")
FONT = "Helvetica"
SKIP_COLOR = "#7c3aed"
FAIL_COLOR = "#dc2626"
# kind -> (legend label, fill); samplers share a colour so the level changes stand out
KIND_COLORS: dict[str, tuple[str, str]] = {
    "resnet": ("resnet", "#dbeafe"),
    "attention": ("attention / transformer", "#fde68a"),
    "transformer": ("attention / transformer", "#fde68a"),
    "downsample": ("down / upsample", "#bbf7d0"),
    "upsample": ("down / upsample", "#bbf7d0"),
    "conv": ("conv", "#e5e7eb"),
    "norm": ("norm", "#f5f5f4"),
    "mlp": ("mlp / embedding", "#fbcfe8"),
    "embed": ("mlp / embedding", "#fbcfe8"),
}
NOTE_MAX = 60


def _check_detail(detail: str) -> None:
    if detail not in DETAILS:
        raise bad_value("graph: --detail", detail, DETAILS)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _node_label(it: Item, detail: str) -> str:
    size = fmt(it.in_size) if it.in_size == it.out_size else f"{fmt(it.in_size)}→{fmt(it.out_size)}"
    if it.in_size is None and it.out_size is None:
        size = "vector" if it.tokens is None else f"{it.tokens} tok"
    chans = f"{it.in_channels}→{it.out_channels}ch"
    rows: list[str] = []
    if detail == "blocks":
        rows.append(f'<B>{_esc(it.path)}</B>')
        rows.append(f"{_esc(it.type)}  {chans}  {size}")
        if it.note:
            note = it.note if len(it.note) <= NOTE_MAX else it.note[: NOTE_MAX - 1] + "…"
            rows.append(f'<FONT POINT-SIZE="8" COLOR="#555555">{_esc(note)}</FONT>')
    else:
        extra = ""
        if it.kernel is not None:
            extra = f" k{fmt(it.kernel)}" + (f" s{fmt(it.stride)}" if it.stride and max(it.stride) > 1 else "")
        rows.append(f'<B>{_esc(it.path)}</B>  {_esc(it.type)} {chans} {size}{extra}')
    for line in it.cats:
        rows.append(f'<FONT COLOR="{SKIP_COLOR}"><B>{_esc(line)}</B></FONT>')
    return "<" + "<BR/>".join(rows) + ">"


def _legend() -> str:
    seen: dict[str, str] = {}
    for label, fill in KIND_COLORS.values():
        seen.setdefault(label, fill)
    cells = "".join(f'<TR><TD BGCOLOR="{fill}" WIDTH="14"> </TD><TD ALIGN="LEFT">{_esc(label)}</TD></TR>'
                    for label, fill in seen.items())
    cells += f'<TR><TD><FONT COLOR="{SKIP_COLOR}">⟶</FONT></TD><TD ALIGN="LEFT">skip #index ch size</TD></TR>'
    cells += '<TR><TD BGCOLOR="#fecaca" WIDTH="14"> </TD><TD ALIGN="LEFT">fails here</TD></TR>'
    title = '<TR><TD COLSPAN="2"><B>legend</B></TD></TR>'
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2">{title}{cells}</TABLE>>'


def _cond_label(lines: list[str]) -> str:
    body = "<BR ALIGN=\"LEFT\"/>".join(_esc(x) for x in lines)
    return f'<<B>conditioning</B><BR/>{body}<BR ALIGN="LEFT"/>>'


def _title(trace: Trace, layout: Layout, detail: str) -> str:
    name = trace.preset or trace.model
    parts = [f"{name} ({trace.family}, {trace.source})", f"input {trace.in_channels}ch {fmt(trace.in_size)}",
             f"{len(layout.items)} {'units' if detail == 'blocks' else 'layers'}", f"{len(trace.skips)} skips",
             f"{trace.params:,} params"]
    return " · ".join(parts)


def to_graphviz(trace: Trace, detail: str = "blocks") -> Any:
    """A ``graphviz.Digraph`` of the trace's U; ``detail``: ``blocks`` (one node per unit) or ``layers``."""
    return _build(trace, detail)[0]


def _build(trace: Trace, detail: str) -> tuple[Any, Layout]:
    _check_detail(detail)
    import graphviz  # lazily: ``import unetviz`` stays light

    layout = build_layout(trace, detail)
    layers = detail == "layers"
    g = graphviz.Digraph(name=trace.preset or trace.model)
    g.attr(rankdir="TB", newrank="true", nodesep="0.18" if layers else "0.3", ranksep="0.22" if layers else "0.3",
           fontname=FONT, fontsize="16", labelloc="t", forcelabels="true", label=_title(trace, layout, detail))
    if layers:
        # x-placement of ~1000 nodes: network simplex converges slowly for little visible gain (SDXL: 3000
        # iterations, 1.8 s); a cap of 1 x the node count keeps the columns straight at a third of the time
        g.attr(nslimit="1")
    g.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="8" if layers else "10",
           margin="0.06,0.02" if layers else "0.1,0.04", height="0.2" if layers else "0.4", penwidth="0.8")
    g.attr("edge", color="#444444", arrowsize="0.6", fontname=FONT, fontsize="9")
    _add_nodes(g, graphviz, trace, layout, layers)
    top_row = _add_top_row(g, trace, layout)
    _add_flow(g, trace, layout, layers, "output" in top_row)
    _add_skips(g, layout)
    return g, layout


def _add_nodes(g: Any, graphviz: Any, trace: Trace, layout: Layout, layers: bool) -> None:
    titles = dict(trace.blocks)
    grouped: dict[str, list[Item]] = {}
    for it in layout.items:
        # clusters only at layers detail: at blocks detail dot orders clusters as wholes and ignores the
        # left-to-right of the flat skip edges, which put the encoder on the right
        grouped.setdefault(it.block if layers and it.block in titles else "", []).append(it)
    for block, items in grouped.items():
        target = graphviz.Digraph(name=f"cluster_{block}") if block else g
        if block:
            target.attr(label=f"{block} · {titles[block]}", style="rounded,dashed", color="#9ca3af",
                        fontsize="10", fontcolor="#374151", labeljust="l")
        for it in items:
            attrs = {"fillcolor": KIND_COLORS.get(it.kind, ("", "#ffffff"))[1]}
            if it.failed:
                attrs = {"fillcolor": "#fecaca", "color": FAIL_COLOR, "penwidth": "2"}
            tip = f"{it.path}: {it.type}, {it.params:,} params" + (f"; {it.note}" if it.note else "")
            target.node(it.id, _node_label(it, "layers" if layers else "blocks"), tooltip=tip, **attrs)
        if block:
            g.subgraph(target)
    if layers and layout.cond:
        # every layer is drawn at this detail, the embedding MLPs too, boxed apart with no edge into
        # the U: the note says where their vector goes
        sub = graphviz.Digraph(name="cluster_conditioning")
        sub.attr(label="conditioning", style="rounded,dashed", color="#db2777", fontsize="10", labeljust="l")
        for it in layout.cond:
            sub.node(it.id, _node_label(it, "layers"), fillcolor=KIND_COLORS.get(it.kind, ("", "#ffffff"))[1])
        for a, b in pairwise(layout.cond):
            sub.edge(a.id, b.id)
        g.subgraph(sub)


def _add_top_row(g: Any, trace: Trace, layout: Layout) -> list[str]:
    """Input, conditioning, legend and output side by side above the U. The conditioning is one note,
    not an edge into every resnet and attention."""
    top_row = ["input"]
    g.node("input", f"input\n{trace.in_channels}ch {fmt(trace.in_size)}", shape="ellipse", fillcolor="#ffffff")
    if layout.cond_lines:
        g.node("cond", _cond_label(layout.cond_lines), shape="note", fillcolor="#fdf2f8", fontsize="9")
        top_row.append("cond")
    g.node("legend", _legend(), shape="plaintext", style="", fontsize="9")
    top_row.append("legend")
    if trace.error is None and trace.out_channels is not None:
        g.node("output", f"output\n{trace.out_channels}ch {fmt(trace.out_size)}", shape="ellipse",
               fillcolor="#ffffff")
        top_row.append("output")
    _same_rank(g, top_row)
    for a, b in pairwise(top_row):
        g.edge(a, b, style="invis")
    return top_row


def _same_rank(g: Any, ids: list[str]) -> None:
    with g.subgraph() as s:
        s.attr(rank="same")
        for n in ids:
            s.node(n)


def _add_flow(g: Any, trace: Trace, layout: Layout, layers: bool, has_output: bool) -> None:
    """The U: down the encoder, along the bottom, up the decoder. Decoder edges are written from the
    upper node to the lower one with dir=back, so dot ranks the decoder bottom-up."""
    row_of = {n: k for k, row in enumerate(layout.rows) for n in row}
    for row in layout.rows:
        if len(row) > 1:  # a rank of its own needs no constraint (layers detail has a thousand of these)
            _same_rank(g, row)
    rising = {it.id for it in layout.dec}
    seq = ["input", *[it.id for it in layout.items]]
    if trace.error is not None:
        msg = "\n".join(textwrap.wrap(trace.error.message, 70)[:6])
        at = f"at {trace.error.at}\n" if trace.error.at else ""
        g.node("failure", f"✗ the model fails here\n{at}{msg}", shape="box", style="filled,bold",
               fillcolor="#fecaca", color=FAIL_COLOR, fontcolor="#7f1d1d")
        if seq[-1] in rising:
            rising.add("failure")
        seq.append("failure")
    elif has_output:
        rising.add("output")
        seq.append("output")
    for a, b in pairwise(seq):
        style = {"color": FAIL_COLOR, "style": "dashed"} if b == "failure" else {}
        same = a in row_of and row_of.get(a) == row_of.get(b)
        # between rows the flow edge runs diagonally (end of one row to the start of the next): weight 1,
        # so the invisible spines below, not these edges, decide where the rows sit
        weight = "8" if same or layers else "1"
        if b in rising and not same:
            g.edge(b, a, dir="back", weight=weight, **style)
        else:
            g.edge(a, b, weight=weight, **style)
    if not layers:
        # spines: the encoder's right ends (the nodes that push skips) and the decoder's left ends (the
        # consumers) line up, so every skip edge is a straight line of the same length
        for upper, lower in pairwise(layout.enc_rows):
            g.edge(upper[-1], lower[-1], style="invis", weight="20")
        for lower, upper in pairwise(layout.dec_rows):
            g.edge(upper[0], lower[0], style="invis", weight="20")


def _add_skips(g: Any, layout: Layout) -> None:
    pairs = set(layout.pairs)
    for link in layout.links:
        if link.head is None:
            continue  # said in the source node's label: dangling edges only add noise
        if link.index < 0:  # a concat operand kept outside the skip stack
            g.edge(link.tail, link.head, xlabel=link.label, color=SKIP_COLOR, fontcolor=SKIP_COLOR,
                   style="dotted", constraint="false")
            continue
        # a paired skip is a flat edge: tail-to-head puts the encoder on the left, and a real label gets
        # its own space; an unpaired one must not pull ranks (constraint=false) and floats its label
        paired = (link.tail, link.head) in pairs
        label = {"label" if paired else "xlabel": link.label}
        g.edge(link.tail, link.head, id=f"skip{link.index}", color=SKIP_COLOR, fontcolor=SKIP_COLOR,
               penwidth="1.4", style="dashed", constraint="true" if paired else "false", **label)


def write_graph(trace: Trace, out: Path, detail: str = "blocks") -> str:
    """Write the diagram to ``out`` (.svg/.png/.pdf through Graphviz's ``dot``, or .dot source only)."""
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise bad_value("graph: --out extension", ext or out.name, FORMATS)
    g, layout = _build(trace, detail)
    if ext == ".dot":
        data = g.source.encode("utf-8")
    else:
        if shutil.which("dot") is None:
            raise UnetvizError("graph: Graphviz's `dot` is not installed; install it (Debian/Ubuntu: `apt-get"
                               " install graphviz`, macOS: `brew install graphviz`) or write .dot with --out FILE.dot")
        import graphviz

        try:
            data = g.pipe(format=ext[1:], quiet=True)
        except graphviz.ExecutableNotFound as e:  # dot vanished between the check and the call
            raise UnetvizError(f"graph: Graphviz's `dot` could not run: {e}") from None
        except graphviz.CalledProcessError as e:
            tail = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise UnetvizError(f"graph: Graphviz's `dot` failed: {tail[0]}") from None
    try:
        out.write_bytes(data)
    except OSError as e:
        raise UnetvizError(f"graph: --out {out}: cannot write: {e.strerror or e}") from None
    kb = max(1, round(out.stat().st_size / 1024))
    skips = sum(x.head is not None and x.index >= 0 for x in layout.links)
    return f"wrote {out.name} ({len(layout.items)} nodes, {skips} skip edges, {kb} KB)"
