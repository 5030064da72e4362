"""ControlNetModel: the symbolic trace, its residual map onto a U-Net, and the real diffusers model on meta."""

from __future__ import annotations

import io
import json
from typing import Any

import fuzzkit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

import unetviz
from unetviz.analysis.controlnet_pair import pair, pair_sources
from unetviz.families.diffusers.embed import UNSUPPORTED
from unetviz.render.pair import pair_dict, pair_lines, pair_text, render_pair

# diffusers/controlnet-canny-sdxl-1.0 config.json (the SDXL ControlNet the mismatch test pairs with sd15)
SDXL_CONTROLNET: dict[str, Any] = {
    "_class_name": "ControlNetModel", "act_fn": "silu", "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64, "addition_time_embed_dim": 256, "attention_head_dim": [5, 10, 20],
    "block_out_channels": [320, 640, 1280], "class_embed_type": None, "conditioning_channels": 3,
    "conditioning_embedding_out_channels": [16, 32, 96, 256], "controlnet_conditioning_channel_order": "rgb",
    "cross_attention_dim": 2048, "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "downsample_padding": 1, "encoder_hid_dim": None, "encoder_hid_dim_type": None, "flip_sin_to_cos": True,
    "freq_shift": 0, "global_pool_conditions": False, "in_channels": 4, "layers_per_block": 2,
    "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 32, "num_attention_heads": None,
    "num_class_embeds": None, "only_cross_attention": False, "projection_class_embeddings_input_dim": 2816,
    "resnet_time_scale_shift": "default", "transformer_layers_per_block": [1, 2, 10], "upcast_attention": None,
    "use_linear_projection": True,
}
SD15_PARAMS = 361_279_120  # measured on diffusers 0.42.1 (meta device): equal to the trace's
SDXL_PARAMS = 1_251_014_160


def test_sd15_controlnet_trace() -> None:
    t = unetviz.trace("controlnet-sd15")
    assert t.error is None and t.params == SD15_PARAMS and len(t.manifest) == 340
    hint = next(x for x in t.layers if x.path == "controlnet_cond_embedding.conv_in")
    assert (hint.in_channels, hint.in_size) == (3, (512, 512))  # the 512x512 image beside the 64x64 latent
    out = next(x for x in t.layers if x.path == "controlnet_cond_embedding.conv_out")
    assert (out.out_channels, out.out_size) == (320, (64, 64))
    zero = [x for x in t.layers if x.path.startswith("controlnet_down_blocks.")]
    assert len(zero) == 12 and all(x.kernel == (1, 1) for x in zero)
    assert (t.out_channels, t.out_size) == (320, (64, 64))  # the first residual: the tuple's first tensor


def test_residual_map_sd15() -> None:
    p = pair(unetviz.trace("controlnet-sd15"), unetviz.trace("sd15"))
    assert p.ok and p.first_mismatch is None
    downs = [x for x in p.landings if x.index is not None]
    assert len(downs) == 12 and [x.target for x in downs] == [f"skip #{i}" for i in range(12)]
    assert [x.channels for x in downs] == [320] * 4 + [640] * 3 + [1280] * 5
    assert [x.size for x in downs] == [(64, 64)] * 3 + [(32, 32)] * 3 + [(16, 16)] * 3 + [(8, 8)] * 3
    skips = unetviz.trace("sd15").skips
    assert [(x.target_channels, x.target_size) for x in downs] == [(s.channels, s.size) for s in skips]
    mid = p.landings[-1]
    assert (mid.residual, mid.target, mid.channels, mid.size, mid.ok) == ("controlnet_mid_block",
                                                                           "mid_block output", 1280, (8, 8), True)


def test_sdxl_controlnet_on_sd15_is_a_mismatch() -> None:
    p = pair_sources(SDXL_CONTROLNET, "sd15")
    assert not p.ok and p.first_mismatch is not None
    assert p.first_mismatch.target == "skip #9" and p.first_mismatch.channels is None  # 9 residuals, 12 skips
    assert "does not fit" in p.message and "skip #9" in p.message
    assert any("2048" in n and "768" in n for n in p.notes)  # and the text contexts differ
    assert pair_sources(SDXL_CONTROLNET, "sdxl").ok  # where it belongs, at SDXL's 128x128


def test_pair_renderers() -> None:
    p = pair_sources("controlnet-sd15", "sd15")
    text = pair_text(p, 120)
    assert "controlnet_down_blocks.11" in text and "skip #11" in text and "fits sd15" in text
    assert all(len(line) <= 80 for line, _ in pair_lines(p, 80)[1:-1])
    data = json.loads(json.dumps(pair_dict(p)))
    assert data["ok"] and len(data["residuals"]) == 13 and data["residuals"][3]["target_size"] == [32, 32]
    console = Console(width=100, record=True, file=io.StringIO())  # the terminal shows the plain text's lines
    console.print(render_pair(p, 100))
    assert console.export_text() == pair_text(p, 100)


