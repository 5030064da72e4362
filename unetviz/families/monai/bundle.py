"""A MONAI bundle's network, read from its ``configs/inference.json`` (or ``.yaml``) into the ``monai`` family's
config: ``network_def`` (``_target_`` and keyword arguments) with its ``@`` references resolved to the literal
entries they name, and the inferer's ``roi_size`` as the default input size.

Pure data, like MONAI's ``ConfigParser`` without its evaluation: ``@id`` (``@a::b`` or the older ``@a#b`` for a
nested entry) is replaced by that entry's value, which must itself be literal; a ``$`` expression (Python MONAI
would ``eval``) and a ``%`` macro (another file) are refused in one line naming the key, never run or read.
"""

from __future__ import annotations

import re
from typing import Any

from ...core.errors import UnetvizError

_ID = re.compile(r"[A-Za-z_][\w]*(?:(?:::|#)[\w]+)*")
MAX_DEPTH = 16
"""References followed before a chain is taken for a cycle."""


def is_bundle(data: Any) -> bool:
    """A bundle config: a dict with a ``network_def`` entry."""
    return isinstance(data, dict) and isinstance(data.get("network_def"), dict)


def config_from_bundle(data: dict[str, Any], where: str = "inference.json") -> dict[str, Any]:
    """The ``monai`` family's config of a bundle config's ``network_def`` (and its inferer's ``roi_size``)."""
    network = _resolved(data, data["network_def"], "network_def", 0)
    if not isinstance(network, dict) or "_target_" not in network:
        raise UnetvizError(f"{where}: network_def has no _target_; allowed: a MONAI network and its arguments")
    config: dict[str, Any] = {"family": "monai", **{k: v for k, v in network.items() if k != "_requires_"}}
    roi = _roi_size(data)
    if roi is not None and "roi_size" not in config:
        config["roi_size"] = roi
    return config


def _roi_size(data: dict[str, Any]) -> Any:
    """The sliding-window inferer's ``roi_size``, if the bundle has one (literal or a reference to one)."""
    inferer = data.get("inferer")
    if isinstance(inferer, dict) and "roi_size" in inferer:
        return _resolved(data, inferer["roi_size"], "inferer.roi_size", 0)
    return None


def _resolved(data: dict[str, Any], value: Any, key: str, depth: int) -> Any:
    """``value`` with every ``@`` reference replaced by the literal it names."""
    if depth > MAX_DEPTH:
        raise UnetvizError(f"{key}: references nest deeper than {MAX_DEPTH} (a cycle?)")
    if isinstance(value, dict):
        return {k: _resolved(data, v, f"{key}.{k}", depth) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(data, v, f"{key}[{i}]", depth) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    if value.startswith("$"):
        raise UnetvizError(f"{key}: got the expression {value!r}; unetviz never evaluates a bundle's Python;"
                           " allowed: literal values and @references to literal entries")
    if value.startswith("%"):
        raise UnetvizError(f"{key}: got the macro {value!r}, which reads another file; allowed: literal values and"
                           " @references within this file")
    if value.startswith("@"):
        ref = value[1:]
        if not _ID.fullmatch(ref):
            raise UnetvizError(f"{key}: got {value!r}; allowed: @id or @id::sub (a reference to a literal entry)")
        return _resolved(data, _lookup(data, ref, key), f"{key} -> {ref}", depth + 1)
    return value


def _lookup(data: dict[str, Any], ref: str, key: str) -> Any:
    node: Any = data
    for part in re.split(r"::|#", ref):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise UnetvizError(f"{key}: @{ref} names no entry of the bundle config")
    return node
