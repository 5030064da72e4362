"""``unetviz why``: errors made by the real upstream classes (diffusers, CompVis ldm, MONAI, nnU-Net's networks,
torch itself) at the real models' widths, and real errors pasted in public issue threads
(``tests/data/why/real_errors.json``, each with its source and the answer judged right)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

import unetviz
from unetviz.core.errors import UnetvizError
from unetviz.diagnose import Diagnosis, why
from unetviz.render.why import render_why

DATA = Path(__file__).parent / "data" / "why" / "real_errors.json"


@pytest.fixture(autouse=True, scope="module")
def _own_cache(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The index is built into a folder of the tests' own (the CLI processes inherit it), not the user's cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UNETVIZ_CACHE_DIR", str(tmp_path_factory.mktemp("why-cache")))
        yield
REAL: list[dict[str, Any]] = json.loads(DATA.read_text(encoding="utf-8"))["errors"]
WRONG = {"unet-nested-3": "no model unetviz knows reproduces 74 vs 75 within the size search's budget of traces:"
                          " it answers 'no match' with the divisibility note, where a known model (ADM's pooling) could"
                          " have been named"}
"""Real errors ``why`` answers wrongly: listed, never special-cased (strict xfail: a fix shows up)."""

SD15 = unetviz.PRESETS["sd15"].config
SD21 = unetviz.PRESETS["sd21"].config
SDXL = unetviz.PRESETS["sdxl"].config


def _upstream(module: str, name: str) -> Any:
    """An upstream class (diffusers', CompVis ldm's), untyped as their packages are."""
    import importlib

    return getattr(importlib.import_module(module), name)


def _error(call: Any) -> str:
    """The message of the exception the real code raises."""
    with pytest.raises(Exception) as info:  # whatever the upstream code raises: its text is what is read
        call()
    return str(info.value)


def _models(d: Diagnosis, *sides: str) -> set[str]:
    return {m for c in d.candidates if not sides or c.side in sides for m in (c.model, *c.also)}


def _nest(path: str, module: torch.nn.Module) -> torch.nn.Module:
    """``module`` registered at the dotted ``path`` of a new root (so state_dict keys carry the model's real
    path: ``down_blocks.0.attentions.0.``, ``model.diffusion_model.input_blocks.1.1.``)."""
    root = torch.nn.Module()
    node = root
    parts = path.split(".")
    for part in parts[:-1]:
        child = torch.nn.Module()
        node.add_module(part, child)
        node = child
    node.add_module(parts[-1], module)
    return root


# ---- matmul -------------------------------------------------------------------------------------------------------
def test_sdxl_context_into_sd15_cross_attention() -> None:
    Attention = _upstream("diffusers.models.attention_processor", "Attention")
    width = SD15["block_out_channels"][0]
    attn = Attention(query_dim=width, cross_attention_dim=SD15["cross_attention_dim"], heads=8, dim_head=width // 8)
    text = _error(lambda: attn(torch.zeros(1, 4, width), encoder_hidden_states=torch.zeros(1, 77,
                                                                                            SDXL["cross_attention_dim"])))
    assert "77x2048 and 768x320" in text
    d = why(text)
    assert d.matched and d.kind == "matmul"
    top = d.candidates[0]
    assert {"sd15", "sd15-ldm"} <= {top.model, *top.also}
    assert top.layer.endswith("attn2.to_k") and top.original.startswith("input_blocks.1.1.")
    assert top.block_id == "IN01" and top.widths["in"] == 768 and top.widths["out"] == 320
    assert d.inputs and d.inputs[0].startswith("SDXL text context")
    assert d.numbers == {"rows": 77, "width": 2048, "in": 768, "out": 320}


def test_base_added_conditioning_into_refiner() -> None:
    TimestepEmbedding = _upstream("diffusers.models.embeddings", "TimestepEmbedding")
    refiner = unetviz.weights("sdxl-sgm")  # a preset; the refiner is a declared variant: its widths are computed
    assert refiner.tensors["label_emb.0.0.weight"] == (1280, 2816)
    text = _error(lambda: TimestepEmbedding(2560, 384 * 4)(torch.zeros(2, 2816)))
    d = why(text)
    assert d.matched and d.candidates[0].model == "sdxl-refiner"
    assert d.candidates[0].layer == "add_embedding.linear_1" and d.candidates[0].original == "label_emb.0.0"
    assert "SDXL base added conditioning" in d.inputs[0] and "refiner" in d.cause


def test_unknown_linear_is_no_match_and_exit_1() -> None:
    text = _error(lambda: torch.nn.Linear(4096, 1152)(torch.zeros(154, 2048)))
    d = why(text)
    assert not d.matched and not d.candidates
    run = _cli(text)
    assert run.returncode == 1 and "no match" in run.stdout


# ---- conv ---------------------------------------------------------------------------------------------------------
def test_inpainting_input_into_four_channel_unet() -> None:
    conv_in = torch.nn.Conv2d(SD15["in_channels"], SD15["block_out_channels"][0], 3, padding=1)
    text = _error(lambda: conv_in(torch.zeros(2, 9, 64, 64)))
    d = why(text)
    assert d.matched and d.kind == "conv"
    top = d.candidates[0]
    assert top.layer == "conv_in" and top.original == "input_blocks.0.0" and "sd15" in {top.model, *top.also}
    assert any(i.startswith("sd15-inpainting") for i in d.inputs)
    assert "in_channels is 9" in d.fix


def test_rgba_image_into_the_vae_ranks_the_vae_first() -> None:
    AutoencoderKL = _upstream("diffusers", "AutoencoderKL")
    vae = AutoencoderKL(block_out_channels=(128,), down_block_types=("DownEncoderBlock2D",),
                        up_block_types=("UpDecoderBlock2D",), layers_per_block=1)  # its first conv as SD's VAE has
    text = _error(lambda: vae.encoder.conv_in(torch.zeros(1, 4, 352, 512)))
    d = why(text)
    assert d.candidates[0].model == "SD VAE" and d.candidates[0].layer == "encoder.conv_in"
    assert d.inputs[0].startswith("RGBA image") and "ddpm-cifar10" in _models(d)


def test_narrowed_to_one_model() -> None:
    text = ("Given groups=1, weight of size [320, 4, 3, 3], expected input[2, 8, 64, 64] to have 4 channels, but got"
            " 8 channels instead")
    d = why(text, model="sdxl")
    assert d.scope == "sdxl" and _models(d) == {"sdxl"}
    assert any(i.startswith("sd15-pix2pix") for i in why(text).inputs)


def test_narrowed_search_still_names_what_made_the_other_side() -> None:
    text = ("Given groups=1, weight of size [320, 4, 3, 3], expected input[2, 9, 64, 64] to have 4 channels, but got"
            " 9 channels instead")
    d = why(text, model="sd15")
    assert _models(d) == {"sd15"} and any(i.startswith("sd15-inpainting") for i in d.inputs)


def test_a_conv_message_with_its_weight_cut_off() -> None:
    conv_in = torch.nn.Conv2d(SD15["in_channels"], SD15["block_out_channels"][0], 3, padding=1)
    full = _error(lambda: conv_in(torch.zeros(2, 9, 64, 64)))
    cut = full[full.index("expected input"):]  # as pasted from the end of a long line
    d = why(cut)
    assert d.matched and d.kind == "conv" and not d.numbers["weight"]
    assert d.candidates[0].layer == "conv_in" and any(i.startswith("sd15-inpainting") for i in d.inputs)
    assert "in_channels is 9" in d.fix


# ---- state_dict: both namings, prefixes, LoRA keys, missing/unexpected keys ------------------------------------------
def test_sd2_checkpoint_into_sd1_config_original_naming() -> None:
    SpatialTransformer = _upstream("ldm.modules.attention", "SpatialTransformer")
    path = "model.diffusion_model.input_blocks.1.1"
    sd1 = _nest(path, SpatialTransformer(320, 8, 40, depth=1, context_dim=768, use_linear=False))
    sd2 = _nest(path, SpatialTransformer(320, 5, 64, depth=1, context_dim=1024, use_linear=True))
    text = _error(lambda: sd1.load_state_dict(sd2.state_dict()))
    d = why(text)
    assert d.matched and d.kind == "state_size"
    checkpoint = next(c for c in d.candidates if c.side == "checkpoint")
    model = next(c for c in d.candidates if c.side == "model")
    assert "sd21" in {checkpoint.model, *checkpoint.also} and "sd15" in {model.model, *model.also}
    assert checkpoint.original.startswith("input_blocks.1.1.") and checkpoint.block_id == "IN01"
    assert checkpoint.layer.startswith("down_blocks.0.attentions.0.")


def test_sd1_controlnet_into_sd2_diffusers_naming() -> None:
    Transformer2DModel = _upstream("diffusers", "Transformer2DModel")
    path = "down_blocks.0.attentions.0"
    sd1 = _nest(path, Transformer2DModel(num_attention_heads=8, attention_head_dim=40, in_channels=320,
                                         cross_attention_dim=768))
    sd2 = _nest(path, Transformer2DModel(num_attention_heads=5, attention_head_dim=64, in_channels=320,
                                         cross_attention_dim=1024, use_linear_projection=True))
    text = _error(lambda: sd2.load_state_dict(sd1.state_dict()))
    d = why(text)
    sides = {c.side: {c.model, *c.also} for c in d.candidates}
    assert "sd15" in sides["checkpoint"] and "controlnet-sd15" in sides["checkpoint"] and "sd21" in sides["model"]


def _lora(base: torch.nn.Module, rank: int) -> torch.nn.Module:
    """peft's LoRA factors for ``base``: A maps its input to ``rank`` with the base's own kind of layer, B back."""
    pair = torch.nn.Module()
    if isinstance(base, torch.nn.Conv2d):
        pair.add_module("lora_A", torch.nn.ModuleDict({"default_0": torch.nn.Conv2d(base.in_channels, rank, 1,
                                                                                    bias=False)}))
        pair.add_module("lora_B", torch.nn.ModuleDict({"default_0": torch.nn.Conv2d(rank, base.out_channels, 1,
                                                                                    bias=False)}))
    else:
        assert isinstance(base, torch.nn.Linear)
        pair.add_module("lora_A", torch.nn.ModuleDict({"default_0": torch.nn.Linear(base.in_features, rank,
                                                                                    bias=False)}))
        pair.add_module("lora_B", torch.nn.ModuleDict({"default_0": torch.nn.Linear(rank, base.out_features,
                                                                                    bias=False)}))
    return pair


def test_sd15_lora_into_sdxl() -> None:
    Transformer2DModel = _upstream("diffusers", "Transformer2DModel")
    sd1 = Transformer2DModel(num_attention_heads=8, attention_head_dim=80, in_channels=640, cross_attention_dim=768)
    xl = Transformer2DModel(num_attention_heads=10, attention_head_dim=64, in_channels=640,
                            cross_attention_dim=2048, use_linear_projection=True)
    path = "down_blocks.1.attentions.0.proj_in"
    text = _error(lambda: _nest(path, _lora(xl.proj_in, 32)).load_state_dict(
        _nest(path, _lora(sd1.proj_in, 32)).state_dict()))
    assert "lora_A.default_0.weight" in text
    d = why(text)
    sides = {c.side: {c.model, *c.also} for c in d.candidates}
    assert "sd15" in sides["checkpoint"] and "sdxl" in sides["model"]
    assert "LoRA" in d.cause


def test_kohya_lora_keys() -> None:
    SpatialTransformer = _upstream("ldm.modules.attention", "SpatialTransformer")

    def kohya(context: int) -> torch.nn.Module:
        attn2 = SpatialTransformer(640, 10, 64, depth=1, context_dim=context, use_linear=True)
        to_k = attn2.transformer_blocks[0].attn2.to_k
        root = torch.nn.Module()
        pair = torch.nn.Module()
        pair.add_module("lora_down", torch.nn.Linear(to_k.in_features, 8, bias=False))
        pair.add_module("lora_up", torch.nn.Linear(8, to_k.out_features, bias=False))
        root.add_module("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", pair)
        return root

    text = _error(lambda: kohya(2048).load_state_dict(kohya(768).state_dict()))
    d = why(text)
    sides = {c.side: {c.model, *c.also} for c in d.candidates}
    assert "sd15" in sides["checkpoint"] and "sdxl" in sides["model"]
    model = next(c for c in d.candidates if c.side == "model")
    assert model.block_id == "IN04"


def test_unexpected_keys_belong_to_sdxl() -> None:
    TimestepEmbedding = _upstream("diffusers.models.embeddings", "TimestepEmbedding")
    xl = torch.nn.Module()
    xl.add_module("time_embedding", TimestepEmbedding(320, 1280))
    xl.add_module("add_embedding", TimestepEmbedding(SDXL["projection_class_embeddings_input_dim"], 1280))
    sd1 = torch.nn.Module()
    sd1.add_module("time_embedding", TimestepEmbedding(320, 1280))
    text = _error(lambda: sd1.load_state_dict(xl.state_dict()))
    d = why(text)
    assert d.kind == "state_keys" and d.matched
    checkpoint = next(c for c in d.candidates if c.side == "checkpoint")
    assert "sdxl" in {checkpoint.model, *checkpoint.also} and checkpoint.widths == {"keys": 4, "of": 4}


# ---- sizes: segmentation U-Nets, computed with the tracer ---------------------------------------------------------
def test_monai_unet_size_not_divisible() -> None:
    from unetviz.live.upstream import monai

    config = dict(unetviz.PRESETS["monai-spleen-ct"].config)
    net = monai.build(None, {k: v for k, v in config.items() if k != "family"})
    text = _error(lambda: net(torch.empty(1, 1, 96, 96, 88, device="meta")))
    d = why(text, model="monai-spleen-ct")
    assert d.matched and d.kind == "concat"
    top = d.candidates[0]
    assert top.widths["multiple"] == 16 and top.widths["works"] == [80, 96]
    assert "monai-spleen-ct" in _models(why(text))


def test_nnunet_needs_multiples_of_32() -> None:
    from unetviz.live.upstream import nnunet

    net = nnunet.build(None, dict(unetviz.PRESETS["nnunet-lung-3d-fullres"].config))
    text = _error(lambda: net(torch.empty(1, 1, 80, 192, 150, device="meta")))
    d = why(text, model="nnunet-lung-3d-fullres")
    assert d.matched and d.candidates[0].widths["multiple"] == 32
    assert "multiple of 32" in d.fix and d.candidates[0].widths["works"] == [128, 160]


def test_batched_prompts_of_different_lengths() -> None:
    text = _error(lambda: torch.cat([torch.zeros(1, 77, 768), torch.zeros(1, 154, 768)]))
    d = why(text)
    assert d.matched and d.candidates[0].side == "input" and "chunks" in d.cause


# ---- diffusers' own messages ----------------------------------------------------------------------------------------
def test_sdxl_unet_without_added_cond_kwargs() -> None:
    tiny = _upstream("diffusers", "UNet2DConditionModel")(
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, layers_per_block=1,
        addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=80,
        attention_head_dim=8, norm_num_groups=8)
    text = _error(lambda: tiny(torch.zeros(1, 4, 8, 8), 1, encoder_hidden_states=torch.zeros(1, 7, 32),
                               added_cond_kwargs={}))
    d = why(text)
    assert d.kind == "added_cond" and {"sdxl", "controlnet-sdxl"} <= _models(d)
    assert "added_cond_kwargs" in d.fix


# ---- not an error, JSON, rendering, the cache ------------------------------------------------------------------------
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unetviz", "why", *args], capture_output=True, text=True,
                          check=False, timeout=120)


def test_text_that_is_no_error() -> None:
    with pytest.raises(UnetvizError, match="reads as no error message"):
        why("the quick brown fox")
    run = _cli("the quick brown fox")
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and run.stdout == ""


def test_json_schema() -> None:
    run = _cli("mat1 and mat2 shapes cannot be multiplied (77x2048 and 768x320)", "-f", "json")
    assert run.returncode == 0
    data = json.loads(run.stdout)
    assert data["schema"] == "unetviz.why/1" and data["matched"] is True
    assert data["numbers"] == {"rows": 77, "width": 2048, "in": 768, "out": 320}
    top = data["candidates"][0]
    assert top["original"].startswith("input_blocks.1.1.") and top["block_id"] == "IN01"
    assert data["cause"] and data["fix"]


@pytest.mark.parametrize("width", [80, 120])
def test_rich_fits_and_keeps_every_path(width: int) -> None:
    d = why("size mismatch for model.diffusion_model.output_blocks.4.1.transformer_blocks.0.attn2.to_k.weight: copying"
            " a param with shape torch.Size([1280, 768]) from checkpoint, the shape in current model is"
            " torch.Size([1280, 1024]).")
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(render_why(d, width))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    joined = "".join(line.strip() for line in lines)
    for c in d.candidates:
        assert c.layer in joined and c.original in joined


def test_cache_is_keyed_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import version

    from unetviz.diagnose import cache, index

    monkeypatch.setenv("UNETVIZ_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(index, "_MEMO", {})
    monkeypatch.setattr(index, "_READ", [])
    path = cache.path("layers")
    assert path is not None and path.parent == tmp_path
    assert path.name == f"why-layers-{version('unetviz')}-{cache.digest()}.json"
    stale = tmp_path / "why-layers-0.0.1-0123456789abcdef.json"
    stale.write_text("{}", encoding="utf-8")
    path.write_text("{not json", encoding="utf-8")  # a broken file is rebuilt, never trusted
    first = index.facts("sd15")
    assert json.loads(path.read_text(encoding="utf-8"))["sd15"]["linears"] == first["linears"]
    assert not stale.exists()  # another version's file is removed, never read
    monkeypatch.setattr(index, "_MEMO", {})
    monkeypatch.setattr(index, "_READ", [])
    assert index.facts("sd15") == first


# ---- real errors from public issue threads -----------------------------------------------------------------------
def judge(expect: dict[str, Any], d: Diagnosis) -> list[str]:
    """How an answer differs from the one judged right (empty: right)."""
    bad = [] if d.matched == expect["matched"] else [f"matched {d.matched}"]
    if not expect["matched"] or bad:
        return bad
    if d.kind != expect.get("kind", d.kind):
        bad.append(f"kind {d.kind}")
    want = set(expect.get("layer_models", ()))
    layers = [c for c in d.candidates if c.side in ("layer", "fails")]
    if "layer_models" in expect and not want and layers:
        bad.append(f"names a layer of {layers[0].model}")
    if want:  # a layer error's first candidate, a size error's candidates (each reproduces the numbers)
        named = {layers[0].model, *layers[0].also} if layers and layers[0].side == "layer" else _models(d, "fails")
        if not named & want:
            bad.append(f"layer models {sorted(named)}")
    for side in ("checkpoint", "model"):
        if f"{side}_models" in expect and not _models(d, side) & set(expect[f"{side}_models"]):
            bad.append(f"{side} {sorted(_models(d, side))}")
    text = json.dumps(d.to_json())
    bad += [f"no mention of {m}" for m in expect.get("mentions", ()) if m not in text]
    return bad


def test_real_errors_have_sources() -> None:
    assert len(REAL) >= 20 and sum(1 for e in REAL if e.get("held_out")) >= 10
    for e in REAL:
        assert e["source"]["url"].startswith(f"https://github.com/{e['source']['repository']}/")
        assert e["text"] and e["judgement"] and "matched" in e["expect"]


@pytest.mark.parametrize("entry", [pytest.param(e, id=e["id"], marks=pytest.mark.xfail(reason=WRONG[e["id"]],
                                                                                       strict=True))
                                   if e["id"] in WRONG else pytest.param(e, id=e["id"]) for e in REAL])
def test_real_error(entry: dict[str, Any]) -> None:
    assert judge(entry["expect"], why(entry["text"])) == []
