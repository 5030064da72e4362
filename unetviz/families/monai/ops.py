"""The allow-list: the network classes a MONAI ``network_def`` may name as ``_target_``, and the names MONAI's
``Act`` / ``Norm`` / ``Dropout`` factories take for ``act``, ``norm`` and ``dropout``.

A bundle names its network by ``_target_`` (``UNet``, ``monai.networks.nets.UNet``) and its layers by factory
names (``"PRELU"``, ``("instance", {"affine": True})``; JSON writes the tuple as a list). MONAI resolves them
by importing; unetviz never does: each is looked up here, and anything else (``os.system``, a class of the
user's own) is a one-line ``UnetvizError`` (exit 2). The adapter in ``unetviz.live.upstream.monai`` builds the
real network from the same names, resolved through this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...core.errors import UnetvizError

_MODULES = {"UNet": "unet", "BasicUNet": "basic_unet", "AttentionUnet": "attentionunet", "DynUNet": "dynunet",
            "UNETR": "unetr", "SwinUNETR": "swin_unetr", "SegResNet": "segresnet"}
_ALIASES = {"UNet": ("Unet",), "BasicUNet": ("BasicUnet", "Basicunet", "basicunet"),
            "AttentionUnet": (), "DynUNet": ("DynUnet", "Dynunet"), "UNETR": (), "SwinUNETR": (), "SegResNet": ()}
"""The other names MONAI's modules bind to each class (``Unet = UNet``)."""
NETWORKS: dict[str, str] = {
    name: cls for cls, module in _MODULES.items() for alias in (cls, *_ALIASES[cls])
    for name in (alias, f"monai.networks.nets.{alias}", f"monai.networks.nets.{module}.{alias}")}
"""``_target_`` -> the class it names."""

ACTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ELU": ("ELU", ("alpha", "inplace")), "RELU": ("ReLU", ("inplace",)),
    "LEAKYRELU": ("LeakyReLU", ("negative_slope", "inplace")), "PRELU": ("PReLU", ("num_parameters", "init")),
    "RELU6": ("ReLU6", ("inplace",)), "SELU": ("SELU", ("inplace",)), "CELU": ("CELU", ("alpha", "inplace")),
    "GELU": ("GELU", ("approximate",)), "SIGMOID": ("Sigmoid", ()), "TANH": ("Tanh", ()),
    "SWISH": ("Swish", ("alpha",)), "MISH": ("Mish", ("inplace",)),
}
"""Act factory name (any case) -> (the module's class, the keyword arguments it takes)."""
NORMS: dict[str, tuple[str, ...]] = {
    "INSTANCE": ("eps", "momentum", "affine", "track_running_stats"),
    "BATCH": ("eps", "momentum", "affine", "track_running_stats"),
    "GROUP": ("num_groups", "eps", "affine"),
}
"""Norm factory name -> the keyword arguments unetviz reads (the channels come from the network)."""
DROPOUTS: dict[str, tuple[str, ...]] = {"DROPOUT": ("p", "inplace"), "ALPHADROPOUT": ("p", "inplace")}


def target(value: Any) -> str:
    """The class a ``_target_`` names, else a one-line error (nothing is imported)."""
    if isinstance(value, str) and value in NETWORKS:
        return NETWORKS[value]
    shown = ", ".join(f"{c} (or monai.networks.nets.{c})" for c in _MODULES)
    raise UnetvizError(f"_target_: got {value!r}; allowed: {shown} (names are looked up in unetviz's allow-list,"
                       " never imported)")


def split(key: str, value: Any) -> tuple[str, dict[str, Any]]:
    """``split_args``: a name, or a (name, kwargs) pair (a two-item list in JSON)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], str) \
            and isinstance(value[1], Mapping):
        return value[0], dict(value[1])
    raise UnetvizError(f"{key}: got {value!r}; allowed: a name or a [name, {{keyword arguments}}] pair")


def _known(key: str, name: str, allowed: Mapping[str, Any]) -> str:
    if name.upper() not in allowed:
        raise UnetvizError(f"{key}: got {name!r}; allowed: {', '.join(n.lower() for n in allowed)} (any case;"
                           " looked up in unetviz's allow-list, never imported)")
    return name.upper()


def _check_kwargs(key: str, kw: dict[str, Any], allowed: tuple[str, ...], cls: str) -> None:
    for k, v in kw.items():
        if k not in allowed:
            raise UnetvizError(f"{key}: {k!r} is not an argument unetviz reads for {cls}; allowed:"
                               f" {', '.join(allowed) or 'none'}")
        if k == "inplace" or k in ("affine", "track_running_stats"):
            if not isinstance(v, bool):
                raise UnetvizError(f"{key}.{k}: got {v!r}; allowed: true or false")
        elif k in ("approximate",):
            if v not in ("none", "tanh"):
                raise UnetvizError(f"{key}.{k}: got {v!r}; allowed: 'none', 'tanh'")
        elif k in ("num_parameters", "num_groups"):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise UnetvizError(f"{key}.{k}: got {v!r}; allowed: a positive integer")
        elif not (k == "momentum" and v is None) and not _number(v):
            raise UnetvizError(f"{key}.{k}: got {v!r}; allowed: a number")


@dataclass(frozen=True, kw_only=True)
class Act:
    """An activation as ``get_act_layer`` makes it; only PReLU owns a parameter (``num_parameters`` of them)."""

    type: str
    prelu: int = 0


@dataclass(frozen=True, kw_only=True)
class Norm:
    """A norm as ``get_norm_layer(name, spatial_dims, channels)`` makes it."""

    kind: str
    """``INSTANCE``, ``BATCH`` or ``GROUP``."""
    affine: bool
    track: bool
    groups: int = 0

    def type(self, dims: int) -> str:
        return "GroupNorm" if self.kind == "GROUP" else f"{self.kind.title()}Norm{dims}d"


def act(key: str, value: Any) -> Act | None:
    """``act`` (None or ``""``: no activation module)."""
    if value is None or value == "":
        return None
    name, kw = split(key, value)
    up = _known(key, name, ACTS)
    cls, allowed = ACTS[up]
    _check_kwargs(key, kw, allowed, cls)
    return Act(type=cls, prelu=int(kw.get("num_parameters", 1)) if up == "PRELU" else 0)


def norm(key: str, value: Any) -> Norm | None:
    """``norm`` (None or ``""``: none); group norm needs ``num_groups`` as ``nn.GroupNorm`` does."""
    if value is None or value == "":
        return None
    name, kw = split(key, value)
    up = _known(key, name, NORMS)
    _check_kwargs(key, kw, NORMS[up], name)
    if up == "GROUP":
        if "num_groups" not in kw:
            raise UnetvizError(f"{key}: group norm needs num_groups (nn.GroupNorm has no default for it)")
        return Norm(kind=up, affine=bool(kw.get("affine", True)), track=False, groups=kw["num_groups"])
    batch = up == "BATCH"
    return Norm(kind=up, affine=bool(kw.get("affine", batch)), track=bool(kw.get("track_running_stats", batch)))


def dropout(key: str, value: Any) -> bool:
    """``dropout``: a probability or a (name, kwargs) pair; whether a Dropout module is made (it owns nothing)."""
    if value is None or value == "":
        return False
    if _number(value):
        p = value
    else:
        name, kw = split(key, value)
        _check_kwargs(key, kw, DROPOUTS[_known(key, name, DROPOUTS)], name)
        p = kw.get("p", 0.5)
    if not 0 <= p <= 1:
        raise UnetvizError(f"{key}: got p={p!r}; allowed: a probability from 0 to 1 (nn.Dropout checks it)")
    return True


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
