"""The other add-ons against a base: ControlNets (residual widths per skip), IP-Adapters (each to_k_ip against
its attention), motion modules (widths per level), T2I-Adapters, VAEs and text encoders (the widths they
share with the base)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from ...checkpoints.bases import TEXT_ENCODERS
from ...checkpoints.controlnet import controlnet_config
from ...checkpoints.kinds import Identified
from ...checkpoints.lora import underscored
from ...core.records import Shape
from ...tracing import trace_source
from .records import AddOn, BaseModel, Clash

Check = Callable[[BaseModel, str, Identified, dict[str, Shape]], AddOn]


def _under(shapes: Mapping[str, Shape], prefix: str) -> dict[str, Shape]:
    return {k[len(prefix):]: s for k, s in shapes.items() if k.startswith(prefix)}


def _same(clashes: list[Clash], module: str, key: str, what: str, mine: Any, theirs: Any) -> None:
    if mine != theirs:
        clashes.append(Clash(module=module, key=key, what=what, file=mine, base=theirs))


def check_controlnet(base: BaseModel, name: str, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    naming = str(found.details.get("naming", "diffusers"))
    mine = _under(shapes, found.prefix)
    cfg = controlnet_config(mine, naming)
    clashes: list[Clash] = []
    targets = _residuals(base, mine, naming, cfg.get("cross_attention_dim"),
                         cfg.get("projection_class_embeddings_input_dim"), clashes)
    return AddOn(file=name, found=found, targets=tuple(targets), clashes=tuple(clashes))


def _residuals(base: BaseModel, mine: Mapping[str, Shape], naming: str, ctx: Any, adm: Any,
               clashes: list[Clash]) -> list[str]:
    """A ControlNet's context and class embedding against the base's, its zero convs' widths against the base's
    skips; the skips' targets."""
    c = base.config
    _same(clashes, "", "cross-attention", "context width", ctx, c.get("cross_attention_dim"))
    _same(clashes, "add_embedding" if base.naming == "diffusers" else "label_emb", "class embedding",
          "class-embedding in-width", adm, c.get("projection_class_embeddings_input_dim"))
    zero = "zero_convs.{}.0" if naming.startswith("original") else "controlnet_down_blocks.{}"
    outs = []
    i = 0
    while f"{zero.format(i)}.weight" in mine:
        outs.append((zero.format(i), mine[f"{zero.format(i)}.weight"][0]))
        i += 1
    skips = trace_source(base.own).skips
    _same(clashes, "", "residuals", "residual count", len(outs), len(skips))
    for (key, width), skip in zip(outs, skips, strict=False):
        _same(clashes, f"skip {skip.index} from {skip.source}", key, "residual width", width, skip.channels)
    mid = "middle_block_out.0.weight" if naming.startswith("original") else "controlnet_mid_block.weight"
    if mid in mine:
        last = c.get("block_out_channels", [0])[-1]
        _same(clashes, "middle_block" if base.naming == "original" else "mid_block", mid.rsplit(".", 1)[0],
              "residual width", mine[mid][0], last)
    return [s.to or s.source for s in skips]


