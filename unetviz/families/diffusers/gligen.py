"""GLIGEN (``attention_type`` "gated" / "gated-text-image"): ``GLIGENTextBoundingboxProjection``
(embeddings.py) and the inputs its pipeline passes.

``position_net`` (registered last, after conv_out) turns each grounding box (its Fourier-embedded corners,
8 frequencies x sin/cos x 4 = 64 features) and its phrase (and, for text-image, its image) embedding into
a token of ``cross_attention_dim`` features; it runs after conv_in. Every transformer block's ``fuser``
(``diffusers_parts.gated_self_attention_dense``) mixes those tokens into the image tokens after attn1.
"""

from __future__ import annotations

from typing import Any

from ...core.config import Args
from ...core.errors import UnetvizError
from ...engine.tracer import Act, Tracer

GATED = ("gated", "gated-text-image")
BOXES = 30
"""``max_objs`` of StableDiffusionGLIGENPipeline (and its text-image twin): the grounding tokens it pads to."""
POSITION_DIM = 8 * 2 * 4
"""``fourier_freqs * 2 * 4``: sin and cos of 8 frequencies of the 4 box coordinates."""


def positive_len(a: Args) -> int | None:
    """The width of the phrase (and image) embeddings ``position_net`` takes, None without GLIGEN. Upstream
    reads ``cross_attention_dim`` after ``__init__`` made an int a tuple; a list from a config reaches
    ``nn.Linear(512, out_dim)`` as it is, and that raises."""
    if a.raw("attention_type") not in GATED:
        return None
    cross: Any = a.raw("cross_attention_dim")
    if not isinstance(cross, int) or isinstance(cross, bool):
        raise UnetvizError(f"cross_attention_dim: got {cross!r}; attention_type {a.raw('attention_type')!r}"
                           " needs one integer (GLIGENTextBoundingboxProjection builds nn.Linear(512, it))")
    return cross


def _linears(t: Tracer, name: str, x: Act, width: int, out_dim: int) -> Act:
    """``nn.Sequential(Linear(width + 64, 512), SiLU, Linear(512, 512), SiLU, Linear(512, out_dim))``."""
    with t.scope(name):
        h = t.linear("0", x, width + POSITION_DIM, 512)
        h = t.linear("2", h, 512, 512)
        return t.linear("4", h, 512, out_dim)


def position_net(t: Tracer, attention_type: str, width: int) -> Act:
    """# 2.5 GLIGEN position net: one token per box (two for text-image: the phrase's, then the image's)."""
    text_image = attention_type == "gated-text-image"
    objs = 2 * BOXES if text_image else BOXES
    boxes = Act(4, None, "boxes", BOXES)  # (B, 30, 4): 30 tokens of 4 corner coordinates
    note = f"{BOXES} boxes" + (" x (phrase, image)" if text_image else "") + f" -> {objs} tokens of {width}"
    with t.unit("position_net", "layer", "GLIGENTextBoundingboxProjection", boxes, note) as u:
        own = [("null_text_feature", (width,)), ("null_image_feature", (width,))] if text_image else \
            [("null_positive_feature", (width,))]
        # its row is read at its first input, the boxes, and writes (B, objs, width)
        t.owner("", "GLIGENTextBoundingboxProjection", boxes, Act(width, None, "", objs),
                [*own, ("null_position_feature", (POSITION_DIM,))])
        tokens = Act(width + POSITION_DIM, None, "positive_embeddings", BOXES)
        if text_image:
            _linears(t, "linears_text", tokens, width, width)
            out = _linears(t, "linears_image", tokens, width, width)
        else:
            out = _linears(t, "linears", tokens, width, width)
        u.done(Act(width, None, u.path, objs), new=False)
    return Act(width, None, out.source, objs)
