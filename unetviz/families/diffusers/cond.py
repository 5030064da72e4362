"""``UNet2DConditionModel.__init__``'s per-block arguments: ``_check_config`` and what ``get_down_block`` /
``get_mid_block`` / ``get_up_block`` are handed, decided (and checked) before any size is known.

Upstream checks list lengths up front but reads each entry only where a block uses it: an
``attention_head_dim``, ``cross_attention_dim`` or transformer depth of a block without a
transformer is never looked at, so nothing is checked there either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.config import Args
from ...core.errors import NotTraced, UnetvizError, bad_value
from .blocks import SIMPLE_DOWN, SIMPLE_UP, BlockSpec
from .embed import UNSUPPORTED
from .k import K_DOWN, K_UP
from .simple import AddedKV


@dataclass(frozen=True, kw_only=True)
class PerBlock:
    """The per-block lists ``__init__`` broadcasts its int-or-list arguments to (raw entries)."""

    layers: list[int]
    heads: list[Any]
    """``attention_head_dim``: heads of a CrossAttn block, head size of an Attn block (diffusers' quirk)."""
    cross: list[Any]
    only_cross: list[bool]
    depths: list[Any]
    """``transformer_layers_per_block``, as given (a list may be longer than the blocks)."""
    reverse_depths: list[Any]
    """``reverse_transformer_layers_per_block``, or the reversed ``depths``."""


def _per_block(a: Args, key: str, n: int) -> list[Any]:
    """An int (or anything) for every block, or a list that must have one entry per block."""
    v = a.raw(key)
    if isinstance(v, (list, tuple)):
        if len(v) != n:
            raise UnetvizError(f"{key} has {len(v)} entries but down_block_types has {n}")
        return list(v)
    return [v] * n


def _check_config(a: Args, n: int) -> PerBlock:
    """Upstream's ``_check_config`` plus the broadcasting ``__init__`` does right after it."""
    heads = a.raw("attention_head_dim")
    if not isinstance(heads, (int, list, tuple)) or isinstance(heads, bool):
        # len() of anything else raises TypeError in _check_config
        raise bad_value("attention_head_dim", heads, f"an integer or a list of {n}")
    oca = a.raw("only_cross_attention")
    if not isinstance(oca, (bool, list, tuple)):
        raise bad_value("only_cross_attention", oca, f"true/false or a list of {n} booleans")
    lpb = a.raw("layers_per_block")
    if not isinstance(lpb, (int, list, tuple)) or isinstance(lpb, bool):
        raise bad_value("layers_per_block", lpb, f"an integer or a list of {n}")
    depths = a.raw("transformer_layers_per_block")
    reverse = a.raw("reverse_transformer_layers_per_block")
    if isinstance(depths, list) and reverse is None and any(isinstance(v, list) for v in depths):
        raise UnetvizError("reverse_transformer_layers_per_block: required when transformer_layers_per_block"
                           " holds lists (an asymmetrical UNet)")
    # range(num_layers): a negative count builds no resnet (clamped where a block is made)
    layers = [a.int("layers_per_block", -(2**20), v) for v in _per_block(a, "layers_per_block", n)]
    per_depth = list(depths) if isinstance(depths, (list, tuple)) else [depths] * n
    if len(per_depth) < n:  # transformer_layers_per_block[i] for every block
        raise UnetvizError(f"transformer_layers_per_block has {len(per_depth)} entries but down_block_types has {n}")
    if reverse is None:
        rev = list(reversed(per_depth))
    elif not isinstance(reverse, (list, tuple)) or len(reverse) < n:
        raise bad_value("reverse_transformer_layers_per_block", reverse, f"a list of at least {n} entries")
    else:
        rev = list(reverse)
    cross = a.raw("cross_attention_dim")
    if not isinstance(cross, (int, list, tuple)) or isinstance(cross, bool):
        # __init__ indexes cross_attention_dim[i] for every block unless it is an int
        raise bad_value("cross_attention_dim", cross, f"an integer or a list of {n}")
    return PerBlock(layers=layers, heads=_per_block(a, "attention_head_dim", n),
                    cross=_per_block(a, "cross_attention_dim", n),
                    only_cross=[bool(v) for v in _per_block(a, "only_cross_attention", n)],
                    depths=per_depth, reverse_depths=rev)


def _depths(a: Args, key: str, v: Any, layers: int) -> tuple[int, ...]:
    """A transformer block's per-layer depths: an int for every layer, or a list indexed per layer."""
    if isinstance(v, (list, tuple)):
        if len(v) < layers:
            raise UnetvizError(f"{key}: entry {v!r} has {len(v)} depths but its block has {layers} layers")
        return tuple(max(0, a.int(key, -(2**20), d)) for d in v[:layers])
    return (max(0, a.int(key, -(2**20), v)),) * layers


def _cross_heads(a: Args, v: Any, channels: int, where: str, depths: tuple[int, ...]) -> int:
    heads = a.int("attention_head_dim", 1, v)  # channels // 0 raises in the block's constructor
    if channels // heads < 1 and any(depths):  # without transformer blocks no Attention divides by it
        # Transformer2DModel(heads, channels // heads): a head size of 0, and 0 ** -0.5 raises in Attention
        raise UnetvizError(f"attention_head_dim: {heads} heads on the {channels} channels of {where} give a head"
                           f" size of 0; allowed: 1 to {channels} (UNet2DConditionModel reads it as the head count)")
    return heads


def _cross_dim(a: Args, v: Any, kind: str, mid: bool = False) -> int | None:
    if v is None:
        if not mid:  # get_down_block / get_up_block raise; the mid block builds attn2-less transformers
            raise bad_value("cross_attention_dim", None, f"an integer ({kind} needs it)")
        return None
    return a.int("cross_attention_dim", 1, v)


def _spec(a: Args, kind: str, i: int, layers: int, channels: tuple[int, int, int], final: bool, heads: Any,
          head_dim: Any, cross: Any, depth: Any, only_cross: bool, depth_key: str, up: bool) -> BlockSpec:
    in_c, out_c, prev = channels
    layers = max(0, layers)
    where = f"{'up' if up else 'down'}_blocks.{i}"
    if kind.startswith("CrossAttn"):
        # a DualTransformer2DModel has one layer whatever transformer_layers_per_block says (never read)
        dual = a.flag("dual_cross_attention")
        depths = (1,) * layers if dual else _depths(a, depth_key, depth, layers)
        return BlockSpec(kind, layers, in_c, out_c, not final, prev,
                         num_attention_heads=_cross_heads(a, heads, out_c, where, depths) if layers else 1,
                         transformer_layers=depths,
                         cross_attention_dim=_cross_dim(a, cross, kind), only_cross_attention=only_cross,
                         use_linear_projection=a.flag("use_linear_projection"),
                         downsample_padding=a.int("downsample_padding"), dual=dual)
    if kind in K_DOWN or kind in K_UP:
        return _k_spec(a, kind, layers, channels, final, head_dim, cross, up)
    if kind in (SIMPLE_DOWN, SIMPLE_UP):
        return BlockSpec(kind, layers, in_c, out_c, not final, prev,
                         added_kv=_added_kv(a, head_dim, out_c, _cross_dim(a, cross, kind), only_cross, layers))
    attn_dim = None
    if kind.startswith("Attn") and layers:
        attn_dim = out_c if head_dim is None else a.int("attention_head_dim", 1, head_dim)
    return BlockSpec(kind, layers, in_c, out_c, not final, prev, attention_head_dim=attn_dim,
                     downsample_padding=a.int("downsample_padding"), sampler_type="conv")


def _k_spec(a: Args, kind: str, layers: int, channels: tuple[int, int, int], final: bool, head_dim: Any,
            cross: Any, up: bool) -> BlockSpec:
    """A k-diffusion block: an up block has ``num_layers - 1`` resnets; a cross one divides its channels by
    ``attention_head_dim`` (null: the block's channels) in the constructor, once it has layers."""
    in_c, out_c, prev = channels
    resnets = max(0, layers - 1) if up else layers
    dim = None
    if kind.startswith("KCrossAttn") and resnets:  # 0 raises ZeroDivisionError, a negative count nn.Linear
        dim = out_c if head_dim is None else a.int("attention_head_dim", 1, head_dim)
    cross_dim = None if cross is None else a.int("cross_attention_dim", 1, cross)
    return BlockSpec(kind, resnets, in_c, out_c, not final, prev, attention_head_dim=dim,
                     cross_attention_dim=cross_dim)


def _added_kv(a: Args, head_dim: Any, channels: int, cross: int | None, only_cross: bool, layers: int) -> AddedKV:
    """A SimpleCrossAttn block's attentions: ``num_heads = channels // attention_head_dim`` is computed in
    ``__init__`` even without layers; the Attention modules (and their checks) only with them."""
    if head_dim == 0:
        raise bad_value("attention_head_dim", 0, "a positive integer (the blocks divide their channels by it)")
    head = channels if head_dim is None else (a.int("attention_head_dim", 1, head_dim) if layers else 1)
    norm = a.choice("cross_attention_norm", (None, "layer_norm", "group_norm")) if layers else None
    if only_cross and cross is None and layers:
        raise UnetvizError("only_cross_attention: needs a cross_attention_dim (Attention's added_kv_proj_dim) in"
                           " the SimpleCrossAttn blocks")
    return AddedKV(head_dim=head, cross_dim=cross, only_cross=only_cross, norm=norm)


def _simple_mid(a: Args, pb: PerBlock, channels: int) -> BlockSpec:
    """get_mid_block's UNetMidBlock2DSimpleCrossAttn: the last block's head dim and context width."""
    mid_only = a.raw("mid_block_only_cross_attention")
    if mid_only is None:
        oca = a.raw("only_cross_attention")
        mid_only = oca if isinstance(oca, bool) else False
    head = pb.heads[-1]
    if head is None or head == 0:  # in_channels // attention_head_dim
        raise bad_value("attention_head_dim", head, "a positive integer (UNetMidBlock2DSimpleCrossAttn divides by it)")
    cross = _cross_dim(a, pb.cross[-1], "UNetMidBlock2DSimpleCrossAttn", mid=True)
    return BlockSpec("UNetMidBlock2DSimpleCrossAttn", 1, channels, channels, False,
                     added_kv=_added_kv(a, head, channels, cross, bool(mid_only), 1))


def block_specs(a: Args, down: list[str], up: list[str], boc: list[int], pb: PerBlock,
                mid: Any) -> tuple[list[BlockSpec], BlockSpec | None, list[BlockSpec]]:
    """What get_down_block / get_mid_block / get_up_block build, block by block, in __init__'s order."""
    n = len(down)
    down_specs = []
    output_channel = boc[0]
    for i, kind in enumerate(down):
        input_channel, output_channel = output_channel, boc[i]
        down_specs.append(_spec(a, kind, i, pb.layers[i], (input_channel, output_channel, 0), i == n - 1,
                                pb.heads[i], pb.heads[i], pb.cross[i], pb.depths[i], pb.only_cross[i],
                                "transformer_layers_per_block", up=False))
    mid_spec = None
    if mid == "UNetMidBlock2DCrossAttn":
        dual = a.flag("dual_cross_attention")
        depths = (1,) if dual else _depths(a, "transformer_layers_per_block", pb.depths[-1], 1)
        mid_spec = BlockSpec(str(mid), 1, boc[-1], boc[-1], False,
                             num_attention_heads=_cross_heads(a, pb.heads[-1], boc[-1], "mid_block", depths),
                             transformer_layers=depths,
                             cross_attention_dim=_cross_dim(a, pb.cross[-1], str(mid), mid=True),
                             use_linear_projection=a.flag("use_linear_projection"), dual=dual)
    elif mid == "UNetMidBlock2DSimpleCrossAttn":
        mid_spec = _simple_mid(a, pb, boc[-1])
    elif mid == "UNetMidBlock2D":
        mid_spec = BlockSpec(str(mid), 0, boc[-1], boc[-1], False)
    rev = list(reversed(boc))
    rheads, rcross, rlayers = pb.heads[::-1], pb.cross[::-1], pb.layers[::-1]
    ronly = pb.only_cross[::-1]
    up_specs = []
    output_channel = rev[0]
    for i, kind in enumerate(up):
        prev_output_channel, output_channel = output_channel, rev[i]
        input_channel = rev[min(i + 1, n - 1)]
        # an Attn up block's head size is attention_head_dim[i], not reversed (upstream reads it so)
        up_specs.append(_spec(a, kind, i, rlayers[i] + 1, (input_channel, output_channel, prev_output_channel),
                              i == n - 1, rheads[i], pb.heads[i], rcross[i], pb.reverse_depths[i], ronly[i],
                              "reverse_transformer_layers_per_block" if a.raw("reverse_transformer_layers_per_block")
                              is not None else "transformer_layers_per_block", up=True))
    return down_specs, mid_spec, up_specs


def other_options(a: Args, down: list[str], up: list[str]) -> None:
    """Options that decide no shape, or that only some blocks read (each ignored where none does)."""
    skip = next((b for b in (*down, *up) if "Skip" in b), None)
    if skip is not None:  # built, but the forward cannot unpack a skip block's three outputs
        raise NotTraced(f"down_block_types: {skip!r} in UNet2DConditionModel: {UNSUPPORTED} it (its forward"
                           " fails at the first score-SDE block); allowed there: the non-Skip block types")
    a.choice("mid_block_type", ("UNetMidBlock2DCrossAttn", "UNetMidBlock2D", "UNetMidBlock2DSimpleCrossAttn", None))
    a.int("downsample_padding")
    for key in ("conv_in_kernel", "conv_out_kernel"):
        a.int(key, 1)
