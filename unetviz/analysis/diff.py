"""``unetviz diff A B``: two traces compared block by block and unit by unit, with a summary in plain words.

Blocks and units are matched by module path (``down_blocks.1``, ``down_blocks.1.attentions.0``), in
forward order; the summary compares what a reader of two configs wants to know first (levels,
channels, heads and head width, transformer depth, context width, projections, skips, params), each
figure read from the traces. Torch-free: it only reads records.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import TypeVar

from ..core.records import Trace, Unit, fmt_size
from ..tracing import SizeArg, Source, trace_source

__all__ = ["AttentionLevel", "BlockDiff", "Change", "Diff", "Profile", "UnitDiff", "diff", "profile"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class UnitDiff:
    """One unit of either trace, matched by path."""

    path: str
    """The unit's module path (the same in both traces when matched)."""
    a: Unit | None
    """The unit in trace A, ``None`` if only B has it."""
    b: Unit | None
    """The unit in trace B, ``None`` if only A has it."""
    changes: tuple[str, ...]
    """What differs: ``type``, ``channels``, ``size``, ``note``, ``params`` (empty: the same);
    ``only a`` / ``only b`` for an unmatched unit."""


@dataclass(frozen=True, kw_only=True)
class BlockDiff:
    """One block heading (or a head/tail unit under none), matched by path."""

    path: str
    """The block's path (``down_blocks.0``, ``mid_block``, ``conv_in``)."""
    a_title: str | None
    """Its description in trace A (``CrossAttnDownBlock2D 320->320``), ``None`` if only B has it."""
    b_title: str | None
    """Its description in trace B."""
    a_params: int
    """Parameters of its units in A (0 when absent)."""
    b_params: int
    """Parameters of its units in B."""
    units: tuple[UnitDiff, ...]
    """Its units, A's and B's aligned by path."""

    @property
    def changed(self) -> bool:
        """Whether anything in the block differs."""
        return self.a_title != self.b_title or any(u.changes for u in self.units)


@dataclass(frozen=True, kw_only=True)
class AttentionLevel:
    """The first attention (or transformer) unit at one resolution, read from the trace."""

    level: int | str
    """The resolution level (0 = input resolution), or ``mid`` for the middle block's."""
    heads: int | None
    """Number of heads, if the unit's note says."""
    width: int | None
    """Channels per head."""
    depth: int | None
    """Transformer blocks inside (diffusers/ldm ``transformer_layers_per_block``), if any."""


@dataclass(frozen=True, kw_only=True)
class Profile:
    """The figures of one trace that the summary compares."""

    levels: tuple[int, ...]
    """Channels at each resolution level of the encoder (the last unit's output before each down step)."""
    attention: tuple[AttentionLevel, ...]
    """Per level with attention, encoder then middle."""
    contexts: tuple[int, ...]
    """Cross-attention context widths the model expects (empty: no cross-attention)."""
    projections: tuple[str, ...]
    """Layer types of the transformers' ``proj_in`` (``Conv2d`` or ``Linear``)."""


@dataclass(frozen=True, kw_only=True)
class Change:
    """One difference the summary names."""

    what: str
    """What differs: ``levels``, ``heads``, ``context``, ``params``, ..."""
    a: str
    """A's value, as shown."""
    b: str
    """B's value, as shown."""


@dataclass(frozen=True, kw_only=True)
class Diff:
    """Two traces compared."""

    a: Trace
    """Trace A."""
    b: Trace
    """Trace B."""
    a_name: str
    """What to call A (preset, config file name or model)."""
    b_name: str
    """What to call B."""
    blocks: tuple[BlockDiff, ...]
    """Every block of either trace, aligned in forward order."""
    changes: tuple[Change, ...]
    """The differences the summary names, in its order."""
    summary: str
    """One paragraph in plain words, computed from ``changes``."""

    @property
    def params_delta(self) -> int:
        """B's parameters minus A's."""
        return self.b.params - self.a.params


_HEADS = re.compile(r"(\d+) heads x (\d+)")
_DEPTH = re.compile(r"(\d+) block\(s\)")
_CONTEXT = re.compile(r"(\d+)-d context|context (\d+)")


def _shrinks(u: Unit) -> bool:
    a, b = u.in_size, u.out_size
    return bool(a and b and len(a) == len(b) and 2 * b[0] <= a[0] + 1)


