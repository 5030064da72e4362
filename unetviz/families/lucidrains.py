"""lucidrains' ``denoising_diffusion_pytorch.Unet`` (version 2.3.4), read beside its ``__init__``/``forward``.

Every stage pushes twice (after ``block1``, and after ``block2`` + attention) and every up stage pops
twice, once before each resnet; the up path upsamples at the *end* of a stage, after its resnets,
and the last stage of each path swaps the sampler for a plain 3x3 conv. The decoder ends with a
concat of ``r`` (the ``init_conv`` output) into ``final_res_block``, outside the skip stack.

Configs come from JSON, which has no tuples: a list for ``dim_mults``, ``full_attn``,
``attn_heads`` or ``attn_dim_head`` stands for the Python tuple upstream expects (a real list
there would be wrapped whole by ``cast_tuple``); ``unetviz.live.upstream.lucidrains`` converts the same way.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from ..core.config import Args
from ..core.errors import UnetvizError, bad_value
from ..core.records import Size, fmt_size
from ..engine.tracer import Act, Tracer

DEFAULTS: dict[str, Any] = {
    "dim": None,  # required upstream (no default); None here means "not given"
    "init_dim": None, "out_dim": None, "dim_mults": (1, 2, 4, 8), "channels": 3, "self_condition": False,
    "learned_variance": False, "learned_sinusoidal_cond": False, "random_fourier_features": False,
    "learned_sinusoidal_dim": 16, "sinusoidal_pos_emb_theta": 10000, "dropout": 0.0, "attn_dim_head": 32,
    "attn_heads": 4, "full_attn": None, "flash_attn": False,
}

NUM_MEM_KV = 4  # Attention / LinearAttention default, not exposed by Unet
ORDER = ("init_conv", "time_mlp", "downs", "ups", "mid_block1", "mid_attn", "mid_block2", "final_res_block",
         "final_conv")
"""Registration order: both ModuleLists are created before the mid blocks, unlike the forward order."""


def _per_stage(a: Args, key: str, n: int) -> list[int]:
    """``cast_tuple(v, n)``: an int for every stage, or a list taken as the tuple it stands for."""
    v = a.raw(key)
    if isinstance(v, (list, tuple)):
        if not v:
            raise bad_value(key, v, "an integer >= 1 or a non-empty list of them (upstream indexes [-1])")
        return [a.int(key, 1, item) for item in v]
    if n == 0:  # cast_tuple(v, 0) is (), and the mid attention reads its [-1]
        raise bad_value(key, v, "a non-empty list when dim_mults is empty (the mid attention reads [-1])")
    return [a.int(key, 1)] * n


def _full_attn(a: Args, n: int) -> list[bool]:
    """``full_attn``: ``if not full_attn`` takes the default (full attention only innermost); then
    ``cast_tuple`` repeats a scalar, and each stage picks Attention by the entry's truthiness."""
    v = a.raw("full_attn")
    if not v:
        v = [False] * (n - 1) + [True]
    elif not isinstance(v, (list, tuple)):
        v = [True] * n  # cast_tuple(truthy, n)
    if len(v) != n:
        raise UnetvizError(f"full_attn has {len(v)} entries but dim_mults has {n} (upstream asserts they match)")
    return [bool(b) for b in v]


def _dim_mults(a: Args) -> list[int]:
    # an empty tuple builds a model of no stages, only the mid and final blocks: upstream allows it
    v = a.raw("dim_mults")
    return [] if isinstance(v, (list, tuple)) and not v else a.int_list("dim_mults", 1)


def _rmsnorm(t: Tracer, name: str, x: Act, dim: int) -> Act:
    return t.owner(name, "RMSNorm", x, Act(dim, x.size, ""), [("g", (1, dim, 1, 1))])


def _block(t: Tracer, name: str, x: Act, dim: int, dim_out: int) -> Act:
    """``Block``: proj (3x3) -> RMSNorm -> (scale, shift) -> SiLU -> dropout."""
    with t.scope(name):
        h = t.conv("proj", x, dim, dim_out, 3, 1, 1)
        return _rmsnorm(t, "norm", h, dim_out)


