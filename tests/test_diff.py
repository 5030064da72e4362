"""``unetviz.analysis.diff``: two traces compared block by block, unit by unit, with a computed summary."""

from __future__ import annotations

import sys

import pytest

import unetviz
from unetviz.analysis.diff import Diff, diff, profile
from unetviz.render.diff import diff_lines, diff_text, render_diff


def _change(d: Diff, what: str) -> tuple[str, str]:
    c = next(c for c in d.changes if c.what == what)
    return c.a, c.b


def test_sd15_vs_sd21_names_the_real_differences() -> None:
    d = diff("sd15", "sd21")
    assert _change(d, "heads") == ("8", "5/10/20/20")
    assert _change(d, "head width") == ("40/80/160/160", "64")
    assert _change(d, "context") == ("768", "1024")
    assert _change(d, "projections") == ("Conv2d", "Linear")
    for words in ("attention heads 8 -> 5/10/20/20", "context 768 -> 1024", "Conv2d -> Linear"):
        assert words in d.summary
    assert not any(c.what in ("levels", "channels") for c in d.changes)  # the same U, other attention


def test_sd15_vs_sdxl_names_the_real_differences() -> None:
    d = diff("sd15", "sdxl")
    assert _change(d, "levels") == ("4", "3")
    assert _change(d, "transformer depth") == ("1", "2/10/10")
    assert _change(d, "context") == ("768", "2048")
    assert "4 -> 3 resolution levels" in d.summary and "transformer depth 1 -> 2/10/10" in d.summary
    assert "only in sdxl: add_embedding" in d.summary
    only_a = [bd.path for bd in d.blocks if bd.b_title is None]
    assert only_a == ["down_blocks.3", "up_blocks.3"]


@pytest.mark.parametrize("pair", [("sd15", "sd21"), ("sd15", "sdxl"), ("ddpm-lucidrains", "ronneberger2015")])
def test_params_difference_is_the_traces_difference(pair: tuple[str, str]) -> None:
    a, b = unetviz.trace(pair[0]), unetviz.trace(pair[1])
    d = diff(*pair)
    assert d.params_delta == b.params - a.params
    assert f"{a.params:,} -> {b.params:,}" in d.summary
    sign = "+" if b.params >= a.params else "-"
    assert f"({sign}{abs(b.params - a.params):,})" in d.summary
    # every unit of either trace appears exactly once, in forward order
    assert [u.a.path for bd in d.blocks for u in bd.units if u.a] == [u.path for u in a.units]
    assert [u.b.path for bd in d.blocks for u in bd.units if u.b] == [u.path for u in b.units]


def test_the_same_model_has_no_changes() -> None:
    d = diff("sd15", "sd15")
    assert d.changes == () and d.params_delta == 0 and not any(bd.changed for bd in d.blocks)
    assert "same" in d.summary and d.a_name != d.b_name


def test_traces_and_size_are_accepted() -> None:
    d = diff(unetviz.trace("sd15"), "sd15", size=64)
    assert d.changes == ()
    assert diff("sd15", "sd21", size=64).a.in_size == (64, 64)


def test_profile_reads_levels_and_heads() -> None:
    p = profile(unetviz.trace("sd21"))
    assert p.levels == (320, 640, 1280, 1280)
    assert [x.heads for x in p.attention] == [5, 10, 20, 20] and p.contexts == (1024,)


@pytest.mark.parametrize("width", [60, 80, 100, 140])
def test_rendering_fits_the_width_and_cuts_nothing(width: int) -> None:
    d = diff("sd15", "sdxl")
    lines = [text for text, _ in diff_lines(d, width)]
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    text = diff_text(d, width)
    assert "…" not in text and "..." not in text
    for bd in d.blocks:
        assert bd.path in text
    assert f"{d.b.params:,}" in text


def test_changed_only_and_rich_renderable() -> None:
    d = diff("sd15", "sd21")
    short, full = diff_text(d, 100, changed_only=True), diff_text(d, 100)
    assert len(short) < len(full) and "attentions.0" in short
    from rich.console import Console

    console = Console(width=100, color_system=None, file=sys.stderr)
    with console.capture() as cap:
        console.print(render_diff(d, 100))
    assert "5 heads x 64" in cap.get()


def test_diff_imports_no_torch() -> None:
    import subprocess

    code = ("import sys, unetviz.analysis.diff, unetviz.render.diff; unetviz.analysis.diff.diff('sd15', 'sdxl');"
            " print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
