"""`unetviz graph`: U-shaped Graphviz diagrams with one labelled skip edge per skip-stack entry."""

from __future__ import annotations

import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest

import unetviz
from unetviz import UnetvizError
from unetviz.render.graph import to_graphviz, write_graph
from unetviz.render.graph_layout import build_layout, fmt

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
    assert msg.startswith(f"wrote {preset}.svg (") and f"{count} skip edges" in msg
    svg = out.read_text(encoding="utf-8")
    assert len(re.findall(r'<g id="skip\d+" class="edge">', svg)) == count
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for s in t.skips:
        assert texts.count(skip_label(s)) == 1, s


@pytest.mark.parametrize("preset", ["sd15", "sdxl"])
def test_every_layer_path_at_layers_detail(traces: dict[str, unetviz.Trace], preset: str) -> None:
    t = traces[preset]
    src = to_graphviz(t, detail="layers").source
    for layer in t.layers:
        assert f"<B>{layer.path}</B>" in src, layer.path
    # one cluster per block heading
    for block, _ in t.blocks:
        assert f"subgraph cluster_{block} " in src or f'subgraph "cluster_{block}" ' in src


@needs_dot
def test_every_layer_path_in_layers_svg(traces: dict[str, unetviz.Trace], tmp_path: Path) -> None:
    t = traces["sd15"]
    out = tmp_path / "sd15-layers.svg"
    write_graph(t, out, detail="layers")
    svg = out.read_text(encoding="utf-8")
    for layer in t.layers:
        assert f">{layer.path}</text>" in svg, layer.path


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
        write_graph(traces["sd15"], tmp_path / "x.svg", detail="units")
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
    assert msg.startswith("wrote x.dot (47 nodes, 12 skip edges,")
    assert (tmp_path / "x.dot").read_text(encoding="utf-8").startswith("digraph")


@pytest.mark.parametrize("preset", list(unetviz.PRESETS))
def test_u_layout_for_every_preset(preset: str) -> None:
    """Encoder left/down, decoder right/up, and every skip's two ends on one rank (a horizontal edge)."""
    t = unetviz.trace(preset)
    for detail in ("blocks", "layers"):
        lay = build_layout(t, detail)
        enc, dec = {i.id for i in lay.enc}, {i.id for i in lay.dec}
        popped = [s for s in t.skips if s.to is not None]
        links = [x for x in lay.links if x.index >= 0 and x.head is not None]
        assert len(links) == len(popped)
        assert len(lay.pairs) == len(popped)
        assert all(a in enc and b in dec for a, b in lay.pairs)
        rank = {n: k for k, row in enumerate(lay.rows) for n in row}
        assert all(rank[a] == rank[b] for a, b in lay.pairs)
        assert len(rank) == len(lay.items)  # every node in exactly one row
        if detail == "blocks":
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
    assert msg.startswith("wrote fail.svg")
