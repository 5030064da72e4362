"""``unetviz inspect``: what a checkpoint is, in a few lines."""

from __future__ import annotations

import json

from ..checkpoints.inspect import Inspection
from .weights import WeightsCheck


def render_inspection(found: Inspection, check: WeightsCheck, file: str) -> str:
    lines = [f"{file}: {found.matches} U-Net, {found.naming} naming"
             + (f" under {found.prefix!r}" if found.prefix else "") + f" ({found.family} family)",
             f"  tensors: {found.tensors} in the U-Net; the rebuilt config's manifest matches {check.matched}"
             + ("" if check.ok else f" ({len(check.missing)} missing, {len(check.unexpected)} unexpected,"
                                    f" {len(check.mismatched)} with another shape)")]
    if found.other_components:
        parts = ", ".join(f"{k} {n}" for k, n in sorted(found.other_components.items()))
        lines.append(f"  other components in the file, set aside: {parts}")
    if found.undetermined:
        lines.append(f"  not in the shapes (taken from {found.matches if found.matches != 'unknown' else 'defaults'}):"
                     f" {', '.join(found.undetermined)}; nor the prediction type or the native resolution")
    lines.append("  config: " + json.dumps(found.config))
    lines.append(f"  next: unetviz table --config {file}   (the trace of this config)")
    return "\n".join(lines) + "\n"
