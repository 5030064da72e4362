"""``UNet2DConditionModel``'s image and text conditioning (DeepFloyd IF, Kandinsky, unCLIP): what
``_set_encoder_hid_proj`` and ``_set_add_embedding`` build beyond SD's and SDXL's, and what
``get_aug_embed`` / ``process_encoder_hidden_states`` run.

Read beside models/embeddings.py: ``TextImageProjection`` and ``ImageProjection`` (the context),
``TextTimeEmbedding`` with ``AttentionPooling``, ``TextImageTimeEmbedding``, ``ImageTimeEmbedding``
and ``ImageHintTimeEmbedding`` (added to the time embedding). The widths a caller passes
(``image_embeds``, ``text_embeds``, ``hint``) are decided here and read by the upstream adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.config import Args
from ...core.errors import UnetvizError, bad_value
from ...core.kinds import kind_of
from ...core.records import Size
from ...engine.tracer import Act, Tracer

HID_TYPES = (None, "text_proj", "text_image_proj", "image_proj")
ADD_TYPES = (None, "text", "text_image", "text_time", "image", "image_hint")
IMAGE_TEXT_TOKENS = 10
"""TextImageProjection's ``num_image_text_embeds``: the image becomes 10 context tokens."""
IMAGE_TOKENS = 32
"""ImageProjection's ``num_image_text_embeds``: the image embedding becomes 32 context tokens."""
HINT_SCALE = 8
"""ImageHintTimeEmbedding's hint is an image 8x the sample's size (three stride-2 convs)."""


@dataclass(frozen=True, kw_only=True)
class Added:
    """The conditioning inputs beyond the text context, and the modules that read them."""

    hid_type: str | None
    """``encoder_hid_dim_type`` after upstream's defaulting (``text_proj`` when only the dim is given)."""
    hid_dim: int | None
    """``encoder_hid_dim``: the caller's context width (text_proj, text_image_proj) or image width."""
    cross: int | None
    """``cross_attention_dim`` when it is one integer (what the projections project to)."""
    add_type: str | None
    """``addition_embed_type``."""
    pool_heads: int
    """``addition_embed_type_num_heads`` (AttentionPooling of the ``text`` embedding)."""
    image_width: int
    """Width of the ``image_embeds`` a caller passes (0: the model reads none)."""
    text_width: int
    """Width of the pooled ``text_embeds`` a ``text_image`` model reads (0: none)."""


def image_embeds_width(hid_type: Any, add_type: Any, hid_dim: Any, cross: Any) -> int:
    """``image_embeds`` as a pipeline passes it: CLIP image embeds of ``encoder_hid_dim`` (Kandinsky 2.2,
    image_proj / image / image_hint) or of ``cross_attention_dim`` (Kandinsky 2.1, text_image*)."""
    if hid_type == "image_proj" or add_type in ("image", "image_hint"):
        return int(hid_dim or 0)
    if hid_type == "text_image_proj" or add_type == "text_image":
        return cross if isinstance(cross, int) and not isinstance(cross, bool) else 0
    return 0


def set_added(a: Args) -> Added:
    """The checks of ``_set_encoder_hid_proj`` / ``_set_add_embedding`` for the types read here."""
    hid = a.opt_int("encoder_hid_dim", 1)
    kind = a.raw("encoder_hid_dim_type")
    if kind is None and hid is not None:
        kind = "text_proj"
    if kind not in HID_TYPES:
        raise bad_value("encoder_hid_dim_type", kind, HID_TYPES)
    if hid is None and kind is not None:
        raise UnetvizError(f"encoder_hid_dim: required when encoder_hid_dim_type is {kind!r}")
    raw_cross = a.raw("cross_attention_dim")
    cross = raw_cross if isinstance(raw_cross, int) and not isinstance(raw_cross, bool) else None
    if kind is not None and cross is None:
        raise UnetvizError(f"cross_attention_dim: needs one integer with encoder_hid_dim_type {kind!r}"
                           f" (encoder_hid_proj projects to it); got {raw_cross!r}")
    add = a.raw("addition_embed_type")
    if add not in ADD_TYPES:
        raise bad_value("addition_embed_type", add, ADD_TYPES)
    heads = a.int("addition_embed_type_num_heads", 1) if add == "text" else 1
    if add == "text" and hid is None and cross is None:
        raise UnetvizError(f"cross_attention_dim: addition_embed_type 'text' pools a context of cross_attention_dim"
                           f" (or encoder_hid_dim) features; got {raw_cross!r}")
    if add == "text_image" and cross is None:
        raise UnetvizError("cross_attention_dim: addition_embed_type 'text_image' needs one integer;"
                           f" got {raw_cross!r}")
    if add in ("image", "image_hint") and hid is None:
        raise UnetvizError(f"encoder_hid_dim: required by addition_embed_type {add!r} (ImageTimeEmbedding's width)")
    return Added(hid_type=kind, hid_dim=hid, cross=cross, add_type=add, pool_heads=heads,
                 image_width=image_embeds_width(kind, add, hid, raw_cross),
                 text_width=(cross or 0) if add == "text_image" else 0)


