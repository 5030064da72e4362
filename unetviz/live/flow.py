"""Every tensor of one forward pass, followed by identity: who made it, what it was fed to, where its level began.

The hooks and the torch-function mode (``capture.py``) report each new tensor here. What is kept per tensor
(keyed by ``id``; ``keep`` holds a reference so an id is never reused during the pass, and meta tensors cost
no memory):

* ``creation``: a running number (the model's inputs are 0), the clock every other record is read against;
* ``claim``: the producer, the innermost module that returned it (``docs/design.md``); a module entered later
  that changed it in place and returns it (an in-place ReLU after a BatchNorm) takes it over, one that hands
  its input on unchanged (an ``Identity``) or an enclosing one does not;
* ``tag``: the module that finished last before it was made, the producer of a tensor no module returned;
* ``fed``: the modules that took it as an input, or handed it on as an output they did not make;
* ``origin`` (tensors of the map rank only): when its resolution level began in its own lineage. An op's
  result inherits the latest origin of its parents of the same shape (a residual sum, a norm, a gate's
  ``x * psi``), else of its parents of the same spatial size (a conv that changes the channels, a concat),
  else (a down- or upsampling) it starts a level itself. A crop, a view of a kept map, inherits its base's;
* ``carrier``: for a feature passed through a gate (``x * psi`` with ``psi`` broadcast from fewer elements),
  the tensor it carries, the encoder feature the gate was given;
* ``lows``: (creation, spatial elements) of the maps modules returned and resampling functions made: the
  resolutions the forward went through, in time (not the channel-last token grids Swin passes, which a
  Linear or LayerNorm takes: ``channel_last``). A merge operand whose origin precedes a smaller one went
  down and came back: it is an encoder-side tensor, a skip (``observe/skips.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch

from ..core.records import numel

RESAMPLING = ("interpolate", "upsample", "max_pool", "avg_pool", "adaptive_", "pixel_shuffle", "pixel_unshuffle",
              "lp_pool", "fractional_max_pool")
"""Names of the functions that change a map's resolution without a module (``F.interpolate`` in smp's decoder)."""


def tensors_in(obj: Any, depth: int = 0) -> Iterator[torch.Tensor]:
    """Every tensor inside an output or argument structure (tuples, lists, dicts, diffusers' outputs)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif depth < 4 and isinstance(obj, (list, tuple)):
        for item in obj:
            yield from tensors_in(item, depth + 1)
    elif depth < 4 and isinstance(obj, Mapping):
        for item in obj.values():
            yield from tensors_in(item, depth + 1)


def spatial(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape[2:])


def _crop_of(view: torch.Tensor, base: torch.Tensor) -> bool:
    """``view`` is a crop of ``base``: its batch and channels, no larger on any axis (not a permute)."""
    return view.shape[:2] == base.shape[:2] and all(a <= b for a, b in zip(view.shape[2:], base.shape[2:],
                                                                            strict=True))


class Flow:
    """The per-tensor records of one pass (module docstring)."""

    def __init__(self, rank: int) -> None:
        self.rank = rank
        """Dims of the maps the model's blocks pass (4 for an image, 5 for a volume, 3 for a 1-D signal)."""
        self.keep: dict[int, torch.Tensor] = {}
        self.creation: dict[int, int] = {}
        self.claim: dict[int, tuple[str, int]] = {}  # id -> (producer path, the producer's entry number)
        self.tag: dict[int, str] = {}
        self.fed: dict[int, list[str]] = {}
        self.origin: dict[int, int] = {}
        self.carrier: dict[int, int] = {}
        self.layers_at: dict[int, int] = {}  # id -> layers run when it was made
        self.lows: list[tuple[int, int, int]] = []  # (creation, spatial elements, key)
        self.channel_last: set[int] = set()
        """Maps of the sample's rank a Linear or LayerNorm took: (B, H, W, C) tokens, as Swin passes them, whose
        ``shape[2:]`` is no resolution and whose residual sums are no merges of the U."""
        self.counter = 0
        self.ops = 0
        """The op clock: every torch call ticks it, in-place ones too."""
        self.touched: dict[int, int] = {}  # id -> the op clock at its last in-place change
        self.last_exited = "input"
        self.layer_count = 0

    def new(self, t: torch.Tensor, source: str | None = None) -> None:
        """Record a tensor first seen now; ``source="input"`` for the model's own inputs (creation 0)."""
        self.counter += 1
        key = id(t)
        self.keep[key] = t
        self.creation[key] = self.counter if source is None else 0
        self.tag[key] = self.last_exited if source is None else source
        self.layers_at[key] = self.layer_count
        if t.dim() == self.rank:
            self.origin[key] = self.creation[key]

    def source(self, t: torch.Tensor) -> str:
        """The ``from`` rule: the innermost module that returned ``t``, else its creation tag."""
        c = self.claim.get(id(t))
        return c[0] if c is not None else self.tag.get(id(t), "input")

    def held(self, key: int) -> bool:
        """A module returned it or took it: a tensor kept for later, not one made for a merge (lucidrains'
        final ``x.clone()`` of the stem, which no module returns or takes)."""
        return key in self.claim or bool(self.fed.get(key))

    def derive(self, result: torch.Tensor, args: Any, kwargs: Any, name: str) -> None:
        """Origin and carrier of a map an op just made, from its parents (module docstring)."""
        key = id(result)
        if result.dim() != self.rank or key not in self.creation:
            return  # not a map (the caller passes new tensors only: an in-place op keeps its tensor's level)
        base = result._base
        if base is not None and id(base) in self.origin and _crop_of(result, base):  # a view of a kept map
            self.origin[key] = self.origin[id(base)]
            self.carrier[key] = self.carrier.get(id(base), id(base))
            return
        parents = [p for p in (*tensors_in(args), *tensors_in(kwargs)) if id(p) in self.origin and p is not result]
        shape, size = result.shape, result.shape[2:]
        same = [p for p in parents if p.shape == shape]
        level = same or [p for p in parents if p.shape[2:] == size]
        if level:
            self.origin[key] = max(self.origin[id(p)] for p in level)
        elif any(word in name for word in RESAMPLING):
            self._low(result)
        if len(same) == 1 and len(parents) == 2:
            other = parents[0] if parents[1] is same[0] else parents[1]
            if other.numel() < result.numel():  # x * psi: the gate hands x on
                self.carrier[key] = self.carrier.get(id(same[0]), id(same[0]))

    def changed(self, t: torch.Tensor) -> None:
        """An in-place op changed ``t`` (``relu_``, ``+=``)."""
        self.touched[id(t)] = self.ops

    def returned(self, t: torch.Tensor, path: str, entry: int, since: int) -> None:
        """Module ``path`` (entered as number ``entry`` when the op clock read ``since``) returned ``t``."""
        key = id(t)
        old = self.claim.get(key)
        # the innermost (hooks fire innermost first); or a later module that changed it in place (an in-place
        # ReLU after a BatchNorm), not one that hands its input on unchanged (an Identity)
        if old is None or (entry > old[1] and self.touched.get(key, -1) >= since):
            self.claim[key] = (path, entry)
        elif old[0] != path:
            self.fed.setdefault(key, []).append(path)  # an outer module hands it on (diffusers' res_samples)
        if t.dim() == self.rank and key in self.creation:
            self._low(t)

    def _low(self, t: torch.Tensor) -> None:
        size = spatial(t)
        if any(d > 1 for d in size):  # a squeeze-and-excitation's 1x1 pooled map is a vector, not a level
            self.lows.append((self.creation[id(t)], numel(size), id(t)))

    def went_down(self, key: int, size: tuple[int, ...], before: int) -> bool:
        """Since the level of tensor ``key`` began, and before creation number ``before``, the forward made a map
        smaller than ``size``: the resolution went down (and, at a merge of this size, came back)."""
        start = self.origin.get(key)
        if start is None:
            return False
        return self.below(start, before - 1, numel(size))

    def below(self, start: int, end: int, n: int) -> bool:
        """A map of fewer than ``n`` spatial elements was made after creation number ``start``, up to ``end``."""
        return any(start < c <= end and m < n and k not in self.channel_last for c, m, k in self.lows)
