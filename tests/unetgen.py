"""Random hand-written U-Nets as real ``nn.Module`` code, and what each one is, known from how it was built.

A ``Config`` is plain data (it prints as a reproducer); ``build(cfg)`` makes the model on the meta device
together with an ``Expected``: the skips (producer module, consumer, channels, size, merge kind), every
concat and add merge with its operands in call order, the output's (channels, size) or the module at which
the forward raises, and the encoder/decoder role of every module. The expectation is derived from the
generator's own bookkeeping and size arithmetic, never from unetviz's observer; ``oracle`` adds torch's own
figures (``parameters()``, ``FlopCounterMode`` on meta, a meta forward) and checks the generator against them.

Styles (how the same abstract U is written):

* ``flat``: the root's ``forward`` keeps a Python list of skips and merges them itself;
* ``block``: down blocks return ``(downsampled, skip)`` tuples, up blocks ``forward(x, skip)`` merge inside;
* ``list``: an encoder returning the list of its stage outputs (nnU-Net, smp; optionally with the input first)
  and a decoder module that reads it;
* ``nested``: MONAI's nested ``SkipConnection(submodule)`` whose ``forward`` is ``merge(x, submodule(x))``.

Stages (``wrap``): ``sequential`` (one ``nn.Sequential`` of conv/norm/act), ``custom`` (a wrapper module with a
``body``), ``cna`` (``nn.Sequential`` of conv-norm-act modules), ``functional`` (activation by ``F.*`` inside the
stage's forward: the stage itself returns the tensor), ``alias`` (nnU-Net's ``ConvDropoutNormReLU``: the conv
registered twice), ``bare`` (the stage is one conv module), ``residual`` (``body(x) + shortcut(x)``: an addition
that merges no skip).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from hypothesis import assume
from hypothesis import strategies as st
from torch import nn

Size = tuple[int, ...]

STYLES = ("flat", "block", "list", "nested")
WRAPS = ("sequential", "custom", "cna", "functional", "alias", "bare", "residual")
NORMS = ("none", "batch", "instance", "group")
ACTS = ("none", "relu", "leaky", "silu")
DOWNS = ("pool", "conv3", "conv2")
"""``pool``: MaxPool (floor); ``conv3``: a k3 p1 strided conv (ceil); ``conv2``: a conv with kernel = stride (floor)."""
UPS = ("transpose", "upsample", "interp")
"""``transpose``: ConvTranspose with kernel = stride; ``upsample``: nearest Upsample then a k3 p1 conv; ``interp``: a
1x1 conv then ``F.interpolate`` in the same module's forward (that module returns the map)."""


@dataclass(frozen=True)
class Level:
    """Encoder level ``l`` (its stage's output is skip ``l``) and its decoder partner."""

    down: str = "pool"
    up: str = "transpose"
    merge: str = "concat"
    """``concat`` (torch.cat on dim 1) or ``add``."""
    skip_first: bool = False
    """Operand order of the merge: the skip first (MONAI's ``cat([x, sub(x)])``) or the upsampled state first."""
    gate: bool = False
    """An attention gate on the skip: ``gate(g=upsampled, x=skip) = x * sigmoid(psi(g))`` (AttentionUnet)."""
    aniso: bool = False
    """3-D only: stride (1, 2, 2), depth kept."""
    pad: bool = False
    """Pad (or crop) the upsampled state to the skip's size with ``F.pad`` before the merge (milesial's
    Pytorch-UNet): odd sizes then work at this level."""


