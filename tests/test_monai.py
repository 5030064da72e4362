"""MONAI's networks: the symbolic trace of a ``network_def`` against MONAI's real UNet, BasicUNet, AttentionUnet and
DynUNet on the meta device (state_dict keys, order and shapes, parameters, output shape, and the module where
the forward fails), 2-D and 3-D."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

import fuzzkit  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import unetviz  # noqa: E402
from unetviz.live.upstream import monai as ref  # noqa: E402

Size = tuple[int, ...]


def net(target: str, **kwargs: Any) -> dict[str, Any]:
    return {"family": "monai", "_target_": target, **kwargs}


# spleen_ct_segmentation's network_def (MONAI Model Zoo): 4,808,917 parameters
SPLEEN = net("UNet", spatial_dims=3, in_channels=1, out_channels=2, channels=[16, 32, 64, 128, 256],
             strides=[2, 2, 2, 2], num_res_units=2, norm="batch")
UNET_2D = net("monai.networks.nets.UNet", spatial_dims=2, in_channels=1, out_channels=2, channels=[16, 32, 64],
              strides=[2, 2])
UNET_ANISO = net("monai.networks.nets.unet.UNet", spatial_dims=3, in_channels=2, out_channels=3,
                 channels=[8, 16, 32, 64], strides=[[1, 2, 2], [2, 2, 2], 2], num_res_units=2,
                 norm=["instance", {"affine": True}], act=["prelu", {"num_parameters": 1, "init": 0.2}])
UNET_GROUP = net("UNet", spatial_dims=2, in_channels=1, out_channels=4, channels=[16, 32, 64], strides=[[1, 2], 2, 2],
                 num_res_units=3, act=["leakyrelu", {"negative_slope": 0.1}], norm=["group", {"num_groups": 4}],
                 adn_ordering="AN", dropout=0.1, kernel_size=[3, 5])
BASIC_2D = net("BasicUNet", spatial_dims=2, in_channels=1, out_channels=2, features=[8, 8, 16, 32, 64, 8])
BASIC_3D = net("BasicUNet", features=[8, 8, 16, 32, 64, 8], norm="batch", act="relu")
ATT_2D = net("AttentionUnet", spatial_dims=2, in_channels=1, out_channels=2, channels=[8, 16, 32, 64],
             strides=[2, 2, 2])
ATT_3D = net("AttentionUnet", spatial_dims=3, in_channels=1, out_channels=2, channels=[8, 16, 32],
             strides=[[1, 2, 2], 2], dropout=0.1)
DYN_3D = net("DynUNet", spatial_dims=3, in_channels=1, out_channels=3, kernel_size=[[1, 3, 3], 3, 3, 3],
             strides=[1, [1, 2, 2], 2, 2], upsample_kernel_size=[[1, 2, 2], 2, 2])
DYN_DS = {**DYN_3D, "deep_supervision": True, "deep_supr_num": 2, "res_block": True}
DYN_2D = net("DynUNet", spatial_dims=2, in_channels=1, out_channels=3, kernel_size=[3, 3, 3, 3],
             strides=[1, 2, 2, 2], upsample_kernel_size=[2, 2, 2], norm_name="batch", act_name="prelu",
             res_block=True, filters=[8, 16, 24, 32, 40], trans_bias=True)
CONFIGS: dict[str, tuple[dict[str, Any], Size]] = {
    "spleen": (SPLEEN, (96, 96, 96)), "unet_2d": (UNET_2D, (64, 64)), "unet_aniso": (UNET_ANISO, (16, 64, 48)),
    "unet_group": (UNET_GROUP, (30, 60)), "basic_2d": (BASIC_2D, (64, 48)), "basic_3d": (BASIC_3D, (33, 35, 21)),
    "att_2d": (ATT_2D, (64, 48)), "att_3d": (ATT_3D, (8, 32, 32)), "dyn_3d": (DYN_3D, (16, 64, 64)),
    "dyn_ds": (DYN_DS, (16, 64, 64)), "dyn_2d": (DYN_2D, (64, 64)),
}


def kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k != "family"}


def real(cfg: dict[str, Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ref.build(None, kwargs(cfg))


def real_rejects(cfg: dict[str, Any]) -> str | None:
    """The real constructor's error, or None when it accepts ``cfg`` (``_target_`` is an argument here)."""
    try:
        real(cfg)
    except Exception as e:  # ValueError, TypeError, AssertionError, NotImplementedError: MONAI's own
        return f"{type(e).__name__}: {e}"
    return None


