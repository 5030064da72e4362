"""``unetviz cost``'s output: a terminal report, ``--format json|csv``, and ``--plot FILE.svg|.png``.

The terminal report is two plain-text tables in a rich ``Group`` (they fit the width given: lower-priority
columns are dropped, the per-level table is split by sizes, nothing is cut with an ellipsis). matplotlib is
imported only by ``plot_cost``. Never prints; ``cli.py`` prints what ``run_cost`` returns.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..analysis.cost import CostReport, SizeCost, cost
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
    ("torchinfo", 5, lambda s: macs(s.torchinfo_macs)),
    ("skips", 3, lambda s: nbytes(s.memory.skip_bytes) if s.memory else ""),
    ("top score", 2, lambda s: nbytes(s.memory.largest_bytes) if s.memory else ""),
    ("peak", 1, lambda s: nbytes(s.memory.peak_materialised) if s.memory else ""),
    ("peak eff", 2, lambda s: nbytes(s.memory.peak_efficient) if s.memory else ""),
)


def _lines(head: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    widths = [max(len(r[k]) for r in (head, *rows)) for k in range(len(head))]
    return [(" " * GAP).join(c.ljust(w) if k < left else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths,
            strict=True))).rstrip() for r in (head, *rows)]


def size_table(report: CostReport, width: int) -> list[str]:
    """One row per size; columns dropped by priority until the table fits ``width``."""
    cols = list(SIZE_COLUMNS)
    while True:
        ok = [s for s in report.sizes if s.error is None]
        rows = [[c[2](s) for c in cols] for s in ok]
        lines = _lines([c[0] for c in cols], rows)
        droppable = [c for c in cols if c[1] > 0]
        if max(map(len, lines)) <= width or not droppable:
            break
        cols.remove(max(droppable, key=lambda c: (c[1], cols.index(c))))
    fails = [f"{_label(s)}: fails - {s.error}" for s in report.sizes if s.error is not None]
    return lines + fails


def level_table(report: CostReport, width: int) -> list[str]:
    """Rows: levels; columns: sizes, each cell MACs and the attention share; split to fit ``width``."""
    ok = [s for s in report.sizes if s.error is None]
    if not ok:
        return []
    keys = [lv.level for lv in ok[0].levels]
    label = {lv.level: ("emb" if lv.level is None else f"L{lv.level}") for lv in ok[0].levels}
    out: list[str] = []
    per = max(1, (width - 6) // 16)
    for i in range(0, len(ok), per):
        chunk = ok[i:i + per]
        rows = []
        for k in keys:
            row = [label[k]]
            for s in chunk:
                lv = next((x for x in s.levels if x.level == k), None)
                row.append("" if lv is None else f"{macs(lv.macs)} {_share(lv.attention_macs, lv.macs):>4}")
            rows.append(row)
        out += [*_lines(["level", *(_label(s) for s in chunk)], rows), ""]
    return out[:-1]


def render_cost(report: CostReport, width: int = 100) -> Group:
    """The terminal report: per size, then per level (MACs, attention share in %)."""
    from rich.console import Group
    from rich.text import Text

    unit = {"latent": f"pixels (latent = pixels / {report.factor})", "pixel": "pixels (the model's own input)",
            "audio": "samples", "volume": "voxels"}.get(report.space, "the model's input size")
    head = (f"{report.name}: {report.family} {report.model}; MACs at batch 1 (FlopCounterMode / 2); memory at"
            f" batch {report.batch}, {report.dtype}; sizes in {unit}")
    notes = ("attn: share of attention matmuls. no-attn: thop/fvcore/calflops' figure. torchinfo: its"
             " mult-adds. peak: live activations with attention scores materialised; peak eff: fused attention.")
    parts = [Text(head, style="bold"), *(Text(x) for x in size_table(report, width)), Text(""),
             Text("MACs per level (attention share)", style="bold"),
             *(Text(x) for x in level_table(report, width)), Text(notes, style="dim")]
    return Group(*parts)


def cost_csv(report: CostReport) -> str:
    """One row per size and level (``level`` ``all`` for the size's totals)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["request", "size", "pixels", "level", "level_size", "macs", "attention_macs", "no_attention_macs",
                "torchinfo_macs", "largest_scores", "skip_stack_bytes", "peak_materialised_bytes",
                "peak_memory_efficient_bytes", "error"])
    for s in report.sizes:
        px = fmt_size(s.pixels) if s.pixels else ""
        m = s.memory
        mem = [m.skip_bytes, m.peak_materialised, m.peak_efficient] if m else ["", "", ""]
        w.writerow([s.request, fmt_size(s.size), px, "all", "", s.macs, s.attention_macs, s.no_attention_macs,
                    s.torchinfo_macs, m.largest.scores if m and m.largest else 0, *mem, s.error or ""])
        for lv in s.levels:
            w.writerow([s.request, fmt_size(s.size), px, "emb" if lv.level is None else lv.level,
                        fmt_size(lv.size), lv.macs, lv.attention_macs, lv.macs - lv.attention_macs, "",
                        lv.largest_scores, "", "", "", ""])
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
