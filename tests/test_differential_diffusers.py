"""Differential testing: hypothesis-generated diffusers configs, symbolic trace vs the real model.

The generators draw every constructor option of ``UNet2DModel`` and ``UNet2DConditionModel`` (the
ones unetviz traces), with valid and invalid values, and odd, non-square and tiny sizes. Each config
is either rejected by both unetviz and diffusers' constructor, or accepted by both and then
``verify`` finds no disagreement in layers, concats, skips, output, manifest, params or failure
place (units and blocks are compared by verify too, but counted apart). A value unetviz says it
does not trace yet (a block type or embedding of the coverage issue) is skipped, not counted.

The default run is a small sample; ``make fuzz`` (``pytest -m slow``) runs ``UNETVIZ_FUZZ_EXAMPLES``
examples per class. With ``UNETVIZ_FUZZ_RECORD=FILE`` every outcome is appended to FILE as a JSON
line instead of failing, which is how the agreement figures are counted.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

import fuzzkit  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from unetviz.live.upstream import diffusers as adapter  # noqa: E402

Case = tuple[dict[str, Any], tuple[int, int]]
DOWN = ["DownBlock2D", "AttnDownBlock2D", "CrossAttnDownBlock2D", "ResnetDownsampleBlock2D",
        "SimpleCrossAttnDownBlock2D", "SkipDownBlock2D", "AttnSkipDownBlock2D"]
UP = {"DownBlock2D": "UpBlock2D", "AttnDownBlock2D": "AttnUpBlock2D", "CrossAttnDownBlock2D": "CrossAttnUpBlock2D",
      "ResnetDownsampleBlock2D": "ResnetUpsampleBlock2D", "SimpleCrossAttnDownBlock2D": "SimpleCrossAttnUpBlock2D",
      "SkipDownBlock2D": "SkipUpBlock2D", "AttnSkipDownBlock2D": "AttnSkipUpBlock2D"}
K_UP = {"KDownBlock2D": "KUpBlock2D", "KCrossAttnDownBlock2D": "KCrossAttnUpBlock2D"}
"""The k-diffusion blocks (sd-x2-latent-upscaler): their norms have channels // 32 groups whatever
``norm_num_groups`` says, so they get wider channels, some that 32 does not divide."""
CROSS = ("CrossAttn", "SimpleCrossAttn")
"""Block types that need a cross_attention_dim (UNet2DConditionModel's)."""
ACTS = ["silu", "swish", "gelu", "mish", "relu"]
INVALID: dict[str, list[Any]] = {
    # values the constructor must reject, or that upstream accepts in ways easy to get wrong
    "act_fn": ["not_an_act"], "dropout": [1.5], "resnet_time_scale_shift": ["spatial", "bogus"],
    "norm_num_groups": [None, 3], "time_embedding_type": ["bogus"], "layers_per_block": [1.0, -1],
    "attention_head_dim": [0, 2.0, None], "in_channels": [3.0], "time_embedding_dim": [7, 4.0],
    "mid_block_type": ["Bogus"], "num_train_timesteps": [None], "addition_embed_type": ["bogus"],
    "encoder_hid_dim_type": ["bogus"], "time_embedding_act_fn": ["not_an_act"], "cross_attention_dim": [None],
    "only_cross_attention": [1], "conv_in_kernel": [2], "transformer_layers_per_block": [[[1, 1]]],
}
CONDITION_ONLY = ("addition_embed_type", "encoder_hid_dim_type", "time_embedding_act_fn", "cross_attention_dim",
                  "only_cross_attention", "conv_in_kernel", "transformer_layers_per_block")


def _invalid(draw: st.DrawFn, cfg: dict[str, Any]) -> None:
    """One time in four, one option gets a value upstream rejects (or treats surprisingly)."""
    if draw(st.integers(0, 3)) != 3:
        return
    keys = [k for k in INVALID if cfg["_class_name"] == "UNet2DConditionModel" or k not in CONDITION_ONLY]
    key = draw(st.sampled_from(keys))
    cfg[key] = draw(st.sampled_from(INVALID[key]))


def _maybe(draw: st.DrawFn, cfg: dict[str, Any], key: str, values: st.SearchStrategy[Any]) -> None:
    """Set ``key`` about half the time: the other half checks upstream's default."""
    if draw(st.booleans()):
        cfg[key] = draw(values)


def sizes() -> st.SearchStrategy[tuple[int, int]]:
    # tiny (1, 2), odd and non-square: where downsampling rounds and convolutions run out of input
    return st.tuples(st.one_of(st.integers(1, 4), st.integers(5, 24)), st.one_of(st.integers(1, 4), st.integers(5, 24)))


@st.composite
def _blocks(draw: st.DrawFn, cross: bool) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([2, 4]))
    if draw(st.integers(0, 4)) == 4:
        return draw(_k_blocks(n, groups))
    score_sde = not cross and draw(st.integers(0, 2)) == 2  # skip blocks only, often no norm groups
    # the skip blocks' attention has 32 groups and their resnets min(C // 4, 32): wider channels
    width = st.sampled_from([32, 64] if score_sde else [groups, 2 * groups, 3 * groups])
    channels: list[Any] = [draw(width) for _ in range(n)]
    if draw(st.integers(0, 9)) == 9:  # invalid: a float, a count GroupNorm cannot split, a wrong length
        channels[draw(st.integers(0, n - 1))] = draw(st.sampled_from([8.0, 6, 5, -4, 3 * groups]))
    if draw(st.integers(0, 19)) == 19:
        channels = [*channels, groups]
    # the skip blocks belong to UNet2DModel (UNet2DConditionModel's forward cannot run them)
    kinds = [d for d in DOWN if "Skip" not in d] if cross else [d for d in DOWN if not d.startswith(CROSS)]
    if score_sde:
        kinds = [d for d in DOWN if "Skip" in d]
    down = draw(st.lists(st.sampled_from(kinds), min_size=n, max_size=n))
    up = [UP[d] for d in reversed(down)]
    if draw(st.integers(0, 4)) == 4:  # any up block, to hit channel and size mismatches
        up = draw(st.lists(st.sampled_from([UP[k] for k in kinds]), min_size=n, max_size=n))
    if draw(st.integers(0, 14)) == 14:
        down = [f"UNetRes{b}" if b == "DownBlock2D" else b for b in down]
    if draw(st.integers(0, 19)) == 19:
        up = draw(st.sampled_from([[*up, "UpBlock2D"], ["Bogus2D"] * n, [*up[:-1], "CrossAttnUpBlock2D"]]))
    return {"block_out_channels": channels, "down_block_types": down, "up_block_types": up,
            "norm_num_groups": groups}


