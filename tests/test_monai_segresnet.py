"""MONAI's SegResNet: the symbolic trace against the real network on the meta device (state_dict keys, order and
shapes, parameters, output, MACs against FlopCounterMode, the place a bad size fails), 2-D and 3-D; its decoder
adds the encoder's maps (``Trace.adds``), which verify compares with the observed additions."""

from __future__ import annotations

import os
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

import fuzzkit  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_monai import check_against_real, differential, net, real, real_rejects  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import unetviz  # noqa: E402

Size = tuple[int, ...]

DEFAULT = net("SegResNet")  # every argument MONAI's default: 3-D, init_filters 8, blocks (1, 2, 2, 4) / (1, 1, 1)
# the BraTS bundle's network_def (brats_mri_segmentation)
BRATS = net("SegResNet", blocks_down=[1, 2, 2, 4], blocks_up=[1, 1, 1], init_filters=16, in_channels=4,
            out_channels=3, dropout_prob=0.2)
DECONV_2D = net("SegResNet", spatial_dims=2, in_channels=3, out_channels=4, init_filters=16, blocks_down=[1, 2, 2],
                blocks_up=[1, 1], upsample_mode="deconv", norm="instance")
GROUPED_2D = net("SegResNet", spatial_dims=2, upsample_mode="deconvgroup", norm="batch", use_conv_final=False,
                 act=["leakyrelu", {"negative_slope": 0.1}], blocks_up=[2, 0, 1])
CONFIGS: dict[str, tuple[dict[str, Any], Size]] = {
    "default": (DEFAULT, (32, 32, 32)), "brats": (BRATS, (24, 32, 40)), "deconv_2d": (DECONV_2D, (64, 48)),
    "grouped_2d": (GROUPED_2D, (64, 64)),
}


def flops_macs(cfg: dict[str, Any], size: Size, channels: int) -> int:
    model = real(cfg)
    with FlopCounterMode(display=False) as fc:
        model(torch.empty(1, channels, *size, device="meta"))
    return int(fc.get_total_flops()) // 2


@pytest.mark.parametrize("name", list(CONFIGS))
def test_config_matches_the_real_network(name: str) -> None:
    cfg, size = CONFIGS[name]
    t = check_against_real(cfg, size)
    assert t.error is None and t.model == "SegResNet"
    assert t.macs == flops_macs(cfg, size, t.in_channels)


def test_default_figures_and_adds() -> None:
    t = unetviz.trace(DEFAULT, size="32x32x32")
    assert (t.params, len(t.manifest), t.macs) == (1_176_186, 83, 571_211_776)
    assert (t.out_channels, t.out_size, t.space) == (2, (32, 32, 32), "volume")
    keys = [k for k, _ in t.manifest]
    assert keys[:3] == ["convInit.conv.weight", "down_layers.0.1.norm1.weight", "down_layers.0.1.norm1.bias"]
    assert keys.index("up_layers.0.0.norm1.weight") < keys.index("up_samples.0.0.conv.weight")  # registered first
    assert not t.concats
    assert [(a.consumer, a.channels, a.size) for a in t.adds] == [
        ("up_layers.0", 32, (8, 8, 8)), ("up_layers.1", 16, (16, 16, 16)), ("up_layers.2", 8, (32, 32, 32))]
    first = t.adds[0].inputs
    assert (first[0].source, first[0].skip) == ("up_samples.0.1.upsample_non_trainable", None)
    assert (first[1].source, first[1].skip, first[1].channels) == ("down_layers.2.2.conv2.conv", 2, 32)
    assert [(s.index, s.merge, s.to) for s in t.skips] == [
        (0, "add", "up_layers.2"), (1, "add", "up_layers.1"), (2, "add", "up_layers.0")]  # the bottom is no skip


def test_brats_bundle_figures() -> None:
    t = unetviz.trace(BRATS, size="24x32x40")
    assert (t.params, t.macs) == (4_702_227, 2_168_094_720)
    assert (t.in_channels, t.out_channels, t.out_size) == (4, 3, (24, 32, 40))


