"""`unetviz graph`: U-shaped Graphviz diagrams with one labelled skip edge per skip-stack entry."""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

import unetviz
from unetviz import UnetvizError
from unetviz.core.kinds import KIND_NAMES, KINDS
from unetviz.core.records import fmt_size as fmt
from unetviz.core.records import within
from unetviz.render.graph.draw import DETAILS, fit_width, notebook_svg, to_graphviz, write_graph
from unetviz.render.graph.flow import CONTEXT, Flow, build_flow
from unetviz.render.graph.layout import build_layout
from unetviz.render.graph.style import legend

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` binary is not installed")


def skip_label(s: unetviz.Skip) -> str:
    return f"#{s.index} {s.channels}ch {fmt(s.size)}"


@pytest.fixture(scope="module")
def traces() -> dict[str, unetviz.Trace]:
    return {p: unetviz.trace(p) for p in ("sd15", "sdxl")}


@pytest.mark.parametrize(("preset", "count"), [("sd15", 12), ("sdxl", 9)])
def test_one_labelled_skip_edge_per_stack_entry_in_dot(traces: dict[str, unetviz.Trace], preset: str,
                                                      count: int) -> None:
    t = traces[preset]
    assert len(t.skips) == count
    src = to_graphviz(t).source
    edges = [line for line in src.splitlines() if "->" in line and "id=skip" in line]
    assert len(edges) == count
    for s in t.skips:
        mine = [e for e in edges if f"id=skip{s.index} " in e or e.rstrip().endswith(f"id=skip{s.index}]")]
        assert len(mine) == 1, s
        assert f'label="{skip_label(s)}"' in mine[0]
        assert src.count(f'"{skip_label(s)}"') == 1


@needs_dot
@pytest.mark.parametrize(("preset", "count"), [("sd15", 12), ("sdxl", 9)])
def test_one_labelled_skip_edge_per_stack_entry_in_svg(traces: dict[str, unetviz.Trace], tmp_path: Path,
                                                      preset: str, count: int) -> None:
    t = traces[preset]
    out = tmp_path / f"{preset}.svg"
    msg = write_graph(t, out)
    assert msg.startswith(f"wrote {out} (") and f"{count} skip edges" in msg
    svg = out.read_text(encoding="utf-8")
    assert len(re.findall(r'<g id="skip\d+" class="edge">', svg)) == count
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for s in t.skips:
        assert texts.count(skip_label(s)) == 1, s


@pytest.mark.parametrize("preset", ["sd15", "sdxl"])
def test_every_layer_path_at_layers_detail(traces: dict[str, unetviz.Trace], preset: str) -> None:
    t = traces[preset]
    src = to_graphviz(t, detail="layers").source
    for layer in t.layers:  # labelled relative to its unit; the full path is the tooltip
        assert f'tooltip="{layer.path}: ' in src, layer.path
    # a cluster per block heading (or, for a one-unit block, the unit's own cluster)
    for block, _ in t.blocks:
        assert f"cluster_{block}" in src, block


@needs_dot
def test_every_layer_path_in_layers_svg(traces: dict[str, unetviz.Trace], tmp_path: Path) -> None:
    t = traces["sd15"]
    out = tmp_path / "sd15-layers.svg"
    write_graph(t, out, detail="layers")
    svg = out.read_text(encoding="utf-8")
    for layer in t.layers:
        assert f'xlink:title="{layer.path}: ' in svg, layer.path
    assert len(re.findall(r'<g id="skip\d+" class="edge">', svg)) == len(t.skips)


def png_size_and_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed scanlines of a PNG, with zlib only (no Pillow needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@needs_dot
@pytest.mark.parametrize("preset", ["sd15", "sdxl"])
def test_png_fits_one_screen_and_is_not_blank(traces: dict[str, unetviz.Trace], tmp_path: Path,
                                              preset: str) -> None:
    out = tmp_path / f"{preset}.png"
    write_graph(traces[preset], out)
    width, height, raw = png_size_and_pixels(out.read_bytes())
    assert 800 <= width <= 4000 and 600 <= height <= 4000, (width, height)
    # the U is wider than tall-ish, not torchview's tall tangle: one screen at a modest zoom
    assert max(width, height) / min(width, height) < 2.0, (width, height)
    rows = len(raw) // height
    colours = {raw[i : i + 3] for r in range(0, height, 7) for i in range(r * rows + 1, (r + 1) * rows - 3, 29)}
    assert len(colours) > 20  # text, fills of several kinds, skip edges: far from a blank page


def test_bad_extension_and_detail_are_one_line_errors(traces: dict[str, unetviz.Trace], tmp_path: Path) -> None:
    with pytest.raises(UnetvizError) as e:
        write_graph(traces["sd15"], tmp_path / "x.jpg")
    assert "'.jpg'" in str(e.value) and ".svg" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UnetvizError) as e:
        write_graph(traces["sd15"], tmp_path / "x.svg", detail="unit")
    assert "'units'" in str(e.value) and "'blocks'" in str(e.value) and "'layers'" in str(e.value)
    with pytest.raises(UnetvizError):
        to_graphviz(traces["sd15"], detail="everything")
    assert not list(tmp_path.iterdir())
    with pytest.raises(UnetvizError, match="cannot write"):
        write_graph(traces["sd15"], tmp_path / "missing" / "x.dot")


def test_dot_source_works_without_the_dot_binary(traces: dict[str, unetviz.Trace], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)  # graph.py looks it up at call time
    with pytest.raises(UnetvizError) as e:
        write_graph(traces["sd15"], tmp_path / "x.svg")
    assert "`dot` is not installed" in str(e.value) and "apt-get install graphviz" in str(e.value)
    assert "--out FILE.dot" in str(e.value)
    msg = write_graph(traces["sd15"], tmp_path / "x.dot")
    assert msg.startswith(f"wrote {tmp_path / 'x.dot'} (48 units, 12 skip edges,")
    assert (tmp_path / "x.dot").read_text(encoding="utf-8").startswith("digraph")


@pytest.mark.parametrize("preset", list(unetviz.PRESETS))
def test_u_layout_for_every_preset(preset: str) -> None:
    """Encoder left/down, decoder right/up, and every skip's two ends on one rank (a horizontal edge)."""
    t = unetviz.trace(preset)
    if not any(s.to is not None for s in t.skips):
        pytest.skip(f"{preset} has no decoder (a ControlNet pushes residuals that the paired U-Net adds)")
    for detail in ("blocks", "units"):
        lay = build_layout(t, detail)
        enc, dec = {i.id for i in lay.enc}, {i.id for i in lay.dec}
        popped = [s for s in t.skips if s.to is not None]
        links = [x for x in lay.links if x.index >= 0 and x.head is not None]
        assert len(links) == len(popped)
        # a block pushes several skips to one decoder block: one pair per block, the rest float
        if detail == "units":
            assert len(lay.pairs) == len(popped)
        else:
            assert lay.pairs and set(lay.pairs) <= {(x.tail, x.head) for x in links}
        assert all(a in enc and b in dec for a, b in lay.pairs)
        rank = {n: k for k, row in enumerate(lay.rows) for n in row}
        assert all(rank[a] == rank[b] for a, b in lay.pairs)
        assert len(rank) == len(lay.items)  # every node in exactly one row
        assert all(len(r) <= 6 for r in lay.rows if not set(r) & {i.id for i in lay.mid})
    assert "cat " in to_graphviz(t).source  # each concat's sum is shown


def test_conditioning_is_one_note_not_many_edges(traces: dict[str, unetviz.Trace]) -> None:
    src = to_graphviz(traces["sdxl"]).source
    assert len(re.findall(r"^\s*cond \[", src, re.M)) == 1
    touching = re.findall(r"^\s*(?:cond -> \w+|\w+ -> cond)\b.*$", src, re.M)
    assert len(touching) == 2 and all("invis" in e for e in touching)  # only the top row's ordering
    assert "time_embedding: TimestepEmbedding 320→1280" in src and "add_embedding" in src
    assert "17 ResnetBlock2D" in src and "70 cross-attentions" in src
    assert "cat 1280 + 640 = 1920" in src


def test_a_failing_trace_shows_the_failure_in_red() -> None:
    t = unetviz.trace("unet2d-attn-64", size=2)
    assert t.error is not None
    src = to_graphviz(t).source
    assert "the model fails here" in src and "#dc2626" in src
    assert f"at {t.error.at}" in src
    assert "never popped" in src  # the skips left on the stack are named on their source nodes
    assert "output" not in re.findall(r"^\s*(\w+) \[", src, re.M)


@needs_dot
def test_failure_without_any_unit_still_renders(tmp_path: Path) -> None:
    t = unetviz.trace("ddpm-lucidrains", size=2)
    assert t.error is not None
    msg = write_graph(t, tmp_path / "fail.svg")
    assert "the model fails here" in (tmp_path / "fail.svg").read_text(encoding="utf-8")
    assert msg.startswith(f"wrote {tmp_path / 'fail.svg'}")
    write_graph(t, tmp_path / "fail-layers.svg", detail="layers")
    assert "the model fails here" in (tmp_path / "fail-layers.svg").read_text(encoding="utf-8")


# -- the layer diagram draws data flow ----------------------------------------------------------------


def edges_by_path(t: unetviz.Trace, flow: Flow) -> set[tuple[str, str]]:
    """(tail, head) of every drawn edge, layers named by path, other nodes by their id."""
    def name(nid: str) -> str:
        n = flow.nodes[nid]
        return t.layers[n.layer].path if n.layer >= 0 else nid
    return {(name(e.tail), name(e.head)) for e in flow.edges if e.role != "invis"}


def test_layer_edges_follow_the_recorded_sources(traces: dict[str, unetviz.Trace]) -> None:
    t = traces["sd15"]
    flow = build_flow(t)
    edges = edges_by_path(t, flow)
    res = "down_blocks.1.resnets.0"
    producer = next(x.source for x in t.layers if x.path == f"{res}.norm1")
    assert (producer, f"{res}.conv_shortcut") in edges  # the shortcut reads the resnet's input
    assert (f"{res}.conv2", f"{res}.conv_shortcut") not in edges  # not execution order
    attn = "down_blocks.1.attentions.0.transformer_blocks.0"
    for kv in ("to_k", "to_v"):
        assert ("ctx", f"{attn}.attn2.{kv}") in edges
        assert (f"{attn}.attn2.to_q", f"{attn}.attn2.{kv}") not in edges
    for qkv in ("to_q", "to_k", "to_v"):  # self-attention: one normed input, read three times
        assert (f"{attn}.norm1", f"{attn}.attn1.{qkv}") in edges
        assert (f"{attn}.attn1.{qkv}", f"{attn}.attn1.to_out.0") in edges
    assert (f"{res}.conv1", f"{res}.time_emb_proj") not in edges
    # the context is one node; time projections get no edge from the embedding
    assert sum(n.role == "tensor" and n.tip == CONTEXT for n in flow.nodes.values()) == 1
    assert not any(h.endswith("time_emb_proj") for _, h in edges)


@pytest.mark.parametrize("preset", list(unetviz.PRESETS))
def test_every_skip_edge_ends_at_its_concat(preset: str) -> None:
    t = unetviz.trace(preset)
    flow = build_flow(t)
    heads = {e.id: flow.nodes[e.head] for e in flow.edges if e.role == "skip"}
    popped = {op.skip for c in t.concats for op in c.inputs if op.skip is not None}
    assert set(heads) == {f"skip{i}" for i in popped}
    for c in t.concats:
        for op in c.inputs:
            if op.skip is not None:
                head = heads[f"skip{op.skip}"]
                assert head.role == "cat" and head.tip.startswith(c.consumer + ":"), (op, head)
    # every node but the input and the context is reached by an edge, every layer sits in a unit group
    reached = {e.head for e in flow.edges}
    assert all(n.id in reached or n.role in ("input", "tensor", "temb", "holder") for n in flow.nodes.values())


def test_lucidrains_skip_lands_on_the_concat_not_the_time_mlp() -> None:
    t = unetviz.trace("ddpm-lucidrains")
    flow = build_flow(t)
    for e in flow.edges:
        if e.role in ("skip", "aside"):
            assert flow.nodes[e.head].role == "cat"
    edges = edges_by_path(t, flow)
    cat = next(e.head for e in flow.edges if e.id == "skip7")
    assert (cat, "ups.0.0.block1.proj") in edges and (cat, "ups.0.0.res_conv") in edges
    assert not any(h == "ups.0.0.mlp.1" for _, h in edges if _ == cat)


def test_layer_diagram_bands_step_down_and_up(traces: dict[str, unetviz.Trace]) -> None:
    from unetviz.render.graph.bands import columns

    t = traces["sd15"]
    cols, bands = columns(t, build_flow(t))
    assert bands == ["64x64", "32x32", "16x16", "8x8", "8x8 bottleneck"]
    assert [c.band for c in cols] == [0, 0, 1, 2, 3, 4, 3, 2, 1, 0]
    assert [c.phase for c in cols] == ["cond", *["enc"] * 4, "mid", *["dec"] * 4]
    src = to_graphviz(t, detail="layers").source
    assert all(f"<B>{b}</B>" in src for b in bands)


def test_blocks_detail_has_one_node_per_block(traces: dict[str, unetviz.Trace]) -> None:
    for t in (*traces.values(), unetviz.trace("ddpm-lucidrains")):
        lay = build_layout(t, "blocks")
        paths = [it.path for it in lay.items]
        headings = [b for b, _ in t.blocks]
        assert [p for p in paths if p in headings] == headings
        # the rest are the head and tail units under no heading (conv_in, conv_norm_out, conv_out)
        units = {u.path: u for u in t.units}
        assert all(p in units and units[p].block not in headings for p in paths if p not in headings)
        assert sum(it.params for it in lay.items) + sum(it.params for it in lay.cond) == t.params
    assert [it.path for it in build_layout(traces["sd15"], "blocks").items][-2:] == ["conv_norm_out", "conv_out"]


def test_every_kind_has_a_colour_in_the_legend() -> None:
    assert DETAILS == ("blocks", "units", "layers")
    for detail_legend in (legend(), legend(flow=True)):
        for kind in KIND_NAMES:
            assert KINDS[kind].color.startswith("#"), kind
            assert f'BGCOLOR="{KINDS[kind].color}"' in detail_legend and KINDS[kind].label in detail_legend


def test_notebook_svg_scales_to_the_width() -> None:
    svg = '<svg width="1200pt" height="300pt"\n viewBox="0.00 0.00 1200.00 300.00" xmlns="x">'
    out = notebook_svg(svg)
    assert 'width="100%"' in out and "max-width:1200pt" in out and 'height="300pt"' not in out
    assert 'viewBox="0.00 0.00 1200.00 300.00"' in out


@needs_dot
def test_fit_width_keeps_the_digraph(traces: dict[str, unetviz.Trace]) -> None:
    g = fit_width(to_graphviz(traces["sd15"], detail="blocks"))
    assert g.source.startswith("digraph")
    bundle = g._repr_mimebundle_()
    assert 'width="100%"' in bundle["image/svg+xml"]


@needs_dot
@pytest.mark.parametrize("preset", ["sd15", "ddpm-lucidrains"])
def test_layer_png_is_wider_than_tall(traces: dict[str, unetviz.Trace], tmp_path: Path, preset: str) -> None:
    """The U laid out left to right: no 11,000-29,000 px tall strip."""
    out = tmp_path / f"{preset}.png"
    write_graph(unetviz.trace(preset), out, detail="layers")
    width, height, _ = png_size_and_pixels(out.read_bytes())
    assert height < 6000 and width > height, (width, height)


def test_units_of_the_flow_are_the_traces(traces: dict[str, unetviz.Trace]) -> None:
    t = traces["sdxl"]
    flow = build_flow(t)
    for group, unit, ids in flow.groups:
        for nid in ids:
            n = flow.nodes[nid]
            if n.layer >= 0:
                assert within(t.layers[n.layer].path, group)
        assert unit is None or unit.path == group


def test_macs_heat_colouring_puts_the_hottest_node_in_full_red() -> None:
    from unetviz.core.quantities import layer_macs
    from unetviz.render.graph.draw import to_graphviz

    t = unetviz.trace("sd15")
    src = str(to_graphviz(t, detail="units", color="macs").source)
    hottest = max(t.units, key=lambda u: sum(layer_macs(x) for x in t.layers[u.first:u.last]))
    line = next(x for x in src.splitlines() if f"<B>{hottest.path}</B>" in x)
    assert 'fillcolor="#ff3737"' in line and "fill: MACs" in src
    # the legend is the heat scale, not the kinds' colours
    legend = next(x for x in src.splitlines() if x.lstrip().startswith("legend "))
    assert "19,365,724,160 MACs" in legend and "#ff3737" in legend and "resnet" not in legend
    with pytest.raises(unetviz.UnetvizError, match="--color"):
        to_graphviz(t, color="heat")


def _bezier(p: list[list[float]], steps: int = 24) -> list[tuple[float, float]]:
    out = []
    for i in range(0, len(p) - 3, 3):
        a, b, c, d = p[i : i + 4]
        for k in range(steps + 1):
            t = k / steps
            u = 1 - t
            out.append(tuple(u**3 * a[j] + 3 * u * u * t * b[j] + 3 * u * t * t * c[j] + t**3 * d[j]
                             for j in (0, 1)))
    return out  # type: ignore[return-value]


def struck_skip_labels(source: str) -> list[tuple[str, str]]:
    """(skip label text, id of an edge whose drawn spline runs through that text's box), from dot's own
    layout (``-Tjson``: each label's text ops with position and width, each edge's Bezier points)."""
    import json
    import subprocess

    drawn = json.loads(subprocess.run(["dot", "-Tjson"], input=source.encode(), capture_output=True,
                                      check=True).stdout)
    edges = drawn.get("edges", [])
    splines = [[pt for op in e.get("_draw_", []) if op["op"] in "bB" for pt in _bezier(op["points"])]
               for e in edges]
    found = []
    for e in edges:
        if not str(e.get("id", "")).startswith("skip"):
            continue
        size = 9.0
        for op in e.get("_ldraw_", []):
            size = op.get("size", size)
            if op["op"] != "T":
                continue
            (x, y), w = op["pt"], op["width"]
            left = {"c": x - w / 2, "l": x, "r": x - w}[op["align"]]
            box = (left - 1, y - 0.25 * size - 1, left + w + 1, y + 0.8 * size + 1)  # baseline y, pt up
            for other, pts in zip(edges, splines, strict=True):
                if any(box[0] <= px <= box[2] and box[1] <= py <= box[3] for px, py in pts):
                    found.append((op["text"], str(other.get("id", other["_gvid"]))))
    return found


@needs_dot
@pytest.mark.parametrize("detail", ["blocks", "units"])
@pytest.mark.parametrize("preset", ["sd15", "sdxl", "ddpm-lucidrains", "sd15-ldm"])
def test_no_edge_runs_through_a_skip_label(traces: dict[str, unetviz.Trace], preset: str, detail: str) -> None:
    t = traces.get(preset) or unetviz.trace(preset)
    src = to_graphviz(t, detail=detail).source
    assert not struck_skip_labels(src)
    # the check sees a label that is struck: the old drawing, twin edges with floating xlabels
    if preset == "sd15" and detail == "blocks":
        twins = src.replace('label=<<TABLE', 'xlabel=<<TABLE').replace("constraint=true dir=back", "constraint=false")
        assert struck_skip_labels(twins)


def test_skips_between_the_same_blocks_are_one_edge_with_one_label(traces: dict[str, unetviz.Trace]) -> None:
    src = to_graphviz(traces["sd15"], detail="blocks").source
    edges = [line for line in src.splitlines() if "id=skip" in line]
    assert len(edges) == 8  # 12 skips: conv_in's, then per down block one to each of two up blocks
    assert len({tuple(re.findall(r"(n\d+) -> (n\d+)", e)) for e in edges}) == 8
    for s in traces["sd15"].skips:  # each index named once, on the edge that carries it
        assert len(re.findall(rf"#{s.index}\b", "\n".join(edges))) == 1, s.index
    assert "#1, #2 320ch 64x64" in src and "#10, #11 1280ch 8x8" in src


def test_a_block_that_attends_is_coloured_as_attention(traces: dict[str, unetviz.Trace]) -> None:
    for t in traces.values():
        for it in build_layout(t, "blocks").items:
            units = [u for u in t.units if u.block == it.path]
            attends = any(u.kind in ("attention", "transformer") for u in units)
            assert (it.kind in ("attention", "transformer")) == attends, (t.preset, it.path, it.kind)
    kinds = {it.path: it.kind for it in build_layout(traces["sd15"], "blocks").items}
    assert kinds["up_blocks.1"] == kinds["down_blocks.0"] == "transformer" and kinds["up_blocks.0"] == "resnet"


# -- 3-D (volume) layer diagrams and attention that is not cross-attention (issue 20 item 5) ----------------

PLANS = Path(__file__).parent / "data/nnunet/Dataset004_Hippocampus/nnUNetPlans.json"


@pytest.fixture(scope="module")
def volume() -> unetviz.Trace:
    from unetviz.tracing import resolve_named

    return unetviz.trace(resolve_named(PLANS, "3d_fullres", None)[0])


def test_a_volume_layer_diagram_draws_only_layers_concats_and_the_ends(volume: unetviz.Trace) -> None:
    # a parameter-free step (convs.0.nonlin) is no node of its own: the norm before it feeds the next conv
    flow = build_flow(volume)
    assert {n.role for n in flow.nodes.values()} <= {"layer", "cat", "input", "output"}
    assert not [n for n in flow.nodes.values() if any(note.startswith("reads") for note in n.notes)]
    assert all(e.role != "temb" for e in flow.edges)
    conv = next(i for i, x in enumerate(volume.layers) if x.path.endswith("convs.1.conv"))
    assert [e.tail for e in flow.edges if e.head == f"L{conv}"] == [f"L{conv - 1}"]


def test_a_volume_skip_edge_starts_at_the_layer_that_pushed_it(volume: unetviz.Trace) -> None:
    flow = build_flow(volume)
    for s in volume.skips:
        tail = next(e.tail for e in flow.edges if e.id == f"skip{s.index}")
        assert within(volume.layers[int(tail[1:])].path, s.unit)
        assert volume.layers[int(tail[1:])].out_size == s.size


def test_volume_bands_name_the_real_sizes_in_order(volume: unetviz.Trace) -> None:
    from unetviz.render.graph.bands import columns

    cols, bands = columns(volume, build_flow(volume))
    sizes = [fmt(x.out_size) for x in volume.layers if x.path.endswith("convs.1.norm")][:4]
    assert bands == [*sizes[:3], f"{sizes[3]} bottleneck"]  # no empty band, the bottom named by its own size
    mid = next(c for c in cols if c.phase == "mid")
    assert mid.title == f"bottleneck · {sizes[3]}"
    assert [c.band for c in cols if c.phase == "dec"] == [2, 1, 0]


def test_window_attention_is_not_cross_attention() -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn

    class WindowAttention(nn.Module):  # type: ignore[misc,name-defined]
        """Swin's: w x w windows folded into the batch, attention inside each (16 tokens, not the 1024 pixels)."""

        def __init__(self, c: int, w: int = 4) -> None:
            super().__init__()
            self.w, self.norm, self.qkv, self.proj = w, nn.LayerNorm(c), nn.Linear(c, 3 * c), nn.Linear(c, c)

        def forward(self, x: Any) -> Any:
            b, c, h, wd = x.shape
            w = self.w
            t = x.reshape(b, c, h // w, w, wd // w, w).permute(0, 2, 4, 3, 5, 1).reshape(-1, w * w, c)
            q, k, v = self.qkv(self.norm(t)).chunk(3, dim=-1)
            a = torch.softmax(q @ k.transpose(1, 2) / c**0.5, dim=-1) @ v
            t = self.proj(a).reshape(b, h // w, wd // w, w, w, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, wd)
            return x + t

    class Tiny(nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.inc, self.attn = nn.Conv2d(3, 16, 3, padding=1), WindowAttention(16)
            self.down, self.mid = nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.Conv2d(32, 32, 3, padding=1)
            self.up, self.out = nn.ConvTranspose2d(32, 16, 2, stride=2), nn.Conv2d(32, 2, 1)

        def forward(self, x: Any) -> Any:
            s = self.attn(self.inc(x))
            return self.out(torch.cat([self.up(self.mid(self.down(s))), s], 1))

    lines = build_layout(unetviz.trace(Tiny(), size=(32, 32)), "units").cond_lines
    assert not [x for x in lines if "cross-attention" in x or "context" in x]


def test_cross_attention_is_still_noted_when_a_context_is_read(traces: dict[str, unetviz.Trace]) -> None:
    assert any("cross-attentions" in x for x in build_layout(traces["sd15"], "units").cond_lines)
