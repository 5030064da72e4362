"""``unetviz graph CONTROLNET --pair UNET``: the U-Net's U with the ControlNet's residuals beside its encoder.

The U is ``graph_units.u_graph`` unchanged. Left of the encoder runs one column: the ControlNet (its hint
and conditioning embedding) on top, then one node per zero conv (``controlnet_down_blocks.N``, channels and
size), each on the rank of the U-Net node that pushed skip #N, and ``controlnet_mid_block`` on the
bottleneck's rank. One dashed edge per residual, labelled ``+ residual N``, ends at the node that pushed the
skip it is added to (the mid residual at the mid block's last node). A residual that does not fit that
tensor, or a skip with no residual, is drawn in red with both shapes.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.errors import UnetvizError, bad_value
from ...core.records import Trace
from ...core.records import fmt_size as fmt
from .draw import FORMATS, _pipe
from .layout import Layout
from .style import FAIL_COLOR, FAIL_FILL, esc, legend
from .units import u_graph

if TYPE_CHECKING:
    from ...analysis.controlnet_pair import Landing, Pairing

RESIDUAL_COLOR = "#ea580c"
"""The residual edges: orange, apart from the skips' violet and the failures' red."""
RESIDUAL_FILL = "#ffedd5"
PAIR_DETAILS = ("blocks", "units")
CN_ID = "cn"


def residual_id(x: Landing) -> str:
    """The node id of a residual: ``res3`` for ``controlnet_down_blocks.3``, ``resmid`` for the mid one."""
    return "resmid" if x.index is None else f"res{x.index}"


def _shape(ch: int | None, size: Any) -> str:
    return "-" if ch is None else f"{ch}ch {fmt(size)}"


def _label(x: Landing) -> str:
    name = x.residual or f"(no residual for skip #{x.index})"
    rows = [f"<B>{esc(name)}</B>"]
    if x.channels is not None:
        rows.append(esc(_shape(x.channels, x.size)))
    if not x.ok:
        rows.append(f'<FONT COLOR="{FAIL_COLOR}"><B>✗ {esc(x.target)}: {esc(_shape(x.target_channels, x.target_size))}'
                    "</B></FONT>")
        words = x.problem.rsplit(": ", 1)[-1] if x.channels is not None and x.target_channels is not None else ""
        if words:
            rows.append(f'<FONT COLOR="{FAIL_COLOR}" POINT-SIZE="8">{esc(words)}</FONT>')
    return "<" + "<BR/>".join(rows) + ">"


def _targets(layout: Layout) -> dict[int | None, str]:
    """Skip index (None: the mid residual) -> the node id a residual on it ends at."""
    out: dict[int | None, str] = {link.index: link.tail for link in layout.links if link.index >= 0}
    mids = [it for it in layout.items if it.block == "mid_block" or it.path == "mid_block"]
    if mids:
        out[None] = mids[-1].id
    elif layout.mid:
        out[None] = layout.mid[-1].id
    elif layout.enc:
        out[None] = layout.enc[-1].id
    return out


def _row_of(layout: Layout, node: str) -> list[str] | None:
    return next((row for row in layout.rows if node in row), None)


def _residual_node(g: Any, xs: list[Landing]) -> tuple[str, list[str]]:
    """One node per residual; residuals that end at one node (blocks detail) share one table, a row each."""
    if len(xs) == 1:
        x = xs[0]
        nid = residual_id(x)
        g.node(nid, _label(x), shape="box", style="rounded,filled,dashed" if x.channels is None else "rounded,filled",
               fillcolor=RESIDUAL_FILL if x.ok else FAIL_FILL, color=RESIDUAL_COLOR if x.ok else FAIL_COLOR,
               penwidth="1.2" if x.ok else "2", fontsize="9", group="controlnet", tooltip=_tip(x))
        return nid, [f"{nid}:e"]
    nid = f"{residual_id(xs[0])}_{residual_id(xs[-1])}"
    cells = "".join(f'<TR><TD PORT="{residual_id(x)}" BGCOLOR="{RESIDUAL_FILL if x.ok else FAIL_FILL}"'
                    f' COLOR="{RESIDUAL_COLOR if x.ok else FAIL_COLOR}">{_label(x)[1:-1]}</TD></TR>' for x in xs)
    g.node(nid, f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="6" STYLE="ROUNDED">{cells}</TABLE>>',
           shape="plaintext", style="", fontsize="9", group="controlnet", tooltip="; ".join(map(_tip, xs)))
    return nid, [f"{nid}:{residual_id(x)}:e" for x in xs]


def _tip(x: Landing) -> str:
    return f"{x.residual or '(none)'} -> {x.target}" + ("" if x.ok else f": {x.problem}")


def _cn_label(cn: Trace, pairing: Pairing) -> str:
    emb = [x for x in cn.layers if x.path.startswith("controlnet_cond_embedding")]
    rows = [f"<B>ControlNet {esc(pairing.controlnet)}</B>", f"{cn.params:,} params"]
    if emb:
        a, z = emb[0], emb[-1]
        rows.append(esc(f"hint {a.in_channels}ch {fmt(a.in_size)} → {z.out_channels}ch {fmt(z.out_size)}"))
    convs = sum(1 for x in pairing.landings if x.index is not None and x.channels is not None)
    rows.append(esc(f"a copy of the encoder + mid block, {convs} down zero convs"))
    verdict = "fits" if pairing.ok else "does NOT fit"
    rows.append(f'<FONT COLOR="{"#15803d" if pairing.ok else FAIL_COLOR}"><B>{verdict} {esc(pairing.unet)}</B></FONT>')
    return "<" + "<BR/>".join(rows) + ">"


def _title(pairing: Pairing, unet: Trace, nodes: int, detail: str) -> str:
    name = unet.preset or unet.model
    head = (f"{pairing.controlnet} beside {name}: one edge per residual to the skip it is added to"
            f" · latent {fmt(pairing.size)} · {nodes} {detail} · {len(unet.skips)} skips")
    tail = pairing.message if pairing.ok else f"✗ {pairing.message}"
    return head + "\n" + tail


def _build(pairing: Pairing, unet: Trace, cn: Trace, detail: str) -> tuple[Any, int, int]:
    """The Digraph, its number of U nodes and of residual edges drawn."""
    if detail not in PAIR_DETAILS:
        raise bad_value("graph --pair: --detail", detail, PAIR_DETAILS)
    g, layout = u_graph(unet, detail, lambda n: _title(pairing, unet, n, detail))
    g.attr(nodesep="0.35")
    key = (f'<TR><TD><FONT COLOR="{RESIDUAL_COLOR}">- - ▷</FONT></TD><TD ALIGN="LEFT">+ ControlNet residual N</TD></TR>'
           f'<TR><TD><FONT COLOR="{FAIL_COLOR}">- - ▷</FONT></TD><TD ALIGN="LEFT">residual that does not fit</TD></TR>')
    g.node("legend", legend().replace("</TABLE>>", key + "</TABLE>>"), shape="plaintext", style="", fontsize="9")
    g.node(CN_ID, _cn_label(cn, pairing), shape="box", style="rounded,filled,bold", group="controlnet",
           fillcolor=RESIDUAL_FILL if pairing.ok else FAIL_FILL, color=RESIDUAL_COLOR if pairing.ok else FAIL_COLOR)
    with g.subgraph() as s:  # the ControlNet sits beside the U-Net's input, left of it
        s.attr(rank="same")
        s.node(CN_ID)
        s.node("input")
    g.edge(CN_ID, "input", style="invis")
    targets = _targets(layout)
    groups: dict[str, list[Landing]] = {}  # residuals by the node they end at (several on one block)
    for x in pairing.landings:
        groups.setdefault(targets.get(x.index) or residual_id(x), []).append(x)
    ids = {it.id for it in layout.items}
    column = [CN_ID]
    edges = 0
    for key, xs in groups.items():
        nid, tails = _residual_node(g, xs)
        column.append(nid)
        if key not in ids:
            continue  # no skip #N on the U-Net: the residual has nowhere to go
        row = _row_of(layout, key)
        with g.subgraph() as s:
            s.attr(rank="same")
            s.node(nid)
            s.node(key)
        if row is not None and row[0] != key:  # keep the residual left of the whole row, not between its nodes
            g.edge(nid, row[0], style="invis", weight="2")
        for x, tail in zip(xs, tails, strict=True):
            color = RESIDUAL_COLOR if x.ok else FAIL_COLOR
            what = "mid" if x.index is None else str(x.index)
            label = f"+ residual {what}" if x.ok else f"✗ residual {what}"
            g.edge(tail, key, id=f"residual{what}", xlabel=label, color=color, fontcolor=color, style="dashed",
                   penwidth="1.6", arrowhead="empty", headport="w" if row is None or row[0] == key else "n",
                   weight="4")
            edges += 1
    for a, b in pairwise(column):  # one column, top to bottom
        g.edge(a, b, style="invis", weight="10")
    return g, len(layout.items), edges


def to_graphviz_pair(pairing: Pairing, unet_trace: Trace, cn_trace: Trace, detail: str = "units") -> Any:
    """A ``graphviz.Digraph``: the U-Net's U (``units`` or ``blocks``) with the ControlNet's residuals beside
    the encoder, one dashed edge per residual to the node that pushed the skip it is added to."""
    return _build(pairing, unet_trace, cn_trace, detail)[0]


def write_graph_pair(pairing: Pairing, unet_trace: Trace, cn_trace: Trace, out: Path, detail: str = "units") -> str:
    """Write the pair diagram to ``out`` (.svg/.png/.pdf through Graphviz's ``dot``, or .dot source only)."""
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise bad_value("graph: --out extension", ext or out.name, FORMATS)
    g, nodes, edges = _build(pairing, unet_trace, cn_trace, detail)
    data = g.source.encode("utf-8") if ext == ".dot" else _pipe(g, ext[1:], [])
    try:
        out.write_bytes(data)
    except OSError as e:
        raise UnetvizError(f"graph: --out {out}: cannot write: {e.strerror or e}") from None
    kb = max(1, round(out.stat().st_size / 1024))
    verdict = "fits" if pairing.ok else "MISMATCH"
    return f"wrote {out} ({nodes} {detail}, {edges} residual edges, {pairing.controlnet} {verdict}, {kb} KB)"
