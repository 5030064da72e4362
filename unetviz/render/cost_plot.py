"""``unetviz cost --plot FILE.svg|.png``: how MACs and memory grow with resolution (matplotlib, imported here only).

Left: MACs per size as bars stacked by U-Net level, each level's attention matmuls hatched on top of its
convolutions and linears, with the attention share written over each bar. Right: the memory figures on a
log scale, as the terminal report has them: the weights as a shaded band (the same at every size),
inference (weights + peak activations) and the training estimate (weights, gradients, AdamW's state and the
activations kept for backward) as thick lines, each with scores materialised and with fused attention where
the model has attention, then the activations alone (peak, largest score tensor, skip stack) and, for an
nnU-Net network, nnU-Net's own estimate at the same batch and dtype. Sizes where the model fails are marked
on the axis, not dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..analysis.cost import CostReport, SizeCost
from ..analysis.memory import DTYPE_BYTES
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
    attention = any(s.attention_macs for s in sizes)
    for x, s, top in zip(xs, sizes, bottom, strict=True):
        if s.error is None and s.macs and attention:  # "0% attn" over every bar of a conv-only U-Net says nothing
            ax.text(x, top, f"{100 * s.attention_macs / s.macs:.0f}% attn", ha="center", va="bottom", fontsize=8)
    if attention:
        ax.bar([0], [0], color="grey", hatch="///", edgecolor="white", label="attention matmuls (hatched)")
    ax.set_xticks(xs, [_label(s) for s in sizes], fontsize=8)
    ax.set_ylabel("GMACs at batch 1")
    ax.set_title("MACs by level (hatched: attention q·kᵀ, attn·v)" if attention else "MACs by level")
    ax.legend(fontsize=7, loc="upper left")


Series = tuple[tuple[str, Callable[[Any], int], str, float], ...]
"""(label, bytes of a ``SizeCost`` with memory, matplotlib style, line width)."""


def _series(report: CostReport) -> Series:
    attention = any(s.memory is not None and s.memory.largest is not None for s in report.sizes)
    eff = " (fused attention)"
    per = report.batch * DTYPE_BYTES[report.dtype]
    out: Series = (
        ("training: weights, gradients, AdamW, kept activations", lambda s: s.footprint.training, "o-", 2.5),
        ("training" + eff, lambda s: s.footprint.training_efficient, "o--", 1.5),
        ("inference: weights + peak activations", lambda s: s.footprint.inference, "s-", 2.5),
        ("inference" + eff, lambda s: s.footprint.inference_efficient, "s--", 1.5),
        ("peak activations, scores materialised" if attention else "peak activations",
         lambda s: s.memory.peak_materialised, "v-", 1.0),
        ("peak activations" + eff, lambda s: s.memory.peak_efficient, "v--", 1.0),
        ("largest score tensor", lambda s: s.memory.largest_bytes, "^:", 1.0),
        ("skip stack", lambda s: s.memory.skip_bytes, "d-.", 1.0),
        ("nnU-Net's estimate: its feature-map elements x batch x bytes",
         lambda s: (s.nnunet_estimate or 0) * per, "x:", 1.5))
    return out if attention else tuple(x for x in out if eff not in x[0] and "score" not in x[0])


def _memory_panel(ax: Any, report: CostReport) -> None:
    sizes = report.sizes
    xs = list(range(len(sizes)))
    weights = report.params * DTYPE_BYTES[report.dtype] / 1e6
    values = [weights] if weights > 0 else []
    for name, get, style, lw in _series(report):
        pts = [(x, get(s) / 1e6) for x, s in zip(xs, sizes, strict=True)
               if s.memory is not None and s.footprint is not None and get(s) > 0]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=name, linewidth=lw)
            values += [p[1] for p in pts]
    ax.set_yscale("log")
    if values:  # limits set by hand: the weights band must reach the axis' floor, not stop above it
        floor = min(values) / 2
        ax.set_ylim(floor, max(values) * 2)
        if weights > 0:  # what every size holds before any activation
            ax.axhspan(floor, weights, color="grey", alpha=0.2, label=f"weights ({weights:,.0f} MB)")
            ax.axhline(weights, color="grey", linewidth=1)
    ax.set_xticks(xs, [_label(s) for s in sizes], fontsize=8)
    ax.set_ylabel(f"MB at batch {report.batch}, {report.dtype}")
    ax.set_title("memory: weights, inference, training")
    # below the axes: nine series over a log scale leave no corner free
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
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
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 6), layout="constrained")
    _macs_panel(left, report)
    _memory_panel(right, report)
    fig.suptitle(f"{report.name} ({report.model}): cost by resolution")
    try:
        fig.savefig(path)
    except OSError as e:
        raise UnetvizError(f"--plot: cannot write {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
