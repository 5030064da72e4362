"""MONAI's transformer-encoder U-Nets, UNETR and SwinUNETR (MONAI 1.6.1): the symbolic trace of a ``network_def``
against the real network on the meta device (state_dict keys, order and shapes, parameters, output shape, MACs
against ``FlopCounterMode`` / 2, the module where the forward fails), 2-D and 3-D, and a differential generator
of random kwargs per class."""

from __future__ import annotations

import os
from math import prod
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

import fuzzkit  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_monai import differential, failing_module, net, real, real_rejects  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import unetviz  # noqa: E402

Size = tuple[int, ...]

# the docstring's examples and the BTCV bundle's network (swin_unetr_btcv_segmentation: feature_size 48)
UNETR_3D = net("UNETR", in_channels=1, out_channels=4, img_size=[96, 96, 96], feature_size=32, norm_name="batch")
UNETR_SMALL = net("monai.networks.nets.UNETR", in_channels=2, out_channels=3, img_size=[32, 64, 48], hidden_size=96,
                  mlp_dim=192, num_heads=4, feature_size=8, qkv_bias=True)
UNETR_2D = net("UNETR", spatial_dims=2, in_channels=1, out_channels=2, img_size=[32, 64], hidden_size=64, mlp_dim=0,
               num_heads=4, proj_type="perceptron", norm_name=["instance", {"affine": True}], conv_block=False,
               res_block=False)
UNETR_2D_CONV = net("UNETR", spatial_dims=2, in_channels=1, out_channels=2, img_size=32, hidden_size=64,
                    num_heads=4, feature_size=8)
SWIN_BTCV = net("SwinUNETR", in_channels=1, out_channels=14, feature_size=48)
SWIN_3D = net("SwinUNETR", in_channels=1, out_channels=2, feature_size=12, num_heads=[1, 2, 3, 4])
SWIN_CLIPPED = net("monai.networks.nets.swin_unetr.SwinUNETR", in_channels=2, out_channels=3, feature_size=12,
                   window_size=[4, 7, 5], depths=[2, 1, 0, 3], num_heads=[2, 3, 4, 6], mlp_ratio=2.5, qkv_bias=False,
                   patch_norm=True, normalize=False, norm_name="batch")
SWIN_2D_V2 = net("SwinUNETR", spatial_dims=2, in_channels=2, out_channels=3, use_v2=True, window_size=[4, 7],
                 patch_norm=True, downsample="mergingv2", depths=[1, 2, 3, 1])
CONFIGS: dict[str, tuple[dict[str, Any], Size]] = {
    "unetr_3d": (UNETR_3D, (96, 96, 96)), "unetr_small": (UNETR_SMALL, (32, 64, 48)),
    "unetr_2d": (UNETR_2D, (32, 64)), "unetr_2d_conv": (UNETR_2D_CONV, (32, 32)),
    "swin_btcv": (SWIN_BTCV, (96, 96, 96)), "swin_3d": (SWIN_3D, (64, 64, 64)),
    "swin_clipped": (SWIN_CLIPPED, (32, 64, 96)), "swin_2d_v2": (SWIN_2D_V2, (64, 96)),
}


def check_against_real(cfg: dict[str, Any], size: Size) -> Any:
    """Manifest, params, MACs (FlopCounterMode / 2, up to a failure) and the output or the failing module agree.
    The model's own forward failing (SwinUNETR's size check) is module ``""`` for torch, ``None`` for unetviz."""
    t = unetviz.trace(cfg, size=size)
    model = real(cfg)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == list(t.manifest)
    assert sum(p.numel() for p in model.parameters()) == t.params
    flops = FlopCounterMode(display=False)
    with flops:
        at, out = failing_module(model, t.in_channels, t.in_size)
    if at is None:
        assert t.error is None, t.error
        assert tuple(out.shape[1:]) == (t.out_channels, *(t.out_size or ()))
    else:
        assert t.error is not None, out
        assert t.error.at == (at or None), (t.error, out)
    assert flops.get_total_flops() == 2 * t.macs
    return t


