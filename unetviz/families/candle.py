"""candle's Stable Diffusion U-Net (candle-transformers ``stable_diffusion/unet_2d.rs``).

candle ports diffusers' ``UNet2DConditionModel`` and loads its safetensors unchanged, so its config
is translated to diffusers keyword arguments and traced by ``diffusers.unet2d_condition``; only
the translation lives here. The keys are the fields of ``UNet2DConditionModelConfig``, plus
``in_channels``/``out_channels`` (arguments of ``UNet2DConditionModel::new``) and ``sample_size``
(the latent size: candle's ``height / 8``, 64 for 512x512 images).

How candle's fields map (``UNet2DConditionModel::new``):

- ``blocks[i].use_cross_attn``: ``Some(d)`` = ``CrossAttnDownBlock2D`` with ``d`` transformer
  blocks per attention, ``None`` = ``DownBlock2D``; the up blocks mirror the list. The mid block is
  always ``UNetMidBlock2DCrossAttn``, with depth ``blocks.last().use_cross_attn.unwrap_or(1)``:
  exactly diffusers' ``transformer_layers_per_block[-1]`` with 1 for the plain blocks.
- ``blocks[i].attention_head_dim``: candle's ``attn_num_head_channels``, which its
  ``SpatialTransformer`` uses as the *number of heads* (head size = channels / heads), the same
  naming quirk as diffusers' ``attention_head_dim``, so it maps one to one.
- ``cross_attention_dim``: the width of the text context that ``to_k``/``to_v`` of ``attn2``
  project. The struct's ``Default`` says 1280, but ``StableDiffusionConfig::v1_5`` sets 768, the
  width of SD 1.5's CLIP ViT-L/14 text encoder; 1280 is not SD 1.5's value.
- ``sliced_attention_size``: attention computed in slices to save memory; no effect on shapes.
"""

from __future__ import annotations

from typing import Any

from ..core.config import Args
from ..core.errors import UnetvizError, bad_value
from ..core.records import Size
from ..engine.tracer import Act, Tracer
from .diffusers.unet2d import UNET2D_CONDITION_DEFAULTS, unet2d_condition

WHAT = "candle UNet2DConditionModelConfig"


def _block(out_channels: int, use_cross_attn: int | None) -> dict[str, Any]:
    return {"out_channels": out_channels, "use_cross_attn": use_cross_attn, "attention_head_dim": 8}


DEFAULTS: dict[str, Any] = {
    # candle's `impl Default for UNet2DConditionModelConfig`, field by field
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0.0,
    "blocks": [_block(320, 1), _block(640, 1), _block(1280, 1), _block(1280, None)],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1.0,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "cross_attention_dim": 1280,
    "sliced_attention_size": None,
    "use_linear_projection": False,
    # passed to UNet2DConditionModel::new beside the config (4 latent channels in and out)
    "in_channels": 4,
    "out_channels": 4,
    "sample_size": 64,
}

BLOCK_KEYS = ("out_channels", "use_cross_attn", "attention_head_dim")


def _blocks(a: Args) -> list[tuple[int, int | None, int]]:
    """(out_channels, use_cross_attn, attention_head_dim) of every block, checked."""
    raw = a.raw("blocks")
    if isinstance(raw, (str, bytes, dict)) or not isinstance(raw, (list, tuple)) or not raw:
        raise bad_value("blocks", raw, "a non-empty list of {out_channels, use_cross_attn, attention_head_dim}")
    out = []
    for i, b in enumerate(raw):
        key = f"blocks[{i}]"
        if not isinstance(b, dict):
            raise bad_value(key, b, "an object {out_channels, use_cross_attn, attention_head_dim}")
        for k in b:
            if k not in BLOCK_KEYS:
                raise UnetvizError(f"{key}.{k}: not a field of candle's BlockConfig; allowed: {', '.join(BLOCK_KEYS)}")
        for k in BLOCK_KEYS:
            if k not in b:  # a Rust struct literal names every field
                raise UnetvizError(f"{key}.{k}: missing; BlockConfig needs {', '.join(BLOCK_KEYS)}")
        cross = b["use_cross_attn"]
        if cross is not None and (isinstance(cross, bool) or not isinstance(cross, (int, float))):
            raise bad_value(f"{key}.use_cross_attn", cross, "null (no cross-attention) or the transformer"
                            " depth, an integer >= 1")
        if cross is not None:
            cross = a.int(f"{key}.use_cross_attn", 1, cross)
        out.append((a.int(f"{key}.out_channels", 1, b["out_channels"]), cross,
                    a.int(f"{key}.attention_head_dim", 1, b["attention_head_dim"])))
    return out


def _sample_size(a: Args) -> int | list[int]:
    raw = a.raw("sample_size")
    if isinstance(raw, (list, tuple)):
        if len(raw) != 2:
            raise bad_value("sample_size", raw, "an integer or [height, width]")
        return [a.int("sample_size", 1, raw[0]), a.int("sample_size", 1, raw[1])]
    return a.int("sample_size", 1)


def diffusers_kwargs(a: Args) -> dict[str, Any]:
    """The ``UNet2DConditionModel`` keyword arguments of a checked candle config."""
    blocks = _blocks(a)
    norm_eps = a.float("norm_eps")
    if norm_eps <= 0:
        raise bad_value("norm_eps", norm_eps, "a number > 0")
    if a.raw("sliced_attention_size") is not None:
        a.int("sliced_attention_size", 0)  # Some(0) means "slice automatically"; no effect on shapes
    return {
        "sample_size": _sample_size(a),
        "in_channels": a.int("in_channels", 1),
        "out_channels": a.int("out_channels", 1),
        "center_input_sample": a.bool("center_input_sample"),
        "flip_sin_to_cos": a.bool("flip_sin_to_cos"),
        "freq_shift": a.float("freq_shift"),
        "down_block_types": ["CrossAttnDownBlock2D" if c else "DownBlock2D" for _, c, _ in blocks],
        "up_block_types": ["CrossAttnUpBlock2D" if c else "UpBlock2D" for _, c, _ in reversed(blocks)],
        "block_out_channels": [ch for ch, _, _ in blocks],
        "layers_per_block": a.int("layers_per_block", 1),
        "downsample_padding": a.int("downsample_padding", 0),
        "mid_block_scale_factor": a.float("mid_block_scale_factor"),
        "norm_num_groups": a.int("norm_num_groups", 1),
        "norm_eps": norm_eps,
        "cross_attention_dim": a.int("cross_attention_dim", 1),
        # candle's mid block uses the last block's depth or 1: the same rule as diffusers' [-1]
        "transformer_layers_per_block": [c or 1 for _, c, _ in blocks],
        "attention_head_dim": [h for _, _, h in blocks],
        "use_linear_projection": a.bool("use_linear_projection"),
    }


def from_config(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``diffusers_kwargs`` of raw config keys (what ``unetviz.live.upstream.candle`` builds from)."""
    return diffusers_kwargs(Args(kwargs, DEFAULTS, WHAT))


def build(t: Tracer, a: Args, size: Size | None) -> Act:
    """Trace the diffusers model candle mirrors; the trace keeps family "candle"."""
    d = Args(diffusers_kwargs(a), UNET2D_CONDITION_DEFAULTS, "diffusers UNet2DConditionModel")
    try:
        return unet2d_condition(t, d, size)
    finally:
        if size is None and "sample_size" not in a.given:
            # candle has no sample_size: the latent is height / 8 of its default 512x512 image
            t.set_size_source("family default (candle: 512x512 image / 8)")
