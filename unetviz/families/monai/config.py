"""A MONAI network config, ``{"family": "monai", "_target_": "UNet", ...keyword arguments}``: a bundle's
``network_def`` as written, checked as the class constructors check it.

``_target_`` names the class (``ops.NETWORKS``); the other keys are its keyword arguments, with MONAI's
defaults (``CLASS_DEFAULTS``, exactly as the signatures give them). ``roi_size`` is no constructor argument:
the input size a bundle's inferer uses (``SlidingWindowInferer(roi_size=...)``), the default size of the trace.
``spatial_dims`` declares the rank (``input_spec``): 3 a volume, 2 an image.
"""

from __future__ import annotations

from typing import Any

from ...core.config import MAX_INT, Args
from ...core.errors import NOT_TRACED, NotTraced, UnetvizError
from ...core.inputs import InputSpec
from ...core.records import Size
from . import ops

REQUIRED = "(required)"
"""The value of a key the upstream signature has no default for; a config must give it."""
_COMMON: dict[str, Any] = {"spatial_dims": REQUIRED, "in_channels": REQUIRED, "out_channels": REQUIRED}
CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    # first: where a key is shared, DEFAULTS keeps the value of the classes listed after it
    "SegResNet": {"spatial_dims": 3, "init_filters": 8, "in_channels": 1, "out_channels": 2, "dropout_prob": None,
                  "act": ["RELU", {"inplace": True}], "norm": ["GROUP", {"num_groups": 8}], "norm_name": "",
                  "num_groups": 8, "use_conv_final": True, "blocks_down": [1, 2, 2, 4], "blocks_up": [1, 1, 1],
                  "upsample_mode": "nontrainable"},
    "UNet": {**_COMMON, "channels": REQUIRED, "strides": REQUIRED, "kernel_size": 3, "up_kernel_size": 3,
             "num_res_units": 0, "act": "PRELU", "norm": "INSTANCE", "dropout": 0.0, "bias": True,
             "adn_ordering": "NDA"},
    "BasicUNet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2, "features": [32, 32, 64, 128, 256, 32],
                  "act": ["LeakyReLU", {"negative_slope": 0.1, "inplace": True}],
                  "norm": ["instance", {"affine": True}], "bias": True, "dropout": 0.0, "upsample": "deconv"},
    "AttentionUnet": {**_COMMON, "channels": REQUIRED, "strides": REQUIRED, "kernel_size": 3, "up_kernel_size": 3,
                      "dropout": 0.0},
    "DynUNet": {**_COMMON, "kernel_size": REQUIRED, "strides": REQUIRED, "upsample_kernel_size": REQUIRED,
                "filters": None, "dropout": None, "norm_name": ["INSTANCE", {"affine": True}],
                "act_name": ["leakyrelu", {"inplace": True, "negative_slope": 0.01}], "deep_supervision": False,
                "deep_supr_num": 1, "res_block": False, "trans_bias": False},
    "UNETR": {"in_channels": REQUIRED, "out_channels": REQUIRED, "img_size": REQUIRED, "feature_size": 16,
              "hidden_size": 768, "mlp_dim": 3072, "num_heads": 12, "proj_type": "conv", "norm_name": "instance",
              "conv_block": True, "res_block": True, "dropout_rate": 0.0, "spatial_dims": 3, "qkv_bias": False,
              "save_attn": False},
    "SwinUNETR": {"in_channels": REQUIRED, "out_channels": REQUIRED, "patch_size": 2, "depths": [2, 2, 2, 2],
                  "num_heads": [3, 6, 12, 24], "window_size": 7, "qkv_bias": True, "mlp_ratio": 4.0,
                  "feature_size": 24, "norm_name": "instance", "drop_rate": 0.0, "attn_drop_rate": 0.0,
                  "dropout_path_rate": 0.0, "normalize": True, "patch_norm": False, "use_checkpoint": False,
                  "spatial_dims": 3, "downsample": "merging", "use_v2": False, "use_hyena": False,
                  "hyena_stages": None, "hyena_kernel_size": 3, "hyena_kernel_mlp_dim": 32, "hyena_kernel_layers": 3,
                  "hyena_mask_max_attenuation": 0.95, "hyena_fft_padding": "circular", "hyena_grid_type": "single",
                  "hyena_use_chunked_fft": False, "hyena_use_fft_short_conv": False, "hyena_omega_0": 10.0,
                  "hyena_l_cache": 32, "hyena_short_conv_fft_chunks": 0, "use_flash_attention": False},
}
"""Each class's keyword arguments and defaults (MONAI 1.6.1)."""
OWN = {"_target_": REQUIRED, "roi_size": None}
DEFAULTS: dict[str, Any] = {**OWN, **{k: v for d in CLASS_DEFAULTS.values() for k, v in d.items()}}
"""Every key any class takes: the registry's first check. ``arguments`` then checks the target's own."""
VOLUME = InputSpec(rank="volume", space="volume", channels="the scan's channels (modalities)")
IMAGE = InputSpec(rank="image", space="pixel", channels="the image's channels")


