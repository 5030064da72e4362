"""The ldm family's real model: CompVis/Stability's ``ldm`` for SD 1.x/2.x, ComfyUI's UNetModel for sgm's SDXL.

stable-diffusion-sdkit's ``ldm`` is the original code of SD 1.x/2.x and builds every config that uses
only its keywords; sgm (SDXL) is on no registry, so a config that sets one of sgm's keywords
(``ldm.sgm_only`` says which) is built by ComfyUI's UNetModel, which takes sgm's keywords and has
sgm's names and shapes (``comfy``). Each model is observed as its own code runs it; ``as_upstream``
reads ComfyUI's declared departures from sgm back as sgm's.
"""

from __future__ import annotations

from typing import Any

import torch

from ...core.records import Trace
from . import comfy, ldm


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    """ldm's ``UNetModel`` where it can build the config, else ComfyUI's; both on the meta device."""
    if ldm.sgm_only(kwargs) is None:
        return ldm.build(cls, kwargs)
    return comfy.build(cls, kwargs)


def _is_comfy(model: torch.nn.Module) -> bool:
    return type(model).__module__.startswith("comfy.")


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The forward inputs of whichever model ``build`` made."""
    return comfy.inputs(model, trace) if _is_comfy(model) else ldm.inputs(model, trace)


def as_upstream(model: torch.nn.Module, real: Trace) -> tuple[Trace, list[str]]:
    """ComfyUI's observed trace in sgm's terms (``comfy.as_upstream``); ldm's as observed."""
    return comfy.as_upstream(model, real) if _is_comfy(model) else (real, [])