@pytest.mark.parametrize("name", list(CONFIGS))
def test_config_matches_the_real_network(name: str) -> None:
    t = check_against_real(*CONFIGS[name])
    assert t.error is None and t.family == "monai" and t.model == CONFIGS[name][0]["_target_"].split(".")[-1]


def test_published_figures() -> None:
    assert unetviz.trace(UNETR_3D).params == 101_809_412  # 12 blocks of 7.1 M, position embeddings, the decoder
    assert unetviz.trace(SWIN_BTCV, size="96x96x96").params == 62_187_296  # the BTCV bundle's 62.2 M


def test_unetr_rows_are_tokens() -> None:
    t = unetviz.trace(UNETR_SMALL)  # img_size is its size: the position embeddings are made for it
    assert (t.size_source, t.in_size) == ("img_size", (32, 64, 48))
    n = 2 * 4 * 3  # 16-voxel patches
    first, conv = t.layers[:2]
    assert (first.path, first.type, first.tensors) == (
        "vit.patch_embedding", "PatchEmbeddingBlock", (("vit.patch_embedding.position_embeddings", (1, n, 96)),))
    assert (conv.path, conv.kernel, conv.stride, conv.out_size) == (
        "vit.patch_embedding.patch_embeddings", (16,) * 3, (16,) * 3, (2, 4, 3))
    rows = {x.path: x for x in t.layers if x.path.startswith("vit.blocks.0.")}
    qkv = rows["vit.blocks.0.attn.qkv"]
    assert (qkv.in_channels, qkv.out_channels, qkv.tokens, qkv.in_size) == (96, 288, n, None)
    att = next(x for x in t.layers if x.path == "vit.blocks.0.attn" and x.type == "einsum_attention")
    assert (att.heads, att.tokens, att.kv_tokens, att.params) == (4, n, n, 0)
    assert rows["vit.blocks.0.mlp.linear1"].out_channels == 192
    assert "vit.blocks.0.norm_cross_attn.weight" in dict(t.manifest)  # made, never run
    assert "vit.blocks.0.norm_cross_attn" not in {x.path for x in t.layers}
    # a UnetrPrUpBlock (a ModuleList of upsamplings) heads one unit a 2x upsampling, as the observer reads it
    ups = [u for u in t.units if u.block == "encoder2"]
    assert [(u.path, u.kind, u.in_channels, u.in_size, u.out_size) for u in ups] == [
        ("encoder2.transp_conv_init", "upsample", 96, (2, 4, 3), (4, 8, 6)),
        ("encoder2.blocks.0", "upsample", 16, (4, 8, 6), (8, 16, 12)),
        ("encoder2.blocks.1", "upsample", 16, (8, 16, 12), (16, 32, 24))]
    assert [s.source for s in t.skips] == [
        "encoder1.layer.lrelu", "encoder2.blocks.1.1.lrelu", "encoder3.blocks.0.1.lrelu",
        "encoder4.transp_conv_init.conv"]  # no block after it: the transposed conv returns the map
    assert [c.consumer for c in t.concats] == [f"decoder{i}.conv_block" for i in (5, 4, 3, 2)]


