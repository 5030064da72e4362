"""`unetviz graph --detail layers`, read back from Graphviz's own drawing: the columns follow the U (the
encoder's levels left to right in execution order, the bottleneck, the decoder's levels climbing back on
the right) and nothing is printed over the title."""

from __future__ import annotations

import json
import shutil
from itertools import pairwise
from typing import Any

import pytest

import unetviz
from unetviz.render.graph.bands import columns
from unetviz.render.graph.draw import _build, _two_pass
from unetviz.render.graph.flow import build_flow
from unetviz.render.graph.flowdot import _column_of

pytestmark = pytest.mark.skipif(shutil.which("dot") is None or shutil.which("neato") is None,
                                reason="Graphviz's `dot` and `neato` are not installed")

# 3-D and 2-D segmentation nets (no conditioning column: the empty one drew its title over the diagram's),
# and a text-to-image U-Net with one
PRESETS = ("nnunet-lung-3d-fullres", "nnunet-lung-2d", "monai-spleen-ct", "nnunet-lung-resenc-m", "sd15")

Box = tuple[float, float, float, float]


@pytest.fixture(scope="module")
def drawn() -> dict[str, tuple[unetviz.Trace, dict[str, Any]]]:
    """Each preset's trace and the layout the PNG is drawn from: dot's placement, the long edges added by
    ``neato -n2`` (the two passes ``write_graph`` runs), as ``-Tjson``."""
    out = {}
    for p in PRESETS:
        t = unetviz.trace(p)
        g, _, _, late = _build(t, "layers", two_pass=True)
        out[p] = (t, json.loads(_two_pass(g, late, "json")))
    return out


def _bb(obj: dict[str, Any]) -> Box:
    x0, y0, x1, y1 = (float(v) for v in obj["bb"].split(","))
    return x0, y0, x1, y1


def _texts(obj: dict[str, Any]) -> list[tuple[str, Box]]:
    """(text, box) of every text op ``obj`` draws (node and cluster labels, edge labels and xlabels)."""
    found = []
    for key, ops in obj.items():
        if not key.endswith("draw_"):
            continue
        size = 14.0
        for op in ops:
            size = op.get("size", size)
            if op["op"] != "T" or not op["text"].strip():
                continue
            (x, y), w = op["pt"], op["width"]
            left = {"c": x - w / 2, "l": x, "r": x - w}[op["align"]]
            found.append((op["text"], (left, y - 0.25 * size, left + w, y + 0.8 * size)))  # baseline y, pt up
    return found


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("preset", PRESETS)
def test_columns_run_left_to_right_in_the_order_of_the_u(drawn: dict[str, tuple[unetviz.Trace, dict[str, Any]]],
                                                         preset: str) -> None:
    t, layout = drawn[preset]
    cols, _ = columns(t, build_flow(t))
    boxes = {o["name"]: _bb(o) for o in layout["objects"] if o.get("name", "").startswith("cluster_col")}
    order = [k for k, c in enumerate(cols) if c.groups]
    assert all(f"cluster_col{k}" in boxes for k in order)
    phases = [cols[k].phase for k in order]
    # the U: down levels in execution order, the bottleneck, up levels mirrored
    assert phases == sorted(phases, key=["cond", "enc", "mid", "dec"].index), phases
    assert [cols[k].band for k in order if cols[k].phase == "enc"] == sorted(
        cols[k].band for k in order if cols[k].phase == "enc")
    assert [cols[k].band for k in order if cols[k].phase == "dec"] == sorted(
        (cols[k].band for k in order if cols[k].phase == "dec"), reverse=True)
    for a, b in pairwise(order):  # each column wholly left of the next: none packed below
        assert boxes[f"cluster_col{a}"][2] < boxes[f"cluster_col{b}"][0], (cols[a].title, cols[b].title)
    legend = next(o for o in layout["objects"] if o.get("name") == "legend")
    assert float(legend["pos"].split(",")[0]) < boxes[f"cluster_col{order[0]}"][0]


@pytest.mark.parametrize("preset", PRESETS)
def test_no_label_is_printed_over_the_title(drawn: dict[str, tuple[unetviz.Trace, dict[str, Any]]],
                                            preset: str) -> None:
    _, layout = drawn[preset]
    (title, box), = _texts(layout)
    assert title.startswith(f"{preset} (") and "params" in title
    clash = [(o.get("name", o.get("_gvid")), text) for o in [*layout.get("objects", []), *layout.get("edges", [])]
             for text, other in _texts(o) if _overlap(box, other)]
    assert not clash


@pytest.mark.parametrize("preset", PRESETS)
def test_every_edge_inside_a_column_runs_downwards(drawn: dict[str, tuple[unetviz.Trace, dict[str, Any]]],
                                                   preset: str) -> None:
    # a root (a named tensor, a pooling with no layer of its own) was chained below the node it feeds: dot
    # broke the cycle by turning the edge over (ResEnc's skip.1.conv above its column, time_proj below linear_1)
    t, layout = drawn[preset]
    flow = build_flow(t)
    col = _column_of(flow, columns(t, flow)[0])
    y = {o["name"]: float(o["pos"].split(",")[1]) for o in layout["objects"] if "pos" in o}
    inner = [e for e in flow.edges if e.role in ("flow", "temb") and col[e.tail] == col[e.head]]
    assert len(inner) > 40
    assert not [(flow.nodes[e.tail].text, flow.nodes[e.head].text) for e in inner if y[e.tail] <= y[e.head]]


def test_a_residual_block_ends_in_the_sum_of_its_two_paths(drawn: dict[str, tuple[unetviz.Trace, dict[str, Any]]]) \
        -> None:
    # ResEnc's BasicBlockD: nonlin2 (no parameters) reads conv2.norm + skip.1.norm; the next block read
    # conv2.norm alone, and the skip path ended nowhere
    t, _ = drawn["nnunet-lung-resenc-m"]
    flow = build_flow(t)
    at = {x.path: f"L{i}" for i, x in enumerate(t.layers)}
    blocks = [p[: -len(".skip.1.norm")] for p in at if p.endswith(".skip.1.norm")]
    assert len(blocks) == 4
    for b in blocks:
        nxt = next(t.layers[i].path for i in range(len(t.layers)) if t.layers[i].source == f"{b}.nonlin2")
        (head,) = [e.tail for e in flow.edges if e.head == at[nxt]]
        assert flow.nodes[head].role == "sum"
        assert {e.tail for e in flow.edges if e.head == head} == {at[f"{b}.conv2.norm"], at[f"{b}.skip.1.norm"]}
