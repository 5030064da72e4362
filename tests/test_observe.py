"""Tracing a live ``nn.Module``: family shortcuts, observed traces of MONAI's and our own U-Nets."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # every test here traces a live module

import json

import torch
from torch import nn

import unetviz
from unetviz.analysis.compare import compare
from unetviz.core.kinds import kind_of
from unetviz.core.quantities import layer_macs
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


def test_json_of_an_observed_trace_says_what_was_seen() -> None:
    t = unetviz.trace(TinyUNet(), input=(1, 3, 16, 20))
    d = json.loads(t.to_json())
    assert (d["source"], d["family"], d["model"], d["error"]) == ("observed", "torch", "TinyUNet", None)
    assert (d["input"]["channels"], d["input"]["size"]) == (3, [16, 20])
    assert d["output"] == {"channels": 3, "size": [16, 20]}
    assert (d["params"], d["macs"]) == (t.params, t.macs) and t.macs == sum(layer_macs(x) for x in t.layers) > 0
    stem = d["layers"][0]
    assert {k: stem[k] for k in ("path", "type", "in_channels", "out_channels", "in_size", "kernel", "stride")} == {
        "path": "stem", "type": "Conv2d", "in_channels": 3, "out_channels": 8, "in_size": [16, 20],
        "kernel": [3, 3], "stride": [1, 1]}
    assert stem["macs"] == 8 * 16 * 20 * 3 * 9  # output elements x input channels x kernel
    assert [c["consumer"] for c in d["concats"]] == ["dec.0", "dec.1", "out"]
    assert d["concats"][1]["inputs"][1] == {"from": "downs.0", "channels": 8, "size": [16, 20], "skip": 0}
    assert "skip" not in d["concats"][2]["inputs"][1]  # the clone of the stem is no stack pop
    assert d["skips"] == [
        {"index": 0, "from": "downs.0", "unit": "downs.0", "channels": 8, "size": [16, 20], "to": "dec.1",
         "merge": "concat"},
        {"index": 1, "from": "attn", "unit": "attn", "channels": 16, "size": [8, 10], "to": "dec.0",
         "merge": "concat"}]
    assert (d["adds"], d["lifo"]) == ([], True)  # attn(x) + x is a residual, not a merge of the U
    assert [(u["path"], u["kind"], u["in_size"], u["out_size"]) for u in d["units"]][:3] == [
        ("stem", "conv", [16, 20], [16, 20]), ("downs.0", "layer", [16, 20], [16, 20]),
        ("downs.1", "layer", [8, 10], [8, 10])]


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


# ---- any rank: sizes given as they are, samplers on every axis ------------------------------------------------
class Block3d(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = nn.InstanceNorm3d(cout, affine=True)
        self.act = nn.PReLU(cout)  # owns a parameter: a layer row of no known type, fed a 5-d tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.act(self.norm(self.conv(x)))
        return y


class UNet3d(nn.Module):
    """A volume U-Net that samples in-plane only: stride (1, 2, 2) down, a (1, 2, 2) transposed conv up."""

    def __init__(self, c: int = 4) -> None:
        super().__init__()
        plane = (1, 2, 2)
        self.enc = nn.ModuleList([Block3d(1, c), Block3d(c, 2 * c)])
        self.downs = nn.ModuleList([nn.Conv3d(c, c, plane, stride=plane), nn.Conv3d(2 * c, 2 * c, plane, stride=plane)])
        self.mid = Block3d(2 * c, 2 * c)
        self.ups = nn.ModuleList([nn.ConvTranspose3d(2 * c, 2 * c, plane, stride=plane),
                                  nn.ConvTranspose3d(2 * c, c, plane, stride=plane)])
        self.dec = nn.ModuleList([Block3d(4 * c, 2 * c), Block3d(2 * c, c)])
        self.out = nn.Conv3d(c, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs = []
        for enc, down in zip(self.enc, self.downs, strict=True):
            x = enc(x)
            hs.append(x)
            x = down(x)
        x = self.mid(x)
        for up, dec in zip(self.ups, self.dec, strict=True):
            x = dec(torch.cat([up(x), hs.pop()], dim=1))
        y: torch.Tensor = self.out(x)
        return y


def test_a_conv3d_size_is_traced_as_given() -> None:
    t = unetviz.trace(nn.Sequential(nn.Conv3d(1, 4, 3, padding=1)), size=(32, 48, 64))
    assert (t.in_channels, t.in_size, t.out_channels, t.out_size, t.size_source) == (1, (32, 48, 64), 4,
                                                                                       (32, 48, 64), "--size")
    assert (t.layers[0].in_size, t.layers[0].out_size, t.layers[0].kernel) == ((32, 48, 64), (32, 48, 64), (3, 3, 3))
    assert t.macs == 4 * 32 * 48 * 64 * 27
    assert unetviz.trace(nn.Sequential(nn.Conv3d(1, 4, 3, padding=1)), size="8x16x24").in_size == (8, 16, 24)


def test_a_3d_unet_with_in_plane_samplers() -> None:
    model = UNet3d()
    t = unetviz.trace(model, size=(8, 32, 48))
    assert (t.error, t.in_size, t.out_channels, t.out_size) == (None, (8, 32, 48), 2, (8, 32, 48))
    assert [(u.path, u.kind, u.in_size, u.out_size) for u in t.units if u.path.startswith(("downs", "ups"))] == [
        ("downs.0", "downsample", (8, 32, 48), (8, 16, 24)), ("downs.1", "downsample", (8, 16, 24), (8, 8, 12)),
        ("ups.0", "upsample", (8, 8, 12), (8, 16, 24)), ("ups.1", "upsample", (8, 16, 24), (8, 32, 48))]
    assert [u.kind for u in t.units if u.kind in ("downsample", "upsample")] == ["downsample"] * 2 + ["upsample"] * 2
    got = [(c.consumer, c.channels, c.size, [(o.source, o.channels, o.size, o.skip) for o in c.inputs])
           for c in t.concats]
    assert got == [
        ("dec.0", 16, (8, 16, 24), [("ups.0", 8, (8, 16, 24), None), ("enc.1.act", 8, (8, 16, 24), 1)]),
        ("dec.1", 8, (8, 32, 48), [("ups.1", 4, (8, 32, 48), None), ("enc.0.act", 4, (8, 32, 48), 0)])]
    assert [(s.index, s.unit, s.channels, s.size, s.to) for s in t.skips] == [
        (0, "enc.0", 4, (8, 32, 48), "dec.1"), (1, "enc.1", 8, (8, 16, 24), "dec.0")]
    # the norm and activation rows of a volume keep its DxHxW size
    rows = {x.path: (x.type, x.in_channels, x.out_channels, x.in_size, x.out_size) for x in t.layers}
    assert rows["enc.0.norm"] == ("InstanceNorm3d", 4, 4, (8, 32, 48), (8, 32, 48))
    assert rows["mid.act"] == ("PReLU", 8, 8, (8, 8, 12), (8, 8, 12))
    assert rows["ups.1"] == ("ConvTranspose3d", 8, 4, (8, 16, 24), (8, 32, 48))
    assert t.params == sum(p.numel() for p in model.parameters())
    assert t.macs == sum(layer_macs(x) for x in t.layers)
    d = json.loads(t.to_json())
    assert (d["input"]["channels"], d["input"]["size"], d["output"]) == (1, [8, 32, 48], {"channels": 2,
                                                                                          "size": [8, 32, 48]})
    assert d["skips"][1]["size"] == [8, 16, 24] and d["units"][1]["kind"] == "downsample"
    # the same input as a shape, and a model built on the meta device, trace alike
    shaped = unetviz.trace(model, input=(1, 1, 8, 32, 48))
    assert (shaped.layers, shaped.units, shaped.concats, shaped.skips) == (t.layers, t.units, t.concats, t.skips)
    with torch.device("meta"):
        on_meta = UNet3d()
    assert unetviz.trace(on_meta, size=(8, 32, 48)).units == t.units


def test_a_1d_net_with_a_length() -> None:
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.BatchNorm1d(4), nn.PReLU(4),
                          nn.Conv1d(4, 4, 4, stride=2, padding=1), nn.ConvTranspose1d(4, 2, 2, stride=2))
    t = unetviz.trace(model, size=(100,))
    assert (t.in_channels, t.in_size, t.out_channels, t.out_size, t.error) == (2, (100,), 2, (100,), None)
    assert [(x.type, x.in_channels, x.out_channels, x.in_size, x.out_size) for x in t.layers] == [
        ("Conv1d", 2, 4, (100,), (100,)), ("BatchNorm1d", 4, 4, (100,), (100,)), ("PReLU", 4, 4, (100,), (100,)),
        ("Conv1d", 4, 4, (100,), (50,)), ("ConvTranspose1d", 4, 2, (50,), (100,))]
    assert [u.kind for u in t.units] == ["conv", "norm", "layer", "downsample", "upsample"]
    assert unetviz.trace(model, size=100).in_size == (100,) and unetviz.trace(model, size="100").in_size == (100,)


def test_a_2d_model_takes_height_and_width() -> None:
    t = unetviz.trace(TinyUNet(), size=(64, 96))
    assert (t.in_size, t.out_size, t.size_source, t.error) == ((64, 96), (64, 96), "--size", None)
    assert [s.size for s in t.skips] == [(64, 96), (32, 48)]
    assert unetviz.trace(TinyUNet(), size="24x40").in_size == (24, 40)


@pytest.mark.parametrize("conv, want", [(nn.Conv1d(1, 2, 3), (12,)), (nn.Conv2d(1, 2, 3), (12, 12)),
                                        (nn.Conv3d(1, 2, 3), (12, 12, 12)), (nn.ConvTranspose3d(1, 2, 3), (12,) * 3)])
def test_one_number_fills_the_first_convs_rank(conv: nn.Module, want: tuple[int, ...]) -> None:
    assert unetviz.trace(nn.Sequential(conv), size=12).in_size == want
    default = unetviz.trace(nn.Sequential(conv))
    assert default.in_size == (64,) * len(want) and default.size_source.startswith("default 64")


@pytest.mark.parametrize("conv, size, message", [
    (nn.Conv3d(1, 4, 3), (32, 48), r"got 32x48 \(2 numbers\), but Sequential's first convolution 0 is a Conv3d,"
                                   r" which takes DxHxW; give 3 numbers"),
    (nn.Conv2d(1, 4, 3), (8, 16, 16), r"is a Conv2d, which takes HxW; give 2 numbers .*input=\(B, C, \.\.\.\)"),
    (nn.Conv1d(1, 4, 3), "8x8", r"is a Conv1d, which takes L; give 1 numbers"),
    (nn.Conv2d(1, 4, 3), (0, 8), r"size: got \(0, 8\); allowed: N, or one positive integer per spatial axis"),
    (nn.Conv2d(1, 4, 3), "64px", r"size: got '64px'"),
    (nn.Conv2d(1, 4, 3), True, r"size: got True"),
    (nn.Conv2d(1, 4, 3), (), r"size: got \(\)"),
])
def test_a_size_the_module_cannot_take_is_a_one_line_error(conv: nn.Module, size: object, message: str) -> None:
    with pytest.raises(unetviz.UnetvizError, match=message) as caught:
        unetviz.trace(nn.Sequential(conv), size=size)  # type: ignore[arg-type]  # wrong types on purpose
    assert "\n" not in str(caught.value)


def test_size_and_input_together_are_refused() -> None:
    with pytest.raises(unetviz.UnetvizError, match=r"size: give size= or input=, not both"):
        unetviz.trace(UNet3d(), size=(8, 32, 48), input=(1, 1, 8, 32, 48))


def test_a_module_with_no_conv_needs_an_input() -> None:
    with pytest.raises(unetviz.UnetvizError, match=r"input=\(B, C, \.\.\.\)"):
        unetviz.trace(nn.Sequential(nn.Linear(4, 4)), size=8)
    t = unetviz.trace(nn.Sequential(nn.Linear(4, 4)), input=(1, 4))
    assert t.in_channels == 4 and t.layers[0].type == "Linear"


@pytest.mark.parametrize("model, size, kind, out", [
    # stride (2, 1, 1): the depth halves and nothing else changes, still a sampler
    (nn.Conv3d(2, 2, (2, 1, 1), stride=(2, 1, 1)), (8, 16, 16), "downsample", (4, 16, 16)),
    (nn.ConvTranspose3d(2, 2, (2, 1, 1), stride=(2, 1, 1)), (4, 16, 16), "upsample", (8, 16, 16)),
    (nn.Conv2d(2, 2, (1, 2), stride=(1, 2)), (16, 16), "downsample", (16, 8)),
    # an unpadded in-plane kernel trims two pixels: no change of resolution
    (nn.Conv3d(2, 2, (1, 3, 3)), (8, 16, 16), "conv", (8, 14, 14)),
])
def test_a_sampler_on_any_one_axis(model: nn.Module, size: tuple[int, ...], kind: str, out: tuple[int, ...]) -> None:
    t = unetviz.trace(nn.Sequential(model), size=size)
    assert [(u.kind, u.out_size) for u in t.units] == [(kind, out)]


def test_kinds_compare_every_axis() -> None:
    assert kind_of("down", "Conv3d", (8, 32, 32), (8, 16, 16)) == "downsample"
    assert kind_of("up", "ConvTranspose3d", (8, 16, 16), (8, 32, 32)) == "upsample"
    assert kind_of("pool", "Conv3d", (8, 32, 32), (4, 32, 32)) == "downsample"
    assert kind_of("fold", "Fold", (8, 32, 32), (16, 16, 32)) == "layer"  # one axis shrinks, another grows
    assert kind_of("down.0", "Down", (8, 572, 572), (8, 568, 568)) == "conv"  # named a sampler, keeps every axis


class Gate(nn.Module):
    """A module of no known type that owns a parameter: the hooks read it from the tensors it sees."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(()))
        self.c = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.alpha.tanh()