@dataclass(frozen=True)
class Config:
    """One random U-Net: everything ``build`` needs, printable as a reproducer."""

    dims: int = 2
    in_channels: int = 1
    out_channels: int = 2
    widths: tuple[int, ...] = (4, 8)
    """Channels per resolution level, ``depth + 1`` of them (the last is the bottleneck's)."""
    convs: tuple[int, ...] = (1, 1)
    """Convs per stage at each level (encoder and decoder alike)."""
    levels: tuple[Level, ...] = (Level(),)
    norm: str = "none"
    act: str = "none"
    inplace: bool = False
    """In-place activation modules (nnU-Net's LeakyReLU): the activation returns its input object."""
    wrap: str = "sequential"
    style: str = "flat"
    deep_supervision: bool = False
    """1x1 heads on the decoder outputs below full resolution; the model returns ``[final, *heads]``."""
    list_input: bool = False
    """``list`` style: the encoder's list starts with the input itself (smp)."""
    list_sequential: bool = False
    """``list`` style: the encoder's stages sit in an ``nn.Sequential`` it iterates (nnU-Net), not a ModuleList."""
    size: Size = (8, 8)

    @property
    def depth(self) -> int:
        return len(self.levels)

    def stride(self, level: int) -> Size:
        aniso = self.dims == 3 and self.levels[level].aniso
        return (1, 2, 2) if aniso else (2,) * self.dims

    def expr(self) -> str:
        """The config as Python (``Config(...)`` with its non-default fields): a reproducer line."""
        fields = []
        default = Config()
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if name == "levels":
                fields.append("levels=(" + ", ".join(_level_expr(x) for x in v) + ",)")
            elif v != getattr(default, name):
                fields.append(f"{name}={v!r}")
        return "Config(" + ", ".join(fields) + ")"


def _level_expr(level: Level) -> str:
    default = Level()
    args = [f"{n}={getattr(level, n)!r}" for n in level.__dataclass_fields__
            if getattr(level, n) != getattr(default, n)]
    return "Level(" + ", ".join(args) + ")"


# ---- sizes: the generator's own arithmetic ---------------------------------------------------------------

