"""The guided family against guided-diffusion's real UNetModel, built on the meta device."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import pytest

# guided_diffusion/nn.py decorates with the deprecated torch.cuda.amp.custom_fwd at import time
warnings.filterwarnings("ignore", "`torch.cuda.amp", FutureWarning)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import unetviz  # noqa: E402
from unetviz.core.errors import UnetvizError  # noqa: E402
from unetviz.core.quantities import is_free  # noqa: E402
from unetviz.live.verification import verify  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:`torch.cuda.amp:FutureWarning")

PRESETS = ("iddpm-cifar10", "adm-imagenet256")
SMALL: dict[str, Any] = {"family": "guided", "image_size": 16, "in_channels": 3, "model_channels": 32,
                         "out_channels": 3, "num_res_blocks": 1, "attention_resolutions": [2]}


def real() -> Any:
    """The real-model adapter: the tests that need it skip without guided-diffusion; the symbolic ones never do."""
    pytest.importorskip("guided_diffusion")
    return importlib.import_module("unetviz.live.upstream.guided")


def kwargs_of(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "family"}


def real_model(source: str | dict[str, Any]) -> Any:
    config, _ = unetviz.api.resolve(source)
    return real().build(None, kwargs_of(config))


def real_manifest(model: Any) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def observe(model: Any, trace: unetviz.Trace) -> tuple[list[tuple[Any, ...]], tuple[int, ...]]:
    """Every module owning parameters, as the forward runs it: path, in/out channels and sizes."""
    seen: list[tuple[Any, ...]] = []
    names = {m: n for n, m in model.named_modules()}

    def hook(m: Any, args: Any, out: Any) -> None:
        x = args[0]
        c_in = x.shape[1] if x.dim() > 1 else m.num_embeddings
        seen.append((names[m], c_in, out.shape[-1] if x.dim() < 3 else out.shape[1],
                     tuple(x.shape[2:]), tuple(out.shape[2:])))

    import torch

    args, kw = real().inputs(model, trace)
    handles = [m.register_forward_hook(hook) for m in model.modules() if list(m.parameters(recurse=False))]
    try:
        with torch.no_grad():
            y = model(*args, **kw)
    finally:
        for h in handles:
            h.remove()
    return seen, tuple(y.shape[1:])


def traced_layers(trace: unetviz.Trace) -> list[tuple[Any, ...]]:
    return [(x.path, x.in_channels, x.out_channels, x.in_size or (), x.out_size or ()) for x in trace.layers
            if not is_free(x)]  # attention-matmul rows own no module the hooks see


def verified(source: str | dict[str, Any], size: Any = None) -> list[Any]:
    """unetviz.verify's disagreements (a failure in UNetModel.forward itself, its torch.cat, is observed
    at the root module and matches our output block)."""
    real()
    return list(verify(source, size).disagreements)


def check_against_real(source: str | dict[str, Any], size: Any = None, own_hooks: bool = True) -> unetviz.Trace:
    """verify() must agree, and (``own_hooks``) so must this file's own, simpler hooked forward."""
    assert verified(source, size) == []
    t = unetviz.trace(source, size=size)
    model = real_model(source)
    assert list(t.manifest) == real_manifest(model)
    assert t.params == sum(p.numel() for p in model.parameters())
    assert t.error is None
    if not own_hooks:
        return t
    layers, out = observe(model, t)
    assert traced_layers(t) == layers
    assert out == (t.out_channels, *(t.out_size or ()))
    return t


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_match_the_real_state_dict_and_forward(preset: str) -> None:
    t = check_against_real(preset)
    counts = {"iddpm-cifar10": 446, "adm-imagenet256": 567}
    assert len(t.manifest) == counts[preset]  # presets.md; the equality above is the real check


def test_skip_stack_and_decoder_headings() -> None:
    t = unetviz.trace("iddpm-cifar10")
    # one push per input block; num_res_blocks + 1 pops per level, all consumed
    assert len(t.skips) == 16 and all(s.to is not None for s in t.skips)
    assert [s.to for s in t.skips][::-1] == [f"output_blocks.{n}" for n in range(16)]
    titles = dict(t.blocks)
    assert titles["output_blocks.7"].startswith("decoder level 2, 8x8") and "Upsample" in titles["output_blocks.7"]
    assert titles["input_blocks.5"].startswith("encoder level 1, 16x16")
    c = next(c for c in t.concats if c.consumer == "output_blocks.8")
    # after output_blocks.7's Upsample the conv returned h; the skip is the AttentionBlock's output
    assert [(op.source, op.channels, op.skip) for op in c.inputs] == [
        ("output_blocks.7.2.conv", 256, None), ("input_blocks.7.1", 256, 7)]
    notes = {u.path: u.note for u in unetviz.trace("adm-imagenet256").units}
    assert notes["middle_block.1"].startswith("16 heads x 64")
    assert any(x.path == "input_blocks.10.1.qkv" and x.type == "Conv1d" and x.in_size == (1024,)
               for x in unetviz.trace("adm-imagenet256").layers)


def test_non_square_sizes_match_the_real_forward() -> None:
    check_against_real("adm-imagenet256", size="64x96")
    check_against_real("iddpm-cifar10", size=(24, 40))


@pytest.mark.parametrize(("source", "size", "where", "sizes"), [
    ("iddpm-cifar10", 31, "output_blocks.12", ("32x32", "31x31")),
    ({**SMALL, "conv_resample": False, "channel_mult": [1, 1, 1]}, 6, "output_blocks.2", ("2x2", "3x3")),
])
def test_a_failing_size_names_the_output_block_and_both_sizes(source: Any, size: int, where: str,
                                                               sizes: tuple[str, str]) -> None:
    t = unetviz.trace(source, size=size)
    assert t.error is not None and t.error.at == where and t.out_channels is None
    assert verified(source, size) == []
    assert all(s in t.error.message for s in sizes)
    assert t.layers and t.concats, "the trace up to the failure is kept"
    model = real_model(source)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        observe(model, t)


