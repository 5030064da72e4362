"""Every kind of file a diffusion user holds, named with its base from its header alone (``inspect``): header
fixtures made from the real upstream modules and the writers' naming rules (``checkpoint_fixtures``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import checkpoint_fixtures as F  # noqa: E402

import unetviz  # noqa: E402
from unetviz.checkpoints.kinds import identify  # noqa: E402

TE = ("CLIPAttention", "CLIPMLP")
META = {"ss_network_module": "networks.lora", "ss_network_dim": "8", "ss_base_model_version": "sd_v1",
        "ss_tag_frequency": json.dumps({"10_mychar": {"mychar": 40, "1girl": 12, "smile": 3}})}


def _sd15_lora() -> F.Shapes:
    out = F.kohya(F.diffusers_unet("sd15"), "lora_unet", ("Transformer2DModel",))
    out.update(F.kohya(F.clip_text(768, 12), "lora_te", TE))
    return out


def _sdxl_lora() -> F.Shapes:
    out = F.kohya(F.comfy_unet(F.ldm_kwargs("sdxl-sgm")), "lora_unet", ("SpatialTransformer",))
    out.update(F.kohya(F.clip_text(768, 12), "lora_te1", TE))
    out.update(F.kohya(F.clip_text(1280, 32, True), "lora_te2", TE))
    return out


def _full_sd15() -> F.Shapes:
    """A whole SD 1.5 file as ldm writes it: U-Net, LitEma copy, the DDPM schedule, a VAE, markers."""
    with torch.device("meta"):
        unet = F.upstream("ldm.modules.diffusionmodules.openaimodel").UNetModel(**F.ldm_kwargs("sd15-ldm"))
    lit_ema = F.upstream("ldm.modules.ema").LitEma
    out = {**F.shapes(unet, "model.diffusion_model."), **F.schedule_buffers()}
    out.update(F.shapes(lit_ema(unet), "model_ema."))
    out.update(F.shapes(F.vae(original=True), "first_stage_model."))
    out.update({"v_pred": (), "ztsnr": ()})
    return out


CASES: dict[str, tuple[Callable[[], F.Shapes], str, str, str]] = {
    # name: (fixture, kind, base, words in the name)
    "kohya LoRA SD 1.5": (_sd15_lora, "lora", "SD 1.x", "LoRA (kohya"),
    "kohya LoRA SD 2.1": (lambda: F.kohya(F.diffusers_unet("sd21"), "lora_unet", ("Transformer2DModel",)), "lora",
                          "SD 2.x", "LoRA"),
    "kohya LoRA SDXL (sgm names)": (_sdxl_lora, "lora", "SDXL base", "LoRA (kohya"),
    "kohya LoCon SD 1.5": (lambda: F.kohya(F.diffusers_unet("sd15"), "lora_unet", (
        "Transformer2DModel", "ResnetBlock2D", "Downsample2D", "Upsample2D")), "lora", "SD 1.x", "LoCon"),
    "peft LoRA SDXL": (lambda: F.peft(F.diffusers_unet("sdxl")), "lora", "SDXL base", "LoRA (peft"),
    "diffusers LoRA (attention processors)": (lambda: F.attn_procs(F.diffusers_unet("sd15")), "lora", "SD 1.x",
                                              "LoRA (diffusers"),
    "peft LoRA SD 1.5": (lambda: F.peft(F.diffusers_unet("sd15")), "lora", "SD 1.x", "LoRA (peft"),
    "LyCORIS LoHa": (lambda: F.lycoris(F.diffusers_unet("sd15"), "loha"), "loha", "SD 1.x", "LoHa"),
    "LyCORIS LoKr": (lambda: F.lycoris(F.diffusers_unet("sdxl"), "lokr"), "lokr", "SDXL base", "LoKr"),
    "DoRA": (lambda: F.lycoris(F.diffusers_unet("sd15"), "locon", only="attn2.to_k", weight_decompose=True),
             "dora", "SD 1.x", "DoRA"),
    "ControlNet diffusers SD 1.5": (lambda: F.shapes(F.controlnet()), "controlnet", "SD 1.x", "ControlNet (diff"),
    "ControlNet diffusers SDXL": (lambda: F.shapes(F.controlnet(sdxl=True)), "controlnet", "SDXL base",
                                  "ControlNet"),
    "ControlNet union SDXL": (lambda: F.shapes(F.controlnet(sdxl=True, union=True)), "controlnet", "SDXL base",
                              "ControlNet union"),
    "ControlNet 1.1 standalone": (lambda: F.shapes(F.cldm_controlnet(F.ldm_kwargs("sd15-ldm"))), "controlnet",
                                  "SD 1.x", "ControlNet (original"),
    "ControlNet 1.0 full file": (lambda: {**F.shapes(F.cldm_controlnet(F.ldm_kwargs("sd15-ldm")), "control_model."),
                                          **F.shapes(F.comfy_unet(F.ldm_kwargs("sd15-ldm")),
                                                     "model.diffusion_model.")},
                                 "controlnet", "SD 1.x", "ControlNet (original"),
    "T2I-Adapter SD 1.5": (lambda: F.shapes(F.t2i()), "t2i-adapter", "SD 1.x / SD 2.x", "T2I-Adapter"),
    "T2I-Adapter SDXL": (lambda: F.shapes(F.t2i(xl=True)), "t2i-adapter", "SDXL base", "T2I-Adapter"),
    "T2I-Adapter light": (lambda: F.shapes(F.t2i(light=True)), "t2i-adapter", "SD 1.x / SD 2.x", "light"),
    "T2I-Adapter sketch (TencentARC names)": (lambda: F.shapes(F.t2i_original(1)), "t2i-adapter", "SD 1.x / SD 2.x",
                                              "T2I-Adapter"),
    "IP-Adapter SD 1.5": (lambda: F.ip_adapter(F.diffusers_unet("sd15"), F.image_proj_plain(1024, 768)),
                          "ip-adapter", "SD 1.x", "plain"),
    "IP-Adapter plus SDXL": (lambda: F.ip_adapter(F.diffusers_unet("sdxl"), F.image_proj_plus(1280, 2048)),
                             "ip-adapter", "SDXL base", "plus"),
    "AnimateDiff motion module": (lambda: F.shapes(F.motion()), "motion-module", "SD 1.x / SD 2.x", "AnimateDiff"),
    "VAE diffusers": (lambda: F.shapes(F.vae()), "vae", "SD 1.x / SD 2.x / SDXL base / SDXL refiner", "VAE (diff"),
    "VAE original": (lambda: F.shapes(F.vae(original=True)), "vae", "SD 1.x / SD 2.x / SDXL base / SDXL refiner",
                     "VAE (original"),
    "CLIP-L text encoder": (lambda: F.shapes(F.clip_text(768, 12)), "text-encoder", "SD 1.x / SDXL base", "CLIP ViT-L"),
    "OpenCLIP-H text encoder": (lambda: F.shapes(F.clip_text(1024, 23)), "text-encoder", "SD 2.x", "ViT-H"),
    "OpenCLIP-bigG text encoder": (lambda: F.shapes(F.clip_text(1280, 32, True)), "text-encoder",
                                   "SDXL base / SDXL refiner", "bigG"),
    "SD 2.1 unCLIP-H (diffusers)": (lambda: F.shapes(F.diffusers_unet(
        "sd21", class_embed_type="projection", projection_class_embeddings_input_dim=2048), "unet."), "unet",
        "SD 2.1 unCLIP-H", "unCLIP-H U-Net"),
    "SD 2.1 unCLIP-H (original)": (lambda: F.shapes(F.comfy_unet({
        **F.ldm_kwargs("sd21-ldm"), "num_classes": "sequential", "adm_in_channels": 2048}), "model.diffusion_model."),
        "unet", "SD 2.1 unCLIP-H", "unCLIP-H U-Net"),
    "SD 1.5 with EMA, schedule, VAE, markers": (_full_sd15, "unet", "SD 1.x", "SD 1.x U-Net"),
}
KOHYA_FLUX = ("DoubleStreamBlock", "SingleStreamBlock")
"""kohya's sd-scripts networks/lora_flux.py: FLUX's target classes (BFL's names, prefix lora_unet)."""
OTHERS: dict[str, tuple[Callable[[], F.Shapes], str, str, str]] = {
    # open_clip's own names, where single-file checkpoints keep them (the prefix tells SDXL base from refiner)
    "OpenCLIP-H (open_clip, SD 2.x checkpoint)": (lambda: F.open_clip_text("ViT-H-14", "cond_stage_model.model."),
                                                  "text-encoder", "SD 2.x", "ViT-H"),
    "OpenCLIP-H (open_clip, SD 2.x in sgm's naming)": (lambda: F.open_clip_text(
        "ViT-H-14", "conditioner.embedders.0.model."), "text-encoder", "SD 2.x", "ViT-H"),
    "OpenCLIP-bigG (open_clip, SDXL checkpoint)": (lambda: F.open_clip_text(
        "ViT-bigG-14", "conditioner.embedders.1.model."), "text-encoder", "SDXL base", "bigG"),
    "OpenCLIP-bigG (open_clip, SDXL refiner checkpoint)": (lambda: F.open_clip_text(
        "ViT-bigG-14", "conditioner.embedders.0.model."), "text-encoder", "SDXL refiner", "bigG"),
    # LoRAs of transformer denoisers: named for what they are, not "unknown"
    "FLUX.1 LoRA (diffusers/peft)": (lambda: F.peft(F.flux(), "transformer."), "lora", "FLUX.1",
                                     "LoRA for FLUX.1's transformer (peft"),
    "FLUX.1 LoRA (kohya)": (lambda: F.kohya(F.flux(original=True), "lora_unet", KOHYA_FLUX), "lora", "FLUX.1",
                            "LoRA for FLUX.1's transformer (kohya"),
    "SD3 LoRA (diffusers/peft)": (lambda: F.peft(F.sd3(), "transformer."), "lora", "SD3 medium / SD3.5 medium",
                                  "SD3 medium / SD3.5 medium's transformer"),
    "SD3.5 large LoRA (diffusers/peft)": (lambda: F.peft(F.sd3(large=True), "transformer."), "lora", "SD3.5 large",
                                          "SD3.5 large's transformer (peft"),
    "SD3 LoRA (kohya)": (lambda: F.kohya(F.sd3(original=True), "lora_unet", ("JointBlock",)), "lora",
                         "SD3 medium / SD3.5 medium", "transformer (kohya"),
    "Control-LoRA SDXL": (lambda: F.control_lora(F.ldm_kwargs("sdxl-sgm")), "control-lora", "SDXL base",
                          "Control-LoRA"),
    "Control-LoRA SD 1.5": (lambda: F.control_lora(F.ldm_kwargs("sd15-ldm"), rank=64), "control-lora", "SD 1.x",
                            "Control-LoRA"),
    "IP-Adapter FaceID SD 1.5": (lambda: F.ip_adapter_faceid(F.diffusers_unet("sd15")), "ip-adapter", "SD 1.x",
                                 "(FaceID)"),
    "IP-Adapter FaceID plus SDXL": (lambda: F.ip_adapter_faceid(F.diffusers_unet("sdxl"), plus=True), "ip-adapter",
                                    "SDXL base", "(FaceID plus)"),
}
CASES.update(OTHERS)


@pytest.fixture(scope="module")
def built() -> dict[str, F.Shapes]:
    return {}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_is_named_with_its_base(case: str, built: dict[str, F.Shapes]) -> None:
    make, kind, base, words = CASES[case]
    if kind in ("loha", "lokr", "dora"):
        pytest.importorskip("lycoris")  # LyCORIS' own modules (lycoris-lora, with toml)
    if "open_clip" in case:
        pytest.importorskip("open_clip")  # open_clip_torch
    shapes = built.setdefault(case, make())
    found = identify(shapes, META if kind == "lora" else {})
    assert (found.kind, found.base) == (kind, base), (found.name, found.evidence)
    assert words in found.name, found.name
    if found.config is not None:  # a kind unetviz traces: its rebuilt config has the file's tensor count
        assert len(unetviz.weights(dict(found.config)).tensors) == found.tensors


def test_a_kohya_lora_has_rank_blocks_and_trigger_words(tmp_path: Path) -> None:
    path = F.write(tmp_path / "mychar.safetensors", _sd15_lora(), META)
    r = cli("inspect", str(path), "-f", "json")
    d = json.loads(r.stdout)
    assert r.returncode == 0 and d["schema"] == "unetviz.inspect/1" and d["kind"] == "lora"
    assert d["base"] == "SD 1.x" and d["rank"] == 8 and d["triggers"][:2] == ["mychar", "1girl"]
    assert d["text_encoders"] == ["lora_te"] and "down_blocks.0" in d["blocks"] and "mid_block" in d["blocks"]
    assert d["metadata"]["ss_network_dim"] == "8" and d["config"] is None
    assert "attn2.to_k down-projection reads 768" in d["evidence"]


def test_ip_adapter_names_its_image_encoder() -> None:
    sd15 = identify(F.ip_adapter(F.diffusers_unet("sd15"), F.image_proj_plain(1024, 768)))
    assert "ViT-H/14" in sd15.details["image_encoder"] and sd15.details["cross_attention_layers"] == 16
    xl = identify(F.ip_adapter(F.diffusers_unet("sdxl"), F.image_proj_plain(1280, 2048)))
    assert "ViT-bigG/14" in xl.details["image_encoder"] and xl.details["cross_attention_layers"] == 70
    plus = identify(F.ip_adapter(F.diffusers_unet("sdxl"), F.image_proj_plus(1280, 2048)))
    assert "ViT-H/14" in plus.details["image_encoder"] and plus.details["reads"] == "hidden states"


def test_a_whole_checkpoint_names_its_parts_and_markers(tmp_path: Path) -> None:
    path = F.write(tmp_path / "full.safetensors", _full_sd15())
    d = json.loads(cli("inspect", str(path), "-f", "json").stdout)
    parts = {p["name"]: p["what"] for p in d["parts"]}
    assert d["matches"] == "SD 1.x" and d["model_type"] == ["v-prediction", "zero terminal SNR"]
    assert parts["model_ema"].startswith("EMA copy of the U-Net") and parts["first_stage_model"] == "VAE"
    assert parts["schedule"] == "diffusion schedule buffers (1000 steps)"
    text = cli("inspect", str(path)).stdout
    assert "EMA copy of the U-Net" in text and "v-prediction" in text and "alphas_cumprod" not in text


def test_a_controlnet_file_is_traced_and_paired(tmp_path: Path) -> None:
    path = F.write(tmp_path / "control_v11p_sd15_canny.safetensors",
                   F.shapes(F.cldm_controlnet(F.ldm_kwargs("sd15-ldm"))))
    d = json.loads(cli("inspect", str(path), "-f", "json").stdout)
    assert d["kind"] == "controlnet" and d["matched"] == d["tensors"] == 340
    real = F.controlnet()
    assert unetviz.trace(str(path)).params == sum(p.numel() for p in real.parameters())
    pair = cli("table", "--config", str(path), "--pair", "sd15")
    assert pair.returncode == 0, pair.stderr
    check = cli("weights", "controlnet-sd15", "--check", str(path), "-f", "json")
    c = json.loads(check.stdout)
    assert check.returncode == 0 and c["naming"] == "original" and c["prefix"] == "" and c["matched"] == 340


@pytest.mark.parametrize("case", ["kohya LoRA SD 1.5", "AnimateDiff motion module", "VAE diffusers"])
def test_json_always_goes_to_stdout(tmp_path: Path, case: str) -> None:
    make, kind, base, _ = CASES[case]
    r = cli("inspect", str(F.write(tmp_path / "x.safetensors", make())), "-f", "json")
    d: dict[str, Any] = json.loads(r.stdout)
    assert r.returncode == 0 and r.stderr == "" and (d["kind"], d["base"]) == (kind, base)


def test_a_motion_module_is_traced_as_the_preset_it_matches() -> None:
    adapter = F.shapes(F.motion())
    found = identify(adapter)
    assert found.details["traced_as"] == "animatediff"
    # every tensor of the adapter is in the preset's UNetMotionModel, with its shape
    model = unetviz.weights("animatediff").tensors
    assert all(model[k] == v for k, v in adapter.items())


@pytest.mark.parametrize(("markers", "types"), [
    (("edm_mean", "edm_std"), ["EDM (Playground v2.5 latents)"]),
    (("edm_vpred.sigma_max", "edm_vpred.sigma_min"), ["EDM v-prediction"]), (("v_pred",), ["v-prediction"]),
    ((), []),
])
def test_model_type_markers(markers: tuple[str, ...], types: list[str]) -> None:
    shapes = F.shapes(F.comfy_unet(F.ldm_kwargs("sdxl-sgm")), "model.diffusion_model.")
    found = identify({**shapes, **{m: (1, 4, 1, 1) if m.startswith("edm_m") else () for m in markers}})
    assert found.base == "SDXL base" and list(found.model_type) == types


@pytest.mark.parametrize("case", ["kohya LoRA SD 1.5", "LyCORIS LoHa", "LyCORIS LoKr", "ControlNet 1.1 standalone",
                                  "ControlNet diffusers SDXL", "T2I-Adapter SD 1.5", "IP-Adapter SD 1.5",
                                  "AnimateDiff motion module", "VAE diffusers", "CLIP-L text encoder",
                                  "SD 2.1 unCLIP-H (diffusers)", "FLUX.1 LoRA (kohya)", "Control-LoRA SD 1.5",
                                  "IP-Adapter FaceID SD 1.5"])
@pytest.mark.parametrize("damage", [(), (1,), (3, 0, 7, 9, 1)])
def test_keys_of_a_kind_with_shapes_of_none_are_one_line(tmp_path: Path, case: str, damage: tuple[int, ...],
                                                           built: dict[str, F.Shapes]) -> None:
    """A damaged header (every shape replaced) is named or refused in one line, never a traceback."""
    make, kind, _, _ = CASES[case]
    if kind in ("loha", "lokr"):
        pytest.importorskip("lycoris")
    shapes = built.setdefault(case, make())
    path = F.write(tmp_path / "damaged.safetensors", dict.fromkeys(shapes, damage))
    for args in (("inspect", str(path)), ("fit", "sd15", str(path))):
        r = cli(*args)
        assert r.returncode in (0, 1, 2) and "Traceback" not in r.stderr, r.stderr
        assert r.returncode != 2 or (r.stderr.startswith("error: ") and r.stderr.count("\n") == 1), r.stderr


JSON_FIELDS: dict[str, dict[str, Any]] = {
    "OpenCLIP-bigG (open_clip, SDXL checkpoint)": {
        "naming": "open_clip", "width": 1280, "layers": 32, "projection": True,
        "prefix": "conditioner.embedders.1.model.", "tensors": 390},
    "FLUX.1 LoRA (kohya)": {"naming": "kohya", "rank": 8, "modules": 304, "blocks": [
        *(f"double_blocks.{i}" for i in range(19)), *(f"single_blocks.{i}" for i in range(38))]},
    "SD3 LoRA (diffusers/peft)": {"naming": "peft", "rank": 4},
    "Control-LoRA SDXL": {"rank": 128, "context": 2048, "class_embedding": 2816, "zero_convs": 9,
                          "conditioning_channels": 3, "lora_modules": 383},
    "IP-Adapter FaceID SD 1.5": {"variant": "FaceID", "face_embedding": 512, "lora_rank": 128, "lora_layers": 32,
                                 "cross_attention_layers": 16},
    "IP-Adapter FaceID plus SDXL": {"variant": "FaceID plus", "face_embedding": 512, "image_encoder_width": 1280,
                                    "reads": "a face embedding and CLIP hidden states"},
}
"""Fields of ``inspect -f json`` the fixture's construction fixes (ranks, counts and widths it was built with)."""


@pytest.mark.parametrize("case", list(JSON_FIELDS))
def test_other_kinds_json_and_80_columns(tmp_path: Path, case: str, built: dict[str, F.Shapes]) -> None:
    """The JSON carries the kind's fields; the rich output fits 80 columns with every key and path whole."""
    make, kind, base, words = CASES[case]
    if "open_clip" in case:
        pytest.importorskip("open_clip")
    path = F.write(tmp_path / "x.safetensors", built.setdefault(case, make()))
    r = cli("inspect", str(path), "-f", "json")
    d = json.loads(r.stdout)
    assert r.returncode == 0 and (d["kind"], d["base"]) == (kind, base) and words in d["name"]
    assert {k: d[k] for k in JSON_FIELDS[case]} == JSON_FIELDS[case]
    text = cli("inspect", str(path), columns=80).stdout
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert f"made for {base}" in " ".join(text.split())
    if "FLUX" in case or "SD3" in case:  # said not traced; no `fit BASE` to suggest
        assert "not a U-Net: unetviz does not trace it" in " ".join(text.split()) and "next:" not in text
        assert d["denoiser"].startswith(f"{base}'s transformer (") and d["config"] is None
    if case == "FLUX.1 LoRA (kohya)":
        assert "lora_unet_double_blocks_0_img_attn_qkv" in text.split()  # a key is never cut
        assert "blocks: double_blocks.0-18, single_blocks.0-37" in text
        assert "transformer modules: 304" in text and "unet modules" not in text


def test_transformer_bases_are_declared_from_the_real_models() -> None:
    """The declared FLUX.1/SD3 widths and block counts are those of diffusers' models (built as their configs
    say) and of ComfyUI's (the original names)."""
    from unetviz.checkpoints.bases import TRANSFORMER_BASES

    flux, sd3, large = TRANSFORMER_BASES
    for record, model in ((flux, F.flux()), (sd3, F.sd3()), (large, F.sd3(large=True))):
        assert type(model).__name__ == record.model
        assert model.config.num_attention_heads * model.config.attention_head_dim == record.hidden
        for diffusers, _, count in record.blocks:
            assert len(getattr(model, diffusers)) == count
    for record, model in ((flux, F.flux(original=True)), (sd3, F.sd3(original=True))):
        for _, original, count in record.blocks:
            assert len(getattr(model, original)) == count
