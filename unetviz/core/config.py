"""Reading configs: files (JSON or safe YAML), family detection, and typed, checked arguments.

Every check raises ``UnetvizError`` with one line naming the key, the bad value and what is
allowed. Nothing here imports torch, and no file is ever executed or unpickled.
"""

from __future__ import annotations

import builtins
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from .errors import UnetvizError, bad_value, did_you_mean


def load_file(path: str | Path, key: str = "--config") -> dict[str, Any]:
    """Read a config file: JSON, or YAML through ``yaml.safe_load`` when PyYAML is installed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UnetvizError(f"{key}: file {str(p)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UnetvizError(f"{key}: cannot read {str(p)!r}: {e}") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UnetvizError(f"{key}: {str(p)!r} is YAML but PyYAML is not installed; use JSON or"
                               " `pip install pyyaml`") from None
        try:
            data = yaml.safe_load(text)
        except RecursionError:
            raise UnetvizError(f"{key}: {str(p)!r} is nested too deeply to be a config") from None
        except yaml.YAMLError as e:
            raise UnetvizError(f"{key}: {str(p)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UnetvizError(f"{key}: {str(p)!r} is not valid JSON: {e.msg} at line {e.lineno}"
                               f" column {e.colno}") from None
        except RecursionError:
            raise UnetvizError(f"{key}: {str(p)!r} is nested too deeply to be a config") from None
    if not isinstance(data, dict):
        raise UnetvizError(f"{key}: {str(p)!r} must hold a JSON object, got {type(data).__name__}")
    check_finite(data, str(p))
    return data


def check_finite(value: Any, where: str, key: str = "") -> None:
    """NaN and infinities (JSON's non-standard NaN/Infinity, 1e400, YAML's .nan) are no config value."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UnetvizError(f"{key or 'config'}: got {value!r} in {where!r}; allowed: finite numbers")
    if isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, where, str(k))
    elif isinstance(value, (list, tuple)):
        for v in value:
            check_finite(v, where, key)


KEY_CUTOFF = 0.75
"""Config keys are long and alike (norm_num_groups, attn_norm_num_groups): only a near miss gets a suggestion."""
_FROM_KEY: Any = object()  # Args.int's "no value given": None is a value a config may hold
MAX_INT = 1 << 20
"""The largest integer a config may use (channels, counts, sizes): far above any published U-Net,
and small enough that no config can make the tracer run away."""


