"""Per-layer quantities: each is one function of a layer record plus one entry in ``LAYER_QUANTITIES``.

Units, blocks and the model sum them; the row model, every table format and the JSON pick each one
up from this tuple, so adding a quantity (MACs, say) is a change to this module alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .records import Layer, numel


@dataclass(frozen=True, kw_only=True)
class Quantity:
    """A number every layer has, summed over units, blocks and the model."""

    name: str
    """Its key in the JSON (``params``) and its column name."""
    title: str
    """Column heading in tables."""
    of_layer: Callable[[Layer], int]
    """The layer's own amount."""
    priority: int
    """Column priority when the terminal is narrow (lower is dropped later)."""
    help: str
    """One line for the docs and ``--help``."""


def layer_params(layer: Layer) -> int:
    """Parameters the module owns directly."""
    return layer.params


ATTENTION_TYPES = ("attention", "einsum_attention", "linear_attention")
"""Types of the parameter-free attention-matmul rows (``Tracer.attention_matmuls``): matmul / SDPA, the same
by ``torch.einsum`` (which turns a contraction over a size-1 dimension into a plain multiply, uncounted),
and linear attention's two einsums."""
FIXED_CONV_TYPES = ("conv1d", "conv_transpose1d", "conv2d", "conv_transpose2d")
"""Types of the convs with a weight the forward builds (``Tracer.fixed_conv``): F.conv1d / F.conv2d and their
transposes."""
FREE_TYPES = (*ATTENTION_TYPES, *FIXED_CONV_TYPES)
"""Types of every parameter-free row: the attention matmuls and convs with a weight the forward builds
(``Tracer.fixed_conv``). The hooks of a real model never see them; they are there for MACs and memory."""


def is_free(layer: Layer) -> bool:
    """A parameter-free row (see ``FREE_TYPES``), not a module that owns parameters."""
    return layer.type in FREE_TYPES and not layer.tensors


def _weight(layer: Layer) -> tuple[int, ...] | None:
    return next((shape for key, shape in layer.tensors if key.endswith(".weight")), None)


def layer_macs(layer: Layer) -> int:
    """Multiply-accumulates at batch 1 (times the layer's rows per sample, ``Layer.batch``), FlopCounterMode's
    FLOPs / 2: a conv is
    its weight's size x the output's positions (a transposed conv: the input's), a Linear its weight's size x
    the tokens (1 for a vector), an attention q·kᵀ + attn·v; bias adds, norms and elementwise steps are 0."""
    return layer.batch * _macs(layer)


def _macs(layer: Layer) -> int:
    if layer.type == "Linear":  # most rows of a transformer U-Net: the same as below, tested first
        weight = _weight(layer)
        return 0 if weight is None else numel(weight) * (layer.tokens or 1)
    heads, tq, tk = layer.heads or 1, layer.tokens or 0, layer.kv_tokens or 0
    if layer.type == "attention":  # heads x tq x tk x (d_qk + d_v)
        return tq * tk * (layer.in_channels + layer.out_channels)
    if layer.type == "einsum_attention":  # q·kᵀ contracts d_qk, attn·v contracts tk: size 1 is a multiply
        d_qk = layer.in_channels // heads
        return tq * tk * ((layer.in_channels if d_qk > 1 else 0) + (layer.out_channels if tk > 1 else 0))
    if layer.type == "linear_attention":  # per head: k·vᵀ (d x e x tk) then context·q (d x e x tq)
        d = layer.in_channels // heads
        return d * layer.out_channels * (tk + (tq if d > 1 else 0))
    if layer.type in FIXED_CONV_TYPES and not layer.tensors:
        w = layer.out_channels * layer.in_channels * numel(layer.kernel)
        return w * numel(layer.in_size if layer.type.startswith("conv_transpose") else layer.out_size)
    weight = _weight(layer)
    if weight is None or (layer.out_size is None and layer.type.startswith("Conv")):
        return 0  # no weight, or the conv fails inside (no output)
    if layer.type.startswith("ConvTranspose"):
        return numel(weight) * numel(layer.in_size)
    if layer.type.startswith("Conv"):
        return numel(weight) * numel(layer.out_size)
    if layer.type == "Linear":
        return numel(weight) * (layer.tokens or 1)
    return 0


def layer_out_elements(layer: Layer) -> int:
    """Elements of the layer's output at batch 1 (an attention row: attn·v's); summed, the elements written."""
    if layer.out_size is None and layer.tokens is None and layer.type.startswith("Conv"):
        return 0  # the conv fails: no output
    tokens = layer.written_tokens  # AttentionPooling reads 77 tokens and writes 1
    per_row = layer.out_channels * (numel(layer.out_size) if layer.out_size is not None else tokens or 1)
    return layer.batch * per_row


LAYER_QUANTITIES: tuple[Quantity, ...] = (
    Quantity(name="params", title="params", of_layer=layer_params, priority=2,
             help="parameters the layer owns"),
    Quantity(name="macs", title="MACs", of_layer=layer_macs, priority=3,
             help="multiply-accumulates at batch 1 (FlopCounterMode's FLOPs / 2)"),
    Quantity(name="out_elements", title="out elems", of_layer=layer_out_elements, priority=5,
             help="elements of the output at batch 1 (summed: the elements the layers write)"),
)
QUANTITY = {q.name: q for q in LAYER_QUANTITIES}
