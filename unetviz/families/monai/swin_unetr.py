"""``monai.networks.nets.SwinUNETR`` (MONAI 1.6.1, which no longer takes ``img_size``): the Swin transformer
(``swinViT``) gives five hidden states, the patch embedding's and each stage's; ``encoder1`` runs on the input
itself, ``encoder2``-``encoder4`` and ``encoder10`` on hidden states 0-2 and 4; five ``UnetrUpBlock``s merge
them back up, ``decoder5`` with hidden state 3 as it is. Every conv block is a ``UnetResBlock``.

``forward`` first checks that every axis is a multiple of ``patch_size ** 5`` (a ``ValueError`` of the model
itself); past that check the sizes of a patch size of 2 always meet. ``use_v2`` adds a ``UnetrBasicBlock``
(``layers{i}c``, instance norm whatever ``norm_name``) before each stage.
"""

from __future__ import annotations

from math import ceil, prod

from ...core.config import Args
from ...core.errors import NOT_TRACED, NotTraced, UnetvizError
from ...core.kinds import resampling
from ...core.records import Size, fmt_size
from ...engine.tracer import Act, Tracer
from .config import dims, int_seq, size_of
from .dynunet import _Walk, unet_blocks
from .swin import basic_layer
from .unetr import basic_block, stage_adn, up_block

MERGING = {"merging": "PatchMerging", "mergingv2": "PatchMergingV2"}
STAGES = 4
"""``layers1`` .. ``layers4``: the forward runs exactly four stages."""


def _rates(k: Args) -> None:
    for key in ("drop_rate", "attn_drop_rate", "dropout_path_rate"):
        v = k.float(key)
        if not 0 <= v <= 1:
            raise UnetvizError(f"{key}: got {v!r}; allowed: a number from 0 to 1")


def _stages(k: Args, f: int) -> tuple[list[int], list[int]]:
    """(depths, num_heads): four stages, a head count dividing no more than each stage's width."""
    depths, heads = int_seq(k, "depths", 0), int_seq(k, "num_heads", 1)
    if len(depths) != STAGES:
        raise NotTraced(f"depths: got {depths}; {NOT_TRACED} SwinUNETR with other than {STAGES} stages (its forward"
                        f" runs layers1 to layers4)")
    if len(heads) < STAGES:
        raise UnetvizError(f"num_heads: got {heads}; allowed: one per stage ({STAGES})")
    for i, h in enumerate(heads[:STAGES]):
        if h > f * 2 ** i:  # head_dim ** -0.5 of 0
            raise UnetvizError(f"num_heads.{i}: got {h}; allowed: at most the stage's {f * 2 ** i} features")
    stages = k.raw("hyena_stages")
    if stages is not None and (not isinstance(stages, (list, tuple)) or len(stages) != STAGES):
        raise UnetvizError(f"hyena_stages: got {stages!r}; allowed: null or one switch per stage ({STAGES})")
    if k.flag("use_hyena") or any(stages or ()):
        raise NotTraced(f"use_hyena: {NOT_TRACED} SwinUNETR's Hyena stages yet")
    return depths, heads


def swin_unetr(t: Tracer, k: Args, x: Act, out_c: int) -> Act:
    """``SwinUNETR.forward``."""
    d = dims(k)
    f, patch = k.int("feature_size", 1), k.int("patch_size", 1)
    window = size_of("window_size", k.raw("window_size"), d)
    _rates(k)
    if f % 12:
        raise UnetvizError(f"feature_size: got {f}; allowed: a multiple of 12")
    depths, heads = _stages(k, f)
    merging = MERGING[k.choice("downsample", tuple(MERGING))]
    mlp_ratio, qkv_bias, v2 = k.float("mlp_ratio"), k.flag("qkv_bias"), k.flag("use_v2")
    for key in ("use_checkpoint", "use_flash_attention"):
        k.flag(key)  # the same modules and MACs
    size = x.size or ()
    if any(s % patch ** 5 for s in size):
        t.fail(None, f"SwinUNETR: spatial dimensions of the {fmt_size(size)} input must be divisible by"
                     f" {patch}**5 ({patch ** 5})")
    w = unet_blocks(t, d, stage_adn(k.raw("norm_name"), d), out_c)
    w_v2 = unet_blocks(t, d, stage_adn("instance", d), out_c)
    with t.scope("swinViT", order=("patch_embed", "pos_drop", *(f"layers{i}" for i in range(1, 5)),
                                   *(f"layers{i}c" for i in range(1, 5)))):
        states, unit3 = _encoder(t, w_v2 if v2 else None, x, f, (patch,) * d, window, depths, heads, mlp_ratio,
                                 qkv_bias, merging, k.flag("patch_norm"))
        if k.flag("normalize"):  # proj_out's F.layer_norm makes them: only swinViT returns them (in its list)
            states = [Act(s.channels, s.size, t.path()) for s in states]
    for i, (name, c) in enumerate((("encoder1", 0), ("encoder2", f), ("encoder3", 2 * f), ("encoder4", 4 * f))):
        h = x if i == 0 else states[i - 1]
        t.push(basic_block(w, name, h, c or x.channels, c or f, True))
    t.push(states[3], unit=unit3)  # hidden state 3 is decoder5's skip as it is
    y = basic_block(w, "encoder10", states[4], 16 * f, 16 * f, True)
    for name, c in (("decoder5", 8 * f), ("decoder4", 4 * f), ("decoder3", 2 * f), ("decoder2", f),
                    ("decoder1", f)):
        y = up_block(w, name, y, y.channels, c, True)
    return w.out_block("out", y, f, out_c)


def _encoder(t: Tracer, v2: _Walk | None, x: Act, f: int, patch: Size, window: Size, depths: list[int],
             heads: list[int], mlp_ratio: float, qkv_bias: bool, merging: str,
             patch_norm: bool) -> tuple[list[Act], str]:
    """``SwinTransformer.forward``: the five hidden states, and the unit that made hidden state 3."""
    h = patch_embed(t, x, f, patch, patch_norm)
    states, unit3 = [Act(f, h.size, t.path("pos_drop"))], ""
    for i in range(STAGES):
        dim = f * 2 ** i
        h = states[-1]
        if v2 is not None:
            h = basic_block(v2, f"layers{i + 1}c.0", h, dim, dim, True)
        states.append(basic_layer(t, f"layers{i + 1}.0", h, dim, depths[i], heads[i], window, mlp_ratio, qkv_bias,
                                  merging))
        if i == 2:
            unit3 = t.units[-1].path
    return states, unit3


def patch_embed(t: Tracer, x: Act, f: int, patch: Size, norm: bool) -> Act:
    """``PatchEmbed``: the input padded up to whole patches, ``proj`` (kernel = stride = the patch), and with
    ``patch_norm`` a LayerNorm over the flattened positions."""
    size = tuple(ceil(s / p) * p for s, p in zip(x.size or (), patch, strict=True))
    # a step that shrinks the resolution is a sampler whatever its class (core.kinds): patches of 2 halve it
    kind = resampling(x.size, tuple(s // p for s, p in zip(size, patch, strict=True))) or "embed"
    with t.unit("patch_embed", kind, "PatchEmbed", x) as u:
        y = t.conv("proj", Act(x.channels, size, x.source), x.channels, f, patch, patch, 0, dims=len(patch))
        if norm:
            t.layer_norm("norm", Act(f, None, y.source, prod(y.size or ())), f)
            y = Act(f, y.size, t.path("norm"))
        return u.done(y, new=False)
