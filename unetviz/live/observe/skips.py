"""Skips by data flow: which merge operands are encoder-side tensors, and the skip records.

A Python list used as a skip stack is invisible to hooks, and wrappers (MONAI's ``SkipConnection``) hide the
U in the module tree, so skips are read off the tensors themselves (``live/flow.py``). A merge operand is a
skip when the forward went below its resolution after its level began and came back to merge it: an
encoder-side tensor. That holds whatever wraps the encoder stage (a bare conv or one in a ``Sequential``),
whatever made it (a parameter-free swish, a side output like SwinUNETR's ``hidden_states_out``), and through a
gate: ``x * psi`` keeps ``x``'s level, so MONAI AttentionUnet's gated feature is the skip, the decoder's
upsampled state the running input. The operand must be a tensor some module returned or took: lucidrains'
final ``x.clone()`` of the stem is made for its concat, not kept. At the bottom of the U no resolution lies
below, so a concat there falls back to the stack's mark: the newest operand is the running state, any other
that an already finished module took (the mid block's input) is a popped skip.

A concat whose operands are all skips (UNet++ gathers a level's nodes before its block) is a bundle: its
operands are the skips, not the bundle the block then concatenates. An addition that a gate makes inside
itself (``W_g(g) + W_x(x)``) is the gate's arithmetic, not a merge of the U.

Skips are numbered in the order the encoder made them (their level's start, then creation); ``to`` is the
first module that receives a merge reading one, ``consumers`` every one; ``lifo`` says whether the merges read
them as a stack pops.
"""

from __future__ import annotations

from collections.abc import Callable

from ...core.records import Concat, Operand, Size, Skip, within
from ..capture import Capture
from ..merges import MergeEvent


def mark_skips(cap: Capture) -> None:
    """Fill each merge's ``skips`` (module docstring); before units are chosen, which read them."""
    flow = cap.flow
    for ev in cap.merges:
        down = [i for i, p in enumerate(ev.operands)
                if flow.creation.get(p.key, 0) > 0 and flow.held(p.key) and flow.went_down(p.key, p.size, ev.time)]
        if down and (ev.kind == "concat" or len(down) < len(ev.operands)):
            ev.skips = down  # an addition merges a skip into a decoder state: both went down is a residual
        elif ev.kind == "concat" and not down:
            made = [flow.creation.get(flow.carrier.get(p.key, p.key), 0) for p in ev.operands]
            # a tensor given twice (no mid block: the last encoder output is both state and top skip) is the
            # state first, a pop after
            running = max(range(len(ev.operands)), key=lambda i: (made[i], -i))
            ev.skips = [i for i, p in enumerate(ev.operands) if i != running and p.kept]
    bundles = {ev.result: ev for ev in cap.merges if ev.kind == "concat" and len(ev.skips) == len(ev.operands) > 1}
    gates = {p.source for ev in cap.merges for i, p in enumerate(ev.operands)
             if i in ev.skips and flow.carrier.get(p.key, p.key) != p.key}
    for ev in cap.merges:
        ev.skips = [i for i in ev.skips if ev.operands[i].key not in bundles]
        if ev.kind == "add" and any(within(ev.inside, g) for g in gates):
            ev.skips = []


def pair_skips(cap: Capture, unit_at: Callable[[int, str], str]
               ) -> tuple[tuple[Concat, ...], tuple[Concat, ...], tuple[Skip, ...], bool]:
    """(concats, skip-merging additions, skips, lifo). ``unit_at(layers run, source)``: the unit a tensor made
    after that many layers by module ``source`` comes from. The merges' skips are marked (``mark_skips``)."""
    flow = cap.flow
    reads: dict[int, list[MergeEvent]] = {}
    for ev in cap.merges:
        for i in ev.skips:
            key = ev.operands[i].key
            reads.setdefault(flow.carrier.get(key, key), []).append(ev)
    order = sorted(reads, key=lambda k: (flow.origin.get(k, flow.creation.get(k, 0)), flow.creation.get(k, 0)))
    index = {k: n for n, k in enumerate(order)}
    concats, adds = [], []
    for ev in cap.merges:
        ops = []
        for i, p in enumerate(ev.operands):
            skip = index[flow.carrier.get(p.key, p.key)] if i in ev.skips else None
            ops.append(Operand(source=p.source, channels=p.channels, size=p.size, skip=skip))
        record = Concat(consumer=ev.consumer or "", channels=ev.channels, size=ev.size, inputs=tuple(ops), at=ev.at)
        if ev.kind == "concat":
            concats.append(record)
        elif ev.skips:
            adds.append(record)
    skips = tuple(_skip(cap, n, k, reads[k], unit_at) for n, k in enumerate(order))
    return tuple(concats), tuple(adds), skips, _lifo(cap, index)


def _skip(cap: Capture, n: int, key: int, evs: list[MergeEvent], unit_at: Callable[[int, str], str]) -> Skip:
    flow = cap.flow
    t = flow.keep[key]
    source = flow.source(t)
    consumers = tuple(dict.fromkeys(ev.consumer or "" for ev in evs))
    size: Size = tuple(int(d) for d in t.shape[2:])
    return Skip(index=n, source=source, channels=int(t.shape[1]), size=size, to=consumers[0],
                unit=unit_at(flow.layers_at.get(key, 0), source), merge=evs[0].kind, consumers=consumers)


def _lifo(cap: Capture, index: dict[int, int]) -> bool:
    """The merges read the skips as a stack pops: each once, always the newest made and not yet read."""
    flow = cap.flow
    read: set[int] = set()
    for ev in cap.merges:
        got = sorted({index[flow.carrier.get(ev.operands[i].key, ev.operands[i].key)] for i in ev.skips},
                     reverse=True)
        for n in got:
            waiting = [index[k] for k in index if index[k] not in read and flow.creation.get(k, 0) < ev.time]
            if n in read or n != max(waiting, default=n):
                return False
            read.add(n)
    return True
