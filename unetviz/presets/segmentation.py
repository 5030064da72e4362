"""Segmentation U-Nets' published configs: nnU-Net plans configurations and MONAI Model Zoo bundle networks,
each as its own file writes it (the nnunet and monai families' config formats)."""

from __future__ import annotations

from typing import Any

from .record import Preset

_IMPORTS = ["conv_op", "norm_op", "dropout_op", "nonlin"]
_PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
_RESIDUAL = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"


def _plain(dims: int, stages: int, features: list[int], strides: list[list[int]]) -> dict[str, Any]:
    """nnU-Net's default planner's PlainConvUNet arch_kwargs: 3x3(x3) kernels, two convs a stage, affine
    InstanceNorm, in-place LeakyReLU, conv bias (what nnUNetPlanner writes for every configuration)."""
    return {"n_stages": stages, "features_per_stage": features, "conv_op": f"torch.nn.modules.conv.Conv{dims}d",
            "kernel_sizes": [[3] * dims] * stages, "strides": strides, "n_conv_per_stage": [2] * stages,
            "n_conv_per_stage_decoder": [2] * (stages - 1), "conv_bias": True,
            "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dims}d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}


def _resenc(features: list[int], strides: list[list[int]], blocks: list[int]) -> dict[str, Any]:
    """nnU-Net's ResEnc planners' 3-D ResidualEncoderUNet arch_kwargs: 3x3x3 kernels, residual blocks per
    encoder stage, one conv a decoder stage, affine InstanceNorm, in-place LeakyReLU, conv bias."""
    stages = len(features)
    return {"n_stages": stages, "features_per_stage": features, "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * stages, "strides": strides, "n_blocks_per_stage": blocks,
            "n_conv_per_stage_decoder": [1] * (stages - 1), "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}


def _resenc_preset(size: str, target: str, config: dict[str, Any], shape: str) -> Preset:
    """One ResEnc preset: the 3d_fullres entry of nnUNetResEncUNet{size}Plans as nnunetv2 2.8.1's
    nnUNetPlannerResEnc{size} plans it for MSD Task06 Lung from its published dataset fingerprint."""
    return Preset(
        name=f"nnunet-lung-resenc-{size.lower()}",
        description=f"nnU-Net v2's residual-encoder preset {size} (nnUNetResEncUNet{size}Plans, for {target} GPUs)"
                    f" for the Medical Segmentation Decathlon's Task06 Lung, configuration 3d_fullres, as nnunetv2"
                    f" 2.8.1's nnUNetPlannerResEnc{size} plans it from {_PRINT}: {shape}",
        config={"family": "nnunet", "network_class_name": _RESIDUAL, **config, "arch_kwargs_req_import": _IMPORTS,
                "input_channels": 1, "num_classes": 2, "batch_size": 2, "configuration": "3d_fullres"})


# Where the ResEnc numbers come from: nnU-Net publishes no nnUNetResEncUNet{M,L,XL}Plans file, and their patch
# sizes come from a dataset's fingerprint through nnU-Net's planner. The repository whose nnUNetPlans.json gives
# the lung presets also publishes the dataset_fingerprint.json it was planned from (63 cases' spacings and
# cropped shapes); nnunetv2 2.8.1's default ExperimentPlanner rebuilds that nnUNetPlans.json from it exactly,
# and its ResEnc planners, run on the same fingerprint, write the configurations below.
# tests/test_resenc_presets.py reruns all four planners on tests/data/nnunet/Dataset006_Lung and compares.
_PRINT = ("the dataset fingerprint published with the lung plans (Usamakhan843/3D-Lung-Tumor-Segmentation-with-nnU-"
          "Net dataset_fingerprint.json at 9a89f94)")
_FULL_3D = [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
_LUNG = ("nnU-Net v2's default plans (nnUNetPlans) for the Medical Segmentation Decathlon's Task06 Lung"
         " (Dataset006_Lung: 1 CT channel; background and cancer), as published in"
         " Usamakhan843/3D-Lung-Tumor-Segmentation-with-nnU-Net nnUNetPlans.json")

SEGMENTATION: tuple[Preset, ...] = (
    Preset(
        name="nnunet-lung-3d-fullres",
        description=f"{_LUNG}, configuration 3d_fullres: a 6-stage PlainConvUNet (32..320 features), the last"
                    " stage's stride (1, 2, 2) in-plane only, on 80x192x160 patches in batches of 2",
        config={"family": "nnunet", "network_class_name": _PLAIN,
                "arch_kwargs": _plain(3, 6, [32, 64, 128, 256, 320, 320],
                                      [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [1, 2, 2]]),
                "arch_kwargs_req_import": _IMPORTS, "input_channels": 1, "num_classes": 2,
                "patch_size": [80, 192, 160], "batch_size": 2, "configuration": "3d_fullres"}),
    Preset(
        name="nnunet-lung-2d",
        description=f"{_LUNG}, configuration 2d: an 8-stage PlainConvUNet (32..512 features) on 512x512 slices"
                    " in batches of 12",
        config={"family": "nnunet", "network_class_name": _PLAIN,
                "arch_kwargs": _plain(2, 8, [32, 64, 128, 256, 512, 512, 512, 512], [[1, 1]] + [[2, 2]] * 7),
                "arch_kwargs_req_import": _IMPORTS, "input_channels": 1, "num_classes": 2,
                "patch_size": [512, 512], "batch_size": 12, "configuration": "2d"}),
    _resenc_preset("M", "9-11 GB", {"arch_kwargs": _resenc([32, 64, 128, 256, 320, 320], [*_FULL_3D, [1, 2, 2]],
                                                          [1, 3, 4, 6, 6, 6]), "patch_size": [80, 192, 160]},
                   "a 6-stage ResidualEncoderUNet (32..320 features, 1-3-4-6-6-6 residual blocks), the last stride"
                   " (1, 2, 2) in-plane only, on 80x192x160 patches in batches of 2"),
    _resenc_preset("L", "24 GB", {"arch_kwargs": _resenc([32, 64, 128, 256, 320, 320, 320],
                                                         [*_FULL_3D, [1, 2, 2], [1, 2, 2]], [1, 3, 4, 6, 6, 6, 6]),
                                  "patch_size": [112, 256, 256]},
                   "a 7-stage ResidualEncoderUNet (32..320 features, 1-3-4-6-6-6-6 residual blocks), the last two"
                   " strides (1, 2, 2) in-plane only, on 112x256x256 patches in batches of 2"),
    _resenc_preset("XL", "40 GB", {"arch_kwargs": _resenc([32, 64, 128, 256, 320, 320, 320],
                                                          [*_FULL_3D, [2, 2, 2], [1, 2, 2]], [1, 3, 4, 6, 6, 6, 6]),
                                   "patch_size": [128, 320, 320]},
                   "a 7-stage ResidualEncoderUNet (32..320 features, 1-3-4-6-6-6-6 residual blocks), the last"
                   " stride (1, 2, 2) in-plane only, on 128x320x320 patches in batches of 2"),
    Preset(
        name="monai-spleen-ct",
        aliases=("spleen_ct_segmentation",),
        description="MONAI Model Zoo bundle spleen_ct_segmentation (Project-MONAI/model-zoo"
                    " models/spleen_ct_segmentation/configs/inference.json at 25555f7: network_def and the"
                    " sliding-window inferer's roi_size): a 3-D MONAI UNet, 1 CT channel to 2 classes, channels"
                    " 16..256 with stride 2, two residual units a level, batch norm, on 96x96x96 windows",
        config={"family": "monai", "_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 2, "norm": "batch",
                "roi_size": [96, 96, 96]}),
)
