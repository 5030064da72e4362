"""What a model's input is, declared on its registry record, and the one size grammar every command reads.

A family (and, where one published config differs from its class's usual use, a preset) declares its
``InputSpec``: the input's rank (a 1-D length, a 2-D image, a 3-D volume, video frames x H x W), the space
it lives in (pixels, a latent with its image factor, audio samples, a volume), what its channels are, and
whether it reads a context. No command guesses these from a class name or from how large a number is.

Sizes, the same in the CLI and the API (``read_size``): ``N``, ``HxW``, ``DxHxW`` and ``FxHxW`` are the
model's own input (a latent for a latent model); ``Npx`` / ``HxWpx`` / ``FxHxWpx`` are the image, turned into
the model's input by the declared factor (frames are never scaled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import UnetvizError, bad_value

TEXT_TOKENS = 77
"""CLIP's sequence length: the text context every Stable Diffusion pipeline passes."""
MAX_DIM = 1 << 20
"""The largest size a config or ``--size`` may name (1-D audio models take lengths of 2**17 and more)."""
LARGE_IMAGE = 4096
"""A latent size meaning an image wider than this many pixels gets a note naming the px form."""

Rank = Literal["length", "image", "volume", "video"]
Space = Literal["pixel", "latent", "audio", "volume"]
SizeText = int | str | tuple[int, ...] | list[int] | None


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """A model's input, as its registry record declares it."""

    rank: Rank
    """``length`` (a 1-D signal, ``(B, C, L)``), ``image`` (``(B, C, H, W)``), ``volume`` (``(B, C, D, H, W)``) or
    ``video`` (frames x H x W: the frames are folded into the batch or read by temporal layers)."""
    space: Space
    """``pixel`` (an image), ``latent`` (an autoencoder's latent: see ``factor``), ``audio`` (samples) or
    ``volume`` (a 3-D scan)."""
    channels: str
    """What the input's channels are (``RGB``, ``the VAE's latent``...), for titles and the docs."""
    factor: int = 1
    """Image pixels per input position along H and W: the autoencoder's downsampling for a latent (8 for
    Stable Diffusion's VAE and Kandinsky's MoVQ), 1 otherwise."""
    context: bool = False
    """The class can read a context sequence (``encoder_hidden_states``: text or image tokens)."""

    @property
    def spatial(self) -> int:
        """How many numbers a full size has: 1 (length), 2 (HxW), 3 (DxHxW or FxHxW)."""
        return {"length": 1, "image": 2, "volume": 3, "video": 3}[self.rank]

    def pixels(self, size: tuple[int, ...]) -> tuple[int, ...] | None:
        """The image a latent input stands for (HxW; a video's frames are left out); None if not a latent."""
        if self.space != "latent":
            return None
        return tuple(d * self.factor for d in size[-2:])

    def grammar(self) -> str:
        """The sizes this input takes, for error messages and ``--help``."""
        own = {"length": "N (the length)", "image": "N or HxW (height x width)",
               "volume": "N or DxHxW (depth x height x width)",
               "video": "FxHxW (frames x height x width) or HxW (the config's frames)"}[self.rank]
        if self.space == "latent":
            return f"{own} in latent positions, or the image in pixels with px (e.g. 1024px, 768x1344px)"
        return own


@dataclass(frozen=True, kw_only=True)
class SizeRequest:
    """A size as read: what the model gets, and what the person asked for."""

    size: tuple[int, ...]
    """The model's input size, in its own units (latent positions for a latent model)."""
    text: str
    """The size as given (``1024px``, ``64x96``)."""
    as_pixels: bool
    """It was given in pixels (``px``)."""


def read_size(text: SizeText, spec: InputSpec, key: str = "--size") -> SizeRequest | None:
    """A size in the grammar of the module docstring, as ``spec``'s model reads it; None for no size."""
    if text is None:
        return None
    given = _text(text)
    parts, px = _numbers(text, spec, key)
    if px and spec.space == "audio":
        raise UnetvizError(f"{key}: got {given!r}; an audio model's input is a length in samples, not pixels;"
                           f" allowed: {spec.grammar()}")
    if len(parts) == 1:  # N: a square image (a video's frames from its config), a cube, or a length
        parts = parts * {"length": 1, "image": 2, "video": 2, "volume": 3}[spec.rank]
    allowed = {"length": (1,), "image": (2,), "volume": (3,), "video": (2, 3)}[spec.rank]
    if len(parts) not in allowed:
        raise bad_value(key, given, spec.grammar())
    if px and spec.factor > 1:
        parts = _from_pixels(parts, spec, given, key)
    return SizeRequest(size=parts, text=given, as_pixels=px)


def _text(text: SizeText) -> str:
    if isinstance(text, (tuple, list)):
        return "x".join(str(p) for p in text)
    return str(text).strip()


def _numbers(text: SizeText, spec: InputSpec, key: str) -> tuple[tuple[int, ...], bool]:
    """The numbers of a size and whether it carries ``px``."""
    if isinstance(text, bool):
        raise bad_value(key, text, spec.grammar())
    if isinstance(text, int):
        raw: list[object] = [text]
        px = False
    elif isinstance(text, (tuple, list)):
        raw, px = list(text), False
    else:
        body = str(text).strip().lower()
        px = body.endswith("px")
        raw = list(body.removesuffix("px").split("x"))
    try:
        dims = tuple(int(p) for p in raw if not isinstance(p, bool))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise bad_value(key, _text(text), spec.grammar()) from None
    if len(dims) != len(raw) or not dims or len(dims) > 3:
        raise bad_value(key, _text(text), spec.grammar())
    if any(d < 1 or d > MAX_DIM for d in dims):
        raise bad_value(key, _text(text), f"sizes from 1 to {MAX_DIM:,}")
    return dims, px


def _from_pixels(parts: tuple[int, ...], spec: InputSpec, given: str, key: str) -> tuple[int, ...]:
    """Pixels to latent positions: H and W divided by the factor (a video's frames are kept)."""
    frames, hw = parts[:-2], parts[-2:]
    bad = [d for d in hw if d % spec.factor]
    if bad:
        f = spec.factor
        down = "x".join(str(max(f, d // f * f)) for d in hw)
        up = "x".join(str(-(-d // f) * f) for d in hw)
        near = f"{down}px or {up}" if down != up else down
        raise UnetvizError(f"{key}: got {given!r}; an image for this latent model must be a multiple of"
                           f" {spec.factor} px (its autoencoder's factor) on each side; nearest: {near}px")
    return (*frames, *(d // spec.factor for d in hw))


def large_image_note(req: SizeRequest | None, spec: InputSpec, size: tuple[int, ...]) -> str | None:
    """A note when a latent size given without ``px`` means an image over ``LARGE_IMAGE`` pixels."""
    if req is None or req.as_pixels or spec.space != "latent":
        return None
    px = spec.pixels(size)
    if px is None or max(px) <= LARGE_IMAGE:
        return None
    def side(dims: tuple[int, ...]) -> str:
        return str(dims[0]) if len(set(dims)) == 1 else "x".join(map(str, dims))

    # one line that fits 80 columns after "warning: " for the usual sizes
    return f"--size {req.text} is a latent ({side(px)} px image); for {side(size[-2:])} px use --size {req.text}px"
