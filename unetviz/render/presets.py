"""``unetviz presets``: every preset with its figures, computed now (none is stored)."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from ..core.records import Trace
from ..presets import Preset
from .explain import input_text

if TYPE_CHECKING:
    from rich.console import Group


def render_presets(presets: list[tuple[Preset, Trace]], width: int) -> Group:
    """Name, model, input, params and tensors per preset; the description wrapped under it."""
    from rich.console import Group
    from rich.text import Text

    rows = [(p.name, f"{t.family} {t.model}", input_text(t, compact=True), f"{t.params:,}",
             str(len(t.manifest))) for p, t in presets]
    head = ("name", "model", "input", "params", "tensors")
    widths = [max(len(r[k]) for r in (head, *rows)) for k in range(5)]
    # one row a preset: where the model column does not fit, it moves under the row, before the description
    keep = (0, 1, 2, 3, 4) if sum(widths) + 2 * 4 <= width else (0, 2, 3, 4)
    right = (False, False, False, True, True)

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(r[k].rjust(widths[k]) if right[k] else r[k].ljust(widths[k]) for k in keep).rstrip()

    parts = [Text("unetviz presets (figures computed now)", style="bold"), Text(line(head), style="bold")]
    for (p, _), r in zip(presets, rows, strict=True):
        parts.append(Text(line(r)))
        about = p.description if 1 in keep else f"{r[1]}: {p.description}"
        parts += [Text(w, style="dim") for w in textwrap.wrap(about, max(30, width), initial_indent="    ",
                                                              subsequent_indent="    ", break_long_words=False,
                                                              break_on_hyphens=False)]
    return Group(*parts)
