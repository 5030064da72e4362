"""Where a ControlNet's residuals land on a U-Net: residual N is added to skip #N, the mid residual to the
mid block's output.

diffusers' ``UNet2DConditionModel.forward`` does ``zip(down_block_res_samples, down_block_additional_residuals)``
and adds each pair, then ``sample = sample + mid_block_additional_residual`` after the mid block. So the
residuals must match the U-Net's skip stack entry by entry (channels and size; a 1x1 residual of
``global_pool_conditions`` broadcasts), and their number must equal the skips': ``zip`` silently drops
the extra ones, and a shorter tuple leaves the decoder popping the wrong skips. Both traces must be at
the same latent size: ``pair_sources`` traces the ControlNet at the U-Net's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.errors import UnetvizError
from ..core.records import Size, Trace, fmt_size
from ..tracing import Source, trace_source

ZERO_CONV = re.compile(r"controlnet_down_blocks\.(\d+)$")


@dataclass(frozen=True, kw_only=True)
class Landing:
    """One residual and the U-Net tensor it is added to."""

    residual: str
    """The ControlNet module that makes it: ``controlnet_down_blocks.N`` or ``controlnet_mid_block``."""
    index: int | None
    """N for a down residual (also the skip index it is added to); None for the mid residual."""
    channels: int | None
    """The residual's channels; None where the ControlNet has no residual for this skip."""
    size: Size | None
    """The residual's spatial size."""
    target: str
    """What it is added to: ``skip #N`` or ``mid_block output``."""
    target_from: str
    """The U-Net unit that produced that tensor (``down_blocks.0.downsamplers.0``, ``mid_block``); empty if none."""
    target_channels: int | None
    """Channels of the U-Net tensor; None where the U-Net has no skip for this residual."""
    target_size: Size | None
    """Its spatial size."""
    ok: bool
    """The add works: same channels, and the same size (or a 1x1 residual that broadcasts)."""
    problem: str = ""
    """Why it does not, in plain words; empty when ``ok``."""


@dataclass(frozen=True, kw_only=True)
class Pairing:
    """A ControlNet traced beside the U-Net it feeds."""

    controlnet: str
    """The ControlNet's name (preset or file)."""
    unet: str
    """The U-Net's name."""
    size: Size
    """The latent size both were traced at (the ControlNet's hint is 8x it)."""
    landings: tuple[Landing, ...]
    """Down residuals in order (one row per index either side has), then the mid residual."""
    ok: bool
    """Every residual fits the tensor it is added to, one for every skip."""
    first_mismatch: Landing | None
    """The first row that does not fit (None when ``ok``)."""
    notes: tuple[str, ...] = ()
    """Other things that decide whether the pair runs: a different context width, traces at different sizes."""

    @property
    def message(self) -> str:
        """The verdict in one line."""
        n = sum(1 for x in self.landings if x.index is not None and x.channels is not None)
        if self.ok:
            return (f"{self.controlnet} fits {self.unet}: {n} down residuals on {n} skips + 1 mid residual,"
                    f" at {fmt_size(self.size)}")
        bad = self.first_mismatch
        return f"{self.controlnet} does not fit {self.unet}: {bad.target}: {bad.problem}" if bad else ""


def _shape(channels: int | None, size: Size | None) -> str:
    return "-" if channels is None else f"{channels}ch {fmt_size(size)}"


def _fits(ch: int | None, size: Size | None, tch: int | None, tsize: Size | None) -> str:
    """Why ``residual + target`` fails ("" when it works)."""
    if ch != tch:
        return f"residual {_shape(ch, size)} vs {_shape(tch, tsize)}: channels differ"
    if size != tsize and not (size is not None and all(d == 1 for d in size)):
        return f"residual {_shape(ch, size)} vs {_shape(tch, tsize)}: sizes differ"
    return ""


