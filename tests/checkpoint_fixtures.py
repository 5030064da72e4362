"""Header-only ``.safetensors`` fixtures of every kind of file a diffusion user holds, made from independent
sources: the real upstream modules on the meta device (diffusers' UNet2DConditionModel, ControlNetModel,
ControlNetUnionModel, T2IAdapter, MotionAdapter, AutoencoderKL; transformers' CLIP text models; ComfyUI's
sgm-named UNetModel and cldm ControlNet; LyCORIS' own LoHa/LoKr/LoCon modules; ldm's LitEma and DDPM
schedule) and the naming rules of the tools that write the files, as their code states them:

- kohya's sd-scripts ``networks/lora.py``: every Linear/Conv2d under a ``Transformer2DModel`` (U-Net; the
  SDXL trainer's sgm-named U-Net calls its ``SpatialTransformer`` that) or a ``CLIPAttention``/``CLIPMLP``
  (text encoders), named ``prefix + "." + name + "." + child_name`` with every ``.`` made ``_``; prefixes
  ``lora_unet``, ``lora_te`` (``lora_te1``/``lora_te2`` for SDXL's two encoders); ``lora_down`` is a Linear
  (in -> rank) or a Conv2d with the module's kernel, ``lora_up`` a Linear (rank -> out) or a 1x1 Conv2d;
  ``alpha`` a scalar; ``ResnetBlock2D``/``Downsample2D``/``Upsample2D`` added for LoCon (conv 3x3);
- peft as diffusers saves it (``save_lora_weights``): ``unet.`` + module path + ``.lora_A.weight``
  (rank x in) / ``.lora_B.weight`` (out x rank) on ``to_q``, ``to_k``, ``to_v``, ``to_out.0``;
- IP-Adapter (tencent-ailab/IP-Adapter ``ip_adapter.py``): ``image_proj`` is ``ImageProjModel`` (``proj``
  Linear(embeds, context x tokens), ``norm``) or the plus ``Resampler`` (``latents``, ``proj_in`` Linear(hidden,
  dim), ``proj_out``); ``ip_adapter`` is ``ModuleList(unet.attn_processors.values())``, so index i is the
  i-th attention processor and only the cross-attentions (odd ones) own ``to_k_ip``/``to_v_ip``
  Linear(context, hidden of that attention).

Only headers are written: names, shapes, ``data_offsets`` of an empty data section.
"""

from __future__ import annotations

import importlib
import json
import struct
from pathlib import Path
from typing import Any

import torch

import unetviz
from unetviz.tracing import resolve

Shapes = dict[str, tuple[int, ...]]


def upstream(name: str) -> Any:
    """An upstream package or module (untyped for mypy: the real objects are read, not type-checked)."""
    return importlib.import_module(name)


def write(path: Path, tensors: Shapes, metadata: dict[str, str] | None = None) -> Path:
    header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
    header.update({k: {"dtype": "F16", "shape": list(v), "data_offsets": [0, 0]} for k, v in tensors.items()})
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    return path


def shapes(module: Any, prefix: str = "") -> Shapes:
    return {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}


def _config(preset: str) -> dict[str, Any]:
    return {k: v for k, v in resolve(preset)[0].items() if not k.startswith("_") and k != "family"}


def diffusers_unet(preset: str, **changes: Any) -> Any:
    diffusers = upstream("diffusers")

    with torch.device("meta"):
        return diffusers.UNet2DConditionModel(**{**_config(preset), **changes})


def comfy_unet(kwargs: dict[str, Any]) -> Any:
    """ComfyUI's UNetModel (sgm's names and keywords) on meta."""
    from unetviz.live.upstream import comfy

    return comfy.build(None, kwargs)