def test_avg_pool_on_1x1_fails_like_the_real_model() -> None:
    source = {**SMALL, "resblock_updown": True, "channel_mult": [1, 1, 1]}
    t = unetviz.trace(source, size=2)
    assert t.error is not None and t.error.at == "input_blocks.4.0.h_upd.op"
    real()
    assert verify(source, 2).ok
    with pytest.raises(RuntimeError, match="too small"):
        observe(real_model(source), t)


def test_heads_that_do_not_divide_the_width_fail_in_the_forward_like_upstream() -> None:
    source = {**SMALL, "num_heads": 3}
    t = unetviz.trace(source)  # the constructor accepts it; QKVAttentionLegacy asserts in forward
    assert t.error is not None and t.error.at == "input_blocks.3.1.attention" and "3 heads" in t.error.message
    real()
    assert verify(source).ok
    # with num_head_channels set, num_heads is never read: even 0 builds and runs upstream
    check_against_real({**SMALL, "num_heads": 0, "num_head_channels": 32}, own_hooks=False)


def test_create_model_forms_and_required_arguments() -> None:
    t = unetviz.trace({**SMALL, "image_size": 64, "channel_mult": "", "attention_resolutions": "16,8"})
    assert t.config["channel_mult"] == ""  # resolved to create_model's (1, 2, 3, 4) for 64
    assert [x.out_channels for x in t.layers if x.path.endswith("in_layers.2")][:4] == [32, 64, 96, 128]
    check_against_real({**SMALL, "image_size": 64, "channel_mult": "", "attention_resolutions": "16,8"})
    with pytest.raises(UnetvizError, match=r"^num_res_blocks: required"):
        unetviz.trace({k: v for k, v in SMALL.items() if k != "num_res_blocks"})
    with pytest.raises(UnetvizError, match=r"^dims: got 3"):
        unetviz.trace({**SMALL, "dims": 3})
    with pytest.raises(UnetvizError, match=r"^image_size: null"):
        unetviz.trace({**SMALL, "image_size": None})
    assert unetviz.trace({**SMALL, "image_size": None}, size=8).size_source == "--size"


@st.composite
def valid_configs(draw: Any) -> tuple[dict[str, Any], tuple[int, int]]:
    levels = draw(st.integers(1, 4))
    mc = draw(st.sampled_from([32, 64]))
    mults = draw(st.lists(st.sampled_from([1, 2] if mc == 32 else [0.5, 1, 1.5]), min_size=levels, max_size=levels))
    cfg = {**SMALL, "model_channels": mc, "channel_mult": mults,
           "in_channels": draw(st.integers(1, 4)), "out_channels": draw(st.integers(1, 6)),
           "num_res_blocks": draw(st.integers(0, 2)),
           "attention_resolutions": draw(st.lists(st.sampled_from([1, 2, 4, 8]), max_size=3, unique=True)),
           "num_heads": draw(st.sampled_from([1, 2, 4])), "num_heads_upsample": draw(st.sampled_from([-1, 1, 2])),
           "num_head_channels": draw(st.sampled_from([-1, -1, 16, 32])),
           "num_classes": draw(st.sampled_from([None, 10])), "dropout": draw(st.sampled_from([0, 0.1]))}
    for key in ("conv_resample", "use_scale_shift_norm", "resblock_updown", "use_new_attention_order",
                "use_checkpoint", "use_fp16"):
        cfg[key] = draw(st.booleans())
    unit = 2 ** (levels - 1)
    size = (unit * draw(st.integers(1, 3)), unit * draw(st.integers(1, 3)))
    cfg["image_size"] = size[0]
    return cfg, size


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs())
def test_random_valid_configs_match_the_real_model(case: tuple[dict[str, Any], tuple[int, int]]) -> None:
    cfg, size = case
    check_against_real(cfg, size=size, own_hooks=False)


# each breaks one rule of UNetModel.__init__ or of its forward (heads that do not divide the width)
INVALID: list[dict[str, Any]] = [
    {"model_channels": 48}, {"channel_mult": [1, 1.5]}, {"num_head_channels": 24}, {"num_head_channels": 0},
    {"dropout": 1.5}, {"num_heads": 0}, {"num_heads": 3}, {"num_heads_upsample": 5, "attention_resolutions": [1]},
    {"model_channels": 16}, {"channel_mult": []}, {"dropout": -0.1},
]


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(INVALID), st.sampled_from([1, 2]), st.booleans())
def test_random_invalid_configs_are_rejected_by_both(bad: dict[str, Any], nrb: int, updown: bool) -> None:
    cfg = {**SMALL, "num_res_blocks": nrb, "resblock_updown": updown, **bad}
    try:
        t = unetviz.trace(cfg)
    except UnetvizError as e:
        assert "\n" not in str(e)
    else:
        assert t.error is not None, "a config the real model rejects must not trace cleanly"
    kwargs, shell = kwargs_of(cfg), unetviz.trace({**SMALL})  # outside: only the model may raise below
    real()
    import torch
    from guided_diffusion.unet import UNetModel

    with pytest.raises((AssertionError, ValueError, RuntimeError, TypeError, IndexError, ZeroDivisionError)):
        with torch.device("meta"):  # the bare constructor, without the adapter's create_model forms
            model = UNetModel(**kwargs).eval()
        observe(model, shell)  # inputs only need in_channels and a size
