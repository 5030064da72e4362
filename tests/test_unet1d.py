"""UNet1DModel (Dance Diffusion): lengths instead of HxW, the time features concatenated as channels, and the real
diffusers model on meta.

Exact verification needs the core patch of issue 12's report (``Tracer.buffer`` for the resamplers' kernel
buffers, an observer that reads (B, C, L) units and concats): until it lands those tests are expected to fail.
"""

from __future__ import annotations

from typing import Any

import fuzzkit
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unetviz
from unetviz.families.diffusers.embed import UNSUPPORTED
from unetviz.families.diffusers.unet1d_blocks import UP_TYPES

DANCE_PARAMS = 234_009_098  # parameters on diffusers 0.42.1 (the state_dict adds 26 cubic kernel buffers: 208 more)
# diffusers' DanceDiffusion pipeline test model, widened as diffusers >= 0.36 needs (64 Fourier features)
TINY: dict[str, Any] = {
    "_class_name": "UNet1DModel", "block_out_channels": [32, 32, 64], "extra_in_channels": 64, "sample_size": 512,
    "sample_rate": 16000, "in_channels": 2, "out_channels": 2, "flip_sin_to_cos": True,
    "use_timestep_embedding": False, "time_embedding_type": "fourier", "mid_block_type": "UNetMidBlock1D",
    "down_block_types": ["DownBlock1DNoSkip", "DownBlock1D", "AttnDownBlock1D"],
    "up_block_types": ["AttnUpBlock1D", "UpBlock1D", "UpBlock1DNoSkip"],
}


def test_lengths_are_one_tuples() -> None:
    t = unetviz.trace("dance-diffusion")
    assert t.in_size == (65536,) and t.out_size == (65536,) and t.error is None
    assert [s.size for s in t.skips][:3] == [(65536,), (32768,), (16384,)]
    assert len(t.skips) == 13 and all(s.to is not None for s in t.skips)
    first = t.concats[0]  # DownBlock1DNoSkip: the time features join the sample as channels, no skip
    assert first.consumer == "down_blocks.0.resnets.0" and [o.channels for o in first.inputs] == [2, 16]
    assert all(o.skip is None for o in first.inputs)


def test_size_means_length() -> None:
    assert unetviz.trace(TINY, size=256).in_size == (256,)
    assert unetviz.trace(TINY, size="128").in_size == (128,)
    with pytest.raises(unetviz.UnetvizError, match="allowed: N \\(the length\\)"):
        unetviz.trace(TINY, size="1x128")  # one size grammar: a 1-D model's size is its length, N
    with pytest.raises(unetviz.UnetvizError, match="not pixels"):
        unetviz.trace(TINY, size="128px")


def test_maestro_without_time_embedding_dim_fails_as_diffusers_does() -> None:
    # diffusers >= 0.36 builds 128 Fourier frequencies: 2 + 256 channels reach a block built for 2 + 16
    config = unetviz.api.resolve("dance-diffusion")[0]
    del config["time_embedding_dim"]
    t = unetviz.trace(config)
    assert t.error is not None and (t.error.at or "").startswith("down_blocks.0.resnets.0")
    assert "18" in t.error.message and "258" in t.error.message


def test_too_short_for_the_depth_fails() -> None:
    t = unetviz.trace("dance-diffusion", size=4096)  # 12 halvings leave 1 sample before down_blocks.12
    assert t.error is not None and t.error.at == "down_blocks.12.down"


@pytest.mark.parametrize("change, message", [
    ({"down_block_types": ["DownResnetBlock1D"] * 3}, UNSUPPORTED),
    ({"mid_block_type": None}, "mid_block_type"),
    ({"time_embedding_type": "learned"}, "time_embedding_type"),
    ({"time_embedding_dim": 15}, "even"),
    ({"block_out_channels": [32, 32]}, "block_out_channels has 2 entries"),
])
def test_config_errors(change: dict[str, Any], message: str) -> None:
    with pytest.raises(unetviz.UnetvizError, match=message):
        unetviz.trace({**TINY, **change})


def test_no_up_blocks_return_the_mid_blocks_output() -> None:
    # the constructor loops over an empty up_block_types; the three pushed skips are never popped
    t = unetviz.trace({**TINY, "up_block_types": []}, size=256)
    assert t.error is None and (t.out_channels, t.out_size) == (64, (64,))  # two halvings, mid's down and up
    assert len(t.skips) == 3 and all(s.to is None for s in t.skips)