@pytest.mark.parametrize(("name", "size", "words"), [
    # 33 -> 17 -> 9 -> 5: up 10 vs the 9 skip; torch's words on a real device (meta words it otherwise)
    ("default", (32, 33, 32), "tensor a (10) must match the size of tensor b (9) at non-singleton dimension 3"),
    ("deconv_2d", (30, 48), "tensor a (16) must match the size of tensor b (15) at non-singleton dimension 2"),
])
def test_failing_sizes_fail_in_the_models_own_forward(name: str, size: Size, words: str) -> None:
    t = check_against_real(CONFIGS[name][0], size)  # the real forward raises in SegResNet.decode: no module open
    assert t.error is not None and t.error.at == ""
    assert "the addition before up_layers." in t.error.message and words in t.error.message


def test_a_one_pixel_side_broadcasts_as_torch_does() -> None:
    cfg = net("SegResNet", spatial_dims=2, blocks_down=[1, 1], blocks_up=[1], norm="batch")
    t = check_against_real(cfg, (1, 16))  # the 1-row skip stretches over the 2 rows the upsampler makes
    assert t.error is None and t.out_size == (2, 16)


@pytest.mark.parametrize(("cfg", "key"), [
    ({**DEFAULT, "upsample_mode": "bilinear"}, "upsample_mode"),
    ({**DEFAULT, "norm": ["group", {"num_groups": 3}]}, "norm"),
    ({**DEFAULT, "norm_name": "batch"}, "norm_name"),
    ({**DEFAULT, "act": "os.system"}, "act"),
    ({**DEFAULT, "dropout_prob": 1.5}, "dropout_prob"),
])
def test_rejected_configs(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(unetviz.UnetvizError) as e:
        unetviz.trace(cfg, size=32)
    assert str(e.value).startswith(key), str(e.value)
    assert real_rejects(cfg) is not None


@pytest.mark.parametrize("name", list(CONFIGS))
def test_verify_agrees_on_the_adds(name: str) -> None:
    cfg, size = CONFIGS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = unetviz.verify(cfg, size)
    assert not r.disagreements, r.disagreements
    assert r.output_ours == r.output_real and r.counts["skips"] == len(cfg.get("blocks_up", [1, 1, 1]))


# ---- differential: random kwargs, 2-D and 3-D, against MONAI's constructor and forward --------------------------
@st.composite
def segresnets(draw: st.DrawFn) -> tuple[dict[str, Any], Size]:
    """Mostly valid kwargs, a decoder as deep as the encoder allows or (rarely) not, odd and tiny sizes."""
    d = draw(st.sampled_from([2, 3]))
    n = draw(st.integers(1, 4))
    ups = n - 1 if draw(st.integers(0, 6)) else draw(st.integers(0, n))
    norms = [["group", {"num_groups": 2}], ["GROUP", {"num_groups": 8}], "instance", "batch",
             ["instance", {"affine": True}], ["group", {"num_groups": 3}]]
    cfg = net("SegResNet", spatial_dims=d, in_channels=draw(st.integers(1, 3)), out_channels=draw(st.integers(1, 3)),
              init_filters=draw(st.sampled_from([4, 8, 6])), blocks_down=draw(st.lists(st.integers(0, 2), min_size=n,
                                                                                  max_size=n)),
              blocks_up=draw(st.lists(st.integers(0, 2), min_size=ups, max_size=ups)),
              upsample_mode=draw(st.sampled_from(["nontrainable", "deconv", "deconvgroup"])),
              norm=draw(st.sampled_from(norms)), act=draw(st.sampled_from(["relu", "gelu", ["elu", {"alpha": 0.5}]])),
              use_conv_final=draw(st.booleans()), dropout_prob=draw(st.sampled_from([None, 0.1])))
    side = st.one_of(st.integers(1, 40 if d == 2 else 20), st.sampled_from([16, 32]))
    return cfg, tuple(draw(st.lists(side, min_size=d, max_size=d)))


def check_with_macs(cfg: dict[str, Any], size: Size) -> Any:
    """``check_against_real``, and where the model runs, MACs equal FlopCounterMode / 2."""
    t = check_against_real(cfg, size)
    if t.error is None:
        assert t.macs == flops_macs(cfg, size, t.in_channels)
    return t


@settings(max_examples=int(os.environ.get("UNETVIZ_FUZZ_EXAMPLES", "10")), derandomize=True, **fuzzkit.COMMON)
@given(segresnets())
def test_generated_configs_agree(case: tuple[dict[str, Any], Size]) -> None:
    differential(*case, check=check_with_macs)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **fuzzkit.COMMON)
@given(segresnets())
def test_generated_configs_agree_long(case: tuple[dict[str, Any], Size]) -> None:
    differential(*case, check=check_with_macs)
