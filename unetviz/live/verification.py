"""``unetviz verify``: prove the symbolic trace is the real model's, record by record.

Steps: the symbolic trace (``unetviz.trace``); the real upstream model built on the meta device
by the family's adapter (``unetviz.live.upstream``) with the inputs its forward needs; one hooked
forward pass (``observe.py``); then a comparison of the ``state_dict`` manifest (keys, shapes,
order), the parameter total (with torchinfo's count as an independent witness), every layer in
order, every concat, the skip stack, the output shape, and, where the symbolic trace says the
model fails, that the real forward fails too at a matching place.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..analysis.compare import (
    MAX_DISAGREEMENTS,
    Disagreement,
    Report,
    block_rows,
    compare,
    compare_macs,
    failure,
    outputs,
)
from ..core.errors import UnetvizError
from ..core.quantities import is_free
from ..core.records import Trace
from ..families import Family, lookup
from ..tracing import resolve, trace_config

__all__ = ["Disagreement", "Report", "compare", "observe_real", "torchinfo_params", "verify"]


def verify(source: Any, size: Any = None, context: Any = None) -> Report:
    """Compare the symbolic trace of ``source`` (preset, config path or dict) with the real model."""
    if not isinstance(source, (str, Path, dict)):
        raise UnetvizError(f"source: verify takes a preset name, a config path or a config dict, not a"
                           f" {type(source).__name__}; for a live module use unetviz.trace(module)")
    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    config, preset = resolve(source)  # read once: the file is not parsed again below
    ours = trace_config(config, size, preset, context=context)
    clock["trace"] = time.perf_counter() - t0
    family, kwargs = lookup(config)
    macs: dict[str, int] = {}
    real, model, info, notes = observe_real(family, kwargs, ours, clock, macs)
    t0 = time.perf_counter()
    diffs = compare(ours, real) + compare_macs(ours, real, macs)
    if info is not None and info != real.params:  # both count parameters, not buffers
        shared = _shared_params(model)
        if shared:  # torchinfo walks the module tree: what is registered twice it counts twice, so it says nothing
            notes.append(f"torchinfo counts {info:,} parameters: the real model registers {shared} parameter"
                         f" tensor(s) under more than one path (one module kept under two names), which torchinfo"
                         f" counts once per path; each counted once, the real model has {real.params:,}")
        else:
            diffs.append(Disagreement("params (torchinfo)", "model", f"{real.params:,}", f"{info:,}"))
    clock["compare"] = time.perf_counter() - t0
    if len(diffs) > MAX_DISAGREEMENTS:
        notes.append(f"{len(diffs)} disagreements; the first {MAX_DISAGREEMENTS} are shown")
    del model
    return Report(
        ok=not diffs, family=ours.family, model=ours.model, preset=ours.preset, size=ours.in_size,
        counts={"layers": min(_modules(ours), _modules(real)), "units": min(len(ours.units), len(real.units)),
                "blocks": len(block_rows(ours)), "concats": min(len(ours.concats), len(real.concats)),
                "skips": min(len(ours.skips), len(real.skips)), "tensors": min(len(ours.manifest), len(real.manifest))},
        disagreements=tuple(diffs[:MAX_DISAGREEMENTS]), params_ours=ours.params, params_real=real.params,
        params_torchinfo=info, output_ours=outputs(ours), output_real=outputs(real), error_ours=failure(ours),
        error_real=failure(real), timings=clock, notes=tuple(notes))


def _shared_params(model: Any) -> int:
    """Parameter tensors the module tree reaches under more than one path (nnU-Net's ``all_modules`` and
    ``decoder.encoder``, DynUNet's ``skip_layers``): ``parameters()`` lists each once, the paths do not."""
    paths = [id(p) for _, p in model.named_parameters(remove_duplicate=False)]
    return sum(1 for i in set(paths) if paths.count(i) > 1)


def _modules(t: Trace) -> int:
    """Layer rows of modules, the rows compared: both traces also have parameter-free matmul rows."""
    return sum(1 for x in t.layers if not is_free(x))


def observe_real(family: Family, kwargs: dict[str, Any], ours: Trace, clock: dict[str, float],
                 macs: dict[str, int] | None = None) -> tuple[Trace, Any, int | None, list[str]]:
    """Build the real model on meta, run the hooked forward; (observed trace, model, torchinfo total, notes).
    ``macs``: also count the pass with ``FlopCounterMode`` and fill it (module path -> MACs at batch 1)."""
    from .upstream import family_module

    adapter = family_module(family)
    from .observe import observe

    t0 = time.perf_counter()
    try:
        model = adapter.build(family.model if family.classes else None, dict(kwargs))
    except UnetvizError:
        raise
    except Exception as e:  # the upstream constructor rejects what the symbolic builder accepted
        raise UnetvizError(f"verify: the real {ours.model} rejects this config but unetviz accepted it:"
                           f" {type(e).__name__}: {e}") from None
    clock["build"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    args, kw = adapter.inputs(model, ours)
    how = getattr(adapter, "OBSERVE", {})  # how to read the model (a video model's frames axis)
    if macs is None:
        real = observe(model, args, kw, family=ours.family, size_source=ours.size_source, **how)
    else:
        from .upstream.measure import counting_macs

        batch = int(args[0].shape[0]) if args and hasattr(args[0], "shape") else 1
        with counting_macs(model, batch, macs):
            real = observe(model, args, kw, family=ours.family, size_source=ours.size_source, **how)
    clock["capture"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    info, notes = torchinfo_params(model)
    clock["torchinfo"] = time.perf_counter() - t0
    translate = getattr(adapter, "as_upstream", None)  # a stand-in's declared departures from the upstream
    if translate is not None:
        real, said = translate(model, real)
        notes = [*said, *notes]
    return real, model, info, notes


def torchinfo_params(model: Any) -> tuple[int | None, list[str]]:
    """torchinfo's parameter total without a forward pass (it counts the module tree)."""
    try:
        import torchinfo
    except ImportError:
        return None, ["torchinfo is not installed (`pip install torchinfo`): no independent parameter count"]
    try:
        stats = torchinfo.summary(model, verbose=0, depth=1)
        return int(stats.total_params), []
    except Exception as e:  # torchinfo is a witness only; its failure must not fail verify
        return None, [f"torchinfo could not summarise the meta model: {type(e).__name__}: {e}"]


