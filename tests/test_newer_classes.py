"""The eight disagreements the newer-classes differential run found (issue 19, item 8): each reproducer in
``tests/data/repro/newer-classes/`` keeps the answer unetviz now gives, and, with the real package installed,
``verify`` agrees with the real model, or both reject the config.

A reproducer holds ``config``, ``size``, ``context``, what unetviz said (``unetviz_says``) and what the real model
said (``real_says``) when it was filed.
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
from typing import Any

import pytest

import unetviz
from unetviz.core.quantities import layer_macs
from unetviz.presets import find_preset

NEWER = Path(__file__).parent / "data/repro/newer-classes"
FILES = sorted(NEWER.glob("*.json"))
PACKAGE = {"ldm": "ldm"}

# what the symbolic trace must say: "runs", "rejects KEY", or "fails AT" (a module path)
EXPECTED: dict[str, str] = {
    "cond2--accept-unetviz-rejects-context": "fails add_embedding.linear_1",
    "cond2--attn-type-add-embedding-pool": "runs",
    "cond2--layer-generic-reading-AttentionPooling-add-embedding-pool": "runs",
    "cond2--layer-generic-reading-GLIGENTextBoundingboxProjection-position-net": "runs",
    "cond2--layer-order-down-blocks-resnet-down-conv-d-vs-down-blocks-downsamplers-conv-d": "fails up_blocks.1",
    "cond2--layer-order-up-blocks-resnets-upsampler-conv-d-vs-up-blocks-upsampler-conv-d": "runs",
    "cond2--layer-type-conv2d-down-blocks-resnet-down": "fails up_blocks.1",
    "cond2--macs-add-embedding-pool": "runs",
    "ldm--accept-unetviz-accepts-ZeroDivisionError-integer-division-or-modulo-by-zero": "rejects num_head_channels",
    "motion--accept-unetviz-accepts-RuntimeError-The-expanded-size-of-the-tensor-must-match-t":
        "rejects motion_num_attention_heads",
    "motion--error-at-ours-down-blocks-attentions-tra-real-a-and-b-must-have-same-reducti":
        "fails add_embedding.linear_1",
    "motion--error-real-only-add-embedding-linear-a-and-b-must-have-same-reduction-dim-but-go":
        "fails add_embedding.linear_1",
    "svd--layer-generic-reading-AlphaBlender-down-blocks-resnets-time-mixer": "runs",
}


def _load(stem: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((NEWER / f"{stem}.json").read_text(encoding="utf-8"))
    return data


def _context(case: dict[str, Any]) -> tuple[int, int] | None:
    return None if case["context"] is None else (case["context"][0], case["context"][1])


def _trace(stem: str) -> unetviz.Trace:
    case = _load(stem)
    return unetviz.trace(case["config"], size=tuple(case["size"]), context=_context(case))


def _answer(case: dict[str, Any]) -> str:
    try:
        t = unetviz.trace(case["config"], size=tuple(case["size"]), context=_context(case))
    except unetviz.UnetvizError as e:
        return f"rejects {e}"
    return "runs" if t.error is None else f"fails {t.error.at or ''}: {t.error.message}"


def test_every_reproducer_has_an_expectation() -> None:
    assert len(FILES) == 13 and {f.stem for f in FILES} == set(EXPECTED)


@pytest.mark.parametrize("path", FILES, ids=[f.stem[:60] for f in FILES])
def test_symbolic_answer(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    answer = _answer(case)
    verdict, _, where = EXPECTED[path.stem].partition(" ")
    if verdict == "runs":
        assert answer == "runs", answer
    elif verdict == "rejects":  # a one-line UnetvizError naming the key, the value and what is allowed
        assert answer.startswith(f"rejects {where}: got "), answer
        assert "allowed: " in answer and "\n" not in answer, answer
    else:
        assert answer.startswith(f"fails {where}"), answer


def _real_module(config: dict[str, Any]) -> Any:
    family = config.get("family", "diffusers")
    kwargs = {k: v for k, v in config.items() if not k.startswith("_") and k != "family"}
    adapter = importlib.import_module(f"unetviz.live.upstream.{'ldm' if family == 'ldm' else 'diffusers'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return adapter.build(config.get("_class_name"), kwargs)


@pytest.mark.parametrize("path", FILES, ids=[f.stem[:60] for f in FILES])
def test_verify_agrees_with_the_real_model(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    pytest.importorskip("torch")
    pytest.importorskip(PACKAGE.get(case["config"].get("family", ""), "diffusers"))
    if _answer(case).startswith("rejects"):
        with pytest.raises(Exception):  # noqa: B017 - what the constructor raises: ZeroDivisionError, RuntimeError
            _real_module(case["config"])
        return
    report = unetviz.verify(case["config"], tuple(case["size"]), context=_context(case))
    assert report.ok, "\n".join(f"{d.what} {d.path}: ours {d.ours}, real {d.real}" for d in report.disagreements)


def _row(t: unetviz.Trace, index: int) -> tuple[Any, ...]:
    x = t.layers[index]
    return x.path, x.type, x.in_channels, x.in_size, x.out_size, x.kernel, x.stride, x.padding


def test_skip_blocks_fir_rows_are_the_real_conv2d_calls_of_their_own_modules() -> None:
    """downsamplers.0 / the block's upsampler (FirDownsample2D / FirUpsample2D) run a 1-channel 4x4 F.conv2d on
    every channel's padded map (upfirdn2d_native), right after resnet_down / the block's last resnet."""
    down = _trace("cond2--layer-order-down-blocks-resnet-down-conv-d-vs-down-blocks-downsamplers-conv-d")
    assert _row(down, 21) == ("down_blocks.0.downsamplers.0", "conv2d", 1, (5, 5), (2, 2), (4, 4), (1, 1), (0, 0))
    assert down.layers[21].batch == 3  # the image path's 3 channels, one map each
    resnet_down = [_row(down, i) for i, x in enumerate(down.layers) if x.path == "down_blocks.0.resnet_down"]
    assert resnet_down == [("down_blocks.0.resnet_down", "conv2d", 1, (5, 5), (2, 2), (4, 4), (1, 1), (0, 0))] * 2
    up = _trace("cond2--layer-order-up-blocks-resnets-upsampler-conv-d-vs-up-blocks-upsampler-conv-d")
    assert _row(up, 116) == ("up_blocks.1.upsampler", "conv2d", 1, (5, 5), (2, 2), (4, 4), (1, 1), (0, 0))
    assert up.layers[116].unit == "up_blocks.1.resnets.2"  # its MACs in the span of the unit that ran last
    assert not [x for x in up.layers if x.path.endswith("resnets.2.upsampler") or x.type == "conv1d"]


def test_attention_pooling_is_two_einsums_counted_as_upstream() -> None:
    """AttentionPooling's q·kᵀ and attn·v are torch.einsum calls: with 1-wide heads the first contracts a
    size-1 dimension, a plain multiply FlopCounterMode does not count (648,064 MACs, was 653,056)."""
    t = _trace("cond2--macs-add-embedding-pool")
    pool = [x for x in t.layers if x.path.startswith("add_embedding.pool")]
    assert [x.type for x in pool if not x.tensors] == ["einsum_attention"]
    assert sum(layer_macs(x) for x in pool) == 648_064
    assert t.macs == 1_229_952  # the real model's FlopCounterMode total when the reproducer was filed


def test_a_chosen_context_is_taken_by_a_model_that_fails_before_reading_it() -> None:
    t = _trace("cond2--accept-unetviz-rejects-context")
    assert t.error is not None and t.error.at == "add_embedding.linear_1"
    assert t.context == (77, 8)  # the one the real model is fed, as verify feeds it


def test_text_time_motion_model_fails_where_the_real_one_does() -> None:
    """add_embedding gets text_embeds + time ids as a pipeline passes them, 8 wide, where linear_1 takes 7."""
    t = _trace("motion--error-real-only-add-embedding-linear-a-and-b-must-have-same-reduction-dim-but-go")
    assert t.error is not None and "expects 7 input channels but gets 8" in t.error.message
    assert [x.path for x in t.layers] == ["time_embedding.linear_1", "time_embedding.linear_2",
                                          "add_embedding.linear_1"]


def test_alpha_blender_of_a_resnet_reads_frames_by_height_by_width() -> None:
    t = _trace("svd--layer-generic-reading-AlphaBlender-down-blocks-resnets-time-mixer")
    mixers = [x for x in t.layers if x.path.endswith("resnets.0.time_mixer")]
    assert mixers and all((x.in_channels, x.in_size, x.out_size, x.batch) == (32, (25, 1, 1), (25, 1, 1), 1)
                          for x in mixers)


READINGS = ["cond2--layer-generic-reading-AttentionPooling-add-embedding-pool",
            "cond2--layer-generic-reading-GLIGENTextBoundingboxProjection-position-net"]


def _reading(t: unetviz.Trace, path: str, side: str) -> tuple[Any, ...]:
    """(channels on ``side``, size on ``side``, tokens) of the first row at ``path``; ``tokens`` is the input's."""
    x = next(x for x in t.layers if x.path == path and x.tensors)
    return (x.in_channels, x.in_size, x.tokens) if side == "in" else (x.out_channels, x.out_size, x.tokens)


