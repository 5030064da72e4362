"""Tracing a live ``nn.Module``: family shortcuts, observed traces of MONAI's and our own U-Nets."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # every test here traces a live module

import torch
from torch import nn

import unetviz
from unetviz.analysis.compare import compare
from unetviz.live.observe import trace_module


class Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm = nn.GroupNorm(4, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x)))


class Attn(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.proj(x)
        return y


class TinyUNet(nn.Module):
    """Two levels, a skip stack in a list, a residual ``attn(x) + x`` in the parent's forward and a
    lucidrains-style final concat with a clone of the stem (not a stack skip)."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.downs = nn.ModuleList([Block(c, c), Block(c, 2 * c)])
        self.attn = Attn(2 * c)
        self.pool = nn.MaxPool2d(2)
        self.mid = Block(2 * c, 2 * c)
        self.ups = nn.ModuleList([nn.ConvTranspose2d(2 * c, 2 * c, 2, stride=2), nn.ConvTranspose2d(2 * c, c, 2,
                                                                                                      stride=2)])
        self.dec = nn.ModuleList([Block(4 * c, 2 * c), Block(2 * c, c)])
        self.out = nn.Conv2d(2 * c, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        r = x.clone()
        hs = []
        x = self.downs[0](x)
        hs.append(x)
        x = self.pool(x)
        x = self.downs[1](x)
        x = self.attn(x) + x
        hs.append(x)
        x = self.pool(x)
        x = self.mid(x)
        for up, dec in zip(self.ups, self.dec, strict=False):
            x = up(x)
            x = torch.cat([x, hs.pop()], dim=1)
            x = dec(x)
        y: torch.Tensor = self.out(torch.cat((x, r), dim=1))
        return y


def test_tiny_unet_concats_channels_and_skip_pairing() -> None:
    model = TinyUNet()
    t = unetviz.trace(model, input=(1, 3, 16, 20))
    assert t.source == "observed" and t.family == "torch" and t.model == "TinyUNet"
    assert (t.in_channels, t.in_size, t.out_channels, t.out_size) == (3, (16, 20), 3, (16, 20))
    assert t.error is None
    got = [(c.consumer, c.channels, c.size, [(o.source, o.channels, o.size, o.skip) for o in c.inputs])
           for c in t.concats]
    assert got == [
        ("dec.0", 32, (8, 10), [("ups.0", 16, (8, 10), None), ("attn", 16, (8, 10), 1)]),
        ("dec.1", 16, (16, 20), [("ups.1", 8, (16, 20), None), ("downs.0", 8, (16, 20), 0)]),
        # r = x.clone() is made right after the stem ran and was never fed to a module: no skip
        ("out", 16, (16, 20), [("dec.1", 8, (16, 20), None), ("stem", 8, (16, 20), None)]),
    ]
    assert [(s.index, s.source, s.channels, s.size, s.to) for s in t.skips] == [
        (0, "downs.0", 8, (16, 20), "dec.1"), (1, "attn", 16, (8, 10), "dec.0")]
    assert [x.path for x in t.layers][:4] == ["stem", "downs.0.conv", "downs.0.norm", "downs.1.conv"]
    conv = t.layers[1]
    assert (conv.type, conv.in_channels, conv.out_channels, conv.kernel, conv.stride, conv.padding) == (
        "Conv2d", 8, 8, (3, 3), (1, 1), (1, 1))
    up = next(x for x in t.layers if x.path == "ups.0")
    assert (up.type, up.in_size, up.out_size) == ("ConvTranspose2d", (4, 5), (8, 10))
    assert t.manifest == tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())
    assert t.params == sum(p.numel() for p in model.parameters())
    assert [u.path for u in t.units][:3] == ["stem", "downs.0", "downs.1"]
    # the caller's model stays on its device, and no hook is left behind
    assert next(model.parameters()).device.type == "cpu"
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert t.to_json()


def test_failing_forward_is_reported_not_raised() -> None:
    t = unetviz.trace(TinyUNet(), input=(1, 3, 15, 16))  # 15 -> 7 -> 3 -> 6: the skip at 7 cannot meet it
    assert t.error is not None and t.out_channels is None
    assert t.error.message.startswith("failed after layer ups.0: RuntimeError")
    assert t.error.at == ""  # the cat runs in the root module's own forward
    assert "Expected 6 in dimension 2 but got 7" in t.error.message
    assert t.concats == ()  # a failing concat is not recorded (the symbolic tracer stops before it too)


def test_a_module_called_twice_gets_a_row_per_call() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y: torch.Tensor = self.conv(self.conv(x))
            return y

    t = unetviz.trace(Twice(), size=8)  # input from the first conv: (1, 4, 8, 8)
    assert [(x.path, x.note) for x in t.layers] == [("conv", ""), ("conv", "call 2")]
    assert t.in_size == (8, 8) and t.in_channels == 4


