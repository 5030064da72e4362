"""Skip pairing of an observed trace: which concat operands are popped skips, and the skip records.

A Python list used as the skip stack is invisible to hooks, so this is a heuristic: in each channel
concat the operand created last is the running hidden state; any other operand that was already an
input of a module that had finished running (the encoder layer it fed, e.g. the next down block or
the mid block) is a popped skip. That rules out tensors made only for the concat, such as
lucidrains' final ``r = x.clone()`` or a self-conditioning input. Distinct skip tensors are numbered
in creation order (the order an encoder pushes them); ``to`` is the concat's consumer.
"""

from __future__ import annotations

from ...core.records import Concat, Operand, Size, Skip
from ..capture import Capture, CatEvent
from .units import unit_of

Pushed = tuple[int, str, int, Size]
"""A popped tensor: (creation number, from, channels, size) of what the encoder pushed."""


def _running(ev: CatEvent, creation: dict[int, int]) -> int:
    """The operand that is the running state: the newest; a tensor given twice (no mid block: the last
    encoder output is both the state and the top skip) is the state first, a pop after."""
    return max(range(len(ev.operands)), key=lambda i: (creation.get(ev.operands[i][3], 0), -i))


def _popped(cap: Capture) -> tuple[dict[int, Pushed], set[tuple[int, int]]]:
    """(identity key -> the pushed tensor, the (concat number, operand position) of every pop)."""
    popped: dict[int, Pushed] = {}
    marked: set[tuple[int, int]] = set()
    for n, ev in enumerate(cap.cats):
        running = _running(ev, cap.creation)
        for i, (src, ch, size, key, fed) in enumerate(ev.operands):
            if i != running and fed:
                marked.add((n, i))
                popped.setdefault(key, (cap.creation.get(key, 0), *ev.kept.get(key, (src, ch, size))))
    return popped, marked


def pair_skips(cap: Capture, units: list[str]) -> tuple[tuple[Concat, ...], tuple[Skip, ...]]:
    """The concats with their popped operands numbered, and one skip per distinct popped tensor."""
    popped, marked = _popped(cap)
    order = sorted(popped, key=lambda k: popped[k][0])
    index = {k: i for i, k in enumerate(order)}
    to: dict[int, str] = {}
    concats = []
    for n, ev in enumerate(cap.cats):
        ops = []
        for i, (src, ch, size, key, _) in enumerate(ev.operands):
            skip = index[key] if (n, i) in marked else None
            if skip is not None:
                to.setdefault(skip, ev.consumer or "")
            ops.append(Operand(source=src, channels=ch, size=size, skip=skip))
        concats.append(Concat(consumer=ev.consumer or "", channels=ev.channels, size=ev.size, inputs=tuple(ops),
                              at=ev.at))
    skips = tuple(Skip(index=i, source=popped[k][1], channels=popped[k][2], size=popped[k][3], to=to.get(i),
                       unit=unit_of(popped[k][1], units)) for i, k in enumerate(order))
    return tuple(concats), skips
