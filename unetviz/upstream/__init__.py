"""Real upstream models, built on ``torch.device("meta")``, with the inputs their forward needs.

Only ``verify``, the observed tracer and the tests import this package; it imports torch. Each
family module exposes::

    build(cls: str | None, kwargs: dict) -> torch.nn.Module      # on the meta device
    inputs(model, trace: Trace) -> tuple[tuple, dict]           # positional and keyword args

``REAL`` maps a family name to its module, imported lazily so one missing upstream package only
affects its own family.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import UnetvizError

REAL: dict[str, tuple[str, str]] = {
    # family: (module, pip package that provides the upstream code)
    "diffusers": ("unetviz.upstream.diffusers", "diffusers==0.42.1"),
    "candle": ("unetviz.upstream.candle", "diffusers==0.42.1"),
    "lucidrains": ("unetviz.upstream.lucidrains", "denoising-diffusion-pytorch==2.3.4"),
    "guided": ("unetviz.upstream.guided", "guided-diffusion-sdk==1.0.0"),
    "ronneberger": ("unetviz.upstream.ronneberger", "torch"),
}


def family_module(family: str) -> ModuleType:
    """The upstream adapter of ``family``; a clear error naming what to install if it is missing."""
    if family not in REAL:
        raise UnetvizError(f"family: no real model for {family!r}; allowed: {', '.join(REAL)}")
    module, package = REAL[family]
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UnetvizError("verify: needs torch; install it with `pip install torch` (CPU build:"
                           " `pip install torch --index-url https://download.pytorch.org/whl/cpu`) or run"
                           " `make .venv`") from None
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UnetvizError(f"verify: the {family} family needs `pip install {package}` ({e})") from None
