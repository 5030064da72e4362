"""Do add-on files (LoRAs, ControlNets, adapters, motion modules, VAEs) load into a base model? (stub: issue 23)"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import NotTraced


@dataclass(frozen=True, kw_only=True)
class FitReport:
    """Whether the add-ons load into the base."""

    ok: bool
    """True when every add-on loads with no dropped key and no shape clash."""

    def to_json(self) -> dict[str, Any]:
        return {"schema": "unetviz.fit/1", "ok": self.ok}


def fit(base: str | Path | dict[str, Any], files: list[Path]) -> FitReport:
    raise NotTraced("fit: not built yet")
