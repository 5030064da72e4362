"""Live U-Nets of the libraries people use, observed and checked against torch's own figures.

MONAI (UNet, BasicUNet, DynUNet, AttentionUnet, UNETR, SwinUNETR; 2-D and 3-D), nnU-Net's
dynamic_network_architectures (PlainConvUNet, ResidualEncoderUNet) and segmentation_models_pytorch (Unet,
UnetPlusPlus, Linknet with a resnet34 and an efficientnet-b0 encoder, no pretrained weights), at small widths
and sizes. For each: the parameters are ``sum(p.numel() for p in model.parameters())``, the MACs
``FlopCounterMode / 2``, every concat and skip-merging addition has the operands (producer, channels) that an
interception written here sees, the skips are the ones the architecture has, and the encoder and the decoder
are each several units spread over the U's levels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import pytest

pytest.importorskip("torch")

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

import unetviz
from unetviz.analysis.memory import level_of
from unetviz.core.records import Trace, numel

# the libraries are optional (and untyped): modules looked up by name, their classes read as Any
smp = pytest.importorskip("segmentation_models_pytorch")
dna = pytest.importorskip("dynamic_network_architectures.architectures.unet")
monai_nets = pytest.importorskip("monai.networks.nets")

Build = Callable[[], nn.Module]


def _nnunet(cls: Any, d: int, **extra: Any) -> nn.Module:
    conv, norm = (nn.Conv2d, nn.InstanceNorm2d) if d == 2 else (nn.Conv3d, nn.InstanceNorm3d)
    model: nn.Module = cls(input_channels=1, n_stages=4, features_per_stage=(4, 8, 16, 32), conv_op=conv,
                           kernel_sizes=3, strides=(1, 2, 2, 2), num_classes=2, conv_bias=True, norm_op=norm,
                           norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU,
                           nonlin_kwargs={"inplace": True}, **extra)
    return model


def _call(cls: Any, *args: Any, **kwargs: Any) -> nn.Module:
    model: nn.Module = cls(*args, **kwargs)
    return model


def _models() -> dict[str, tuple[Build, tuple[int, ...], int, str]]:
    """name -> (builder, input shape, skips the architecture has, how they merge)."""
    m: dict[str, tuple[Build, tuple[int, ...], int, str]] = {}
    for d in (2, 3):
        s = (1, 1) + (32,) * d
        m[f"monai-unet-{d}d"] = (partial(_call, monai_nets.UNet, d, 1, 2, channels=(4, 8, 16, 32),
                                         strides=(2, 2, 2), num_res_units=2), s, 3, "concat")
        m[f"basicunet-{d}d"] = (partial(_call, monai_nets.BasicUNet, d, 1, 2, features=(4, 4, 8, 16, 32, 4)), s, 4,
                                "concat")
        m[f"dynunet-{d}d"] = (partial(_call, monai_nets.DynUNet, d, 1, 2, kernel_size=[3] * 4, strides=[1, 2, 2, 2],
                                      upsample_kernel_size=[2, 2, 2], filters=[4, 8, 16, 32]), s, 3, "concat")
        m[f"attentionunet-{d}d"] = (partial(_call, monai_nets.AttentionUnet, d, 1, 2, channels=(4, 8, 16, 32),
                                            strides=(2, 2, 2)), s, 3, "concat")
        m[f"unetr-{d}d"] = (partial(_call, monai_nets.UNETR, 1, 2, img_size=(32,) * d, feature_size=4,
                                    hidden_size=48, mlp_dim=96, num_heads=4, spatial_dims=d), s, 4, "concat")
        m[f"swinunetr-{d}d"] = (partial(_call, monai_nets.SwinUNETR, in_channels=1, out_channels=2, feature_size=12,
                                        spatial_dims=d, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)),
                                (1, 1) + (64,) * d, 5, "concat")
        m[f"plainconvunet-{d}d"] = (partial(_nnunet, dna.PlainConvUNet, d, n_conv_per_stage=2,
                                            n_conv_per_stage_decoder=2), s, 3, "concat")
        m[f"residualencoderunet-{d}d"] = (partial(_nnunet, dna.ResidualEncoderUNet, d,
                                                  n_blocks_per_stage=(1, 2, 2, 2), n_conv_per_stage_decoder=1),
                                          s, 3, "concat")
    for arch, merge in (("Unet", "concat"), ("UnetPlusPlus", "concat"), ("Linknet", "add")):
        for enc in ("resnet34", "efficientnet-b0"):
            m[f"smp-{arch}-{enc}"] = (partial(_call, getattr(smp, arch), enc, encoder_weights=None, in_channels=3,
                                              classes=2), (1, 3, 64, 64), 4, merge)
    return m


MODELS = _models()
SLOW = {"swinunetr-3d", "smp-UnetPlusPlus-resnet34", "smp-Unet-resnet34", "smp-Linknet-resnet34"}
CASES = [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k for k in MODELS]


def _meta(name: str) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model: nn.Module = MODELS[name][0]().eval().to("meta")
        return model  # SwinUNETR's constructor calls .item(): built on CPU


class Interception(TorchFunctionMode):
    """An observer of its own: the producer of every tensor (the innermost module that returned it since it
    last changed, else the module that finished last before it was made) and the (producer, channels) operands
    of every channel concat and every addition of two maps of the input's rank."""

    CATS: ClassVar[set[Any]] = {torch.cat, torch.concat, torch.concatenate}
    ADDS: ClassVar[set[Any]] = {torch.add, torch.Tensor.add, torch.Tensor.add_, torch.Tensor.__add__,
                                torch.Tensor.__iadd__}

    def __init__(self, model: nn.Module, rank: int) -> None:
        super().__init__()
        self.rank = rank
        self.names = {id(m): p for p, m in model.named_modules()}
        self.producer: dict[int, str] = {}
        self.made_after: dict[int, str] = {}
        self.refs: list[torch.Tensor] = []
        self.last = "input"
        self.cats: list[list[tuple[str, int]]] = []
        self.adds: list[list[tuple[str, int]]] = []
        for mod in model.modules():
            mod.register_forward_hook(self._returned)

    def _returned(self, module: nn.Module, args: Any, out: Any) -> None:
        many = out if isinstance(out, (list, tuple)) else ()
        outs = [out] if isinstance(out, torch.Tensor) else [t for t in many if isinstance(t, torch.Tensor)]
        for t in outs:
            self.producer.setdefault(id(t), self.names[id(module)])
            self.refs.append(t)
        self.last = self.names[id(module)]

    def _from(self, t: torch.Tensor) -> str:
        return self.producer.get(id(t)) or self.made_after.get(id(t), "input")

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in self.CATS:
            ts, dim = list(args[0]), (args[1] if len(args) > 1 else kwargs.get("dim", 0))
            if ts and ts[0].dim() == self.rank and dim in (1, 1 - self.rank):
                self.cats.append([(self._from(t), int(t.shape[1])) for t in ts])
        elif func in self.ADDS and len(args) == 2 and all(isinstance(a, torch.Tensor) for a in args):
            a, b = args
            if a.dim() == self.rank and a.shape == b.shape:
                self.adds.append([(self._from(t), int(t.shape[1])) for t in (a, b)])
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor):  # made here, or changed in place (an op that returns its input)
            self.producer.pop(id(out), None)  # no module has returned it since
            self.made_after[id(out)] = self.last
            self.refs.append(out)
        return out


