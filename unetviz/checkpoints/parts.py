"""The parts of a whole checkpoint beside its main model: VAE, text encoders, EMA copies, diffusion schedule
buffers, model-type markers, each named by what it is (never counted as an anonymous "component")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.records import Shape
from .bases import text_encoder

SCHEDULE = frozenset({
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod", "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod",
    "posterior_variance", "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
    "logvar", "lvlb_weights", "shift_factor", "scale_factor"})
"""Buffers ldm's ``DDPM.register_schedule`` (and its ``LatentDiffusion``) keeps at the top of a checkpoint."""

MARKERS: dict[str, str] = {
    "v_pred": "v-prediction", "ztsnr": "zero terminal SNR", "edm_mean": "EDM (Playground v2.5 latents)",
    "edm_std": "EDM (Playground v2.5 latents)", "edm_vpred.sigma_max": "EDM v-prediction",
    "edm_vpred.sigma_min": "EDM v-prediction",
}
"""Keys that mark the model type, as ComfyUI's ``supported_models`` reads them (their values are not read)."""


@dataclass(frozen=True, kw_only=True)
class Part:
    """One part of a checkpoint file."""

    name: str
    """Its key prefix (``first_stage_model``, ``conditioner.embedders.1``) or ``schedule`` / ``markers``."""
    what: str
    """What it is, in words."""
    tensors: int
    """Its tensors in the file."""


_EMBEDDER = re.compile(r"^(conditioner\.embedders\.\d+)\.")
_LABELS = {"model": "the U-Net (model.diffusion_model)", "first_stage_model": "VAE", "vae": "VAE",
           "model_ema": "EMA copy of the U-Net",
           "control_model": "ControlNet", "embedder": "CLIP image encoder (unCLIP)",
           "noise_augmentor": "image-embedding noise augmentor (unCLIP)"}
"""Top-level prefixes of single-file checkpoints (ldm, sgm, ControlNet 1.0 full files, unCLIP)."""


def model_type(shapes: Mapping[str, Shape]) -> list[str]:
    """The model types its marker keys declare (empty: no marker; the type is then not in the header)."""
    return sorted({what for key, what in MARKERS.items() if key in shapes})


def parts(shapes: Mapping[str, Shape], skip: str) -> list[Part]:
    """Every part of the file outside the key prefix ``skip`` (the main model's), named."""
    groups: dict[str, list[str]] = {}
    for key in shapes:
        if skip and key.startswith(skip):
            continue
        if key in SCHEDULE:
            head = "schedule"
        elif key in MARKERS:
            head = "markers"
        elif m := _EMBEDDER.match(key):
            head = m.group(1)
        else:
            head = key.split(".")[0] if "." in key else key
        groups.setdefault(head, []).append(key)
    return [Part(name=head, what=_what(head, keys, shapes), tensors=len(keys)) for head, keys in groups.items()]


def _what(head: str, keys: list[str], shapes: Mapping[str, Shape]) -> str:
    if head == "schedule":
        steps = {shapes[k][0] for k in keys if len(shapes[k]) == 1}
        return "diffusion schedule buffers" + (f" ({steps.pop()} steps)" if len(steps) == 1 else "")
    if head == "markers":
        return "model-type markers: " + ", ".join(model_type({k: shapes[k] for k in keys}))
    token = next((shapes[k] for k in keys if k.endswith("token_embedding.weight")), None)
    if token is not None and len(token) == 2:
        enc = text_encoder(token[1])
        return enc.name if enc else f"a text encoder {token[1]} wide"
    what = _LABELS.get(head, "")
    if head == "model_ema" and any(k.count(".") == 1 and k.startswith("model_ema.diffusion_model") for k in keys):
        what += " (LitEma's names without dots) with its decay and update count"
    return what or "other tensors"