@st.composite
def _k_blocks(draw: st.DrawFn, n: int, groups: int) -> dict[str, Any]:
    """k-diffusion blocks, norm_num_groups null (as the upscaler has it), or one in four mixed with ordinary
    blocks (which need the groups)."""
    mixed = draw(st.integers(0, 3)) == 3
    kinds = [*K_UP, "DownBlock2D", "CrossAttnDownBlock2D"] if mixed else list(K_UP)
    channels = [draw(st.sampled_from([32, 64, 96, 64, 16, 65] if not mixed else [32, 64])) for _ in range(n)]
    down = draw(st.lists(st.sampled_from(kinds), min_size=n, max_size=n))
    up = [K_UP.get(d) or UP[d] for d in reversed(down)]
    if draw(st.integers(0, 4)) == 4:
        up = draw(st.lists(st.sampled_from([K_UP.get(k) or UP[k] for k in kinds]), min_size=n, max_size=n))
    return {"block_out_channels": channels, "down_block_types": down, "up_block_types": up,
            "norm_num_groups": groups if mixed else None}


def _common(draw: st.DrawFn, cfg: dict[str, Any]) -> None:
    for key, values in (
        ("in_channels", st.integers(1, 4)), ("out_channels", st.integers(1, 4)),
        ("center_input_sample", st.booleans()), ("flip_sin_to_cos", st.booleans()),
        ("freq_shift", st.sampled_from([0, 1])), ("downsample_padding", st.sampled_from([0, 1, 2])),
        ("mid_block_scale_factor", st.sampled_from([1, 0.5])), ("dropout", st.sampled_from([0.0, 0.1])),
        ("act_fn", st.sampled_from(ACTS)), ("norm_eps", st.sampled_from([1e-5, 1e-6])),
        ("resnet_time_scale_shift", st.sampled_from(["default", "scale_shift"])),
        ("sample_size", st.sampled_from([None, 8, [8, 12]])),
    ):
        _maybe(draw, cfg, key, values)