def test_swin_attention_is_batched_over_windows() -> None:
    t = unetviz.trace(SWIN_3D, size="64x64x64")
    layers = {(x.path, x.type): x for x in t.layers}
    qkv = layers["swinViT.layers1.0.blocks.0.attn.qkv", "Linear"]
    assert (qkv.batch, qkv.tokens, qkv.out_channels) == (125, 343, 36)  # 32 padded to 35: 5x5x5 windows of 7x7x7
    deep = layers["swinViT.layers4.0.blocks.1.attn", "attention"]
    assert (deep.batch, deep.tokens, deep.heads) == (1, 64, 4)  # a 4x4x4 map is one window, clipped, not shifted
    assert layers["swinViT.layers1.0.blocks.0.mlp.linear1", "Linear"].tokens == 32 ** 3  # the unpadded map
    merge = layers["swinViT.layers1.0.downsample.reduction", "Linear"]
    assert (merge.in_channels, merge.out_channels, merge.tokens) == (96, 24, 16 ** 3)
    assert "swinViT.layers1.0.blocks.0.attn.relative_position_index" in t.buffers
    table = dict(t.manifest)["swinViT.layers1.0.blocks.0.attn.relative_position_bias_table"]
    assert table == (13 ** 3, 1)
    # hidden state 3 is decoder5's skip as it is; normalised by F.layer_norm, it is what swinViT returns
    assert [s.source for s in t.skips][-1] == "swinViT"
    assert unetviz.trace({**SWIN_3D, "normalize": False}, size=64).skips[-1].source == "swinViT.layers3.0"
    first = t.concats[0]  # cat((up, skip)): the upsampled map first
    assert [(o.source, o.channels) for o in first.inputs] == [("decoder5.transp_conv.conv", 96),
                                                              ("swinViT", 96)]


# ---- sizes where the forward fails ------------------------------------------------------------------------
@pytest.mark.parametrize(("cfg", "size", "at", "words"), [
    (UNETR_2D_CONV, (32, 48), "vit.patch_embedding", "position_embeddings"),  # 6 tokens against 4
    (UNETR_2D_CONV, (16, 64), "decoder2", "torch.cat"),  # 4 tokens, viewed as 2x2
    (UNETR_2D_CONV, (16, 16), "decoder2", "torch.cat"),  # one token takes all four embeddings
    (UNETR_2D_CONV, (33, 32), "decoder2", "torch.cat"),
    (UNETR_2D_CONV, (8, 32), "vit.patch_embedding.patch_embeddings", "too small"),
    ({**UNETR_2D_CONV, "img_size": 16}, (32, 32), None, "proj_feat"),  # 4 tokens against one embedding
    ({**UNETR_2D, "img_size": 32}, (40, 32), "vit.patch_embedding.patch_embeddings.0", "multiple"),
    (SWIN_3D, (64, 64, 48), None, "divisible"),
    ({**SWIN_3D, "num_heads": [5, 2, 3, 4]}, (32, 32, 32), "swinViT.layers1.0.blocks.0.attn", "reshape"),
    ({**SWIN_2D_V2, "patch_size": 1}, (20, 20), "decoder5", "torch.cat"),
])
def test_failing_sizes_fail_at_the_same_module(cfg: dict[str, Any], size: Size, at: str | None, words: str) -> None:
    t = check_against_real(cfg, size)
    assert t.error is not None and t.error.at == at and words in t.error.message, t.error


# ---- unetviz.verify: the observer and the symbolic trace agree to the last unit and block ---------------------
FAILING: list[tuple[dict[str, Any], Size]] = [
    (UNETR_3D, (80, 96, 96)),  # 180 patch tokens against 216 position embeddings
    (UNETR_3D, (8, 96, 96)),  # smaller than a patch: the patch embedding's conv, inside the block owning them
    (UNETR_2D_CONV, (16, 64)),  # decoder2's concat
    (SWIN_BTCV, (96, 96, 80)),  # the model's own check, before any layer
    ({**SWIN_3D, "num_heads": [5, 2, 3, 4]}, (32, 32, 32)),  # the first window attention, inside swinViT
    ({**SWIN_2D_V2, "patch_size": 1}, (20, 20)),  # decoder5's concat
]


@pytest.mark.parametrize(("cfg", "size"), [*CONFIGS.values(), *FAILING],
                         ids=[*CONFIGS, *(f"{c['_target_'].split('.')[-1]}-fails-at-{'x'.join(map(str, s))}"
                                          for c, s in FAILING)])