def clip_text(width: int, layers: int, projection: bool = False) -> Any:
    transformers = upstream("transformers")

    config = transformers.CLIPTextConfig(hidden_size=width, intermediate_size=width * 4, num_hidden_layers=layers,
                                         num_attention_heads=width // 64, projection_dim=width)
    cls = transformers.CLIPTextModelWithProjection if projection else transformers.CLIPTextModel
    with torch.device("meta"):
        return cls(config)


def kohya(root: Any, prefix: str, targets: tuple[str, ...], rank: int = 8) -> Shapes:
    """kohya's LoRA of ``root``: lora_down/lora_up/alpha of every Linear and Conv2d under a target class."""
    out: Shapes = {}
    for name, module in root.named_modules():
        if module.__class__.__name__ not in targets:
            continue
        for child_name, child in module.named_modules():
            if not isinstance(child, (torch.nn.Linear, torch.nn.Conv2d)):
                continue
            lora = (prefix + "." + name + "." + child_name).replace(".", "_")
            if isinstance(child, torch.nn.Linear):
                out[f"{lora}.lora_down.weight"] = (rank, child.in_features)
                out[f"{lora}.lora_up.weight"] = (child.out_features, rank)
            else:
                out[f"{lora}.lora_down.weight"] = (rank, child.in_channels, *child.kernel_size)
                out[f"{lora}.lora_up.weight"] = (child.out_channels, rank, 1, 1)
            out[f"{lora}.alpha"] = ()
    return out


def peft(root: Any, prefix: str = "unet.", rank: int = 4) -> Shapes:
    out: Shapes = {}
    for name, module in root.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith((".to_q", ".to_k", ".to_v", ".to_out.0")):
            out[f"{prefix}{name}.lora_A.weight"] = (rank, module.in_features)
            out[f"{prefix}{name}.lora_B.weight"] = (module.out_features, rank)
    return out


def attn_procs(unet: Any, rank: int = 4) -> Shapes:
    """diffusers' older LoRA format (``LoRAAttnProcessor``, ``unet.save_attn_procs``): per attention processor,
    ``to_q_lora``/``to_k_lora``/``to_v_lora``/``to_out_lora`` with ``down``/``up`` Linears."""
    out: Shapes = {}
    for name in unet.attn_processors:
        attn = unet.get_submodule(name[: -len(".processor")])
        for proj, linear in (("to_q", attn.to_q), ("to_k", attn.to_k), ("to_v", attn.to_v), ("to_out", attn.to_out[0])):
            out[f"{name}.{proj}_lora.down.weight"] = (rank, linear.in_features)
            out[f"{name}.{proj}_lora.up.weight"] = (linear.out_features, rank)
    return out


def lycoris(root: Any, algo: str, only: str = ".attn", **kwargs: Any) -> Shapes:
    """LyCORIS' own modules (``lycoris.modules``) around every attention Linear of ``root`` (whose name holds
    ``only``), kohya-named. DoRA (``weight_decompose``) reads the wrapped weight's norms, so its Linear is
    made on the CPU with the meta one's sizes."""
    module_name = {"loha": "LohaModule", "lokr": "LokrModule", "locon": "LoConModule"}[algo]
    cls = getattr(upstream(f"lycoris.modules.{algo}"), module_name)
    out: Shapes = {}
    for name, module in root.named_modules():
        if isinstance(module, torch.nn.Linear) and only in name:
            lora = ("lora_unet." + name).replace(".", "_")
            if kwargs.get("weight_decompose"):
                wrapped = cls(lora, torch.nn.Linear(module.in_features, module.out_features), lora_dim=8, alpha=4,
                              **kwargs)
            else:
                with torch.device("meta"):
                    wrapped = cls(lora, module, lora_dim=8, alpha=4, **kwargs)
            out.update(shapes(wrapped, lora + "."))
    return out


def ip_adapter(unet: Any, proj: Shapes) -> Shapes:
    """IP-Adapter's file: ``image_proj`` + ``ip_adapter.{i}.to_k_ip/to_v_ip`` over diffusers' attention processors."""
    out = {f"image_proj.{k}": v for k, v in proj.items()}
    ctx = unet.config.cross_attention_dim
    for i, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            attn = unet.get_submodule(name[: -len(".processor")])
            hidden = attn.to_k.out_features
            out[f"ip_adapter.{i}.to_k_ip.weight"] = (hidden, ctx)
            out[f"ip_adapter.{i}.to_v_ip.weight"] = (hidden, ctx)
    return out


def image_proj_plain(embeds: int, context: int, tokens: int = 4) -> Shapes:
    return {"proj.weight": (context * tokens, embeds), "proj.bias": (context * tokens,), "norm.weight": (context,),
            "norm.bias": (context,)}


def image_proj_plus(hidden: int, context: int, dim: int = 1280, queries: int = 16) -> Shapes:
    return {"latents": (1, queries, dim), "proj_in.weight": (dim, hidden), "proj_in.bias": (dim,),
            "proj_out.weight": (context, dim), "proj_out.bias": (context,), "norm_out.weight": (context,),
            "norm_out.bias": (context,)}


SDXL_CONTROLNET: dict[str, Any] = {
    # diffusers/controlnet-canny-sdxl-1.0 config.json
    "block_out_channels": [320, 640, 1280], "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D",
                                                                 "CrossAttnDownBlock2D"],
    "transformer_layers_per_block": [1, 2, 10], "cross_attention_dim": 2048, "attention_head_dim": [5, 10, 20],
    "use_linear_projection": True, "addition_embed_type": "text_time", "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816, "conditioning_embedding_out_channels": [16, 32, 96, 256]}


def controlnet(sdxl: bool = False, union: bool = False) -> Any:
    diffusers = upstream("diffusers")

    config = SDXL_CONTROLNET if sdxl else _config("controlnet-sd15")
    cls = diffusers.ControlNetUnionModel if union else diffusers.ControlNetModel
    with torch.device("meta"):
        return cls(**config)


def cldm_controlnet(kwargs: dict[str, Any]) -> Any:
    """ComfyUI's ``cldm.ControlNet`` (lllyasviel's ControlNet 1.0/1.1 names) on meta."""
    from unetviz.live.upstream import comfy

    kw = comfy.comfy_kwargs(kwargs)
    kw.pop("out_channels", None)
    with torch.device("meta"):
        return comfy.load("cldm.cldm").ControlNet(hint_channels=3, **kw, device=torch.device("meta"))


def ldm_kwargs(preset: str) -> dict[str, Any]:
    return {k: v for k, v in resolve(preset)[0].items() if k != "family"}


def sd15_weights() -> Shapes:
    return dict(unetviz.weights("sd15").tensors)


DDCONFIG: dict[str, Any] = {
    # CompVis/stable-diffusion configs/stable-diffusion/v1-inference.yaml, first_stage_config.params.ddconfig
    "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
    "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def vae(original: bool = False) -> Any:
    """diffusers' AutoencoderKL (SD's config), or ldm's with v1-inference.yaml's ddconfig."""
    if original:  # ldm's AutoencoderKL is these four modules (its module imports pytorch_lightning)
        ldm = upstream("ldm.modules.diffusionmodules.model")
        Encoder, Decoder = ldm.Encoder, ldm.Decoder

        with torch.device("meta"):
            model = torch.nn.Module()
            model.encoder, model.decoder = Encoder(**DDCONFIG), Decoder(**DDCONFIG)
            model.quant_conv, model.post_quant_conv = torch.nn.Conv2d(8, 8, 1), torch.nn.Conv2d(4, 4, 1)
            return model
    diffusers = upstream("diffusers")

    with torch.device("meta"):
        return diffusers.AutoencoderKL(block_out_channels=[128, 256, 512, 512], layers_per_block=2,
                                       down_block_types=["DownEncoderBlock2D"] * 4,
                                       up_block_types=["UpDecoderBlock2D"] * 4, latent_channels=4)


def t2i(xl: bool = False, light: bool = False) -> Any:
    """diffusers' T2IAdapter: TencentARC/t2iadapter_canny_sd15v2-style, the SDXL one, or a light one."""
    diffusers = upstream("diffusers")

    kind = "light_adapter" if light else "full_adapter_xl" if xl else "full_adapter"
    with torch.device("meta"):
        return diffusers.T2IAdapter(adapter_type=kind, downscale_factor=16 if xl else 8,
                                    channels=[320, 640, 1280] if light else [320, 640, 1280, 1280])


def t2i_original(channels: int = 3) -> Any:
    """ComfyUI's ``Adapter`` (TencentARC's names: ``body.N.block1``), as it loads t2iadapter_*_sd14v1."""
    from unetviz.live.upstream import comfy

    with torch.device("meta"):
        return comfy.load("t2i_adapter.adapter").Adapter(cin=64 * channels, channels=[320, 640, 1280, 1280],
                                                         nums_rb=2, ksize=1, sk=True, use_conv=False)


def motion() -> Any:
    """diffusers' MotionAdapter with its defaults (guoyww/animatediff-motion-adapter-v1-5-2's shape)."""
    diffusers = upstream("diffusers")

    with torch.device("meta"):
        return diffusers.MotionAdapter()


def schedule_buffers(steps: int = 1000) -> Shapes:
    """The buffers ldm's ``DDPM.register_schedule`` saves, read from its source (``ddpm.py`` imports
    pytorch_lightning, so it is read, not run); non-persistent ones are not in a checkpoint."""
    import re

    source = (Path(upstream("ldm").__file__).parent / "models" / "diffusion" / "ddpm.py").read_text()
    body = source[source.index("def register_schedule"):source.index("def ema_scope")]
    names = [m.group(1) for m in re.finditer(r"self\.register_buffer\('(\w+)', [^\n]*\n?", body)
             if "persistent=False" not in m.group(0)]
    return {n: (steps,) for n in names}


def open_clip_text(name: str, prefix: str) -> Shapes:
    """open_clip's own model (``ViT-H-14``, ``ViT-bigG-14``; built from its config JSON on meta, nothing
    downloaded) without its image tower, under ``prefix``: what ldm's ``FrozenOpenCLIPEmbedder`` (SD 2.x,
    ``cond_stage_model.model.``) and sgm's ``FrozenOpenCLIPEmbedder2`` (SDXL, ``conditioner.embedders.1.model.``)
    keep after ``del model.visual``."""
    open_clip = upstream("open_clip")

    model = open_clip.create_model(name, pretrained=None, device="meta")
    return {k: v for k, v in shapes(model, prefix).items() if not k.startswith(prefix + "visual.")}


FLUX_COMFY: dict[str, Any] = {
    # ComfyUI's model_detection.detect_unet_config for a FLUX.1 dev checkpoint (double_blocks / single_blocks)
    "in_channels": 16, "out_channels": 16, "vec_in_dim": 768, "context_in_dim": 4096, "hidden_size": 3072,
    "mlp_ratio": 4.0, "num_heads": 24, "depth": 19, "depth_single_blocks": 38, "axes_dim": [16, 56, 56],
    "theta": 10000, "qkv_bias": True, "guidance_embed": True, "patch_size": 2}
SD3_MEDIUM: dict[str, Any] = {
    # stabilityai/stable-diffusion-3-medium-diffusers transformer/config.json
    "sample_size": 128, "patch_size": 2, "in_channels": 16, "num_layers": 24, "attention_head_dim": 64,
    "num_attention_heads": 24, "joint_attention_dim": 4096, "caption_projection_dim": 1536,
    "pooled_projection_dim": 2048, "out_channels": 16, "pos_embed_max_size": 192}


def flux(original: bool = False) -> Any:
    """FLUX.1's transformer: diffusers' FluxTransformer2DModel (its defaults are FLUX.1's), or ComfyUI's Flux
    (BFL's names: ``double_blocks.N.img_attn.qkv``), on meta."""
    if original:
        from unetviz.live.upstream import comfy

        with torch.device("meta"):
            return comfy.load("ldm.flux.model").Flux(operations=comfy.load("ops").disable_weight_init,
                                                     device="meta", **FLUX_COMFY)
    with torch.device("meta"):
        return upstream("diffusers").FluxTransformer2DModel()


SD35_LARGE: dict[str, Any] = {
    # stabilityai/stable-diffusion-3.5-large transformer/config.json: what differs from SD3 medium's
    "num_layers": 38, "num_attention_heads": 38, "caption_projection_dim": 2432, "qk_norm": "rms_norm"}


def sd3(original: bool = False, large: bool = False) -> Any:
    """SD3 medium's (or SD3.5 large's) transformer: diffusers' SD3Transformer2DModel, or ComfyUI's MMDiT
    (Stability's names: ``joint_blocks.N.x_block.attn.qkv``; medium only), on meta."""
    if original:
        from unetviz.live.upstream import comfy

        context = {"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 1536}}
        with torch.device("meta"):
            return comfy.load("ldm.modules.diffusionmodules.mmdit").MMDiT(
                operations=comfy.load("ops").disable_weight_init, device="meta", input_size=None, patch_size=2,
                in_channels=16, depth=24, adm_in_channels=2048, pos_embed_max_size=192, out_channels=16,
                context_embedder_config=context, num_patches=192 * 192)
    with torch.device("meta"):
        return upstream("diffusers").SD3Transformer2DModel(**{**SD3_MEDIUM, **(SD35_LARGE if large else {})})


CONTROL_LORA_FULL = ("input_hint_block.", "zero_convs.", "middle_block_out.")
"""Control-LoRA modules stored whole: the ControlNet's own (new) layers; every other Linear/Conv2d of its U-Net
copy is a low-rank pair (diffusers' ``CONTROL_LORA_TO_DIFFUSERS`` maps exactly those: to_q..to_out, ff, proj_in/
proj_out, the resnets' convs and emb_layers, op, skip_connection, time_embed, label_emb, input_blocks.0.0)."""


def control_lora(kwargs: dict[str, Any], rank: int = 128) -> Shapes:
    """Stability's Control-LoRA (stabilityai/control-lora), as ComfyUI's ``ControlLora`` loads it into a cldm
    ControlNet made with ``ControlLoraOps``: ``lora_controlnet``; ``<module>.up`` (out, rank[, 1, 1]) and
    ``<module>.down`` (rank, in[, kh, kw]), multiplied flattened (``torch.mm(up.flatten(1), down.flatten(1))``),
    with the module's ``.bias``; norms and the new layers whole."""
    out: Shapes = {"lora_controlnet": ()}
    model = cldm_controlnet(kwargs)
    for name, module in model.named_modules():
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) or name.startswith(CONTROL_LORA_FULL):
            continue
        weight = tuple(module.weight.shape)
        out[f"{name}.up"] = (weight[0], rank, *([1] * (len(weight) - 2)))
        out[f"{name}.down"] = (rank, *weight[1:])
    for key, shape in shapes(model).items():
        module = key.rsplit(".", 1)[0]
        if f"{module}.up" not in out or key.endswith(".bias"):
            out[key] = shape
    return out


def ip_adapter_faceid(unet: Any, plus: bool = False, rank: int = 128, clip_hidden: int = 1280) -> Shapes:
    """IP-Adapter FaceID / FaceID-plus (tencent-ailab/IP-Adapter ``ip_adapter_faceid.py``): ``image_proj`` is
    ``MLPProjModel`` (``proj`` = Linear(512, 1024), GELU, Linear(1024, context x 4); ``norm``), the plus one
    ``ProjPlusModel`` with a ``perceiver_resampler`` (``FacePerceiverResampler``: ``proj_in`` Linear(CLIP hidden,
    context), 4 layers of ``PerceiverAttention`` + ``FeedForward``, ``proj_out``, ``norm_out``); ``ip_adapter``
    is every attention processor (``attention_processor_faceid.py``): ``LoRAAttnProcessor`` (attn1) and
    ``LoRAIPAttnProcessor`` (attn2, with ``to_k_ip``/``to_v_ip``), each with ``to_q_lora``/``to_k_lora``/
    ``to_v_lora``/``to_out_lora`` (``LoRALinearLayer``: ``down`` Linear(in, rank), ``up`` Linear(rank, out))."""
    ctx = unet.config.cross_attention_dim
    out: Shapes = {"image_proj.proj.0.weight": (1024, 512), "image_proj.proj.0.bias": (1024,),
                   "image_proj.proj.2.weight": (ctx * 4, 1024), "image_proj.proj.2.bias": (ctx * 4,),
                   "image_proj.norm.weight": (ctx,), "image_proj.norm.bias": (ctx,)}
    if plus:
        r = "image_proj.perceiver_resampler."
        out.update({f"{r}proj_in.weight": (ctx, clip_hidden), f"{r}proj_in.bias": (ctx,),
                    f"{r}proj_out.weight": (ctx, ctx), f"{r}proj_out.bias": (ctx,), f"{r}norm_out.weight": (ctx,),
                    f"{r}norm_out.bias": (ctx,)})
        inner = (ctx // 64) * 64
        for i in range(4):
            out.update({f"{r}layers.{i}.0.norm1.weight": (ctx,), f"{r}layers.{i}.0.norm1.bias": (ctx,),
                        f"{r}layers.{i}.0.norm2.weight": (ctx,), f"{r}layers.{i}.0.norm2.bias": (ctx,),
                        f"{r}layers.{i}.0.to_q.weight": (inner, ctx), f"{r}layers.{i}.0.to_kv.weight": (inner * 2, ctx),
                        f"{r}layers.{i}.0.to_out.weight": (ctx, inner), f"{r}layers.{i}.1.0.weight": (ctx,),
                        f"{r}layers.{i}.1.0.bias": (ctx,), f"{r}layers.{i}.1.1.weight": (ctx * 4, ctx),
                        f"{r}layers.{i}.1.3.weight": (ctx, ctx * 4)})
    for i, name in enumerate(unet.attn_processors):
        attn = unet.get_submodule(name[: -len(".processor")])
        hidden, reads = attn.to_q.out_features, attn.to_k.in_features
        for proj, width in (("to_q", hidden), ("to_k", reads), ("to_v", reads), ("to_out", hidden)):
            out[f"ip_adapter.{i}.{proj}_lora.down.weight"] = (rank, width)
            out[f"ip_adapter.{i}.{proj}_lora.up.weight"] = (hidden, rank)
        if name.endswith("attn2.processor"):
            out[f"ip_adapter.{i}.to_k_ip.weight"] = (hidden, ctx)
            out[f"ip_adapter.{i}.to_v_ip.weight"] = (hidden, ctx)
    return out