class TokenNet(nn.Module):
    """A conv stem, then (B, H*W, C) tokens through a gate: GLIGEN's fuser in miniature."""

    def __init__(self, c: int = 6) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.gate = Gate(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h: torch.Tensor = self.conv(x)
        b, c, hh, ww = h.shape
        y: torch.Tensor = self.gate(h.flatten(2).transpose(1, 2))
        return y.transpose(1, 2).reshape(b, c, hh, ww)


def test_a_3d_tensor_is_tokens_unless_the_model_is_1d() -> None:
    """docs/design.md: a (B, N, C) sequence reports C channels and N tokens; in a 1-D model a 3-d tensor is
    (B, C, L), read as C channels of length L, whatever module of no known type takes it."""
    t = unetviz.trace(TokenNet(), size=(4, 5))
    gate = next(x for x in t.layers if x.path == "gate")
    assert (gate.in_channels, gate.out_channels, gate.in_size, gate.out_size, gate.tokens) == (6, 6, None, None, 20)
    unit = next(u for u in t.units if u.path == "gate")
    assert (unit.in_channels, unit.out_channels, unit.in_size) == (6, 6, None)
    signal = unetviz.trace(nn.Sequential(nn.Conv1d(2, 6, 3, padding=1), Gate(6)), size=(20,))
    gate = signal.layers[1]
    assert (gate.in_channels, gate.out_channels, gate.in_size, gate.out_size, gate.tokens) == (6, 6, (20,), (20,),
                                                                                               None)
    assert (signal.units[1].in_channels, signal.units[1].in_size) == (6, (20,))
    # a volume model's token block (UNETR's ViT, Swin's windows folded into the batch): a unit of 64 features
    # (observer finding R7: it read the 8 tokens per window as its channels)
    vit = nn.Sequential(nn.Conv3d(1, 64, 4, 4), nn.Flatten(2), Transpose(), Windows(),
                        nn.Sequential(nn.LayerNorm(64), nn.Linear(64, 64)))
    block = unetviz.trace(vit, input=(1, 1, 16, 16, 16)).units[-1]
    assert (block.path, block.in_channels, block.out_channels, block.in_size) == ("4", 64, 64, None)


class Transpose(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class Windows(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(8, 8, 64)
