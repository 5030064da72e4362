"""The original Stable Diffusion UNet: ``ldm.modules.diffusionmodules.openaimodel.UNetModel``.

This is the naming of the checkpoints people hold (``input_blocks.1.1.transformer_blocks.0.attn1``):
CompVis' SD 1.x and Stability's SD 2.x ``ldm`` (as ``stable-diffusion-sdkit`` 2.1.5 packages it:
the ground truth verify builds), plus the keywords Stability's ``sgm`` (SDXL) added to the same
class. Read beside the upstream code: ``init`` is ``UNetModel.__init__`` (guided-diffusion's, its
ancestor, plus ``SpatialTransformer``), ``build`` is ``UNetModel.forward``.

Choices where the two codes differ or leave one open:

- ``image_size`` is required by ldm's constructor but unused by the network, and sgm has no such
  argument: it only sets the traced size. The size is ``--size``, else ``image_size``, else 64
  (SD 1.x's latent). Published configs say ``image_size: 32 # unused``; ``ldm_kwargs_from_yaml``
  takes LatentDiffusion's own ``model.params.image_size`` (the latent it samples) instead.
- sgm keywords: ``transformer_depth`` per level, ``transformer_depth_middle`` (default: the last
  level's depth), ``num_classes`` ``"sequential"`` (``label_emb.0.{0,2}`` from ``adm_in_channels``)
  and ``"timestep"``, ``spatial_transformer_attn_type``, ``use_fairscale_checkpoint``/``offload_to_cpu``.
- An int ``transformer_depth`` > 1 with one ``context_dim``: the SD 2.x repo's ``SpatialTransformer``
  indexes ``context_dim[d]`` and raises IndexError; CompVis' SD 1.x code and sgm give every block the
  same context, and so does unetviz (verify builds it in ldm with ``context_dim`` repeated per block).
- ``use_fp16`` only makes the forward cast its input to float16 (``convert_to_fp16`` is a dummy in
  this code), which runs under the pipelines' autocast; precision changes no shape, so it is traced
  like float32.
- Not traced (a clear error): ``dims`` other than 2, ``n_embed`` (its ``out`` is built but never
  run), per-block ``context_dim`` lists of different widths, attention heads of zero width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.config import Args
from ...core.errors import NOT_TRACED, NotTraced, UnetvizError, bad_value
from ...core.inputs import TEXT_TOKENS
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from .guided_parts import GROUPS, Conv, Emb, Res, Sample, norm
from .ldm_parts import Block, Ctx, Label, Plan, attention_for, describe, head_split, label_emb, plan, run_block, seq

DEFAULTS: dict[str, Any] = {
    # required upstream (no default); None here means "missing" unless the key was given
    "image_size": None, "in_channels": None, "model_channels": None, "out_channels": None,
    "num_res_blocks": None, "attention_resolutions": None,
    # ldm's keyword defaults, exactly
    "dropout": 0, "channel_mult": [1, 2, 4, 8], "conv_resample": True, "dims": 2, "num_classes": None,
    "use_checkpoint": False, "use_fp16": False, "num_heads": -1, "num_head_channels": -1, "num_heads_upsample": -1,
    "use_scale_shift_norm": False, "resblock_updown": False, "use_new_attention_order": False,
    "use_spatial_transformer": False, "transformer_depth": 1, "context_dim": None, "n_embed": None, "legacy": True,
    "disable_self_attentions": None, "num_attention_blocks": None, "disable_middle_self_attn": False,
    "use_linear_in_transformer": False,
    # sgm's additions to the same class, with its defaults
    "spatial_transformer_attn_type": "softmax", "adm_in_channels": None, "use_fairscale_checkpoint": False,
    "offload_to_cpu": False, "transformer_depth_middle": None,
}
REQUIRED = ("in_channels", "model_channels", "out_channels", "num_res_blocks", "attention_resolutions")
"""Required by both ldm and sgm (ldm's ``image_size`` too, but it only sets the traced size)."""
DEFAULT_SIZE = 64
"""SD 1.x's latent (512 px / 8), used when neither ``--size`` nor ``image_size`` is given."""
UNET_TARGETS = ("ldm.modules.diffusionmodules.openaimodel.UNetModel",
                "sgm.modules.diffusionmodules.openaimodel.UNetModel")


@dataclass(frozen=True, kw_only=True)
class Net:
    """The modules ``UNetModel.__init__`` creates, as records."""

    in_channels: int
    model_channels: int
    out_channels: int
    time_embed_dim: int
    label: Label | None
    context_dim: int | None
    input_blocks: tuple[Block, ...]
    middle_block: Block
    output_blocks: tuple[Block, ...]
    ch: int
    """The width the decoder ends on (what ``out``'s GroupNorm normalises)."""
    levels: int


def _has_attention(p: Plan, ds: int, rates: list[int], level: int, index: int) -> bool:
    return ds in rates and (p.num_attention_blocks is None or index < p.num_attention_blocks[level])


def _label(a: Args, model_channels: int) -> Label | None:
    raw = a.raw("num_classes")
    if raw is None:
        return None
    if raw in ("continuous", "timestep", "sequential"):
        if raw == "sequential":
            if a.raw("adm_in_channels") is None:  # assert adm_in_channels is not None
                raise UnetvizError("adm_in_channels: null, but num_classes is \"sequential\"; give the ADM vector's"
                                   " width (2816 for SDXL base)")
            return Label(kind="sequential", width=a.int("adm_in_channels", 1))
        return Label(kind=raw, width=1 if raw == "continuous" else model_channels)
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return Label(kind="embedding", width=a.int("num_classes", 1))
    raise bad_value("num_classes", raw, "null, a class count >= 1, \"continuous\", \"timestep\" or \"sequential\"")


def _levels(a: Args) -> tuple[list[int], list[int]]:
    mults = seq(a, "channel_mult", "a list of integers, e.g. [1, 2, 4, 4]")
    if not mults:
        raise bad_value("channel_mult", a.raw("channel_mult"), "a non-empty list of integers, e.g. [1, 2, 4, 4]")
    mults = [a.int("channel_mult", 1, v) for v in mults]
    raw = a.raw("num_res_blocks")
    if isinstance(raw, (list, tuple)):
        if len(raw) != len(mults):  # ValueError("provide num_res_blocks either as an int ...")
            raise UnetvizError(f"num_res_blocks has {len(raw)} entries but channel_mult has {len(mults)}")
        return mults, [a.int("num_res_blocks", 0, v) for v in raw]
    return mults, [a.int("num_res_blocks", 0)] * len(mults)


def _check(a: Args) -> None:
    """The arguments checked on their own (types, ranges, the options unetviz does not trace)."""
    missing = [k for k in REQUIRED if k not in a.given]
    if missing:
        raise UnetvizError(f"{missing[0]}: required (UNetModel has no default for it); required: {', '.join(REQUIRED)}")
    if a.raw("dims") != 2:
        raise NotTraced(f"dims: got {a.raw('dims')!r}; {NOT_TRACED} 1-d or 3-d ldm UNetModels yet; allowed: 2")
    if a.raw("n_embed") is not None:
        raise NotTraced(f"n_embed: got {a.raw('n_embed')!r}; {NOT_TRACED} the codebook-id head yet; allowed: null")
    if a.raw("image_size") is not None:
        a.int("image_size", 1)
    dropout = a.float("dropout")
    if not 0 <= dropout <= 1:
        raise bad_value("dropout", dropout, "a probability from 0 to 1 (nn.Dropout)")
    for key in ("conv_resample", "use_checkpoint", "use_fp16", "use_scale_shift_norm", "resblock_updown",
                "use_new_attention_order", "use_spatial_transformer", "legacy", "disable_middle_self_attn",
                "use_linear_in_transformer", "use_fairscale_checkpoint", "offload_to_cpu"):
        a.bool(key)
    a.choice("spatial_transformer_attn_type", ("softmax", "softmax-xformers"))
    if a.raw("adm_in_channels") is not None:
        a.int("adm_in_channels", 1)
    if a.bool("use_fairscale_checkpoint") and a.bool("use_checkpoint"):  # sgm asserts one or the other
        raise UnetvizError("use_fairscale_checkpoint: true together with use_checkpoint: true; allowed: at most one")


def _rates(a: Args) -> list[int]:
    raw = seq(a, "attention_resolutions", "a list of downsample rates, e.g. [4, 2, 1]")
    return [a.int("attention_resolutions", 0, v) for v in raw or []]


def init(a: Args) -> Net:
    """``UNetModel.__init__``: every module, with the checks the constructor (or torch) makes."""
    _check(a)
    in_channels, mc, out_channels = a.int("in_channels", 1), a.int("model_channels", 1), a.int("out_channels", 1)
    mults, nrb = _levels(a)
    p = plan(a, len(mults), nrb)
    rates, updown, resample = _rates(a), a.bool("resblock_updown"), a.bool("conv_resample")
    label = _label(a, mc)
    input_blocks = [Block(layers=(Conv(in_channels, mc),), level=0)]
    chans, ch, ds = [mc], mc, 1
    for level, mult in enumerate(mults):
        for nr in range(nrb[level]):
            layers: list[Any] = [Res(ch, mult * mc)]
            ch = mult * mc
            if ds in rates:  # the head arithmetic runs before num_attention_blocks is read
                head_split(p, ch, f"level {level}")
            if _has_attention(p, ds, rates, level, nr):
                layers.append(attention_for(p, ch, level))
            input_blocks.append(Block(layers=tuple(layers), level=level))
            chans.append(ch)
        if level != len(mults) - 1:
            sampler = Res(ch, ch, down=True) if updown else Sample(ch, resample, up=False)
            input_blocks.append(Block(layers=(sampler,), level=level))
            chans.append(ch)
            ds *= 2
    middle = Block(layers=(Res(ch, ch), attention_for(p, ch, None), Res(ch, ch)), level=len(mults) - 1)
    output_blocks = []
    for level, mult in list(enumerate(mults))[::-1]:
        for i in range(nrb[level] + 1):
            layers = [Res(ch + chans.pop(), mc * mult)]
            ch = mc * mult
            if ds in rates:
                head_split(p, ch, f"level {level}")
            if _has_attention(p, ds, rates, level, i):
                layers.append(attention_for(p, ch, level, upsample=True))
            if level and i == nrb[level]:
                layers.append(Res(ch, ch, up=True) if updown else Sample(ch, resample, up=True))
                ds //= 2
            output_blocks.append(Block(layers=tuple(layers), level=level))
    net = Net(in_channels=in_channels, model_channels=mc, out_channels=out_channels, time_embed_dim=4 * mc,
              label=label, context_dim=p.context_dim, input_blocks=tuple(input_blocks), middle_block=middle,
              output_blocks=tuple(output_blocks), ch=ch, levels=len(mults))
    _check_groups(net)
    return net


def _check_groups(net: Net) -> None:
    """GroupNorm32(32, C) and the transformers' GroupNorm(32, C) raise unless 32 divides C."""
    named = [(f"input_blocks.{n}", b) for n, b in enumerate(net.input_blocks)] + [("middle_block", net.middle_block)]
    named += [(f"output_blocks.{n}", b) for n, b in enumerate(net.output_blocks)]
    for path, block in named:
        for j, m in enumerate(block.layers):
            widths = (m.channels, m.out_channels) if isinstance(m, Res) else (getattr(m, "channels", GROUPS),)
            for c in widths:
                if c % GROUPS:
                    raise UnetvizError(f"model_channels / channel_mult: {path}.{j} normalises {c} channels; allowed:"
                                       f" multiples of {GROUPS} (GroupNorm32), e.g. model_channels 320")
    if net.ch % GROUPS:  # pragma: no cover - the last output block already normalised it
        raise UnetvizError(f"model_channels: out.0 normalises {net.ch} channels; allowed: multiples of {GROUPS}")


def _start(t: Tracer, a: Args, in_channels: int, size: Size | None) -> Act:
    if size is not None:
        return t.start(in_channels, size, "--size")
    if a.raw("image_size") is None:
        return t.start(in_channels, (DEFAULT_SIZE, DEFAULT_SIZE), f"ldm default {DEFAULT_SIZE} (no image_size)")
    n = a.int("image_size", 1)
    return t.start(in_channels, (n, n), "image_size")


def build(t: Tracer, a: Args, size: Size | None) -> Act:
    """``UNetModel.forward(x, timesteps, context, y)``."""
    net = init(a)
    t.declare(("time_embed", "label_emb", "input_blocks", "middle_block", "output_blocks", "out"))
    x = _start(t, a, net.in_channels, size)
    mc, ted = net.model_channels, net.time_embed_dim
    sinusoid = Act(mc, None, "timestep_embedding")
    with t.unit("time_embed", "mlp", "Sequential", sinusoid, f"sinusoidal {mc} -> {ted} -> {ted}") as u:
        emb = t.linear("0", sinusoid, mc, ted)
        emb = u.done(t.linear("2", emb, ted, ted), new=False)
    label_emb(t, net.label, ted)
    if net.label is not None:
        emb = Act(ted, None, "")  # emb + label_emb(y): made by no module
    context = None if net.context_dim is None else Act(net.context_dim, None, "context", tokens=TEXT_TOKENS)
    ctx = Ctx(emb=Emb(emb, a.bool("use_scale_shift_norm"), a.bool("use_new_attention_order")), context=context)
    h = x  # x.type(self.dtype)
    for n, block in enumerate(net.input_blocks):
        with t.block(f"input_blocks.{n}", f"encoder level {block.level}, {fmt_size(h.size)}: {describe(block)}"):
            h = run_block(t, block, h, ctx)
        t.push(h)  # hs.append(h)
    with t.block("middle_block", f"middle, {fmt_size(h.size)}: {describe(net.middle_block)}"):
        h = run_block(t, net.middle_block, h, ctx)
    for n, block in enumerate(net.output_blocks):
        path = f"output_blocks.{n}"
        skip = t.pop(path)
        if skip.size != h.size:
            # Upsample always doubles, so a size the encoder halved with rounding comes back one off
            t.fail(path, f"torch.cat of h and hs.pop() before {path} (decoder level {block.level}): h is"
                         f" {h.channels}ch {fmt_size(h.size)} from {h.source}, skip #{skip.skip} is"
                         f" {skip.channels}ch {fmt_size(skip.size)} from {skip.source}; the input size"
                         f" must be divisible by {2 ** (net.levels - 1)}")
        h = t.cat([h, skip], into=path)  # th.cat([h, hs.pop()], dim=1)
        with t.block(path, f"decoder level {block.level}, {fmt_size(h.size)}: {describe(block)}"):
            h = run_block(t, block, h, ctx)
    # out = GroupNorm32(ch), SiLU, zero_module(conv_nd(model_channels -> out_channels))
    with t.unit("out", "conv", "Sequential", h, f"GroupNorm, SiLU, 3x3 conv -> {net.out_channels}") as u:
        y = norm(t, "0", h, net.ch)
        # sized by model_channels, not ch: a channel_mult not starting at 1 fails here, as upstream
        return u.done(t.conv("2", y, mc, net.out_channels, 3, 1, 1), new=False)


def ldm_kwargs_from_yaml(data: Any) -> dict[str, Any]:
    """The UNet's keyword arguments from an original inference YAML (already safe-loaded).

    SD 1.x/2.x (``LatentDiffusion``) keep them in ``model.params.unet_config.params``, SDXL's sgm
    (``DiffusionEngine``) in ``model.params.network_config.params``; ``target`` is dropped. The
    UNet's own ``image_size`` is marked unused in every published config (32 for a 64 latent), so
    LatentDiffusion's ``model.params.image_size``, the latent it samples, replaces it when present.
    """
    model = data.get("model") if isinstance(data, dict) else None
    params = model.get("params") if isinstance(model, dict) else None
    if not isinstance(params, dict):
        raise UnetvizError("config: not an original inference YAML: expected model.params.unet_config"
                           " (SD 1.x/2.x) or model.params.network_config (SDXL)")
    key = next((k for k in ("unet_config", "network_config") if k in params), None)
    if key is None:
        raise UnetvizError(f"config: model.params has no unet_config or network_config; keys:"
                           f" {', '.join(map(str, params)) or 'none'}")
    section = params[key]
    if not isinstance(section, dict) or not isinstance(section.get("params"), dict):
        raise UnetvizError(f"model.params.{key}: expected a mapping with target and params")
    target = section.get("target")
    if target is not None and target not in UNET_TARGETS and not str(target).endswith("openaimodel.UNetModel"):
        raise bad_value(f"model.params.{key}.target", target, UNET_TARGETS)
    kwargs = dict(section["params"])
    latent = params.get("image_size")
    if isinstance(latent, int) and not isinstance(latent, bool):
        kwargs["image_size"] = latent
    return kwargs
