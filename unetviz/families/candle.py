"""The candle family builder (being written)."""

from __future__ import annotations

from typing import Any

from ..config import Args
from ..errors import UnetvizError
from ..records import Size
from ..tracer import Act, Tracer

DEFAULTS: dict[str, Any] = {}


def build(t: Tracer, a: Args, size: Size | None) -> Act:
    raise UnetvizError("family: 'candle' is not implemented yet")
