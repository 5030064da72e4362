"""Per-layer quantities: each is one function of a layer record plus one entry in ``LAYER_QUANTITIES``.

Units, blocks and the model sum them; the row model, every table format and the JSON pick each one
up from this tuple, so adding a quantity (MACs, say) is a change to this module alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .records import Layer


@dataclass(frozen=True, kw_only=True)
class Quantity:
    """A number every layer has, summed over units, blocks and the model."""

    name: str
    """Its key in the JSON (``params``) and its column name."""
    title: str
    """Column heading in tables."""
    of_layer: Callable[[Layer], int]
    """The layer's own amount."""
    priority: int
    """Column priority when the terminal is narrow (lower is dropped later)."""
    help: str
    """One line for the docs and ``--help``."""


def layer_params(layer: Layer) -> int:
    """Parameters the module owns directly."""
    return layer.params


LAYER_QUANTITIES: tuple[Quantity, ...] = (
    Quantity(name="params", title="params", of_layer=layer_params, priority=2,
             help="parameters the layer owns"),
)
QUANTITY = {q.name: q for q in LAYER_QUANTITIES}
