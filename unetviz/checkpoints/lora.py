"""LoRA-style files (LoRA, LoCon, LoHa, LoKr, DoRA) read from their keys and shapes: which modules they
change, with what in- and out-width, rank and algorithm.

Key grammars, one ``MODULE.SUFFIX`` each (suffixes in ``SUFFIXES``):

- kohya's sd-scripts and LyCORIS: ``lora_unet_<module path with _ for .>.lora_down.weight`` (``lora_te_``,
  ``lora_te1_``, ``lora_te2_`` for text encoders), ``.hada_w1_a`` (LoHa), ``.lokr_w1`` (LoKr), ``.dora_scale``;
- diffusers: ``unet.<path>.lora.down.weight``, the older ``unet.<path>.processor.to_q_lora.down.weight``;
- peft: ``unet.<path>.lora_A.weight`` / ``lora_B`` (an adapter name may sit between), ``lora_magnitude_vector``.

Functions other modules may use (stable): ``parse_network``, ``NetworkModule``, ``underscored``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.records import Shape
from .header import KEY_MAX

SUFFIXES: dict[str, str] = {
    "lora_down.weight": "down", "lora_up.weight": "up", "lora_mid.weight": "mid", "alpha": "alpha",
    "lora.down.weight": "down", "lora.up.weight": "up", "lora_A.weight": "down", "lora_B.weight": "up",
    "dora_scale": "dora", "lora_magnitude_vector": "dora",
    "hada_w1_a": "hada_w1_a", "hada_w1_b": "hada_w1_b", "hada_w2_a": "hada_w2_a", "hada_w2_b": "hada_w2_b",
    "hada_t1": "hada_t1", "hada_t2": "hada_t2",
    "lokr_w1": "lokr_w1", "lokr_w1_a": "lokr_w1_a", "lokr_w1_b": "lokr_w1_b", "lokr_w2": "lokr_w2",
    "lokr_w2_a": "lokr_w2_a", "lokr_w2_b": "lokr_w2_b", "lokr_t2": "lokr_t2",
}
"""Key suffix -> the role of its tensor in the module's update (kohya, LyCORIS, diffusers and peft names)."""
_SUFFIX = re.compile(r"^(.+?)\.(" + "|".join(re.escape(s) for s in sorted(SUFFIXES, key=len, reverse=True)) + r")$")
_PEFT_NAMED = re.compile(r"^(.+)\.(lora_A|lora_B)\.[A-Za-z0-9_]+\.weight$")
_PROCESSOR = re.compile(r"^(.+)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$")

PARTS: tuple[tuple[str, str, str], ...] = (
    ("lora_unet_", "unet", "kohya"), ("lycoris_", "unet", "kohya"), ("lora_te1_", "lora_te1", "kohya"),
    ("lora_te2_", "lora_te2", "kohya"), ("lora_te_", "lora_te", "kohya"), ("unet.", "unet", "diffusers"),
    ("text_encoder_2.", "text_encoder_2", "diffusers"), ("text_encoder.", "text_encoder", "diffusers"),
    ("transformer.", "unet", "diffusers"), ("lora_transformer_", "unet", "kohya"),
    ("base_model.model.", "unet", "peft"), ("model.diffusion_model.", "unet", "original"),
    ("diffusion_model.", "unet", "original"),
)
"""Module-name prefix -> (the part of the pipeline it changes, the naming style); unprefixed names are U-Net's.
Part ``unet`` is the denoiser, whichever it is: diffusers saves a FLUX/SD3 LoRA under ``transformer.``."""


@dataclass(frozen=True, kw_only=True)
class NetworkModule:
    """One module a LoRA-style file changes."""

    name: str
    """The module's name in the file (the key without its suffix)."""
    part: str
    """``unet``, or the text encoder's prefix (``lora_te``, ``lora_te1``, ``lora_te2``, ``text_encoder``,
    ``text_encoder_2``)."""
    path: str
    """The module's path inside that part as the file writes it (kohya's with ``_`` for ``.``)."""
    algo: str
    """``lora``, ``locon`` (a LoRA of a convolution), ``loha``, ``lokr``; ``+dora`` when weight-decomposed."""
    out_width: int | None
    """Output features/channels of the changed weight."""
    in_width: int | None
    """Input features/channels (None where the file stores them flattened with the kernel)."""
    in_total: int | None
    """Input elements per output row (in-width x kernel area): what the base weight's row must hold."""
    kernel: tuple[int, ...]
    """The kernel, where the file shows one (``()`` for linear)."""
    rank: int | None
    """The rank (LoRA's down rows; LoHa's and LoKr's factor rank)."""


def underscored(path: str) -> str:
    """kohya's form of a module path: ``down_blocks.0.attentions.0`` -> ``down_blocks_0_attentions_0``."""
    return path.replace(".", "_")