def resnet_block(t: Tracer, name: str, x: Act, dim: int, dim_out: int, time_emb: Act) -> Act:
    """``ResnetBlock``: mlp(t) -> scale/shift for block1 -> block2, + res_conv(x)."""
    note = f"{dim}->{dim_out}" + (" +1x1 res_conv" if dim != dim_out else "")
    with t.unit(name, "resnet", "ResnetBlock", x, note) as u:
        t.linear("mlp.1", time_emb, time_emb.channels, dim_out * 2, note="scale+shift")
        h = _block(t, "block1", x, dim, dim_out)
        h = _block(t, "block2", h, dim_out, dim_out)
        if dim != dim_out:
            t.conv("res_conv", x, dim, dim_out, 1)
        return u.done(h)  # `h + self.res_conv(x)` is made inside the block


def attention(t: Tracer, name: str, x: Act, dim: int, heads: int, dim_head: int, full: bool) -> Act:
    """``Attention`` (softmax over all HxW tokens) or ``LinearAttention``; both own ``mem_kv``."""
    hidden = heads * dim_head
    tokens = math.prod(x.size or ())
    kind = "Attention" if full else "LinearAttention"
    what = f"full attention over {tokens} tokens" if full else "linear attention"
    note = f"{heads} heads x {dim_head}, {what} + {NUM_MEM_KV} memory kv"
    mem_kv = (2, heads, NUM_MEM_KV, dim_head) if full else (2, heads, dim_head, NUM_MEM_KV)
    with t.unit(name, "attention", kind, x, note) as u:
        # the module owns mem_kv itself, so a hook sees it entered before its children run
        t.owner("", kind, x, Act(dim, x.size, ""), [("mem_kv", mem_kv)], note)
        h = _rmsnorm(t, "norm", x, dim)
        qkv = t.conv("to_qkv", h, dim, hidden * 3, 1, bias=False)
        out = Act(hidden, x.size, qkv.source)
        # full: q·kᵀ and attn·v in `attend` over T + mem kv keys; linear: k·vᵀ (d x e x (T + mem)) and context·q
        t.attention_matmuls("attend" if full else "", qkv, heads, dim_head, dim_head, tokens, tokens + NUM_MEM_KV,
                            "einsum_attention" if full else "linear_attention")
        if full:
            y = t.conv("to_out", out, hidden, dim, 1)
        else:
            y = _rmsnorm(t, "to_out.1", t.conv("to_out.0", out, hidden, dim, 1), dim)
        u.done(y, new=False)
    # `attn(x) + x` happens in Unet.forward: no module returns it, the attention finished last
    return y.by(u.path)


