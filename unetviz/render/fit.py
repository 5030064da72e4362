"""``unetviz fit``'s report as a renderable (stub: issue 23)."""

from __future__ import annotations

from typing import Any

from ..analysis.fit import FitReport


def render_fit(report: FitReport, width: int) -> Any:
    return "fits\n" if report.ok else "does not fit\n"