def _split(key: str) -> tuple[str, str] | None:
    if len(key) > KEY_MAX:
        return None
    if m := _PROCESSOR.match(key):
        out = ".to_out.0" if m.group(2) == "to_out" else f".{m.group(2)}"
        return m.group(1) + out, m.group(3)
    if m := _PEFT_NAMED.match(key):
        return m.group(1), "down" if m.group(2) == "lora_A" else "up"
    if m := _SUFFIX.match(key):
        return m.group(1), SUFFIXES[m.group(2)]
    return None


def parse_network(shapes: Mapping[str, Shape]) -> tuple[list[NetworkModule], list[str], str]:
    """(the modules a LoRA-style file changes, its keys that are no part of one, its naming style: ``kohya``,
    ``diffusers``, ``peft``, ``original``)."""
    roles: dict[str, dict[str, Shape]] = {}
    other: list[str] = []
    for key, shape in shapes.items():
        split = _split(key)
        if split is None:
            other.append(key)
        else:
            roles.setdefault(split[0], {})[split[1]] = shape
    styles: dict[str, int] = {}
    modules = []
    for name, parts in roles.items():
        part, path, style = _where(name)
        styles[style] = styles.get(style, 0) + 1
        modules.append(_module(name, part, path, parts))
    style = max(styles, key=lambda s: styles[s]) if styles else ""
    if style in ("diffusers", "peft"):  # the suffixes tell diffusers' own formats from peft's lora_A/lora_B
        own = any(_PROCESSOR.match(k) or k.endswith(".lora.down.weight") for k in shapes if len(k) <= KEY_MAX)
        style = "diffusers" if own else "peft"
    return modules, other, style


def _where(name: str) -> tuple[str, str, str]:
    for prefix, part, style in PARTS:
        if name.startswith(prefix):
            return part, name[len(prefix):], style
    return "unet", name, "peft"


def _module(name: str, part: str, path: str, r: dict[str, Shape]) -> NetworkModule:
    out = width = total = rank = None
    kernel: tuple[int, ...] = ()
    if "down" in r or "up" in r:
        down, up = r.get("down"), r.get("up")
        algo = "lora"
        if down is not None and len(down) >= 2:
            rank, width, kernel = down[0], down[1], tuple(down[2:])
        if up is not None and len(up) >= 2:
            out, rank = up[0], rank or up[1]
        if kernel and math.prod(kernel) > 1:
            algo = "locon"
        total = None if width is None else width * math.prod(kernel)
    elif "hada_w1_a" in r and "hada_w1_b" in r:
        algo, a, b = "loha", r["hada_w1_a"], r["hada_w1_b"]
        if "hada_t1" in r:  # Tucker form: w1_a is (rank, out), w1_b (rank, in), the kernel in t1
            rank, out, width, kernel = a[0], a[1], b[1], tuple(r["hada_t1"][2:])
            total = width * math.prod(kernel)
        else:  # w1_a (out, rank), w1_b (rank, in x kernel area)
            rank, out, total = a[1], a[0], b[1]
    elif ("lokr_w1" in r or {"lokr_w1_a", "lokr_w1_b"} <= set(r)) and (
            "lokr_w2" in r or {"lokr_w2_a", "lokr_w2_b"} <= set(r)):
        algo = "lokr"
        w1 = r.get("lokr_w1") or (r["lokr_w1_a"][0], r["lokr_w1_b"][1])
        if "lokr_w2" in r:
            w2 = r["lokr_w2"]
        elif "lokr_t2" in r:
            w2 = (r["lokr_w2_a"][1], r["lokr_w2_b"][1], *r["lokr_t2"][2:])
        else:
            w2 = (r["lokr_w2_a"][0], r["lokr_w2_b"][1])
        rank = r["lokr_w1_a"][1] if "lokr_w1_a" in r else r["lokr_w2_a"][1] if "lokr_w2_a" in r else None
        out, kernel = w1[0] * w2[0], tuple(w2[2:])
        width = w1[1] * w2[1] if len(w2) > 2 or "lokr_w2" in r else None
        total = w1[1] * w2[1] * math.prod(kernel)
    else:
        algo = "?"
    if "dora" in r:
        algo += "+dora"
    return NetworkModule(name=name, part=part, path=path, algo=algo, out_width=out, in_width=width,
                         in_total=total, kernel=kernel, rank=rank)


_BLOCK = re.compile(r"^(down_blocks|up_blocks|input_blocks|output_blocks|transformer_blocks|single_transformer_blocks"
                    r"|double_blocks|single_blocks|joint_blocks)[._](\d+)|^(mid_block|middle_block)"
                    r"|^(conv_in|conv_out|time_embedding|time_embed|add_embedding|label_emb|out)(?=[._]|$)")


def block_of(path: str) -> str:
    """The U-Net block a module path is in (``down_blocks.1``, ``input_blocks.4``, ``mid_block``), in either
    separator."""
    m = _BLOCK.match(path)
    if m is None:
        return "?"
    if m.group(1):
        return f"{m.group(1)}.{m.group(2)}"
    return m.group(3) or m.group(4)