def test_verify_agrees_on_every_unit_and_block(cfg: dict[str, Any], size: Size) -> None:
    """Zero disagreements at the default size and where the forward fails: a UnetrPrUpBlock (a ModuleList of
    upsamplings) is a heading over them; a UnetrBasicBlock is the resnet or conv block it wraps; SwinUNETR's
    ``swinViT`` returns every level's map, so it is no block: its stages head their transformer blocks and merging,
    which run on channel-last maps (C channels, the positions as tokens, as the symbolic trace reads them);
    UNETR's patch embedding returns tokens (no out size)."""
    r = unetviz.verify(cfg, "x".join(map(str, size)))
    assert not r.disagreements, r.disagreements
    assert r.ok and (r.error_ours is None) == (r.error_real is None) == (size in [s for _, s in CONFIGS.values()])


def test_the_observer_reads_swin_stages_as_headings_over_channel_last_blocks() -> None:
    """The observed trace alone (the model handed to unetviz.trace as a module): the same units and blocks."""
    model = real(SWIN_3D)
    seen = unetviz.trace(model, size=(64, 64, 64), observe_only=True)
    units = {u.path: u for u in seen.units}
    block = units["swinViT.layers1.0.blocks.0"]
    assert (block.kind, block.in_channels, block.in_size, block.block) == ("transformer", 12, None,
                                                                           "swinViT.layers1.0")
    merge = units["swinViT.layers1.0.downsample"]
    assert (merge.kind, merge.in_channels, merge.out_channels) == ("downsample", 12, 24)
    assert units["swinViT.patch_embed"].block == "swinViT.patch_embed"
    assert units["encoder1"].kind == "resnet"  # UnetrBasicBlock(res_block=True) wraps a UnetResBlock
    assert "swinViT" not in dict(seen.blocks)


