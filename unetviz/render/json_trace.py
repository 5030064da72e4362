"""The JSON documents of ``../shared/spec/interface.md``: the trace and the weights manifest.

Every per-layer number comes from ``unetviz.core.quantities``, so a new quantity reaches the JSON with no
edit here. Layers and units of a Stable Diffusion U-Net also carry their ``original`` (ldm/sgm) path and
LoRA ``block_id``.
"""

from __future__ import annotations

from typing import Any

from ..analysis.memory import memory_dict
from ..checkpoints.keymaps import block_id, original_names
from ..core.quantities import LAYER_QUANTITIES
from ..core.records import SCHEMA, WEIGHTS_SCHEMA, Concat, Layer, Size, Skip, Trace, Unit


def _list(size: Size | None) -> list[int] | None:
    return None if size is None else list(size)


def layer_dict(x: Layer, names: dict[str, str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"path": x.path, "type": x.type, "in_channels": x.in_channels,
                         "out_channels": x.out_channels, "in_size": _list(x.in_size), "out_size": _list(x.out_size)}
    if x.kernel is not None:
        d["kernel"] = list(x.kernel)
        d["stride"] = _list(x.stride)
        d["padding"] = _list(x.padding)
    for q in LAYER_QUANTITIES:
        d[q.name] = q.of_layer(x)
    d["unit"] = x.unit
    if names and x.path in names:
        d["original"] = names[x.path]
        d["block_id"] = block_id(names[x.path])
    if x.source:
        d["source"] = x.source
    if x.tokens is not None:
        d["tokens"] = x.tokens
    if x.heads is not None:  # an attention-matmul row
        d["heads"], d["kv_tokens"] = x.heads, x.kv_tokens
    if x.note:
        d["note"] = x.note
    return d


def concat_dict(c: Concat) -> dict[str, Any]:
    inputs = []
    for op in c.inputs:
        o: dict[str, Any] = {"from": op.source, "channels": op.channels, "size": _list(op.size)}
        if op.skip is not None:
            o["skip"] = op.skip
        inputs.append(o)
    d: dict[str, Any] = {"consumer": c.consumer, "channels": c.channels, "size": _list(c.size), "inputs": inputs}
    if c.crop is not None:
        d["crop"] = {"from": list(c.crop[0]), "to": list(c.crop[1])}
    return d


def skip_dict(s: Skip) -> dict[str, Any]:
    return {"index": s.index, "from": s.source, "unit": s.unit, "channels": s.channels, "size": _list(s.size),
            "to": s.to, **({"taken": s.taken} if s.taken else {}), **({"empty": True} if s.empty else {})}


def unit_dict(trace: Trace, u: Unit, names: dict[str, str] | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"path": u.path, "kind": u.kind, "type": u.type, "block": u.block,
                         "in_channels": u.in_channels, "out_channels": u.out_channels,
                         "in_size": _list(u.in_size), "out_size": _list(u.out_size)}
    span = trace.layers[u.first:u.last]
    for q in LAYER_QUANTITIES:
        d[q.name] = sum(q.of_layer(x) for x in span)
    d["layers"] = [u.first, u.last]
    if names and u.path in names:
        d["original"] = names[u.path]
        d["block_id"] = block_id(names[u.path])
    if u.note:
        d["note"] = u.note
    return d


def trace_dict(t: Trace) -> dict[str, Any]:
    """The JSON trace as plain data."""
    d: dict[str, Any] = {
        "schema": SCHEMA, "family": t.family, "model": t.model, "preset": t.preset, "source": t.source,
        # shape: [C, *size] ([C, D, H, W] for a volume, [C, F, H, W] for video)
        "input": {"channels": t.in_channels, "size": list(t.in_size), "shape": [t.in_channels, *t.in_size]},
        # what the input is, as the family or preset declares it; pixels: the image a latent stands for
        "space": t.space, "pixels": _list(t.pixels),
        # the encoder_hidden_states fed (what a pipeline passes, or --context); null if none
        "context": {"tokens": t.context[0], "width": t.context[1]} if t.context else None,
        "output": None if t.out_channels is None else {"channels": t.out_channels, "size": _list(t.out_size)},
        "params": t.params,
    }
    for q in LAYER_QUANTITIES:
        if q.name != "params":  # params is the manifest's total, complete even when the forward fails
            d[q.name] = sum(q.of_layer(x) for x in t.layers)
    names = original_names(t)
    d.update({
        "layers": [layer_dict(x, names) for x in t.layers],
        "concats": [concat_dict(c) for c in t.concats],
        "skips": [skip_dict(s) for s in t.skips],
        "units": [unit_dict(t, u, names) for u in t.units],
        "blocks": [{"path": path, "title": title} for path, title in t.blocks],
        "memory": memory_dict(t),  # activation figures at batch 1, fp16: see unetviz.analysis.memory, field by field
        "error": None if t.error is None else {"at": t.error.at, "message": t.error.message},
    })
    return d


def weights_dict(t: Trace) -> dict[str, Any]:
    """The weights manifest: exact ``state_dict`` keys and shapes, in order."""
    return {"schema": WEIGHTS_SCHEMA, "count": len(t.manifest), "params": t.params,
            "tensors": {k: list(v) for k, v in t.manifest}}
