"""Reading a weights file's names and shapes without its data: a ``.safetensors`` header or a JSON manifest.

Only the header is read (8 bytes of length, then that many bytes of JSON, capped at 100 MB as
safetensors itself caps it); tensor data is never touched and nothing is ever unpickled, so a
multi-GB checkpoint costs a few milliseconds and a hostile file cannot run code.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from ..core.errors import UnetvizError
from ..core.records import Shape

MAX_HEADER = 100 * 1024 * 1024
KEY_MAX = 512
"""Longer keys are no model's (Stable Diffusion's longest state_dict keys have about 100 characters): the
readers that match patterns skip them, so a header of huge keys costs its parse and no more."""
PICKLES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def read_shapes(path: Path, key: str = "--check") -> dict[str, Shape]:
    """Key -> shape of a weights file, in the file's order, without loading tensor data."""
    return read_header(path, key)[0]


def read_header(path: Path, key: str = "--check") -> tuple[dict[str, Shape], dict[str, str]]:
    """(key -> shape, the safetensors ``__metadata__`` strings) of a weights file, without its tensor data.
    A JSON manifest has no metadata; metadata values that are not strings (safetensors allows only strings)
    are dropped rather than trusted."""
    name = path.name.lower()
    if name.endswith(PICKLES):
        raise UnetvizError(f"{key}: {path.name!r} is a pickle file, which unetviz never loads (it can run code);"
                           " allowed: .safetensors or a .json manifest")
    if name.endswith(".safetensors"):
        header = _header(path, key)
        meta = header.pop("__metadata__", None)
        strings = {str(k): v for k, v in meta.items() if isinstance(v, str)} if isinstance(meta, dict) else {}
        return _shapes(header, path, key), strings
    data = _json(_read(path, key), path, key, "is not JSON; allowed: .safetensors or a .json manifest")
    if isinstance(data, dict) and isinstance(data.get("tensors"), dict):
        data = data["tensors"]
    elif isinstance(data, dict) and ("_class_name" in data or "family" in data):
        what = data.get("_class_name") or data.get("family")
        raise UnetvizError(f"{key}: {path.name!r} is a model config ({what!r}), not a weights file; `unetviz table"
                           f" --config {path.name}` reads configs, {key} reads .safetensors headers and .json"
                           " manifests")
    if not isinstance(data, dict):
        raise UnetvizError(f"{key}: {path.name!r} must map keys to shapes ({{\"conv_in.weight\": [320, 4, 3, 3]}})")
    return _shapes(data, path, key), {}


def _read(path: Path, key: str, limit: int | None = None) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read() if limit is None else f.read(limit)
    except IsADirectoryError:
        raise UnetvizError(f"{key}: {str(path)!r} is a folder; give the .safetensors file in it") from None
    except OSError as e:
        raise UnetvizError(f"{key}: cannot read {str(path)!r}: {e.strerror}") from None


def _header(path: Path, key: str) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise UnetvizError(f"{key}: {path.name!r} is too short to be a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise UnetvizError(f"{key}: {path.name!r} declares a {n:,}-byte header; safetensors allows at most"
                                   f" {MAX_HEADER:,} (not a safetensors file?)")
            if n > size - 8:
                raise UnetvizError(f"{key}: {path.name!r} declares a {n:,}-byte header but the file has only"
                                   f" {size - 8:,} bytes after the length (truncated, or not a safetensors file)")
            raw = f.read(n)
    except OSError as e:
        raise UnetvizError(f"{key}: cannot read {str(path)!r}: {e.strerror}") from None
    header = _json(raw, path, key, "has a safetensors header that is not JSON")
    if not isinstance(header, dict):
        raise UnetvizError(f"{key}: {path.name!r} has a safetensors header that is not a JSON object")
    return {k: v if k == "__metadata__" else v.get("shape") if isinstance(v, dict) else v for k, v in header.items()}


def _json(raw: bytes, path: Path, key: str, problem: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise UnetvizError(f"{key}: {path.name!r} {problem}") from None


def _shapes(entries: dict[str, Any], path: Path, key: str) -> dict[str, Shape]:
    """Every entry must be a list of non-negative integers: anything else names the key."""
    out: dict[str, Shape] = {}
    for name, shape in entries.items():
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise UnetvizError(f"{key}: {path.name!r}: {name}: got shape {shape!r}; allowed: a list of"
                               " non-negative integers")
        out[str(name)] = tuple(shape)
    return out
