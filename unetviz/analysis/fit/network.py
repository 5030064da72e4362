"""LoRA-style files against a base: each changed module looked up in the base's manifest (either naming,
kohya's underscores too), its widths compared with the base weight's."""

from __future__ import annotations

import math
import re

from ...checkpoints.bases import TEXT_ENCODERS
from ...checkpoints.kinds import Identified
from ...checkpoints.lora import NetworkModule, parse_network, underscored
from ...core.records import Shape
from .records import AddOn, BaseModel, Clash

NETWORK_KINDS = ("lora", "dora", "loha", "lokr")
TEXT_IN = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1")
"""Text-encoder modules whose in-width is the encoder's width (fc2's is its MLP width)."""
TEXT_OUT = ("q_proj", "k_proj", "v_proj", "out_proj", "fc2")
"""Text-encoder modules whose out-width is the encoder's width."""
_LAYER = re.compile(r"(?:encoder[._]layers|resblocks)[._](\d+)[._]")


def check_network(base: BaseModel, name: str, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    modules, _, _ = parse_network(shapes)
    targets: list[str] = []
    dropped: list[str] = []
    clashes: list[Clash] = []
    notes: list[str] = []
    for m in modules:
        if m.part != "unet":
            _text_module(base, m, dropped, clashes, notes)
            continue
        hit = base.modules.get(underscored(m.path))
        if hit is None:
            dropped.append(m.name)
            continue
        targets.append(hit[0])
        clashes += module_clashes(m, hit[0], hit[1])
    return AddOn(file=name, found=found, targets=tuple(targets), dropped=tuple(dropped), clashes=tuple(clashes),
                 notes=tuple(dict.fromkeys(notes)))


def module_clashes(m: NetworkModule, path: str, shape: Shape) -> list[Clash]:
    """The clashes of one changed module with the base's weight (out, in[, kernel])."""
    out: list[Clash] = []
    if m.out_width is not None and m.out_width != shape[0]:
        out.append(Clash(module=path, key=m.name, what="out-width", file=m.out_width, base=shape[0]))
    if len(shape) < 2:
        return out
    width = m.in_width if m.in_width is not None or len(shape) > 2 else m.in_total  # a Linear: in-width = elements
    if width is not None and width != shape[1]:
        out.append(Clash(module=path, key=m.name, what="in-width", file=width, base=shape[1]))
    elif m.in_total is not None and m.in_total != math.prod(shape[1:]):
        out.append(Clash(module=path, key=m.name, what="in-width x kernel", file=m.in_total,
                         base=math.prod(shape[1:])))
    if m.kernel and math.prod(m.kernel) > 1 and tuple(shape[2:]) != m.kernel:
        out.append(Clash(module=path, key=m.name, what="kernel", file=list(m.kernel), base=list(shape[2:])))
    return out


def _text_module(base: BaseModel, m: NetworkModule, dropped: list[str], clashes: list[Clash],
                 notes: list[str]) -> None:
    """A text-encoder module: its part must be one of the base's encoders, its widths that encoder's."""
    if base.record is None:
        notes.append("text-encoder modules not checked: the base's widths match no known model")
        return
    part = next((t for t in base.record.text if m.part in (t.kohya, t.diffusers)), None)
    if part is None:
        dropped.append(m.name)
        return
    enc = next(e for e in TEXT_ENCODERS if e.key == part.encoder)
    layer = _LAYER.search(m.path)
    if layer is not None and int(layer.group(1)) >= enc.layers:
        dropped.append(m.name)
        return
    tail = "_".join(underscored(m.path).rsplit("_", 2)[-2:])
    where = f"{part.diffusers} ({enc.name})"
    if tail in TEXT_IN and m.in_width is not None and m.in_width != enc.width:
        clashes.append(Clash(module=where, key=m.name, what="in-width", file=m.in_width, base=enc.width))
    elif tail in TEXT_OUT and m.out_width is not None and m.out_width != enc.width:
        clashes.append(Clash(module=where, key=m.name, what="out-width", file=m.out_width, base=enc.width))
    notes.append(f"text-encoder modules checked against {base.record.name}'s encoders (widths, depth)")