def check_control_lora(base: BaseModel, name: str, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    """A Control-LoRA: a ControlNet's residuals, and each low-rank pair against the base weight it adds to (its
    U-Net copy starts as the base's own weights, in the original naming)."""
    clashes: list[Clash] = []
    _residuals(base, shapes, "original", found.details.get("context"), found.details.get("class_embedding"), clashes)
    targets: list[str] = []
    dropped: list[str] = []
    for key, down in shapes.items():
        up = shapes.get(key[: -len(".down")] + ".up") if key.endswith(".down") else None
        if up is None or len(down) < 2 or len(up) < 2:
            continue
        module = key[: -len(".down")]
        hit = base.modules.get(underscored(module))
        if hit is None:
            dropped.append(module)
            continue
        targets.append(hit[0])
        _same(clashes, hit[0], module, "out-width", up[0], hit[1][0])
        _same(clashes, hit[0], module, "in-width", math.prod(down[1:]), math.prod(hit[1][1:]))
    return AddOn(file=name, found=found, targets=tuple(targets), dropped=tuple(dropped), clashes=tuple(clashes),
                 notes=(str(found.details.get("note", "")),))


_IP = re.compile(r"^ip_adapter\.(\d+)\.to_k_ip\.weight$")


def check_ip_adapter(base: BaseModel, name: str, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    layers = sorted((int(m.group(1)), s) for k, s in shapes.items() if (m := _IP.match(k)))
    clashes: list[Clash] = []
    targets: list[str] = []
    dropped: list[str] = []
    cross = [(p, s) for p, s in base.attention if ".attn2." in p]
    _same(clashes, "", "ip_adapter", "cross-attention layers", len(layers), len(cross))
    notes = [f"image encoder: {found.details.get('image_encoder')}"]
    if layers and cross and len(layers) != len(cross):
        # numbered over another model's attentions: index i is no layer of this base, so only the context
        # every to_k_ip reads is compared (once), and no layer is named
        _same(clashes, "", "to_k_ip", "context width", found.details.get("context"), cross[0][1][1])
        notes.append("its layers are numbered over another model's attentions: per-layer widths not compared")
        return AddOn(file=name, found=found, clashes=tuple(clashes), notes=tuple(notes))
    for index, shape in layers:
        key = f"ip_adapter.{index}.to_k_ip"
        if index >= len(base.attention):
            dropped.append(key)
            continue
        path, theirs = base.attention[index]
        targets.append(path.rsplit(".", 1)[0])
        _same(clashes, path, key, "in-width", shape[1], theirs[1])
        _same(clashes, path, key, "out-width", shape[0], theirs[0])
    _ip_lora(base, shapes, dropped, clashes)
    return AddOn(file=name, found=found, targets=tuple(targets), dropped=tuple(dropped), clashes=tuple(clashes),
                 notes=tuple(notes))


_IP_LORA = re.compile(r"^ip_adapter\.(\d+)\.to_(q|k|v|out)_lora\.(down|up)\.weight$")


def _ip_lora(base: BaseModel, shapes: Mapping[str, Shape], dropped: list[str], clashes: list[Clash]) -> None:
    """FaceID's LoRA on every attention processor: ``to_k``/``to_v`` read what the attention's ``to_k`` reads
    (its context, or its own width), ``to_q``/``to_out`` its width; every ``up`` writes its width."""
    for key, shape in shapes.items():
        m = _IP_LORA.match(key)
        if m is None or len(shape) != 2:
            continue
        index, proj, role = int(m.group(1)), m.group(2), m.group(3)
        if index >= len(base.attention):
            dropped.append(key)
            continue
        path, (hidden, reads) = base.attention[index][0], base.attention[index][1][:2]
        module = f"{path.rsplit('.', 1)[0]}.{'to_out.0' if proj == 'out' else 'to_' + proj}"
        if role == "down":
            _same(clashes, module, key, "in-width", shape[1], reads if proj in ("k", "v") else hidden)
        else:
            _same(clashes, module, key, "out-width", shape[0], hidden)


def check_motion(base: BaseModel, name: str, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    widths = list(found.details.get("widths", []))
    theirs = list(base.config.get("block_out_channels", []))
    clashes: list[Clash] = []
    _same(clashes, "", "down_blocks", "levels", len(widths), len(theirs))
    for i, (w, t) in enumerate(zip(widths, theirs, strict=False)):
        _same(clashes, f"down_blocks.{i}", f"down_blocks.{i}.motion_modules", "width", w, t)
    levels = range(min(len(widths), len(theirs)))
    return AddOn(file=name, found=found, targets=tuple(f"down_blocks.{i}" for i in levels),
                 clashes=tuple(clashes), notes=("motion modules go between the blocks of diffusers' UNetMotionModel;"
                                                " blocks named in diffusers' naming",))


def _made_for(base: BaseModel, name: str, found: Identified, what: str) -> AddOn:
    bases = found.base.split(" / ")
    clashes = [] if base.record is not None and base.record.name in bases else [
        Clash(module="", key=what, what="made for", file=found.base, base=base.model)]
    return AddOn(file=name, found=found, clashes=tuple(clashes), notes=(f"made for {found.base}: {found.evidence}",))


def check_t2i(base: BaseModel, name: str, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    return _made_for(base, name, found, "pixel-unshuffle factor")


def check_vae(base: BaseModel, name: str, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    clashes: list[Clash] = []
    _same(clashes, "conv_out" if base.naming == "diffusers" else "out.2", "latent", "latent channels",
          found.details.get("latent_channels"), base.config.get("out_channels", 4))
    return AddOn(file=name, found=found, clashes=tuple(clashes), notes=(str(found.details.get("note", "")),))


def check_text_encoder(base: BaseModel, name: str, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    width = found.details.get("width")
    mine = next((e.key for e in TEXT_ENCODERS if e.width == width), None)
    used = [t.encoder for t in base.record.text] if base.record else []
    clashes = [] if mine in used else [Clash(module="", key="text encoder", what="encoder width",
                                             file=width, base=[e.width for e in TEXT_ENCODERS if e.key in used])]
    return AddOn(file=name, found=found, clashes=tuple(clashes))


CHECKS: dict[str, Check] = {"controlnet": check_controlnet, "control-lora": check_control_lora,
                            "ip-adapter": check_ip_adapter,
                            "motion-module": check_motion, "t2i-adapter": check_t2i, "vae": check_vae,
                            "text-encoder": check_text_encoder}
"""Kind key -> its check (the LoRA-style kinds are ``network.check_network``)."""
