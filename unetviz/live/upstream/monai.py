"""MONAI's networks (``monai.networks.nets``, MONAI 1.6.1) built from the same config as the symbolic trace.

As a bundle's ``ConfigParser`` would instantiate ``network_def``, but with no import by name: ``_target_`` is
looked up in the family's allow-list (``families.monai.ops``) and taken from ``monai.networks.nets``; layer names
(``act``, ``norm``, ``dropout``...) are passed to MONAI's own factories only when the allow-list holds them.
JSON's two-item lists stand for MONAI's (name, kwargs) tuples. The network is built on the meta device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from monai.networks import nets
from torch.overrides import TorchFunctionMode

from ...core.records import Trace
from ...families.monai import ops

NAMED: dict[str, Mapping[str, Any]] = {"act": ops.ACTS, "act_name": ops.ACTS, "norm": ops.NORMS, "norm_name": ops.NORMS}
"""The arguments that name a factory entry, and the names allowed there."""


def _named(key: str, value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], dict):
        value = (value[0], value[1])  # JSON's form of the tuple
    name = value if isinstance(value, str) else value[0] if isinstance(value, tuple) else None
    if isinstance(name, str) and name and name.upper() not in NAMED[key]:
        raise ValueError(f"{key}: {name!r} is not in unetviz's allow-list; not passed to MONAI")
    return value


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    """The network of a ``{"_target_": ..., **kwargs}`` config, on the meta device, in eval mode."""
    network = getattr(nets, ops.target(kwargs.get("_target_")))
    args = {k: (_named(k, v) if k in NAMED else v) for k, v in kwargs.items() if k not in ("_target_", "roi_size")}
    with torch.device("meta"), _HostLinspace():
        model: torch.nn.Module = network(**args)
    return model.eval()


class _HostLinspace(TorchFunctionMode):
    """``torch.linspace`` on the CPU: SwinTransformer reads its drop-path rates with ``.item()``, which a meta
    tensor cannot give; every other tensor stays on the meta device."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func is torch.linspace:
            kwargs = {**kwargs, "device": torch.device("cpu")}
        return func(*args, **kwargs)


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """One patch of the traced size: (1, C, D, H, W) or (1, C, H, W)."""
    sample = torch.empty(1, trace.in_channels, *trace.in_size, device=torch.device("meta"))
    return (sample,), {}
