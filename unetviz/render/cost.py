"""``unetviz cost``'s output: a terminal report, ``--format json|csv``, and ``--plot FILE.svg|.png``.

The terminal report is three plain-text tables in a rich ``Group``: MACs per size, MACs per level (each level
with its resolution at each size), memory per size (activations, weights + activations for inference, the
training estimate, nnU-Net's own estimate for its networks), then where the activation peak is and what the
training figure holds. The tables fit the width given (lower-priority columns are dropped, the per-level table
is split by sizes, nothing is cut with an ellipsis); the sentences wrap at spaces. matplotlib is imported only
by ``plot_cost``. Never prints; ``unetviz.cli`` prints what ``run_cost`` returns.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..analysis.cost import CostReport, LevelCost, SizeCost, cost
from ..analysis.memory import DTYPE_BYTES
from ..analysis.nnunet_estimate import WHAT as NNUNET_WHAT
from ..core.errors import UnetvizError
from ..core.records import fmt_size

if TYPE_CHECKING:
    from rich.console import Group, RenderableType

GAP = 2
FORMATS = ("rich", "json", "csv")


def macs(n: int) -> str:
    """``401.6G``, ``850M``."""
    for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}" if n < 1000 * div else f"{n / div:.0f}{unit}"
    return str(n)


def nbytes(n: int) -> str:
    """``268 MB``, ``4.29 GB``."""
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.3g} {unit}"
    return f"{n} B"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _label(s: SizeCost) -> str:
    """The image for a latent model (a video's frames first: ``14x576x1024 px``), else the input size."""
    if s.pixels is None:
        return fmt_size(s.size)
    frames = s.size[:-len(s.pixels)]
    return f"{fmt_size((*frames, *s.pixels))} px"


Col = tuple[str, int, Callable[[SizeCost], str]]
SIZE_COLUMNS: tuple[Col, ...] = (
    # (title, priority: higher drops first, cell)
    ("size", 0, _label),
    ("input", 4, lambda s: fmt_size(s.size)),
    ("MACs", 0, lambda s: macs(s.macs)),
    ("attn", 0, lambda s: _share(s.attention_macs, s.macs)),
    ("no-attn", 1, lambda s: macs(s.no_attention_macs)),
    ("torchinfo", 2, lambda s: macs(s.torchinfo_macs)),
)
ATTENTION_ONLY = ("top score", "act eff", "infer eff", "train eff")
"""Memory columns that equal another (or read 0 B) in a model without attention: left out there."""
MEMORY_COLUMNS: tuple[Col, ...] = (
    ("size", 0, _label),
    ("skips", 4, lambda s: nbytes(s.memory.skip_bytes) if s.memory else ""),
    ("top score", 3, lambda s: nbytes(s.memory.largest_bytes) if s.memory else ""),
    ("act peak", 1, lambda s: nbytes(s.memory.peak_materialised) if s.memory else ""),
    ("act eff", 2, lambda s: nbytes(s.memory.peak_efficient) if s.memory else ""),
    ("inference", 0, lambda s: nbytes(s.footprint.inference) if s.footprint else ""),
    ("infer eff", 1, lambda s: nbytes(s.footprint.inference_efficient) if s.footprint else ""),
    ("backward", 2, lambda s: nbytes(s.footprint.saved) if s.footprint else ""),
    ("training", 0, lambda s: nbytes(s.footprint.training) if s.footprint else ""),
    ("train eff", 1, lambda s: nbytes(s.footprint.training_efficient) if s.footprint else ""),
)


def _lines(head: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    widths = [max(len(r[k]) for r in (head, *rows)) for k in range(len(head))]
    return [(" " * GAP).join(c.ljust(w) if k < left else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths,
            strict=True))).rstrip() for r in (head, *rows)]


def size_table(report: CostReport, width: int, columns: tuple[Col, ...] = SIZE_COLUMNS,
               failures: bool = True) -> list[str]:
    """One row per size; columns dropped by priority until the table fits ``width``; then a line per size the
    model fails at (``failures``)."""
    cols = list(columns)
    while True:
        ok = [s for s in report.sizes if s.error is None]
        rows = [[c[2](s) for c in cols] for s in ok]
        lines = _lines([c[0] for c in cols], rows)
        droppable = [c for c in cols if c[1] > 0]
        if max(map(len, lines)) <= width or not droppable:
            break
        cols.remove(max(droppable, key=lambda c: (c[1], cols.index(c))))
    fails = [f"{_label(s)}: fails - {s.error}" for s in report.sizes if s.error is not None]
    return lines + (fails if failures else [])


