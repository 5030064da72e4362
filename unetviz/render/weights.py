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
from ..records import Shape, Trace, Weights, numel

_MAX_HEADER = 100 * 1024 * 1024  # safetensors caps its header at 100 MB too


@dataclass(frozen=True, kw_only=True)
class WeightsCheck:
    """How a weights file compares with the trace's manifest."""

    missing: tuple[tuple[str, Shape], ...]
    """In the model, not in the file."""
    unexpected: tuple[tuple[str, Shape], ...]
    """In the file, not in the model (after the prefix is taken off)."""
    mismatched: tuple[tuple[str, Shape, Shape], ...]
    """Same key, different shape: (key, model's, file's)."""
    matched: int
    """Keys present in both with the same shape."""
    prefix: str = ""
    """The key prefix the file's tensors carry (``unet.``, ``model.diffusion_model.``), taken off."""
    other: int = 0
    """Tensors of the file outside that prefix (other components: VAE, text encoders), set aside."""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "unetviz.check/1", "ok": self.ok, "matched": self.matched, "prefix": self.prefix,
                "other_tensors": self.other,
                "missing": {k: list(s) for k, s in self.missing},
                "unexpected": {k: list(s) for k, s in self.unexpected},
                "mismatched": {k: {"model": list(a), "file": list(b)} for k, a, b in self.mismatched}}


PREFIXES = ("model.diffusion_model.", "model_ema.diffusion_model.", "unet.", "model.", "diffusion_model.")
"""Prefixes single-file checkpoints put before the U-Net's keys (A1111, ComfyUI, kohya, diffusers pipelines)."""
LIST_MAX = 50


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
        header = _json(raw[8 : 8 + n], path, "has a safetensors header that is not JSON")
        if not isinstance(header, dict):
            raise UnetvizError(f"--check: {path.name!r} has a safetensors header that is not a JSON object")
        entries = {k: v.get("shape") if isinstance(v, dict) else v for k, v in header.items() if k != "__metadata__"}
        return _shapes(entries, path)
    data = _json(raw, path, "is not JSON; allowed: .safetensors or a .json manifest")
    if isinstance(data, dict) and isinstance(data.get("tensors"), dict):
        data = data["tensors"]
    if not isinstance(data, dict):
        raise UnetvizError(f"--check: {path.name!r} must map keys to shapes ({{\"conv_in.weight\": [320, 4, 3, 3]}})")
    return _shapes(data, path)


def _json(raw: bytes, path: Path, problem: str) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise UnetvizError(f"--check: {path.name!r} {problem}") from None


def _shapes(entries: dict[str, Any], path: Path) -> dict[str, Shape]:
    """Every entry must be a list of non-negative integers: anything else names the key."""
    out: dict[str, Shape] = {}
    for key, shape in entries.items():
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):
            raise UnetvizError(f"--check: {path.name!r}: {key}: got shape {shape!r}; allowed: a list of"
                               " non-negative integers")
        out[str(key)] = tuple(shape)
    return out


def _prefix(ours: dict[str, Shape], shapes: dict[str, Shape]) -> str:
    """The prefix under which most of the file's keys are the model's (``""`` when they already are)."""
    best, hits = "", sum(1 for k in shapes if k in ours)
    for p in PREFIXES:
        n = sum(1 for k in shapes if k.startswith(p) and k[len(p):] in ours)
        if n > hits:
            best, hits = p, n
    return best


def check_weights(trace: Trace | Weights, shapes: dict[str, Shape]) -> WeightsCheck:
    ours = dict(trace.manifest)
    prefix = _prefix(ours, shapes)
    inside = {k[len(prefix):]: s for k, s in shapes.items() if k.startswith(prefix)}
    missing = tuple((k, s) for k, s in trace.manifest if k not in inside)
    unexpected = tuple((k, s) for k, s in inside.items() if k not in ours)
    mismatched = tuple((k, ours[k], s) for k, s in inside.items() if k in ours and tuple(ours[k]) != tuple(s))
    return WeightsCheck(missing=missing, unexpected=unexpected, mismatched=mismatched,
                        matched=len(ours) - len(missing) - len(mismatched), prefix=prefix,
                        other=len(shapes) - len(inside))


def render_weights(trace: Trace | Weights) -> Any:
    from rich.table import Table

    t = Table(title=f"{trace.name or trace.preset or 'config'}: {len(trace.manifest)} state_dict tensors,"
                    f" {trace.params:,} params", title_justify="left", pad_edge=False)
    t.add_column("#", justify="right", style="dim")
    t.add_column("key", overflow="fold")
    t.add_column("shape", justify="right", no_wrap=True)
    t.add_column("numel", justify="right", no_wrap=True)
    for i, (key, shape) in enumerate(trace.manifest):
        t.add_row(str(i), key, "x".join(map(str, shape)) or "scalar", f"{numel(shape):,}")
    return t


def _listed(label: str, items: list[str]) -> list[str]:
    if len(items) <= LIST_MAX:
        return items
    return [*items[:LIST_MAX], f"  ... and {len(items) - LIST_MAX} more {label} (--format json lists all)"]


def render_check(result: WeightsCheck, source: str) -> str:
    where = f" (under the prefix {result.prefix!r})" if result.prefix else ""
    lines = [f"{source}: {result.matched} tensors match{where}"
             + ("" if result.ok else f"; {len(result.missing)} missing, {len(result.unexpected)} unexpected,"
                                     f" {len(result.mismatched)} with another shape")]
    if result.other:
        lines.append(f"  {result.other} other tensors in the file (outside {result.prefix!r}: other components)"
                     " set aside")
    if result.matched == 0 and result.unexpected:
        lines.append("  hint: no key matches; the file may use another naming (the original LDM/SGM names) or"
                     " hold another model")
    lines += _listed("missing", [f"  missing     {k} {list(s)}" for k, s in result.missing])
    lines += _listed("unexpected", [f"  unexpected  {k} {list(s)}" for k, s in result.unexpected])
    lines += _listed("with another shape", [f"  shape       {k}: model {list(a)}, file {list(b)}"
                                            for k, a, b in result.mismatched])
    return "\n".join(lines)
