"""The ``monai`` family's builder: the network ``_target_`` names, walked as its ``forward`` runs it.

Sizes are the eval-mode forward's at batch 1 (what the adapter runs): BatchNorm reads its running statistics,
DynUNet returns its final map only (its deep supervision heads still run).
"""

from __future__ import annotations

from collections.abc import Callable

from ...core.config import Args
from ...core.errors import UnetvizError
from ...core.records import Size
from ...engine.tracer import Act, Tracer
from . import config
from .basic_unet import basic_unet
from .dynunet import dynunet
from .segresnet import segresnet
from .swin_unetr import swin_unetr
from .unet import attention_unet, unet
from .unetr import unetr

DEFAULTS = config.DEFAULTS
BUILDERS: dict[str, Callable[[Tracer, Args, Act, int], Act]] = {
    "UNet": unet, "AttentionUnet": attention_unet, "BasicUNet": basic_unet, "DynUNet": dynunet,
    "UNETR": unetr, "SwinUNETR": swin_unetr, "SegResNet": segresnet}


def build(t: Tracer, args: Args, size: Size | None) -> Act:
    """The forward pass of the network a config names, at ``size`` (default: its ``roi_size``)."""
    cls, k = config.arguments(args)
    t.model = cls  # one record for every class: the trace names the one the config builds
    d = config.dims(k)
    in_c, out_c = k.int("in_channels", 1), k.int("out_channels", 1)
    own, where = config.roi_size(args, d), "roi_size"
    if own is None and cls == "UNETR":  # its positional embeddings are made for img_size: its natural input
        own, where = config.size_of("img_size", k.raw("img_size"), d), "img_size"
    if t.construct:  # the constructor's pass: a nominal size of the right rank
        x = t.start(in_c, (64,) * d, "nominal")
    elif size is not None:
        x = t.start(in_c, size, "--size")
    elif own is not None:
        x = t.start(in_c, own, where)
    else:
        form = "DxHxW" if d == 3 else "HxW"
        raise UnetvizError(f"size: a MONAI network has no size of its own; give --size {form} (the inferer's"
                           " roi_size) or \"roi_size\" in the config")
    return BUILDERS[cls](t, k, x, out_c)