@st.composite
def unet2d_configs(draw: st.DrawFn) -> Case:
    """A small ``UNet2DModel`` (few channels, so each example runs in well under a second) and a size."""
    cfg: dict[str, Any] = {"_class_name": "UNet2DModel", **draw(_blocks(cross=draw(st.integers(0, 14)) == 14))}
    _common(draw, cfg)
    for key, values in (
        ("layers_per_block", st.sampled_from([1, 1, 2, 0])),
        ("attention_head_dim", st.sampled_from([None, 1, 2, 4, 8])),
        ("attn_norm_num_groups", st.sampled_from([None, 2, 3])),
        ("add_attention", st.booleans()),
        ("mid_block_type", st.sampled_from(["UNetMidBlock2D", None, "AnyMid"])),
        ("downsample_type", st.sampled_from(["conv", "resnet", None, "none"])),
        ("upsample_type", st.sampled_from(["conv", "resnet", None, "none"])),
        ("time_embedding_type", st.sampled_from(["positional", "fourier", "learned"])),
        ("time_embedding_dim", st.sampled_from([None, 16, 0])),
        ("class_embed_type", st.sampled_from([None, "timestep", "identity", "projection", "bogus"])),
        ("num_class_embeds", st.sampled_from([None, 3])),
        ("num_train_timesteps", st.sampled_from([None, 10])),
    ):
        _maybe(draw, cfg, key, values)
    if cfg.get("time_embedding_type") == "learned":
        cfg["num_train_timesteps"] = 10
    if "Skip" in str(cfg["down_block_types"]) and draw(st.integers(0, 3)):
        # the image path: a 3-channel input and output, norm_num_groups null as NCSN++ has it
        cfg.update(in_channels=3, out_channels=3, norm_num_groups=None, time_embedding_type="fourier")
    _invalid(draw, cfg)
    return cfg, draw(sizes())


def _per_block(draw: st.DrawFn, n: int, values: st.SearchStrategy[Any]) -> Any:
    """An int for every block, or a list with one per block (sometimes one too many)."""
    if draw(st.booleans()):
        return draw(values)
    extra = 1 if draw(st.integers(0, 19)) == 19 else 0
    return draw(st.lists(values, min_size=n + extra, max_size=n + extra))


