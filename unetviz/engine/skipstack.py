"""The skip stack a U-Net's encoder fills and its decoder empties (``hs``, ``down_block_res_samples``).

Every push is kept, in push order, as a ``Skip`` record; the stack holds the indices not yet taken. An
entry can hold ``None`` (``empty``), and a decoder block can take entries it never concatenates
(``taken``); a concat or an addition names the module that consumes an entry (``to``). ``added`` is the
addition's arithmetic (``Tracer.add``), kept here so the cursor stays the small walker it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..core.records import Concat, Operand, Size, Skip, fmt_size
from .acts import Act


@dataclass
class SkipStack:
    """All pushes (``skips``) and the entries still on the stack (``stack``, indices into ``skips``)."""

    skips: list[Skip] = field(default_factory=list)
    stack: list[int] = field(default_factory=list)

    def push(self, source: str, channels: int, size: Size | None, unit: str, empty: bool = False) -> None:
        index = len(self.skips)
        self.skips.append(Skip(index=index, source=source, channels=0 if empty else channels,
                               size=None if empty else size, to=None, unit=unit, empty=empty))
        self.stack.append(index)

    def take(self, taker: str = "") -> Skip:
        """The most recent entry off the stack (it must not be empty), taken by block ``taker``."""
        s = self.skips[self.stack.pop()]
        if taker:
            s = self.skips[s.index] = replace(s, taken=taker)
        return s

    def top(self) -> Skip | None:
        """The entry on top, or None when the stack is empty."""
        return self.skips[self.stack[-1]] if self.stack else None

    def consumed(self, index: int, consumer: str, merge: str = "concat") -> None:
        """Entry ``index`` is merged (``concat`` or ``add``) into module ``consumer``."""
        self.skips[index] = replace(self.skips[index], to=consumer, taken=None, merge=merge)


def added(xs: Sequence[Act], consumer: str, at: int) -> tuple[Concat, str | None]:
    """``xs[0] + xs[1] + ...`` as ``Trace.adds`` records it, and the error torch raises where the shapes do not
    broadcast (None if they do). The operands' (channels, *size) broadcast axis by axis: equal, or 1 stretches."""
    shapes = [(a.channels, *(a.size or ())) for a in xs]
    out = list(shapes[0])
    problem = None
    for other, a in zip(shapes[1:], xs[1:], strict=True):
        if len(other) != len(out):
            problem = f"{fmt_size(tuple(out[1:]))} and {fmt_size(a.size)} differ in rank"
            break
        for dim, (m, n) in enumerate(zip(out, other, strict=True)):
            if m != n and 1 not in (m, n):
                # torch's own words, with what each side is, as the skip stack knows it
                what = f"skip #{a.skip} from {a.source}" if a.skip is not None else a.source
                problem = (f"the size of tensor a ({m}) must match the size of tensor b ({n}) at non-singleton"
                           f" dimension {dim + 1}: {xs[0].channels}ch {fmt_size(xs[0].size)} from {xs[0].source}"
                           f" + {a.channels}ch {fmt_size(a.size)} ({what})")
                break
            out[dim] = max(m, n) if 1 in (m, n) else m
        if problem:
            break
    ops = tuple(Operand(source=a.source, channels=a.channels, size=a.size, skip=a.skip) for a in xs)
    size = None if problem else tuple(out[1:])
    return Concat(consumer=consumer, channels=out[0], size=size, inputs=ops, at=at), problem
