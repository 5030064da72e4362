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
from .unet import attention_unet, unet

DEFAULTS = config.DEFAULTS
BUILDERS: dict[str, Callable[[Tracer, Args, Act, int], Act]] = {
    "UNet": unet, "AttentionUnet": attention_unet, "BasicUNet": basic_unet, "DynUNet": dynunet}


def build(t: Tracer, args: Args, size: Size | None) -> Act:
    """The forward pass of the network a config names, at ``size`` (default: its ``roi_size``)."""
    cls, k = config.arguments(args)
    t.model = cls  # one record for every class: the trace names the one the config builds
    d = config.dims(k)
    in_c, out_c = k.int("in_channels", 1), k.int("out_channels", 1)
    own = config.roi_size(args, d)
    if t.construct:  # the constructor's pass: a nominal size of the right rank
        x = t.start(in_c, (64,) * d, "nominal")
    elif size is not None:
        x = t.start(in_c, size, "--size")
    elif own is not None:
        x = t.start(in_c, own, "roi_size")
    else:
        form = "DxHxW" if d == 3 else "HxW"
        raise UnetvizError(f"size: a MONAI network has no size of its own; give --size {form} (the inferer's"
                           " roi_size) or \"roi_size\" in the config")
    return BUILDERS[cls](t, k, x, out_c)
