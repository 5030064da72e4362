"""The base model of ``unetviz fit``: a checkpoint (its header), a preset or a config, as a module index in
both namings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...checkpoints.bases import by_context
from ...checkpoints.keymaps import diffusers_config, twins
from ...checkpoints.kinds import identify_file
from ...checkpoints.lora import underscored
from ...core.errors import UnetvizError
from ...core.records import Shape
from ...families import lookup
from ...tracing import constructed, resolve_named
from .records import BaseModel


def load_base(source: str | Path | dict[str, Any]) -> BaseModel:
    own, display, model = _config(source)
    family, _ = lookup(own)
    if family.family == "ldm":
        naming, config = "original", diffusers_config(own)
    elif family.model == "UNet2DConditionModel":
        naming, config = "diffusers", {k: v for k, v in own.items() if k != "family"}
    else:
        raise UnetvizError(f"BASE: {display!r} is a {family.model}; fit reads Stable Diffusion U-Nets (a diffusers"
                           " UNet2DConditionModel or an ldm UNetModel: a checkpoint, a preset or a config)")
    ctx, adm = config.get("cross_attention_dim"), config.get("projection_class_embeddings_input_dim")
    found = by_context(ctx, adm, exact_adm=True) if isinstance(ctx, int) else []
    record = found[0] if found and found[0].widths == tuple(config.get("block_out_channels", ())) else None
    modules, attention = _index(own, naming)
    return BaseModel(source=display, model=model or (record.name if record else f"unknown (context {ctx})"),
                     naming=naming, config=config, own=own, modules=modules, record=record, attention=attention)


def _config(source: str | Path | dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(config in its own family, display name, what the file says it is: "" for presets and configs)."""
    if isinstance(source, (str, Path)) and str(source).lower().endswith(".safetensors"):
        path = Path(source)
        found, _ = identify_file(path, "BASE")
        if found.kind != "unet" or found.config is None:
            raise UnetvizError(f"BASE: {path.name!r} is a {found.name}, not a base model; allowed: a U-Net"
                               " checkpoint, a preset name or a config")
        return dict(found.config), path.name, found.base
    config, _, display = resolve_named(source)
    return config, display or str(source), ""


def _index(own: dict[str, Any], naming: str) -> tuple[dict[str, tuple[str, Shape]],
                                                     tuple[tuple[str, Shape], ...]]:
    """kohya-style name (either naming) -> (path in the base's naming, weight shape); and the attentions."""
    try:
        keys = twins(own).keys
    except UnetvizError:  # a network with one naming only: its own names
        keys = tuple((k, k, s) for k, s in constructed(own).manifest)
    modules: dict[str, tuple[str, Shape]] = {}
    attention: list[tuple[str, Shape]] = []
    for d, o, shape in keys:
        if not d.endswith(".weight"):
            continue
        mine = (o if naming == "original" else d)[: -len(".weight")]
        modules[underscored(d[: -len(".weight")])] = (mine, shape)
        modules[underscored(o[: -len(".weight")])] = (mine, shape)
        if d.endswith((".attn1.to_k.weight", ".attn2.to_k.weight")):
            attention.append((mine, shape))
    return modules, tuple(attention)
