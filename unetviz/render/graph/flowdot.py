"""Graphviz statements of the layer diagram: columns per level, clusters per block and unit.

An invisible top row orders the columns left to right (each column and its head on that row share a
frameless cluster, so no column is packed under another); each column hangs below it from its band's
rank (``BAND_STEP`` ranks per level), so the encoder columns step down, the bottleneck is lowest and
the decoder climbs back: the U, laid out left to right. Edges inside a column set the ranks; edges
between columns (the sampler into the next level, the skips, the context) do not (constraint=false).
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from ...core.quantities import ATTENTION_TYPES, is_free
from ...core.records import Trace
from .bands import Column, columns
from .flow import CONTEXT, Flow, FNode, build_flow
from .style import CONTEXT_COLOR, FAIL_COLOR, FAIL_FILL, FONT, SKIP_COLOR, TEMB_COLOR, esc, kind_color, legend

BAND_STEP = 4
"""Ranks between the tops of two neighbouring levels' columns."""
SUB_MIN = 4


def _layer_label(trace: Trace, n: FNode, group: str, col: Column) -> str:
    x = trace.layers[n.layer]
    rel = x.path[len(group) + 1 :] if x.path.startswith(group + ".") else x.path
    text = f"<B>{esc(rel)}</B> {esc(x.type)} {x.in_channels}→{x.out_channels}"
    size = "x".join(map(str, x.in_size)) if x.in_size else ""
    image = 1
    for d in col.size.split("x"):
        image *= int(d) if d.isdigit() else 1
    if x.tokens is not None and x.tokens != image:
        text += f" · {x.tokens} tok"
    elif size and size != col.size:
        text += f" · {size}"
    if x.kernel is not None and max(x.kernel) > 1:
        text += f" k{x.kernel[0]}" + (f"/{x.stride[0]}" if x.stride and max(x.stride) > 1 else "")
    if is_free(x):  # an attention's matmuls or a fixed-kernel conv: a step with no tensors of its own
        text += " (matmuls)" if x.type in ATTENTION_TYPES else " (fixed kernel)"
    elif n.role == "holder":
        text += " (own tensors)"
    for note in n.notes:
        color = TEMB_COLOR if n.role == "temb" else SKIP_COLOR
        text += f'<BR/><FONT POINT-SIZE="7" COLOR="{color}">{esc(note)}</FONT>'
    return f"<{text}>"


def _node(g: Any, trace: Trace, n: FNode, group: str, col: Column) -> None:
    attrs: dict[str, str] = {"tooltip": n.tip or n.text}
    if n.role in ("layer", "holder", "temb"):
        attrs.update(label=_layer_label(trace, n, group, col), fillcolor=kind_color(n.kind))
        if n.role == "holder":
            attrs["style"] = "rounded,filled,dashed"
    elif n.role == "sum":
        attrs.update(label="⊕", shape="circle", width="0.22", height="0.22", fixedsize="true", fontsize="11",
                     fillcolor="#ffffff", margin="0")
    elif n.role == "cat":
        attrs.update(label=f"<<B>{esc(n.text)}</B>>", shape="box", fontcolor=SKIP_COLOR, color=SKIP_COLOR,
                     fillcolor="#f5f3ff")
    elif n.role == "tensor":
        color = CONTEXT_COLOR if n.tip == CONTEXT else "#374151"
        attrs.update(label=esc(n.text), shape="note", color=color, fontcolor=color, fillcolor="#ffffff")
    elif n.role == "failure":
        attrs.update(label=f"✗ the model fails here\n{n.tip}\n{n.text[:140]}", fillcolor=FAIL_FILL,
                     color=FAIL_COLOR, fontcolor="#7f1d1d", style="filled,bold")
    else:  # input, output
        attrs.update(label=n.text, shape="ellipse", fillcolor="#ffffff", fontsize="10")
    if n.failed:
        attrs.update(fillcolor=FAIL_FILL, color=FAIL_COLOR, penwidth="2")
    g.node(n.id, **attrs)


def _unit_title(trace: Trace, path: str, block: str) -> str:
    u = next((u for u in trace.units if u.path == path), None)
    rel = path[len(block) + 1 :] if block and path.startswith(block + ".") else path
    return rel if u is None else f"{rel} · {u.type} {u.in_channels}→{u.out_channels}"


def _add_column(g: Any, graphviz: Any, trace: Trace, flow: Flow, col: Column, k: int,
                extra: list[str]) -> None:
    """Column ``k`` in a frameless cluster that also holds its head ``h{k}`` on the top row: every such
    cluster spans the ranks from the top row down, so no two overlap and the heads' order is theirs. Without
    it dot packs a short column into the free ranks below an earlier one (the encoder's third level left of
    its second, the bottleneck left of the deepest encoder level). A column with nothing in it (no
    conditioning) draws no box: an empty cluster has no place, and its title landed on the diagram's."""
    wrap = graphviz.Digraph(name=f"cluster_w{k}")
    wrap.attr(label="", peripheries="0")
    wrap.node(f"h{k}", style="invis", label="", width="0.1", height="0.1")
    if col.groups or extra:
        _add_boxes(wrap, graphviz, trace, flow, col, k, extra)
    g.subgraph(wrap)


