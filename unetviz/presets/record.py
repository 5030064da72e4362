"""The preset record: a published configuration under a short name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.inputs import InputSpec


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A published configuration under a short name."""

    name: str
    """The name ``--preset`` takes (matched case-insensitively)."""
    description: str
    """What the model is and where its config comes from; never a figure (those are computed)."""
    config: dict[str, Any] = field(default_factory=dict)
    """A config dict in the ``--config`` format (``_class_name`` or ``family`` plus kwargs)."""
    aliases: tuple[str, ...] = ()
    """Other names people type for it: the hub repositories its config comes from (any case)."""
    input: InputSpec | None = None
    """The input where this model uses its class otherwise than the family declares (a UNet2DConditionModel
    on pixels, a UNet2DModel on latents); None: the family's ``input``."""