def _intercept(model: nn.Module, shape: tuple[int, ...]) -> tuple[Interception, int]:
    """(the interception, FlopCounterMode's MACs) of one pass on meta."""
    seen = Interception(model, len(shape))
    flops = FlopCounterMode(display=False)
    with torch.no_grad(), flops, seen:
        model(torch.empty(shape, device="meta"))
    return seen, flops.get_total_flops() // 2


def _halves(t: Trace) -> tuple[list[int], list[int]]:
    """Unit indices of the encoder (up to the first unit at the U's lowest resolution) and of the decoder."""
    sized = [i for i, u in enumerate(t.units) if u.out_size]
    low = min(sized, key=lambda i: (numel(t.units[i].out_size), i))
    return [i for i in sized if i <= low], [i for i in sized if i > low]


@pytest.mark.parametrize("name", CASES)
def test_library_unet_observed_as_torch_counts_it(name: str) -> None:
    model = _meta(name)
    _, shape, n_skips, merge = MODELS[name]
    t = unetviz.trace(model, input=shape)
    seen, macs = _intercept(_meta(name), shape)
    assert t.error is None and (t.out_channels, t.out_size) == (2, shape[2:])
    assert t.params == sum(p.numel() for p in model.parameters())  # each tensor once, however registered
    assert t.macs == macs  # FlopCounterMode's FLOPs / 2: convs, every Linear row, the attention matmuls
    assert [[(o.source, o.channels) for o in c.inputs] for c in t.concats] == seen.cats
    ops = [[(o.source, o.channels) for o in c.inputs] for c in t.adds]
    assert all(a in seen.adds for a in ops)
    skips = [s for s in t.skips if s.merge == merge]
    assert len(skips) >= n_skips and len(t.adds) == (n_skips if merge == "add" else 0)
    assert all(s.merge == merge for s in t.skips)
    # every skip is read by a merge whose other operand is the decoder's state at that resolution
    merges = t.adds if merge == "add" else t.concats
    for s in skips:
        assert any(o.skip == s.index and (o.channels, o.size) == (s.channels, s.size) for c in merges
                   for o in c.inputs)
    assert t.lifo == ("PlusPlus" not in name)
    enc, dec = _halves(t)
    assert len(enc) > 1 and len(dec) > 1
    levels = {level_of(t, t.units[i]) for i in enc} - {None}
    # each stage at its own level, not the whole encoder on level 0 (UNETR's encoder is a ViT on one grid of
    # tokens, its skips upsampled from it: level 0 and the token grid's)
    assert len(levels) >= (2 if "unetr-" in name and "swin" not in name else 3)