def failing_module(model: Any, channels: int, size: Size) -> tuple[str | None, Any]:
    """(the module where the forward on a meta input raises, the error) or (None, the output)."""
    return fuzzkit.failing_module(model, lambda: model(torch.empty(1, channels, *size, device="meta")))


def check_against_real(cfg: dict[str, Any], size: Size) -> Any:
    """Both accept: manifest, params and (output or failing module) agree. Returns the trace."""
    t = unetviz.trace(cfg, size=size)
    model = real(cfg)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == list(t.manifest)
    assert sum(p.numel() for p in model.parameters()) == t.params
    at, out = failing_module(model, t.in_channels, t.in_size)
    if at is None:
        assert t.error is None, t.error
        assert tuple(out.shape[1:]) == (t.out_channels, *(t.out_size or ()))
    else:
        assert t.error is not None, out
        assert t.error.at == at, (t.error, out)
    return t


# ---- published and hand-picked configurations ------------------------------------------------------------
@pytest.mark.parametrize("name", list(CONFIGS))
def test_config_matches_the_real_network(name: str) -> None:
    t = check_against_real(*CONFIGS[name])
    assert t.error is None and t.family == "monai"


def test_spleen_figures() -> None:
    t = unetviz.trace(SPLEEN, size="96x96x96")
    assert (t.model, t.space, t.in_size, t.out_channels, t.out_size) == ("UNet", "volume", (96,) * 3, 2, (96,) * 3)
    assert t.params == 4_808_917 and len(t.manifest) == 148
    first = t.layers[0]
    assert (first.path, first.type, first.stride) == ("model.0.residual", "Conv3d", (2, 2, 2))  # residual first
    norm = next(x for x in t.layers if x.path == "model.0.conv.unit0.adn.N")
    assert (norm.type, norm.params) == ("BatchNorm3d", 32)
    assert "model.0.conv.unit0.adn.N.running_mean" in dict(t.manifest)
    assert [c.channels for c in t.concats] == [384, 128, 64, 32]  # cat([skip, up]): the skip first
    assert [c.inputs[0].skip for c in t.concats] == [3, 2, 1, 0]
    up = next(x for x in t.layers if x.path == "model.2.0.conv")
    assert (up.type, up.stride, up.in_size, up.out_size) == ("ConvTranspose3d", (2, 2, 2), (48,) * 3, (96,) * 3)


def test_anisotropic_strides() -> None:
    t = unetviz.trace(DYN_3D, size="16x64x64")
    convs = [x for x in t.layers if x.path.endswith("conv1.conv") and not x.path.startswith("upsamples")]
    assert [x.stride for x in convs] == [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert [x.out_size for x in convs] == [(16, 64, 64), (16, 32, 32), (8, 16, 16), (4, 8, 8)]
    assert convs[1].kernel == (3, 3, 3) and t.layers[0].kernel == (1, 3, 3)
    up = next(x for x in t.layers if x.path == "upsamples.2.transp_conv.conv")
    assert (up.kernel, up.stride, up.out_size) == ((1, 2, 2), (1, 2, 2), (16, 64, 64))
    sampled = {u.path: u.kind for u in t.units}
    assert sampled["downsamples.0"] == "downsample" and sampled["upsamples.2"] == "upsample"


def test_dynunet_skip_layers_are_aliases_and_heads_run() -> None:
    t = unetviz.trace(DYN_DS, size="16x64x64")
    assert t.aliases["skip_layers.downsample.conv1.conv.weight"] == "input_block.conv1.conv.weight"
    assert t.aliases["skip_layers.next_layer.next_layer.next_layer.conv1.conv.weight"] == "bottleneck.conv1.conv.weight"
    assert t.aliases["skip_layers.next_layer.super_head.conv.conv.bias"] == "deep_supervision_heads.0.conv.conv.bias"
    heads = [x.path for x in t.layers if x.path.startswith("deep_supervision_heads")]
    assert heads == ["deep_supervision_heads.1.conv.conv", "deep_supervision_heads.0.conv.conv"]  # deepest first
    assert t.params == 5_618_345


def test_rank_is_declared_by_spatial_dims() -> None:
    assert unetviz.trace(UNET_2D, size=64).in_size == (64, 64)
    assert unetviz.trace(UNET_2D, size=64).space == "pixel"
    assert unetviz.trace(SPLEEN, size=32).in_size == (32, 32, 32)
    assert unetviz.trace({**UNET_2D, "roi_size": [48, 32]}).size_source == "roi_size"
    with pytest.raises(unetviz.UnetvizError, match=r"^size: a MONAI network has no size of its own"):
        unetviz.trace(UNET_2D)


# ---- sizes where the forward fails ------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "size", "at", "words"), [
    ("unet_2d", (66, 64), "model.1", "torch.cat"),  # 66 -> 33 -> 17 -> up 34 vs the 33 skip
    ("unet_2d", (4, 4), "model.1.submodule.0.adn.N", "more than 1 spatial element"),
    ("basic_3d", (8, 32, 32), "down_4.max_pooling", "too small"),
    ("basic_2d", (16, 16), "down_4.convs.conv_0.adn.N", "more than 1 spatial element"),
    ("att_3d", (10, 33, 32), "model.1.submodule.1.attention", "broadcast"),
    ("dyn_3d", (16, 64, 66), "upsamples.0", "torch.cat"),
    ("dyn_2d", (8, 8), None, ""),  # BatchNorm in eval reads its running statistics: a 1x1 bottleneck runs
])
def test_failing_sizes_fail_at_the_same_module(name: str, size: Size, at: str | None, words: str) -> None:
    t = check_against_real(CONFIGS[name][0], size)
    assert (t.error.at if t.error else None) == at
    assert t.error is None or words in t.error.message


