"""``unetviz fit``'s records: the base as the checks read it, one ``AddOn`` per file, the ``FitReport``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...checkpoints.bases import Base
from ...checkpoints.kinds import Identified
from ...core.records import Shape

SCHEMA = "unetviz.fit/1"


@dataclass(frozen=True, kw_only=True)
class Clash:
    """A tensor whose shape the base's module cannot take."""

    module: str
    """The base's module, in the base's naming."""
    key: str
    """The module's name in the add-on file."""
    what: str
    """Which width: ``in-width``, ``out-width``, ``kernel``, ``count``."""
    file: Any
    """The add-on's value."""
    base: Any
    """The base's value."""

    def to_json(self) -> dict[str, Any]:
        return {"module": self.module, "file_key": self.key, "what": self.what, "file": self.file, "base": self.base}


@dataclass(frozen=True, kw_only=True)
class AddOn:
    """One add-on file against the base."""

    file: str
    """The file name as given."""
    found: Identified
    """What the file is (``kinds.identify``)."""
    targets: tuple[str, ...] = ()
    """Base modules it changes or feeds, in the base's naming."""
    dropped: tuple[str, ...] = ()
    """Its modules a loader finds no base module for (ComfyUI's "lora key not loaded")."""
    clashes: tuple[Clash, ...] = ()
    """Shape clashes."""
    notes: tuple[str, ...] = ()
    """What was not checked, and why."""

    @property
    def ok(self) -> bool:
        return not (self.dropped or self.clashes)

    def to_json(self) -> dict[str, Any]:
        f = self.found
        return {"file": self.file, "kind": f.kind, "name": f.name, "made_for": f.base, "evidence": f.evidence,
                "ok": self.ok, "targets": list(self.targets), "dropped": list(self.dropped),
                "clashes": [c.to_json() for c in self.clashes], "notes": list(self.notes)}


@dataclass(frozen=True, kw_only=True)
class BaseModel:
    """The base, as the checks read it."""

    source: str
    """As given (a file name, a preset, a config)."""
    model: str
    """What it is (``SD 1.x``, ``SDXL refiner``...)."""
    naming: str
    """Its own naming: ``diffusers`` or ``original``."""
    config: dict[str, Any]
    """Its diffusers ``UNet2DConditionModel`` config."""
    own: dict[str, Any]
    """Its config in its own naming's family (for traces in its names)."""
    modules: dict[str, tuple[str, Shape]] = field(default_factory=dict)
    """kohya-style module name (``.`` as ``_``, either naming) -> (its path in the base's naming, weight shape)."""
    record: Base | None = None
    """The ``bases`` record its widths match, if any."""
    attention: tuple[tuple[str, Shape], ...] = ()
    """Every attention's ``to_k`` (path in the base's naming, shape) in diffusers' processor order (attn1, attn2
    of each transformer block, down, up, mid blocks): the order IP-Adapter numbers its layers in."""

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "model": self.model, "naming": self.naming,
                "context": self.config.get("cross_attention_dim"), "widths": self.config.get("block_out_channels"),
                "modules": len({p for p, _ in self.modules.values()})}


@dataclass(frozen=True, kw_only=True)
class FitReport:
    """Whether the add-ons load into the base."""

    base: BaseModel
    """The base."""
    addons: tuple[AddOn, ...]
    """One per file, in the order given."""

    @property
    def ok(self) -> bool:
        """True when every add-on loads with no dropped key and no shape clash."""
        return all(a.ok for a in self.addons)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "ok": self.ok, "base": self.base.to_json(),
                "files": [a.to_json() for a in self.addons]}


