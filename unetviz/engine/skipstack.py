"""The skip stack a U-Net's encoder fills and its decoder empties (``hs``, ``down_block_res_samples``).

Every push is kept, in push order, as a ``Skip`` record; the stack holds the indices not yet taken. An
entry can hold ``None`` (``empty``), and a decoder block can take entries it never concatenates
(``taken``); a concat names the module that consumes an entry (``to``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..core.records import Size, Skip


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

    def consumed(self, index: int, consumer: str) -> None:
        """Entry ``index`` is concatenated into module ``consumer``."""
        self.skips[index] = replace(self.skips[index], to=consumer, taken=None)