def _level_cells(s: SizeCost, keys: list[int | None]) -> list[str]:
    """One size's column of the level table: each level's resolution, MACs and attention share, aligned."""
    found: list[LevelCost | None] = [next((x for x in s.levels if x.level == k), None) for k in keys]
    parts = [("", "", "") if lv is None else (fmt_size(lv.size) if lv.size else "", macs(lv.macs),
                                              _share(lv.attention_macs, lv.macs)) for lv in found]
    w = [max((len(p[k]) for p in parts), default=0) for k in range(3)]
    return [f"{a:<{w[0]}}  {b:>{w[1]}} {c:>{w[2]}}" if b else "" for a, b, c in parts]


def level_table(report: CostReport, width: int) -> list[str]:
    """Rows: levels; columns: sizes, each cell the level's resolution there, its MACs and attention share; split
    into as many tables as it takes to fit ``width``."""
    ok = [s for s in report.sizes if s.error is None]
    if not ok:
        return []
    keys = [lv.level for lv in ok[0].levels]
    labels = ["emb" if k is None else f"L{k}" for k in keys]
    cells = [_level_cells(s, keys) for s in ok]
    out: list[str] = []
    i = 0
    while i < len(ok):
        j, used = i, len("level")
        while j < len(ok):  # as many sizes as fit beside the level column
            col = max(len(_label(ok[j])), *map(len, cells[j])) + GAP
            if j > i and used + col > width:
                break
            used, j = used + col, j + 1
        rows = [[labels[r], *(cells[k][r] for k in range(i, j))] for r in range(len(keys))]
        out += [*_lines(["level", *(_label(s) for s in ok[i:j])], rows, left=j - i + 1), ""]
        i = j
    return out[:-1]


def _memory_columns(report: CostReport) -> tuple[Col, ...]:
    ok = [s for s in report.sizes if s.memory is not None]
    attention = any(s.memory is not None and s.memory.largest is not None for s in ok)
    cols = tuple(c for c in MEMORY_COLUMNS if attention or c[0] not in ATTENTION_ONLY)
    if any(s.nnunet_estimate is not None for s in ok):
        cols += (("nnU-Net est", 0, lambda s: "" if s.nnunet_estimate is None else
                  nbytes(s.nnunet_estimate * report.batch * DTYPE_BYTES[report.dtype])),)
    return cols


