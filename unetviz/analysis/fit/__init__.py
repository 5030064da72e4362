"""Do add-on files (LoRAs, ControlNets, adapters, motion modules, VAEs) load into a base model?

The base is a checkpoint (its header), a preset or a config; its manifest in both namings (``keymaps.twins``)
says which module a file's key would land on, with what shape. For each add-on: the base modules it changes
(in the base's naming), the keys a loader would drop (no such module), and every shape clash with the layer
and both widths. Only headers are read, never tensor data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...checkpoints.kinds import Identified, identify_file
from ...core.errors import UnetvizError
from ...core.records import Shape
from .base import load_base
from .kinds import CHECKS
from .network import NETWORK_KINDS, check_network
from .records import AddOn, BaseModel, Clash, FitReport

__all__ = ["AddOn", "BaseModel", "Clash", "FitReport", "fit"]


def fit(base: str | Path | dict[str, Any], files: list[Path]) -> FitReport:
    """Each of ``files`` against ``base`` (a checkpoint, a preset name, a config path or dict)."""
    if not files:
        raise UnetvizError("FILE: give at least one add-on file (.safetensors)")
    model = load_base(base)
    return FitReport(base=model, addons=tuple(_check(model, Path(f)) for f in files))


def _check(base: BaseModel, path: Path) -> AddOn:
    found, shapes = identify_file(path, "fit")
    try:
        return _checked(base, path, found, shapes)
    except (IndexError, KeyError, TypeError, ValueError) as e:  # a header whose shapes no such file has
        raise UnetvizError(f"fit: {path.name!r}: its {found.name} tensors have shapes no {found.name} has"
                           f" ({type(e).__name__}: {e})") from None


def _checked(base: BaseModel, path: Path, found: Identified, shapes: dict[str, Shape]) -> AddOn:
    denoiser = found.details.get("denoiser")
    if denoiser:  # a LoRA of a transformer denoiser (FLUX.1, SD3): no U-Net module is its
        return AddOn(file=path.name, found=found,
                     clashes=(Clash(module="", key=path.name, what="kind", file=found.base, base="a U-Net"),),
                     notes=(f"a LoRA for {denoiser.split(', not a U-Net')[0]}, not a U-Net: it cannot load into"
                            f" {base.model}'s U-Net",))
    if found.kind in NETWORK_KINDS:
        return check_network(base, path.name, found, shapes)
    check = CHECKS.get(found.kind)
    if check is None:
        return AddOn(file=path.name, found=found,
                     clashes=(Clash(module="", key=path.name, what="kind", file=found.name, base="an add-on"),),
                     notes=(f"{found.name} is a whole model, not an add-on: `unetviz inspect` compares models",))
    return check(base, path.name, found, shapes)