def downsample(t: Tracer, name: str, x: Act, dim: int, dim_out: int) -> Act:
    """``Downsample``: Rearrange 2x2 pixels into channels (x4), then a 1x1 conv."""
    with t.unit(name, "downsample", "Downsample", x, f"2x2 pixel unshuffle {dim}->{dim * 4}, 1x1 conv") as u:
        size = x.size or ()
        if any(d % 2 for d in size):
            t.fail(u.path, f"{u.path}: Rearrange '(h p1) (w p2)' with p1 = p2 = 2 needs even sizes;"
                                       f" got {fmt_size(x.size)}")
        h = Act(dim * 4, tuple(d // 2 for d in size), x.source)
        return u.done(t.conv("1", h, dim * 4, dim_out, 1), new=False)


def upsample(t: Tracer, name: str, x: Act, dim: int, dim_out: int) -> Act:
    """``Upsample``: nearest x2, then a 3x3 conv."""
    with t.unit(name, "upsample", "Upsample", x, "nearest x2, 3x3 conv") as u:
        h = Act(x.channels, tuple(d * 2 for d in x.size or ()), x.source)
        return u.done(t.conv("1", h, dim, dim_out, 3, 1, 1), new=False)


def plain_conv(t: Tracer, name: str, x: Act, dim: int, dim_out: int) -> Act:
    with t.unit(name, "conv", "Conv2d", x, "last stage: 3x3 conv, no resampling") as u:
        return u.done(t.conv("", x, dim, dim_out, 3, 1, 1), new=False)


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One ``downs``/``ups`` entry: ``(dim_in, dim_out), layer_full_attn, layer_attn_heads, layer_attn_dim_head``."""

    dim_in: int
    dim_out: int
    full_attn: bool
    heads: int
    dim_head: int


@dataclass(frozen=True, kw_only=True)
class Net:
    """What ``Unet.__init__`` decides, checked before any size is known."""

    dim: int
    channels: int
    self_condition: bool
    init_dim: int
    out_dim: int
    time_dim: int
    learned: str | None
    """``"learned"`` / ``"random"`` (RandomOrLearnedSinusoidalPosEmb) or None (SinusoidalPosEmb)."""
    fourier_dim: int
    theta: float
    downs: tuple[Stage, ...]
    ups: tuple[Stage, ...]
    mid_dim: int
    mid_heads: int
    mid_dim_head: int
    resolutions: int
    """``len(in_out)``: decides ``is_last`` even where zip() dropped stages."""


# the slots of each ModuleList stage, as forward unpacks them: `for block1, block2, attn, downsample in self.downs`
BLOCK1, BLOCK2, ATTN, SAMPLER = "0", "1", "2", "3"


def init(a: Args) -> Net:
    """``Unet.__init__``: every argument checked as the constructor (or torch) would."""
    if a.raw("dim") is None:
        raise UnetvizError("dim: required (denoising_diffusion_pytorch.Unet has no default); allowed: an integer >= 1")
    dim, channels = a.int("dim", 1), a.int("channels", 1)
    for key in ("self_condition", "learned_variance", "learned_sinusoidal_cond", "random_fourier_features",
                "flash_attn"):
        a.flag(key)
    dropout = a.float("dropout")
    if not 0 <= dropout <= 1:
        raise bad_value("dropout", a.raw("dropout"), "a probability from 0 to 1 (nn.Dropout)")
    dim_mults = _dim_mults(a)
    init_dim = a.opt_int("init_dim", 1) or dim
    dims = [init_dim, *(dim * m for m in dim_mults)]
    in_out = list(itertools.pairwise(dims))
    learned = None
    fourier_dim = dim
    if a.flag("learned_sinusoidal_cond") or a.flag("random_fourier_features"):
        sdim = a.int("learned_sinusoidal_dim", 0)
        if sdim % 2:
            raise bad_value("learned_sinusoidal_dim", sdim, "an even integer (upstream asserts it)")
        learned, fourier_dim = ("random" if a.flag("random_fourier_features") else "learned"), sdim + 1
    n = len(dim_mults)
    full_attn = _full_attn(a, n)
    heads, dim_head = _per_stage(a, "attn_heads", n), _per_stage(a, "attn_dim_head", n)

    def stages(pairs: list[tuple[int, int]], fa: list[bool], h: list[int], d: list[int]) -> tuple[Stage, ...]:
        # zip() truncates to the shortest: per-stage lists shorter than dim_mults drop stages upstream too
        return tuple(Stage(dim_in=i, dim_out=o, full_attn=f, heads=hh, dim_head=dd)
                     for (i, o), f, hh, dd in zip(pairs, fa, h, d, strict=False))

    return Net(dim=dim, channels=channels, self_condition=a.flag("self_condition"), init_dim=init_dim,
               out_dim=a.opt_int("out_dim", 1) or channels * (2 if a.flag("learned_variance") else 1),
               time_dim=dim * 4, learned=learned, fourier_dim=fourier_dim,
               theta=a.float("sinusoidal_pos_emb_theta") if learned is None else 0.0,
               downs=stages(in_out, full_attn, heads, dim_head),
               ups=stages(in_out[::-1], full_attn[::-1], heads[::-1], dim_head[::-1]),
               mid_dim=dims[-1], mid_heads=heads[-1], mid_dim_head=dim_head[-1],
               resolutions=len(in_out))


def time_mlp(t: Tracer, net: Net) -> Act:
    """``time_mlp``: (random or learned) sinusoidal embedding -> Linear -> GELU -> Linear."""
    time = Act(0, None, "time")  # a (B,) tensor has no channel axis: 0, as the observed trace reports it
    fd, td = net.fourier_dim, net.time_dim
    note = net.learned or f"sinusoidal, theta {net.theta:g}"
    with t.scope("time_mlp"), t.unit("", "mlp", "Sequential", time, f"{note}: {fd}->{td}->{td}") as u:
        if net.learned:
            emb = t.owner("0", "RandomOrLearnedSinusoidalPosEmb", time, Act(fd, None, ""), [("weights", (fd // 2,))],
                          f"{note} frequencies, [t, sin, cos]")
        else:
            emb = _sinusoidal(t, net.theta, net.dim)
        h = t.linear("1", emb, fd, td)
        return u.done(t.linear("3", h, td, td), new=False)


def _sinusoidal(t: Tracer, theta: float, dim: int) -> Act:
    """``SinusoidalPosEmb`` has no parameters, but its arithmetic can fail at forward time."""
    half_dim = dim // 2
    where = t.path("0")
    if theta <= 0:
        t.fail(where, f"{where}: math.log(sinusoidal_pos_emb_theta = {theta:g}) is undefined")
    if half_dim == 1:
        t.fail(where, f"{where}: dim {dim} gives half_dim - 1 = 0, a division by zero")
    # it emits 2 * (dim // 2) features: an odd dim then fails at time_mlp.1, which wants dim
    return Act(2 * half_dim, None, where)


def build(t: Tracer, a: Args, size: Size | None) -> Act:
    """``Unet.forward(x, time, x_self_cond)``, after ``init`` checked the whole config."""
    net = init(a)
    t.declare(ORDER)
    x = t.start(net.channels, size or (64, 64), "--size" if size else "family default")
    factor = 2 ** (len(net.downs) - 1)
    if any(d % factor for d in x.size or ()):
        t.fail(None, f"Unet.forward asserts the input size must be divisible by 2**(stages-1) ="
                     f" 2**{len(net.downs) - 1} = {factor}; got {fmt_size(x.size)}")
    if net.self_condition:
        x = t.cat((Act(net.channels, x.size, "input"), x), "init_conv")  # (x_self_cond, x)
    with t.unit("init_conv", "conv", "Conv2d", x) as u:
        x = u.done(t.conv("", x, net.channels * (2 if net.self_condition else 1), net.init_dim, 7, 1, 3), new=False)
    r = x  # x.clone(): made in forward, right after init_conv finished
    temb = time_mlp(t, net)

    for ind, s in enumerate(net.downs):
        is_last = ind >= net.resolutions - 1
        with t.block(f"downs.{ind}", f"level {ind}, {fmt_size(x.size)}, {s.dim_in}->{s.dim_out}"):
            x = resnet_block(t, BLOCK1, x, s.dim_in, s.dim_in, temb)
            t.push(x)
            x = resnet_block(t, BLOCK2, x, s.dim_in, s.dim_in, temb)
            x = attention(t, ATTN, x, s.dim_in, s.heads, s.dim_head, s.full_attn)  # attn(x) + x
            t.push(x)
            x = (plain_conv if is_last else downsample)(t, SAMPLER, x, s.dim_in, s.dim_out)

    t.heading("mid_block1", f"middle, {fmt_size(x.size)}, {net.mid_dim}")
    x = resnet_block(t, "mid_block1", x, net.mid_dim, net.mid_dim, temb)
    x = attention(t, "mid_attn", x, net.mid_dim, net.mid_heads, net.mid_dim_head, True)
    x = resnet_block(t, "mid_block2", x, net.mid_dim, net.mid_dim, temb)

    for ind, s in enumerate(net.ups):
        is_last = ind == net.resolutions - 1
        with t.block(f"ups.{ind}", f"level {len(net.ups) - 1 - ind}, {fmt_size(x.size)}, {s.dim_out}->{s.dim_in}"
                                   + ("" if is_last else ", upsample at the end")):
            x = t.cat((x, t.pop(BLOCK1)), BLOCK1)
            x = resnet_block(t, BLOCK1, x, s.dim_out + s.dim_in, s.dim_out, temb)
            x = t.cat((x, t.pop(BLOCK2)), BLOCK2)
            x = resnet_block(t, BLOCK2, x, s.dim_out + s.dim_in, s.dim_out, temb)
            x = attention(t, ATTN, x, s.dim_out, s.heads, s.dim_head, s.full_attn)
            x = (plain_conv if is_last else upsample)(t, SAMPLER, x, s.dim_out, s.dim_in)

    t.heading("final_res_block", f"output, {fmt_size(x.size)}, cat r -> {net.init_dim} -> {net.out_dim}")
    x = t.cat((x, r), "final_res_block")
    x = resnet_block(t, "final_res_block", x, net.init_dim * 2, net.init_dim, temb)
    with t.unit("final_conv", "conv", "Conv2d", x) as u:
        return u.done(t.conv("", x, net.init_dim, net.out_dim, 1), new=False)