@st.composite
def unet2d_condition_configs(draw: st.DrawFn) -> Case:
    """A small ``UNet2DConditionModel`` with any of the options unetviz traces, and a size."""
    cfg: dict[str, Any] = {"_class_name": "UNet2DConditionModel", **draw(_blocks(cross=True))}
    n = len(cfg["down_block_types"])
    _common(draw, cfg)
    cfg["layers_per_block"] = _per_block(draw, n, st.sampled_from([1, 1, 2, 0]))
    cfg["attention_head_dim"] = _per_block(draw, n, st.sampled_from([1, 2, 4, 1, 2, 16]))
    cfg["cross_attention_dim"] = _per_block(draw, n, st.sampled_from([8, 8, 8, 16]))
    depth = st.sampled_from([1, 1, 2, 0])
    _maybe(draw, cfg, "transformer_layers_per_block", st.one_of(
        depth, st.lists(depth, min_size=n, max_size=n + 1), st.lists(st.lists(depth, min_size=1, max_size=3),
                                                                     min_size=n, max_size=n)))
    if draw(st.integers(0, 3)) == 3:
        cfg["reverse_transformer_layers_per_block"] = draw(st.lists(st.lists(depth, min_size=1, max_size=4),
                                                                    min_size=n, max_size=n))
    for key, values in (
        ("mid_block_type", st.sampled_from(["UNetMidBlock2DCrossAttn", "UNetMidBlock2D", None,
                                            "UNetMidBlock2DSimpleCrossAttn"])),
        ("only_cross_attention", st.one_of(st.booleans(), st.lists(st.booleans(), min_size=n, max_size=n))),
        ("use_linear_projection", st.booleans()), ("upcast_attention", st.booleans()),
        ("encoder_hid_dim", st.sampled_from([None, 6])),
        ("encoder_hid_dim_type", st.sampled_from([None, None, "text_proj", "text_image_proj", "image_proj"])),
        ("class_embed_type", st.sampled_from([None, "timestep", "identity", "projection", "simple_projection",
                                              "bogus"])),
        ("num_class_embeds", st.sampled_from([None, 3])),
        ("projection_class_embeddings_input_dim", st.sampled_from([None, 4, 12, 20])),
        ("class_embeddings_concat", st.booleans()),
        ("addition_embed_type", st.sampled_from([None, "text_time", "text", "text_image", "image", "image_hint"])),
        ("addition_time_embed_dim", st.sampled_from([None, 2, 8])),
        ("time_embedding_type", st.sampled_from(["positional", "fourier"])),
        ("time_embedding_dim", st.sampled_from([None, 16, 10])),
        ("time_embedding_act_fn", st.sampled_from([None, "silu"])),
        ("timestep_post_act", st.sampled_from([None, "gelu"])),
        ("time_cond_proj_dim", st.sampled_from([None, 5])),
        ("conv_in_kernel", st.sampled_from([3, 1, 5])), ("conv_out_kernel", st.sampled_from([3, 1])),
        ("attention_type", st.sampled_from(["default", "other", "gated", "gated-text-image"])),
        ("cross_attention_norm", st.sampled_from([None, "group_norm", "layer_norm"])),
        ("mid_block_only_cross_attention", st.sampled_from([None, True])),
        ("resnet_skip_time_act", st.booleans()), ("resnet_out_scale_factor", st.sampled_from([1.0, 0.5])),
        ("addition_embed_type_num_heads", st.sampled_from([64, 2])),
        ("dual_cross_attention", st.sampled_from([False, False, True])),
    ):
        _maybe(draw, cfg, key, values)
    if cfg.get("addition_embed_type") in ("image", "image_hint", "text") or \
            cfg.get("encoder_hid_dim_type") in ("text_image_proj", "image_proj"):
        cfg.setdefault("encoder_hid_dim", 6)  # the image (or text) width they read
    if cfg.get("class_embed_type") in ("projection", "simple_projection") or cfg.get("addition_embed_type") == \
            "text_time":
        cfg.setdefault("projection_class_embeddings_input_dim", draw(st.sampled_from([4, 12, 20])))
    _invalid(draw, cfg)
    return cfg, draw(sizes())


def outcome(cfg: dict[str, Any], size: tuple[int, int]) -> tuple[str, str]:
    """(kind, detail): "agree", "unsupported", "ours-rejects", "real-rejects" or "differs"."""
    return fuzzkit.outcome(adapter.build, cfg, size, unsupported=True)


def check(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    # "unsupported" passes: its cause lies outside the builders (see the report)
    fuzzkit.check(cfg.get("_class_name") or "diffusers", adapter.build, cfg, size, unsupported=True)


COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                                        HealthCheck.filter_too_much]}
LONG = fuzzkit.LONG


