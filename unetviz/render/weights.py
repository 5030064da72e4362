"""The weights manifest for porters: every state_dict key and shape, and a check against a file.

``--check`` reads a unetviz weights JSON, a plain ``{key: shape}`` JSON, or a ``.safetensors``
file's header (a length-prefixed JSON block: nothing is unpickled, no tensor data is read).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UnetvizError
from ..records import Shape, Trace

_MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its header at 100 MB too


@dataclass(frozen=True)
class WeightsCheck:
    """How a weights file compares with the trace's manifest."""

    missing: tuple[tuple[str, Shape], ...]
    """In the model, not in the file."""
    unexpected: tuple[tuple[str, Shape], ...]
    """In the file, not in the model."""
    mismatched: tuple[tuple[str, Shape, Shape], ...]
    """Same key, different shape: (key, model's, file's)."""
    matched: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def read_shapes(path: Path) -> dict[str, Shape]:
    """Key -> shape of a weights file, without loading tensor data."""
    name = path.name.lower()
    if name.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl")):
        raise UnetvizError(f"--check: {path.name!r} is a pickle file, which unetviz never loads (it can run code);"
                           " allowed: .safetensors or a .json manifest")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UnetvizError(f"--check: cannot read {str(path)!r}: {e.strerror}") from None
    if name.endswith(".safetensors"):
        if len(raw) < 8:
            raise UnetvizError(f"--check: {path.name!r} is too short to be a safetensors file")
        (n,) = struct.unpack("<Q", raw[:8])
        if n > min(_MAX_HEADER, len(raw) - 8):
            raise UnetvizError(f"--check: {path.name!r} has a corrupt safetensors header length ({n})")
        try:
            header = json.loads(raw[8 : 8 + n])
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UnetvizError(f"--check: {path.name!r} has a safetensors header that is not JSON") from None
        return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnetvizError(f"--check: {path.name!r} is not JSON; allowed: .safetensors or a .json manifest") from None
    if isinstance(data, dict) and isinstance(data.get("tensors"), dict):
        data = data["tensors"]
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise UnetvizError(f"--check: {path.name!r} must map keys to shapes ({{\"conv_in.weight\": [320, 4, 3, 3]}})")
    return {str(k): tuple(int(d) for d in v) for k, v in data.items()}


def check_weights(trace: Trace, shapes: dict[str, Shape]) -> WeightsCheck:
    ours = dict(trace.manifest)
    missing = tuple((k, s) for k, s in trace.manifest if k not in shapes)
    unexpected = tuple((k, s) for k, s in shapes.items() if k not in ours)
    mismatched = tuple((k, ours[k], s) for k, s in shapes.items() if k in ours and tuple(ours[k]) != tuple(s))
    return WeightsCheck(missing, unexpected, mismatched, len(ours) - len(missing) - len(mismatched))


def render_weights(trace: Trace) -> Any:
    from rich.table import Table

    t = Table(title=f"{trace.preset or 'config'}: {len(trace.manifest)} state_dict tensors,"
                    f" {trace.params:,} params", title_justify="left", pad_edge=False)
    t.add_column("#", justify="right", style="dim")
    t.add_column("key")
    t.add_column("shape", justify="right")
    t.add_column("numel", justify="right")
    for i, (key, shape) in enumerate(trace.manifest):
        n = 1
        for d in shape:
            n *= d
        t.add_row(str(i), key, "x".join(map(str, shape)) or "scalar", f"{n:,}")
    return t


def render_check(result: WeightsCheck, source: str) -> str:
    lines = [f"{source}: {result.matched} tensors match"
             + ("" if result.ok else f"; {len(result.missing)} missing, {len(result.unexpected)} unexpected,"
                                     f" {len(result.mismatched)} with another shape")]
    for k, s in result.missing[:50]:
        lines.append(f"  missing     {k} {list(s)}")
    for k, s in result.unexpected[:50]:
        lines.append(f"  unexpected  {k} {list(s)}")
    for k, a, b in result.mismatched[:50]:
        lines.append(f"  shape       {k}: model {list(a)}, file {list(b)}")
    return "\n".join(lines)
