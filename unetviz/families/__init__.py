"""Family builders: one function per upstream model class, registered by name.

A builder has the signature ``build(tracer, args, size) -> Act``: it validates ``args`` as the
upstream constructor would (raising ``UnetvizError``), then walks the forward pass on ``tracer``
(raising ``ModelFailure`` where the real model would fail) and returns the output activation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Args
from ..records import Size
from ..tracer import Act, Tracer
from . import candle, diffusers, guided, lucidrains, ronneberger


@dataclass(frozen=True)
class Builder:
    family: str
    model: str
    """The upstream class name shown in traces."""
    defaults: dict[str, Any]
    """The upstream constructor's keyword defaults, exactly."""
    build: Callable[[Tracer, Args, Size | None], Act]
    what: str
    """How errors name the constructor (``diffusers UNet2DConditionModel``)."""


BUILDERS: dict[str, Builder] = {
    "UNet2DModel": Builder("diffusers", "UNet2DModel", diffusers.UNET2D_DEFAULTS, diffusers.unet2d,
                           "diffusers UNet2DModel"),
    "UNet2DConditionModel": Builder("diffusers", "UNet2DConditionModel", diffusers.UNET2D_CONDITION_DEFAULTS,
                                    diffusers.unet2d_condition, "diffusers UNet2DConditionModel"),
    "lucidrains": Builder("lucidrains", "Unet", lucidrains.DEFAULTS, lucidrains.build,
                          "denoising_diffusion_pytorch.Unet"),
    "guided": Builder("guided", "UNetModel", guided.DEFAULTS, guided.build, "guided_diffusion.unet.UNetModel"),
    "ronneberger": Builder("ronneberger", "UNet2015", ronneberger.DEFAULTS, ronneberger.build,
                           "the 2015 Ronneberger U-Net"),
    "candle": Builder("candle", "UNet2DConditionModel", candle.DEFAULTS, candle.build,
                      "candle UNet2DConditionModelConfig"),
}
"""Keyed by diffusers class name, or by family name for the other families."""