KEEP = "\u00a0"
"""A space wrapping must not break (``(L2 32x32)``, ``5.13 GB``), turned back into a space by ``wrap``."""


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` (a word longer than that, a long path, on a line of its own)."""
    return [x.replace(KEEP, " ") for x in textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)]


def _where(s: SizeCost, level: int | None) -> str:
    """``(L2 32x32)`` for the level a peak is at (at ``s``), or ``""``."""
    lv = next((x for x in s.levels if x.level == level), None)
    if level is None or lv is None:
        return ""
    return f" (L{level}{KEEP + fmt_size(lv.size) if lv.size else ''})"


def _peak(s: SizeCost, fused: bool) -> tuple[str, int | None]:
    """(the layer where the activation peak is, its level) at ``s``, scores materialised or fused."""
    if s.memory is None:
        return "", None
    if fused:
        return s.memory.peak_efficient_at, s.peak_efficient_level
    return s.memory.peak_at, s.peak_level


def peak_lines(report: CostReport) -> list[str]:
    """Where the activation peak is, per size (once when every size has it at the same layer and level); the
    fused-attention peak too where it is elsewhere."""
    ok = [s for s in report.sizes if s.memory is not None]
    attention = any(s.memory is not None and s.memory.largest is not None for s in ok)
    out: list[str] = []
    for fused in (False, True):
        if fused and all(_peak(s, True)[0] == _peak(s, False)[0] for s in ok):
            break  # the same layers: one list says both
        kind = (", fused attention" if fused else ", scores materialised") if attention else ""
        places = {_peak(s, fused) for s in ok}
        if len(places) == 1 and len(ok) > 1:
            at, level = _peak(ok[0], fused)
            out.append(f"activation peak{kind}, every size: {at}{'' if level is None else f' (L{level})'}")
            continue
        out += [f"activation peak{kind}, {_label(s)}: {_peak(s, fused)[0]}{_where(s, _peak(s, fused)[1])}"
                for s in ok]
    return out


def _quoted(report: CostReport, sizes: list[SizeCost]) -> SizeCost | None:
    """The size a sentence quotes: the model's own if it is among ``sizes``, else the first."""
    return next((s for s in sizes if s.size == report.own), sizes[0] if sizes else None)


def memory_lines(report: CostReport) -> list[str]:
    """The sentences under the memory table: the training figure's parts, nnU-Net's estimate explained."""
    f = next((s.footprint for s in report.sizes if s.footprint is not None), None)
    if f is None:
        return []
    master = f" + fp32 master weights {nbytes(f.master)}" if f.master else ""
    out = [f"training = weights {nbytes(f.weights)} + gradients {nbytes(f.gradients)}{master} + AdamW's fp32"
           f" moments {nbytes(f.moments)} = {nbytes(f.static)}, plus the activations kept for backward"]
    ds = _quoted(report, [s for s in report.sizes if s.footprint is not None and s.footprint.deep_supervision])
    if ds is not None and ds.footprint is not None:
        out.append(f"backward includes the deep-supervision seg maps nnU-Net's trainer adds ({_label(ds)}:"
                   f" {nbytes(ds.footprint.deep_supervision)})")
    est = _quoted(report, [s for s in report.sizes if s.nnunet_estimate is not None])
    if est is not None and est.nnunet_estimate is not None:
        out.append(f"{NNUNET_WHAT}; at {_label(est)} {est.nnunet_estimate:,} elements per sample, shown x batch"
                   f" {report.batch} x {DTYPE_BYTES[report.dtype]} bytes")
    return out


def render_cost(report: CostReport, width: int = 100) -> Group:
    """The terminal report: per size, then per level (MACs, attention share in %)."""
    from rich.console import Group
    from rich.text import Text

    unit = {"latent": f"pixels (latent = pixels / {report.factor})", "pixel": "pixels (the model's own input)",
            "audio": "samples", "volume": "voxels"}.get(report.space, "the model's input size")
    head = (f"{report.name}: {report.family} {report.model}; MACs at batch 1 (FlopCounterMode / 2); memory at"
            f" batch {report.batch}, {report.dtype}; sizes in {unit}")
    size = DTYPE_BYTES[report.dtype]
    weights = (f"Memory at batch {report.batch}, {report.dtype}: weights {nbytes(report.params * size)}"
               f" ({report.params:,} params x {size} bytes)")
    notes = ("attn: share of attention matmuls. no-attn: thop/fvcore/calflops' figure. torchinfo: its mult-adds."
             " act peak: live activations at their peak (inference, no_grad), attention scores materialised; eff:"
             " fused attention. inference: weights + act peak. backward: the activations autograd keeps (every"
             " layer's output, concats; a lower bound where SiLU/GELU run out of place). training: weights,"
             " gradients, AdamW's state + backward (conventions: unetviz.analysis.training).")
    parts = [Text(head, style="bold"), *(Text(x) for x in size_table(report, width)), Text(""),
             Text("MACs per level (resolution, MACs, attention share)", style="bold"),
             *(Text(x) for x in level_table(report, width)), Text(""), Text(weights, style="bold"),
             *(Text(x) for x in size_table(report, width, _memory_columns(report), failures=False)),
             *(Text(x) for line in peak_lines(report) + memory_lines(report) for x in wrap(line, width)),
             Text(notes, style="dim")]
    return Group(*parts)


def cost_csv(report: CostReport) -> str:
    """One row per size and level (``level`` ``all`` for the size's totals)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["request", "size", "pixels", "level", "level_size", "macs", "attention_macs", "no_attention_macs",
                "torchinfo_macs", "largest_scores", "skip_stack_bytes", "peak_materialised_bytes",
                "peak_memory_efficient_bytes", "peak_at", "weights_bytes", "inference_bytes",
                "inference_memory_efficient_bytes", "saved_for_backward_bytes", "training_bytes",
                "training_memory_efficient_bytes", "nnunet_estimate_elements", "error"])
    blank = [""] * 11
    for s in report.sizes:
        px = fmt_size(s.pixels) if s.pixels else ""
        m, f = s.memory, s.footprint
        mem = blank if m is None or f is None else [
            m.skip_bytes, m.peak_materialised, m.peak_efficient, m.peak_at, f.weights, f.inference,
            f.inference_efficient, f.saved, f.training, f.training_efficient,
            "" if s.nnunet_estimate is None else s.nnunet_estimate]
        w.writerow([s.request, fmt_size(s.size), px, "all", "", s.macs, s.attention_macs, s.no_attention_macs,
                    s.torchinfo_macs, m.largest.scores if m and m.largest else 0, *mem, s.error or ""])
        for lv in s.levels:
            w.writerow([s.request, fmt_size(s.size), px, "emb" if lv.level is None else lv.level,
                        fmt_size(lv.size), lv.macs, lv.attention_macs, lv.macs - lv.attention_macs, "",
                        lv.largest_scores, *blank, ""])
    return buf.getvalue()


def run_cost(source: Any, sizes: str | None = None, batch: int | None = None, dtype: str = "fp16", format: str = "rich",
             plot: str | Path | None = None, width: int = 100) -> tuple[RenderableType | str, int]:
    """``unetviz cost``: (what to print, exit code). Writes the plot first when ``plot`` is given. Exit code
    1 when the model fails at every size asked (each failing size is marked in the output), else 0."""
    if format not in FORMATS:
        raise UnetvizError(f"--format: got {format!r}; allowed: {', '.join(FORMATS)}")
    report = cost(source, sizes, batch, dtype)
    if plot is not None:
        from .cost_plot import plot_cost

        plot_cost(report, Path(plot))
    code = 1 if all(s.error is not None for s in report.sizes) else 0
    if format == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n", code
    if format == "csv":
        return cost_csv(report), code
    return render_cost(report, width), code