def _pool(t: Tracer, x: Act, dim: int, heads: int) -> Act:
    """``AttentionPooling``: a class token (the mean plus ``positional_embedding``) attends over the tokens."""
    tokens = x.tokens or 1
    with t.scope("pool", order=("k_proj", "q_proj", "v_proj")):
        fails = bool(dim % heads)  # then it raises inside: its row has no output width
        # entered with the (B, tokens, dim) context; it returns the pooled (B, dim): one token
        t.owner("", "AttentionPooling", Act(x.channels, None, x.source, tokens),
                Act(0 if fails else dim, None, "", 1), [("positional_embedding", (1, dim))])
        cls = Act(dim, None, x.source, 1)
        t.linear("q_proj", cls, dim, dim)
        if fails:
            t.fail(t.path(), f"{t.path()}: {dim} features do not split into {heads} heads"
                             " (addition_embed_type_num_heads)")
        t.linear("k_proj", Act(x.channels, None, x.source, tokens + 1), dim, dim)
        t.linear("v_proj", Act(x.channels, None, x.source, tokens + 1), dim, dim)
        # the two torch.einsum calls: a contraction over 1-wide heads is a plain multiply, which costs no MACs
        t.attention_matmuls("", cls, heads, dim // heads, dim // heads, 1, tokens + 1, kind="einsum_attention")
        return Act(dim, None, t.path())


def add_embedding(t: Tracer, e: Added, context: Act, ted: int, sample: Act) -> tuple[Act | None, Act | None]:
    """``get_aug_embed`` for text / text_image / image / image_hint: (aug_emb, the embedded hint or None)."""
    if e.add_type == "text":
        return _text(t, e, context, ted), None
    if e.add_type == "text_image":
        with t.unit("add_embedding", "embed", "TextImageTimeEmbedding", Act(e.text_width, None, "text_embeds")) as u:
            h = t.linear("text_proj", Act(e.text_width, None, "text_embeds"), e.cross or 0, ted)
            t.layer_norm("text_norm", h, ted)
            t.linear("image_proj", Act(e.image_width, None, "image_embeds"), e.cross or 0, ted)
            return u.done(Act(ted, None, "")), None
    if e.add_type in ("image", "image_hint"):
        kind = "ImageTimeEmbedding" if e.add_type == "image" else "ImageHintTimeEmbedding"
        image = Act(e.image_width, None, "image_embeds")
        with t.unit("add_embedding", "embed", kind, image) as u:
            h = t.linear("image_proj", image, e.hid_dim or 0, ted)
            y = t.layer_norm("image_norm", h, ted)
            hint = _hint(t, sample) if e.add_type == "image_hint" else None
            u.done(y, new=False)
            return y, hint
    return None, None


def _text(t: Tracer, e: Added, context: Act, ted: int) -> Act:
    dim = e.hid_dim if e.hid_dim is not None else (e.cross or 0)
    note = f"attention pooling, {e.pool_heads} heads"
    with t.unit("add_embedding", "embed", "TextTimeEmbedding", context, note) as u:
        h = t.layer_norm("norm1", context, dim)
        pooled = _pool(t, h, dim, e.pool_heads)
        h = t.linear("proj", pooled, dim, ted)
        return u.done(t.layer_norm("norm2", h, ted), new=False)


HINT_CONVS = ((3, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 96, 2), (96, 96, 1), (96, 256, 2), (256, 4, 1))
"""``input_hint_block``: (in, out, stride) of its eight 3x3 convs, SiLU between them (indices 0, 2, ... 14)."""


def hint_size(size: Size) -> Size:
    """The ``hint`` image a caller passes for a sample of ``size``."""
    return tuple(d * HINT_SCALE for d in size)


def _hint(t: Tracer, sample: Act) -> Act:
    """``hint = self.input_hint_block(hint)``, then ``torch.cat([sample, hint], dim=1)`` before conv_in."""
    h = Act(3, hint_size(sample.size or (1, 1)), "hint")
    with t.scope("input_hint_block"):
        for i, (c_in, c_out, stride) in enumerate(HINT_CONVS):
            h = t.conv(str(2 * i), h, c_in, c_out, 3, stride, 1)
    return h


def encoder_hid_proj(t: Tracer, e: Added, context: Act) -> Act:
    """``process_encoder_hidden_states`` for text_image_proj / image_proj (text_proj is SD's Linear)."""
    cross = e.cross or 0
    if e.hid_type == "text_image_proj":
        # entered with the (B, 77, C) text first; it returns 10 image tokens, then the text's
        tokens = IMAGE_TEXT_TOKENS + (context.tokens or 0)
        kind = kind_of("encoder_hid_proj", "TextImageProjection")
        with t.unit("encoder_hid_proj", kind, "TextImageProjection", context) as u:
            t.linear("image_embeds", Act(e.image_width, None, "image_embeds"), cross, IMAGE_TEXT_TOKENS * cross)
            t.linear("text_proj", context, e.hid_dim or 0, cross)
            u.done(Act(cross, None, "", tokens))
            return Act(cross, None, u.path, tokens)
    if e.hid_type == "image_proj":
        image = Act(e.image_width, None, "image_embeds")
        with t.unit("encoder_hid_proj", kind_of("encoder_hid_proj", "ImageProjection"), "ImageProjection", image) as u:
            h = t.linear("image_embeds", image, e.hid_dim or 0, IMAGE_TOKENS * cross)
            y = t.layer_norm("norm", Act(cross, None, h.source, IMAGE_TOKENS), cross)
            u.done(Act(cross, None, y.source, IMAGE_TOKENS), new=False)
            return y
    return context