def _encoder(trace: Trace) -> list[Unit]:
    """The units before the first concat (encoder and middle; all of them without concats)."""
    first = min((c.at for c in trace.concats), default=len(trace.layers))
    return [u for u in trace.units if u.last <= first]


def _attention(u: Unit, level: int | str) -> AttentionLevel:
    h, d = _HEADS.search(u.note), _DEPTH.search(u.note)
    return AttentionLevel(level=level, heads=int(h[1]) if h else None, width=int(h[2]) if h else None,
                          depth=int(d[1]) if d else None)


def profile(trace: Trace) -> Profile:
    """Levels, attention per level, contexts and projections of ``trace``."""
    enc = _encoder(trace)
    levels: list[int] = []
    attention: dict[int | str, AttentionLevel] = {}
    level, last = 0, 0
    for u in enc:
        if _shrinks(u):
            levels.append(last)
            level += 1
        if u.kind in ("attention", "transformer"):
            key: int | str = "mid" if "mid" in u.block.split(".")[0] else level
            attention.setdefault(key, _attention(u, key))
        if u.kind != "mlp" and u.out_size is not None and "mid" not in u.block.split(".")[0]:
            last = u.out_channels
    levels.append(last)
    contexts = sorted({int(m[1] or m[2]) for u in trace.units for m in _CONTEXT.finditer(u.note)})
    projections = sorted({x.type for x in trace.layers if x.path.endswith(".proj_in")})
    return Profile(levels=tuple(levels), attention=tuple(attention.values()), contexts=tuple(contexts),
                   projections=tuple(projections))


def _align(a: Sequence[T], b: Sequence[T], key_a: Sequence[str],
           key_b: Sequence[str]) -> list[tuple[T | None, T | None]]:
    """A's and B's items paired where their keys match, unmatched ones in place, forward order."""
    out: list[tuple[T | None, T | None]] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, key_a, key_b, autojunk=False).get_opcodes():
        if op == "equal":
            out += [(a[i1 + k], b[j1 + k]) for k in range(i2 - i1)]
            continue
        out += [(x, None) for x in a[i1:i2]] + [(None, y) for y in b[j1:j2]]
    return out


def _unit_changes(a: Unit, b: Unit) -> tuple[str, ...]:
    checks = {"type": a.type != b.type, "channels": (a.in_channels, a.out_channels) != (b.in_channels, b.out_channels),
              "size": (a.in_size, a.out_size) != (b.in_size, b.out_size), "note": a.note != b.note,
              "params": a.params != b.params}
    return tuple(k for k, v in checks.items() if v)


def _unit_diff(a: Unit | None, b: Unit | None) -> UnitDiff:
    if a is None or b is None:
        u = a or b
        assert u is not None
        return UnitDiff(path=u.path, a=a, b=b, changes=("only a",) if b is None else ("only b",))
    return UnitDiff(path=a.path, a=a, b=b, changes=_unit_changes(a, b))


def _groups(trace: Trace) -> list[tuple[str, list[Unit]]]:
    groups: dict[str, list[Unit]] = {}
    for u in trace.units:
        groups.setdefault(u.block or u.path, []).append(u)
    return list(groups.items())


def _block_diffs(a: Trace, b: Trace) -> tuple[BlockDiff, ...]:
    ga, gb = _groups(a), _groups(b)
    titles_a, titles_b = dict(a.blocks), dict(b.blocks)
    out = []
    for x, y in _align(ga, gb, [p for p, _ in ga], [p for p, _ in gb]):
        ua, ub = x[1] if x else [], y[1] if y else []
        path = (x or y or ("", []))[0]
        units = tuple(_unit_diff(p, q) for p, q in _align(ua, ub, [u.path for u in ua], [u.path for u in ub]))
        out.append(BlockDiff(path=path, a_title=titles_a.get(path, ua[0].type) if ua else None,
                             b_title=titles_b.get(path, ub[0].type) if ub else None,
                             a_params=sum(u.params for u in ua), b_params=sum(u.params for u in ub), units=units))
    return tuple(out)


def _seq(values: Sequence[object]) -> str:
    """``8`` for a uniform list, ``5/10/20/20`` otherwise, ``none`` for an empty one."""
    shown = ["?" if v is None else str(v) for v in values]
    if not shown or all(v is None for v in values):
        return "none"
    return shown[0] if len(set(shown)) == 1 else "/".join(shown)


def _where(levels: Sequence[AttentionLevel]) -> str:
    return "/".join(str(x.level) for x in levels) or "none"


