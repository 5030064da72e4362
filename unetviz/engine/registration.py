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
        # deepest first: once a parent already knows the child, every ancestor above was noted with it
        parent, _, child = full.rpartition(".")
        while True:
            seen = self.seen.setdefault(parent, {})
            if child in seen:
                return
            seen[child] = len(seen)
            if not parent:
                return
            parent, _, child = parent.rpartition(".")

    def rank(self, key: str) -> tuple[int, ...]:
        """Sort key of tensor ``key`` (``down_blocks.1.resnets.0.conv1.weight``)."""
        return self._module_rank(key.rpartition(".")[0], {})

    def _module_rank(self, module: str, known: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
        """Rank of a module path, its parent's rank first; ``known`` memoises the modules already ranked
        (a module's tensors and its siblings share every rank above them)."""
        if not module:
            return ()
        if module in known:
            return known[module]
        parent, _, child = module.rpartition(".")
        declared = self.declared.get(parent, ())
        if child.isdigit():
            own = int(child)
        elif child in declared:
            own = declared.index(child)
        else:
            own = len(declared) + self.seen.get(parent, {}).get(child, 0)
        known[module] = result = (*self._module_rank(parent, known), own)
        return result

    def order(self, entries: Iterable[tuple[str, Shape]]) -> tuple[tuple[str, Shape], ...]:
        """``entries`` in state_dict order; sorted() is stable, so a module's own tensors keep their
        weight-then-bias order."""
        known: dict[str, tuple[int, ...]] = {}  # ranks are read once the walk is over: memoised for this sort
        return tuple(sorted(entries, key=lambda e: self._module_rank(e[0].rpartition(".")[0], known)))