def test_monai_basic_unet() -> None:
    nets = pytest.importorskip("monai.networks.nets")
    model = nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=2)
    t = unetviz.trace(model, input=(1, 1, 64, 48))
    assert (t.out_channels, t.out_size, t.error) == (2, (64, 48), None)
    feats = (32, 32, 64, 128, 256)
    assert [c.consumer for c in t.concats] == [f"upcat_{i}.convs" for i in (4, 3, 2, 1)]
    assert [c.channels for c in t.concats] == [256, 128, 64, 64]
    # MONAI's UpCat concatenates [skip, upsampled]: the skip is the first operand here
    for c, level in zip(t.concats, (3, 2, 1, 0), strict=False):
        skip, up = c.inputs
        assert skip.skip == level and up.skip is None
        assert skip.channels == feats[level] and skip.size == (64 >> level, 48 >> level)
        prefix = "conv_0" if level == 0 else f"down_{level}"
        assert skip.source.startswith(prefix + ".")
        assert up.source == f"upcat_{level + 1}.upsample"
    assert [(s.index, s.unit, s.to) for s in t.skips] == [
        (i, "conv_0" if i == 0 else f"down_{i}", f"upcat_{i + 1}.convs") for i in range(4)]
    assert t.params == sum(p.numel() for p in model.parameters())
    assert [u.path for u in t.units] == ["conv_0", "down_1", "down_2", "down_3", "down_4", "upcat_4", "upcat_3",
                                         "upcat_2", "upcat_1", "final_conv"]


SMALL_SD = {"block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 2, "attention_head_dim": 4,
            "cross_attention_dim": 32, "norm_num_groups": 8, "sample_size": 16}


def test_observed_small_sd_equals_symbolic() -> None:
    diffusers = pytest.importorskip("diffusers")
    with torch.device("meta"):
        model = diffusers.UNet2DConditionModel(**SMALL_SD)
    symbolic = unetviz.trace(model)
    assert symbolic.source == "symbolic" and symbolic.model == "UNet2DConditionModel"
    observed = trace_module(model, observe_only=True)
    assert observed.source == "observed"
    assert compare(symbolic, observed) == []
    assert (len(observed.concats), len(observed.skips)) == (6, 6)
    assert [u.path for u in observed.units][:4] == ["time_embedding", "conv_in", "down_blocks.0.resnets.0",
                                                    "down_blocks.0.attentions.0"]
    odd = unetviz.trace(model, size=(15, 17))
    assert odd.in_size == (15, 17) and compare(odd, trace_module(model, size=(15, 17), observe_only=True)) == []


def test_guided_module_is_traced_from_its_attributes() -> None:
    gu = pytest.importorskip("guided_diffusion.unet")
    model = gu.UNetModel(image_size=32, in_channels=3, model_channels=32, out_channels=6, num_res_blocks=1,
                         attention_resolutions=[2], channel_mult=(1, 2), num_heads=2, use_scale_shift_norm=True,
                         resblock_updown=True)
    t = unetviz.trace(model)
    assert t.source == "symbolic" and t.family == "guided"
    assert t.manifest == tuple((k, tuple(v.shape)) for k, v in model.state_dict().items())


def test_lucidrains_module_is_observed_with_its_family() -> None:
    ddp = pytest.importorskip("denoising_diffusion_pytorch")
    model = ddp.Unet(dim=16, dim_mults=(1, 2), channels=3)
    t = unetviz.trace(model, size=16)
    assert t.source == "observed" and t.family == "lucidrains" and t.error is None
    assert t.out_size == (16, 16)
    stacked = [c for c in t.concats if any(o.skip is not None for o in c.inputs)]
    assert len(stacked) == len(t.skips) == 4  # two pushes per level, two levels
    assert t.concats[-1].inputs[1].skip is None  # the final concat with r is not a stack pop


def test_not_a_module_is_a_clear_error() -> None:
    with pytest.raises(unetviz.UnetvizError, match=r"nn\.Module"):
        trace_module(42)


def test_upstream_module_with_an_input_shape_is_observed_with_its_extra_inputs() -> None:
    diffusers = pytest.importorskip("diffusers")
    with torch.device("meta"):
        model = diffusers.UNet2DConditionModel(**SMALL_SD)
    t = unetviz.trace(model, input=(1, 4, 12, 20))
    assert t.source == "observed" and t.in_size == (12, 20) and t.out_size == (12, 20)
    assert compare(unetviz.trace(model, size=(12, 20)), t) == []