def test_manifest_has_the_kernel_buffers_in_order() -> None:
    keys = [k for k, _ in unetviz.weights(TINY).manifest]
    assert "down_blocks.1.down.kernel" in keys and keys.index("mid_block.down.kernel") < keys.index(
        "mid_block.up.kernel") < keys.index("mid_block.attentions.0.group_norm.weight")


# ---- the real model ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dance-diffusion", "tiny"])
def test_manifest_equals_diffusers(name: str) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream.unet1d import build

    config = TINY if name == "tiny" else unetviz.api.resolve(name)[0]
    model = build("UNet1DModel", {k: v for k, v in config.items() if not k.startswith("_")})
    real = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert list(unetviz.weights(config).manifest) == real
    # params are the parameters; the 26 cubic resampling kernels are state_dict buffers, not parameters
    assert unetviz.weights(config).params == sum(p.numel() for p in model.parameters())
    if name == "dance-diffusion":
        assert unetviz.weights(config).params == DANCE_PARAMS


@pytest.mark.parametrize("source, size", [("dance-diffusion", None), ("dance-diffusion", 49152), ("tiny", None),
                                          ("tiny", 100), ("tiny-no-up", 256)])
def test_verify(source: str, size: int | None) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    config = {"tiny": TINY, "tiny-no-up": {**TINY, "up_block_types": []}}.get(source, source)
    report = unetviz.verify(config, size)
    assert report.ok, report.disagreements[:5]


# ---- differential -------------------------------------------------------------------------------------
@st.composite
def unet1d_configs(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    n = draw(st.integers(1, 3))
    # block_out_channels may have one entry more than the down blocks; 40 gives SelfAttention1d one head, 16 none
    boc = [draw(st.sampled_from([16, 32, 40, 64])) for _ in range(n + draw(st.integers(0, 1)))]
    down = ["DownBlock1DNoSkip", *draw(st.lists(st.sampled_from(["DownBlock1D", "AttnDownBlock1D"]),
                                                min_size=n - 1, max_size=n - 1))]
    up = [{"DownBlock1D": "UpBlock1D", "AttnDownBlock1D": "AttnUpBlock1D"}.get(d, "UpBlock1DNoSkip")
          for d in reversed(down)]
    if draw(st.integers(0, 3)) == 3:  # up blocks that do not mirror the down blocks (fewer, more, other types)
        up = draw(st.lists(st.sampled_from(list(UP_TYPES)), min_size=0, max_size=len(boc) + 1))
    ted = draw(st.sampled_from([None, 8, 16]))
    cfg: dict[str, Any] = {"_class_name": "UNet1DModel", "block_out_channels": boc, "down_block_types": down,
                           "up_block_types": up, "in_channels": draw(st.integers(1, 3)),
                           "out_channels": draw(st.integers(1, 3)), "time_embedding_dim": ted}
    width = ted or 2 * boc[0]
    cfg["extra_in_channels"] = width if draw(st.integers(0, 4)) else draw(st.sampled_from([0, 3]))
    for key, values in (("time_embedding_type", st.sampled_from(["fourier", "positional", "bogus"])),
                        ("use_timestep_embedding", st.sampled_from([False, False, True])),
                        ("act_fn", st.sampled_from([None, "silu"])), ("flip_sin_to_cos", st.booleans()),
                        ("out_block_type", st.sampled_from([None, "bogus"])), ("freq_shift", st.sampled_from([0, 1])),
                        # read by the RL blocks only: the Dance Diffusion blocks ignore them
                        ("layers_per_block", st.sampled_from([0, 2])), ("downsample_each_block", st.booleans()),
                        ("norm_num_groups", st.sampled_from([None, 3]))):
        if draw(st.booleans()):
            cfg[key] = draw(values)
    if cfg.get("time_embedding_type") == "positional":
        cfg["extra_in_channels"] = boc[0]
    # hypothesis favours a list's first entries: lengths that run to the end first, then ones that fail on the way
    return cfg, draw(st.sampled_from([128, 64, 100, 24, 13, 8, 5, 3]))


def _check(cfg: dict[str, Any], size: int) -> None:
    """Both reject the config, or both accept it and verify finds no disagreement ("unsupported" passes)."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from unetviz.live.upstream.unet1d import build

    fuzzkit.check(cfg["_class_name"], build, cfg, size, unsupported=True)


COMMON: dict[str, Any] = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=10, derandomize=True, **COMMON)
@given(unet1d_configs())
def test_generated_unet1d_agree(case: tuple[dict[str, Any], int]) -> None:
    _check(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **COMMON)
@given(unet1d_configs())
def test_generated_unet1d_agree_long(case: tuple[dict[str, Any], int]) -> None:
    _check(*case)