def _add_boxes(g: Any, graphviz: Any, trace: Trace, flow: Flow, col: Column, k: int, extra: list[str]) -> None:
    titles = dict(trace.blocks)
    members = {gp: (u, ids) for gp, u, ids in flow.groups}
    c = graphviz.Digraph(name=f"cluster_col{k}")
    c.attr(label=f"<<B>{esc(col.title)}</B>>", style="rounded", color="#d1d5db", fontsize="13", labeljust="l",
           peripheries="1")  # the frame the wrapper has not
    for nid in extra:
        _node(c, trace, flow.nodes[nid], "", col)
    runs: list[tuple[str, list[str]]] = []  # consecutive units under one block heading
    for gp in col.groups:
        u = members[gp][0]
        block = u.block if u is not None and u.block in titles else ""
        if runs and runs[-1][0] == block and block:
            runs[-1][1].append(gp)
        else:
            runs.append((block, [gp]))
    for block, gps in runs:
        outer = c
        if block and len(gps) > 1:
            outer = graphviz.Digraph(name=f"cluster_{block}")
            outer.attr(label=f"{block} · {titles[block]}", style="rounded,dashed", color="#6b7280", fontsize="11")
        for gp in gps:
            u, ids = members[gp]
            sub = graphviz.Digraph(name=f"cluster_u_{gp}")
            fill = kind_color(u.kind) if u is not None else "#ffffff"
            sub.attr(label=_unit_title(trace, gp, block if len(gps) > 1 else ""), style="rounded,filled",
                     fillcolor=_pale(fill), color="#9ca3af", fontsize="9")
            _add_unit(sub, graphviz, trace, flow, gp, ids, col)
            outer.subgraph(sub)
        if outer is not c:
            c.subgraph(outer)
    g.subgraph(c)


def _submodule(path: str, group: str) -> str:
    """``group.transformer_blocks.3`` for a layer under an indexed child of the unit, else ``""``."""
    rel = path[len(group) + 1 :].split(".") if path.startswith(group + ".") else []
    return f"{group}.{rel[0]}.{rel[1]}" if len(rel) > 2 and rel[1].isdigit() else ""


def _add_unit(sub: Any, graphviz: Any, trace: Trace, flow: Flow, gp: str, ids: list[str], col: Column) -> None:
    """The unit's nodes; the layers under an indexed child with SUB_MIN layers or more (a transformer's
    ``transformer_blocks.0``) in a cluster of their own, labelled relative to it."""
    parts: dict[str, list[str]] = {}
    for nid in ids:
        n = flow.nodes[nid]
        key = _submodule(trace.layers[n.layer].path, gp) if n.layer >= 0 else ""
        parts.setdefault(key, []).append(nid)
    for key, members in parts.items():
        if not key or len(members) < SUB_MIN:
            for nid in members:
                _node(sub, trace, flow.nodes[nid], gp, col)
            continue
        inner = graphviz.Digraph(name=f"cluster_s_{key}")
        inner.attr(label=key[len(gp) + 1 :], style="rounded,filled", fillcolor="#ffffff", color="#d1d5db",
                   fontsize="8")
        for nid in members:
            _node(inner, trace, flow.nodes[nid], key, col)
        sub.subgraph(inner)


