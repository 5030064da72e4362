"""`unetviz graph CONTROLNET --pair UNET`: the U-Net's U with one edge per ControlNet residual to its skip."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import cli
from test_controlnet import SDXL_CONTROLNET

import unetviz
from unetviz import UnetvizError
from unetviz.analysis.controlnet_pair import Pairing, pair
from unetviz.core.records import Trace
from unetviz.render.graph.layout import build_layout
from unetviz.render.graph.pair import residual_id, to_graphviz_pair, write_graph_pair

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's `dot` binary is not installed")


def _pair(controlnet: object) -> tuple[Pairing, Trace, Trace]:
    u = unetviz.trace("sd15")
    c = unetviz.trace(controlnet, u.in_size)  # type: ignore[arg-type]
    return pair(c, u), u, c


@pytest.fixture(scope="module")
def sd15() -> tuple[Pairing, Trace, Trace]:
    return _pair("controlnet-sd15")


@pytest.fixture(scope="module")
def sdxl_on_sd15() -> tuple[Pairing, Trace, Trace]:
    return _pair(SDXL_CONTROLNET)


def _residual_edges(source: str) -> dict[str, tuple[list[str], str]]:
    """``residualN`` -> (tail node and port, head node), from the dot source."""
    out = {}
    for line in source.splitlines():
        m = re.match(r'\s*(\S+)\s*->\s*(\S+)\s*\[.*\bid="?(residual\w+)"?', line)
        if m:
            out[m[3]] = (m[1].replace('"', "").split(":")[:2], m[2].replace('"', "").split(":")[0])
    return out


@pytest.mark.parametrize("detail", ["units", "blocks"])
def test_sd15_pair_has_one_edge_per_residual_to_the_skip_producer(sd15: tuple[Pairing, Trace, Trace],
                                                                   detail: str) -> None:
    p, u, c = sd15
    assert p.ok
    src = to_graphviz_pair(p, u, c, detail).source
    edges = _residual_edges(src)
    assert len(edges) == 13
    assert src.count("+ residual ") == 13 and "✗" not in src
    layout = build_layout(u, detail)
    producer = {link.index: link.tail for link in layout.links if link.index >= 0}
    by_path = {it.path: it.id for it in layout.items}
    for x in p.landings:
        tail, head = edges[f"residual{'mid' if x.index is None else x.index}"]
        assert residual_id(x) in tail  # the residual's own node, or its row of the block's table
        if x.index is not None:
            assert head == producer[x.index]
            if detail == "units":  # the node is the unit the table names as the skip's producer
                assert head == by_path[x.target_from]
                assert tail[0] == residual_id(x)
        else:
            assert head == [it.id for it in layout.items if it.block == "mid_block" or it.path == "mid_block"][-1]
    for k in range(12):
        assert f"controlnet_down_blocks.{k}</B>" in src
    assert "controlnet_mid_block</B>" in src


def test_sdxl_controlnet_on_sd15_is_drawn_in_red(sdxl_on_sd15: tuple[Pairing, Trace, Trace]) -> None:
    p, u, c = sdxl_on_sd15
    assert not p.ok
    src = to_graphviz_pair(p, u, c).source
    bad = [x for x in p.landings if not x.ok]
    assert [x.index for x in bad] == [9, 10, 11, None]  # 9 residuals for 12 skips, and the mid at 16x16
    for x in bad:
        node = next(line for line in src.splitlines() if line.strip().startswith(f"{residual_id(x)} ["))
        assert 'fillcolor="#fecaca"' in node and 'color="#dc2626"' in node
    mid = next(line for line in src.splitlines() if line.strip().startswith("resmid ["))
    assert "1280ch 16x16" in mid and "mid_block output: 1280ch 8x8" in mid and "sizes differ" in mid
    assert src.count("✗ residual ") == 4
    assert "no residual for skip #9" in src


def test_pair_graph_rejects_layers_detail(sd15: tuple[Pairing, Trace, Trace]) -> None:
    with pytest.raises(UnetvizError, match="allowed: 'blocks', 'units'"):
        to_graphviz_pair(*sd15, detail="layers")


@needs_dot
@pytest.mark.parametrize("ext", [".svg", ".png", ".dot"])
def test_write_graph_pair(sd15: tuple[Pairing, Trace, Trace], tmp_path: Path, ext: str) -> None:
    out = tmp_path / f"pair{ext}"
    msg = write_graph_pair(*sd15, out)
    assert "13 residual edges" in msg and out.stat().st_size > 1000
    if ext == ".svg":
        assert out.read_text().count('id="residual') == 13


@needs_dot
def test_cli_graph_pair(tmp_path: Path) -> None:
    done = cli("graph", "controlnet-sd15", "--pair", "sd15", "-o", str(tmp_path / "x.svg"))
    assert done.returncode == 0, done.stderr
    assert "13 residual edges" in done.stdout and (tmp_path / "x.svg").exists()
    bad = cli("graph", "controlnet-sd15", "--pair", "sd15", "--detail", "layers", "-o", str(tmp_path / "y.svg"))
    assert bad.returncode == 2 and "allowed: 'blocks', 'units'" in bad.stderr
