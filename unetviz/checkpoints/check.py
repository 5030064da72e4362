"""``weights --check``: a weights file against a model, in each naming the model has (its own, the other
of a Stable Diffusion U-Net, a ControlNet's original cldm names), the best kept; ``--naming`` keeps one.
When it does not match, the file says what it is (``kinds.identify``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..core.errors import UnetvizError
from ..core.records import Shape, Trace, Weights
from ..tracing import Source, constructed
from .compare import WeightsCheck, check_weights
from .controlnet import extra_modules, unet_config
from .header import read_shapes
from .keymaps import twins


def namings(source: Source | Trace) -> dict[str, Trace | Weights]:
    """Naming -> the model's manifest in it, for every naming the model has."""
    t = source if isinstance(source, Trace) else constructed(source)
    own = "original" if t.family == "ldm" else "diffusers"
    out: dict[str, Trace | Weights] = {own: t}
    if t.model == "ControlNetModel":
        out["original"] = _controlnet_original(t)
        return out
    other = "diffusers" if own == "original" else "original"
    try:
        pair = twins(_config(t))
    except UnetvizError:
        return out
    out[other] = pair.diffusers if other == "diffusers" else pair.original
    return out


def _config(t: Trace) -> dict[str, Any]:
    from .keymaps import thawed

    return dict(thawed(t.given))


def _controlnet_original(t: Trace) -> Weights:
    """A ControlNet's manifest in cldm's names: the encoder's as its U-Net twin names them, its own modules
    (hint embedding, zero convs) by ``extra_modules``."""
    config = _config(t)
    modules = dict(twins(unet_config(config)).modules)
    hint = len(config.get("conditioning_embedding_out_channels", [16, 32, 96, 256])) * 2 - 2
    zeros = sum(1 for k, _ in t.manifest if k.startswith("controlnet_down_blocks.") and k.endswith(".weight"))
    modules.update(extra_modules(hint, zeros))
    tensors: dict[str, Shape] = {}
    for key, shape in t.manifest:
        module, _, leaf = key.rpartition(".")
        if module not in modules:
            raise UnetvizError(f"naming: the ControlNet's {module} has no original name")
        tensors[f"{modules[module]}.{leaf}"] = shape
    return Weights(tensors=tensors, family="cldm", model="ControlNet", name=t.name or "ControlNet")


def check_file(source: Source, path: str | Path, naming: str | None = None) -> WeightsCheck:
    """The file against ``source`` in ``naming`` (refused when the model has no such naming), or in each naming
    it has, keeping the best."""
    return check_shapes(source, read_shapes(Path(path)), naming)


def check_shapes(source: Source, shapes: dict[str, Shape], naming: str | None = None) -> WeightsCheck:
    """``check_file`` of a header already read."""
    t = constructed(source)
    have = namings(t)
    if naming is not None and naming not in have:
        raise UnetvizError(f"--naming: got {naming!r}; {t.name or t.model} has only the {' and '.join(have)}"
                           " naming")
    tried = (naming,) if naming else tuple(have)
    results = [check_weights(have[n], shapes, n) for n in tried]
    best = max(results, key=lambda r: r.matched)
    best = replace(best, tried=tried)
    if best.ok:
        return best
    return replace(best, file_is=_what(shapes, t))


def _what(shapes: dict[str, Shape], t: Trace) -> str:
    from .kinds import identify

    try:
        found = identify(shapes)
    except UnetvizError:
        return ""
    if found.kind != "unet":
        return f"{found.name} made for {found.base}"
    return f"{found.name} ({found.details.get('naming')} naming)"

