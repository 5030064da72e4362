"""``unetviz why``: read a pasted shape error and name the layers and models behind its numbers (stub: issue 24)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import NotTraced


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """What an error's numbers match."""

    matched: bool
    """False when nothing unetviz knows gives the error's numbers."""

    def to_json(self) -> dict[str, Any]:
        return {"schema": "unetviz.why/1", "matched": self.matched}


def why(text: str, model: str | Path | dict[str, Any] | None = None) -> Diagnosis:
    raise NotTraced("why: not built yet")