def test_pair_rejects_wrong_models() -> None:
    with pytest.raises(unetviz.UnetvizError, match="not a ControlNetModel"):
        pair(unetviz.trace("sd15"), unetviz.trace("sd15"))
    with pytest.raises(unetviz.UnetvizError, match="no skip stack"):
        pair(unetviz.trace("controlnet-sd15"), unetviz.trace("controlnet-sd15"))


@pytest.mark.parametrize("change, message", [
    ({"mid_block_type": None}, "mid_block_type: got None"),
    ({"encoder_hid_dim": 8}, UNSUPPORTED),
    ({"block_out_channels": [320, 640]}, "block_out_channels has 2 entries but down_block_types has 4"),
    ({"addition_embed_type": "text_time"}, "projection_class_embeddings_input_dim"),
    ({"attention_head_dim": [8, 8]}, "attention_head_dim has 2 entries"),
    ({"conditioning_embedding_out_channels": None}, "conditioning_embedding_out_channels"),
])
def test_config_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(unetviz.UnetvizError, match=message):
        unetviz.trace({"_class_name": "ControlNetModel", **change})


NO_TRANSFORMER_LAYERS: dict[str, Any] = {
    "_class_name": "ControlNetModel", "norm_num_groups": 2, "block_out_channels": [2],
    "down_block_types": ["CrossAttnDownBlock2D"], "layers_per_block": 1, "cross_attention_dim": 16,
    "attention_head_dim": 4, "conditioning_embedding_out_channels": [4, 4, 4, 4],
    "transformer_layers_per_block": [0, 0], "use_linear_projection": True,
}
"""4 heads on 2 channels (a head size of 0) in Transformer2DModels with no transformer blocks: no Attention is built."""


def test_heads_wider_than_the_channels_need_transformer_layers_to_fail() -> None:
    t = unetviz.trace(NO_TRANSFORMER_LAYERS, size=(5, 6))
    assert t.error is None and not any(".transformer_blocks." in x.path for x in t.layers)
    assert [u.path for u in t.units if u.kind == "transformer"] == ["down_blocks.0.attentions.0",
                                                                      "mid_block.attentions.0"]
    # linear projections reshape to the input's channels; a 1x1 conv proj_out of 0 channels fails the residual add
    conv = unetviz.trace({**NO_TRANSFORMER_LAYERS, "use_linear_projection": False}, size=(5, 6))
    assert conv.error is not None and conv.error.at == "down_blocks.0.attentions.0"
    with pytest.raises(unetviz.UnetvizError, match="4 heads on the 2 channels of mid_block"):
        unetviz.trace({**NO_TRANSFORMER_LAYERS, "transformer_layers_per_block": [0, 1]})


def test_hint_that_does_not_reach_the_latent_size_fails() -> None:
    t = unetviz.trace({**SDXL_CONTROLNET, "conditioning_embedding_out_channels": [16, 32]})
    assert t.error is not None and t.error.at == "" and "sample + controlnet_cond" in t.error.message
    assert len(t.manifest) == len(unetviz.weights({**SDXL_CONTROLNET,
                                                   "conditioning_embedding_out_channels": [16, 32]}).manifest)


