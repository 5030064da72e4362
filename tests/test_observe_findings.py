"""Each reproducer of ``tests/data/repro/observer_findings.py`` as a test of the real model's answer.

The reproducers are pure torch models that stand for what MONAI, nnU-Net and smp do (a conv registered twice,
a side-output skip, a gated skip, nested ``SkipConnection`` wrappers, a list-returning encoder, Swin's windows,
a parameter-free swish that makes a skip); ``test_observe_libraries.py`` checks the libraries themselves.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import torch
from torch import nn

import unetviz
from unetviz.analysis.cost import size_cost
from unetviz.core.quantities import layer_macs
from unetviz.render.graph.draw import to_graphviz


class Shared(nn.Module):
    """nnU-Net's ConvDropoutNormReLU: its conv is ``self.conv`` and inside ``self.all_modules``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.all_modules = nn.Sequential(self.conv, nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.all_modules(x)
        return y


def test_r1_a_parameter_registered_twice_counts_once() -> None:
    m = Shared()
    t = unetviz.trace(m, input=(1, 3, 16, 16))
    assert t.params == sum(p.numel() for p in m.parameters()) == 224
    assert [k for k, _ in t.manifest] == list(m.state_dict())  # the manifest lists both keys, as torch does
    assert t.aliases == {"all_modules.0.weight": "conv.weight", "all_modules.0.bias": "conv.bias"}


def test_r2_a_volume_size_is_traced_as_given() -> None:
    m = nn.Sequential(nn.Conv3d(1, 4, 3, padding=1))
    assert unetviz.trace(m, size=(32, 48, 64)).in_size == (32, 48, 64)
    assert unetviz.trace(m, size="32x48x64").in_size == (32, 48, 64)
    assert unetviz.trace(m, input=(1, 1, 32, 48, 64)).in_size == (32, 48, 64)
    with pytest.raises(unetviz.UnetvizError, match="takes DxHxW"):
        unetviz.trace(m, size=(48, 64))  # two numbers for a Conv3d: refused, not made cubic


class Side(nn.Module):
    """SwinUNETR's ``hidden_states_out``: an encoder feature no module takes before the decoder's concat."""

    def __init__(self, wrapped: bool, d: int = 2) -> None:
        super().__init__()
        conv, up = (nn.Conv2d, nn.ConvTranspose2d) if d == 2 else (nn.Conv3d, nn.ConvTranspose3d)
        enc = conv(3, 8, 3, padding=1)
        self.enc1 = nn.Sequential(enc) if wrapped else enc
        self.down = conv(3, 16, 3, stride=2, padding=1)
        self.up = up(16, 8, 2, stride=2)
        self.dec = conv(16, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enc1(x)
        y = self.up(self.down(x))
        out: torch.Tensor = self.dec(torch.cat([y, e], 1))
        return out


def _reading(t: unetviz.Trace) -> list[tuple[int, str, str]]:
    return [(o.channels, "skip" if o.skip is not None else "previous", o.source) for o in t.concats[0].inputs]


@pytest.mark.parametrize(("wrapped", "d"), [(False, 2), (True, 2), (False, 3)])
def test_r3_a_side_output_is_a_skip_whatever_wraps_it(wrapped: bool, d: int) -> None:
    t = unetviz.trace(Side(wrapped, d), input=(1, 3, *(16,) * d))
    src = "enc1.0" if wrapped else "enc1"
    assert _reading(t) == [(8, "previous", "up"), (8, "skip", src)]
    assert [(s.source, s.unit, s.channels, s.size, s.to, s.merge) for s in t.skips] == [
        (src, "enc1", 8, (16,) * d, "dec", "concat")]  # the unit: the conv, or the Sequential it sits in
    assert t.lifo and t.adds == ()


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.psi = nn.Conv2d(8, 1, 1)

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.psi(g))


