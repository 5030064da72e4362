"""``unetviz cost --plot FILE.svg|.png``: how MACs and memory grow with resolution (matplotlib, imported here only).

Left: MACs per size as bars stacked by U-Net level, each level's attention matmuls hatched on top of its
convolutions and linears, with the attention share written over each bar. Right: the memory figures
(peak with scores materialised, peak with fused attention, the largest score tensor, the skip stack) on a
log scale. Sizes where the model fails are marked on the axis, not dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..analysis.cost import CostReport, SizeCost
from ..core.errors import UnetvizError
from ..core.records import fmt_size

SUFFIXES = (".svg", ".png")


def _label(s: SizeCost) -> str:
    text = f"{fmt_size(s.pixels)}px" if s.pixels is not None else fmt_size(s.size)
    return text + ("\n(fails)" if s.error is not None else "")


def _macs_panel(ax: Any, report: CostReport) -> None:
    sizes = report.sizes
    xs = list(range(len(sizes)))
    levels = sorted({lv.level for s in sizes for lv in s.levels if lv.level is not None})
    bottom = [0.0] * len(sizes)
    from matplotlib import colormaps

    for i, level in enumerate(levels):
        colour = colormaps["tab10"](i % 10)  # a level's convs and its attention share one colour
        base, att = [], []
        for s in sizes:
            lv = next((x for x in s.levels if x.level == level), None)
            base.append(0.0 if lv is None else (lv.macs - lv.attention_macs) / 1e9)
            att.append(0.0 if lv is None else lv.attention_macs / 1e9)
        ax.bar(xs, base, bottom=bottom, color=colour, label=f"level {level}")
        bottom = [b + v for b, v in zip(bottom, base, strict=True)]
        ax.bar(xs, att, bottom=bottom, color=colour, hatch="///", edgecolor="white", linewidth=0)
        bottom = [b + v for b, v in zip(bottom, att, strict=True)]
    for x, s, top in zip(xs, sizes, bottom, strict=True):
        if s.error is None and s.macs:
            ax.text(x, top, f"{100 * s.attention_macs / s.macs:.0f}% attn", ha="center", va="bottom", fontsize=8)
    ax.bar([0], [0], color="grey", hatch="///", edgecolor="white", label="attention matmuls (hatched)")
    ax.set_xticks(xs, [_label(s) for s in sizes], fontsize=8)
    ax.set_ylabel("GMACs at batch 1")
    ax.set_title("MACs by level (hatched: attention q·kᵀ, attn·v)")
    ax.legend(fontsize=7, loc="upper left")


def _memory_panel(ax: Any, report: CostReport) -> None:
    sizes = report.sizes
    xs = list(range(len(sizes)))
    series: tuple[tuple[str, Callable[[Any], int], str], ...] = (
              ("peak, scores materialised", lambda s: s.memory.peak_materialised, "o-"),
              ("peak, fused attention", lambda s: s.memory.peak_efficient, "s--"),
              ("largest score tensor", lambda s: s.memory.largest_bytes, "^:"),
              ("skip stack", lambda s: s.memory.skip_bytes, "d-."))
    for name, get, style in series:
        pts = [(x, get(s) / 1e6) for x, s in zip(xs, sizes, strict=True) if s.memory is not None and get(s) > 0]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=name)
    ax.set_yscale("log")
    ax.set_xticks(xs, [_label(s) for s in sizes], fontsize=8)
    ax.set_ylabel(f"MB at batch {report.batch}, {report.dtype}")
    ax.set_title("activation memory")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="major", alpha=0.3)


def plot_cost(report: CostReport, path: Path) -> None:
    """Write the figure to ``path`` (``.svg`` or ``.png``)."""
    if path.suffix.lower() not in SUFFIXES:
        raise UnetvizError(f"--plot: {path.name}: give a .svg or .png file")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UnetvizError("--plot needs matplotlib: `pip install matplotlib`") from None
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    _macs_panel(left, report)
    _memory_panel(right, report)
    fig.suptitle(f"{report.name} ({report.model}): cost by resolution")
    try:
        fig.savefig(path)
    except OSError as e:
        raise UnetvizError(f"--plot: cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