# ---- configs MONAI rejects -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("cfg", "key"), [
    ({**UNETR_2D_CONV, "hidden_size": 66}, "hidden_size"),
    ({**UNETR_2D_CONV, "img_size": 8}, "img_size"),
    ({**UNETR_2D, "img_size": 40}, "img_size"),
    ({**UNETR_2D_CONV, "dropout_rate": 1.5}, "dropout_rate"),
    ({**UNETR_2D_CONV, "proj_type": "linear"}, "proj_type"),
    ({**UNETR_2D_CONV, "norm_name": "os.system"}, "norm_name"),
    ({**SWIN_3D, "img_size": 64}, "img_size"),  # removed from SwinUNETR in MONAI 1.5
    ({**SWIN_3D, "feature_size": 18}, "feature_size"),
    ({**SWIN_3D, "num_heads": [24, 2, 3, 4]}, "num_heads.0"),
    ({**SWIN_3D, "num_heads": [1, 2, 3]}, "num_heads"),
    ({**SWIN_3D, "downsample": "pool"}, "downsample"),
    ({**SWIN_3D, "attn_drop_rate": -0.1}, "attn_drop_rate"),
    ({**SWIN_3D, "hyena_stages": [True]}, "hyena_stages"),
])
def test_rejected_configs(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(unetviz.UnetvizError) as e:
        unetviz.trace(cfg, size=32)
    msg = str(e.value)
    assert msg.startswith(key) and "\n" not in msg, msg
    assert real_rejects(cfg) is not None


def test_hyena_and_other_depths_are_not_traced() -> None:
    for cfg in ({**SWIN_3D, "use_hyena": True}, {**SWIN_3D, "depths": [2, 2, 2]}):
        with pytest.raises(unetviz.NotTraced):
            unetviz.trace(cfg, size=64)


# ---- differential: random kwargs per class, 2-D and 3-D --------------------------------------------------------
NORMS = ["instance", "batch", ["instance", {"affine": True}], ["group", {"num_groups": 1}]]


@st.composite
def unetr_defs(draw: st.DrawFn) -> tuple[dict[str, Any], Size]:
    """A small UNETR, mostly valid: a width not a multiple of the heads, an image under a patch and a dropout over 1
    now and then; the size its img_size, or off by a patch or a voxel."""
    d = draw(st.sampled_from([2, 3]))
    rarely = st.sampled_from([False] * 12 + [True])
    heads = draw(st.integers(1, 4))
    img = draw(st.lists(st.sampled_from([16, 32, 48] + [8] * draw(rarely)), min_size=d, max_size=d))
    cfg = net("UNETR", spatial_dims=d, in_channels=draw(st.integers(1, 3)), out_channels=draw(st.integers(1, 3)),
              img_size=img, hidden_size=heads * draw(st.integers(2, 8)) + draw(rarely),
              mlp_dim=draw(st.sampled_from([0, 16, 40])), num_heads=heads, feature_size=draw(st.integers(2, 8)),
              proj_type=draw(st.sampled_from(["conv", "perceptron"])), norm_name=draw(st.sampled_from(NORMS)),
              conv_block=draw(st.booleans()), res_block=draw(st.booleans()), qkv_bias=draw(st.booleans()),
              dropout_rate=draw(st.sampled_from([0.0, 0.1] + [1.5] * draw(rarely))))
    off = st.sampled_from([0] * 6 + [16, -8, 1])
    return cfg, tuple(max(1, i + draw(off)) for i in img)


@st.composite
def swin_defs(draw: st.DrawFn) -> tuple[dict[str, Any], Size]:
    """A small SwinUNETR, mostly valid: a feature size off 12, a head count over a stage's width or not dividing
    it, a size off the 32 grid, a patch of 1 now and then."""
    d = draw(st.sampled_from([2, 3]))
    rarely = st.sampled_from([False] * 12 + [True])
    window = st.integers(2, 7)
    cfg = net("SwinUNETR", spatial_dims=d, in_channels=draw(st.integers(1, 3)), out_channels=draw(st.integers(1, 3)),
              feature_size=12 * draw(st.integers(1, 2)) + 6 * draw(rarely),
              depths=draw(st.lists(st.integers(0, 2), min_size=4, max_size=4)),
              num_heads=draw(st.lists(st.sampled_from([1, 2, 3, 4] + [5, 13] * draw(rarely)), min_size=4,
                                      max_size=4)),
              window_size=draw(window | st.lists(window, min_size=d, max_size=d)),
              mlp_ratio=draw(st.sampled_from([4.0, 2.0, 0.5])), qkv_bias=draw(st.booleans()),
              norm_name=draw(st.sampled_from(NORMS)), normalize=draw(st.booleans()), patch_norm=draw(st.booleans()),
              downsample=draw(st.sampled_from(["merging", "mergingv2"])), use_v2=draw(st.booleans()),
              patch_size=draw(st.sampled_from([2] * 8 + [1])))
    side = st.sampled_from([32, 64] + ([96] if d == 2 else []) + [40] * draw(rarely))
    return cfg, tuple(draw(st.lists(side, min_size=d, max_size=d)))


EXAMPLES = int(os.environ.get("UNETVIZ_FUZZ_EXAMPLES", "10"))


@settings(max_examples=EXAMPLES, derandomize=True, **fuzzkit.COMMON)
@given(unetr_defs())
def test_generated_unetr_agree(case: tuple[dict[str, Any], Size]) -> None:
    differential(*case, check=check_against_real)


@settings(max_examples=EXAMPLES, derandomize=True, **fuzzkit.COMMON)
@given(swin_defs())
def test_generated_swin_unetr_agree(case: tuple[dict[str, Any], Size]) -> None:
    differential(*case, check=check_against_real)


@pytest.mark.slow
@settings(max_examples=fuzzkit.LONG, **fuzzkit.COMMON)
@given(st.one_of(unetr_defs(), swin_defs()))
def test_generated_configs_agree_long(case: tuple[dict[str, Any], Size]) -> None:
    differential(*case, check=check_against_real)


def test_window_count_is_the_padded_grid() -> None:
    t = unetviz.trace(SWIN_CLIPPED, size="32x64x96")
    qkv = next(x for x in t.layers if x.path == "swinViT.layers1.0.blocks.0.attn.qkv")
    # stage 1 is 16x32x48 under a 4x7x5 window: 4 x 5 (32 padded to 35) x 10 windows of 140 positions
    assert (qkv.batch, qkv.tokens) == (4 * 5 * 10, prod((4, 7, 5)))
