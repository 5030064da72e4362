"""``unetviz inspect``: what a checkpoint is, in a few lines."""

from __future__ import annotations

import json

from ..checkpoints.inspect import Inspection
from .weights import WeightsCheck


def render_inspection(found: Inspection, check: WeightsCheck, file: str, width: int = 120) -> str:
    """A few lines fitted to ``width``: the file's first line may be a long path; the config is JSON, one key a
    line when it does not fit on one (still valid JSON to paste into a file)."""
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
    flat = json.dumps(found.config)
    if len(flat) + 10 <= width:
        lines.append("  config: " + flat)
    else:
        lines.append("  config:")
        lines += ["    " + line for line in json.dumps(found.config, indent=1).splitlines()]
    lines.append(f"  next: unetviz table --config {file}   (the trace of this config)")
    return "\n".join(_wrapped(line, width) for line in lines) + "\n"


def _wrapped(line: str, width: int) -> str:
    """A sentence wrapped at spaces to ``width`` (continuations indented); a long path or key stays whole."""
    if len(line) <= width:
        return line
    import textwrap

    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return "\n".join(textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False,
                                   break_on_hyphens=False))
