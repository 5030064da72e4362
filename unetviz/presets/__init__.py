"""Published U-Net configurations, as the config files their repositories ship, by lineage (``diffusion``,
``segmentation``). A preset holds constructor arguments only; every figure unetviz shows for it is computed.
"""

from __future__ import annotations

from ..core.errors import UnetvizError, did_you_mean, listed
from .diffusion import DIFFUSION
from .record import Preset
from .segmentation import SEGMENTATION

__all__ = ["PRESETS", "Preset", "find_preset"]

PRESETS: dict[str, Preset] = {p.name: p for p in (*DIFFUSION, *SEGMENTATION)}
"""Every preset by name, in the order ``unetviz presets`` lists them."""


def find_preset(name: str) -> Preset:
    """The preset called ``name`` (any case); an unknown name gets a did-you-mean."""
    if name in PRESETS:
        return PRESETS[name]
    folded = {n.lower(): p for n, p in PRESETS.items()}
    folded.update({a.lower(): p for p in PRESETS.values() for a in p.aliases})
    typed = name.lower().removesuffix("/unet").strip("/")
    if typed in folded:
        return folded[typed]
    hint = did_you_mean(typed, [*PRESETS, *(a for p in PRESETS.values() for a in p.aliases)])
    raise UnetvizError(f"preset: unknown preset {name!r}{hint} (allowed: {listed(list(PRESETS), 'unetviz presets')})")
