"""Real upstream models, built on ``torch.device("meta")``, with the inputs their forward needs.

Only ``verify``, the observed tracer and the tests import this package; it imports torch. Each
adapter module (named by its family's registry record, ``Family.adapter``) exposes::

    build(cls: str | None, kwargs: dict) -> torch.nn.Module      # on the meta device
    inputs(model, trace: Trace) -> tuple[tuple, dict]           # positional and keyword args

and is imported lazily, so one missing upstream package only affects its own family.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ...core.errors import UnetvizError
from ...families import Family


def family_module(family: Family) -> ModuleType:
    """The upstream adapter of ``family``; a clear error naming what to install if it is missing."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UnetvizError("verify: needs torch; install it with `pip install torch` (CPU build:"
                           " `pip install torch --index-url https://download.pytorch.org/whl/cpu`) or run"
                           " `make .venv`") from None
    try:
        return importlib.import_module(family.adapter)
    except ImportError as e:
        raise UnetvizError(f"verify: the {family.family} family needs `pip install {family.pip}` ({e})") from None
