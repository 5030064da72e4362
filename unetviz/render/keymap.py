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


def keymap_lines(pairs: Pairs) -> list[str]:
    """One line a tensor: ``diffusers key -> original key  shape`` (never cut: long keys wrap nowhere)."""
    width = max((len(d) for d, _, _ in pairs), default=0)
    lines = [f"{len(pairs)} tensors, one to one (diffusers -> original)"]
    lines += [f"{d.ljust(width)}  {o}  {'x'.join(map(str, s))}" for d, o, s in pairs]
    return lines