def input_spec(kwargs: dict[str, Any]) -> InputSpec:
    """The input a config declares by ``spatial_dims``: a 3-D volume or a 2-D image."""
    cls = ops.target(kwargs.get("_target_"))
    dims = kwargs.get("spatial_dims", CLASS_DEFAULTS[cls].get("spatial_dims"))
    return IMAGE if dims == 2 else VOLUME


def arguments(a: Args) -> tuple[str, Args]:
    """(the class, its checked keyword arguments): unknown keys and missing required ones are errors."""
    cls = ops.target(a.raw("_target_"))
    given = {k: v for k, v in a.given.items() if k not in OWN}
    try:
        k = Args(given, CLASS_DEFAULTS[cls], f"monai.networks.nets.{cls}")
    except UnetvizError as e:  # a keyword the class does not take: its constructor's TypeError
        raise UnetvizError(str(e)) from None
    for key, value in k.values.items():
        if value == REQUIRED:
            raise UnetvizError(f"{key}: missing; monai.networks.nets.{cls} has no default for it")
    return cls, k


def dims(k: Args) -> int:
    d = k.int("spatial_dims", 1)
    if d not in (2, 3):
        raise NotTraced(f"spatial_dims: got {d}; {NOT_TRACED} MONAI networks of other ranks than 2 and 3")
    return d


def int_seq(k: Args, key: str, minimum: int = 1) -> list[int]:
    """A sequence of integers (a JSON list for MONAI's tuple)."""
    v = k.raw(key)
    if not isinstance(v, (list, tuple)) or not all(_int(x, minimum) for x in v):
        raise UnetvizError(f"{key}: got {v!r}; allowed: a list of integers from {minimum}")
    return list(v)


def size_of(key: str, v: Any, d: int, minimum: int = 1) -> Size:
    """An int for every axis, or one per axis (MONAI's ``Sequence[int] | int`` kernel or stride)."""
    if _int(v, minimum):
        return (v,) * d
    if isinstance(v, (list, tuple)) and len(v) == d and all(_int(x, minimum) for x in v):
        return tuple(v)
    raise UnetvizError(f"{key}: got {v!r}; allowed: an integer from {minimum} or a list of {d} (spatial_dims)")


def odd(key: str, kernel: Size) -> Size:
    """``same_padding``: MONAI pads (k - 1) / 2 and refuses an even kernel (NotImplementedError)."""
    if any(k % 2 == 0 for k in kernel):
        raise UnetvizError(f"{key}: got {list(kernel)}; allowed: odd kernels (MONAI's same_padding has no padding"
                           " for an even one)")
    return kernel


def roi_size(a: Args, d: int) -> Size | None:
    v = a.raw("roi_size")
    return None if v is None else size_of("roi_size", v, d)


def _int(v: Any, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and minimum <= v <= MAX_INT
