"""``load_state_dict`` errors: which known models have a ``size mismatch`` line's key with the checkpoint's
shape and which with the model's, and which models own ``Missing``/``Unexpected`` keys. Keys are read in either
naming, under any of the usual prefixes, and as LoRA keys (peft's ``lora_A``/``lora_B``, kohya's
``lora_unet_..._lora_down``/``lora_up``) of the layer they adapt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .index import Facts, tensors
from .parse import Parsed
from .records import Candidate
from .search import Found

PREFIXES = ("model.diffusion_model.", "model_ema.diffusion_model.", "diffusion_model.", "control_model.",
            "base_model.model.", "unet.", "model.", "module.", "net.")
"""Prefixes single-file checkpoints, ControlNet, peft and training wrappers put before a U-Net's keys."""
_PEFT = re.compile(r"^(?P<module>.+)\.lora_(?P<side>[AB])(?:\.[\w-]+)?\.weight$")
_KOHYA = re.compile(r"^lora_unet_(?P<flat>.+)\.lora_(?P<side>down|up)\.weight$")


@dataclass(frozen=True, kw_only=True)
class Key:
    """A key as the error names it, read: the module or tensor it is about and whether it is a LoRA factor."""

    tensor: str
    """The key without a LoRA suffix (``....to_k.weight``), prefixes still on; for kohya the flattened name."""
    lora: str
    """``""`` (a plain tensor), ``down`` (lora_A/lora_down: [rank, in, ...]) or ``up`` (lora_B/lora_up: [out, rank,
    ...])."""
    flat: bool
    """True for kohya's names, whose dots are underscores."""


def read_key(key: str) -> Key:
    m = _PEFT.match(key)
    if m:
        return Key(tensor=m.group("module") + ".weight", lora="down" if m.group("side") == "A" else "up", flat=False)
    m = _KOHYA.match(key)
    if m:
        return Key(tensor=m.group("flat"), lora=m.group("side"), flat=True)
    return Key(tensor=key, lora="", flat=False)


class Table:
    """One model's tensors by key in both namings (and kohya's flattened module names)."""

    def __init__(self, f: Facts) -> None:
        self.name = str(f["name"])
        self.by_key: dict[str, tuple[str, str, list[int]]] = {}
        self.by_flat: dict[str, tuple[str, str, list[int]]] = {}
        for k, o, s in tensors(f):
            entry = (k, o, s)
            for name in (k, o):
                if name:
                    self.by_key[name] = entry
                    if name.endswith(".weight"):
                        self.by_flat[name[: -len(".weight")].replace(".", "_")] = entry

    def find(self, key: Key) -> tuple[str, str, list[int]] | None:
        table = self.by_flat if key.flat else self.by_key
        if key.tensor in table:
            return table[key.tensor]
        for prefix in PREFIXES:
            flat_prefix = prefix.replace(".", "_")
            p = flat_prefix if key.flat else prefix
            if key.tensor.startswith(p) and key.tensor[len(p):] in table:
                return table[key.tensor[len(p):]]
        return None


def fits(key: Key, shape: tuple[int, ...], weight: list[int]) -> bool:
    """Whether a tensor of ``shape`` under ``key`` belongs to a layer whose weight is ``weight``."""
    if key.lora == "down":
        return len(shape) == len(weight) and list(shape[1:]) == weight[1:]
    if key.lora == "up":
        return len(shape) == len(weight) and shape[0] == weight[0]
    return list(shape) == weight


def size_mismatch(p: Parsed, models: list[Facts]) -> Found:
    tables = [Table(f) for f in models]
    lines = [(read_key(m.key), m) for m in p.mismatches]
    checkpoint: dict[str, int] = {}
    current: dict[str, int] = {}
    first: dict[tuple[str, str], tuple[str, str, list[int], bool]] = {}
    for key, m in lines:
        for t in tables:
            entry = t.find(key)
            if entry is None:
                continue
            for side, shape, score in (("checkpoint", m.checkpoint, checkpoint), ("model", m.model, current)):
                if fits(key, shape, entry[2]):
                    score[t.name] = score.get(t.name, 0) + 1
                    first.setdefault((t.name, side), (entry[0], entry[1], list(shape), bool(key.lora)))
    cands = _ranked(checkpoint, "checkpoint", first) + _ranked(current, "model", first)
    lora = sorted({k.lora for k, _ in lines if k.lora})
    return Found(candidates=tuple(cands), facts={"lines": len(lines), "checkpoint": checkpoint, "model": current,
                                                 "lora": bool(lora), "loader": p.loader})


def _ranked(scores: dict[str, int], side: str,
            first: dict[tuple[str, str], tuple[str, str, list[int], bool]]) -> list[Candidate]:
    """The models fitting the most lines on one side: the best one, the others as tied (``also``)."""
    if not scores:
        return []
    best = max(scores.values())
    top = [m for m, n in scores.items() if n == best]
    from ..checkpoints.keymaps import block_id

    key, original, shape, lora = first[(top[0], side)]
    module = (original or key).rsplit(".", 1)[0]
    return [Candidate(model=top[0], layer=key, original=original if original != key else "",
                      block_id=block_id(module) if original else "", side=side,
                      widths={"lora" if lora else "shape": shape, "lines": best}, also=tuple(top[1:]))]


def missing_unexpected(p: Parsed, models: list[Facts]) -> Found:
    """The models that own the most of the missing keys (the model loaded into) and of the unexpected ones
    (the file's)."""
    tables = [Table(f) for f in models]
    sides = {"model": [read_key(k) for k in p.missing], "checkpoint": [read_key(k) for k in p.unexpected]}
    cands: list[Candidate] = []
    counts: dict[str, dict[str, int]] = {}
    for side, keys in sides.items():
        scores = {t.name: sum(1 for k in keys if t.find(k) is not None) for t in tables}
        scores = {m: n for m, n in scores.items() if n}
        counts[side] = scores
        if not scores:
            continue
        best = max(scores.values())
        top = [m for m, n in scores.items() if n == best]
        table = next(t for t in tables if t.name == top[0])
        entry = next(e for k in keys if (e := table.find(k)) is not None)
        cands.append(Candidate(model=top[0], layer=entry[0], original=entry[1] if entry[1] != entry[0] else "",
                               side=side, widths={"keys": best, "of": len(keys)}, also=tuple(top[1:])))
    lora = any(read_key(k).lora for k in (*p.missing, *p.unexpected))
    return Found(candidates=tuple(cands), facts={"counts": counts, "lora": lora, "loader": p.loader,
                                                 "missing": len(p.missing), "unexpected": len(p.unexpected)})
