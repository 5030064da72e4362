"""An nnU-Net plans file (``nnUNetPlans.json`` / a trained model's ``plans.json``) and its ``dataset.json``, read
as nnU-Net's ``PlansManager`` and ``LabelManager`` read them, into the ``nnunet`` family's config.

Pure data: nothing in a plans file is imported or executed; the class names it holds are checked against the
family's allow-list when the config is traced. A configuration may inherit from another (``inherits_from``:
the parent's entries, shallowly updated by the child's, as ``PlansManager`` resolves them). Plans written
before nnU-Net 2.4 carry no ``architecture`` entry: their network is rebuilt as nnU-Net 2.3's
``get_network_from_plans`` built it (``UNet_class_name``, ``UNet_base_num_features``, ``conv_kernel_sizes``...).
"""

from __future__ import annotations

from typing import Any

from ...core.errors import UnetvizError, did_you_mean

PREFERRED = ("3d_fullres", "2d", "3d_lowres")
"""The configuration read when none is named: nnU-Net's default 3d_fullres where the plans have it."""
_DNA = "dynamic_network_architectures.architectures.unet."


def is_plans(data: Any) -> bool:
    """A plans file: a dict with ``configurations`` (and ``plans_name`` or ``dataset_name``)."""
    return isinstance(data, dict) and isinstance(data.get("configurations"), dict) and (
        "plans_name" in data or "dataset_name" in data)


def config_from_plans(plans: dict[str, Any], dataset: dict[str, Any] | None, configuration: str | None,
                      where: str = "plans") -> dict[str, Any]:
    """The ``nnunet`` family's config of one configuration of ``plans``, channels and classes from ``dataset``."""
    configs = plans["configurations"]
    name = configuration or next((c for c in PREFERRED if c in configs), None) or next(iter(configs), None)
    if name is None or name not in configs:
        raise UnetvizError(f"--configuration: got {name!r}{did_you_mean(name, configs)}; allowed (in {where}):"
                           f" {', '.join(configs) or 'none: the plans file has no configurations'}")
    entry = _resolved(configs, name, ())
    if dataset is None:
        raise UnetvizError(f"--dataset: {where} holds no channel or class counts; give its dataset.json"
                           " (--dataset PATH; a trained model's folder has it beside plans.json)")
    arch = entry.get("architecture")
    config = _architecture(arch, name) if isinstance(arch, dict) else _legacy(entry, name)
    config.update(family="nnunet", input_channels=_channels(dataset), num_classes=_heads(dataset),
                  configuration=name)
    for key in ("patch_size", "batch_size"):
        if key in entry:
            config[key] = entry[key]
    return config


def _resolved(configs: dict[str, Any], name: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """A configuration with its ``inherits_from`` chain applied (a cycle is an error, as in nnU-Net)."""
    entry = configs[name]
    if not isinstance(entry, dict):
        raise UnetvizError(f"configurations.{name}: got {type(entry).__name__}; allowed: a dict")
    parent = entry.get("inherits_from")
    if parent is None:
        return dict(entry)
    if parent in seen or parent == name or parent not in configs:
        raise UnetvizError(f"configurations.{name}.inherits_from: got {parent!r}; allowed: another configuration"
                           f" of the file, without a cycle ({', '.join(configs)})")
    base = _resolved(configs, parent, (*seen, name))
    base.update({k: v for k, v in entry.items() if k != "inherits_from"})
    return base


def _architecture(arch: dict[str, Any], name: str) -> dict[str, Any]:
    missing = [k for k in ("network_class_name", "arch_kwargs") if k not in arch]
    if missing:
        raise UnetvizError(f"configurations.{name}.architecture: no {missing[0]!r}; allowed: network_class_name,"
                           " arch_kwargs, _kw_requires_import")
    return {"network_class_name": arch["network_class_name"], "arch_kwargs": arch["arch_kwargs"],
            "arch_kwargs_req_import": arch.get("_kw_requires_import", [])}


def _legacy(entry: dict[str, Any], name: str) -> dict[str, Any]:
    """The network nnU-Net 2.3 and earlier built from a configuration without an ``architecture`` entry."""
    needed = ("UNet_class_name", "UNet_base_num_features", "unet_max_num_features", "conv_kernel_sizes",
              "pool_op_kernel_sizes", "n_conv_per_stage_encoder", "n_conv_per_stage_decoder")
    missing = [k for k in needed if k not in entry]
    if missing:
        raise UnetvizError(f"configurations.{name}: neither 'architecture' (nnU-Net >= 2.4) nor {missing[0]!r}"
                           " (older plans) is there; the file does not describe a network")
    kernels = entry["conv_kernel_sizes"]
    n = len(kernels) if isinstance(kernels, list) else 0
    dims = len(kernels[0]) if n and isinstance(kernels[0], list) else 0
    if dims not in (2, 3):
        raise UnetvizError(f"configurations.{name}.conv_kernel_sizes: got {kernels!r}; allowed: a list of 2- or"
                           " 3-number kernels")
    cls = entry["UNet_class_name"]
    base, top = entry["UNet_base_num_features"], entry["unet_max_num_features"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (base, top)):
        raise UnetvizError(f"configurations.{name}.UNet_base_num_features: got {base!r} (max {top!r}); allowed:"
                           " integers")
    per = "n_blocks_per_stage" if cls == "ResidualEncoderUNet" else "n_conv_per_stage"
    conv, norm = f"torch.nn.modules.conv.Conv{dims}d", f"torch.nn.modules.instancenorm.InstanceNorm{dims}d"
    arch = {"n_stages": n, "features_per_stage": [min(base * 2 ** i, top) for i in range(n)], "conv_op": conv,
            "kernel_sizes": kernels, "strides": entry["pool_op_kernel_sizes"],
            per: entry["n_conv_per_stage_encoder"], "n_conv_per_stage_decoder": entry["n_conv_per_stage_decoder"],
            "conv_bias": True, "norm_op": norm, "norm_op_kwargs": {"eps": 1e-5, "affine": True},
            "dropout_op": None, "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True}}
    return {"network_class_name": _DNA + str(cls) if "." not in str(cls) else cls, "arch_kwargs": arch,
            "arch_kwargs_req_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}


def _channels(dataset: dict[str, Any]) -> int:
    """Input channels: ``channel_names`` (nnU-Net v2) or ``modality`` (v1's dataset.json)."""
    names = dataset.get("channel_names", dataset.get("modality"))
    if not isinstance(names, dict) or not names:
        raise UnetvizError("dataset.json: no 'channel_names' (nor v1's 'modality'); allowed: a dict of channel"
                           " index -> name, e.g. {\"0\": \"CT\"}")
    return len(names)


def _heads(dataset: dict[str, Any]) -> int:
    """Segmentation heads, as ``LabelManager.num_segmentation_heads``: one per region for region-based training
    (labels with several values), else one per label value (background included, the ignore label not)."""
    labels = dataset.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise UnetvizError("dataset.json: no 'labels'; allowed: a dict of name -> value, e.g. {\"background\": 0,"
                           " \"liver\": 1}")
    kept = {k: v for k, v in labels.items() if k != "ignore"}
    regions = any(isinstance(v, (list, tuple)) for v in kept.values())
    if regions:  # every label but the background is a region
        return sum(1 for v in kept.values() if v not in (0, [0], (0,)))
    values = {v for v in kept.values() if isinstance(v, int) and not isinstance(v, bool)}
    if len(values) != len(kept):
        raise UnetvizError(f"dataset.json: labels: got {labels!r}; allowed: integer values (or lists for regions)")
    return len(values)
