"""``PlainConvUNet`` and ``ResidualEncoderUNet`` (dynamic_network_architectures ``architectures/unet.py``), the
networks nnU-Net's plans name, walked as their ``forward`` runs them.

Layout: ``encoder.stages.s`` (PlainConvEncoder: ``stages.s.0`` = StackedConvBlocks whose ``convs.0`` carries
the stage's stride; ResidualEncoder: ``encoder.stem`` then ``stages.s.blocks.i``), every stage's output kept
for the decoder. The decoder keeps a reference to the encoder (``decoder.encoder``: the same tensors again in
the state_dict, aliases here) and, from the bottleneck up, runs per level ``transpconvs.s`` (kernel = stride
= that encoder stage's stride), ``torch.cat((up, skip), 1)``, ``stages.s`` (StackedConvBlocks at the skip's
width and kernel) and, with deep supervision, ``seg_layers.s`` (1x1 conv to the classes). Without it only the
last seg head runs; the others are built all the same (so trained weights load), listed as unrun.

With deep supervision the real forward returns a list of seg maps, largest first: the trace's output is that
first, full-resolution one. Sizes are the eval-mode forward's at batch 1.
"""

from __future__ import annotations

from ...core.config import Args
from ...core.errors import NOT_TRACED, NotTraced, UnetvizError
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from . import config
from .blocks import residual_blocks, stacked_convs
from .config import Arch

DEFAULTS = config.DEFAULTS


def build(t: Tracer, args: Args, size: Size | None) -> Act:
    """The forward pass of the network a config names, at ``size`` (default: its ``patch_size``)."""
    a = config.parse(args)
    t.model = a.cls  # one record for both classes: the trace names the one the config builds
    x = _start(t, args, a, size)
    if a.cls == "PlainConvUNet":
        x = _plain_encoder(t, x, a)
    else:
        x = _residual_encoder(t, x, a)
    return _decoder(t, x, a)


def _start(t: Tracer, args: Args, a: Arch, size: Size | None) -> Act:
    own = config.patch_size(args, a.dims)
    if t.construct:  # the constructor's pass: a nominal size of the right rank
        return t.start(a.in_channels, (64,) * a.dims, "nominal")
    if size is not None:
        return t.start(a.in_channels, size, "--size")
    if own is None:
        form = "DxHxW" if a.dims == 3 else "HxW"
        raise UnetvizError(f"size: an nnU-Net config has no size of its own; give --size {form} (the plans"
                           " configuration's patch_size) or \"patch_size\" in the config")
    return t.start(a.in_channels, own, "patch_size")


def _title(s: int, what: str, kernel: Size, stride: Size, width: int) -> str:
    strided = f", stride {fmt_size(stride)}" if any(n != 1 for n in stride) else ""
    return f"stage {s}: {what}, kernel {fmt_size(kernel)}{strided}, {width} ch"


def _plain_encoder(t: Tracer, x: Act, a: Arch) -> Act:
    """``PlainConvEncoder`` (pool='conv'): each stage a StackedConvBlocks whose first conv strides."""
    c = a.in_channels
    n = len(a.features)
    with t.scope("encoder"):
        for s in range(n):
            title = _title(s, f"{a.per_stage[s]} conv{'s' * (a.per_stage[s] > 1)}", a.kernels[s], a.strides[s],
                           a.features[s])
            with t.block(f"stages.{s}", title):
                x = stacked_convs(t, "0", x, a.per_stage[s], c, a.features[s], a.kernels[s], a.strides[s], a,
                                  a.nonlin_first)
            if s < n - 1:  # the bottleneck's output goes straight to the first transposed conv
                t.push(x)
            c = a.features[s]
    return x


def _residual_encoder(t: Tracer, x: Act, a: Arch) -> Act:
    """``ResidualEncoder``: a one-conv stem (no stride) at ``stem_channels``, then residual stages."""
    stem = a.stem or a.features[0]
    one = (1,) * a.dims
    n = len(a.features)
    with t.scope("encoder"):
        with t.block("stem", f"stem: 1 conv, kernel {fmt_size(a.kernels[0])}, {stem} ch"):
            x = stacked_convs(t, "", x, 1, a.in_channels, stem, a.kernels[0], one, a)
        c = stem
        for s in range(n):
            what = f"{a.per_stage[s]} {a.block}"
            with t.block(f"stages.{s}", _title(s, what, a.kernels[s], a.strides[s], a.features[s])):
                x = residual_blocks(t, x, a.per_stage[s], c, a.features[s], a.kernels[s], a.strides[s], a,
                                    None if a.bottleneck is None else a.bottleneck[s])
            if s < n - 1:
                t.push(x)
            c = a.features[s]
    return x


def _decoder(t: Tracer, x: Act, a: Arch) -> Act:
    """``UNetDecoder``: transposed conv, concat with the skip, convs, seg head; from the bottleneck up."""
    n = len(a.features)
    one = (1,) * a.dims
    with t.scope("decoder", order=("encoder", "stages", "transpconvs", "seg_layers")):
        t.alias("encoder", "encoder")  # UNetDecoder.__init__: self.encoder = encoder
        if n == 1:
            return _no_decoder(t, x, a)
        out = x
        for s in range(n - 1):
            below, width, stride = a.features[-(s + 1)], a.features[-(s + 2)], a.strides[-(s + 1)]
            up = t.conv(f"transpconvs.{s}", x, below, width, stride, stride, 0, bias=a.bias, dims=a.dims,
                        transpose=True)
            skip = t.pop()
            if up.size != skip.size:  # torch.cat runs in the decoder's own forward: it fails there
                t.fail(t.path(), f"torch.cat before {t.path(f'stages.{s}')}: {up.channels}ch {fmt_size(up.size)} from"
                                 f" {up.source} does not match {skip.channels}ch {fmt_size(skip.size)} (skip"
                                 f" #{skip.skip} from {skip.source})")
            # made in the decoder's forward and handed to stages.s: that module is its consumer
            x = t.cat([up, skip], into=f"stages.{s}")
            kernel = a.kernels[-(s + 2)]
            with t.block(f"stages.{s}", f"decoder stage {s}: {a.decoder[s]} conv{'s' * (a.decoder[s] > 1)},"
                                        f" kernel {fmt_size(kernel)}, {width} ch"):
                x = stacked_convs(t, "", x, a.decoder[s], 2 * width, width, kernel, one, a, a.nonlin_first)
            if a.deep_supervision or s == n - 2:
                out = t.conv(f"seg_layers.{s}", x, width, a.classes, one, one, 0, bias=True, dims=a.dims)
            else:  # built (trained weights load into it), never run: a unit of no layer, so blocks sum to the model
                with t.unit(f"seg_layers.{s}", "conv", f"Conv{a.dims}d", x,
                            note="built, not run: deep supervision is off") as head:
                    t.unrun("", [("weight", (a.classes, width, *one)), ("bias", (a.classes,))])
                    head.done(Act(a.classes, x.size, head.path))
        return out


def _no_decoder(t: Tracer, x: Act, a: Arch) -> Act:
    """One stage: the decoder has no level, so its forward has no seg map to return."""
    if a.deep_supervision:
        raise NotTraced(f"n_stages: got 1 with deep_supervision; {NOT_TRACED} a forward that returns an empty list"
                        " (no decoder level, no seg map)")
    t.fail("decoder", "decoder: seg_outputs[0]: IndexError: list index out of range (with one stage the decoder has"
                      " no level and makes no seg map)")
    return x
