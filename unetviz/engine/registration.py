"""``state_dict`` order: a module's tensors rank by registration order, path component by path component.

Builders walk the forward pass, which can reach a module's children in another order than ``__init__``
registered them; where it does, the builder declares the registration order of that module's children.
Children it does not declare rank after the declared ones, in the order the walk first reached them;
list indices (``resnets.1``) rank by their number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..core.records import Shape


@dataclass
class Registration:
    """Declared and first-seen orders of every module's children."""

    declared: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Module path -> its children in registration order, where the builder said so."""
    seen: dict[str, dict[str, int]] = field(default_factory=dict)
    """Module path -> child name -> when the walk first reached it."""

    def declare(self, parent: str, order: Sequence[str]) -> None:
        self.declared[parent] = tuple(order)

    def note(self, full: str) -> None:
        """The walk reached module (or tensor) ``full``: remember when each of its ancestors' children first came."""
        parts = full.split(".")
        for i in range(len(parts)):
            seen = self.seen.setdefault(".".join(parts[:i]), {})
            seen.setdefault(parts[i], len(seen))

    def rank(self, key: str) -> tuple[int, ...]:
        """Sort key of tensor ``key`` (``down_blocks.1.resnets.0.conv1.weight``)."""
        parts = key.split(".")[:-1]
        ranks: list[int] = []
        for i, child in enumerate(parts):
            parent = ".".join(parts[:i])
            declared = self.declared.get(parent, ())
            if child.isdigit():
                ranks.append(int(child))
            elif child in declared:
                ranks.append(declared.index(child))
            else:
                ranks.append(len(declared) + self.seen.get(parent, {}).get(child, 0))
        return tuple(ranks)

    def order(self, entries: Iterable[tuple[str, Shape]]) -> tuple[tuple[str, Shape], ...]:
        """``entries`` in state_dict order; sorted() is stable, so a module's own tensors keep their
        weight-then-bias order."""
        return tuple(sorted(entries, key=lambda e: self.rank(e[0])))
