"""unetviz: how a U-Net's channels, skips and resolutions evolve, layer by layer, from its config.

``import unetviz`` and tracing a preset or config never import torch.
"""

from __future__ import annotations

from .api import trace, verify, weights
from .errors import UnetvizError
from .presets import PRESETS
from .records import Concat, Failure, Layer, Operand, Skip, Trace, Unit, Weights

__all__ = ["PRESETS", "Concat", "Failure", "Layer", "Operand", "Skip", "Trace", "UnetvizError", "Unit",
           "Weights", "trace", "verify", "weights"]
__version__ = "0.1.0"
