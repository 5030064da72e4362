"""What kind of file a diffusion user holds: one ``Kind`` record per kind, naming the keys that identify it and
the reader that reads its base model and details from the header's shapes (never a file name).

``identify(shapes, metadata)`` tries the kinds in ``KINDS`` order: the first whose anchor pattern matches a
key reads the file. Readers are named ``module:function`` and imported on first use (as the families' builders
are), so a kind's code loads only for its files. Public (stable): ``Kind``, ``KINDS``, ``Identified``,
``identify``, ``identify_file``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import UnetvizError
from ..core.records import Shape
from .header import KEY_MAX
from .parts import Part, model_type
from .shapes import find_unet


@dataclass(frozen=True, kw_only=True)
class Identified:
    """What a file is, as its header tells."""

    kind: str
    """The ``Kind.key`` (``lora``, ``controlnet``, ``unet``...)."""
    name: str
    """What it is, in words (``LoRA (kohya naming)``, ``ControlNet (original naming)``)."""
    base: str
    """The base model its widths declare (``SD 1.x``, ``SDXL base``; ``SD 1.x / SD 2.x`` where the widths
    cannot tell them apart; ``unknown``)."""
    evidence: str
    """Which width of which tensor says so."""
    tensors: int
    """Tensors of this model in the file."""
    details: Mapping[str, Any] = field(default_factory=dict)
    """Kind-specific facts (rank, blocks, trigger words, the image encoder...), JSON values."""
    config: Mapping[str, Any] | None = None
    """A config ``--config`` accepts, where unetviz traces this kind."""
    prefix: str = ""
    """The key prefix of this model's tensors in the file."""
    parts: tuple[Part, ...] = ()
    """The rest of the file, named (VAE, text encoders, EMA copy, schedule buffers, markers)."""
    model_type: tuple[str, ...] = ()
    """Model types its marker keys declare (v-prediction, zero terminal SNR, EDM)."""
    unet: Any = None
    """For U-Net checkpoints: the ``inspect.Inspection``."""


Reader = Callable[[Mapping[str, Shape], Mapping[str, str], str], Identified]


@dataclass(frozen=True, kw_only=True)
class Kind:
    """One kind of file."""

    key: str
    """Short name, the JSON's ``kind``."""
    name: str
    """What people call it."""
    anchors: tuple[str, ...]
    """Regular expressions (``re.search``) on keys: a key matching one makes the file this kind."""
    reader: str
    """``module:function`` (relative to ``unetviz.checkpoints``) reading (shapes, metadata, matched key)."""

    def matching(self, keys: list[str]) -> str | None:
        rx = re.compile("|".join(f"(?:{a})" for a in self.anchors))
        return next((k for k in keys if len(k) <= KEY_MAX and rx.search(k)), None)


KINDS = (
    Kind(key="control-lora", name="Control-LoRA", reader="addons:read_control_lora",
         anchors=(r"^lora_controlnet$",)),
    Kind(key="controlnet", name="ControlNet", reader="addons:read_controlnet",
         anchors=(r"(^|\.)input_hint_block\.0\.weight$", r"(^|\.)controlnet_cond_embedding\.conv_in\.weight$")),
    Kind(key="t2i-adapter", name="T2I-Adapter", reader="addons:read_t2i",
         anchors=(r"^(adapter\.)?body\.0\.(resnets\.0\.)?block1\.weight$",)),
    Kind(key="ip-adapter", name="IP-Adapter", reader="addons:read_ip_adapter",
         anchors=(r"^ip_adapter\.\d+\.to_k_ip\.weight$",)),
    Kind(key="motion-module", name="AnimateDiff motion module", reader="addons:read_motion",
         anchors=(r"^(down_blocks|mid_block|up_blocks)\.(\d+\.)?motion_modules\.\d+\.",)),
    Kind(key="unet", name="U-Net checkpoint", reader="addons:read_unet",
         anchors=(r"(^|\.)input_blocks\.0\.0\.weight$", r"(^|\.)conv_in\.weight$")),
    Kind(key="dora", name="DoRA (weight-decomposed LoRA)", reader="network:read_network",
         anchors=(r"\.dora_scale$", r"\.lora_magnitude_vector$")),
    Kind(key="loha", name="LyCORIS LoHa", reader="network:read_network", anchors=(r"\.hada_w1_a$",)),
    Kind(key="lokr", name="LyCORIS LoKr", reader="network:read_network", anchors=(r"\.lokr_w[12](_a)?$",)),
    Kind(key="lora", name="LoRA", reader="network:read_network",
         anchors=(r"\.lora_(down|up)\.weight$", r"\.lora_[AB](\.[A-Za-z0-9_]+)?\.weight$", r"\.lora\.down\.weight$",
                  r"_lora\.down\.weight$")),
    Kind(key="vae", name="VAE", reader="addons:read_vae",
         anchors=(r"(^|\.)(en|de)coder\.(down|up)(_blocks)?\.0\.(block|resnets)\.0\.conv1\.weight$",)),
    Kind(key="text-encoder", name="text encoder", reader="addons:read_text_encoder",
         anchors=(r"(^|\.)token_embedding\.weight$",)),
    Kind(key="ema", name="EMA copy of a U-Net", reader="addons:read_ema", anchors=(r"^model_ema\.diffusion_model",)),
)
"""Tried in this order: a Control-LoRA holds a ControlNet's hint block, so it comes first; a ControlNet or a
motion module holds U-Net-like keys, so they come before ``unet``;
a full checkpoint holds a VAE and text encoders, so ``unet`` comes before them."""


def identify(shapes: Mapping[str, Shape], metadata: Mapping[str, str] | None = None, name: str = "file") -> Identified:
    """What the file is (a ``UnetvizError`` naming what was looked for when no kind matches)."""
    keys = list(shapes)
    for kind in KINDS:
        anchor = kind.matching(keys)
        if anchor is None:
            continue
        if kind.key == "unet" and not _unet(shapes):
            continue
        module, _, function = kind.reader.partition(":")
        reader: Reader = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        try:
            found = reader(shapes, metadata or {}, anchor)
        except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as e:
            # keys of one kind, shapes of none: a damaged or hand-made header, refused in one line
            raise UnetvizError(f"inspect: {name!r} has {kind.name} keys ({anchor}) but shapes no"
                               f" {kind.name} has ({type(e).__name__}: {e})") from None
        return found if found.model_type else _with_type(found, shapes)
    raise UnetvizError(f"inspect: {name!r} holds no Stable-Diffusion-style U-Net nor any other kind unetviz reads"
                       " (LoRA/LyCORIS, ControlNet, T2I-/IP-Adapter, motion module, VAE, text encoder): none of"
                       " their keys is in its header")


def _unet(shapes: Mapping[str, Shape]) -> bool:
    return find_unet(shapes) is not None


def _with_type(found: Identified, shapes: Mapping[str, Shape]) -> Identified:
    from dataclasses import replace

    return replace(found, model_type=tuple(model_type(shapes)))


def identify_file(path: Path, key: str = "inspect") -> tuple[Identified, dict[str, Shape]]:
    """(what the file is, its shapes): only the header is read, never tensor data, never a pickle."""
    from .header import read_header

    shapes, metadata = read_header(path, key)
    return identify(shapes, metadata, path.name), shapes