# ---- the real model ---------------------------------------------------------------------------------
def _real_manifest(config: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream.controlnet import build

    model = build("ControlNetModel", {k: v for k, v in config.items() if not k.startswith("_")})
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("name", ["controlnet-sd15", "sdxl-controlnet"])
def test_manifest_and_params_equal_diffusers(name: str) -> None:
    config = SDXL_CONTROLNET if name == "sdxl-controlnet" else unetviz.api.resolve(name)[0]
    real = _real_manifest(config)
    ours = unetviz.weights(config)
    assert list(ours.manifest) == real
    assert ours.params == (SDXL_PARAMS if name == "sdxl-controlnet" else SD15_PARAMS)


@pytest.mark.parametrize("size", [None, "40x48"])
def test_verify_sd15_controlnet(size: str | None) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    report = unetviz.verify("controlnet-sd15", size)
    assert report.ok, report.disagreements[:5]
    assert report.counts["layers"] == 191 and report.params_real == SD15_PARAMS


def test_verify_sdxl_controlnet_odd_size() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    report = unetviz.verify(SDXL_CONTROLNET, 33)
    assert report.ok, report.disagreements[:5]


def test_verify_heads_wider_than_the_channels_without_transformer_layers() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    for projection in (True, False):  # runs, or fails where the real proj_out's residual add fails
        report = unetviz.verify({**NO_TRANSFORMER_LAYERS, "use_linear_projection": projection}, (5, 6))
        assert report.ok and (report.error_real is None) == projection, report.disagreements[:5]


def test_real_unet_takes_the_residuals_the_map_predicts() -> None:
    """The witness: sd15's real forward accepts controlnet-sd15's residual shapes and fails on the SDXL ones."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream.diffusers import build

    config = unetviz.api.resolve("sd15")[0]
    unet = build("UNet2DConditionModel", {k: v for k, v in config.items() if not k.startswith("_")})
    meta = torch.device("meta")

    def run(p: Any) -> None:
        downs = [torch.empty(2, x.channels, *x.size, device=meta) for x in p.landings if x.index is not None
                 and x.channels is not None]
        mid = p.landings[-1]
        unet(torch.empty(2, 4, 64, 64, device=meta), torch.ones(2, device=meta),
             encoder_hidden_states=torch.empty(2, 77, 768, device=meta), down_block_additional_residuals=downs,
             mid_block_additional_residual=torch.empty(2, mid.channels, *mid.size, device=meta))

    run(pair_sources("controlnet-sd15", "sd15"))
    with pytest.raises(RuntimeError):
        run(pair_sources(SDXL_CONTROLNET, "sd15"))


# ---- differential: generated ControlNet configs against diffusers -------------------------------------
@st.composite
def controlnet_configs(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[int, int]]:
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([2, 4]))
    hint = st.sampled_from([4, 8])
    cfg: dict[str, Any] = {
        "_class_name": "ControlNetModel", "norm_num_groups": groups,
        "block_out_channels": [draw(st.sampled_from([groups, 2 * groups, 3 * groups])) for _ in range(n)],
        "down_block_types": draw(st.lists(st.sampled_from(["DownBlock2D", "CrossAttnDownBlock2D", "AttnDownBlock2D",
                                                           "ResnetDownsampleBlock2D", "UNetResCrossAttnDownBlock2D"]),
                                          min_size=n, max_size=n)),
        "layers_per_block": draw(st.sampled_from([0, 1, 1, 2, 3])),
        "cross_attention_dim": draw(st.sampled_from([8, 16])),
        "attention_head_dim": draw(st.sampled_from([1, 2, 4])),
        # four entries (three halvings) meet the latent; hypothesis would mostly draw one, which fails at the add
        "conditioning_embedding_out_channels": draw(st.one_of(st.lists(hint, min_size=4, max_size=4),
                                                              st.lists(hint, min_size=1, max_size=4))),
        "conditioning_channels": draw(st.integers(1, 3)), "in_channels": draw(st.integers(1, 4)),
    }
    for key, values in (("mid_block_type", st.sampled_from(["UNetMidBlock2DCrossAttn", "UNetMidBlock2D", None])),
                        ("transformer_layers_per_block", st.sampled_from([1, 2, [1] * n, [0] * (n + 1)])),
                        ("use_linear_projection", st.booleans()), ("global_pool_conditions", st.booleans()),
                        ("class_embed_type", st.sampled_from([None, "timestep", "identity", "bogus"])),
                        ("num_class_embeds", st.sampled_from([None, 3])),
                        ("controlnet_conditioning_channel_order", st.sampled_from(["rgb", "bgr", "gbr"])),
                        ("resnet_time_scale_shift", st.sampled_from(["default", "scale_shift"])),
                        ("norm_num_groups", st.sampled_from([groups, 3])), ("act_fn", st.sampled_from(["silu", "x"])),
                        ("num_attention_heads", st.sampled_from([1, 2, [1] * n, [2] * (n + 1)])),
                        ("only_cross_attention", st.sampled_from([True, False, [True] * n])),
                        ("downsample_padding", st.sampled_from([0, 2])), ("upcast_attention", st.booleans()),
                        ("mid_block_scale_factor", st.sampled_from([0.5, 2]))):
        if draw(st.booleans()):
            cfg[key] = draw(values)
    if draw(st.integers(0, 3)) == 3:
        cfg.update(addition_embed_type="text_time", addition_time_embed_dim=draw(st.sampled_from([None, 2, 4])),
                   projection_class_embeddings_input_dim=draw(st.sampled_from([None, 16, 30])))
    elif draw(st.integers(0, 4)) == 4:  # class labels projected from a vector (the adapter passes its width)
        cfg.update(class_embed_type=draw(st.sampled_from(["projection", "simple_projection"])),
                   projection_class_embeddings_input_dim=draw(st.sampled_from([None, 6])))
    return cfg, (draw(st.integers(1, 16)), draw(st.integers(1, 16)))


def _check(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    """Both reject the config, or both accept it and verify finds no disagreement ("unsupported" passes)."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream.controlnet import build

    fuzzkit.check(cfg["_class_name"], build, cfg, size, unsupported=True)


COMMON: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=8, derandomize=True, **COMMON)
@given(controlnet_configs())
def test_generated_controlnets_agree(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    _check(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **COMMON)
@given(controlnet_configs())
def test_generated_controlnets_agree_long(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    _check(*case)


def test_the_cli_pairs_a_controlnet_with_a_unet() -> None:
    from conftest import cli

    r = cli("table", "controlnet-sd15", "--pair", "sd15")
    assert r.returncode == 0 and "controlnet_down_blocks.6    640  16x16  skip #6" in r.stdout, r.stdout
    j = cli("table", "controlnet-sd15", "--pair", "sdxl", "-f", "json")
    assert j.returncode == 1 and '"ok": false' in j.stdout
