"""``monai.networks.nets.UNETR``: a ViT encoder (16-voxel patches, 12 blocks) whose hidden states after blocks
3, 6 and 9 and the final normed tokens are viewed back as ``feat_size`` volumes (``proj_feat``) and upsampled
by ``UnetrPrUpBlock``s; the input itself goes through ``encoder1``; ``UnetrUpBlock``s merge them.

The blocks of ``blocks/unetr_block.py`` are here too (SwinUNETR uses them): ``UnetrBasicBlock`` (a
``UnetResBlock`` or ``UnetBasicBlock`` at ``layer``), ``UnetrPrUpBlock`` (``transp_conv_init``, then
``num_layer`` more upsamplings, each with a conv block when ``conv_block``) and ``UnetrUpBlock``
(``transp_conv``, ``cat((up, skip))``, a conv block). Their transposed convs are ``get_conv_layer``'s: kernel =
stride = the upsample kernel, no padding, no bias.
"""

from __future__ import annotations

from math import prod
from typing import Any

from ...core.config import Args
from ...core.errors import UnetvizError
from ...core.records import fmt_size
from ...engine.tracer import Act, Tracer
from . import ops
from .blocks import Adn
from .config import dims, size_of
from .dynunet import _Walk, unet_blocks
from .vit import vit

PATCH = 16
"""UNETR's patch size on every axis (``ensure_tuple_rep(16, spatial_dims)``)."""
LAYERS = 12
"""``self.num_layers``: the ViT's depth, fixed."""
LRELU = ["leakyrelu", {"inplace": True, "negative_slope": 0.01}]
"""``UnetResBlock`` / ``UnetBasicBlock``'s ``act_name`` default, which UNETR and SwinUNETR never change."""


def stage_adn(norm_name: Any, d: int) -> Adn:
    """The conv blocks' settings: the config's ``norm_name`` and the blocks' own leaky ReLU."""
    return Adn(dims=d, act=ops.act("act_name", LRELU), norm=ops.norm("norm_name", norm_name),
               dropout=False, bias=False, norm_key="norm_name")


def up_conv(w: _Walk, name: str, x: Act, in_c: int, c: int) -> Act:
    """``get_conv_layer(..., kernel_size=2, stride=2, conv_only=True, is_transposed=True)``."""
    two = (2,) * w.d
    with w.t.scope(name):
        return w.t.conv("conv", x, in_c, c, two, two, 0, bias=False, dims=w.d, transpose=True)


def basic_block(w: _Walk, name: str, x: Act, in_c: int, c: int, res: bool) -> Act:
    """``UnetrBasicBlock``: its ``layer``, a 3x3 stride-1 res or basic block."""
    with w.t.unit(name, "resnet" if res else "conv", "UnetrBasicBlock", x) as u:
        return u.done(w.block("layer", x, in_c, c, (3,) * w.d, (1,) * w.d, res), new=False)


def pr_up_block(w: _Walk, name: str, x: Act, in_c: int, c: int, num_layer: int, conv_block: bool, res: bool) -> Act:
    """``UnetrPrUpBlock``: ``transp_conv_init``, then each of ``blocks`` (an upsampling, and a conv block). Its
    ``blocks`` is a ModuleList, so it is a heading (``docs/design.md``) over one unit a 2x upsampling."""
    t, ups = w.t, num_layer + 1
    title = f"UnetrPrUpBlock: {ups} 2x upsampling{'s' * (ups > 1)} to {c} ch{', each + a conv block' * conv_block}"
    with t.block(name, title, order=("transp_conv_init", "blocks")):
        with t.unit("transp_conv_init", "conv", "Convolution", x) as u:
            x = u.done(up_conv(w, "", x, in_c, c), new=False)
        for i in range(num_layer):
            with t.unit(f"blocks.{i}", "conv", "Sequential" if conv_block else "Convolution", x) as u:
                if conv_block:
                    y = up_conv(w, "0", x, c, c)
                    y = w.block("1", y, c, c, (3,) * w.d, (1,) * w.d, res)
                else:
                    y = up_conv(w, "", x, c, c)
                x = u.done(y, new=False)
        return x


