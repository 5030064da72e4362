"""The values a builder passes around: symbolic activations (``Act``) and the handle of an open unit."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.kinds import Kind
from ..core.records import Size


@dataclass(frozen=True)
class Act:
    """A symbolic activation: channels, spatial size and the module that produced it."""

    channels: int
    size: Size | None
    source: str
    tokens: int | None = None
    """Sequence length of a channel-last token tensor (``size`` is then ``None``)."""
    skip: int | None = None
    """Set on a value just popped from the skip stack: its stack index."""

    def by(self, source: str) -> Act:
        # built directly, not with dataclasses.replace: every layer of a trace returns through here
        return Act(self.channels, self.size, source, self.tokens)


@dataclass
class UnitCtx:
    """Handle of an open unit; ``done`` closes it with the unit's output."""

    path: str
    kind: Kind
    type: str
    x: Act
    first: int
    note: str = ""
    out: Act | None = None

    def done(self, y: Act, new: bool = True) -> Act:
        """Record the unit's output. ``new``: the unit itself returns a fresh tensor (a residual
        add), so it becomes the output's producer; otherwise the innermost layer stays it."""
        self.out = y.by(self.path) if new else y
        return self.out
