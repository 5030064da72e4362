"""The answer ``why`` gives, as records (``unetviz.why/1`` in JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA = "unetviz.why/1"


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One model and layer (or tensor) whose widths give the error's numbers."""

    model: str
    """The preset or variant name (or the ``--model`` source's name)."""
    layer: str
    """The layer's path or the tensor's key in the model's own (diffusers, where it has two) naming."""
    original: str = ""
    """The same in the original ldm/sgm naming, where the model has it."""
    block_id: str = ""
    """The LoRA block name of the original path (IN04, MID, OUT07), where there is one."""
    side: str = ""
    """Which side of the clash the model is on: ``layer`` (the weight), ``input``, ``checkpoint``, ``model``,
    ``fails`` (a size search)."""
    widths: dict[str, Any] = field(default_factory=dict)
    """The numbers of this layer or tensor that match: ``in``/``out``, ``weight``, ``shape``, ``size``..."""
    also: tuple[str, ...] = ()
    """Other models with the same layer and widths."""

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "layer": self.layer, "original": self.original or None,
                "block_id": self.block_id or None, "side": self.side, "widths": self.widths,
                "also": list(self.also)}


@dataclass(frozen=True, kw_only=True)
class Diagnosis:
    """What an error's numbers match, the likely cause and the fix."""

    matched: bool
    """False when nothing unetviz knows gives the error's numbers."""
    kind: str = "other"
    """The kind of error read (``parse.KINDS``)."""
    message: str = ""
    """The error line the numbers were read from."""
    numbers: dict[str, Any] = field(default_factory=dict)
    """The numbers read from it."""
    candidates: tuple[Candidate, ...] = ()
    """Matching layers or tensors, best first."""
    inputs: tuple[str, ...] = ()
    """What the other side of the clash is, where it is a known width or model (``SDXL text context 2048``)."""
    cause: str = ""
    """The likely cause, one or two sentences."""
    fix: str = ""
    """What to do."""
    alternatives: tuple[str, ...] = ()
    """Other causes the same numbers fit."""
    scope: str = ""
    """``--model``'s name when the search was narrowed, else empty (every known model)."""

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "matched": self.matched, "kind": self.kind, "message": self.message,
                "numbers": self.numbers, "candidates": [c.to_json() for c in self.candidates],
                "inputs": list(self.inputs), "cause": self.cause or None, "fix": self.fix or None,
                "alternatives": list(self.alternatives), "scope": self.scope or None}
