"""unetviz: how a U-Net's channels, skips and resolutions evolve, layer by layer, from its config.

``import unetviz`` and tracing a preset or config never import torch.
"""

from __future__ import annotations

from .api import trace, verify, weights
from .core.errors import UnetvizError
from .core.records import Concat, Failure, Layer, Operand, Skip, Trace, Unit, Weights
from .presets import PRESETS

__all__ = ["PRESETS", "Concat", "Failure", "Layer", "Operand", "Skip", "Trace", "UnetvizError", "Unit",
           "Weights", "trace", "verify", "weights"]
__version__ = "0.1.0"
