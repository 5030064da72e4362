"""Measurements of a real forward pass on the meta device: MACs per module (torch's ``FlopCounterMode``)
and the peak of live activation bytes (a ``TorchDispatchMode`` that tracks every tensor an op makes).

They are the witnesses ``unetviz verify`` and the tests hold the symbolic cost model against.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef as _Ref
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

StorageWeakRef: Any = _Ref  # untyped upstream

ROOT = "<model>"


@contextmanager
def counting_macs(model: torch.nn.Module, batch: int, into: dict[str, int]) -> Iterator[dict[str, int]]:
    """Run the block under ``FlopCounterMode``; on exit fill ``into`` with module path -> MACs at batch 1
    (FLOPs / 2 / ``batch``), ``""`` for the whole model (its ``Global`` count).

    Paths are ``model.named_modules()`` paths: the counter's module tracker is told every module's name
    first, since its own lazy naming renames a module it meets under a second parent."""
    counter = FlopCounterMode(display=False, depth=None)  # type: ignore[arg-type]  # None: every depth
    tracker: Any = counter.mod_tracker
    for name, mod in model.named_modules():
        tracker._known_modules[mod] = f"{ROOT}.{name}" if name else ROOT
        tracker._seen_modules.add(mod)
    with counter:
        yield into
    for name, ops in counter.get_flop_counts().items():
        if name == "Global":
            into[""] = sum(ops.values()) // 2 // batch
        elif name.startswith(ROOT + "."):
            into[name[len(ROOT) + 1:]] = sum(ops.values()) // 2 // batch


class LiveTensors(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Tracks the bytes of every storage an op allocates while they are alive: ``peak`` is the most held
    at once, ``now`` what is held at the moment. Tensors made before the mode (weights, inputs) are not
    counted. A view shares its base's storage, so it adds nothing."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.foreign: dict[int, StorageWeakRef] = {}
        """Storages that existed before (weights, inputs): a view of one (``weight.t()``) adds nothing."""
        self.now = 0
        self.peak = 0

    def _sweep(self) -> None:
        dead = [k for k, (ref, _) in self.live.items() if ref.expired()]
        for k in dead:
            self.now -= self.live.pop(k)[1]
        for k in [k for k, ref in self.foreign.items() if ref.expired()]:
            del self.foreign[k]

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        for t in tree_flatten((args, kwargs))[0]:
            if isinstance(t, torch.Tensor):
                ref = StorageWeakRef(t.untyped_storage())
                if ref.cdata not in self.live:
                    self.foreign.setdefault(ref.cdata, ref)
        out = func(*args, **(kwargs or {}))
        self._sweep()
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                ref = StorageWeakRef(storage)
                if ref.cdata not in self.live and ref.cdata not in self.foreign:
                    self.live[ref.cdata] = (ref, storage.nbytes())
                    self.now += storage.nbytes()
        self.peak = max(self.peak, self.now)
        return out
