"""The pure side of ``unetviz verify``: a symbolic trace and an observed one compared record by record.

Torch-free: ``unetviz.live.verification`` builds the real model and observes it; this module only compares
two ``Trace`` records (manifest, params, layers, units, blocks, concats, skips, output, failure place, MACs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.quantities import layer_macs
from ..core.records import Concat, Trace, within
from .memory import block_macs, without_free_rows

LAYER_FIELDS = ("path", "type", "in_channels", "out_channels", "in_size", "out_size", "kernel", "stride",
                "padding", "params", "tokens")
UNIT_FIELDS = ("path", "kind", "in_channels", "out_channels", "in_size", "out_size", "params", "block")
"""What a unit row shows (``--depth units``, the graph); its ``type`` and ``note`` are unetviz's wording."""
MAX_DISAGREEMENTS = 200  # past this the model is plainly different; more rows would only bury the first


@dataclass(frozen=True)
class Disagreement:
    """One place where the symbolic trace and the real model differ."""

    what: str
    """What was compared: ``layer.in_channels``, ``manifest.shape``, ``concat.inputs``, ``params``..."""
    path: str
    """Where: a module path, a ``state_dict`` key, ``#12`` for the 13th layer, or ``model``."""
    ours: str
    """The symbolic trace's value, as shown."""
    real: str
    """The real model's value, as shown."""


