"""The U diagram of units (``--detail units``) or block headings (``--detail blocks``).

The encoder descends on the left, the bottleneck runs along the bottom, the decoder rises on the
right (its edges are written upwards with ``dir=back`` so dot ranks it bottom-up), and every skip's
source and consumer share a rank, so each skip edge is a short horizontal line labelled
``#6 640ch 16x16`` instead of a long crossing curve. The layout itself is in ``graph_layout.py``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from ...checkpoints.keymaps import block_id, original_names
from ...core.quantities import layer_macs
from ...core.records import Trace
from ...core.records import fmt_size as fmt
from .layout import Item, Layout, build_layout
from .rows import Link
from .style import FAIL_COLOR, FAIL_FILL, FONT, NOTE_MAX, SKIP_COLOR, esc, kind_color, legend


def _node_label(it: Item) -> str:
    size = fmt(it.in_size) if it.in_size == it.out_size else f"{fmt(it.in_size)}→{fmt(it.out_size)}"
    if it.in_size is None and it.out_size is None:
        size = "vector" if it.tokens is None else f"{it.tokens} tok"
    rows = [f"<B>{esc(it.path)}</B>", f"{esc(it.type)}  {it.in_channels}→{it.out_channels}ch  {size}"]
    if it.note:
        note = it.note if len(it.note) <= NOTE_MAX else it.note[: NOTE_MAX - 1] + "…"
        rows.append(f'<FONT POINT-SIZE="8" COLOR="#555555">{esc(note)}</FONT>')
    for line in it.cats:
        rows.append(f'<FONT COLOR="{SKIP_COLOR}"><B>{esc(line)}</B></FONT>')
    return "<" + "<BR/>".join(rows) + ">"


def _cond_label(lines: list[str]) -> str:
    body = "<BR ALIGN=\"LEFT\"/>".join(esc(x) for x in lines)
    return f'<<B>conditioning</B><BR/>{body}<BR ALIGN="LEFT"/>>'


def heat(value: int, top: int) -> str:
    """White to red: a node's MACs as a share of the largest node's (linear, so the heavy levels stand out)."""
    if value <= 0 or top <= 0:
        return "#ffffff"
    x = min(1.0, value / top)
    g = round(255 - 200 * x)
    return f"#ff{g:02x}{g:02x}"


def u_graph(trace: Trace, detail: str, title: Callable[[int], str],
            color: str = "kind") -> tuple[Any, Layout]:
    """The U of ``detail`` (units or blocks) as a ``graphviz.Digraph``, and its layout; ``color``: by the
    unit's kind, or ``macs`` (a heat map of each node's MACs)."""
    import graphviz  # lazily: ``import unetviz`` stays light

    layout = build_layout(trace, detail)
    g = graphviz.Digraph(name=trace.preset or trace.model)
    macs = {it.id: sum(layer_macs(x) for x in trace.layers[it.first:it.last]) for it in layout.items}
    top = max(macs.values(), default=0)
    g.attr(rankdir="TB", newrank="true", nodesep="0.3", ranksep="0.3", fontname=FONT, fontsize="16",
           labelloc="t", forcelabels="true", label=title(len(layout.items) + len(layout.cond))
           + (f" · fill: MACs at batch 1, white 0 to red {top:,}" if color == "macs" else ""))
    g.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="10", margin="0.1,0.04",
           height="0.4", penwidth="0.8")
    g.attr("edge", color="#444444", arrowsize="0.6", fontname=FONT, fontsize="9")
    originals = original_names(trace)  # a Stable Diffusion U-Net's nodes also give their original name
    for it in layout.items:
        attrs = {"fillcolor": heat(macs[it.id], top) if color == "macs" else kind_color(it.kind)}
        if it.failed:
            attrs = {"fillcolor": FAIL_FILL, "color": FAIL_COLOR, "penwidth": "2"}
        tip = (f"{it.path}: {it.type}, {it.params:,} params, {macs[it.id]:,} MACs"
               + (f"; {it.note}" if it.note else ""))
        if it.path in originals and originals[it.path] != it.path:
            tip += f"; original {originals[it.path]}" + (f" ({block_id(originals[it.path])})"
                                                         if block_id(originals[it.path]) else "")
        elif block_id(it.path):
            tip += f"; LoRA block {block_id(it.path)}"
        g.node(it.id, _node_label(it), tooltip=tip, **attrs)
    scale = [(f"{round(top * f):,} MACs", heat(round(top * f), top)) for f in (1.0, 0.75, 0.5, 0.25, 0.0)]
    top_row = _add_top_row(g, trace, layout, scale if color == "macs" else None)
    _add_flow(g, trace, layout, "output" in top_row)
    _add_skips(g, layout)
    return g, layout


def _add_top_row(g: Any, trace: Trace, layout: Layout, scale: list[tuple[str, str]] | None = None) -> list[str]:
    """Input, conditioning, legend and output side by side above the U. The conditioning is one note,
    not an edge into every resnet and attention."""
    top_row = ["input"]
    g.node("input", f"input\n{trace.in_channels}ch {fmt(trace.in_size)}", shape="ellipse", fillcolor="#ffffff")
    if layout.cond_lines:
        g.node("cond", _cond_label(layout.cond_lines), shape="note", fillcolor="#fdf2f8", fontsize="9")
        top_row.append("cond")
    g.node("legend", legend(scale=scale), shape="plaintext", style="", fontsize="9")
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


def _add_flow(g: Any, trace: Trace, layout: Layout, has_output: bool) -> None:
    """The U: down the encoder, along the bottom, up the decoder. Decoder edges are written from the
    upper node to the lower one with dir=back, so dot ranks the decoder bottom-up."""
    row_of = {n: k for k, row in enumerate(layout.rows) for n in row}
    for row in layout.rows:
        if len(row) > 1:
            _same_rank(g, row)
    rising = {it.id for it in layout.dec}
    seq = ["input", *[it.id for it in layout.items]]
    if trace.error is not None:
        msg = "\n".join(textwrap.wrap(trace.error.message, 70)[:6])
        at = f"at {trace.error.at}\n" if trace.error.at else ""
        g.node("failure", f"✗ the model fails here\n{at}{msg}", shape="box", style="filled,bold",
               fillcolor=FAIL_FILL, color=FAIL_COLOR, fontcolor="#7f1d1d")
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
        weight = "8" if same else "1"
        if b in rising and not same:
            g.edge(b, a, dir="back", weight=weight, **style)
        else:
            g.edge(a, b, weight=weight, **style)
    # spines: the encoder's right ends (the nodes that push skips) and the decoder's left ends (the
    # consumers) line up, so every skip edge is a straight line of the same length
    for upper, lower in pairwise(layout.enc_rows):
        g.edge(upper[-1], lower[-1], style="invis", weight="20")
    for lower, upper in pairwise(layout.dec_rows):
        g.edge(upper[0], lower[0], style="invis", weight="20")


def _merged_label(links: list[Link]) -> str:
    """One label for the skips one edge carries: ``#1, #2 320ch 64x64`` when they agree in channels and
    size, else a line each."""
    heads, rests = zip(*(lk.label.split(" ", 1) for lk in links), strict=True)
    if len(set(rests)) == 1:
        return f"{', '.join(heads)} {rests[0]}"
    return "\n".join(lk.label for lk in links)


def _add_skips(g: Any, layout: Layout) -> None:
    pairs = set(layout.pairs)
    # skips between the same two nodes (a block pushes three, two go to one decoder block) are one edge
    # with one label: twin edges would strike through each other's labels
    edges: dict[tuple[str, str], list[Link]] = {}
    for link in layout.links:
        if link.head is None:
            continue  # said in the source node's label: dangling edges only add noise
        if link.index < 0:  # a concat operand kept outside the skip stack
            # it runs from an early encoder node down to a late decoder one: its text above the line
            g.edge(link.tail, link.head, label=_offset_label(link.label, below=False), color=SKIP_COLOR,
                   fontcolor=SKIP_COLOR, style="dotted", constraint="false")
            continue
        edges.setdefault((link.tail, link.head), []).append(link)
    depth = _depths(layout)
    for (tail, head), links in edges.items():
        # every label is a real label: dot gives it a place of its own between two ranks, so no edge runs
        # through it. A paired skip is a flat edge (tail-to-head puts the encoder on the left); one that
        # climbs to a decoder row above is written downwards with dir=back, so it agrees with the ranks the
        # rows already set (weight 0: it must not pull the nodes sideways); one whose rows are unknown must
        # not pull ranks at all
        attrs = {"id": f"skip{links[0].index}", "color": SKIP_COLOR, "fontcolor": SKIP_COLOR, "penwidth": "1.4",
                 "style": "dashed", "label": _merged_label(links)}
        dt, dh = depth.get(tail), depth.get(head)
        if (tail, head) in pairs or (dt is not None and dh is not None and dh == dt):
            g.edge(tail, head, constraint="true", **attrs)
            continue
        # a slanted edge crosses its label's row at the left end of the label's box and runs on, up (or
        # down) to the right: the text sits in the box's other half, a blank cell before it, so the line
        # never touches a character
        rising = dt is not None and dh is not None and dh < dt
        attrs["label"] = _offset_label(attrs["label"], below=rising)
        if dt is not None and dh is not None:
            tail, head = (head, tail) if rising else (tail, head)
            g.edge(tail, head, dir="back" if rising else "forward", constraint="true", weight="0", **attrs)
        else:
            g.edge(tail, head, constraint="false", **attrs)


def _offset_label(label: str, below: bool) -> str:
    """An HTML label whose text is in the lower (``below``) or upper right quarter of its box."""
    lines = label.split("\n")
    text = '<BR ALIGN="LEFT"/>'.join(esc(x) for x in lines)
    blank = f'<TR><TD></TD><TD HEIGHT="{11 * len(lines)}"></TD></TR>'
    row = f'<TR><TD WIDTH="8"></TD><TD>{text}</TD></TR>'
    body = blank + row if below else row + blank
    return f'<<TABLE BORDER="0" CELLPADDING="0" CELLSPACING="0">{body}</TABLE>>'


def _depths(layout: Layout) -> dict[str, int]:
    """Each node's rank among the encoder rows (top 0), for the nodes on a row the encoder shares."""
    at = {n: k for k, row in enumerate(layout.enc_rows) for n in row}
    out: dict[str, int] = {}
    for row in layout.rows:
        k = next((at[n] for n in row if n in at), None)
        if k is not None:
            out.update((n, k) for n in row)
    return out
