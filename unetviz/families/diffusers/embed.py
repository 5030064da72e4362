"""``UNet2DConditionModel``'s embeddings: its ``_set_*`` constructor helpers and the forward's step 1.

Read beside unets/unet_2d_condition.py: ``_set_time_proj``, ``_set_encoder_hid_proj``,
``_set_class_embedding`` and ``_set_add_embedding`` decide (and check) what exists, before any size
is known; ``time_embed``, ``class_embed``, ``aug_embed`` and ``process_encoder_hidden_states`` run
it as ``get_time_embed`` / ``get_class_embed`` / ``get_aug_embed`` / ``process_encoder_hidden_states``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.config import Args
from ...core.errors import NOT_TRACED, UnetvizError, bad_value
from ...core.inputs import TEXT_TOKENS
from ...engine.tracer import Act, Tracer
from .added import HID_TYPES, Added, add_embedding, encoder_hid_proj, set_added
from .parts import CONDITION_LENGTHS, timestep_embedding

NO_CROSS_WIDTH = 768
"""Context width fed to a model whose ``cross_attention_dim`` is null (nothing projects it): CLIP's."""
ACTIVATIONS = ("swish", "silu", "mish", "gelu", "relu")  # diffusers' ACT2CLS, what get_activation knows
UNSUPPORTED = NOT_TRACED  # the words of every NotTraced message (core.errors)
"""Start of the message for a value upstream builds but unetviz has no tracer for (yet)."""


@dataclass(frozen=True, kw_only=True)
class Embeds:
    """What the four ``_set_*`` helpers made."""

    fourier: bool
    time_embed_dim: int
    timestep_input_dim: int
    cond_proj_dim: int | None
    class_type: str | None
    """``"embedding"`` (num_class_embeds), ``"timestep"``, ``"identity"``, ``"projection"``,
    ``"simple_projection"``, or None: no class_embedding (any other class_embed_type is ignored)."""
    num_class_embeds: int | None
    proj_dim: int | None
    concat: bool
    hid_dim: int | None
    """``encoder_hid_proj = Linear(encoder_hid_dim, cross_attention_dim)`` (text_proj), or None."""
    text_time: bool
    add_time_dim: int | None
    added: Added | None = None
    """The image / text conditioning of IF, Kandinsky and unCLIP (encoder_hid_proj types, add embeddings)."""


def activation(a: Args, key: str, optional: bool = False) -> None:
    """``get_activation``: a name in ACT2CLS (or None where upstream skips it)."""
    v = a.raw(key)
    if not (optional and v is None) and (not isinstance(v, str) or v not in ACTIVATIONS):
        raise bad_value(key, v, ((None,) if optional else ()) + ACTIVATIONS)


def context_width(cross: Any, hid_dim: int | None) -> int:
    """Width of the ``encoder_hidden_states`` a caller passes: what the first block (or encoder_hid_proj) reads."""
    if hid_dim is not None:
        return hid_dim
    first = cross[0] if isinstance(cross, (list, tuple)) and cross else cross
    return first if isinstance(first, int) and not isinstance(first, bool) else NO_CROSS_WIDTH


def pipeline_context(cross: Any, hid_dim: int | None, added_type: Any, dual: Any) -> tuple[int, int] | None:
    """(tokens, width) of the ``encoder_hidden_states`` a pipeline passes, or None when it passes none.

    Tokens: CLIP's 77, or with ``dual_cross_attention`` the text's 77 and the image's 257 concatenated
    (Versatile Diffusion's dual-guided pipeline). None when the blocks' ``cross_attention_dim`` differ and
    nothing projects one context to them all: AudioLDM's pipeline then passes the text as ``class_labels``,
    and every attn2 attends to the image (its to_k must be as wide as the block)."""
    if hid_dim is None and added_type is None and isinstance(cross, (list, tuple)) and \
            len({c for c in cross if isinstance(c, int) and not isinstance(c, bool)}) > 1:
        return None
    return sum(CONDITION_LENGTHS) if dual else TEXT_TOKENS, context_width(cross, hid_dim)


def text_time_inputs(total: int, time_dim: int | None) -> tuple[int, int]:
    """(text_embeds width, number of time ids) a caller passes to an SDXL-style ``text_time`` model.

    Six ids (SDXL's original size, crop, target size) when they fit, else one; the text takes the
    rest, never less than nothing. When nothing fits, ``add_embedding.linear_1`` gets the wrong width.
    """
    if time_dim is None:
        return total, 6
    n_ids = 6 if total > 6 * time_dim else 1
    return max(0, total - n_ids * time_dim), n_ids


def _set_time_proj(a: Args, c0: int) -> tuple[bool, int, int]:
    """(fourier?, time_embed_dim, timestep_input_dim)."""
    kind = a.choice("time_embedding_type", ("positional", "fourier"))
    dim = a.opt_int("time_embedding_dim", 0)
    if kind == "fourier":
        time_embed_dim = dim or c0 * 2
        if time_embed_dim % 2:
            raise bad_value("time_embedding_dim", time_embed_dim, "an even number with fourier embeddings")
        return True, time_embed_dim, time_embed_dim
    return False, dim or c0 * 4, c0


