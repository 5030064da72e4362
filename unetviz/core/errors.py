"""The one error type unetviz raises for bad input, and the model-failure signal."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class UnetvizError(ValueError):
    """Bad input: an unknown preset, an invalid config value, a bad option.

    The message is one line that names the key, the bad value and what is allowed. The CLI prints
    it after ``error:`` and exits with code 2.
    """


class NotTraced(UnetvizError):
    """A valid model, or a request, that unetviz does not trace yet (a block type, a live module's renaming):
    the upstream class accepts it; unetviz says so in one line instead of guessing. Exit code 2."""


NOT_TRACED = "unetviz does not trace"
"""How every ``NotTraced`` message words it (``{NOT_TRACED} this block type``)."""


def bad_value(key: str, value: object, allowed: str | Iterable[object]) -> UnetvizError:
    """Build the standard one-line error: ``key: got VALUE; allowed: ...``."""
    if not isinstance(allowed, str):
        allowed = ", ".join(repr(a) if isinstance(a, str) else str(a) for a in allowed)
    return UnetvizError(f"{key}: got {value!r}; allowed: {allowed}")


def did_you_mean(value: object, allowed: Iterable[str], cutoff: float = 0.75) -> str:
    """``; did you mean 'layers_per_block'?`` for the allowed name closest to ``value`` (any case), else ``""``:
    the one suggestion every error and warning gives (presets, families, commands, config keys). Only a close
    name is suggested (``sd16`` -> ``sd15``; ``FluxTransformer2DModel`` -> nothing); between equally close names,
    the one sharing the longer beginning wins."""
    folded = {a.lower(): a for a in allowed}
    typed = str(value).lower()
    close = difflib.get_close_matches(typed, list(folded), n=5, cutoff=cutoff)
    if not close:
        return ""
    best = max(close, key=lambda c: (round(difflib.SequenceMatcher(None, typed, c).ratio(), 6), _prefix(typed, c)))
    return f"; did you mean {folded[best]!r}?"


def _prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def listed(names: Sequence[str], more: str, shown: int = 8) -> str:
    """``a, b, c`` or, for a long list, its first ``shown`` names and where to see the rest (``more``), so an
    error stays one readable line."""
    if len(names) <= shown + 2:
        return ", ".join(names)
    return f"{', '.join(names[:shown])}, ... ({len(names)} in all: {more})"


class ModelFailure(Exception):
    """The real model would fail at this input (e.g. a skip concat whose sizes differ).

    Raised by builders while tracing; ``trace()`` turns it into ``Trace.error`` and keeps the
    records made up to that point.
    """

    def __init__(self, at: str | None, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message