class AttU(nn.Module):
    """MONAI AttentionUnet's AttentionLayer: ``cat((attention(g=fromlower, x=skip), fromlower))``."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 8, 3, padding=1)
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.gate = Gate()
        self.out = nn.Conv2d(16, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enc(x)
        d = self.up(self.down(e))
        y: torch.Tensor = self.out(torch.cat([self.gate(d, e), d], 1))
        return y


def test_r4_the_gated_encoder_feature_is_the_skip() -> None:
    t = unetviz.trace(AttU(), input=(1, 3, 16, 16))
    assert _reading(t) == [(8, "skip", "gate"), (8, "previous", "up")]
    assert [(s.source, s.unit, s.to) for s in t.skips] == [("enc", "enc", "out")]


class SkipConnection(nn.Module):
    def __init__(self, sub: nn.Module) -> None:
        super().__init__()
        self.submodule = sub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.submodule(x)], 1)


class Nested(nn.Module):
    """MONAI UNet: the whole U is one ``nn.Sequential`` of nested ``SkipConnection``s."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1),
                                   SkipConnection(nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1),
                                                                nn.ConvTranspose2d(16, 8, 2, 2))),
                                   nn.ConvTranspose2d(16, 2, 2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.model(x)
        return y


def test_r5_wrappers_stand_for_their_steps() -> None:
    t = unetviz.trace(Nested(), input=(1, 1, 16, 16))
    assert [(u.path, u.kind, u.in_size, u.out_size) for u in t.units] == [
        ("model.0", "downsample", (16, 16), (8, 8)), ("model.1.submodule.0", "downsample", (8, 8), (4, 4)),
        ("model.1.submodule.1", "upsample", (4, 4), (8, 8)), ("model.2", "upsample", (8, 8), (16, 16))]
    last = t.units[-1]
    assert t.concats[0].at == last.first and t.concats[0].consumer == "model.2"  # before the unit it feeds
    assert [(s.source, s.to) for s in t.skips] == [("model.0", "model.2")]


class Stages(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stages = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.Conv2d(8, 16, 3, 2, 1), nn.Conv2d(16, 32, 3, 2, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for s in self.stages:
            x = s(x)
            out.append(x)
        return out


class ListNet(nn.Module):
    """nnU-Net's and smp's encoders return the list of their stage outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Stages()
        self.up = nn.ModuleList([nn.ConvTranspose2d(32, 16, 2, 2), nn.ConvTranspose2d(16, 8, 2, 2)])
        self.conv = nn.ModuleList([nn.Conv2d(32, 16, 3, 1, 1), nn.Conv2d(16, 8, 3, 1, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)
        y = f[-1]
        for i in range(2):
            y = self.conv[i](torch.cat([self.up[i](y), f[-2 - i]], 1))
        out: torch.Tensor = y
        return out


def test_r6_a_list_returning_encoder_is_split_into_its_stages() -> None:
    t = unetviz.trace(ListNet(), input=(1, 1, 32, 32))
    enc = [(u.path, u.in_channels, u.out_channels, u.out_size) for u in t.units if u.path.startswith("encoder")]
    assert enc == [("encoder.stages.0", 1, 8, (32, 32)), ("encoder.stages.1", 8, 16, (16, 16)),
                   ("encoder.stages.2", 16, 32, (8, 8))]
    # each stage at its level: 8x8 holds the third conv, 16x16 the second and the first decoder step
    levels = [(lv.level, lv.size, lv.macs) for lv in size_cost(t, "", None, 1, "fp32").levels]
    assert levels == [(0, (32, 32), 8 * 9 * 1024 + 8 * 16 * 9 * 1024 + 16 * 8 * 4 * 256),
                      (1, (16, 16), 16 * 8 * 9 * 256 + 16 * 32 * 9 * 256 + 32 * 16 * 4 * 64),
                      (2, (8, 8), 32 * 16 * 9 * 64)]
    assert [(s.source, s.size, s.to) for s in t.skips] == [("encoder.stages.0", (32, 32), "conv.1"),
                                                         ("encoder.stages.1", (16, 16), "conv.0")]


class Tokens(nn.Module):
    """UNETR's ViT: (B, N, C) tokens; Swin: windows folded into the batch, (B*nW, N, C)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv3d(1, 64, 4, 4)
        self.blk = nn.Sequential(nn.LayerNorm(64), nn.Linear(64, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).flatten(2).transpose(1, 2)  # 64 tokens of width 64
        w = t.reshape(8, 8, 64)  # 8 windows of 8 tokens
        y: torch.Tensor = self.blk(w)
        return y


def test_r7_r8_tokens_are_width_and_windows_count_in_macs() -> None:
    t = unetviz.trace(Tokens(), input=(1, 1, 16, 16, 16))
    assert [(u.path, u.in_channels, u.out_channels) for u in t.units] == [("embed", 1, 64), ("blk", 64, 32)]
    lin = next(x for x in t.layers if x.type == "Linear")
    assert (lin.in_channels, lin.out_channels, lin.tokens, lin.batch, lin.in_size) == (64, 32, 8, 8, None)
    assert layer_macs(lin) == 8 * 8 * 64 * 32  # every window's tokens


class Attend(nn.Module):
    """Attention on a (B, C, H, W) map: q·kᵀ and attn·v, by matmul and by SDPA."""

    def __init__(self, sdpa: bool) -> None:
        super().__init__()
        self.sdpa = sdpa
        self.qkv = nn.Conv2d(8, 24, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, 2, c // 2, h * w).transpose(-1, -2).unbind(1)
        if self.sdpa:
            o = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        else:
            o = torch.softmax(q @ k.transpose(-1, -2), -1) @ v
        y: torch.Tensor = o.transpose(-1, -2).reshape(b, c, h, w)
        return y


@pytest.mark.parametrize("sdpa", [False, True])
def test_attention_matmuls_are_rows_as_flop_counter_counts_them(sdpa: bool) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    m = Attend(sdpa).to("meta")
    flops = FlopCounterMode(display=False)
    with flops:
        m(torch.empty(1, 8, 6, 5, device="meta"))
    t = unetviz.trace(m, input=(1, 8, 6, 5))
    rows = [x for x in t.layers if x.type == "attention"]
    assert [(x.heads, x.tokens, x.kv_tokens, x.in_channels, x.out_channels, x.params) for x in rows] == [
        (2, 30, 30, 8, 8, 0)]
    assert t.macs == flops.get_total_flops() // 2 == 24 * 8 * 30 + 30 * 30 * 16


class Swish(nn.Module):
    """efficientnet's ``_swish``: the skip is made by a module with no parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, 1, 1)
        self.act = nn.SiLU()
        self.down = nn.Conv2d(8, 16, 3, 2, 1)
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)
        self.out = nn.Conv2d(16, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.act(self.stem(x))
        y: torch.Tensor = self.out(torch.cat([self.up(self.down(s)), s], 1))
        return y


def test_r12_a_skip_from_a_parameter_free_module_has_its_edge() -> None:
    t = unetviz.trace(Swish(), input=(1, 3, 16, 16))
    assert [(s.source, s.unit) for s in t.skips] == [("act", "stem")]  # the unit that ran last before it
    assert to_graphviz(t, "units").source.count("#0 ") == 1


class Linked(nn.Module):
    """smp's Linknet: the decoder adds the skip (``x = block(x) + skip``)."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 8, 3, 1, 1)
        self.down = nn.Conv2d(8, 16, 3, 2, 1)
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)
        self.res = nn.Conv2d(8, 8, 3, 1, 1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enc(x)
        y = self.up(self.down(e))
        y = y + e  # the skip, added
        y = self.res(y) + y  # a residual: no merge of the U
        out: torch.Tensor = self.out(y)
        return out


def test_an_added_skip_is_listed_with_the_adds() -> None:
    t = unetviz.trace(Linked(), input=(1, 3, 16, 16))
    assert t.concats == () and len(t.adds) == 1
    assert [(o.source, o.channels, o.skip) for o in t.adds[0].inputs] == [("up", 8, None), ("enc", 8, 0)]
    assert t.adds[0].consumer == "res"
    assert [(s.source, s.merge, s.to) for s in t.skips] == [("enc", "add", "res")]
    d = t.to_dict()
    assert d["adds"][0]["inputs"][1] == {"from": "enc", "channels": 8, "size": [16, 16], "skip": 0}
    assert d["skips"][0]["merge"] == "add" and d["lifo"] is True
