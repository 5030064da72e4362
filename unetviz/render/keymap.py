"""The key map for porters: every tensor's diffusers key, original key and shape, both directions."""

from __future__ import annotations

import csv
import io
import json

Pairs = tuple[tuple[str, str, tuple[int, ...]], ...]


def keymap_json(pairs: Pairs) -> str:
    doc = {"schema": "unetviz.keymap/1", "count": len(pairs),
           "diffusers_to_original": {d: o for d, o, _ in pairs},
           "original_to_diffusers": {o: d for d, o, _ in pairs},
           "shapes": {d: list(s) for d, _, s in pairs}}
    return json.dumps(doc, indent=1) + "\n"


def keymap_csv(pairs: Pairs) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("diffusers", "original", "shape"))
    for d, o, s in pairs:
        w.writerow((d, o, "x".join(map(str, s))))
    return buf.getvalue()


def keymap_lines(pairs: Pairs, width: int = 120) -> list[str]:
    """A header, then one tensor a row: ``diffusers key -> original key  shape``; where that would be wider than
    ``width``, the original key and the shape go on the next line, under an arrow (no key is ever cut)."""
    w_d = max((len(d) for d, _, _ in pairs), default=0)
    w_o = max((len(o) for _, o, _ in pairs), default=0)
    w_s = max((len("x".join(map(str, s))) for _, _, s in pairs), default=0)
    one_line = w_d + w_o + w_s + 8 <= width
    lines = [f"{len(pairs)} tensors, one to one: diffusers key -> original (CompVis/Stability) key"]
    if one_line:
        lines.append(f"{'diffusers':<{w_d}}    {'original':<{w_o}}  shape")
    else:
        lines.append("diffusers")
        lines.append("  -> original  shape")
    for d, o, s in pairs:
        shape = "x".join(map(str, s))
        if one_line:
            lines.append(f"{d:<{w_d}} -> {o:<{w_o}}  {shape}")
        else:
            lines += [d, f"  -> {o}  {shape}"]
    return [line.rstrip() for line in lines]
