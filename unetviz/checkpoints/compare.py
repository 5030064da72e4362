"""How a weights file's keys and shapes compare with a model's manifest: matched, missing, unexpected, other
shapes, under the prefixes single-file checkpoints use. Pure; ``checkpoints.check`` picks the naming."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.records import Shape, Trace, Weights


@dataclass(frozen=True, kw_only=True)
class WeightsCheck:
    """How a weights file compares with the trace's manifest."""

    missing: tuple[tuple[str, Shape], ...]
    """In the model, not in the file."""
    unexpected: tuple[tuple[str, Shape], ...]
    """In the file, not in the model (after the prefix is taken off)."""
    mismatched: tuple[tuple[str, Shape, Shape], ...]
    """Same key, different shape: (key, model's, file's)."""
    matched: int
    """Keys present in both with the same shape."""
    prefix: str = ""
    """The key prefix the file's tensors carry (``unet.``, ``model.diffusion_model.``), taken off."""
    other: int = 0
    """Tensors of the file outside that prefix (other components: VAE, text encoders), set aside."""
    naming: str = ""
    """The naming the file was matched in (``diffusers`` or ``original``)."""
    tried: tuple[str, ...] = ()
    """Every naming the file was compared in (the best match is kept)."""
    file_is: str = ""
    """What the file itself is (``kinds.identify``), given when it does not match: ``SDXL refiner U-Net``."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "unetviz.check/1", "ok": self.ok, "matched": self.matched, "naming": self.naming,
                "prefix": self.prefix, "namings_tried": list(self.tried), "file_is": self.file_is or None,
                "other_tensors": self.other,
                "missing": {k: list(s) for k, s in self.missing},
                "unexpected": {k: list(s) for k, s in self.unexpected},
                "mismatched": {k: {"model": list(a), "file": list(b)} for k, a, b in self.mismatched}}


PREFIXES = ("model.diffusion_model.", "model_ema.diffusion_model.", "unet.", "model.", "diffusion_model.",
            "control_model.")
"""Prefixes single-file checkpoints put before the model's keys (A1111, ComfyUI, kohya, diffusers pipelines;
``control_model.`` in ControlNet 1.0 full files)."""
LIST_MAX = 50
"""Keys listed per group in the terminal (``--format json`` lists all)."""


def _prefix(ours: dict[str, Shape], shapes: dict[str, Shape]) -> str:
    """The prefix under which most of the file's keys are the model's (``""`` when they already are)."""
    best, hits = "", sum(1 for k in shapes if k in ours)
    for p in PREFIXES:
        n = sum(1 for k in shapes if k.startswith(p) and k[len(p):] in ours)
        if n > hits:
            best, hits = p, n
    return best


def check_weights(trace: Trace | Weights, shapes: dict[str, Shape], naming: str = "") -> WeightsCheck:
    ours = dict(trace.manifest)
    prefix = _prefix(ours, shapes)
    inside = {k[len(prefix):]: s for k, s in shapes.items() if k.startswith(prefix)}
    missing = tuple((k, s) for k, s in trace.manifest if k not in inside)
    unexpected = tuple((k, s) for k, s in inside.items() if k not in ours)
    mismatched = tuple((k, ours[k], s) for k, s in inside.items() if k in ours and tuple(ours[k]) != tuple(s))
    return WeightsCheck(missing=missing, unexpected=unexpected, mismatched=mismatched,
                        matched=len(ours) - len(missing) - len(mismatched), prefix=prefix,
                        other=len(shapes) - len(inside), naming=naming)


