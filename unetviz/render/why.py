"""``unetviz why``'s answer as a renderable (stub: issue 24)."""

from __future__ import annotations

from typing import Any

from ..diagnose import Diagnosis


def render_why(diagnosis: Diagnosis, width: int) -> Any:
    return "match\n" if diagnosis.matched else "no match\n"
