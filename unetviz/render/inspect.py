"""``unetviz inspect``: what a file is, in a few lines, and its JSON document."""

from __future__ import annotations

import json
from typing import Any

from ..checkpoints.compare import WeightsCheck
from ..checkpoints.inspect import SCHEMA, Inspection, to_dict
from ..checkpoints.kinds import Identified
from .text import wrapped

SHOWN_DETAILS = ("denoiser", "naming", "rank", "algorithms", "modules", "unet_modules", "text_encoder_modules",
                 "blocks", "text_encoders", "triggers", "conditioning_channels", "zero_convs", "union_modules",
                 "downscale_factor", "variant", "image_encoder", "reads", "face_embedding", "cross_attention_layers",
                 "lora_rank", "lora_layers", "lora_modules", "context", "class_embedding", "widths",
                 "max_frames", "mid_block", "latent_channels", "width", "layers", "projection", "note")
"""Detail fields the terminal shows, in this order (the JSON has every one)."""


def inspect_dict(found: Identified, file: str, check: WeightsCheck | None) -> dict[str, Any]:
    """The ``inspect --format json`` document: the interface's fields for a U-Net, ``kind``, ``base`` and the
    kind's own fields for every file."""
    common: dict[str, Any] = {"kind": found.kind, "name": found.name, "base": found.base, "evidence": found.evidence,
                              "model_type": list(found.model_type),
                              "parts": [{"name": p.name, "what": p.what, "tensors": p.tensors} for p in found.parts]}
    if isinstance(found.unet, Inspection):
        return {**to_dict(found.unet, file, None if check is None else check.matched), **common}
    return {"schema": SCHEMA, "file": file, **common, "prefix": found.prefix, "tensors": found.tensors,
            **{k: v for k, v in found.details.items() if k not in common},
            "config": None if found.config is None else dict(found.config),
            "matched": None if check is None else check.matched}


def render_identified(found: Identified, check: WeightsCheck | None, file: str, width: int = 120) -> str:
    if isinstance(found.unet, Inspection) and check is not None:
        return render_inspection(found, check, file, width)
    lines = [f"{file}: {found.name}", f"  made for {found.base}: {found.evidence}"]
    for key in SHOWN_DETAILS:
        value = found.details.get(key)
        if value in (None, [], {}, ""):
            continue
        label = "transformer modules" if key == "unet_modules" and found.details.get("denoiser") else key
        lines.append(f"  {label.replace('_', ' ')}: {_blocks(value) if key == 'blocks' else _value(value)}")
    meta = found.details.get("metadata")
    if isinstance(meta, dict):
        lines += [f"  metadata {k}: {v}" for k, v in meta.items()]
    lines += _common(found)
    if found.config is not None and check is not None:
        lines.append(f"  the rebuilt config's manifest matches {check.matched} of its tensors"
                     + (f" in the {check.naming} naming" if check.naming else ""))
        lines += _config(found.config, width)
        lines.append(f"  next: unetviz table --config {file}   (its trace)")
    elif not found.details.get("denoiser"):  # a transformer's LoRA: no U-Net base to fit it to
        if found.details.get("traced_as"):
            lines.append(f"  traced as: unetviz table {found.details['traced_as']}   (the same motion modules on"
                         " their base, as UNetMotionModel)")
        lines.append(f"  next: unetviz fit BASE {file}   (does it load into BASE?)")
    return "\n".join(wrapped(line, width) for line in lines) + "\n"


def _blocks(value: Any) -> str:
    """Blocks with runs of consecutive indices as ranges (``double_blocks.0-18, single_blocks.0-37``)."""
    if not isinstance(value, list):
        return _value(value)
    out: list[list[Any]] = []  # [head, first, last] runs
    for block in map(str, value):
        head, _, index = block.rpartition(".")
        if head and index.isdigit() and out and out[-1][0] == head and out[-1][2] == int(index) - 1:
            out[-1][2] = int(index)
        elif head and index.isdigit():
            out.append([head, int(index), int(index)])
        else:
            out.append([block, None, None])
    return ", ".join(h if a is None else f"{h}.{a}" if a == b else f"{h}.{a}-{b}" for h, a, b in out)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _common(found: Identified) -> list[str]:
    lines = []
    if found.model_type:
        lines.append(f"  model type (from marker keys): {', '.join(found.model_type)}")
    lines += [f"  also in the file: {p.name} ({p.tensors} tensors): {p.what}" for p in found.parts]
    return lines


def _config(config: Any, width: int) -> list[str]:
    """The config on one line, or one key a line (still JSON to paste into a file); a value too long for the
    width is spread over lines as indented JSON."""
    flat = json.dumps(config)
    if len(flat) + 10 <= width:
        return ["  config: " + flat]
    lines = ["  config:", "    {"]
    items = list(config.items())
    for n, (key, value) in enumerate(items):
        comma = "," if n < len(items) - 1 else ""
        one = f"     {json.dumps(key)}: {json.dumps(value)}{comma}"
        if len(one) <= width:
            lines.append(one)
        else:
            nested = json.dumps(value, indent=1).splitlines()
            lines.append(f"     {json.dumps(key)}: {nested[0]}")
            lines += ["     " + line for line in nested[1:-1]] + [f"     {nested[-1]}{comma}"]
    return [*lines, "    }"]


def render_inspection(found: Identified, check: WeightsCheck, file: str, width: int = 120) -> str:
    """A U-Net checkpoint in a few lines fitted to ``width``: the file's first line may be a long path; the config
    is JSON, one key a line when it does not fit on one (still valid JSON to paste into a file)."""
    unet: Inspection = found.unet
    lines = [f"{file}: {unet.matches} U-Net, {unet.naming} naming"
             + (f" under {unet.prefix!r}" if unet.prefix else "") + f" ({unet.family} family)",
             f"  tensors: {unet.tensors} in the U-Net; the rebuilt config's manifest matches {check.matched}"
             + ("" if check.ok else f" ({len(check.missing)} missing, {len(check.unexpected)} unexpected,"
                                    f" {len(check.mismatched)} with another shape)")]
    lines += _common(found)
    if unet.undetermined:
        lines.append(f"  not in the shapes (taken from {unet.matches if unet.matches != 'unknown' else 'defaults'}):"
                     f" {', '.join(unet.undetermined)}"
                     + ("" if found.model_type else "; nor the prediction type") + ", nor the native resolution")
    lines += _config(unet.config, width)
    lines.append(f"  next: unetviz table --config {file}   (the trace of this config)")
    return "\n".join(wrapped(line, width) for line in lines) + "\n"