def up_block(w: _Walk, name: str, x: Act, in_c: int, c: int, res: bool) -> Act:
    """``UnetrUpBlock``: ``transp_conv``, ``torch.cat((out, skip))``, ``conv_block``."""
    t = w.t
    with t.unit(name, "upsample", "UnetrUpBlock", x) as u:
        y = up_conv(w, "transp_conv", x, in_c, c)
        skip = t.pop()
        if y.size != skip.size:
            t.fail(u.path, f"{u.path} (UnetrUpBlock): torch.cat: the upsampled {fmt_size(y.size)} and the skip's"
                           f" {fmt_size(skip.size)} (from {skip.source}) differ")
        y = w.block("conv_block", t.cat([y, skip], into="conv_block"), 2 * c, c, (3,) * w.d, (1,) * w.d, res)
        return u.done(y, new=False)


def _checked(k: Args, d: int) -> tuple[tuple[int, ...], int, int, str]:
    """(img_size, hidden_size, num_heads, proj_type) as the constructors check them."""
    rate = k.raw("dropout_rate")
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise UnetvizError(f"dropout_rate: got {rate!r}; allowed: a number from 0 to 1")
    hidden, heads = k.int("hidden_size", 1), k.int("num_heads", 1)
    if hidden % heads:
        raise UnetvizError(f"hidden_size: got {hidden}; allowed: a multiple of num_heads ({heads})")
    img = size_of("img_size", k.raw("img_size"), d)
    proj = k.choice("proj_type", ("conv", "perceptron"))
    for i in img:
        if i < PATCH:
            raise UnetvizError(f"img_size: got {fmt_size(img)}; allowed: at least the patch ({PATCH}) on every axis")
        if proj == "perceptron" and i % PATCH:
            raise UnetvizError(f"img_size: got {fmt_size(img)}; allowed with proj_type perceptron: multiples of the"
                               f" patch ({PATCH})")
    return img, hidden, heads, proj


def unetr(t: Tracer, k: Args, x: Act, out_c: int) -> Act:
    """``UNETR.forward``."""
    d = dims(k)
    img, hidden, heads, proj = _checked(k, d)
    f, res, conv_block = k.int("feature_size", 1), k.flag("res_block"), k.flag("conv_block")
    k.flag("qkv_bias")
    k.flag("save_attn")  # keeps att_mat: no parameter, no MAC
    w = unet_blocks(t, d, stage_adn(k.raw("norm_name"), d), out_c)
    feat = tuple(i // PATCH for i in img)
    last, states = vit(t, x, img, (PATCH,) * d, hidden, k.int("mlp_dim", 0), LAYERS, heads, proj, k.flag("qkv_bias"))
    enc = basic_block(w, "encoder1", x, x.channels, f, res)
    t.push(enc)

    def proj_feat(h: Act) -> Act:
        """``x.view([B, *feat_size, hidden])`` then channels first: any token count but feat_size's fails."""
        if (h.tokens or 1) != prod(feat):
            t.fail(None, f"UNETR.proj_feat: view of {h.tokens} tokens as {fmt_size(feat)} (img_size // 16):"
                         f" shape '[1, {', '.join(map(str, feat))}, {hidden}]' is invalid")
        return Act(hidden, feat, h.source)

    for i, (num_layer, width) in enumerate(((2, 2 * f), (1, 4 * f), (0, 8 * f))):
        enc = pr_up_block(w, f"encoder{i + 2}", proj_feat(states[3 * i + 3]), hidden, width, num_layer, conv_block,
                          res)
        t.push(enc)
    y = proj_feat(last)
    for name, in_c, c in (("decoder5", hidden, 8 * f), ("decoder4", 8 * f, 4 * f), ("decoder3", 4 * f, 2 * f),
                          ("decoder2", 2 * f, f)):
        y = up_block(w, name, y, in_c, c, res)
    return w.out_block("out", y, f, out_c)