def _set_encoder_hid_proj(a: Args) -> int | None:
    hid = a.opt_int("encoder_hid_dim", 1)
    kind = a.raw("encoder_hid_dim_type")
    if kind is None and hid is not None:
        kind = "text_proj"
    if hid is None and kind is not None:
        raise UnetvizError(f"encoder_hid_dim: required when encoder_hid_dim_type is {kind!r}")
    if kind not in HID_TYPES:
        raise bad_value("encoder_hid_dim_type", kind, HID_TYPES)
    if hid is not None and a.has_list("cross_attention_dim"):
        # nn.Linear(encoder_hid_dim, cross_attention_dim) takes no list
        raise UnetvizError(f"encoder_hid_dim: needs an integer cross_attention_dim (encoder_hid_proj is Linear({hid},"
                           f" cross_attention_dim)); got cross_attention_dim {a.raw('cross_attention_dim')!r}")
    if hid is not None and a.raw("cross_attention_dim") is None:
        raise bad_value("cross_attention_dim", None, "an integer (encoder_hid_proj projects to it)")
    return hid


def _set_class_embedding(a: Args) -> tuple[str | None, int | None, int | None]:
    """(class type, num_class_embeds, projection_class_embeddings_input_dim)."""
    kind = a.raw("class_embed_type")
    num = a.opt_int("num_class_embeds", 0)
    proj = a.opt_int("projection_class_embeddings_input_dim", 0)
    if kind is None:
        return ("embedding" if num is not None else None), num, proj
    if kind in ("projection", "simple_projection") and proj is None:
        raise UnetvizError(f"projection_class_embeddings_input_dim: required by class_embed_type {kind!r}")
    if kind in ("timestep", "identity", "projection", "simple_projection"):
        return str(kind), num, proj
    return None, num, proj  # upstream's final else: class_embedding = None, whatever the string


def _set_add_embedding(a: Args, proj_dim: int | None) -> tuple[bool, int | None]:
    kind = a.raw("addition_embed_type")
    add_time_dim = a.opt_int("addition_time_embed_dim", 0)
    if kind == "text_time" and proj_dim is None:
        raise bad_value("projection_class_embeddings_input_dim", None, "an integer with addition_embed_type"
                        " 'text_time' (add_embedding is TimestepEmbedding(projection_class_embeddings_input_dim, ...))")
    return kind == "text_time", add_time_dim


def embeddings(a: Args, c0: int) -> Embeds:
    """The constructor's time / encoder_hid / class / add embeddings, in its order."""
    fourier, ted, tid = _set_time_proj(a, c0)
    cond = a.opt_int("time_cond_proj_dim", 0)
    hid = _set_encoder_hid_proj(a)
    kind, num, proj = _set_class_embedding(a)
    added = set_added(a)
    text_time, add_time_dim = _set_add_embedding(a, proj)
    activation(a, "time_embedding_act_fn", optional=True)
    activation(a, "timestep_post_act", optional=True)
    return Embeds(fourier=fourier, time_embed_dim=ted, timestep_input_dim=tid, cond_proj_dim=cond, class_type=kind,
                  num_class_embeds=num, proj_dim=proj, concat=a.flag("class_embeddings_concat"), hid_dim=hid,
                  text_time=text_time, add_time_dim=add_time_dim, added=added)


def embedding(t: Tracer, name: str, num: int, dim: int, fed: str) -> Act:
    """An ``nn.Embedding`` step fed ``(B,)`` integer ids: as wide as its table, as the observer reads it."""
    with t.unit(name, "embed", "Embedding", Act(num, None, fed)) as u:
        return u.done(t.embedding("", num, dim), new=False)


def time_proj(t: Tracer, e: Embeds, c0: int) -> Act:
    """``self.time_proj(timesteps)``: Timesteps has no parameters; GaussianFourierProjection owns ``weight``."""
    if not e.fourier:
        return Act(c0, None, "time_proj")
    half = e.time_embed_dim // 2
    return t.owner("time_proj", "GaussianFourierProjection", Act(0, None, "timestep"), Act(2 * half, None, ""),
                   [("weight", (half,))], "sin/cos of random frequencies")


def time_embed(t: Tracer, e: Embeds, c0: int) -> Act:
    """``get_time_embed`` then ``time_embedding(t_emb, timestep_cond)``."""
    t_emb = time_proj(t, e, c0)
    return timestep_embedding(t, "time_embedding", t_emb, e.timestep_input_dim, e.time_embed_dim, e.cond_proj_dim)


