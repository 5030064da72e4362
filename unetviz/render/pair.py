"""The residual map of a ControlNet on a U-Net, as text lines, a rich renderable or JSON data (never printed).

One row per residual: the zero conv that makes it, its channels and size, the U-Net tensor it is added
to (skip #N and the unit that pushed it, or the mid block's output) and whether the add works.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.records import fmt_size

if TYPE_CHECKING:
    from rich.console import Group

    from ..analysis.controlnet_pair import Landing, Pairing

PAIR_SCHEMA = "unetviz.pair/1"
HEAD = ("residual", "ch", "size", "added to", "pushed by", "ch", "size", "")
RIGHT = (False, True, True, False, False, True, True, False)
DROP_ORDER = (4,)
"""Columns dropped, in this order, when the table is wider than the terminal (the producer path is the widest)."""
GAP = 2


def _cells(x: Landing) -> tuple[str, ...]:
    ch = "-" if x.channels is None else str(x.channels)
    tch = "-" if x.target_channels is None else str(x.target_channels)
    return (x.residual or "(none)", ch, fmt_size(x.size) if x.channels is not None else "-", x.target,
            x.target_from or "-", tch, fmt_size(x.target_size) if x.target_channels is not None else "-",
            "ok" if x.ok else "MISMATCH")


def _line(row: Sequence[str], widths: Sequence[int], keep: Sequence[int]) -> str:
    return (" " * GAP).join(row[k].rjust(widths[k]) if RIGHT[k] else row[k].ljust(widths[k]) for k in keep).rstrip()


def pair_lines(pairing: Pairing, width: int = 120) -> list[tuple[str, str]]:
    """(text, rich style) lines: title, the table, the problems under their rows, the verdict and notes."""
    body = [_cells(x) for x in pairing.landings]
    widths = [max(len(r[k]) for r in (HEAD, *body)) for k in range(len(HEAD))]
    keep = list(range(len(HEAD)))
    for k in DROP_ORDER:
        if sum(widths[i] for i in keep) + GAP * (len(keep) - 1) <= width:
            break
        keep.remove(k)
    title = (f"{pairing.controlnet} -> {pairing.unet}: where each ControlNet residual is added"
             f" (latent {fmt_size(pairing.size)}, hint 8x it)")
    out = [(title, "bold"), (_line(HEAD, widths, keep), "bold")]
    said = ""
    for x, row in zip(pairing.landings, body, strict=True):
        out.append((_line(row, widths, keep), "" if x.ok else "bold red"))
        if x.problem and x.problem != said:  # rows that fail for the same reason say it once
            out += [(line, "red") for line in textwrap.wrap(x.problem, width, initial_indent="    ",
                                                            subsequent_indent="    ")]
        said = x.problem
    out.append(("", ""))
    out.append((pairing.message, "bold green" if pairing.ok else "bold red"))
    out += [(f"note: {n}", "yellow") for n in pairing.notes]
    return out


def render_pair(pairing: Pairing, width: int = 120) -> Group:
    """A rich renderable of ``pair_lines`` (what ``unetviz table --config CN --pair UNET`` shows)."""
    from rich.console import Group
    from rich.text import Text

    return Group(*(Text(text, style=style, no_wrap=False) for text, style in pair_lines(pairing, width)))


def pair_text(pairing: Pairing, width: int = 120) -> str:
    """Plain text of ``pair_lines`` (for ``--format md``/csv-less terminals and tests)."""
    return "\n".join(text for text, _ in pair_lines(pairing, width)) + "\n"


def pair_dict(pairing: Pairing) -> dict[str, Any]:
    """The residual map as JSON data (``--format json``)."""
    def size(s: tuple[int, ...] | None) -> list[int] | None:
        return None if s is None else list(s)

    return {
        "schema": PAIR_SCHEMA, "controlnet": pairing.controlnet, "unet": pairing.unet, "size": list(pairing.size),
        "ok": pairing.ok, "message": pairing.message, "notes": list(pairing.notes),
        "residuals": [{"residual": x.residual or None, "index": x.index, "channels": x.channels,
                       "size": size(x.size), "target": x.target, "target_from": x.target_from or None,
                       "target_channels": x.target_channels, "target_size": size(x.target_size), "ok": x.ok,
                       "problem": x.problem or None} for x in pairing.landings],
        "first_mismatch": None if pairing.first_mismatch is None else pairing.first_mismatch.target,
    }
