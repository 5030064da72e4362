"""nnU-Net's networks (dynamic_network_architectures 0.4.4) built from the same config as the symbolic trace.

As ``nnunetv2.utilities.get_network_from_plans`` does, but with no ``pydoc.locate``: every class-valued
argument (``arch_kwargs_req_import``) is looked up in the family's allow-list (``families.nnunet.ops``) and
taken from ``torch.nn`` (or dynamic_network_architectures' residual blocks) by its short name. The network
is built on the meta device and left uninitialised (``initialize`` would only fill weights).
"""

from __future__ import annotations

from typing import Any

import torch
from dynamic_network_architectures.architectures import unet  # type: ignore[import-untyped]
from dynamic_network_architectures.building_blocks import residual  # type: ignore[import-untyped]

from ...core.records import Trace
from ...families.nnunet import ops


def _resolve(key: str, value: Any) -> Any:
    name = ops.lookup(key, value, ops.CLASS_KEYS[key])
    return getattr(residual if key == "block" else torch.nn, name)


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    """The network of a ``{"network_class_name", "arch_kwargs", ...}`` config, on the meta device."""
    network = getattr(unet, ops.lookup("network_class_name", kwargs.get("network_class_name"), ops.NETWORKS))
    arch = dict(kwargs["arch_kwargs"])
    listed = kwargs.get("arch_kwargs_req_import")
    for key in ops.CLASS_KEYS if listed is None else listed:
        # nnU-Net resolves the listed keys; a class name it does not list reaches the constructor as a string
        if key not in ops.CLASS_KEYS:  # pydoc.locate of a number or a list fails in nnU-Net too
            raise ValueError(f"arch_kwargs_req_import lists {key!r}, which names no class")
        if isinstance(arch.get(key), str):
            arch[key] = _resolve(key, arch[key])
    if kwargs.get("deep_supervision") is not None:
        arch["deep_supervision"] = kwargs["deep_supervision"]
    with torch.device("meta"):
        model: torch.nn.Module = network(input_channels=kwargs["input_channels"], num_classes=kwargs["num_classes"],
                                         **arch)
    return model.eval()


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """One patch of the traced size: (1, C, D, H, W) or (1, C, H, W)."""
    sample = torch.empty(1, trace.in_channels, *trace.in_size, device=torch.device("meta"))
    return (sample,), {}