def class_embed(t: Tracer, e: Embeds, c0: int) -> Act | None:
    """``get_class_embed``: a timestep class embedding runs ``time_proj`` a second time, on the labels."""
    ted = e.time_embed_dim
    if e.class_type == "embedding" and e.num_class_embeds is not None:
        return embedding(t, "class_embedding", e.num_class_embeds, ted, "class_labels")
    if e.class_type == "timestep":
        return timestep_embedding(t, "class_embedding", time_proj(t, e, c0), e.timestep_input_dim, ted)
    if e.class_type == "identity":
        return Act(ted, None, "class_labels")  # the adapter passes time_embed_dim-wide labels
    if e.class_type in ("projection", "simple_projection") and e.proj_dim is not None:
        labels = Act(e.proj_dim, None, "class_labels")
        if e.class_type == "projection":
            return timestep_embedding(t, "class_embedding", labels, e.proj_dim, ted)
        return t.linear("class_embedding", labels, e.proj_dim, ted)
    return None


def text_time_embedding(t: Tracer, proj_dim: int, add_time_dim: int | None, time_embed_dim: int) -> Act:
    """``add_embedding(concat([text_embeds, add_time_proj(time_ids)]))``: fed what a caller passes
    (``text_time_inputs``), so ``linear_1`` fails where that is not ``projection_class_embeddings_input_dim``."""
    text, n_ids = text_time_inputs(proj_dim, add_time_dim)
    if add_time_dim is None:
        t.fail("add_time_proj", "add_time_proj: addition_time_embed_dim is null, so Timesteps(None) cannot embed"
                                " the time ids")
    width = text + n_ids * (add_time_dim or 0)
    return timestep_embedding(t, "add_embedding", Act(width, None, "text_embeds+time_ids"), proj_dim, time_embed_dim)


def aug_embed(t: Tracer, e: Embeds, emb_width: int) -> None:
    """``get_aug_embed`` for ``text_time`` (SDXL), then ``emb = emb + aug_emb``."""
    if not e.text_time or e.proj_dim is None:
        return
    aug = text_time_embedding(t, e.proj_dim, e.add_time_dim, e.time_embed_dim)
    if aug.channels != emb_width:
        t.fail("", f"emb + aug_emb: the time embedding is {emb_width} wide (class_embeddings_concat doubles it)"
                   f" but add_embedding gives {aug.channels}")


def process_encoder_hidden_states(t: Tracer, e: Embeds, cross: Any, context: Act) -> Act:
    """The context every cross-attention block gets: the caller's, through encoder_hid_proj if there is one."""
    if e.added is not None and e.added.hid_type in ("text_image_proj", "image_proj"):
        return encoder_hid_proj(t, e.added, context)
    if e.hid_dim is not None and isinstance(cross, int):
        context = t.linear("encoder_hid_proj", context, e.hid_dim, cross)
    return context


def step_one(t: Tracer, e: Embeds, c0: int, cross: Any, sample: Act,
             dual: Any = False) -> tuple[Act, Act | None, Act]:
    """# 1. time, class and added embeddings, then the context: (emb, context or None if a caller passes none
    (``pipeline_context``), the sample conv_in gets)."""
    # encoder_hidden_states is an argument of the forward: the request is read before any step can fail, so
    # a model that fails in its embeddings (before any cross-attention) still takes a chosen context
    fed = pipeline_context(cross, e.hid_dim, e.added.add_type if e.added is not None else None, dual)
    context = _requested(t, e, None if fed is None else Act(fed[1], None, "encoder_hidden_states", fed[0]))
    t.context_used = None if context is None else (context.tokens or 1, context.channels)
    emb = time_embed(t, e, c0)
    class_emb = class_embed(t, e, c0)
    width = e.time_embed_dim * (2 if class_emb is not None and e.concat else 1)
    aug_embed(t, e, width)
    if e.added is not None and context is not None:  # pipeline_context and _requested keep one for it
        aug, hint = add_embedding(t, e.added, context, e.time_embed_dim, sample)
        if hint is not None:  # sample = torch.cat([sample, hint], dim=1): before emb + aug_emb, as upstream
            sample = t.cat([sample, hint], into="conv_in")
        if aug is not None and aug.channels != width:
            t.fail("", f"emb + aug_emb: the time embedding is {width} wide (class_embeddings_concat doubles it)"
                       f" but add_embedding gives {aug.channels}")
    if context is None:
        return Act(width, None, emb.source), None, sample
    return Act(width, None, emb.source), process_encoder_hidden_states(t, e, cross, context), sample


def _requested(t: Tracer, e: Embeds, default: Act | None) -> Act | None:
    """The context ``--context`` asks for in place of the one a pipeline passes (``default``)."""
    t.context_read = True
    if t.context is None:
        return default
    if t.context == "none":
        if e.hid_dim is not None or (e.added is not None and e.added.add_type is not None):
            raise UnetvizError("--context: got 'none'; this model's encoder_hid_proj or add_embedding reads the"
                               " context; allowed: TOKENSxWIDTH")
        return None
    tokens, width = t.context
    return Act(width, None, "encoder_hidden_states", tokens)
