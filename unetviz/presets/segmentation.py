"""Segmentation U-Nets' published configs: nnU-Net plans configurations and MONAI Model Zoo bundle networks,
each as its own file writes it (the nnunet and monai families' config formats)."""

from __future__ import annotations

from typing import Any

from .record import Preset

_IMPORTS = ["conv_op", "norm_op", "dropout_op", "nonlin"]
_PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"


def _plain(dims: int, stages: int, features: list[int], strides: list[list[int]]) -> dict[str, Any]:
    """nnU-Net's default planner's PlainConvUNet arch_kwargs: 3x3(x3) kernels, two convs a stage, affine
    InstanceNorm, in-place LeakyReLU, conv bias (what nnUNetPlanner writes for every configuration)."""
    return {"n_stages": stages, "features_per_stage": features, "conv_op": f"torch.nn.modules.conv.Conv{dims}d",
            "kernel_sizes": [[3] * dims] * stages, "strides": strides, "n_conv_per_stage": [2] * stages,
            "n_conv_per_stage_decoder": [2] * (stages - 1), "conv_bias": True,
            "norm_op": f"torch.nn.modules.instancenorm.InstanceNorm{dims}d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}


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
