"""The ResEnc presets (nnUNetResEncUNet{M,L,XL}Plans) are what nnU-Net's own planners write: nnunetv2's
nnUNetPlannerResEncM/L/XL rerun on MSD Task06 Lung's published dataset fingerprint, and the preset configs
compared with the plans files they write, read by unetviz's plans reader.

``data/nnunet/Dataset006_Lung`` is the dataset.json, dataset_fingerprint.json and nnUNetPlans.json published in
Usamakhan843/3D-Lung-Tumor-Segmentation-with-nnU-Net at 9a89f94 (MSD Task06 Lung, 63 training cases). The default
ExperimentPlanner rebuilding that nnUNetPlans.json from the fingerprint shows the fingerprint is the one those
plans (and the lung presets) were planned from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from unetviz.families.nnunet.plans import config_from_plans
from unetviz.presets import PRESETS

LUNG = Path(__file__).parent / "data" / "nnunet" / "Dataset006_Lung"
NAME = "Dataset006_Lung"
RESENC = {"nnunet-lung-resenc-m": "nnUNetPlannerResEncM", "nnunet-lung-resenc-l": "nnUNetPlannerResEncL",
          "nnunet-lung-resenc-xl": "nnUNetPlannerResEncXL"}


def _dataset() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((LUNG / "dataset.json").read_text())
    return data


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Plans name -> the plans file each planner writes for the lung fingerprint (the default and the ResEnc
    planners), as nnUNetv2_plan_experiment runs them: nnUNet_raw holds dataset.json and imagesTr, and
    nnUNet_preprocessed the fingerprint."""
    pytest.importorskip("nnunetv2")
    torch = pytest.importorskip("torch")
    sitk = pytest.importorskip("SimpleITK")
    import numpy as np

    root = tmp_path_factory.mktemp("nnunet")
    raw, pre = root / "raw" / NAME, root / "preprocessed" / NAME
    (raw / "imagesTr").mkdir(parents=True)
    pre.mkdir(parents=True)
    shutil.copy(LUNG / "dataset.json", raw / "dataset.json")
    shutil.copy(LUNG / "dataset_fingerprint.json", pre / "dataset_fingerprint.json")
    # the planner opens one training image only to choose its reader (image_reader_writer), never for a size
    image = sitk.GetImageFromArray(np.zeros((2, 2, 2), dtype=np.int16))
    sitk.WriteImage(image, str(raw / "imagesTr" / "lung_001_0000.nii.gz"))
    mp = pytest.MonkeyPatch()
    # nnU-Net reads its folders from the environment when used; nnUNet_n_proc_DA spares it a `hostname` call
    for key, value in {"nnUNet_raw": root / "raw", "nnUNet_preprocessed": root / "preprocessed",
                       "nnUNet_results": root / "results", "nnUNet_n_proc_DA": 1}.items():
        mp.setenv(key, str(value))
    # nnunetv2 ships no type information
    from nnunetv2.experiment_planning.experiment_planners import default_experiment_planner  # type: ignore[import-untyped]
    from nnunetv2.experiment_planning.experiment_planners.residual_unets import (  # type: ignore[import-untyped]
        residual_encoder_unet_planners,
    )

    resenc = [getattr(residual_encoder_unet_planners, c) for c in RESENC.values()]
    planners = [default_experiment_planner.ExperimentPlanner, *resenc]
    try:
        for planner in planners:
            # the VRAM estimate builds each candidate network only to count its feature maps: on the meta
            # device it allocates no weights (the same plans, ten times faster)
            with torch.device("meta"):
                planner(NAME).plan_experiment()
    finally:
        mp.undo()
    return {p.stem: json.loads(p.read_text()) for p in pre.glob("nnUNet*Plans.json")}


def test_the_fingerprint_is_the_one_the_lung_plans_come_from(planned: dict[str, dict[str, Any]]) -> None:
    published = json.loads((LUNG / "nnUNetPlans.json").read_text())
    assert planned["nnUNetPlans"] == published
    for preset, configuration in (("nnunet-lung-3d-fullres", "3d_fullres"), ("nnunet-lung-2d", "2d")):
        assert PRESETS[preset].config == config_from_plans(published, _dataset(), configuration)


@pytest.mark.parametrize("preset", list(RESENC))
def test_a_resenc_preset_is_what_its_planner_writes(planned: dict[str, dict[str, Any]], preset: str) -> None:
    plans_name = f"nnUNetResEncUNet{RESENC[preset].removeprefix('nnUNetPlannerResEnc')}Plans"
    plans = planned[plans_name]
    assert plans["experiment_planner_used"] == RESENC[preset] and plans["plans_name"] == plans_name
    config = config_from_plans(plans, _dataset(), "3d_fullres")
    assert config["network_class_name"].endswith(".ResidualEncoderUNet")
    assert PRESETS[preset].config == config
    assert plans_name in PRESETS[preset].description and RESENC[preset] in PRESETS[preset].description



@pytest.mark.parametrize("preset", list(RESENC))
def test_cost_shows_the_estimate_the_planner_chose_the_patch_by(preset: str) -> None:
    """``cost``'s nnU-Net estimate at the patch is the planner's own static_estimate_VRAM_usage."""
    pytest.importorskip("nnunetv2")
    torch = pytest.importorskip("torch")
    from nnunetv2.experiment_planning.experiment_planners import residual_unets

    import unetviz
    from unetviz.analysis.nnunet_estimate import feature_map_size

    planner = getattr(residual_unets.residual_encoder_unet_planners, RESENC[preset])
    c = PRESETS[preset].config
    with torch.device("meta"):
        theirs = planner.static_estimate_VRAM_usage(tuple(c["patch_size"]), c["input_channels"], c["num_classes"],
                                                    c["network_class_name"], c["arch_kwargs"],
                                                    tuple(c["arch_kwargs_req_import"]))
    ours = feature_map_size(unetviz.trace(preset))
    assert ours == int(theirs)
    sizes = unetviz.cost(preset).to_dict()["sizes"]
    assert any(s["size"] == c["patch_size"] and s["nnunet_estimate_elements"] == ours for s in sizes), sizes
