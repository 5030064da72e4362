"""The allow-list: the class names an nnU-Net plans file may write, and what each one is.

A plans file names its network, conv, norm, dropout and nonlinearity by dotted import paths
(``torch.nn.modules.conv.Conv3d``, ``torch.nn.LeakyReLU``), which nnU-Net resolves with ``pydoc.locate``.
unetviz never imports them: each name is looked up here, and anything else (``os.system``, a class of
the user's own) is a one-line ``UnetvizError`` (exit 2). The adapter in ``unetviz.live.upstream.nnunet``
turns the same entries into torch classes by their short name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...core.errors import UnetvizError

_NN = "torch.nn."
_DNA = "dynamic_network_architectures."


def _names(module: str, classes: tuple[str, ...], short: bool = True) -> dict[str, str]:
    """Dotted name -> class name: the full module path, and ``torch.nn.X`` as plans files also write it."""
    out = {f"{module}.{c}": c for c in classes}
    if short:
        out.update({f"{_NN}{c}": c for c in classes})
    return out


NETWORKS = _names(f"{_DNA}architectures.unet", ("PlainConvUNet", "ResidualEncoderUNet"), short=False)
CONVS = _names(f"{_NN}modules.conv", ("Conv2d", "Conv3d"))
NORMS = {**_names(f"{_NN}modules.batchnorm", ("BatchNorm2d", "BatchNorm3d")),
         **_names(f"{_NN}modules.instancenorm", ("InstanceNorm2d", "InstanceNorm3d"))}
DROPOUTS = _names(f"{_NN}modules.dropout", ("Dropout", "Dropout2d", "Dropout3d"))
NONLINS = _names(f"{_NN}modules.activation", ("ReLU", "LeakyReLU", "ELU", "GELU", "SiLU"))
BLOCKS = _names(f"{_DNA}building_blocks.residual", ("BasicBlockD", "BottleneckD"), short=False)
CLASS_KEYS: dict[str, Mapping[str, str]] = {
    "conv_op": CONVS, "norm_op": NORMS, "dropout_op": DROPOUTS, "nonlin": NONLINS, "block": BLOCKS}
"""arch_kwargs that name a class (what ``_kw_requires_import`` may list), with their allow-lists."""

# the keyword arguments each class's constructor takes (a plans file passes them with **kwargs)
NORM_KWARGS = ("eps", "momentum", "affine", "track_running_stats")
DROPOUT_KWARGS = ("p", "inplace")
NONLIN_KWARGS: dict[str, tuple[str, ...]] = {
    "ReLU": ("inplace",), "LeakyReLU": ("negative_slope", "inplace"), "ELU": ("alpha", "inplace"),
    "GELU": ("approximate",), "SiLU": ("inplace",)}


def lookup(key: str, value: Any, allowed: Mapping[str, str]) -> str:
    """The class name of an allow-listed dotted name, else a one-line error (nothing is imported)."""
    if isinstance(value, str) and value in allowed:
        return allowed[value]
    shown = ", ".join(dict.fromkeys(n for n in allowed if not n.startswith(_NN) or n.count(".") > 2))
    short = "or torch.nn.NAME; " if any(n.startswith(_NN) for n in allowed) else ""
    raise UnetvizError(f"{key}: got {value!r}; allowed: {shown} ({short}names are looked up in unetviz's allow-list,"
                       " never imported)")


def conv_dims(key: str, value: Any) -> int:
    """2 or 3: the rank of an allow-listed conv op."""
    return 3 if lookup(key, value, CONVS) == "Conv3d" else 2


@dataclass(frozen=True, kw_only=True)
class Norm:
    """A norm op as ``norm_op(channels, **norm_op_kwargs)`` makes it."""

    type: str
    """``BatchNorm3d``, ``InstanceNorm2d``..."""
    dims: int
    affine: bool
    track: bool
    """``track_running_stats``: running_mean / running_var / num_batches_tracked buffers."""

    @property
    def batch(self) -> bool:
        return self.type.startswith("BatchNorm")


def norm(name: str, kwargs: Any) -> Norm:
    """The norm of ``norm_op`` / ``norm_op_kwargs`` (None stands for {} as in ConvDropoutNormReLU)."""
    kw = _kwargs("arch_kwargs.norm_op_kwargs", kwargs, NORM_KWARGS, name)
    batch = name.startswith("BatchNorm")
    for key in ("eps", "momentum"):
        if key in kw and not (_number(kw[key]) or (key == "momentum" and kw[key] is None)):
            raise UnetvizError(f"arch_kwargs.norm_op_kwargs.{key}: got {kw[key]!r}; allowed: a number")
    # both are read by truthiness upstream (``if self.affine:``); InstanceNorm defaults both off
    return Norm(type=name, dims=int(name[-2]), affine=bool(kw.get("affine", batch)),
                track=bool(kw.get("track_running_stats", batch)))


def dropout_kwargs(kwargs: Any) -> None:
    """``dropout_op(**dropout_op_kwargs)``: a dict (None fails there), p in [0, 1] as torch checks."""
    if kwargs is None:
        raise UnetvizError("arch_kwargs.dropout_op_kwargs: got None with a dropout_op; allowed: a dict such as"
                           " {\"p\": 0.2} (dropout_op(**None) is a TypeError)")
    kw = _kwargs("arch_kwargs.dropout_op_kwargs", kwargs, DROPOUT_KWARGS, "dropout_op")
    p = kw.get("p", 0.5)
    if not _number(p) or not 0 <= p <= 1:
        raise UnetvizError(f"arch_kwargs.dropout_op_kwargs.p: got {p!r}; allowed: a probability from 0 to 1")


def nonlin_kwargs(name: str, kwargs: Any) -> None:
    kw = _kwargs("arch_kwargs.nonlin_kwargs", kwargs, NONLIN_KWARGS[name], name)
    for key in ("negative_slope", "alpha"):
        if key in kw and not _number(kw[key]):
            raise UnetvizError(f"arch_kwargs.nonlin_kwargs.{key}: got {kw[key]!r}; allowed: a number")
    if kw.get("approximate", "none") not in ("none", "tanh"):
        raise UnetvizError(f"arch_kwargs.nonlin_kwargs.approximate: got {kw['approximate']!r}; allowed: 'none', 'tanh'")


def _kwargs(key: str, value: Any, allowed: tuple[str, ...], cls: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UnetvizError(f"{key}: got {value!r}; allowed: a dict of keyword arguments or null")
    for k in value:
        if k not in allowed:
            raise UnetvizError(f"{key}: {k!r} is not an argument of {cls}; allowed: {', '.join(allowed)}")
    return dict(value)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
