"""The public entry points, each a function of a source: ``trace``, ``weights``, ``cost``, ``diff``, ``keymap``,
``check``, ``inspect`` (symbolic, torch-free) and ``verify`` (lazy torch).

A *source* is a preset name, a config path or folder, or a config dict; ``trace``, ``weights`` and ``cost`` also
take a live ``torch.nn.Module``, observed by a hooked forward pass (torch is imported only then).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .core.config import ContextArg
from .core.errors import NotTraced, UnetvizError, bad_value
from .core.inputs import SizeText
from .core.records import Trace, Weights
from .tracing import Source, constructed, resolve, trace_source

__all__ = ["check", "cost", "diff", "fit", "inspect", "keymap", "resolve", "trace", "verify", "weights", "why"]

if TYPE_CHECKING:
    from torch.nn import Module

    from .analysis.compare import Report
    from .analysis.cost import CostReport
    from .analysis.diff import Diff
    from .analysis.fit import FitReport
    from .checkpoints.kinds import Identified
    from .diagnose import Diagnosis
    from .render.weights import WeightsCheck

NAMINGS = ("diffusers", "original")


def _is_source(source: object) -> bool:
    return isinstance(source, (str, Path, dict))


def trace(source: Source | Module, size: SizeText = None, context: ContextArg = None, **kwargs: Any) -> Trace:
    """Trace a preset name, a config path, a config dict, or a live ``nn.Module``.

    ``size``: in the one size grammar (``64``, ``"64x96"``, ``(64, 96)``, ``"16x64x64"`` for video, ``"1024px"``
    for the image of a latent model; a module's size of any rank is traced as given); default: the config's own.
    ``context``: the ``encoder_hidden_states`` a caller passes, ``(tokens, width)``, ``"77x1024"`` or ``"none"``;
    default: what the model's pipeline passes (77 tokens as wide as the first cross-attention reads).
    For an ``nn.Module``, ``kwargs`` go to the observed tracer (``input=...``).
    """
    if not _is_source(source):
        from .live.observe import trace_module

        if context is not None:
            raise UnetvizError("context: give a module its encoder_hidden_states as a keyword instead")
        return trace_module(source, size=size, **kwargs)
    return trace_source(source, size, context)  # type: ignore[arg-type]


def weights(source: Source | Module, naming: str | None = None) -> Weights:
    """The ``state_dict`` manifest of ``source`` from its constructor alone: ``.tensors`` (key -> shape,
    in order), ``.params``, ``.to_json()``; no input size is involved, so a model that fails at every
    size you might pick still has all its weights listed. ``naming``: ``diffusers`` or ``original``
    (CompVis/Stability's ``input_blocks...``) for Stable Diffusion U-Nets; default: the source's own.
    A live module's manifest is its own ``state_dict()``'s keys and shapes (any device, meta included)."""
    if not _is_source(source):
        return _module_weights(source, naming)
    t = constructed(source)  # type: ignore[arg-type]
    if naming is not None and naming != own_naming(t):
        t = _twin(t, naming)
    return Weights(tensors=MappingProxyType(dict(t.manifest)), family=t.family, model=t.model, preset=t.preset,
                   name=t.name, buffers=t.buffers, aliases=t.aliases)


def _module_weights(module: Any, naming: str | None) -> Weights:
    if not hasattr(module, "state_dict") or not hasattr(module, "named_buffers"):
        raise UnetvizError(f"source: expected a preset name, a config, a path or an nn.Module, got"
                           f" {type(module).__name__}")
    if naming is not None:
        raise NotTraced(f"--naming: got {naming!r}; unetviz does not rename a live module's weights yet: its keys are"
                        " its own state_dict()'s (trace its config to get either naming)")
    state = module.state_dict(keep_vars=True)
    shapes = {k: tuple(int(d) for d in v.shape) for k, v in state.items()}
    first: dict[int, str] = {}  # a tensor's first key: later keys of the same tensor are its aliases
    aliases: dict[str, str] = {}
    for key, tensor in state.items():
        owner = first.setdefault(id(tensor), key)
        if owner != key:
            aliases[key] = owner
    buffers = frozenset(k for k, _ in module.named_buffers(remove_duplicate=False))
    return Weights(tensors=MappingProxyType(shapes), family="observed", model=type(module).__name__,
                   buffers=buffers, aliases=MappingProxyType(aliases))


def own_naming(t: Trace) -> str:
    return "original" if t.family == "ldm" else "diffusers"


def _twin(t: Trace, naming: str) -> Trace:
    from .checkpoints.keymaps import twins

    if naming not in NAMINGS:
        raise bad_value("--naming", naming, NAMINGS)
    pair = twins(_config_of(t))
    return pair.original if naming == "original" else pair.diffusers


def _config_of(t: Trace) -> dict[str, Any]:
    from .checkpoints.keymaps import thawed

    return dict(thawed(t.given))


def keymap(source: Source) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    """Every tensor of a Stable Diffusion U-Net as (diffusers key, original key, shape), one to one."""
    from .checkpoints.keymaps import twins

    return twins(_config_of(constructed(source))).keys


def check(source: Source, path: str | Path, naming: str | None = None) -> WeightsCheck:
    """How a weights file (a safetensors header or a JSON manifest) matches ``source``'s manifest: in
    ``naming`` (``diffusers`` or ``original``; refused when the model has no such naming), or in each naming
    the model has, keeping the best. ControlNets are read in either naming too."""
    from .checkpoints.check import check_file

    return check_file(source, path, naming)


def inspect(path: str | Path) -> tuple[Identified, WeightsCheck | None]:
    """What is this file? A U-Net checkpoint, a LoRA/LyCORIS, ControlNet, T2I-/IP-Adapter, motion module, VAE
    or text encoder, read from its header alone (never the data, never a pickle): ``.kind``, ``.base`` (read
    from its widths), ``.details``, ``.config`` where unetviz traces it (``.unet`` for U-Net checkpoints: the
    naming, prefix and the known model matched). The check compares that config's manifest with the file
    (``None`` for kinds unetviz does not trace)."""
    from .checkpoints.check import check_shapes
    from .checkpoints.kinds import identify_file

    found, shapes = identify_file(Path(path))
    return found, None if found.config is None else check_shapes(dict(found.config), shapes)


def cost(source: Source | Module, sizes: str | Sequence[SizeText] | None = None, batch: int | None = None,
         dtype: str = "fp16") -> CostReport:
    """MACs and activation memory of ``source`` at several sizes (see ``unetviz cost --help``): ``sizes`` is
    ``"512px,768px"`` or a list of sizes in the size grammar; default: the model's own size x 0.5 to 2. A live
    module is observed at each size (``sizes`` required)."""
    from .analysis.cost import cost as run
    from .analysis.cost import cost_report

    if _is_source(source):
        text = sizes if sizes is None or isinstance(sizes, str) else ",".join(_size_text(s) for s in sizes)
        return run(source, text, batch, dtype)  # type: ignore[arg-type]
    if sizes is None:
        raise UnetvizError("sizes: a live module has no size of its own; give sizes=[(64, 64), ...] (any rank)")
    items: list[SizeText] = [p.strip() for p in sizes.split(",")] if isinstance(sizes, str) else list(sizes)
    return cost_report([(_size_text(s), trace(source, size=_size_arg(s))) for s in items], batch or 1, dtype)


def _size_text(size: SizeText) -> str:
    return "x".join(map(str, size)) if isinstance(size, (tuple, list)) else str(size)


def _size_arg(size: SizeText) -> SizeText:
    """A module's size as ``trace`` takes it: a string ``64x96`` becomes the tuple (64, 96)."""
    if isinstance(size, str) and "px" not in size:
        try:
            dims = tuple(int(p) for p in size.lower().split("x"))
        except ValueError:
            raise bad_value("sizes", size, "N, HxW or DxHxW with positive integers") from None
        return dims[0] if len(dims) == 1 else dims
    return size


def diff(a: Source | Trace, b: Source | Trace, size: SizeText = None) -> Diff:
    """Two models compared block by block and unit by unit, with a summary in plain words."""
    from .analysis.diff import diff as run

    return run(a, b, size)


def verify(source: Source, size: SizeText = None, context: ContextArg = None) -> Report:
    """Build the real upstream model on the meta device and compare it with the trace; ``context`` as in
    ``trace`` (the real model is fed the same)."""
    from .live.verification import verify as _verify

    return _verify(source, size, context)


def fit(base: str | Path | dict[str, Any], files: Sequence[str | Path]) -> FitReport:
    """Do ``files`` (LoRAs, ControlNets, adapters, motion modules, VAEs: .safetensors headers only) load into
    ``base`` (a checkpoint, a preset name or a config)? ``.ok``, each add-on's targets, dropped keys and
    shape clashes, ``.to_json()``."""
    from .analysis.fit import fit as run

    return run(base, [Path(f) for f in files])


def why(text: str, model: Source | None = None) -> Diagnosis:
    """Read a pasted shape error (a message or a whole traceback) and name the layers and models whose
    widths or sizes give its numbers, the likely cause and the fix; ``model`` narrows the search.
    ``.matched`` is False when nothing known fits; text that is not an error raises ``UnetvizError``."""
    from .diagnose import why as run

    return run(text, model)