def _changes(a: Trace, b: Trace) -> list[Change]:
    pa, pb = profile(a), profile(b)
    out: list[Change] = []

    def add(what: str, x: str, y: str) -> None:
        if x != y:
            out.append(Change(what=what, a=x, b=y))

    add("model", f"{a.family} {a.model}", f"{b.family} {b.model}")
    add("input", f"{a.in_channels}x{fmt_size(a.in_size)}", f"{b.in_channels}x{fmt_size(b.in_size)}")
    add("levels", str(len(pa.levels)), str(len(pb.levels)))
    add("channels", _seq(pa.levels), _seq(pb.levels))
    add("attention levels", _where(pa.attention), _where(pb.attention))
    add("heads", _seq([x.heads for x in pa.attention]), _seq([x.heads for x in pb.attention]))
    add("head width", _seq([x.width for x in pa.attention]), _seq([x.width for x in pb.attention]))
    add("transformer depth", _seq([x.depth for x in pa.attention]), _seq([x.depth for x in pb.attention]))
    add("context", _seq(pa.contexts), _seq(pb.contexts))
    add("projections", _seq(pa.projections), _seq(pb.projections))
    add("skips", str(len(a.skips)), str(len(b.skips)))
    add("params", f"{a.params:,}", f"{b.params:,}")  # worded last, with the difference, by _summary
    return out


_WORDS = {"model": "{a} -> {b}", "input": "input {a} -> {b}", "levels": "{a} -> {b} resolution levels",
          "channels": "channels per level {a} -> {b}", "attention levels": "attention at levels {a} -> {b}",
          "heads": "attention heads {a} -> {b}", "head width": "head width {a} -> {b}",
          "transformer depth": "transformer depth {a} -> {b}", "context": "cross-attention context {a} -> {b}",
          "projections": "proj_in/proj_out {a} -> {b}", "skips": "{a} -> {b} skips"}


def _only(name: str, paths: Sequence[str]) -> str:
    if len(paths) <= 4:
        return f"only in {name}: {', '.join(paths)}"
    return f"{len(paths)} blocks only in {name}, from {paths[0]} to {paths[-1]}"


def _summary(d_a: str, d_b: str, changes: list[Change], blocks: Sequence[BlockDiff], params: tuple[int, int]) -> str:
    if not changes and not any(bd.changed for bd in blocks):
        return f"{d_a} and {d_b} have the same blocks, units, channels and parameters."
    said = [_WORDS[c.what].format(a=c.a, b=c.b) for c in changes if c.what in _WORDS]
    units = [u for bd in blocks for u in bd.units]
    matched = [u for u in units if u.a is not None and u.b is not None]
    only_a = [bd.path for bd in blocks if bd.b_title is None]
    only_b = [bd.path for bd in blocks if bd.a_title is None]
    text = f"From {d_a} to {d_b}: " + ("; ".join(said) if said else "the same overall shape") + "."
    if matched:
        text += (f" Of {len(matched)} units in both, {sum('channels' in u.changes for u in matched)} change channels"
                 f" and {sum('params' in u.changes for u in matched)} change parameters")
    else:
        text += " No unit has the same module path in both (a different naming)"
    text += "".join(f"; {_only(n, p)}" for n, p in ((d_a, only_a), (d_b, only_b)) if p) + "."
    delta = params[1] - params[0]
    return text + f" Parameters: {params[0]:,} -> {params[1]:,} ({'+' if delta >= 0 else '-'}{abs(delta):,})."


def _name(t: Trace) -> str:
    return t.name or t.preset or t.model


def diff(a: Source | Trace, b: Source | Trace, size: SizeArg = None) -> Diff:
    """Compare ``a`` and ``b`` (preset names, config paths or dicts, or traces), both traced at ``size``
    (default: each config's own size)."""
    ta = a if isinstance(a, Trace) else trace_source(a, size)
    tb = b if isinstance(b, Trace) else trace_source(b, size)
    na, nb = _name(ta), _name(tb)
    if na == nb:
        na, nb = f"{na} (A)", f"{nb} (B)"
    blocks = _block_diffs(ta, tb)
    changes = _changes(ta, tb)
    return Diff(a=ta, b=tb, a_name=na, b_name=nb, blocks=blocks, changes=tuple(changes),
                summary=_summary(na, nb, changes, blocks, (ta.params, tb.params)))
