"""``unetviz fit``'s report: one verdict a file, what it targets, what a loader drops, its shape clashes grouped
by layer and widths. Fitted to the width: lines wrap at spaces, a key or path is never cut."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..analysis.fit import AddOn, Clash, FitReport
from ..checkpoints.lora import block_of
from .text import wrapped

SHOWN = 8
"""Clash groups and dropped names shown per file (``--format json`` lists all)."""
VERBS = {"in-width": "reads", "out-width": "writes"}
"""How a clash of a width is said (``attn2.to_k reads 2048 where the base has 768``)."""


def render_fit(report: FitReport, width: int) -> str:
    b = report.base
    c = b.config
    lines = [f"base: {b.source}: {b.model} U-Net, {b.naming} naming (context {c.get('cross_attention_dim')},"
             f" widths {' '.join(map(str, c.get('block_out_channels', [])))})"]
    for a in report.addons:
        lines += _addon(a)
    verdict = "they fit" if report.ok else "they do not fit"
    lines.append(f"{verdict}: {sum(a.ok for a in report.addons)} of {len(report.addons)} files load cleanly")
    return "\n".join(wrapped(line, width) for line in lines) + "\n"


def _addon(a: AddOn) -> list[str]:
    f = a.found
    mark = "fits" if a.ok else "DOES NOT FIT"
    whole = [c for c in a.clashes if c.what == "kind"]  # a model, not an add-on: no shapes were compared
    made = f"{f.name} ({f.evidence})" if whole else f"{f.name} made for {f.base} ({f.evidence})"
    lines = [f"{a.file}: {mark}: {made}"]
    if a.targets:
        blocks = list(dict.fromkeys(block_of(t) for t in a.targets))
        where = ", ".join(blocks) if "?" not in blocks else f"{len(set(a.targets))} places"
        lines.append(f"  targets {len(a.targets)} modules of the base: {where}")
    if a.dropped:
        lines.append(f"  a loader drops {len(a.dropped)} (no such module in the base):")
        lines += [f"    {name}" for name in a.dropped[:3]]
        if len(a.dropped) > 3:
            lines.append(f"    ... and {len(a.dropped) - 3} more (--format json lists all)")
    clashes = [c for c in a.clashes if c.what != "kind"]
    if clashes:
        groups = _groups(clashes)
        lines.append(f"  {len(clashes)} shape clashes" + _widths(clashes) + ":")
        for (leaf, said), (n, first) in list(groups.items())[:SHOWN]:
            if first is None:
                lines.append(f"    {leaf}: {said}")
                continue
            lines.append(f"    {leaf} {said}" + (f" ({n} layers), first:" if n > 1 else ":"))
            lines.append(f"      {first}")
        if len(groups) > SHOWN:
            lines.append(f"    ... and {len(groups) - SHOWN} more kinds of clash (--format json lists all)")
    lines += [f"  note: {n}" for n in a.notes if n]
    return lines


CONTAINERS = ("attentions", "resnets", "upsamplers", "downsamplers", "transformer_blocks", "motion_modules")
"""Module lists whose index ends a block's part of a path: what follows is the layer's own name."""


def _leaf(path: str) -> str:
    """A layer's name inside its block: ``attn2.to_k``, ``proj_in``, ``ff.net.0.proj``."""
    parts = path.split(".")
    cut = 0
    for i in range(1, len(parts)):
        before = parts[i - 1]
        if parts[i].isdigit() and (before.isdigit() or before.endswith("blocks") or before in CONTAINERS):
            cut = i + 1
    return ".".join(parts[cut:]) or path


def _said(group: list[Clash]) -> str:
    """What one module's clashes say: ``reads 2048 where the base has 768``, ``is 640->640 where the base has
    1280->1280``; a clash that is no module's: ``context width 768 where the base has 2048``."""
    by = {c.what: c for c in group}
    if "in-width" in by and "out-width" in by:
        i, o = by.pop("in-width"), by.pop("out-width")
        first = f"is {i.file}->{o.file} where the base has {i.base}->{o.base}"
        return "; ".join([first, *(_one(c) for c in by.values())])
    return "; ".join(_one(c) for c in group)


def _widths(clashes: Sequence[Clash]) -> str:
    """The width pairs behind the clashes, most frequent first: ``640 for 768 (236), 2048 for 1280 (40)``."""
    pairs = Counter((c.file, c.base) for c in clashes if c.what in VERBS)
    if not pairs:
        return ""
    shown = [f"{f} for {b} ({n})" for (f, b), n in pairs.most_common(4)]
    return ", widths (file for base): " + ", ".join(shown) + (", ..." if len(pairs) > 4 else "")


def _value(v: object) -> str:
    return "none" if v is None else str(v)


def _one(c: Clash) -> str:
    if c.what == "made for":
        return f"made for {c.file}; the base is {c.base}"
    verb = VERBS.get(c.what)
    mine, theirs = _value(c.file), _value(c.base)
    return f"{verb} {mine} where the base has {theirs}" if verb else f"{c.what} {mine} where the base has {theirs}"


def _groups(clashes: Sequence[Clash]) -> dict[tuple[str, str], tuple[int, str | None]]:
    """Clashes by (layer name, what it reads/writes against the base): how many layers, and the first one's
    base module (None for a clash that is no module's: a count, the text context)."""
    per_module: dict[str, list[Clash]] = {}
    for c in clashes:
        per_module.setdefault(f"{c.module}|{c.key}", []).append(c)
    counts: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], str | None] = {}
    for group in per_module.values():
        c = group[0]
        is_path = "." in c.module and " " not in c.module
        leaf = _leaf(c.module) if is_path else c.key
        said = _said(group) + ("" if is_path or not c.module else f" ({c.module})")
        key = (leaf, said)
        counts[key] += 1
        first.setdefault(key, c.module if is_path else None)
    return {k: (n, first[k]) for k, n in counts.items()}

