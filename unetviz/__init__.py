"""unetviz: how a U-Net's channels, skips and resolutions evolve, layer by layer, from its config.

``import unetviz`` is instant and never imports torch: the public names load on first use (so ``unetviz
--version`` and the CLI start fast); tracing a preset or config stays torch-free. Every entry point is a
function: ``trace, weights, verify, cost, inspect, keymap, check, diff, fit, why``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import check, cost, diff, fit, inspect, keymap, trace, verify, weights, why
    from .core.errors import NotTraced, UnetvizError
    from .core.inputs import InputSpec
    from .core.records import Concat, Failure, Layer, Operand, Skip, Trace, Unit, Weights
    from .presets import PRESETS

    __version__: str

_WHERE = {
    **dict.fromkeys(("check", "cost", "diff", "fit", "inspect", "keymap", "trace", "verify", "weights", "why"), "api"),
    **dict.fromkeys(("NotTraced", "UnetvizError"), "core.errors"),
    "InputSpec": "core.inputs",
    **dict.fromkeys(("Concat", "Failure", "Layer", "Operand", "Skip", "Trace", "Unit", "Weights"), "core.records"),
    "PRESETS": "presets",
}
"""Public name -> the module defining it, imported on first use."""

__all__ = ["PRESETS", "Concat", "Failure", "InputSpec", "Layer", "NotTraced", "Operand", "Skip", "Trace",
           "UnetvizError", "Unit", "Weights", "__version__", "check", "cost", "diff", "fit", "inspect", "keymap",
           "trace", "verify", "weights", "why"]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value: Any = version("unetviz")
        except PackageNotFoundError:  # a source tree on sys.path, not installed
            value = "0+unknown"
    elif name in _WHERE:
        value = getattr(import_module(f".{_WHERE[name]}", __name__), name)
    else:  # a submodule (unetviz.api, unetviz.live...), as an eager package would have it after use
        try:
            value = import_module(f".{name}", __name__)
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise  # the submodule exists but needs something missing (torch for unetviz.live)
            raise AttributeError(f"module 'unetviz' has no attribute {name!r}") from None
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