class Args:
    """Constructor keyword arguments checked against the upstream signature and defaults."""

    def __init__(self, given: Mapping[str, Any], defaults: Mapping[str, Any], what: str,
                 ignore_unknown: builtins.bool = False) -> None:
        unknown = sorted(k for k in given if k not in defaults)
        self.ignored: list[str] = []
        """Unknown keys dropped (``ignore_unknown``)."""
        if unknown and not ignore_unknown:
            hint = did_you_mean(unknown[0], defaults, KEY_CUTOFF)
            raise UnetvizError(f"{unknown[0]}: not an argument of {what}{hint}"
                               f" ({len(defaults)} arguments: `unetviz table --help` or the upstream signature)")
        self.ignored = unknown
        self.near: dict[str, str] = {k: hint for k in unknown if (hint := did_you_mean(k, defaults, KEY_CUTOFF))}
        """The ignored keys one edit or so away from a real one: a typo silently ignored changes the answer."""
        given = {k: v for k, v in given.items() if k in defaults}
        self.values: dict[str, Any] = {**defaults, **given}
        self.given = dict(given)
        self.what = what

    def raw(self, key: str) -> Any:
        return self.values[key]

    def int(self, key: str, minimum: builtins.int = 0, value: Any = _FROM_KEY) -> builtins.int:
        """``value`` (an item of a list, say) or, when not given, ``values[key]``, checked."""
        v = self.values[key] if value is _FROM_KEY else value
        allowed = f"an integer from {minimum:,} to {MAX_INT:,}"
        # no float, not even 8.0: torch's constructors refuse a float size ("must be tuple of ints")
        if isinstance(v, bool) or not isinstance(v, int) or not minimum <= v <= MAX_INT:
            raise bad_value(key, v, allowed)
        return v

    def has_list(self, key: str) -> builtins.bool:
        """The value is a list (JSON's form of a tuple), as upstream's ``isinstance(v, (list, tuple))``."""
        return isinstance(self.values[key], (list, tuple))

    def opt_int(self, key: str, minimum: builtins.int = 0) -> builtins.int | None:
        return None if self.values[key] is None else self.int(key, minimum)

    def float(self, key: str) -> builtins.float:
        v = self.values[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise bad_value(key, v, "a finite number")
        return float(v)

    def bool(self, key: str) -> builtins.bool:
        v = self.values[key]
        if not isinstance(v, bool):
            raise bad_value(key, v, "true or false")
        return v

    def flag(self, key: str) -> builtins.bool:
        """A switch upstream reads by truthiness (``if use_fp16:``): 1, 0, true, false, null all work."""
        v = self.values[key]
        if isinstance(v, (dict, str)) and v:
            raise bad_value(key, v, "true or false")  # truthy too, but surely not meant as a switch
        return builtins.bool(v)

    def choice(self, key: str, allowed: Iterable[Any]) -> Any:
        allowed = tuple(allowed)
        v = self.values[key]
        if v not in allowed:
            raise bad_value(key, v, allowed)
        return v

    def str_list(self, key: str, allowed: Iterable[str], value: Any = _FROM_KEY) -> list[str]:
        """``value`` (the key's list after a builder's own normalisation) or ``values[key]``, checked."""
        allowed = tuple(allowed)
        v = self.values[key] if value is _FROM_KEY else value
        if isinstance(v, str) or not isinstance(v, (list, tuple)) or not v:
            raise bad_value(key, v, "a non-empty list of block type names")
        for item in v:
            if item not in allowed:
                raise UnetvizError(f"{key}: unknown block type {item!r}; allowed: {', '.join(allowed)}")
        return list(v)

    def int_list(self, key: str, minimum: builtins.int = 1, length: builtins.int | None = None) -> list[builtins.int]:
        v = self.values[key]
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)) or not v:
            raise bad_value(key, v, "a non-empty list of integers")
        out = [self.int(key, minimum, item) for item in v]
        if length is not None and len(out) != length:
            raise UnetvizError(f"{key} has {len(out)} entries but {self.length_key} has {length}")
        return out

    def per_block(self, key: str, n: builtins.int, minimum: builtins.int = 1,
                  allow_none: builtins.bool = False) -> list[Any]:
        """An int (or None) for every block, or a list with one per block (diffusers' style)."""
        v = self.values[key]
        if isinstance(v, (list, tuple)):
            if len(v) != n:
                raise UnetvizError(f"{key} has {len(v)} entries but {self.length_key} has {n}")
            return [None if (allow_none and item is None) else self.int(key, minimum, item) for item in v]
        if v is None and allow_none:
            return [None] * n
        return [self.int(key, minimum)] * n

    length_key = "down_block_types"


ContextArg = tuple[int, int] | str | None
"""``--context``: (tokens, width), ``"77x768"``, ``"none"`` (the caller passes no context) or None (the default)."""
Context = tuple[int, int] | Literal["none"] | None
"""A parsed ``--context``: (tokens, width), ``"none"`` or None."""


def parse_context(value: ContextArg | list[int]) -> Context:
    """``"77x768"`` -> (77, 768): tokens x width of the ``encoder_hidden_states`` a caller passes; ``"none"``."""
    allowed = "TOKENSxWIDTH with positive integers (77x768) or none"
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "none":
        return "none"
    parts: list[Any] = list(value) if isinstance(value, (tuple, list)) else str(value).lower().split("x")
    try:
        dims = tuple(int(p) for p in parts if not isinstance(p, bool))
    except (TypeError, ValueError):
        raise bad_value("--context", value, allowed) from None
    if len(dims) != 2 or len(parts) != 2 or any(d < 1 or d > MAX_INT for d in dims):
        raise bad_value("--context", value, allowed)
    return dims[0], dims[1]
