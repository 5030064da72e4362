"""An nnU-Net network config, checked as ``get_network_from_plans`` and the class constructors check it.

The config is the ``architecture`` entry of a plans configuration plus what the trainer adds:
``{"family": "nnunet", "network_class_name": ..., "arch_kwargs": {...}, "arch_kwargs_req_import": [...],
"input_channels": N, "num_classes": N, "deep_supervision": false, "patch_size": [D, H, W]}``.

``deep_supervision`` defaults to false, what nnU-Net's predictor builds for inference (and the constructor's
default); the trainer builds it true for training. Both build the same modules (the decoder always makes
every seg head), so the manifest and parameters do not depend on it; the forward runs the extra heads.
A ``deep_supervision`` inside ``arch_kwargs`` is overridden by the top-level one when that is given, as
``get_network_from_plans`` does. ``patch_size`` (the plans configuration's) is the default input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...core.config import Args
from ...core.errors import NOT_TRACED, NotTraced, UnetvizError
from ...core.inputs import InputSpec
from ...core.records import Size
from . import ops

REQUIRED = "(required)"
"""The value of a key the upstream signature has no default for; a config must give it."""
DEFAULTS: dict[str, Any] = {
    "network_class_name": REQUIRED, "arch_kwargs": REQUIRED, "arch_kwargs_req_import": None,
    "input_channels": REQUIRED, "num_classes": REQUIRED, "deep_supervision": None, "patch_size": None,
    # what a plans file says besides the network: which configuration, and the batch the trainer uses
    "configuration": None, "batch_size": None,
}
_COMMON: dict[str, Any] = {
    "n_stages": REQUIRED, "features_per_stage": REQUIRED, "conv_op": REQUIRED, "kernel_sizes": REQUIRED,
    "strides": REQUIRED, "n_conv_per_stage_decoder": REQUIRED, "conv_bias": False, "norm_op": None,
    "norm_op_kwargs": None, "dropout_op": None, "dropout_op_kwargs": None, "nonlin": None, "nonlin_kwargs": None,
    "deep_supervision": False,
}
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "PlainConvUNet": {**_COMMON, "n_conv_per_stage": REQUIRED, "nonlin_first": False},
    "ResidualEncoderUNet": {**_COMMON, "n_blocks_per_stage": REQUIRED, "block": f"{ops._DNA}building_blocks."
                            "residual.BasicBlockD", "bottleneck_channels": None, "stem_channels": None},
}
"""The keyword arguments of each class (input_channels and num_classes come from the top level)."""
VOLUME = InputSpec(rank="volume", space="volume", channels="the scan's channels (modalities)")
IMAGE = InputSpec(rank="image", space="pixel", channels="the scan's channels (modalities)")


@dataclass(frozen=True, kw_only=True)
class Arch:
    """Everything the builder reads, normalised as the constructors normalise it (ints to lists)."""

    cls: str
    dims: int
    in_channels: int
    classes: int
    features: list[int]
    kernels: list[Size]
    strides: list[Size]
    per_stage: list[int]
    """Convs per encoder stage (PlainConvUNet) or residual blocks per stage (ResidualEncoderUNet)."""
    decoder: list[int]
    bias: bool
    norm: ops.Norm | None
    dropout: bool
    nonlin: bool
    """A nonlinearity module after each conv (``nonlin`` is not null)."""
    nonlin_first: bool
    deep_supervision: bool
    block: str = "BasicBlockD"
    bottleneck: list[int] | None = None
    stem: int | None = None


def input_spec(kwargs: dict[str, Any]) -> InputSpec:
    """The input a config declares by its conv_op: a 2-D image or a 3-D volume."""
    ops.lookup("network_class_name", kwargs.get("network_class_name"), ops.NETWORKS)  # the first thing named
    arch = kwargs.get("arch_kwargs")
    conv = arch.get("conv_op") if isinstance(arch, dict) else None
    return VOLUME if ops.conv_dims("arch_kwargs.conv_op", conv) == 3 else IMAGE


def parse(a: Args) -> Arch:
    """The checked ``Arch`` of a config (``a``: its top-level keys)."""
    for key in ("network_class_name", "arch_kwargs", "input_channels", "num_classes"):
        if a.raw(key) == REQUIRED:
            raise UnetvizError(f"{key}: missing; the nnunet family needs network_class_name, arch_kwargs,"
                               " input_channels and num_classes")
    cls = ops.lookup("network_class_name", a.raw("network_class_name"), ops.NETWORKS)
    raw = a.raw("arch_kwargs")
    if not isinstance(raw, dict):
        raise UnetvizError(f"arch_kwargs: got {raw!r}; allowed: a dict of {cls}'s keyword arguments")
    _check_imports(a.raw("arch_kwargs_req_import"), raw)
    try:
        k = Args(raw, ARCH_DEFAULTS[cls], f"dynamic_network_architectures {cls}")
    except UnetvizError as e:  # an unknown keyword (a TypeError in the constructor), named where it sits
        raise UnetvizError(f"arch_kwargs.{e}") from None
    for key, value in k.values.items():
        if value == REQUIRED:
            raise UnetvizError(f"arch_kwargs.{key}: missing; {cls} has no default for it")
    dims = ops.conv_dims("arch_kwargs.conv_op", k.raw("conv_op"))
    n = k.int("arch_kwargs.n_stages", 1, k.raw("n_stages"))
    per_key = "n_conv_per_stage" if cls == "PlainConvUNet" else "n_blocks_per_stage"
    ds = a.raw("deep_supervision")
    arch = Arch(
        cls=cls, dims=dims, in_channels=a.int("input_channels", 1), classes=a.int("num_classes", 1),
        features=_per_stage(k, "features_per_stage", n), kernels=_sizes(k, "kernel_sizes", n, dims),
        strides=_sizes(k, "strides", n, dims), per_stage=_per_stage(k, per_key, n),
        decoder=_per_stage(k, "n_conv_per_stage_decoder", n - 1), bias=bool(k.raw("conv_bias")),
        norm=_norm(k, dims), dropout=_dropout(k), nonlin=_nonlin(k), nonlin_first=bool(k.values.get("nonlin_first")),
        deep_supervision=bool(k.raw("deep_supervision") if ds is None else ds))
    return _residual(k, arch, n) if cls == "ResidualEncoderUNet" else arch


def _check_imports(listed: Any, raw: dict[str, Any]) -> None:
    """``arch_kwargs_req_import``: the keys nnU-Net resolves with pydoc.locate; only class-valued ones."""
    if listed is None:
        return
    if not isinstance(listed, list) or not all(isinstance(x, str) for x in listed):
        raise UnetvizError(f"arch_kwargs_req_import: got {listed!r}; allowed: a list of arch_kwargs keys")
    for key in listed:
        if key not in ops.CLASS_KEYS:
            raise UnetvizError(f"arch_kwargs_req_import: got {key!r}; allowed: {', '.join(ops.CLASS_KEYS)}"
                               " (unetviz resolves class names only, from its allow-list)")
    for key in ops.CLASS_KEYS:
        if isinstance(raw.get(key), str) and key not in listed:
            raise UnetvizError(f"arch_kwargs.{key}: got the string {raw[key]!r} but arch_kwargs_req_import does"
                               " not list it, so nnU-Net would pass the string itself as the class")


def _per_stage(k: Args, key: str, n: int) -> list[int]:
    """An int for every stage, or a list of exactly ``n`` (the constructors' asserts)."""
    v = k.raw(key)
    if isinstance(v, list):
        if len(v) != n:
            raise UnetvizError(f"arch_kwargs.{key}: got {len(v)} entries; allowed: {n} (n_stages"
                               f"{' - 1' if key.endswith('decoder') else ''})")
        return [k.int(f"arch_kwargs.{key}", 1, x) for x in v]
    return [k.int(f"arch_kwargs.{key}", 1, v)] * n


def _sizes(k: Args, key: str, n: int, dims: int) -> list[Size]:
    """Kernel sizes or strides: one int or one list of ``dims`` ints per stage (or one int for all)."""
    v = k.raw(key)
    items = v if isinstance(v, list) else [v] * n
    if len(items) != n:
        raise UnetvizError(f"arch_kwargs.{key}: got {len(items)} entries; allowed: {n} (n_stages)")
    out: list[Size] = []
    for item in items:
        if isinstance(item, list):
            # torch keeps a wrong-length list and only the forward fails; unetviz refuses it here
            if len(item) != dims:
                raise UnetvizError(f"arch_kwargs.{key}: got {item!r}; allowed: an integer or a list of {dims}"
                                   f" integers (conv_op is Conv{dims}d)")
            out.append(tuple(k.int(f"arch_kwargs.{key}", 1, x) for x in item))
        else:
            out.append((k.int(f"arch_kwargs.{key}", 1, item),) * dims)
    return out


def _norm(k: Args, dims: int) -> ops.Norm | None:
    if k.raw("norm_op") is None:
        return None
    found = ops.norm(ops.lookup("arch_kwargs.norm_op", k.raw("norm_op"), ops.NORMS), k.raw("norm_op_kwargs"))
    if found.type == "InstanceNorm3d" and dims == 2:
        # torch reads the (1, C, H, W) map as one unbatched volume: what it does depends on the batch size
        raise NotTraced(f"arch_kwargs.norm_op: InstanceNorm3d after a Conv2d; {NOT_TRACED} a 2-D map normed as"
                        " an unbatched volume")
    return found


def _dropout(k: Args) -> bool:
    if k.raw("dropout_op") is None:
        return False
    ops.lookup("arch_kwargs.dropout_op", k.raw("dropout_op"), ops.DROPOUTS)
    ops.dropout_kwargs(k.raw("dropout_op_kwargs"))
    return True


def _nonlin(k: Args) -> bool:
    if k.raw("nonlin") is None:
        return False
    ops.nonlin_kwargs(ops.lookup("arch_kwargs.nonlin", k.raw("nonlin"), ops.NONLINS), k.raw("nonlin_kwargs"))
    return True


def _residual(k: Args, arch: Arch, n: int) -> Arch:
    from dataclasses import replace

    block = ops.lookup("arch_kwargs.block", k.raw("block"), ops.BLOCKS)
    raw = k.raw("bottleneck_channels")
    bottleneck = None if raw is None else _per_stage(k, "bottleneck_channels", n)
    if block == "BottleneckD" and bottleneck is None:
        raise UnetvizError("arch_kwargs.bottleneck_channels: got None; allowed: an integer or one per stage"
                           " (BottleneckD needs it)")
    stem = k.raw("stem_channels")
    return replace(arch, block=block, bottleneck=bottleneck,
                   stem=None if stem is None else k.int("arch_kwargs.stem_channels", 1, stem))


def patch_size(a: Args, dims: int) -> Size | None:
    """The config's own ``patch_size`` (a plans configuration's), if it gives one."""
    v = a.raw("patch_size")
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != dims:
        raise UnetvizError(f"patch_size: got {v!r}; allowed: a list of {dims} integers (conv_op is Conv{dims}d)")
    return tuple(a.int("patch_size", 1, x) for x in v)