def down_size(kind: str, size: Size, stride: Size) -> Size:
    if kind == "conv3":  # kernel 3, padding 1: floor((s - 1) / st) + 1
        return tuple((s - 1) // st + 1 for s, st in zip(size, stride, strict=True))
    return tuple(s // st for s, st in zip(size, stride, strict=True))  # MaxPool / kernel = stride: floor


def level_sizes(cfg: Config) -> list[Size]:
    """The encoder's resolution at each level 0..depth (the encoder always runs whole)."""
    sizes = [cfg.size]
    for lv, level in enumerate(cfg.levels):
        sizes.append(down_size(level.down, sizes[-1], cfg.stride(lv)))
    return sizes


def failing_level(cfg: Config) -> int | None:
    """The level whose merge the forward reaches with an upsampled state of the wrong size (the decoder runs
    from the deepest level up), or None when every size matches."""
    sizes = level_sizes(cfg)
    for lv in reversed(range(cfg.depth)):
        up = tuple(s * st for s, st in zip(sizes[lv + 1], cfg.stride(lv), strict=True))
        if up != sizes[lv] and not cfg.levels[lv].pad:
            return lv
    return None


# ---- the modules ------------------------------------------------------------------------------------------

def conv_cls(dims: int) -> Callable[..., nn.Module]:
    return nn.Conv3d if dims == 3 else nn.Conv2d


def _norm(cfg: Config, c: int) -> nn.Module | None:
    if cfg.norm == "batch":
        return nn.BatchNorm3d(c) if cfg.dims == 3 else nn.BatchNorm2d(c)
    if cfg.norm == "instance":
        return nn.InstanceNorm3d(c, affine=True) if cfg.dims == 3 else nn.InstanceNorm2d(c, affine=True)
    if cfg.norm == "group":
        return nn.GroupNorm(2, c)
    return None


def _act(cfg: Config) -> nn.Module | None:
    if cfg.act == "none":
        return None
    act: nn.Module = {"relu": nn.ReLU, "leaky": nn.LeakyReLU, "silu": nn.SiLU}[cfg.act](inplace=cfg.inplace)
    return act


FUNCTIONAL: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "leaky": F.leaky_relu,
                                                                 "silu": F.silu}


class ConvNormAct(nn.Module):
    """conv -> norm -> act as named attributes (nnU-Net's ``ConvDropoutNormReLU`` with ``alias``: the conv is
    registered a second time inside ``all_modules``, which the forward runs)."""

    def __init__(self, conv: nn.Module, norm: nn.Module | None, act: nn.Module | None, alias: bool) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm
        self.act = act
        self.alias = alias
        if alias:
            self.all_modules = nn.Sequential(*[m for m in (conv, norm, act) if m is not None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.alias:
            y: torch.Tensor = self.all_modules(x)
            return y
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


class Stage(nn.Module):
    """A custom wrapper: ``forward`` returns its ``body``'s output."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        return y


class FunctionalStage(nn.Module):
    """Convs and norms as modules, the activation by ``torch.nn.functional`` in this forward."""

    def __init__(self, convs: list[nn.Module], norms: list[nn.Module | None], act: str) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.norms = nn.ModuleList([n if n is not None else nn.Identity() for n in norms])
        self.has_norm = any(n is not None for n in norms)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = conv(x)
            if self.has_norm:
                x = norm(x)
            if self.act != "none":
                x = FUNCTIONAL[self.act](x)
        return x


class Residual(nn.Module):
    """``body(x) + shortcut(x)`` (a 1x1 conv shortcut where the channels change, else the identity)."""

    def __init__(self, body: nn.Module, short: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.short = short

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x) + self.short(x)
        return y


class InterpConv(nn.Module):
    """A 1x1 conv, then ``F.interpolate`` by the stride in this forward (smp's decoders resample by function)."""

    def __init__(self, conv: nn.Module, stride: Size) -> None:
        super().__init__()
        self.conv = conv
        self.scale = tuple(float(s) for s in stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=self.scale, mode="nearest")


def pad_to(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``y`` padded (negative: cropped) to ``ref``'s spatial size, half on each side (milesial's ``Up``)."""
    pads: list[int] = []
    for d in reversed(range(2, y.dim())):
        diff = int(ref.shape[d]) - int(y.shape[d])
        pads += [diff // 2, diff - diff // 2]
    return F.pad(y, pads)


class Gate(nn.Module):
    """An additive-attention-style gate on a skip: ``x * sigmoid(psi(g))``."""

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.psi = conv_cls(dims)(channels, 1, 1)

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.psi(g))


def merge(kind: str, skip_first: bool, up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    a, b = (skip, up) if skip_first else (up, skip)
    return torch.cat([a, b], dim=1) if kind == "concat" else a + b


@dataclass
class Built:
    """A stage or sampler and the innermost module that returns its output (the producer of that tensor)."""

    module: nn.Module
    producer: nn.Module


def stage(cfg: Config, cin: int, cout: int, n: int) -> Built:
    conv = conv_cls(cfg.dims)
    if cfg.wrap == "bare":
        c = conv(cin, cout, 3, padding=1)
        return Built(c, c)
    convs = [conv(cin if i == 0 else cout, cout, 3, padding=1) for i in range(n)]
    norms = [_norm(cfg, cout) for _ in range(n)]
    if cfg.wrap == "functional":
        m = FunctionalStage(list(convs), norms, cfg.act)
        return Built(m, m if cfg.act != "none" else (norms[-1] or convs[-1]))
    acts = [_act(cfg) for _ in range(n)]
    if cfg.wrap in ("cna", "alias"):
        blocks = [ConvNormAct(c, nm, a, cfg.wrap == "alias") for c, nm, a in zip(convs, norms, acts, strict=True)]
        last = blocks[-1]
        return Built(nn.Sequential(*blocks), last.act or last.norm or last.conv)
    flat: list[nn.Module] = [m for trio in zip(convs, norms, acts, strict=True) for m in trio if m is not None]
    body = nn.Sequential(*flat)
    if cfg.wrap == "residual":
        r = Residual(body, conv(cin, cout, 1) if cin != cout else nn.Identity())
        return Built(r, r)
    return Built(Stage(body) if cfg.wrap == "custom" else body, flat[-1])


def downsampler(cfg: Config, lv: int, c: int) -> Built:
    stride = cfg.stride(lv)
    kind = cfg.levels[lv].down
    m: nn.Module
    if kind == "pool":
        m = nn.MaxPool3d(stride) if cfg.dims == 3 else nn.MaxPool2d(stride)
    elif kind == "conv3":
        m = conv_cls(cfg.dims)(c, c, 3, stride=stride, padding=1)
    else:
        m = conv_cls(cfg.dims)(c, c, stride, stride=stride)
    return Built(m, m)


def upsampler(cfg: Config, lv: int, cin: int, cout: int) -> Built:
    stride = cfg.stride(lv)
    if cfg.levels[lv].up == "transpose":
        transpose: Callable[..., nn.Module] = nn.ConvTranspose3d if cfg.dims == 3 else nn.ConvTranspose2d
        t = transpose(cin, cout, stride, stride=stride)
        return Built(t, t)
    if cfg.levels[lv].up == "interp":
        m = InterpConv(conv_cls(cfg.dims)(cin, cout, 1), stride)
        return Built(m, m)
    c = conv_cls(cfg.dims)(cin, cout, 3, padding=1)
    return Built(nn.Sequential(nn.Upsample(scale_factor=tuple(float(s) for s in stride), mode="nearest"), c), c)


# ---- the four styles --------------------------------------------------------------------------------------

@dataclass
class Parts:
    """The modules of one U, by level, before a style arranges them."""

    enc: list[Built]
    """Stages 0..depth (the last is the bottleneck)."""
    downs: list[Built]
    ups: list[Built]
    gates: list[Gate | None]
    decs: list[Built]
    head: nn.Module
    ds: list[nn.Module]
    """Deep-supervision heads on decoder levels 1..depth-1."""


def parts(cfg: Config) -> Parts:
    w, conv = cfg.widths, conv_cls(cfg.dims)
    enc = [stage(cfg, cfg.in_channels, w[0], cfg.convs[0])]
    downs = []
    for lv in range(cfg.depth):
        downs.append(downsampler(cfg, lv, w[lv]))
        enc.append(stage(cfg, w[lv], w[lv + 1], cfg.convs[lv + 1]))
    ups = [upsampler(cfg, lv, w[lv + 1], w[lv]) for lv in range(cfg.depth)]
    gates = [Gate(cfg.dims, w[lv]) if cfg.levels[lv].gate else None for lv in range(cfg.depth)]
    decs = [stage(cfg, w[lv] * (2 if cfg.levels[lv].merge == "concat" else 1), w[lv], cfg.convs[lv])
            for lv in range(cfg.depth)]
    ds = [conv(w[lv], cfg.out_channels, 1) for lv in range(1, cfg.depth)] if cfg.deep_supervision else []
    return Parts(enc, downs, ups, gates, decs, conv(w[0], cfg.out_channels, 1), ds)


def _gate_dict(gates: list[Gate | None]) -> nn.ModuleDict:
    return nn.ModuleDict({str(lv): g for lv, g in enumerate(gates) if g is not None})


class FlatUNet(nn.Module):
    """The root's forward keeps the skips in a Python list and merges them itself."""

    def __init__(self, cfg: Config, p: Parts) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc = nn.ModuleList([b.module for b in p.enc])
        self.downs = nn.ModuleList([b.module for b in p.downs])
        self.ups = nn.ModuleList([b.module for b in p.ups])
        self.gates = _gate_dict(p.gates)
        self.decs = nn.ModuleList([b.module for b in p.decs])
        self.head = p.head
        self.ds = nn.ModuleList(p.ds)

    def forward(self, x: torch.Tensor) -> Any:
        skips = []
        x = self.enc[0](x)
        for lv in range(self.cfg.depth):
            skips.append(x)
            x = self.enc[lv + 1](self.downs[lv](x))
        aux = []
        for lv in reversed(range(self.cfg.depth)):
            level = self.cfg.levels[lv]
            y = self.ups[lv](x)
            s = skips.pop()
            if level.pad:
                y = pad_to(y, s)
            if level.gate:
                s = self.gates[str(lv)](g=y, x=s)
            x = self.decs[lv](merge(level.merge, level.skip_first, y, s))
            if self.cfg.deep_supervision and lv > 0:
                aux.append(self.ds[lv - 1](x))
        out = self.head(x)
        return [out, *reversed(aux)] if self.cfg.deep_supervision else out


class DownBlock(nn.Module):
    """A stage then a downsampler: returns ``(downsampled, skip)``."""

    def __init__(self, conv: nn.Module, down: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.down = down

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x)
        return self.down(h), h


class UpBlock(nn.Module):
    """Upsample, gate the skip, merge and convolve, all in its own forward."""

    def __init__(self, level: Level, up: nn.Module, gate: Gate | None, conv: nn.Module) -> None:
        super().__init__()
        self.level = level
        self.up = up
        self.gate = gate
        self.conv = conv

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        y = self.up(x)
        if self.level.pad:
            y = pad_to(y, skip)
        if self.gate is not None:
            skip = self.gate(g=y, x=skip)
        out: torch.Tensor = self.conv(merge(self.level.merge, self.level.skip_first, y, skip))
        return out


class BlockUNet(nn.Module):
    """Down blocks handing their skips on in tuples, a mid stage, up blocks that merge in their forward."""

    def __init__(self, cfg: Config, p: Parts) -> None:
        super().__init__()
        self.cfg = cfg
        self.downs = nn.ModuleList([DownBlock(p.enc[lv].module, p.downs[lv].module) for lv in range(cfg.depth)])
        self.mid = p.enc[cfg.depth].module
        self.ups = nn.ModuleList([UpBlock(cfg.levels[lv], p.ups[lv].module, p.gates[lv], p.decs[lv].module)
                                  for lv in range(cfg.depth)])
        self.head = p.head
        self.ds = nn.ModuleList(p.ds)

    def forward(self, x: torch.Tensor) -> Any:
        skips = []
        for block in self.downs:
            x, h = block(x)
            skips.append(h)
        x = self.mid(x)
        aux = []
        for lv in reversed(range(self.cfg.depth)):
            x = self.ups[lv](x, skips.pop())
            if self.cfg.deep_supervision and lv > 0:
                aux.append(self.ds[lv - 1](x))
        out = self.head(x)
        return [out, *reversed(aux)] if self.cfg.deep_supervision else out


class ListEncoder(nn.Module):
    """Returns the list of its stage outputs (nnU-Net, smp); with ``with_input`` the input comes first."""

    def __init__(self, stages: list[nn.Module], with_input: bool, sequential: bool) -> None:
        super().__init__()
        self.stages: nn.Sequential | nn.ModuleList = nn.Sequential(*stages) if sequential else nn.ModuleList(stages)
        self.with_input = with_input

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [x] if self.with_input else []
        for s in self.stages:
            x = s(x)
            out.append(x)
        return out


class ListDecoder(nn.Module):
    """Reads the encoder's list: the last entry is the bottleneck, the others the skips."""

    def __init__(self, cfg: Config, p: Parts) -> None:
        super().__init__()
        self.cfg = cfg
        self.ups = nn.ModuleList([b.module for b in p.ups])
        self.gates = _gate_dict(p.gates)
        self.stages = nn.ModuleList([b.module for b in p.decs])
        self.seg = p.head
        self.ds = nn.ModuleList(p.ds)

    def forward(self, feats: list[torch.Tensor]) -> Any:
        feats = feats[1:] if self.cfg.list_input else feats
        x = feats[-1]
        aux = []
        for lv in reversed(range(self.cfg.depth)):
            level = self.cfg.levels[lv]
            y = self.ups[lv](x)
            s = feats[lv]
            if level.pad:
                y = pad_to(y, s)
            if level.gate:
                s = self.gates[str(lv)](g=y, x=s)
            x = self.stages[lv](merge(level.merge, level.skip_first, y, s))
            if self.cfg.deep_supervision and lv > 0:
                aux.append(self.ds[lv - 1](x))
        out = self.seg(x)
        return [out, *reversed(aux)] if self.cfg.deep_supervision else out


class ListUNet(nn.Module):
    def __init__(self, cfg: Config, p: Parts) -> None:
        super().__init__()
        stages = [p.enc[0].module] + [nn.Sequential(p.downs[lv].module, p.enc[lv + 1].module)
                                      for lv in range(cfg.depth)]
        self.encoder = ListEncoder(stages, cfg.list_input, cfg.list_sequential)
        self.decoder = ListDecoder(cfg, p)

    def forward(self, x: torch.Tensor) -> Any:
        return self.decoder(self.encoder(x))


class SkipConnection(nn.Module):
    """MONAI's ``SkipConnection``: ``merge(x, submodule(x))``, with an optional gate on ``x``."""

    def __init__(self, submodule: nn.Module, level: Level, gate: Gate | None) -> None:
        super().__init__()
        self.submodule = submodule
        self.gate = gate
        self.level = level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.submodule(x)
        if self.level.pad:
            y = pad_to(y, x)
        s = x if self.gate is None else self.gate(g=y, x=x)
        return merge(self.level.merge, self.level.skip_first, y, s)


class NestedUNet(nn.Module):
    """MONAI UNet's shape: ``model = Sequential(enc0, SkipConnection(Sequential(down0, enc1, ..., up0)), dec0,
    head)``."""

    def __init__(self, cfg: Config, p: Parts) -> None:
        super().__init__()
        self.model = nn.Sequential(p.enc[0].module, self._skip(cfg, p, 0), p.decs[0].module, p.head)

    def _skip(self, cfg: Config, p: Parts, lv: int) -> SkipConnection:
        inner: list[nn.Module] = [p.downs[lv].module, p.enc[lv + 1].module]
        if lv + 1 < cfg.depth:
            inner += [self._skip(cfg, p, lv + 1), p.decs[lv + 1].module]
        inner.append(p.ups[lv].module)
        return SkipConnection(nn.Sequential(*inner), cfg.levels[lv], p.gates[lv])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.model(x)
        return y


# ---- what was built ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Operand:
    source: str
    channels: int
    size: Size
    skip: int | None
    """The skip's index (its level) for the operand that is a skip (gated or not), else None."""


@dataclass(frozen=True)
class Merge:
    kind: str
    level: int
    consumer: str
    channels: int
    size: Size
    operands: tuple[Operand, ...]


@dataclass(frozen=True)
class Skip:
    level: int
    source: str
    """The innermost module that returned the encoder feature (a gated skip's too: the feature is the skip)."""
    channels: int
    size: Size
    merge: str
    consumer: str
    """The module that receives the merged tensor."""
    gate: str | None
    """The gate that reads it first, if any."""


@dataclass(frozen=True)
class Expected:
    skips: tuple[Skip, ...]
    """Every skip whose merge runs, in push order (level 0 first)."""
    pending: Skip | None
    """The skip of the merge that raises, if one does (the observer may or may not list it)."""
    merges: tuple[Merge, ...]
    """The merges that run (up to a failure), in forward order (deepest level first)."""
    out_channels: int | None
    out_size: Size | None
    fail_level: int | None
    fail_at: str | None
    """The module whose forward runs the op that raises (``""``: the root's own forward)."""
    roles: dict[str, str] = field(default_factory=dict)
    """Module path (``named_modules()``) -> ``enc`` / ``mid`` / ``dec`` / ``head`` for every module with
    parameters directly."""


@dataclass
class Case:
    cfg: Config
    model: nn.Module
    expected: Expected


def _paths(model: nn.Module) -> dict[int, str]:
    # named_modules() lists a module registered twice once, under its first path: torch's own name for it
    return {id(m): p for p, m in model.named_modules()}


def build(cfg: Config) -> Case:
    """The model on the meta device and what it is."""
    with torch.device("meta"):
        p = parts(cfg)
        model: nn.Module = {"flat": FlatUNet, "block": BlockUNet, "list": ListUNet, "nested": NestedUNet}[cfg.style](
            cfg, p)
    model.eval()
    return Case(cfg, model, expect(cfg, model, p))


def _merge_site(cfg: Config, model: nn.Module, lv: int, path: dict[int, str]) -> str:
    if cfg.style == "flat":
        return ""
    if cfg.style == "block":
        assert isinstance(model, BlockUNet)
        return path[id(model.ups[lv])]
    if cfg.style == "list":
        return "decoder"
    sk: Any = model.get_submodule("model.1")
    for _ in range(lv):
        sk = sk.submodule[2]
    assert isinstance(sk, SkipConnection)
    return path[id(sk)]


def _up_source(cfg: Config, model: nn.Module, p: Parts, lv: int, path: dict[int, str]) -> str:
    """The producer of the upsampled operand: the innermost module that returned it; padded by ``F.pad`` in a
    forward, no module returned it, so the module that finished last before the pad: the whole upsampler (its
    outermost module), or in the nested style the SkipConnection's ``submodule``, which returns it."""
    if not cfg.levels[lv].pad:
        return path[id(p.ups[lv].producer)]
    if cfg.style == "nested":
        return f"{_merge_site(cfg, model, lv, path)}.submodule"
    return path[id(p.ups[lv].module)]


def expect(cfg: Config, model: nn.Module, p: Parts) -> Expected:
    path = _paths(model)
    sizes = level_sizes(cfg)
    fail = failing_level(cfg)
    w = cfg.widths
    skips: list[Skip] = []
    merges: list[Merge] = []
    fail_at: str | None = None
    pending: Skip | None = None
    for lv in reversed(range(cfg.depth)):
        level = cfg.levels[lv]
        gate = p.gates[lv]
        gate_path = None if gate is None else path[id(gate)]
        if lv == fail:
            fail_at = gate_path if gate_path is not None else _merge_site(cfg, model, lv, path)
        consumer = path[id(p.decs[lv].module)]
        skip = Skip(lv, path[id(p.enc[lv].producer)], w[lv], sizes[lv], level.merge, consumer, gate_path)
        if lv == fail:
            pending = skip
            break
        skips.append(skip)
        up = Operand(_up_source(cfg, model, p, lv, path), w[lv], sizes[lv], None)
        sk = Operand(gate_path or path[id(p.enc[lv].producer)], w[lv], sizes[lv], lv)
        ops = (sk, up) if level.skip_first else (up, sk)
        ch = 2 * w[lv] if level.merge == "concat" else w[lv]
        merges.append(Merge(level.merge, lv, consumer, ch, sizes[lv], ops))
    roles: dict[str, str] = {}

    def mark(m: nn.Module, role: str) -> None:
        for sub in m.modules():
            if any(t is not None for t in sub._parameters.values()):
                roles.setdefault(path[id(sub)], role)

    for lv in range(cfg.depth):
        mark(p.enc[lv].module, "enc")
        mark(p.downs[lv].module, "enc")
        mark(p.ups[lv].module, "dec")
        mark(p.decs[lv].module, "dec")
        if p.gates[lv] is not None:
            mark(p.gates[lv], "dec")  # type: ignore[arg-type]
    mark(p.enc[cfg.depth].module, "mid")
    mark(p.head, "head")
    for h in p.ds:
        mark(h, "head")
    return Expected(skips=tuple(sorted(skips, key=lambda s: s.level)), pending=pending, merges=tuple(merges),
                    out_channels=None if fail is not None else cfg.out_channels,
                    out_size=None if fail is not None else cfg.size, fail_level=fail, fail_at=fail_at, roles=roles)


# ---- torch's own figures ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Oracle:
    params: int
    macs: int
    """FlopCounterMode's total / 2, up to the failure if the forward raises."""
    out_shape: tuple[int, ...] | None
    raised: str | None
    raised_in: str | None
    """The innermost module whose forward was running when it raised (its own hooks, not unetviz's)."""


def oracle(case: Case) -> Oracle:
    """torch's answer for the model: parameters by identity, FlopCounterMode on meta, the forward's output or
    the module it raises in (from a pre/post hook stack of our own)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = case.model
    params = sum(p.numel() for p in model.parameters())
    path = _paths(model)
    stack: list[str] = []
    handles = []

    def enter(mod: nn.Module, _args: Any) -> None:
        stack.append(path[id(mod)])

    def leave(_mod: nn.Module, _args: Any, _out: Any) -> None:  # returns None: the output stays the module's
        stack.pop()

    for m in model.modules():
        handles.append(m.register_forward_pre_hook(enter))
        handles.append(m.register_forward_hook(leave))
    x = torch.empty(1, case.cfg.in_channels, *case.cfg.size, device="meta")
    raised = raised_in = None
    out_shape = None
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            out = model(x)
        first = out[0] if isinstance(out, list) else out
        out_shape = tuple(int(d) for d in first.shape)
    except RuntimeError as e:
        raised, raised_in = str(e).splitlines()[0], stack[-1] if stack else None
    finally:
        for h in handles:
            h.remove()
    return Oracle(params, counter.get_total_flops() // 2, out_shape, raised, raised_in)


# ---- the strategy -----------------------------------------------------------------------------------------

@st.composite
def configs(draw: st.DrawFn, fail: bool | None = None) -> Config:
    """A random valid U-Net; ``fail``: True for sizes where some merge mismatches, False for sizes that work,
    None for either (mostly working)."""
    dims = draw(st.sampled_from((2, 3)))
    depth = draw(st.integers(1, 4))
    widths = tuple(draw(st.lists(st.sampled_from((4, 8, 12, 16)), min_size=depth + 1, max_size=depth + 1)))
    convs = tuple(draw(st.lists(st.integers(1, 2), min_size=depth + 1, max_size=depth + 1)))
    levels = tuple(Level(down=draw(st.sampled_from(DOWNS)), up=draw(st.sampled_from(UPS)),
                         merge=draw(st.sampled_from(("concat", "add"))), skip_first=draw(st.booleans()),
                         gate=draw(st.booleans()), aniso=dims == 3 and draw(st.booleans()),
                         pad=draw(st.integers(0, 3)) == 0)
                   for _ in range(depth))
    style = draw(st.sampled_from(STYLES))
    wrap = draw(st.sampled_from(WRAPS))
    cfg = Config(dims=dims, in_channels=draw(st.integers(1, 3)), out_channels=draw(st.integers(1, 3)),
                 widths=widths, convs=convs, levels=levels, norm=draw(st.sampled_from(NORMS)),
                 act=draw(st.sampled_from(ACTS)), inplace=draw(st.booleans()), wrap=wrap, style=style,
                 deep_supervision=style != "nested" and depth >= 2 and draw(st.booleans()),
                 list_input=style == "list" and draw(st.booleans()),
                 list_sequential=style == "list" and draw(st.booleans()))
    strided = [sum(1 for lv in range(depth) if cfg.stride(lv)[a] == 2) for a in range(dims)]
    odd = draw(st.integers(0, 3)) == 0 if fail is None else fail  # a quarter of the free draws fail
    axes = [a for a in range(dims) if strided[a]]
    perturbed = {draw(st.sampled_from(axes))} if odd else set()
    if odd:
        perturbed |= {a for a in axes if draw(st.booleans())}
    size = tuple(draw(st.integers(2, 4)) * 2 ** strided[a] + (draw(st.sampled_from((-1, 1))) if a in perturbed else 0)
                 for a in range(dims))
    cfg = replace(cfg, size=size)
    # every level at least 2 on every axis (no size-1 broadcast, no single-element instance norm)
    assume(all(min(s) >= 2 for s in level_sizes(cfg)))
    if fail is not None:
        assume((failing_level(cfg) is not None) == fail)
    return cfg
