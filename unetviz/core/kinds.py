"""The one vocabulary of unit kinds, its classifier, and how each kind is drawn.

A *unit* is a block-level step (a resnet, an attention, a sampler, a lone conv). Builders name the
kind of each unit they open; bare layers and observed modules are classified here, by one function,
so the tracer, the observer, the graph layout and the colours can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Size = tuple[int, ...]

Kind = Literal["conv", "norm", "embed", "mlp", "resnet", "attention", "transformer", "downsample", "upsample",
               "layer"]
KIND_NAMES: tuple[Kind, ...] = get_args(Kind)


@dataclass(frozen=True, kw_only=True)
class KindStyle:
    """How a kind is shown in diagrams and legends."""

    label: str
    """The legend entry; kinds that share a label share one legend line."""
    color: str
    """Node fill colour (samplers share one so the level changes stand out)."""


KINDS: dict[Kind, KindStyle] = {
    "resnet": KindStyle(label="resnet", color="#dbeafe"),
    "attention": KindStyle(label="attention / transformer", color="#fde68a"),
    "transformer": KindStyle(label="attention / transformer", color="#fde68a"),
    "downsample": KindStyle(label="down / upsample", color="#bbf7d0"),
    "upsample": KindStyle(label="down / upsample", color="#bbf7d0"),
    "conv": KindStyle(label="conv", color="#e5e7eb"),
    "norm": KindStyle(label="norm", color="#f5f5f4"),
    "mlp": KindStyle(label="mlp / embedding", color="#fbcfe8"),
    "embed": KindStyle(label="mlp / embedding", color="#fbcfe8"),
    "layer": KindStyle(label="other layer", color="#ffffff"),
}

# (substring of the lower-cased class name, or its start after "^", kind), tried in order: the specific names
# first, "resnet" before "norm" (ResnetBlockCondNorm2D is a resnet), a class named for a conv first is one
# whatever norm and activation follow it (nnU-Net's ConvDropoutNormReLU), ResNet's BasicBlock and Bottleneck
# (nnU-Net's ResNet-D BasicBlockD, BottleneckD) are resnets, a basic block named after something else has no
# residual (MONAI's UnetBasicBlock, UnetrBasicBlock: conv, norm, act twice) and an out block is its 1x1 conv head
# (UnetOutBlock): convs, as the builders name them; and "norm" before "up"/"down" so GroupNorm never reads as a
# sampler
_BY_TYPE: tuple[tuple[str, Kind], ...] = (
    ("timestep", "mlp"), ("transformer", "transformer"), ("attn", "attention"), ("attention", "attention"),
    ("resnet", "resnet"), ("^conv", "conv"), ("^basicblock", "resnet"), ("^bottleneck", "resnet"), ("norm", "norm"),
    ("res", "resnet"), ("basicblock", "conv"), ("outblock", "conv"), ("downsample", "downsample"),
    ("upsample", "upsample"), ("down", "downsample"), ("up", "upsample"), ("conv", "conv"), ("embed", "embed"),
    ("linear", "mlp"),
)


def kind_of(path: str, type_: str, in_size: Size | None = None, out_size: Size | None = None) -> Kind:
    """The kind of a module from its path, class name and (when known) the sizes it maps between:
    a step that halves or doubles the resolution on any axis is a sampler whatever its class (guided's
    ``ResBlock(down=True)``), and one named like a sampler that keeps every axis is not (the 2015 U-Net's
    first ``Down``, which has no pool)."""
    parent = path.split(".")[-2] if "." in path else path
    if "downsamplers" in parent:
        return "downsample"
    if "upsamplers" in parent:
        return "upsample"
    name = type_.lower()
    kind = next((k for key, k in _BY_TYPE if (name.startswith(key[1:]) if key[0] == "^" else key in name)), None)
    if kind is None:
        # a plain Sequential is an embedding MLP (time_mlp, time_embed) or a conv head (guided's out)
        embedding = name == "linear" or "time" in path or "emb" in path
        kind = "mlp" if embedding else "conv" if name == "sequential" else "layer"
    resampled = resampling(in_size, out_size)
    if resampled is not None:
        return resampled
    if in_size and out_size and len(in_size) == len(out_size) and kind in ("downsample", "upsample") \
            and min(in_size) > 1:  # an axis of 1 may be the one it would sample, and cannot shrink: still a sampler
        return "conv"
    return kind


def resampling(in_size: Size | None, out_size: Size | None) -> Kind | None:
    """"downsample" / "upsample" for a step that halves / doubles the resolution, else None.

    Every spatial axis counts, not only the first: a volume's in-plane sampler, stride (1, 2, 2), keeps its
    depth, and a temporal one, stride (2, 1, 1), changes nothing else. A step that shrinks one axis while it
    grows another is no sampler (a reshape, not a change of resolution)."""
    if not in_size or not out_size or len(in_size) != len(out_size):
        return None
    ratios = [o / max(1, i) for i, o in zip(in_size, out_size, strict=True)]
    down, up = any(r < 0.75 for r in ratios), any(r > 1.5 for r in ratios)
    if down == up:
        return None
    return "downsample" if down else "upsample"
