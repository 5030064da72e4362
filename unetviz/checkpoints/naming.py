"""Both namings of one Stable Diffusion UNet: diffusers' (``down_blocks.1.attentions.0...``) and the
original ldm/sgm one (``input_blocks.4.1...``) that single-file checkpoints use.

Nothing here is a hand-written table. ``original_config`` turns a diffusers ``UNet2DConditionModel``
config of the SD family into the ``ldm`` family's keyword arguments for the same network; the two
traces then run the same layers in the same order (ResnetBlock2D and ResBlock, Transformer2DModel and
SpatialTransformer, the samplers, the embeddings), so ``module_map`` pairs them layer by layer,
checking that each pair is the same kind of layer with the same channels, kernel and tensor shapes,
and ``keymap`` pairs their ``state_dict`` tensors. A pair that does not match is an error, never a
guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.config import Args
from ..core.errors import UnetvizError
from ..core.records import Layer, Shape, Trace

SAME_TYPE = {"GroupNorm32": "GroupNorm"}
"""ldm's ``GroupNorm32`` only normalises in float32: the same module as diffusers' ``GroupNorm``."""

STRUCTURAL_DEFAULTS = ("center_input_sample", "only_cross_attention", "dual_cross_attention", "class_embed_type",
                       "num_class_embeds", "encoder_hid_dim", "encoder_hid_dim_type", "time_cond_proj_dim",
                       "time_embedding_dim", "time_embedding_act_fn", "timestep_post_act", "class_embeddings_concat",
                       "reverse_transformer_layers_per_block", "mid_block_only_cross_attention", "cross_attention_norm")
"""diffusers options the original UNetModel has no counterpart for: they must keep their defaults."""
FIXED = {"flip_sin_to_cos": True, "freq_shift": 0, "act_fn": "silu", "norm_num_groups": 32, "norm_eps": 1e-05,
         "downsample_padding": 1, "mid_block_scale_factor": 1, "resnet_time_scale_shift": "default",
         "resnet_skip_time_act": False, "resnet_out_scale_factor": 1.0, "time_embedding_type": "positional",
         "conv_in_kernel": 3, "conv_out_kernel": 3, "attention_type": "default",
         "mid_block_type": "UNetMidBlock2DCrossAttn"}
"""Values the original code hard-codes (timestep_embedding's cos-first layout, GroupNorm32, 3x3 convs)."""


def _levels(a: Args) -> tuple[list[int], list[bool]]:
    down, up = a.str_list("down_block_types", ("CrossAttnDownBlock2D", "DownBlock2D")), a.raw("up_block_types")
    cross = [d == "CrossAttnDownBlock2D" for d in down]
    mirrored = ["CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(cross)]
    if list(up) != mirrored:
        raise UnetvizError(f"up_block_types: got {list(up)}; the original UNetModel mirrors the encoder: {mirrored}")
    return a.int_list("block_out_channels", 1, len(down)), cross


def _heads(a: Args, widths: list[int], cross: list[bool]) -> dict[str, int]:
    """diffusers' per-level head counts (``num_attention_heads``, else the misnamed ``attention_head_dim``)
    as ldm's one ``num_heads`` or one ``num_head_channels``."""
    key = "num_attention_heads" if a.raw("num_attention_heads") is not None else "attention_head_dim"
    per_level = a.per_block(key, len(widths))
    heads = [h for h, c in zip(per_level, cross, strict=True) if c] + [per_level[-1]]
    used = [w for w, c in zip(widths, cross, strict=True) if c] + [widths[-1]]
    if len(set(heads)) == 1:
        return {"num_heads": heads[0], "num_head_channels": -1}
    per_head = {w // h for w, h in zip(used, heads, strict=True) if h and w % h == 0}
    if len(per_head) == 1 and all(h and w % h == 0 for w, h in zip(used, heads, strict=True)):
        return {"num_heads": -1, "num_head_channels": per_head.pop()}
    raise UnetvizError(f"{key}: got {a.raw(key)!r}; the original UNetModel needs one head count or one head width"
                       " for every level")


def original_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``{"family": "ldm", ...}`` config of the same network as a diffusers UNet2DConditionModel config."""
    # the builders' modules load when a second naming is asked for, not with every renderer that may ask
    from ..families.diffusers.unet2d import UNET2D_CONDITION_DEFAULTS
    from ..families.openai import ldm

    given = {k: v for k, v in config.items() if not k.startswith("_") and k not in ("family", "class")}
    a = Args(given, UNET2D_CONDITION_DEFAULTS, "diffusers UNet2DConditionModel")
    for key in STRUCTURAL_DEFAULTS:
        if a.raw(key) not in (None, False):
            raise UnetvizError(f"{key}: got {a.raw(key)!r}; the original UNetModel has no counterpart for it")
    for key, value in FIXED.items():
        if a.raw(key) != value:
            raise UnetvizError(f"{key}: got {a.raw(key)!r}; the original UNetModel has only {value!r}")
    widths, cross = _levels(a)
    if any(w % widths[0] for w in widths):
        raise UnetvizError(f"block_out_channels: got {widths}; the original channel_mult needs multiples of the first")
    out: dict[str, Any] = {
        "family": "ldm", "in_channels": a.int("in_channels", 1), "out_channels": a.int("out_channels", 1),
        "model_channels": widths[0], "channel_mult": [w // widths[0] for w in widths],
        "num_res_blocks": a.int("layers_per_block", 0), "dropout": a.float("dropout"),
        "attention_resolutions": [2**i for i, c in enumerate(cross) if c][::-1], **_heads(a, widths, cross),
        "use_spatial_transformer": True, "context_dim": a.int("cross_attention_dim", 1), "legacy": False,
        "use_linear_in_transformer": a.bool("use_linear_projection"),
    }
    depth = a.raw("transformer_layers_per_block")
    out["transformer_depth"] = (list(depth) if isinstance(depth, (list, tuple))
                                else a.int("transformer_layers_per_block"))
    if a.raw("sample_size") is not None:
        out["image_size"] = a.int("sample_size", 1)
    if a.raw("addition_embed_type") is not None:
        if a.raw("addition_embed_type") != "text_time":
            raise UnetvizError(f"addition_embed_type: got {a.raw('addition_embed_type')!r}; the original UNetModel"
                               " has only SDXL's \"text_time\" (num_classes \"sequential\")")
        out.update(num_classes="sequential", adm_in_channels=a.int("projection_class_embeddings_input_dim", 1))
    # as the published configs write them: only what differs from the constructor's defaults
    kept = ("family", "transformer_depth", *ldm.REQUIRED)
    return {k: v for k, v in out.items() if k in kept or ldm.DEFAULTS.get(k) != v}


def _signature(layer: Layer) -> tuple[Any, ...]:
    tensors = tuple((key.rsplit(".", 1)[-1], shape) for key, shape in layer.tensors)
    return (SAME_TYPE.get(layer.type, layer.type), layer.in_channels, layer.out_channels, layer.kernel, tensors)


def module_map(diffusers_trace: Trace, ldm_trace: Trace) -> dict[str, str]:
    """diffusers layer path -> original layer path, pairing the two forward passes layer by layer."""
    # parameter-free rows (the attention matmuls) own no tensor: the two namings pair modules that do
    mine = tuple(x for x in diffusers_trace.layers if x.tensors)
    theirs = tuple(x for x in ldm_trace.layers if x.tensors)
    if len(mine) != len(theirs):
        raise UnetvizError(f"keymap: the networks differ: {len(mine)} layers in diffusers' naming,"
                           f" {len(theirs)} in the original")
    pairs: dict[str, str] = {}
    for n, (d, o) in enumerate(zip(mine, theirs, strict=True)):
        if _signature(d) != _signature(o):
            raise UnetvizError(f"keymap: layer #{n} differs: {d.path} ({d.type} {d.in_channels}->{d.out_channels})"
                               f" vs {o.path} ({o.type} {o.in_channels}->{o.out_channels})")
        if pairs.setdefault(d.path, o.path) != o.path:  # pragma: no cover - a module run twice, elsewhere
            raise UnetvizError(f"keymap: {d.path} runs twice against different original modules")
    return pairs


def keymap(diffusers_trace: Trace, ldm_trace: Trace,
           modules: Mapping[str, str] | None = None) -> list[tuple[str, str, Shape]]:
    """Every ``state_dict`` tensor as (diffusers key, original key, shape), in diffusers' manifest order.

    Give the constructor's traces (``unetviz.tracing.constructed(...)``): they hold every module. Raises unless the
    map is one to one and covers both manifests. ``modules``: their ``module_map``, where the caller has it.
    """
    layers = module_map(diffusers_trace, ldm_trace) if modules is None else modules
    theirs = dict(ldm_trace.manifest)
    out: list[tuple[str, str, Shape]] = []
    for key, shape in diffusers_trace.manifest:
        module, _, leaf = key.rpartition(".")
        original = f"{layers.get(module, '?')}.{leaf}"
        if theirs.get(original) != shape:
            raise UnetvizError(f"keymap: {key} {list(shape)} has no original tensor of that shape ({original})")
        out.append((key, original, shape))
    if len({o for _, o, _ in out}) != len(out) or len(out) != len(theirs):
        raise UnetvizError(f"keymap: {len(out)} diffusers tensors do not map one to one onto {len(theirs)}"
                           " original ones")
    return out


def _common_parts(paths: list[list[str]]) -> list[str]:
    common = paths[0]
    for parts in paths[1:]:
        n = 0
        while n < min(len(common), len(parts)) and common[n] == parts[n]:
            n += 1
        common = common[:n]
    return common


def original_path(diffusers_path: str, config: str | Mapping[str, Any]) -> str:
    """The original name of a diffusers module path or ``state_dict`` key of ``config`` (a preset name
    or a diffusers config dict): ``down_blocks.0.attentions.0`` -> ``input_blocks.1.1``.

    A block-level module maps to the original one that runs exactly the same layers (a Downsample2D to
    the Downsample, not to its conv); any other container maps when exactly one original module holds
    the layers it holds: diffusers' ``down_blocks.1`` spans three input blocks and has no single name.
    """
    from ..tracing import constructed, resolve

    resolved, _ = resolve(config) if isinstance(config, str) else (dict(config), None)
    mine, theirs = constructed(resolved), constructed(original_config(resolved))
    pairs = module_map(mine, theirs)
    module, _, leaf = diffusers_path.rpartition(".")
    if module in pairs and leaf in ("weight", "bias"):
        return f"{pairs[module]}.{leaf}"
    spans = {(u.first, u.last): u.path for u in theirs.units}
    unit = next((u for u in mine.units if u.path == diffusers_path), None)
    if unit is not None and (unit.first, unit.last) in spans:
        return spans[(unit.first, unit.last)]
    if diffusers_path in pairs:
        return pairs[diffusers_path]
    inside = [o for d, o in pairs.items() if d.startswith(diffusers_path + ".")]
    if not inside:
        raise UnetvizError(f"path: {diffusers_path!r} holds no layer of this model")
    # where the modules below share their names (ff.net.0.proj in both), the parent is the one above them
    parents = {o[: -len(d) + len(diffusers_path)] for d, o in pairs.items()
               if d.startswith(diffusers_path + ".") and o.endswith(d[len(diffusers_path):])}
    if len(parents) == 1 and len(inside) == sum(1 for d in pairs if d.startswith(diffusers_path + ".")):
        candidate = parents.pop()
        if sorted(o for o in pairs.values() if o.startswith(candidate + ".")) == sorted(inside):
            return candidate
    prefix = ".".join(_common_parts([p.split(".") for p in inside]))
    holds = [o for o in pairs.values() if o.startswith(prefix + ".")]
    if not prefix or sorted(holds) != sorted(inside):
        raise UnetvizError(f"path: {diffusers_path!r} has no single original module (its layers span"
                           f" {inside[0]} ... {inside[-1]})")
    return prefix
