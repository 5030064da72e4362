"""Reading a U-Net's structure from a file's names and shapes: where its keys are (prefix and naming) and
what its encoder holds. Pure helpers of ``inspect`` and ``controlnet``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..core.records import Shape

ORIGINAL_PREFIXES = ("model.diffusion_model.", "model_ema.diffusion_model.", "diffusion_model.", "")
"""Where single-file checkpoints put a U-Net in the original naming (ldm/sgm, EMA, ComfyUI, bare)."""
DIFFUSERS_PREFIXES = ("unet.", "model.", "")
"""Where files put a U-Net in diffusers' naming (a pipeline's ``unet.``, bare)."""


def under(shapes: Mapping[str, Shape], prefix: str) -> dict[str, Shape]:
    """The keys under ``prefix``, without it."""
    return {k[len(prefix):]: s for k, s in shapes.items() if k.startswith(prefix)}


def count_distinct(keys: set[str], pattern: str) -> int:
    """How many distinct values the ``(\\d+)`` in ``pattern`` takes among ``keys``."""
    rx = re.compile(pattern)
    return len({m.group(1) for k in keys if (m := rx.match(k))})


def find_unet(shapes: Mapping[str, Shape]) -> tuple[str, str, dict[str, Shape]] | None:
    """(prefix, naming, the U-Net's shapes without the prefix) of the U-Net in a file, or None."""
    for prefix in ORIGINAL_PREFIXES:
        if f"{prefix}input_blocks.0.0.weight" in shapes and f"{prefix}out.2.weight" in shapes:
            return prefix, "original", under(shapes, prefix)
    for prefix in DIFFUSERS_PREFIXES:
        if f"{prefix}conv_in.weight" in shapes and f"{prefix}conv_out.weight" in shapes:
            unet = under(shapes, prefix)
            if any(k.startswith("down_blocks.") for k in unet):
                return prefix, "diffusers", unet
    return None


def encoder_levels(unet: dict[str, Shape], model_channels: int) -> list[dict[str, Any]]:
    """Per encoder level: res blocks, width multiplier, transformer depth of each block."""
    keys = set(unet)
    n_input = count_distinct(keys, r"input_blocks\.(\d+)\.")
    levels: list[dict[str, Any]] = [{"mult": None, "depths": []}]
    for i in range(1, n_input):
        if f"input_blocks.{i}.0.op.weight" in unet:  # a Downsample: the next level starts
            levels.append({"mult": None, "depths": []})
            continue
        width = unet[f"input_blocks.{i}.0.in_layers.2.weight"][0]
        levels[-1]["mult"] = width // model_channels
        levels[-1]["depths"].append(count_distinct(keys, rf"input_blocks\.{i}\.1\.transformer_blocks\.(\d+)\."))
    return levels
