"""The JSON documents of ``../shared/spec/interface.md``: the trace and the weights manifest.

Every per-layer number comes from ``unetviz.core.quantities``, so a new quantity reaches the JSON with no
edit here. Layers and units of a Stable Diffusion U-Net also carry their ``original`` (ldm/sgm) path and
LoRA ``block_id``.
"""

from __future__ import annotations

import json
from typing import Any

from ..analysis.memory import memory_dict
from ..checkpoints.keymaps import block_id, original_names
from ..core.quantities import LAYER_QUANTITIES
from ..core.records import SCHEMA, WEIGHTS_SCHEMA, Concat, Layer, Size, Skip, Trace, Unit


def _list(size: Size | None) -> list[int] | None:
    return None if size is None else list(size)


def layer_dict(x: Layer, names: dict[str, str] | None = None, values: dict[str, int] | None = None) -> dict[str, Any]:
    """One layer's record; ``values``: its quantities by name, where the caller has computed them."""
    d: dict[str, Any] = {"path": x.path, "type": x.type, "in_channels": x.in_channels,
                         "out_channels": x.out_channels, "in_size": _list(x.in_size), "out_size": _list(x.out_size)}
    if x.kernel is not None:
        d["kernel"] = list(x.kernel)
        d["stride"] = _list(x.stride)
        d["padding"] = _list(x.padding)
    d.update(values if values is not None else {q.name: q.of_layer(x) for q in LAYER_QUANTITIES})
    d["unit"] = x.unit
    if names and x.path in names:
        d["original"] = names[x.path]
        d["block_id"] = block_id(names[x.path])
    if x.source:
        d["source"] = x.source
    if x.tokens is not None:
        d["tokens"] = x.tokens
    if x.out_tokens is not None:  # it writes another number of tokens than it reads (attention pooling: 1)
        d["out_tokens"] = x.out_tokens
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


def skip_dict(s: Skip, lifo: bool = True) -> dict[str, Any]:
    """One skip; ``lifo``: the trace's skips are a stack (else ``to`` lists every consumer, as UNet++ reads them)."""
    to: Any = s.to if lifo else list(s.consumers or ([s.to] if s.to is not None else []))
    return {"index": s.index, "from": s.source, "unit": s.unit, "channels": s.channels, "size": _list(s.size),
            "to": to, "merge": s.merge, **({"taken": s.taken} if s.taken else {}),
            **({"empty": True} if s.empty else {})}


def unit_dict(trace: Trace, u: Unit, names: dict[str, str] | None = None,
              per_layer: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """One unit's record; ``per_layer``: each quantity of every layer of ``trace``, where the caller has them."""
    d: dict[str, Any] = {"path": u.path, "kind": u.kind, "type": u.type, "block": u.block,
                         "in_channels": u.in_channels, "out_channels": u.out_channels,
                         "in_size": _list(u.in_size), "out_size": _list(u.out_size)}
    for q in LAYER_QUANTITIES:
        d[q.name] = (sum(per_layer[q.name][u.first:u.last]) if per_layer is not None
                     else sum(q.of_layer(x) for x in trace.layers[u.first:u.last]))
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
    # each quantity of each layer once: the layers, their units and the model show it
    per_layer = {q.name: [q.of_layer(x) for x in t.layers] for q in LAYER_QUANTITIES}
    for q in LAYER_QUANTITIES:
        if q.name != "params":  # params is the manifest's total, complete even when the forward fails
            d[q.name] = sum(per_layer[q.name])
    names = original_names(t)
    d.update({
        "layers": [layer_dict(x, names, dict(zip(per_layer, values, strict=True)))
                   for x, *values in zip(t.layers, *per_layer.values(), strict=True)],
        "concats": [concat_dict(c) for c in t.concats],
        "adds": [concat_dict(c) for c in t.adds],  # additions that merge a skip (smp's Linknet)
        "skips": [skip_dict(s, t.lifo) for s in t.skips],
        "lifo": t.lifo,
        "units": [unit_dict(t, u, names, per_layer) for u in t.units],
        "blocks": [{"path": path, "title": title} for path, title in t.blocks],
        "memory": memory_dict(t),  # activation figures at batch 1, fp16: see unetviz.analysis.memory, field by field
        "error": None if t.error is None else {"at": t.error.at, "message": t.error.message},
    })
    return d


def trace_json(t: Trace) -> str:
    """The JSON trace as text (see ``to_text``)."""
    return to_text(trace_dict(t))


def to_text(data: dict[str, Any]) -> str:
    """``data`` as JSON text with one field of the top-level object per line and one record (a layer, a
    unit, a concat...) per line: readable and diffable, and written by the C encoder, where a fully indented
    document goes through the pure-Python one (``json.dumps`` with ``indent``) and is several times slower."""
    return _layout(data, "")


def _layout(value: Any, pad: str) -> str:
    inner = pad + "  "
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return "[\n" + ",\n".join(inner + json.dumps(v) for v in value) + f"\n{pad}]"
    if isinstance(value, dict) and value and (not pad or any(_holds_records(v) for v in value.values())):
        fields = (f"{inner}{json.dumps(k)}: {_layout(v, inner)}" for k, v in value.items())
        return "{\n" + ",\n".join(fields) + f"\n{pad}}}"
    return json.dumps(value)


def _holds_records(value: Any) -> bool:
    """A list of records, or an object holding one (the memory's attention scores): spread over lines."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, dict) for v in value)
    return isinstance(value, dict) and any(_holds_records(v) for v in value.values())


def weights_dict(t: Trace) -> dict[str, Any]:
    """The weights manifest: exact ``state_dict`` keys and shapes, in order."""
    return {"schema": WEIGHTS_SCHEMA, "count": len(t.manifest), "params": t.params,
            "tensors": {k: list(v) for k, v in t.manifest}}
