"""nnU-Net's networks: the symbolic trace of a plans ``architecture`` against dynamic_network_architectures'
real PlainConvUNet / ResidualEncoderUNet on the meta device (state_dict keys, order and shapes, parameters,
output shape, and the module where the forward fails)."""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("dynamic_network_architectures")

import fuzzkit  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import unetviz  # noqa: E402
from unetviz.live.upstream import nnunet as ref  # noqa: E402

PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
IMPORTS = ["conv_op", "norm_op", "dropout_op", "nonlin"]
IN3 = {"norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d", "norm_op_kwargs": {"eps": 1e-05, "affine": True},
       "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
       "nonlin_kwargs": {"inplace": True}}


def config(cls: str, patch: list[int], **arch: Any) -> dict[str, Any]:
    return {"family": "nnunet", "network_class_name": cls, "arch_kwargs": arch, "arch_kwargs_req_import": IMPORTS,
            "input_channels": 1, "num_classes": 3, "patch_size": patch}


# nnU-Net's 3d_fullres for an anisotropic CT (in-plane strides first, as the planner makes them)
FULLRES = config(PLAIN, [20, 256, 224], n_stages=6, features_per_stage=[32, 64, 128, 256, 320, 320],
                 conv_op="torch.nn.modules.conv.Conv3d",
                 kernel_sizes=[[1, 3, 3], [1, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
                 strides=[[1, 1, 1], [1, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2], [1, 2, 2]],
                 n_conv_per_stage=[2] * 6, n_conv_per_stage_decoder=[2] * 5, conv_bias=True, **IN3)
# nnU-Net's 2d configuration: 7 stages up to 512 features
TWO_D = config(PLAIN, [512, 448], n_stages=7, features_per_stage=[32, 64, 128, 256, 512, 512, 512],
               conv_op="torch.nn.modules.conv.Conv2d", kernel_sizes=[[3, 3]] * 7,
               strides=[[1, 1]] + [[2, 2]] * 6, n_conv_per_stage=[2] * 7, n_conv_per_stage_decoder=[2] * 6,
               conv_bias=True, **{**IN3, "norm_op": "torch.nn.modules.instancenorm.InstanceNorm2d"})
# nnUNetResEncUNetMPlans' 3d_fullres: 1/3/4/6/6/6 BasicBlockD per stage, one conv per decoder stage
RESENC_M = config(RESENC, [128, 128, 128], n_stages=6, features_per_stage=[32, 64, 128, 256, 320, 320],
                  conv_op="torch.nn.modules.conv.Conv3d", kernel_sizes=[[3, 3, 3]] * 6,
                  strides=[[1, 1, 1]] + [[2, 2, 2]] * 5, n_blocks_per_stage=[1, 3, 4, 6, 6, 6],
                  n_conv_per_stage_decoder=[1] * 5, conv_bias=True, **IN3)
# a BatchNorm 2-D variant with dropout, ReLU, nonlin before norm, deep supervision
BATCHNORM = {**config(PLAIN, [96, 80], n_stages=4, features_per_stage=[8, 16, 32, 64],
                      conv_op="torch.nn.Conv2d", kernel_sizes=3, strides=[1, 2, 2, [1, 2]], n_conv_per_stage=2,
                      n_conv_per_stage_decoder=[1, 2, 1], norm_op="torch.nn.modules.batchnorm.BatchNorm2d",
                      dropout_op="torch.nn.modules.dropout.Dropout2d", dropout_op_kwargs={"p": 0.2},
                      nonlin="torch.nn.ReLU", nonlin_kwargs={"inplace": True}, nonlin_first=True),
             "deep_supervision": True}
# a BottleneckD residual encoder with its own stem width, deep supervision
BOTTLENECK = {**config(RESENC, [24, 40, 40], n_stages=4, features_per_stage=[16, 32, 48, 64],
                       conv_op="torch.nn.Conv3d", kernel_sizes=[[1, 3, 3], 3, 3, 3],
                       strides=[1, [1, 2, 2], 2, 2], n_blocks_per_stage=[1, 2, 2, 1], n_conv_per_stage_decoder=1,
                       block="dynamic_network_architectures.building_blocks.residual.BottleneckD",
                       bottleneck_channels=[4, 8, 12, 16], stem_channels=12,
                       norm_op="torch.nn.BatchNorm3d", nonlin="torch.nn.LeakyReLU"),
              "arch_kwargs_req_import": [*IMPORTS, "block"], "deep_supervision": True}
CONFIGS = {"3d_fullres": FULLRES, "2d": TWO_D, "resenc_m": RESENC_M, "batchnorm_2d": BATCHNORM,
           "bottleneck": BOTTLENECK, "3d_fullres_ds": {**FULLRES, "deep_supervision": True}}


def kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k != "family"}


def real(cfg: dict[str, Any]) -> Any:
    return ref.build(None, kwargs(cfg))


def forward(model: Any, channels: int, size: tuple[int, ...]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model(torch.empty(1, channels, *size, device="meta"))


def failing_module(model: Any, channels: int, size: tuple[int, ...]) -> tuple[str | None, str]:
    """(the module where the forward raises, the error), or (None, "")."""
    at, error = fuzzkit.failing_module(model, lambda: forward(model, channels, size))
    return (at, error) if at is not None else (None, "")


def seg_maps(out: Any) -> list[tuple[int, ...]]:
    return [tuple(o.shape[1:]) for o in (out if isinstance(out, list) else [out])]


def check_against_real(cfg: dict[str, Any], size: tuple[int, ...] | None = None) -> Any:
    """Both accept: manifest, params and (output or failing module) agree. Returns the trace."""
    t = unetviz.trace(cfg, size=size)
    model = real(cfg)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == list(t.manifest)
    assert sum(p.numel() for p in model.parameters()) == t.params
    at, error = failing_module(model, cfg["input_channels"], t.in_size)
    if at is None:
        assert t.error is None, t.error
        out = forward(model, cfg["input_channels"], t.in_size)
        assert seg_maps(out)[0] == (t.out_channels, *(t.out_size or ()))
    else:
        assert t.error is not None, error
        assert t.error.at == at, (t.error, error)
    return t


# ---- published configurations ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CONFIGS))
def test_config_matches_the_real_network(name: str) -> None:
    t = check_against_real(CONFIGS[name])
    assert t.error is None and t.size_source == "patch_size"
    assert t.aliases and all(k in dict(t.manifest) for k in t.aliases)


def test_fullres_figures() -> None:
    t = unetviz.trace(FULLRES)
    assert (t.model, t.space, t.in_size, t.out_channels, t.out_size) == (
        "PlainConvUNet", "volume", (20, 256, 224), 3, (20, 256, 224))
    assert t.params == 30_044_847 and len(t.manifest) == 292
    # every stage's stride, in-plane first: 20x256x224 -> 20x128x112 -> 10x64x56 -> 5x32x28 -> 5x16x14 -> 5x8x7
    firsts = [x for x in t.layers if x.path.endswith("convs.0.conv") and x.path.startswith("encoder")]
    assert [x.stride for x in firsts] == [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 2, 2), (1, 2, 2), (1, 2, 2)]
    assert [x.out_size for x in firsts][-1] == (5, 8, 7) and firsts[0].kernel == (1, 3, 3)
    norm = t.layers[1]
    assert (norm.path, norm.type, norm.params) == ("encoder.stages.0.0.convs.0.norm", "InstanceNorm3d", 64)
    up = next(x for x in t.layers if x.path == "decoder.transpconvs.0")
    assert (up.type, up.in_channels, up.out_channels, up.kernel, up.stride, up.out_size) == (
        "ConvTranspose3d", 320, 320, (1, 2, 2), (1, 2, 2), (5, 16, 14))
    assert [(s.channels, s.size) for s in t.skips][:2] == [(32, (20, 256, 224)), (64, (20, 128, 112))]
    assert [c.channels for c in t.concats] == [640, 512, 256, 128, 64]
    # the conv registered twice: both keys listed, counted once
    assert t.aliases["encoder.stages.0.0.convs.0.all_modules.0.weight"] == "encoder.stages.0.0.convs.0.conv.weight"
    assert t.aliases["decoder.encoder.stages.0.0.convs.0.all_modules.1.bias"] == "encoder.stages.0.0.convs.0.norm.bias"


def test_deep_supervision_runs_every_head() -> None:
    off, on = unetviz.trace(FULLRES), unetviz.trace({**FULLRES, "deep_supervision": True})
    assert off.manifest == on.manifest and off.params == on.params  # the heads are always built
    heads = [x.path for x in on.layers if ".seg_layers." in x.path]
    assert heads == [f"decoder.seg_layers.{i}" for i in range(5)]
    assert [x.path for x in off.layers if ".seg_layers." in x.path] == ["decoder.seg_layers.4"]
    out = forward(real({**FULLRES, "deep_supervision": True}), 1, (20, 256, 224))
    assert [o[1:] for o in seg_maps(out)] == [x.out_size for x in reversed(on.layers) if ".seg_layers." in x.path]


def test_resenc_blocks() -> None:
    t = unetviz.trace(RESENC_M)
    assert t.model == "ResidualEncoderUNet"
    block = next(u for u in t.units if u.path == "encoder.stages.1.blocks.0")
    # its strided conv halves the map: a sampler, as the observer classifies it
    assert (block.kind, block.type, block.in_size, block.out_size) == ("downsample", "BasicBlockD", (128,) * 3,
                                                                       (64,) * 3)
    # ResNet-D's skip runs first: avg pool (no row) then the 1x1 projection, without a bias
    first = [x.path for x in t.layers[block.first:block.last]][:2]
    assert first == ["encoder.stages.1.blocks.0.skip.1.conv", "encoder.stages.1.blocks.0.skip.1.norm"]
    assert "encoder.stages.1.blocks.0.skip.1.conv.bias" not in dict(t.manifest)
    # the deep-supervision heads inference never runs are units of no layer: units still sum to the model
    heads = [u for u in t.units if u.path.startswith("decoder.seg_layers.") and u.first == u.last]
    assert heads and all("not run" in u.note for u in heads)
    assert sum(u.params for u in t.units) == sum(x.params for x in t.layers) + _unrun(t) == t.params


def _unrun(t: Any) -> int:
    run = {k for x in t.layers for k, _ in x.tensors}
    return sum(torch.Size(s).numel() for k, s in t.manifest if k not in run and k not in t.aliases
               and k not in t.buffers)


def test_volume_input_declared_by_conv_op() -> None:
    assert unetviz.trace(FULLRES, size="16x64x64").in_size == (16, 64, 64)
    assert unetviz.trace(TWO_D, size=256).in_size == (256, 256)
    assert unetviz.trace(TWO_D).space == "pixel"


# ---- sizes where the forward fails --------------------------------------------------------------------
@pytest.mark.parametrize(("name", "size", "at", "words"), [
    ("3d_fullres", (21, 256, 224), "decoder", "torch.cat"),  # D: 21 -> 11 -> 6 -> up to 12 vs the 11 skip
    ("2d", (64, 64), "encoder.stages.6.0.convs.0.norm", "more than 1 spatial element"),  # 1x1 bottleneck
    ("resenc_m", (128, 128, 40), "encoder.stages.4.blocks.0", "out += residual"),  # 5 -> conv 3, avg pool 2
    ("bottleneck", (24, 40, 40), None, ""),
])
def test_failing_sizes_fail_at_the_same_module(name: str, size: tuple[int, ...], at: str | None,
                                                 words: str) -> None:
    t = check_against_real(CONFIGS[name], size)
    assert (t.error.at if t.error else None) == at
    assert t.error is None or words in t.error.message


def test_odd_size_after_a_strided_conv_fails_at_the_concat_in_both() -> None:
    t = unetviz.trace(FULLRES, size="21x256x224")
    assert t.error is not None and "12" in t.error.message and "11" in t.error.message
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        forward(real(FULLRES), 1, (21, 256, 224))


# ---- configs the constructor (or nnU-Net's loader) rejects ---------------------------------------------
def _with(cfg: dict[str, Any], **arch: Any) -> dict[str, Any]:
    out = copy.deepcopy(cfg)
    out["arch_kwargs"].update(arch)
    return out


@pytest.mark.parametrize(("cfg", "key"), [
    (_with(FULLRES, conv_op="os.system"), "arch_kwargs.conv_op"),
    (_with(FULLRES, nonlin="subprocess.Popen"), "arch_kwargs.nonlin"),
    ({**FULLRES, "network_class_name": "builtins.eval"}, "network_class_name"),
    (_with(FULLRES, n_conv_per_stage=[2] * 5), "arch_kwargs.n_conv_per_stage"),
    (_with(FULLRES, n_conv_per_stage_decoder=[2] * 6), "arch_kwargs.n_conv_per_stage_decoder"),
    (_with(FULLRES, strides=[1, 2]), "arch_kwargs.strides"),
    (_with(FULLRES, n_stages=0), "arch_kwargs.n_stages"),
    (_with(FULLRES, n_conv_per_stage=0), "arch_kwargs.n_conv_per_stage"),
    (_with(FULLRES, dropout_op="torch.nn.Dropout3d"), "arch_kwargs.dropout_op_kwargs"),
    (_with(FULLRES, dropout_op="torch.nn.Dropout3d", dropout_op_kwargs={"p": 1.5}), "arch_kwargs.dropout_op_kwargs.p"),
    (_with(FULLRES, norm_op_kwargs={"eps": 1e-5, "afine": True}), "arch_kwargs.norm_op_kwargs"),
    (_with(FULLRES, features=[32] * 6), "arch_kwargs.features"),
    (_with(RESENC_M, block="dynamic_network_architectures.building_blocks.residual.BottleneckD"), "arch_kwargs.block"),
    ({**FULLRES, "arch_kwargs_req_import": ["conv_op", "norm_op", "dropout_op"]}, "arch_kwargs.nonlin"),
])
def test_rejected_configs(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(unetviz.UnetvizError) as e:
        unetviz.trace(cfg)
    msg = str(e.value)
    assert msg.startswith(key) and "\n" not in msg, msg
    assert fuzzkit.constructs(ref.build, cfg) is not None  # and nnU-Net refuses it too


def test_bottleneck_needs_its_channels_in_both() -> None:
    cfg = _with(RESENC_M, block="dynamic_network_architectures.building_blocks.residual.BottleneckD")
    cfg["arch_kwargs_req_import"] = [*IMPORTS, "block"]
    with pytest.raises(unetviz.UnetvizError, match=r"^arch_kwargs\.bottleneck_channels"):
        unetviz.trace(cfg)
    assert fuzzkit.constructs(ref.build, cfg) is not None


# ---- unetviz.verify against the observed real model ---------------------------------------------------
@pytest.mark.parametrize(("name", "size"), [*((n, None) for n in CONFIGS), ("3d_fullres", (21, 256, 224)),
                                           ("2d", (511, 448)), ("resenc_m", (128, 127, 128))])
def test_verify(name: str, size: tuple[int, ...] | None) -> None:
    """Zero disagreements at the patch size and at a size the model fails at (the same failing module): units
    (ConvDropoutNormReLU, BasicBlockD) under their stage headings on both sides, the skip from the in-place
    nonlin, the concat's consumer the decoder stage; torchinfo's count of the modules registered twice is a note."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = unetviz.verify(CONFIGS[name], "x".join(map(str, size)) if size else None)
    assert r.counts["tensors"] == len(unetviz.trace(CONFIGS[name]).manifest)
    assert not r.disagreements, r.disagreements
    assert (r.error_real is None) == (size is None) and r.output_ours == r.output_real
    assert any("torchinfo counts" in n for n in r.notes), r.notes


# ---- differential: random arch_kwargs, 2-D and 3-D, against the real constructor and forward -------------
NORMS = ["torch.nn.BatchNorm2d", "torch.nn.BatchNorm3d", "torch.nn.InstanceNorm2d", "torch.nn.InstanceNorm3d"]


@st.composite
def arch_configs(draw: st.DrawFn) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Mostly valid arch_kwargs (2-D and 3-D, both classes), with now and then what the constructor refuses:
    a list one entry short or long, zero convs or blocks, dropout without its kwargs or with p > 1."""
    dims = draw(st.sampled_from([2, 3]))
    resenc = draw(st.booleans())
    n = draw(st.integers(1, 4))
    wrong = draw(st.sampled_from([0] * 10 + [-1, 1]))
    rarely = st.sampled_from([False] * 10 + [True])

    def per_stage(values: st.SearchStrategy[Any], length: int) -> Any:
        """One value for every stage, or a list of them (a JSON list for upstream's list or tuple)."""
        k = max(0, length + wrong)
        return draw(st.one_of(values, st.lists(values, min_size=k, max_size=k)))

    side = st.integers(1, 3)
    axes = st.one_of(side, st.lists(side, min_size=dims, max_size=dims))  # a stage's kernel or stride
    count = st.integers(0, 2) if draw(rarely) else st.integers(1, 2)
    arch: dict[str, Any] = {
        "n_stages": n, "features_per_stage": per_stage(st.integers(1, 6), n), "conv_op": f"torch.nn.Conv{dims}d",
        "kernel_sizes": draw(st.one_of(side, st.lists(axes, min_size=max(0, n + wrong), max_size=max(0, n + wrong)))),
        "strides": draw(st.one_of(side, st.lists(axes, min_size=max(0, n + wrong), max_size=max(0, n + wrong)))),
        "n_conv_per_stage_decoder": per_stage(st.integers(1, 2), n - 1), "conv_bias": draw(st.booleans()),
        "norm_op": draw(st.sampled_from([None, f"torch.nn.BatchNorm{dims}d", f"torch.nn.InstanceNorm{dims}d",
                                         *NORMS[:3]])),
        "norm_op_kwargs": draw(st.sampled_from([None, {"affine": True}, {"affine": False, "track_running_stats": True},
                                                {"eps": 1e-5, "affine": True, "track_running_stats": False}])),
        "nonlin": draw(st.sampled_from([None, "torch.nn.LeakyReLU", "torch.nn.modules.activation.ReLU"])),
    }
    if draw(st.booleans()):
        arch["dropout_op"] = draw(st.sampled_from(["torch.nn.Dropout", f"torch.nn.Dropout{dims}d"]))
        arch["dropout_op_kwargs"] = draw(st.sampled_from([{"p": 0.1}] * 8 + [None, {"p": 2}]))
    if resenc:
        arch["n_blocks_per_stage"] = per_stage(count, n)
        if draw(st.booleans()):
            arch["block"] = "dynamic_network_architectures.building_blocks.residual.BottleneckD"
            arch["bottleneck_channels"] = draw(st.one_of(st.integers(1, 4), st.none() if draw(rarely) else st.just(2)))
        if draw(st.booleans()):
            arch["stem_channels"] = draw(st.integers(1, 5))
    else:
        arch["n_conv_per_stage"] = per_stage(count, n)
        arch["nonlin_first"] = draw(st.booleans())
    cfg = {"family": "nnunet", "network_class_name": RESENC if resenc else PLAIN, "arch_kwargs": arch,
           "arch_kwargs_req_import": [*IMPORTS, "block"] if resenc else IMPORTS,
           "input_channels": draw(st.integers(1, 3)), "num_classes": draw(st.integers(1, 3)),
           "deep_supervision": draw(st.booleans())}
    size = tuple(draw(st.lists(st.integers(1, 40), min_size=dims, max_size=dims)))
    return cfg, size


def differential(cfg: dict[str, Any], size: tuple[int, ...]) -> None:
    try:
        unetviz.trace(cfg, size=size)
    except unetviz.NotTraced:
        return  # an InstanceNorm3d on 2-D maps, a one-stage net with deep supervision: said so, not guessed
    except unetviz.UnetvizError as e:
        assert fuzzkit.constructs(ref.build, cfg) is not None, f"only unetviz rejects: {e}"
        return
    assert fuzzkit.constructs(ref.build, cfg) is None
    check_against_real(cfg, size)


@settings(max_examples=int(os.environ.get("UNETVIZ_FUZZ_EXAMPLES", "10")), derandomize=True, **fuzzkit.COMMON)
@given(arch_configs())
def test_generated_configs_agree(case: tuple[dict[str, Any], tuple[int, ...]]) -> None:
    differential(*case)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **fuzzkit.COMMON)
@given(arch_configs())
def test_generated_configs_agree_long(case: tuple[dict[str, Any], tuple[int, ...]]) -> None:
    differential(*case)