def _token_readings(case: dict[str, Any]) -> list[tuple[str, str, list[Any]]]:
    """(path, side, the reading as width with tokens apart) of each tensor the reproducer says was misread."""
    real = case["real_says"]["diffs"]
    return [(key.split(" @ ")[1], mine["side"], real[key]["readings"][1])
            for key, mine in case["unetviz_says"]["diffs"].items() if key.startswith("layer.generic_reading")]


@pytest.mark.parametrize("stem", READINGS)
def test_token_sequences_read_as_width_with_tokens_apart(stem: str) -> None:
    """docs/design.md: a (B, N, C) tensor is C channels and N tokens. The reproducers filed the real tensors
    (2, 77, 1280), (2, 60, 1280) and (2, 1, 4) read as 77, 60 and 1 channels; both sides now read the width."""
    case = _load(stem)
    t = _trace(stem)
    for path, side, (channels, size, tokens) in _token_readings(case):
        got = _reading(t, path, side)
        assert got[:2] == (channels, size), (path, got)
        # one tokens field per row, the input's: position_net reads 30 boxes and writes 60 tokens
        assert got[2] == (30 if path == "position_net" else tokens), (path, got)
    if stem.endswith("position-net"):
        assert _reading(t, "position_net", "in") == (4, None, 30)  # (B, 30, 4): 30 boxes of 4 coordinates
        unit = next(u for u in t.units if u.path == "position_net")
        assert (unit.in_channels, unit.out_channels) == (4, 1280)
    else:
        unit = next(u for u in t.units if u.path == "add_embedding")
        assert (unit.in_channels, unit.out_channels) == (1280, 24)  # entered with the (B, 77, 1280) context
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    real = unetviz.trace(_real_module(case["config"]), size=tuple(case["size"]), observe_only=True)
    assert [_reading(real, p, side) for p, side, _ in _token_readings(case)] == \
        [_reading(t, p, side) for p, side, _ in _token_readings(case)]