# ---- configs MONAI (or the allow-list) rejects -------------------------------------------------------------
@pytest.mark.parametrize(("cfg", "key"), [
    ({**UNET_2D, "_target_": "os.system"}, "_target_"),
    ({**UNET_2D, "act": "subprocess.Popen"}, "act"),
    ({**UNET_2D, "norm": ["builtins.eval", {}]}, "norm"),
    ({**UNET_2D, "channels": [16]}, "channels"),
    ({**UNET_2D, "strides": [2]}, "strides"),
    ({**UNET_2D, "kernel_size": 4}, "kernel_size"),
    ({**UNET_2D, "kernel_size": [3, 3, 3]}, "kernel_size"),
    ({**UNET_2D, "features": [8] * 6}, "features"),
    ({**UNET_2D, "dropout": 1.5}, "dropout"),
    ({**UNET_2D, "norm": ["group", {"num_groups": 3}]}, "norm"),
    ({**UNET_2D, "act": ["leakyrelu", {"slope": 0.1}]}, "act"),
    ({**BASIC_2D, "features": [8, 8, 16, 32, 64]}, "features"),
    ({**BASIC_2D, "upsample": "bilinear"}, "upsample"),
    ({**DYN_3D, "deep_supervision": True, "deep_supr_num": 3}, "deep_supr_num"),
    ({**DYN_3D, "kernel_size": [3, 3, 3]}, "kernel_size"),
    ({**DYN_3D, "filters": [8, 16, 32]}, "filters"),
    ({**DYN_3D, "strides": [1, 2, 2, 4], "kernel_size": [3, 3, 3, 1]}, "kernel_size.3"),
    ({**DYN_3D, "norm_name": None}, "norm_name"),
])
def test_rejected_configs(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(unetviz.UnetvizError) as e:
        unetviz.trace(cfg, size=32)
    msg = str(e.value)
    assert msg.startswith(key) and "\n" not in msg, msg
    assert real_rejects(cfg) is not None  # and MONAI refuses it too (or never gets the name)


def test_missing_target_names_the_allowed_classes() -> None:
    with pytest.raises(unetviz.UnetvizError, match=r"^_target_: got None; allowed: UNet"):
        unetviz.trace(net("UNet") | {"_target_": None}, size=32)


# ---- unetviz.verify against the observed real model ---------------------------------------------------------
@pytest.mark.parametrize("name", list(CONFIGS))
def test_verify(name: str) -> None:
    """Every class, UNet with and without residual units, DynUNet basic, residual and deep-supervised: the
    observer and the symbolic trace agree to the last unit (no disagreement of any kind)."""
    cfg, size = CONFIGS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = unetviz.verify(cfg, size)
    assert r.output_ours == r.output_real
    assert r.counts["tensors"] == len(unetviz.trace(cfg, size=size).manifest)
    assert not r.disagreements, r.disagreements


# ---- differential: random kwargs per class, 2-D and 3-D, against MONAI's constructor and forward -----------
ACTS = [None, "PRELU", "relu", ["leakyrelu", {"negative_slope": 0.1}], ["prelu", {"num_parameters": 1}], "gelu"]
NORMS = [None, "instance", "batch", ["instance", {"affine": True}], ["batch", {"track_running_stats": False}],
         ["group", {"num_groups": 1}], ["group", {"num_groups": 2}], ["INSTANCE", {"track_running_stats": True}]]


@st.composite
def network_defs(draw: st.DrawFn) -> tuple[dict[str, Any], Size]:
    """Mostly valid kwargs of one of the four classes, now and then what its constructor refuses (a list one
    entry short, an even kernel, a dropout over 1, a group count that does not divide)."""
    d = draw(st.sampled_from([2, 3]))
    rarely = st.sampled_from([False] * 10 + [True])
    short = 1 if draw(rarely) else 0
    axes = st.one_of(st.integers(1, 2), st.lists(st.integers(1, 2), min_size=d, max_size=d))
    kernel = st.sampled_from([1, 3, 3] + [2] * draw(rarely))
    widths = st.integers(2, 6)
    dropout = draw(st.sampled_from([0.0, 0.2, None] + [1.5] * draw(rarely)))
    cls = draw(st.sampled_from(["UNet", "BasicUNet", "AttentionUnet", "DynUNet"]))
    cfg = net(cls, spatial_dims=d, in_channels=draw(st.integers(1, 3)), out_channels=draw(st.integers(1, 3)))
    if cls in ("UNet", "AttentionUnet"):
        n = draw(st.integers(2, 4))
        cfg.update(channels=draw(st.lists(widths, min_size=n, max_size=n)),
                   strides=draw(st.lists(axes, min_size=n - 1 - short, max_size=n - 1 - short)),
                   kernel_size=draw(kernel), up_kernel_size=draw(kernel), dropout=dropout)
    if cls == "UNet":
        cfg.update(num_res_units=draw(st.integers(0, 2)), act=draw(st.sampled_from(ACTS)),
                   norm=draw(st.sampled_from(NORMS)), bias=draw(st.booleans()),
                   adn_ordering=draw(st.sampled_from(["NDA", "AN", "NA", "DA", "ADN"])))
    elif cls == "BasicUNet":
        cfg.update(features=draw(st.lists(widths, min_size=6 - short, max_size=6 - short)),
                   act=draw(st.sampled_from(ACTS[1:])), norm=draw(st.sampled_from(NORMS)), dropout=dropout,
                   bias=draw(st.booleans()))
    elif cls == "DynUNet":
        n = draw(st.integers(3, 5))
        strides = draw(st.lists(st.one_of(st.integers(1, 2), st.lists(st.integers(1, 2), min_size=d, max_size=d)),
                                min_size=n, max_size=n))
        side_k = st.sampled_from([3, 3, 3, 1, 2])  # an even kernel grows the map by one: rarely
        cfg.update(kernel_size=draw(st.lists(st.one_of(side_k, st.lists(side_k, min_size=d, max_size=d)),
                                             min_size=n - short, max_size=n - short)),
                   strides=strides, upsample_kernel_size=strides[1:] if draw(st.integers(0, 3)) else
                   draw(st.lists(st.integers(1, 2), min_size=n - 1, max_size=n)),
                   filters=draw(st.none() | st.lists(widths, min_size=n, max_size=n + 1)), dropout=dropout,
                   norm_name=draw(st.sampled_from(NORMS[1:])), act_name=draw(st.sampled_from(ACTS[1:])),
                   res_block=draw(st.booleans()), trans_bias=draw(st.booleans()),
                   deep_supervision=draw(st.booleans()), deep_supr_num=draw(st.integers(1, max(1, n - 2 + short))))
    side = st.one_of(st.integers(1, 40 if d == 2 else 24), st.sampled_from([16, 32]))  # odd, tiny and even sizes
    size = tuple(draw(st.lists(side, min_size=d, max_size=d)))
    return cfg, size


def differential(cfg: dict[str, Any], size: Size, check: Callable[[dict[str, Any], Size], Any] | None = None) -> None:
    """Both reject the config (or unetviz says it does not trace it), or both accept it and ``check`` (default:
    ``check_against_real``) finds the trace equal to the real network."""
    try:
        unetviz.trace(cfg, size=size)
    except unetviz.NotTraced:
        return  # said so in one line, not guessed
    except unetviz.UnetvizError as e:
        assert real_rejects(cfg) is not None, f"only unetviz rejects: {e}"
        return
    assert real_rejects(cfg) is None
    (check or check_against_real)(cfg, size)


@settings(max_examples=int(os.environ.get("UNETVIZ_FUZZ_EXAMPLES", "10")), derandomize=True, **fuzzkit.COMMON)
@given(network_defs())
def test_generated_configs_agree(case: tuple[dict[str, Any], Size]) -> None:
    differential(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **fuzzkit.COMMON)
@given(network_defs())
def test_generated_configs_agree_long(case: tuple[dict[str, Any], Size]) -> None:
    differential(*case)