@dataclass(frozen=True)
class Report:
    """The verdict of one ``verify`` run."""

    ok: bool
    """True when nothing disagrees (and, for a failing input, both fail at a matching place)."""
    family: str
    model: str
    """The upstream class name."""
    preset: str | None
    size: tuple[int, ...]
    """The input's spatial size (height, width)."""
    counts: dict[str, int]
    """``layers``, ``units``, ``blocks``, ``concats``, ``skips`` and ``tensors`` (state_dict entries) compared."""
    disagreements: tuple[Disagreement, ...]
    params_ours: int
    params_real: int
    params_torchinfo: int | None
    """torchinfo's total for the same meta model; None when it cannot run (see ``notes``)."""
    output_ours: tuple[int, ...] | None
    """(channels, *size) of the symbolic output; None when the model fails."""
    output_real: tuple[int, ...] | None
    error_ours: str | None
    """The symbolic failure, ``at: message``; None when the model runs."""
    error_real: str | None
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent in ``trace``, ``build``, ``capture``, ``torchinfo`` and ``compare``."""
    notes: tuple[str, ...] = ()
    """Anything worth knowing that is not a disagreement (torchinfo unavailable, truncation)."""


def outputs(t: Trace) -> tuple[int, ...] | None:
    return None if t.out_channels is None or t.out_size is None else (t.out_channels, *t.out_size)


def failure(t: Trace) -> str | None:
    if t.error is None:
        return None
    return f"{t.error.at}: {t.error.message}" if t.error.at else f"(the model's own forward) {t.error.message}"


def _show(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, tuple):
        return "x".join(str(d) for d in v) if all(isinstance(d, int) for d in v) else repr(v)
    return str(v)


def compare(ours: Trace, real: Trace) -> list[Disagreement]:
    """Every disagreement between a symbolic and an observed trace of the same model."""
    d: list[Disagreement] = []

    def add(what: str, path: str, a: Any, b: Any) -> None:
        d.append(Disagreement(what, path, _show(a), _show(b)))

    # a failing symbolic trace stops at the failure, so its manifest and total cover only the
    # layers run so far: then only the keys it has are checked
    # attention matmuls and fixed convs own no module: the layers compared are the modules the hooks see (an
    # observed trace has the matmuls too, counted for its MACs)
    ours, real = without_free_rows(ours), without_free_rows(real)
    partial = ours.error is not None
    _manifest(ours, real, add, partial)
    if ours.params != real.params and not partial:
        add("params", "model", f"{ours.params:,}", f"{real.params:,}")
    _layers(ours, real, add)
    _units(ours, real, add)
    _blocks(ours, real, add)
    # a forward pass only shows popped skips, numbered among themselves; ours number every push
    rank = {s.index: i for i, s in enumerate(x for x in ours.skips if x.to is not None)}
    _concats(ours, real, add, rank)
    _skips(ours, real, add, rank)
    if ours.error is None and real.error is None:
        if outputs(ours) != outputs(real):
            add("output", "model", outputs(ours), outputs(real))
    elif (ours.error is None) != (real.error is None):
        add("error", "model", failure(ours) or "runs", failure(real) or "runs")
    elif ours.error is not None and real.error is not None and not same_place(ours.error.at, real.error.at):
        add("error.at", "model", failure(ours), failure(real))
    return d


def same_place(a: str | None, b: str | None) -> bool:
    """Loose match of two failure locations: one path is a prefix of the other, or both sit in the
    same block (``up_blocks.0``); the symbolic trace names the consumer, the real stack the caller."""
    if a is None or b is None:
        return True  # one side names no module (e.g. an empty skip stack); that both fail is what counts
    if a == "" or b == "":
        return True  # the root module: the failure is in the model's own forward (a torch.cat there)
    pa, pb = a.split("."), b.split(".")
    n = min(len(pa), len(pb))
    return pa[:n] == pb[:n] or (len(pa) >= 2 and pa[:2] == pb[:2])


def _manifest(ours: Trace, real: Trace, add: Any, partial: bool) -> None:
    mine, theirs = dict(ours.manifest), dict(real.manifest)
    for k in theirs:
        if k not in mine and not partial:
            add("manifest.missing", k, None, theirs[k])
    for k in mine:
        if k not in theirs:
            add("manifest.extra", k, mine[k], None)
        elif mine[k] != theirs[k]:
            add("manifest.shape", k, mine[k], theirs[k])
    common_ours = [k for k, _ in ours.manifest if k in theirs]
    common_real = [k for k, _ in real.manifest if k in mine]
    for i, (a, b) in enumerate(zip(common_ours, common_real, strict=False)):
        if a != b:
            add("manifest.order", f"#{i}", a, b)
            break  # one misplaced key shifts all that follow; the first is the useful one


def _layers(ours: Trace, real: Trace, add: Any) -> None:
    for i, (a, b) in enumerate(zip(ours.layers, real.layers, strict=False)):
        if a.path != b.path:
            add("layer.path", f"#{i}", f"{a.path} ({a.type})", f"{b.path} ({b.type})")
            return  # the orders diverge here; comparing further rows would only repeat it
        # the layer the real model died in: the last row, or a module owning a parameter that the failure cut
        # short after its row was opened (UNETR's patch embedding: its conv or its position embeddings' sum)
        unfinished = real.error is not None and (i == len(real.layers) - 1 or within(real.error.at or "", b.path))
        for name in LAYER_FIELDS[1:]:
            if unfinished and name in ("out_channels", "out_size"):
                continue
            va, vb = getattr(a, name), getattr(b, name)
            if va != vb:
                add(f"layer.{name}", a.path, va, vb)
    n = min(len(ours.layers), len(real.layers))
    extra = ours.layers[n:] or real.layers[n:]
    # when both fail, either side may run a few more layers of the failing module (diffusers computes
    # q, k and v before dividing by zero heads; unetviz stops at the check)
    places = [e.at for e in (ours.error, real.error) if e is not None and e.at]
    inside = len(places) == 2 and all(any(within(x.path, p) for p in places) for x in extra)
    if extra and not inside:
        add("layer.count", f"#{n}", f"{len(ours.layers)} layers", f"{len(real.layers)} layers (first unmatched:"
            f" {extra[0].path})")


def _units(ours: Trace, real: Trace, add: Any) -> None:
    """The block-level steps ``--depth units`` and the graph show: path, kind, channels, sizes."""
    theirs = {u.path: u for u in real.units}
    stop = _failure_cut(ours, real)
    for u in ours.units:
        if stop is not None and u.last >= stop:
            break  # the unit the model dies in has no output on one side or the other
        v = theirs.get(u.path)
        if v is None:
            if u.first < u.last:  # a step that owns no parameter (an avg-pool) is invisible to the hooks
                add("unit.missing", u.path, f"{u.kind} {u.type}", None)
            continue
        for name in UNIT_FIELDS[1:]:
            if name == "block" and real.error is not None and within(real.error.at or "", v.block):
                continue  # a heading the failure cut short never returned: what it spans is not observed
            va, vb = getattr(u, name), getattr(v, name)
            if va != vb:
                add(f"unit.{name}", u.path, va, vb)
    # and the other way: a real step that runs layers and that ours names nothing (its layers filed elsewhere)
    mine = {u.path for u in ours.units}
    for v in real.units:
        if stop is not None and v.last >= stop:
            break
        if v.first < v.last and v.path not in mine:
            add("unit.unexpected", v.path, None, f"{v.kind} {v.type}")


def _blocks(ours: Trace, real: Trace, add: Any) -> None:
    """Block rows (the units grouped by heading) must partition both models the same way."""
    stop = _failure_cut(ours, real)
    mine, theirs = block_rows(ours, stop), block_rows(real, stop)
    if stop is not None:  # both stop inside a block: compare the blocks both finished, not that one
        n = max(0, min(len(mine), len(theirs)) - 1)
        mine, theirs = dict(list(mine.items())[:n]), dict(list(theirs.items())[:n])
    if list(mine) != list(theirs):
        add("block.order", "model", ", ".join(mine), ", ".join(theirs))
        return
    for path in mine:
        if mine[path] != theirs[path]:
            add("block.params", path, f"{mine[path]:,}", f"{theirs[path]:,}")


def _failure_cut(ours: Trace, real: Trace) -> int | None:
    """Layers after this index are not compared as units: one side has stopped."""
    if ours.error is None and real.error is None:
        return None
    return min(len(ours.layers), len(real.layers))


def block_rows(t: Trace, stop: int | None = None) -> dict[str, int]:
    """Block path -> parameters of its layers, in forward order (units before ``stop``; parameter-free
    steps, which the hooks cannot see, are left out)."""
    rows: dict[str, int] = {}
    for u in t.units:
        if stop is not None and u.last >= stop:
            break
        if u.first < u.last:
            rows[u.block] = rows.get(u.block, 0) + u.params
    return rows


def _concats(ours: Trace, real: Trace, add: Any, rank: dict[int, int]) -> None:
    _merges(ours.concats, real.concats, ours, real, add, rank, "concat")
    # additions that merge a skip (SegResNet's decoder): compared as concats are, where either side has any
    if ours.adds or real.adds:
        _merges(ours.adds, real.adds, ours, real, add, rank, "add")


def _merges(mine: tuple[Concat, ...], theirs: tuple[Concat, ...], ours: Trace, real: Trace, add: Any,
            rank: dict[int, int], kind: str) -> None:
    for i, (a, b) in enumerate(zip(mine, theirs, strict=False)):
        where = a.consumer or f"{kind} #{i}"
        # a forward that fails before any module takes the merged tensor shows the hooks no consumer (or
        # only the next module entered, such as a parameter-free time_embed_act): ours names one that never ran
        ran = {x.path.split(".")[0] for x in real.layers}
        unconsumed = real.error is not None and i == len(theirs) - 1 and (
            b.consumer == "" or (ours.error is not None and a.consumer.split(".")[0] not in ran))
        if a.consumer != b.consumer and not unconsumed:
            add(f"{kind}.consumer", f"{kind} #{i}", a.consumer, b.consumer)
        if (a.channels, a.size) != (b.channels, b.size):
            add(f"{kind}.result", where, f"{a.channels}ch {_show(a.size)}", f"{b.channels}ch {_show(b.size)}")
        if len(a.inputs) != len(b.inputs):
            add(f"{kind}.inputs", where, len(a.inputs), len(b.inputs))
        for j, (x, y) in enumerate(zip(a.inputs, b.inputs, strict=False)):
            for name, va, vb in (("from", x.source, y.source), ("channels", x.channels, y.channels),
                                 ("size", x.size, y.size), ("skip", _ranked(x.skip, rank), y.skip)):
                if va != vb:
                    add(f"{kind}.input[{j}].{name}", where, va, vb)
    if len(mine) != len(theirs):
        add(f"{kind}.count", "model", len(mine), len(theirs))


def _ranked(index: int | None, rank: dict[int, int]) -> int | None:
    return None if index is None else rank.get(index, index)


def _skips(ours: Trace, real: Trace, add: Any, rank: dict[int, int]) -> None:
    # only popped skips are observable: a push that is never popped leaves no trace in a forward pass
    mine = [s for s in ours.skips if s.to is not None]
    # the skip stacks unetviz builds are concatenated, or added where the builder records additions (SegResNet)
    merges = ("concat", "add") if ours.adds else ("concat",)
    theirs = [s for s in real.skips if s.merge in merges]
    for a, b in zip(mine, theirs, strict=False):
        for name, va, vb in (("index", rank[a.index], b.index), ("from", a.source, b.source),
                             ("channels", a.channels, b.channels), ("size", a.size, b.size), ("to", a.to, b.to),
                             ("merge", a.merge, b.merge)):
            if va != vb:
                add(f"skip.{name}", f"skip {a.index}", va, vb)
    if len(mine) != len(theirs):
        add("skip.count", "model", len(mine), len(theirs))


def compare_macs(ours: Trace, real: Trace, macs: dict[str, int]) -> list[Disagreement]:
    """MACs (FlopCounterMode's FLOPs / 2, batch 1) of the model and of every top-level block, where both
    traces run to the end; a block that is not a module (a heading) sums its units."""
    if not macs or ours.error is not None or real.error is not None:
        return []
    d: list[Disagreement] = []
    total = sum(layer_macs(x) for x in ours.layers)
    if total != macs.get("", 0):
        d.append(Disagreement("macs", "model", f"{total:,}", f"{macs.get('', 0):,}"))
    units: dict[str, list[str]] = {}
    for u in ours.units:
        units.setdefault(u.block, []).append(u.path)
    for block, mine in block_macs(ours).items():
        theirs = macs[block] if block in macs else sum(macs.get(p, 0) for p in units[block])
        if mine != theirs:
            d.append(Disagreement("macs.block", block, f"{mine:,}", f"{theirs:,}"))
    return d
