"""The diffusers family against the seeds' public tables and the real diffusers models on meta."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import unetviz
from unetviz.api import resolve
from unetviz.core.quantities import is_free

DIFFUSERS_PRESETS = ("sd15", "sd21", "sdxl", "ddpm-cifar10", "unet2d-attn-64")


def conv1_inputs(trace: unetviz.Trace, block: int) -> list[int]:
    prefix = f"up_blocks.{block}.resnets."
    return [x.in_channels for x in trace.layers if x.path.startswith(prefix) and x.path.endswith(".conv1")]


def test_seed_000_up_block_conv1_inputs() -> None:
    # the learner's question: why 1024, 1024, then 768? (seed 000)
    t = unetviz.trace("unet2d-attn-64")
    rows = [conv1_inputs(t, i) for i in range(4)]
    assert rows == [[1024, 1024, 768], [768, 512, 384], [384, 256, 192], [192, 128, 128]]
    # 3 resnets per up block although layers_per_block is 2: one more pop than the down block pushed
    assert [len(r) for r in rows] == [3, 3, 3, 3]


def test_seed_001_sd15_skip_stack_and_up_inputs() -> None:
    t = unetviz.trace("sd15")
    assert [s.channels for s in t.skips] == [320, 320, 320, 320, 640, 640, 640, 1280, 1280, 1280, 1280, 1280]
    assert [s.size[0] for s in t.skips if s.size] == [64, 64, 64, 32, 32, 32, 16, 16, 16, 8, 8, 8]
    producers = [s.unit for s in t.skips]
    assert producers[0] == "conv_in"
    assert producers[3] == "down_blocks.0.downsamplers.0" and producers[6] == "down_blocks.1.downsamplers.0"
    assert producers[10:] == ["down_blocks.3.resnets.0", "down_blocks.3.resnets.1"]
    assert [conv1_inputs(t, i) for i in range(4)] == [[2560, 2560, 2560], [2560, 2560, 1920],
                                                       [1920, 1280, 960], [960, 640, 640]]
    # skip #6 is consumed by up_blocks.1.resnets.2: the 1920 = 1280 + 640 of the mission statement
    c = next(c for c in t.concats if c.consumer == "up_blocks.1.resnets.2")
    assert [op.channels for op in c.inputs] == [1280, 640] and c.inputs[1].skip == 6
    assert t.skips[6].to == "up_blocks.1.resnets.2"
    assert all(s.to is not None for s in t.skips)


def test_heads_times_head_dim_is_explicit() -> None:
    notes = {u.path: u.note for u in unetviz.trace("sd15").units}
    assert notes["down_blocks.0.attentions.0"].startswith("8 heads x 40 = 320")
    assert notes["up_blocks.1.attentions.0"].startswith("8 heads x 160 = 1280")
    sd21 = {u.path: u.note for u in unetviz.trace("sd21").units}
    assert sd21["down_blocks.0.attentions.0"].startswith("5 heads x 64 = 320")


def test_cross_attention_keys_take_the_context_width() -> None:
    for preset, width in (("sd15", 768), ("sd21", 1024), ("sdxl", 2048)):
        t = unetviz.trace(preset)
        to_k = [x for x in t.layers if x.path.endswith("attn2.to_k")]
        assert to_k and {x.in_channels for x in to_k} == {width}
        assert {x.tokens for x in to_k} == {77}


def test_sd15_at_60x60_forwards_upsample_size() -> None:
    t = unetviz.trace("sd15", size=60)
    assert t.error is None and t.out_size == (60, 60)
    ups = [u for u in t.units if u.kind == "upsample"]
    assert [u.out_size for u in ups] == [(15, 15), (30, 30), (60, 60)]
    assert "upsample_size" in ups[0].note


def test_unet2d_fails_where_the_real_model_fails() -> None:
    t = unetviz.trace("ddpm-cifar10", size=31)
    assert t.error is not None and t.out_channels is None
    assert t.error.at == "up_blocks.1.resnets.0"
    assert "6x6" in t.error.message and "7x7" in t.error.message
    assert t.layers, "the trace up to the failure is kept"


def test_non_square_sizes() -> None:
    t = unetviz.trace("sdxl", size="96x128")
    assert t.in_size == (96, 128) and t.out_size == (96, 128)
    assert {s.size for s in t.skips} == {(96, 128), (48, 64), (24, 32)}


def test_downsample_padding_zero_pads_asymmetrically() -> None:
    t = unetviz.trace("ddpm-cifar10")
    conv = next(x for x in t.layers if x.path == "down_blocks.0.downsamplers.0.conv")
    assert conv.in_size == (33, 33) and conv.out_size == (16, 16) and conv.padding == (0, 0)


@functools.cache
def real_manifest(preset: str) -> list[tuple[str, list[int]]]:
    torch = pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream.diffusers import build

    config, _ = resolve(preset)
    model = build(config["_class_name"], {k: v for k, v in config.items() if not k.startswith("_")})
    assert next(model.parameters()).device == torch.device("meta")
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("preset", DIFFUSERS_PRESETS)
def test_manifest_equals_real_state_dict(preset: str) -> None:
    ours = unetviz.trace(preset)
    real = real_manifest(preset)
    assert [(k, list(s)) for k, s in ours.manifest] == real
    assert ours.params == sum(_numel(s) for _, s in real)


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@pytest.mark.parametrize("config, message", [
    ({"_class_name": "UNet2DModel", "block_out_channels": [32, 64, 64]}, "block_out_channels has 3 entries but"
                                                                          " down_block_types has 4"),
    ({"_class_name": "UNet2DModel", "down_block_types": ["DownBlock2D", "Bogus2D"], "up_block_types":
      ["UpBlock2D", "UpBlock2D"], "block_out_channels": [32, 64]}, "down_block_types: unknown block type 'Bogus2D'"),
    ({"_class_name": "UNet2DModel", "block_out_channels": [48, 64, 64, 64]}, "norm_num_groups: got 32; it must"
                                                                              " divide the 48 channels"),
    ({"_class_name": "UNet2DModel", "layers_per_block": 2.0},
     "layers_per_block: got 2.0; allowed: an integer from -1,048,576 to 1,048,576"),
    ({"_class_name": "UNet2DModel", "layers_per_block": "2"}, "layers_per_block: got '2'"),
    ({"_class_name": "UNet2DConditionModel", "attention_head_dim": [8, 8]}, "attention_head_dim has 2 entries"),
    ({"_class_name": "UNet2DConditionModel", "num_attention_heads": 8}, "num_attention_heads: must be null"),
    ({"_class_name": "UNet4DConditionModel"}, "_class_name: got 'UNet4DConditionModel'"),
    ({"family": "keras"}, "family: got 'keras'"),
])
def test_invalid_configs_are_one_clear_line(config: dict[str, Any], message: str) -> None:
    with pytest.raises(unetviz.UnetvizError) as e:
        unetviz.trace(config)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_keys_are_ignored_with_a_warning_as_diffusers_does() -> None:
    t = unetviz.trace({"_class_name": "UNet2DConditionModel", "bogus_key": 1, "layers_per_blok": 1})
    assert t.params == unetviz.trace({"_class_name": "UNet2DConditionModel"}).params
    said = " ".join(t.warnings)
    assert "bogus_key" in said and "did you mean 'layers_per_block'" in said


def test_unknown_preset_suggests_the_closest() -> None:
    with pytest.raises(unetviz.UnetvizError, match="did you mean 'sd15'"):
        unetviz.trace("sd-15")


def test_config_file_round_trip(tmp_path: Any) -> None:
    import json

    config, _ = resolve("sd15")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**config, "_diffusers_version": "0.42.1", "_name_or_path": "x"}))
    assert unetviz.trace(str(path)).to_dict()["params"] == unetviz.trace("sd15").params
    yaml = tmp_path / "config.yaml"
    yaml.write_text("_class_name: UNet2DModel\nblock_out_channels: [32, 64, 64, 64]\nsample_size: 16\n")
    assert unetviz.trace(str(yaml)).in_size == (16, 16)
    bad = tmp_path / "bad.yaml"
    bad.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(unetviz.UnetvizError, match="not valid YAML"):
        unetviz.trace(str(bad))


EXTRA_CONFIGS = {
    # uneven layers_per_block and transformer depths, per-block heads, a 2-level self-attention block
    "uneven": ({"_class_name": "UNet2DConditionModel", "block_out_channels": [32, 64, 64],
                "down_block_types": ["CrossAttnDownBlock2D", "AttnDownBlock2D", "DownBlock2D"],
                "up_block_types": ["UpBlock2D", "AttnUpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": [1, 3, 2],
                "transformer_layers_per_block": [2, 1, 1], "attention_head_dim": [2, 8, 4], "cross_attention_dim": 24,
                "norm_num_groups": 8}, "24x40"),
    # resnet samplers both ways, scale-shift time conditioning, linear projections
    "resnet-samplers": ({"_class_name": "UNet2DConditionModel", "block_out_channels": [32, 64],
                         "down_block_types": ["ResnetDownsampleBlock2D", "CrossAttnDownBlock2D"],
                         "up_block_types": ["CrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
                         "resnet_time_scale_shift": "scale_shift", "use_linear_projection": True,
                         "attention_head_dim": 4, "cross_attention_dim": 16, "norm_num_groups": 8}, "16x16"),
    # odd, non-square size: diffusers forwards upsample_size so every concat still matches
    "odd-size": ({**resolve("sd15")[0], "block_out_channels": [32, 64, 64, 64], "norm_num_groups": 8,
                  "attention_head_dim": 4, "cross_attention_dim": 32}, "45x37"),
}


@pytest.mark.parametrize("name", sorted(EXTRA_CONFIGS))
def test_extra_configs_agree_with_hooks_on_the_real_model(name: str) -> None:
    pytest.importorskip("diffusers")
    from unetviz.live.verification import verify

    config, size = EXTRA_CONFIGS[name]
    report = verify(config, size)
    assert report.ok, report.disagreements
    t = unetviz.trace(config, size=size)
    owned = [x for x in t.layers if not is_free(x)]  # attention-matmul rows are no module the hooks see
    assert report.counts["layers"] == len(owned) and report.counts["concats"] == len(t.concats) > 0
    assert report.output_ours == report.output_real


def test_verify_command_exit_codes() -> None:
    pytest.importorskip("diffusers")
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "unetviz", "verify", *args], capture_output=True, text=True,
                              timeout=600)

    ok = run("--preset", "ddpm-cifar10", "--size", "32x48")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    said = " ".join(ok.stdout.split())
    assert "164 layers," in said and "12 concats, 328 tensors agree" in said
    fails = run("--preset", "ddpm-cifar10", "--size", "31")  # both sides fail at the same concat: agreement
    assert fails.returncode == 0 and "up_blocks.1" in fails.stdout and "fail" in fails.stdout.lower()
    bad = run("--preset", "nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: preset: unknown preset 'nope'")