def test_unet_plus_plus_reads_its_dense_skips_from_several_consumers() -> None:
    t = unetviz.trace(_meta("smp-UnetPlusPlus-efficientnet-b0"), input=(1, 3, 64, 64))
    assert not t.lifo
    top = [s for s in t.skips if s.size == (32, 32)]
    assert max(len(s.consumers) for s in top) == 4  # X(0,0) is read by the four nodes of the top row
    assert all(s.to == s.consumers[0] for s in t.skips)
    d = t.to_dict()
    assert d["lifo"] is False and all(isinstance(s["to"], list) for s in d["skips"])


def test_attention_unet_gated_feature_is_the_skip() -> None:
    t = unetviz.trace(_meta("attentionunet-2d"), input=(1, 1, 32, 32))
    for c in t.concats:
        gated, state = c.inputs
        assert gated.source.endswith(".attention") and gated.skip is not None  # the gate's output: the skip
        assert state.skip is None and ".upconv" in state.source  # the decoder's upsampled state: previous
    assert all(".attention" not in s.source for s in t.skips)  # the skip is the encoder feature the gate was given


def test_linknet_adds_its_skips() -> None:
    t = unetviz.trace(_meta("smp-Linknet-efficientnet-b0"), input=(1, 3, 64, 64))
    assert [s.merge for s in t.skips] == ["add"] * 4 and t.concats == ()
    assert [c.consumer for c in t.adds] == [f"decoder.blocks.{i}" for i in range(1, 5)]
    assert t.skips[0].source == "encoder._swish" and t.skips[0].unit == "encoder._bn0"  # a parameter-free swish
    d = t.to_dict()
    assert len(d["adds"]) == 4 and {s["merge"] for s in d["skips"]} == {"add"}


def test_swin_unetr_finds_its_side_output_skip() -> None:
    t = unetviz.trace(_meta("swinunetr-2d"), input=(1, 1, 64, 64))
    assert [s.source for s in t.skips] == ["encoder1.layer.lrelu", "encoder2.layer.lrelu", "encoder3.layer.lrelu",
                                           "encoder4.layer.lrelu", "swinViT"]  # hidden_states_out[3], read as is
    first = next(x for x in t.layers if x.type == "attention")  # q·kᵀ and attn·v of one window attention
    assert (first.batch, first.heads, first.tokens, first.kv_tokens) == (25, 1, 49, 49)
    assert (first.in_channels, first.out_channels) == (12, 12)
    qkv = next(x for x in t.layers if x.path.endswith("attn.qkv"))
    assert (qkv.batch, qkv.tokens) == (25, 49)  # the 32x32 grid padded to 35x35: 5x5 windows of 7x7 tokens