class TestUNet2DModel:
    @settings(max_examples=20, derandomize=True, **COMMON)  # type: ignore[arg-type]
    @given(unet2d_configs())
    def test_generated_configs_agree(self, case: Case) -> None:
        check(*case)

    @pytest.mark.slow
    @settings(max_examples=LONG, **COMMON)  # type: ignore[arg-type]
    @given(unet2d_configs())
    def test_generated_configs_agree_long(self, case: Case) -> None:
        check(*case)


class TestUNet2DConditionModel:
    @settings(max_examples=20, derandomize=True, **COMMON)  # type: ignore[arg-type]
    @given(unet2d_condition_configs())
    def test_generated_configs_agree(self, case: Case) -> None:
        check(*case)

    @pytest.mark.slow
    @settings(max_examples=LONG, **COMMON)  # type: ignore[arg-type]
    @given(unet2d_condition_configs())
    def test_generated_configs_agree_long(self, case: Case) -> None:
        check(*case)


@pytest.mark.parametrize(("cfg", "size"), [
    ({"_class_name": "UNet2DModel", "block_out_channels": [8, 16], "down_block_types": ["DownBlock2D"] * 2,
      "up_block_types": ["UpBlock2D"] * 2, "norm_num_groups": 4}, (7, 9)),
    ({"_class_name": "UNet2DConditionModel", "block_out_channels": [8, 16, 16], "norm_num_groups": 4,
      "down_block_types": ["CrossAttnDownBlock2D", "ResnetDownsampleBlock2D", "DownBlock2D"],
      "up_block_types": ["UpBlock2D", "ResnetUpsampleBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": [1, 2, 1],
      "attention_head_dim": 2, "cross_attention_dim": 8, "use_linear_projection": True}, (13, 22)),
    # invalid: the block lists differ in length (both reject)
    ({"_class_name": "UNet2DModel", "block_out_channels": [8, 16], "down_block_types": ["DownBlock2D"] * 2,
      "up_block_types": ["UpBlock2D"], "norm_num_groups": 4}, (8, 8)),
    # both fail in encoder_hid_proj after the image-hint concat, before conv_in takes it (the hooks only see
    # the parameter-free time_embed_act entered next)
    ({"_class_name": "UNet2DConditionModel", "block_out_channels": [6], "down_block_types": ["CrossAttnDownBlock2D"],
      "up_block_types": ["CrossAttnUpBlock2D"], "norm_num_groups": 2, "layers_per_block": 0, "attention_head_dim": 1,
      "cross_attention_dim": 8, "encoder_hid_dim_type": "text_image_proj", "encoder_hid_dim": 6,
      "addition_embed_type": "image_hint", "time_embedding_act_fn": "silu"}, (5, 5)),
    # the k-diffusion upscaler's blocks on a small model, at an odd size that fails at the first up concat
    ({"_class_name": "UNet2DConditionModel", "block_out_channels": [32, 64], "norm_num_groups": None,
      "down_block_types": ["KDownBlock2D", "KCrossAttnDownBlock2D"], "up_block_types": ["KCrossAttnUpBlock2D",
                                                                                      "KUpBlock2D"],
      "mid_block_type": None, "cross_attention_dim": 16, "attention_head_dim": 8, "layers_per_block": 2}, (9, 12)),
    # negative layers_per_block: range(-1) builds no resnet, so the up blocks have none either
    ({"_class_name": "UNet2DModel", "block_out_channels": [8, 8], "down_block_types": ["DownBlock2D"] * 2,
      "up_block_types": ["UpBlock2D"] * 2, "norm_num_groups": 4, "layers_per_block": -1}, (8, 8)),
])
def test_hand_picked_configs(cfg: dict[str, Any], size: tuple[int, int]) -> None:
    check(cfg, size)