def _down(cn: Trace, unet: Trace) -> list[Landing]:
    residuals = sorted(((int(m.group(1)), x) for x in cn.layers if (m := ZERO_CONV.match(x.path))),
                       key=lambda p: p[0])
    rows = []
    for i in range(max(len(residuals), len(unet.skips))):
        r = residuals[i][1] if i < len(residuals) else None
        s = unet.skips[i] if i < len(unet.skips) else None
        ch, size = (r.out_channels, r.out_size) if r is not None else (None, None)
        tch, tsize = (s.channels, s.size) if s is not None else (None, None)
        if r is None:
            problem = (f"no residual: the ControlNet gives {len(residuals)}, the U-Net pushes {len(unet.skips)};"
                       " zip() drops the rest and the decoder pops the wrong skips")
        elif s is None:
            problem = f"no skip #{i}: the U-Net pushes {len(unet.skips)}; zip() ignores this residual"
        else:
            problem = _fits(ch, size, tch, tsize)
        rows.append(Landing(residual=r.path if r else "", index=i, channels=ch, size=size, target=f"skip #{i}",
                            target_from=(s.unit or s.source) if s else "", target_channels=tch, target_size=tsize,
                            ok=not problem, problem=problem))
    return rows


def _mid(cn: Trace, unet: Trace) -> Landing:
    r = next((x for x in cn.layers if x.path == "controlnet_mid_block"), None)
    mids = [u for u in unet.units if u.block == "mid_block"]
    if mids:
        tch, tsize, frm = mids[-1].out_channels, mids[-1].out_size, "mid_block"
    elif unet.concats:  # no mid block: the residual is added to what enters the decoder
        op = unet.concats[0].inputs[0]
        tch, tsize, frm = op.channels, op.size, op.source
    else:
        tch, tsize, frm = None, None, ""
    ch, size = (r.out_channels, r.out_size) if r is not None else (None, None)
    problem = "the ControlNet has no controlnet_mid_block" if r is None else _fits(ch, size, tch, tsize)
    return Landing(residual="controlnet_mid_block", index=None, channels=ch, size=size, target="mid_block output",
                   target_from=frm, target_channels=tch, target_size=tsize, ok=not problem, problem=problem)


def _context(t: Trace) -> int | None:
    """The text width the first cross-attention's keys take (None: the model has no cross-attention)."""
    return next((x.in_channels for x in t.layers if x.path.endswith("attn2.to_k")), None)


def pair(controlnet_trace: Trace, unet_trace: Trace) -> Pairing:
    """The residual map of a ControlNet trace onto a U-Net trace (both at the same latent size)."""
    if controlnet_trace.model != "ControlNetModel":
        raise UnetvizError(f"--config: {controlnet_trace.name or 'the first model'} is a {controlnet_trace.model},"
                           " not a ControlNetModel; allowed: a ControlNetModel config.json")
    if unet_trace.model == "ControlNetModel" or not unet_trace.skips:
        raise UnetvizError(f"--pair: {unet_trace.name or 'the second model'} ({unet_trace.model}) has no skip stack"
                           " to add residuals to; allowed: a U-Net such as sd15")
    rows = [*_down(controlnet_trace, unet_trace), _mid(controlnet_trace, unet_trace)]
    notes = []
    if controlnet_trace.in_size != unet_trace.in_size:
        notes.append(f"traced at different sizes: ControlNet {fmt_size(controlnet_trace.in_size)}, U-Net"
                     f" {fmt_size(unet_trace.in_size)}")
    a, b = _context(controlnet_trace), _context(unet_trace)
    if a is not None and b is not None and a != b:
        notes.append(f"text context: the ControlNet's cross-attention takes {a}-d embeddings, the U-Net's {b}-d;"
                     " a pipeline passes one prompt embedding to both")
    if unet_trace.error is not None:
        notes.append(f"the U-Net itself fails at {fmt_size(unet_trace.in_size)}: {unet_trace.error.message}")
    bad = next((x for x in rows if not x.ok), None)
    return Pairing(controlnet=controlnet_trace.name or "controlnet", unet=unet_trace.name or unet_trace.model,
                   size=unet_trace.in_size, landings=tuple(rows), ok=bad is None, first_mismatch=bad,
                   notes=tuple(notes))


def pair_sources(controlnet: Source, unet: Source, size: int | str | tuple[int, int] | None = None) -> Pairing:
    """Trace the U-Net (at ``size``, default its own) and the ControlNet at the U-Net's size, then ``pair``."""
    u = trace_source(unet, size)
    h, w = (u.in_size[0], u.in_size[-1]) if u.in_size else (64, 64)
    return pair(trace_source(controlnet, (h, w)), u)
