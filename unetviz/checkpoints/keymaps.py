"""Both namings of a Stable Diffusion U-Net, whichever one a source is given in.

``twins(config)`` is the pair of constructor traces (diffusers naming, original naming) of one network:
a diffusers config is turned into its ``ldm`` twin by ``naming.original_config``; an ``ldm`` config into
its diffusers twin by ``diffusers_config`` below. ``naming.keymap`` then pairs their tensors one to one,
checking every shape. ``block_id`` is the LoRA block name of an original path (IN00..., MID, OUT...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..core.config import Args
from ..core.errors import UnetvizError
from ..core.records import Shape, Trace
from ..families import lookup
from ..tracing import constructed, key_of
from .naming import keymap, module_map, original_config

ADD_TIME_EMBED_DIM = 256
"""SDXL's ``addition_time_embed_dim``: its ``adm_in_channels`` 2816 = 1280 (pooled text) + 6 x 256."""


@dataclass(frozen=True, kw_only=True)
class Twins:
    """One network in both namings."""

    diffusers: Trace
    """The constructor's trace in diffusers' naming."""
    original: Trace
    """The constructor's trace in the original ldm/sgm naming."""
    keys: tuple[tuple[str, str, Shape], ...]
    """Every tensor: (diffusers key, original key, shape), in diffusers' state_dict order."""
    modules: Mapping[str, str]
    """diffusers layer path -> original layer path."""


def diffusers_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The diffusers ``UNet2DConditionModel`` config of the same network as an ``ldm`` config."""
    from ..families.openai import ldm  # loaded when an ldm config's twin is asked for

    given = {k: v for k, v in config.items() if k != "family" and not k.startswith("_")}
    a = Args(given, ldm.DEFAULTS, "ldm UNetModel")
    mc, mults = a.int("model_channels", 1), a.raw("channel_mult")
    widths = [int(m * mc) for m in mults]
    rates = list(a.raw("attention_resolutions"))
    cross = [2**i in rates for i in range(len(widths))]
    depth = a.raw("transformer_depth")
    depths = [max(1, int(d)) for d in depth] if isinstance(depth, (list, tuple)) else [int(depth)] * len(widths)
    middle = a.raw("transformer_depth_middle")
    if middle is not None and int(middle) != depths[-1]:
        raise UnetvizError(f"transformer_depth_middle: got {middle!r}; diffusers' mid block takes the last level's"
                           f" depth ({depths[-1]})")
    heads = a.int("num_heads", -1)
    head_channels = a.int("num_head_channels", -1)
    out: dict[str, Any] = {
        "_class_name": "UNet2DConditionModel", "in_channels": a.int("in_channels", 1),
        "out_channels": a.int("out_channels", 1), "block_out_channels": widths,
        "layers_per_block": a.int("num_res_blocks", 0),
        "down_block_types": ["CrossAttnDownBlock2D" if c else "DownBlock2D" for c in cross],
        "up_block_types": ["CrossAttnUpBlock2D" if c else "UpBlock2D" for c in reversed(cross)],
        "transformer_layers_per_block": depths if len(set(depths)) > 1 else depths[0],
        "attention_head_dim": [heads if head_channels == -1 else w // head_channels for w in widths],
        "cross_attention_dim": a.int("context_dim", 1), "use_linear_projection": a.bool("use_linear_in_transformer"),
    }
    if a.raw("image_size") is not None:
        out["sample_size"] = a.int("image_size", 1)
    if a.raw("num_classes") == "sequential":
        adm = a.int("adm_in_channels", 1)
        out.update(addition_embed_type="text_time", addition_time_embed_dim=ADD_TIME_EMBED_DIM,
                   projection_class_embeddings_input_dim=adm)
    elif a.raw("num_classes") is not None:
        raise UnetvizError(f"num_classes: got {a.raw('num_classes')!r}; only SDXL's \"sequential\" has a diffusers"
                           " counterpart here")
    return out


def twins(config: Mapping[str, Any]) -> Twins:
    """The network of ``config`` (either family) in both namings; an error if it has no twin."""
    return _twins(key_of(dict(config)))


@lru_cache(maxsize=32)
def _twins(key: str) -> Twins:
    config = json.loads(key)
    family, _ = lookup(config)
    if family.family == "ldm":
        return _paired(constructed(diffusers_config(config)), constructed(config))
    _check_twinned(family.family, family.model)
    return _paired(constructed(config), constructed(original_config(config)))


def _check_twinned(family: str, model: str) -> None:
    if family != "diffusers" or model != "UNet2DConditionModel":
        raise UnetvizError(f"naming: the {family} family ({model}) has one naming only; the original"
                           " naming exists for Stable Diffusion's UNet2DConditionModel and ldm UNetModel")


def _paired(mine: Trace, theirs: Trace) -> Twins:
    modules = module_map(mine, theirs)
    return Twins(diffusers=mine, original=theirs, keys=tuple(keymap(mine, theirs, modules)), modules=modules)


_NAMES: dict[str, dict[str, str]] = {}
"""Config key -> its original names: they depend on the config alone, not on the size a trace ran at."""


def original_names(trace: Trace) -> dict[str, str]:
    """Module path -> its original name, for every layer and unit of ``trace`` (empty when the model has
    no second naming). An ldm trace maps to itself."""
    if trace.family == "ldm":
        return {p: p for p in [*(x.path for x in trace.layers), *(u.path for u in trace.units)]}
    if trace.family != "diffusers" or trace.model != "UNet2DConditionModel":
        return {}
    try:
        key = key_of(thawed(trace.given))
        names = _NAMES.get(key)
        if names is None:
            names = _names_of(key, trace)
            if len(_NAMES) >= 32:  # bounded, as the twins' cache
                _NAMES.pop(next(iter(_NAMES)))
            _NAMES[key] = names
    except UnetvizError:
        return {}
    return dict(names)


def _names_of(key: str, trace: Trace) -> dict[str, str]:
    """The original names of the diffusers config ``key``, traced as ``trace``."""
    if trace.error is None:
        # a forward pass that ran to the end met every module, in the constructor's order: it is the
        # diffusers twin at any size, so only the original naming's trace is made
        config = json.loads(key)
        family, _ = lookup(config)
        _check_twinned(family.family, family.model)
        pair = _paired(trace, constructed(original_config(config)))
    else:
        pair = _twins(key)
    names = dict(pair.modules)
    spans = {(u.first, u.last): u.path for u in pair.original.units}
    names.update({u.path: spans[(u.first, u.last)] for u in pair.diffusers.units if (u.first, u.last) in spans})
    return names


def thawed(value: Any) -> Any:
    """A trace's read-only config as plain JSON values again."""
    if isinstance(value, Mapping):
        return {k: thawed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thawed(v) for v in value]
    return value


_BLOCK = re.compile(r"(input_blocks|middle_block|output_blocks)(?:\.(\d+))?")


def block_id(original: str) -> str:
    """The LoRA block-weight name of an original module path: ``input_blocks.4...`` -> ``IN04``,
    ``middle_block`` -> ``MID``, ``output_blocks.11`` -> ``OUT11``; ``""`` for time_embed, label_emb and out
    (the tools' BASE is the text encoder, not a U-Net module)."""
    m = _BLOCK.match(original)
    if m is None:
        return ""
    if m.group(1) == "middle_block":
        return "MID"
    return ("IN" if m.group(1) == "input_blocks" else "OUT") + f"{int(m.group(2) or 0):02d}"
