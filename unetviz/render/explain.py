"""Plain-words answers to the questions learners ask: why n resnets per up block, why these widths.

Everything comes from the trace's skip pushes and pops, so it holds for any family; each sum is
worded by ``rows.concat_terms``, the same words as the table's concat rows.
"""

from __future__ import annotations

from ..core.records import Trace, enclosing, fmt_size
from .rows import concat_terms

UNITS = {"pixel": "px", "audio": "samples", "volume": "voxels"}
"""How a non-latent input's size is counted, by declared space."""


def input_text(t: Trace, compact: bool = False) -> str:
    """The input as titles show it: ``4x128x128 latent = 1024x1024 px`` (``4x128x128 (1024px)`` compact),
    ``3x32x32 px``, ``2x65536 samples``; a live module's with no declared space, just its shape."""
    own = f"{t.in_channels}x{fmt_size(t.in_size)}"
    px = t.pixels
    if px is not None:
        side = str(px[0]) if len(set(px)) == 1 else fmt_size(px)
        return f"{own} ({side}px)" if compact else f"{own} latent = {fmt_size(px)} px"
    unit = UNITS.get(t.space)
    return own if compact or unit is None else f"{own} {unit}"


def _owner(path: str, blocks: dict[str, str], headings: list[str]) -> str:
    """The heading (down_blocks.1, output_blocks.7, ...) a module path sits under."""
    if path in blocks:
        return blocks[path]
    return enclosing(path, headings) or path.split(".")[0]


def explain(trace: Trace) -> list[str]:
    """A few lines: where the skips come from and how each decoder block spends them."""
    if not trace.skips:
        return []
    blocks = {u.path: u.block for u in trace.units}
    headings = [b for b, _ in trace.blocks]
    pushed: dict[str, list[int]] = {}
    empty: dict[str, int] = {}
    for s in trace.skips:
        owner = _owner(s.unit, blocks, headings)
        pushed.setdefault(owner, []).append(s.index)
        empty[owner] = empty.get(owner, 0) + s.empty
    parts = ", ".join(f"{b} {len(ix)}" + (f" ({empty[b]} None)" if empty[b] else "") for b, ix in pushed.items())
    unused = [s for s in trace.skips if s.taken is not None]
    how = (" each up block takes one entry per resnet, last-in first-out, and concatenates only the last"
           " (if it is not None)." if unused else " the decoder pops them last-in first-out, one per concat.")
    lines = [f"The encoder pushes {len(trace.skips)} {'entries' if unused else 'skips'} ({parts});{how}"]
    popped: dict[str, list[str]] = {}
    for c in trace.concats:
        if not any(op.skip is not None for op in c.inputs):
            continue
        popped.setdefault(_owner(c.consumer, blocks, headings), []).append(concat_terms(trace, c))
    for owner, sums in popped.items():
        lines.append(f"{owner} pops {len(sums)} skip(s), so it has {len(sums)} concat-fed layer(s):")
        lines.extend(f"  {s}" for s in sums)
    if unused:
        lines.append(f"Taken but not concatenated: {', '.join(f'#{s.index}' for s in unused)}.")
    never = [s.index for s in trace.skips if s.to is None and s.taken is None]
    if never:
        lines.append(f"Never popped: {', '.join(f'#{i}' for i in never)} (the decoder does not use them).")
    return lines
