"""The 2015 U-Net: the symbolic trace against the reference torch model of unetviz/upstream."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unetviz
from unetviz.live.upstream import ronneberger as ref

PAPER = "ronneberger2015"


def real(config: dict[str, Any]) -> torch.nn.Module:
    return ref.build(None, {k: v for k, v in config.items() if k != "family"})


def state(model: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in model.state_dict().items()]


def run(model: torch.nn.Module, channels: int, size: tuple[int, int]) -> torch.Tensor:
    out: torch.Tensor = model(torch.empty(1, channels, *size, device="meta"))
    return out


def config(**kw: Any) -> dict[str, Any]:
    return {"family": "ronneberger", **kw}


# ---- the paper ---------------------------------------------------------------------------------------
def test_paper_figures() -> None:
    t = unetviz.trace(PAPER)
    assert (t.in_channels, t.in_size, t.size_source) == (1, (572, 572), "family default (paper)")
    assert (t.out_channels, t.out_size) == (2, (388, 388))
    assert t.params == 31_030_658 and len(t.manifest) == 46
    convs = [x for x in t.layers if x.type.startswith("Conv")]
    assert len(convs) == len(t.layers) == 23  # "In total the network has 23 convolutional layers"
    assert [x.out_channels for x in t.layers if x.path.endswith("conv2")][:5] == [64, 128, 256, 512, 1024]
    first = t.layers[0]
    assert (first.path, first.in_size, first.out_size, first.kernel, first.padding) == (
        "down.0.conv1", (572, 572), (570, 570), (3, 3), (0, 0))
    bottleneck = next(x for x in t.layers if x.path == "down.4.conv2")
    assert bottleneck.out_size == (28, 28)
    up = next(x for x in t.layers if x.path == "up.0.upconv")
    assert (up.type, up.in_channels, up.out_channels, up.out_size, up.kernel, up.stride) == (
        "ConvTranspose2d", 1024, 512, (56, 56), (2, 2), (2, 2))
    assert t.layers[-1].path == "final" and t.layers[-1].kernel == (1, 1)


def test_paper_crop_and_concat() -> None:
    t = unetviz.trace(PAPER)
    # Fig. 1: 64x64 -> 56x56, 136 -> 104, 280 -> 200, 568 -> 392
    assert [c.crop for c in t.concats] == [((64, 64), (56, 56)), ((136, 136), (104, 104)),
                                           ((280, 280), (200, 200)), ((568, 568), (392, 392))]
    c = t.concats[0]
    assert (c.consumer, c.channels, c.size) == ("up.0.conv1", 1024, (56, 56))
    assert [(o.source, o.channels, o.size, o.skip) for o in c.inputs] == [
        ("up.0.crop", 512, (56, 56), 3), ("up.0.upconv", 512, (56, 56), None)]
    assert [(s.source, s.unit, s.channels, s.size, s.to) for s in t.skips] == [
        ("down.0", "down.0", 64, (568, 568), "up.3.conv1"), ("down.1", "down.1", 128, (280, 280), "up.2.conv1"),
        ("down.2", "down.2", 256, (136, 136), "up.1.conv1"), ("down.3", "down.3", 512, (64, 64), "up.0.conv1")]
    d = t.to_dict()["concats"][3]
    assert d["crop"] == {"from": [568, 568], "to": [392, 392]}


def test_paper_matches_reference_model() -> None:
    t = unetviz.trace(PAPER)
    model = real({})
    assert state(model) == list(t.manifest)
    assert sum(p.numel() for p in model.parameters()) == t.params
    assert tuple(run(model, 1, (572, 572)).shape) == (1, 2, 388, 388)
    # registration order == execution order: the layers are the modules that own parameters
    owners = [n for n, m in model.named_modules() if any(True for _ in m.parameters(recurse=False))]
    assert [x.path for x in t.layers] == owners


def test_padded_has_no_crop() -> None:
    cfg = config(padding=1, input_size=256)
    t = unetviz.trace(cfg)
    assert t.error is None and t.size_source == "input_size"
    assert (t.out_channels, t.out_size) == (2, (256, 256))
    assert all(c.crop is None for c in t.concats)
    assert [o.source for o in t.concats[0].inputs] == ["down.3", "up.0.upconv"]
    model = real(cfg)
    assert state(model) == list(t.manifest)
    assert not any(name.endswith("crop") for name, _ in model.named_modules())
    assert tuple(run(model, 1, (256, 256)).shape) == (1, 2, 256, 256)


def test_non_square_size() -> None:
    t = unetviz.trace(PAPER, size="572x636")
    assert t.error is None and t.size_source == "--size"
    assert t.out_size == (388, 452)
    assert t.concats[-1].crop == ((568, 632), (392, 456))
    assert tuple(run(real({}), 1, (572, 636)).shape) == (1, 2, 388, 452)


def test_odd_size_fails_at_the_pool_in_both() -> None:
    t = unetviz.trace(PAPER, size=570)
    assert t.error is not None and t.out_size is None
    assert t.error.at == "down.2.pool"
    assert "odd 279x279" in t.error.message and "try 556 or 572" in t.error.message
    with pytest.raises(ref.SizeError, match=r"^down\.2\.pool \(MaxPool2d 2x2\) gets an odd 279x279 input"):
        run(real({}), 1, (570, 570))


def test_too_small_fails_at_the_conv_in_both() -> None:
    t = unetviz.trace(PAPER, size=16)
    assert t.error is not None and t.error.at == "down.2.conv1"
    assert "1x1 input" in t.error.message
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        run(real({}), 1, (16, 16))


@pytest.mark.parametrize(("cfg", "key"), [
    ({"padding": 2}, "padding"), ({"depth": 0}, "depth"), ({"depth": 17}, "depth"),
    ({"base_channels": -1}, "base_channels"), ({"bias": "yes"}, "bias"), ({"num_classes": 1.5}, "num_classes"),
    ({"input_size": [1, 2, 3]}, "input_size"), ({"input_size": 0}, "input_size"), ({"channels": 3}, "channels"),
])
def test_invalid_configs(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(unetviz.UnetvizError) as e:
        unetviz.trace(config(**cfg))
    msg = str(e.value)
    assert msg.startswith(key) and "\n" not in msg


# ---- property tests against the reference model -------------------------------------------------------
configs = st.fixed_dictionaries({
    "in_channels": st.integers(1, 4), "num_classes": st.integers(1, 5), "base_channels": st.integers(1, 12),
    "depth": st.integers(1, 6), "padding": st.sampled_from([0, 1]), "bias": st.booleans(),
})


def working_size(depth: int, padding: int, bottom: int) -> int:
    """An input that works, built backwards from the bottleneck's output (independent of the family's
    own arithmetic): each level adds its conv border, each pool doubles. Unpadded, a bottom >= 4 keeps
    every up level at least as large as the bottom (2 * b - 4 >= b), so no conv runs out of pixels."""
    loss = 0 if padding else 4
    n = bottom + loss
    for _ in range(depth - 1):
        n = 2 * n + loss
    return n


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs, bottom=st.integers(4, 9), extra=st.integers(0, 2))
def test_property_manifest_and_output(cfg: dict[str, Any], bottom: int, extra: int) -> None:
    h = working_size(cfg["depth"], cfg["padding"], bottom)
    w = working_size(cfg["depth"], cfg["padding"], bottom + extra)
    t = unetviz.trace(config(**cfg), size=(h, w))
    assert t.error is None
    model = real(cfg)
    assert state(model) == list(t.manifest)
    assert sum(p.numel() for p in model.parameters()) == t.params
    out = run(model, cfg["in_channels"], (h, w))
    assert (t.out_channels, *(t.out_size or ())) == tuple(out.shape[1:])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs, h=st.integers(1, 200), w=st.integers(1, 200))
def test_property_fails_exactly_where_the_model_fails(cfg: dict[str, Any], h: int, w: int) -> None:
    t = unetviz.trace(config(**cfg), size=(h, w))
    model = real(cfg)
    try:
        out = run(model, cfg["in_channels"], (h, w))
    except ref.SizeError as e:
        assert t.error is not None and t.error.at is not None
        assert str(e).startswith(t.error.at)  # the same pool, named the same way
        return
    except RuntimeError as e:
        assert t.error is not None and t.error.at is not None and ".conv" in t.error.at, str(e)
        return
    assert t.error is None, t.error
    assert (t.out_channels, *(t.out_size or ())) == tuple(out.shape[1:])


# ---- unetviz.verify: a hooked forward pass of the reference model ------------------------------------------
def _verify(source: Any, size: Any = None) -> Any:
    from unetviz.live.verification import verify

    return verify(source, size)


def test_verify_paper() -> None:
    # the observer resolves the cropped operand (a view) to the pushed skip it was cut from
    r = _verify(PAPER)
    assert r.ok, r.disagreements
    assert r.counts == {"layers": 23, "units": 10, "blocks": 10, "concats": 4, "skips": 4, "tensors": 46}


def test_verify_non_square() -> None:
    r = _verify(PAPER, "572x636")
    assert r.ok, r.disagreements
    assert r.output_ours == r.output_real == (2, 388, 452)


def test_verify_padded_non_square() -> None:
    r = _verify(config(padding=1, base_channels=16), "256x384")
    assert r.ok, r.disagreements
    assert r.counts == {"layers": 23, "units": 10, "blocks": 10, "concats": 4, "skips": 4, "tensors": 46}


def test_verify_odd_size_fails_at_the_same_pool() -> None:
    r = _verify(PAPER, 570)
    assert r.ok, r.disagreements
    assert r.error_ours is not None and r.error_ours.startswith("down.2.pool:")
    assert r.error_real is not None and "SizeError: down.2.pool" in r.error_real


def test_verify_too_small_fails_at_the_same_conv() -> None:
    r = _verify(PAPER, 16)
    assert r.ok, r.disagreements