def _pale(color: str) -> str:
    """A lighter tint of ``#rrggbb`` for a cluster's background, so its layers' fills stand out."""
    rgb = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{(v + 2 * 255) // 3:02x}" for v in rgb)


def _column_of(flow: Flow, cols: list[Column]) -> dict[str, int]:
    where = {gp: k for k, col in enumerate(cols) for gp in col.groups}
    first_enc = next((k for k, c in enumerate(cols) if c.phase != "cond"), 0)
    out: dict[str, int] = {}
    for n in flow.nodes.values():
        if n.group in where:
            out[n.id] = where[n.group]
        elif n.role == "input":
            out[n.id] = first_enc
        elif n.role in ("output", "failure"):
            out[n.id] = len(cols) - 1
        else:
            out[n.id] = 0
    return out


def _add_edges(g: Any, late: Any, flow: Flow, col_of: dict[str, int]) -> None:
    """Edges inside a column into ``g``; the long ones (between columns, skips, context), which must not
    shape the layout, into ``late`` (``g`` itself when the diagram is drawn in one pass)."""
    for e in flow.edges:
        same = col_of[e.tail] == col_of[e.head]
        if e.role == "invis":
            g.edge(e.tail, e.head, style="invis")
        elif e.role == "temb":
            g.edge(e.tail, e.head, style="dotted", color=TEMB_COLOR, arrowsize="0.4")
        elif e.role == "context":
            late.edge(e.tail, e.head, color=CONTEXT_COLOR + "99", penwidth="0.4", arrowsize="0.35",
                      constraint="false")
        elif e.role in ("skip", "aside"):
            skip = e.role == "skip"
            late.edge(e.tail, e.head, xlabel=e.label, color=SKIP_COLOR, fontcolor=SKIP_COLOR,
                      style="dashed" if skip else "dotted", penwidth="1.4" if skip else "1", constraint="false",
                      **({"id": e.id} if e.id else {}))
        elif same:
            g.edge(e.tail, e.head)
        else:  # from one column into the next: the sampler's output, the bottleneck's input
            late.edge(e.tail, e.head, constraint="false", color="#111827", penwidth="1.4")


def _anchor(g: Any, flow: Flow, cols: list[Column], col_of: dict[str, int]) -> None:
    """The top row orders the columns; each column's nodes that nothing above them in the column feeds
    hang from it at their band's rank (weight 0: a floor, not a pull)."""
    heads = ["legend", "h_band", *[f"h{k}" for k in range(len(cols))]]
    with g.subgraph() as s:  # the heads themselves are declared in their clusters
        s.attr(rank="same")
        for h in heads:
            s.node(h)
    for a, b in pairwise(heads):
        g.edge(a, b, style="invis")
    inner = [e for e in flow.edges if e.role not in ("context", "skip", "aside") and col_of[e.tail] == col_of[e.head]]
    fed = {e.head for e in inner}
    prev: dict[int, str] = {}
    for nid in _roots_first(flow, inner, fed):
        k = col_of[nid]
        if k not in prev:  # the column's first node: at its band's rank, one invisible chain per column
            g.edge(f"h{k}", nid, style="invis", weight="0", minlen=str(1 + cols[k].band * BAND_STEP))
        elif nid not in fed:  # fed from elsewhere (the context, the last column): beside its predecessor
            g.edge(prev[k], nid, style="invis", minlen="0")
        prev[k] = nid


def _roots_first(flow: Flow, inner: list[Any], fed: set[str]) -> list[str]:
    """The nodes in execution order, except that a root (a named tensor: ``time_proj``, a pooling with no
    layer of its own) comes just before the first node it feeds in its column. It is added to the flow when
    that node reads it, so after it: chained after its own consumer, it made a cycle dot broke by turning
    the edge upside down (ResEnc's ``skip.1.conv`` above its column, ``time_proj`` below ``linear_1``)."""
    roots: dict[str, list[str]] = {}
    for e in inner:
        if e.tail not in fed:
            roots.setdefault(e.head, []).append(e.tail)
    order: list[str] = []
    seen: set[str] = set()
    for nid in flow.nodes:
        for r in [*roots.get(nid, []), nid]:
            if r not in seen:
                seen.add(r)
                order.append(r)
    return order


def _add_bands(g: Any, graphviz: Any, bands: list[str]) -> None:
    """The legend and the bands' sizes left of the columns, in a frameless cluster of their own like each
    column's: beside clusters, a loose node is placed wherever mincross likes (the legend went right)."""
    wrap = graphviz.Digraph(name="cluster_wband")
    wrap.attr(label="", peripheries="0")
    wrap.node("legend", legend(flow=True), shape="plaintext", style="", fontsize="9")
    wrap.node("h_band", style="invis", label="", width="0.1", height="0.1")
    for b, label in enumerate(bands):
        if not label:
            continue
        wrap.node(f"band{b}", f"<<B>{esc(label)}</B>>", shape="plaintext", style="", fontsize="14",
                  fontcolor="#6b7280")
        wrap.edge("h_band", f"band{b}", style="invis", minlen=str(1 + b * BAND_STEP))
    g.subgraph(wrap)


def flow_graph(trace: Trace, title: str, two_pass: bool = False) -> tuple[Any, Flow, list[str]]:
    """The layer diagram as a ``graphviz.Digraph``, the flow it draws, and (``two_pass``) the DOT
    statements of the long edges left out of it: to be added once dot has placed the nodes (see
    ``graph.py``), so they cost no width. Without ``two_pass`` the Digraph has every edge."""
    import graphviz  # lazily: ``import unetviz`` stays light

    flow = build_flow(trace)
    cols, bands = columns(trace, flow)
    col_of = _column_of(flow, cols)
    g = graphviz.Digraph(name=trace.preset or trace.model)
    g.attr(rankdir="TB", newrank="true", nodesep="0.12", ranksep="0.16", fontname=FONT, fontsize="16",
           labelloc="t", forcelabels="true", label=title,
           splines="line")
    g.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="9", margin="0.05,0.02",
           height="0.2", penwidth="0.7")
    g.attr("edge", color="#4b5563", arrowsize="0.5", penwidth="0.8", fontname=FONT, fontsize="9")
    grouped = {gp for c in cols for gp in c.groups}
    loose = [n.id for n in flow.nodes.values() if n.group not in grouped]
    _add_bands(g, graphviz, bands)
    for k, col in enumerate(cols):
        extra = [nid for nid in loose if col_of[nid] == k]
        _add_column(g, graphviz, trace, flow, col, k, extra)
    late = graphviz.Digraph() if two_pass else g
    _add_edges(g, late, flow, col_of)
    _anchor(g, flow, cols, col_of)
    return g, flow, list(late.body) if two_pass else []