def test_odd_motion_width_and_headless_ldm_level_are_rejected_in_one_line() -> None:
    for stem, words in (("motion--accept-unetviz-accepts-RuntimeError-The-expanded-size-of-the-tensor-must-match-t",
                         ("motion_num_attention_heads: got 3", "39")),
                        ("ldm--accept-unetviz-accepts-ZeroDivisionError-integer-division-or-modulo-by-zero",
                         ("num_head_channels: got 64", "level 0"))):
        with pytest.raises(unetviz.UnetvizError) as e:
            _trace(stem)
        assert all(w in str(e.value) for w in words) and "allowed: " in str(e.value)


MODELSCOPE_EXTRAS = {"_diffusers_version": "0.17.0.dev0", "center_input_sample": False, "flip_sin_to_cos": True,
                     "freq_shift": 0}
"""Keys of the published ali-vilab/text-to-video-ms-1.7b unet/config.json that UNet3DConditionModel does not take."""


def test_verify_builds_a_published_config_as_from_config_does() -> None:
    """ModelScope's config.json carries keys UNet3DConditionModel's constructor rejects; from_config drops them,
    as ``table`` does (a tiny variant of the preset, for speed)."""
    preset = find_preset("modelscope-t2v")
    assert preset is not None
    config = {**preset.config, **MODELSCOPE_EXTRAS, "block_out_channels": [32, 64, 64, 64], "attention_head_dim": 8,
              "cross_attention_dim": 16, "layers_per_block": 1}
    t = unetviz.trace(config, size=(2, 16, 16))
    assert t.error is None and any("center_input_sample" in w for w in t.warnings)
    pytest.importorskip("diffusers")
    report = unetviz.verify(config, (2, 16, 16))
    assert report.ok, report.disagreements


@pytest.mark.parametrize("config", [
    {"_class_name": "UNet2DModel", "block_out_channels": [8], "down_block_types": ["DownBlock2D"],
     "up_block_types": ["UpBlock2D"], "norm_num_groups": 4, "layers_per_block": 1, "center_input_sample": False,
     "some_future_option": 3},
    {"_class_name": "UNetMotionModel", "block_out_channels": [8], "down_block_types": ["DownBlockMotion"],
     "up_block_types": ["UpBlockMotion"], "norm_num_groups": 4, "motion_num_attention_heads": 2,
     "layers_per_block": 1, "center_input_sample": False},
], ids=["unet2d", "motion"])
def test_every_diffusers_adapter_drops_unknown_keys(config: dict[str, Any]) -> None:
    pytest.importorskip("diffusers")
    report = unetviz.verify(config, (8, 8) if config["_class_name"] == "UNet2DModel" else (2, 8, 8))
    assert report.ok, report.disagreements
