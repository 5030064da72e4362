"""The skip stack as a builder uses it: ``push`` on the way down, ``pop`` on the way up, and the merges that take
the popped skips (``cat``, ``add``), each checking the sizes agree where the real forward would."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.records import Concat, Operand, Size, fmt_size
from .acts import Act
from .cursor import Cursor
from .skipstack import added


class SkipOps(Cursor):
    """The skip-stack operations of ``Tracer``."""

    def push(self, x: Act, unit: str = "", empty: bool = False) -> None:
        """``hs.append(x)``: remember ``x`` for the decoder. ``empty``: the entry is ``None`` in place of ``x``
        (the k-diffusion cross-attention block without a downsampler hands the decoder ``None``)."""
        unit = unit or (self.units[-1].path if self.units else x.source)
        self._skips.push(x.source, x.channels, x.size, unit, empty)

    def pop(self, consumer: str = "") -> Act:
        """``hs.pop()``: the most recent unpopped skip."""
        where = self.path(consumer) if consumer else None
        if not self._skips.stack:
            self.fail(where, "the skip stack is empty: the decoder pops more skips than the encoder pushed")
            return Act(0, None, "input")
        s = self.pop_entry()
        if s is None:
            self.fail(where, f"torch.cat before {where}: the skip is None (a KCrossAttnDownBlock2D without a"
                             " downsampler hands the decoder None)")
            return Act(0, None, "None")
        return s

    def pop_entry(self, taker: str = "") -> Act | None:
        """The most recent unpopped entry as it is (``None`` for an empty one), taken by block ``taker``
        (a later ``cat`` of it names its consumer); the stack must not be empty (see ``depth``)."""
        s = self._skips.take(taker)
        return None if s.empty else Act(s.channels, s.size, s.source, skip=s.index)

    def depth(self) -> int:
        """Entries left on the skip stack (``len(down_block_res_samples)``)."""
        return len(self._skips.stack)

    def peek_size(self) -> Size | None:
        """Size of the skip on top of the stack (diffusers' ``upsample_size``); None if empty or no tensor."""
        top = self._skips.top()
        return None if top is None else top.size

    def peek_is_none(self) -> bool:
        """The entry on top of the stack holds no tensor (``None``)."""
        top = self._skips.top()
        return top is not None and top.empty

    def cat(self, xs: Sequence[Act], into: str | None, crop: tuple[Size, Size] | None = None) -> Act:
        """``torch.cat(xs, dim=1)`` feeding module ``into`` (None: the next unit or bare layer to run, which
        may lie outside the current block); sizes must agree."""
        consumer = self.path(into) if into is not None else self.path()
        first = xs[0]
        for other in xs[1:]:
            if other.size != first.size:
                what = f"skip #{other.skip} from {other.source}" if other.skip is not None else other.source
                self.fail(consumer, f"torch.cat before {consumer}: {first.channels}ch"
                                             f" {fmt_size(first.size)} from {first.source} does not match"
                                             f" {other.channels}ch {fmt_size(other.size)} ({what})")
        ops = tuple(Operand(source=a.source, channels=a.channels, size=a.size, skip=a.skip) for a in xs)
        channels = sum(a.channels for a in xs)
        self.concats.append(Concat(consumer="" if into is None else consumer, channels=channels, size=first.size,
                                   inputs=ops, at=len(self.layers), crop=crop))
        if into is None:
            self._pending = len(self.concats) - 1
        for a in xs:
            if a.skip is not None:
                self._skips.consumed(a.skip, consumer)
        return Act(channels, first.size, "")

    def add(self, xs: Sequence[Act], into: str) -> Act:
        """``xs[0] + skip`` merging a popped skip into the decoder state (SegResNet's ``up(x) + down_x[i + 1]``),
        feeding module ``into``. The sum is the current module's arithmetic: where the shapes do not broadcast,
        that module's forward fails (not ``into``'s, which never runs)."""
        consumer = self.path(into)
        record, problem = added(xs, consumer, len(self.layers))
        if problem:
            self.fail(self.path(), f"the addition before {consumer}: {problem}")
        self.adds.append(record)
        for a in xs:
            if a.skip is not None:
                self._skips.consumed(a.skip, consumer, "add")
        return Act(record.channels, record.size or xs[0].size, "")
