"""nnU-Net's own files (issue 21): a plans file or trained-model folder with its dataset.json, read into the
nnunet family's config and traced exactly as dynamic_network_architectures builds the network from it.

``data/nnunet/Dataset004_Hippocampus`` is a plans file written for these tests in nnU-Net v2's format (the
keys nnUNetPlanner writes, a 4-stage 3d_fullres and 2d network, 3 labels), not a copy of a published one."""

from __future__ import annotations

import json
import pydoc
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import unetviz
from unetviz.families.nnunet.plans import config_from_plans

HIPPO = Path(__file__).parent / "data" / "nnunet" / "Dataset004_Hippocampus"
PLANS = HIPPO / "nnUNetPlans.json"


def _plans() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(PLANS.read_text())
    return data


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "unetviz", *args], capture_output=True, text=True, timeout=300)


def _real(architecture: dict[str, Any], channels: int, classes: int) -> Any:
    """The network as nnU-Net's get_network_from_plans builds it (pydoc.locate of the listed class names)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("dynamic_network_architectures")
    kwargs = dict(architecture["arch_kwargs"])
    for key in architecture["_kw_requires_import"]:
        if kwargs[key] is not None:
            kwargs[key] = pydoc.locate(kwargs[key])
    cls = pydoc.locate(architecture["network_class_name"])
    assert callable(cls)
    with torch.device("meta"):
        return cls(input_channels=channels, num_classes=classes, deep_supervision=False, **kwargs)


@pytest.mark.parametrize("configuration", ["3d_fullres", "2d"])
def test_a_plans_configuration_is_the_real_network(configuration: str) -> None:
    args = [str(PLANS), "--format", "json"] + (["--configuration", configuration] if configuration != "3d_fullres"
                                               else [])
    r = _cli("table", *args)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    entry = _plans()["configurations"][configuration]
    patch = entry["patch_size"]
    assert d["input"]["shape"] == [1, *patch] and d["output"] == {"channels": 3, "size": patch}
    assert d["space"] == ("volume" if len(patch) == 3 else "pixel")
    real = _real(entry["architecture"], 1, 3)
    assert d["params"] == sum(p.numel() for p in real.parameters())
    w = json.loads(_cli("weights", *args).stdout)
    assert w["tensors"] == {k: list(v.shape) for k, v in real.state_dict().items()}
    torch = pytest.importorskip("torch")
    out = real(torch.empty(1, 1, *patch, device="meta"))
    assert list(out.shape) == [1, 3, *patch]
    # the deepest skip meets an upsampled map as wide as itself: the first concat is twice its width
    assert d["concats"][0]["channels"] == 2 * d["skips"][-1]["channels"]


def test_a_trained_model_folder_and_cost_at_the_plans_batch(tmp_path: Path) -> None:
    folder = tmp_path / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    folder.mkdir()
    shutil.copy(PLANS, folder / "plans.json")
    shutil.copy(HIPPO / "dataset.json", folder / "dataset.json")
    t = unetviz.trace(folder)
    assert t.in_size == (40, 56, 40) and t.out_channels == 3 and t.name.endswith("(3d_fullres)")
    r = unetviz.cost(folder, "40x56x40")
    assert r.batch == 9 and r.space == "volume" and r.sizes[0].macs == t.macs
    assert unetviz.cost(folder, "40x56x40", batch=2).batch == 2


def test_inheritance_and_plans_before_the_architecture_entry() -> None:
    plans = _plans()
    plans["configurations"]["3d_cascade_fullres"] = {"inherits_from": "3d_fullres", "batch_size": 4}
    dataset = json.loads((HIPPO / "dataset.json").read_text())
    child = config_from_plans(plans, dataset, "3d_cascade_fullres")
    assert child["batch_size"] == 4 and child["arch_kwargs"] == plans["configurations"]["3d_fullres"][
        "architecture"]["arch_kwargs"]
    # nnU-Net <= 2.3 wrote the network's recipe instead of an architecture entry
    legacy = {k: v for k, v in plans["configurations"]["3d_fullres"].items() if k != "architecture"}
    legacy.update(UNet_class_name="PlainConvUNet", UNet_base_num_features=32, unet_max_num_features=320,
                  conv_kernel_sizes=[[3, 3, 3]] * 4, pool_op_kernel_sizes=[[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
                  n_conv_per_stage_encoder=[2, 2, 2, 2], n_conv_per_stage_decoder=[2, 2, 2])
    old = config_from_plans({**plans, "configurations": {"3d_fullres": legacy}}, dataset, None)
    new = config_from_plans(plans, dataset, None)
    assert unetviz.trace(old).params == unetviz.trace(new).params == 5_603_177


def test_labels_make_heads_as_nnunet_counts_them() -> None:
    plans = _plans()
    regions = {"channel_names": {"0": "T1", "1": "T2"},
               "labels": {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": 3},
               "regions_class_order": [1, 2, 3]}
    config = config_from_plans(plans, regions, "2d")
    assert (config["input_channels"], config["num_classes"]) == (2, 3)
    ignore = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "a": 1, "ignore": 2}}
    assert config_from_plans(plans, ignore, "2d")["num_classes"] == 2


@pytest.mark.parametrize(("edit", "words"), [
    ({"network_class_name": "os.system"}, "network_class_name: got 'os.system'"),
    ({"network_class_name": "subprocess.Popen"}, "network_class_name: got 'subprocess.Popen'"),
    ({"arch_kwargs": {"conv_op": "builtins.eval"}}, "conv_op"),
])
def test_nothing_outside_the_allow_list_is_run(tmp_path: Path, edit: dict[str, Any], words: str) -> None:
    plans = _plans()
    arch = plans["configurations"]["3d_fullres"]["architecture"]
    for key, value in edit.items():
        if isinstance(value, dict):
            arch[key].update(value)
        else:
            arch[key] = value
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    shutil.copy(HIPPO / "dataset.json", tmp_path / "dataset.json")
    r = _cli("table", str(tmp_path / "plans.json"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr


def test_what_is_missing_is_named(tmp_path: Path) -> None:
    (tmp_path / "plans.json").write_text(PLANS.read_text())
    r = _cli("table", str(tmp_path / "plans.json"))
    assert r.returncode == 2 and "--dataset" in r.stderr and "dataset.json" in r.stderr
    r = _cli("table", str(PLANS), "--configuration", "3d_fullrse")
    assert r.returncode == 2 and "did you mean '3d_fullres'?" in r.stderr
    r = _cli("table", "sd15", "--configuration", "2d")
    assert r.returncode == 2 and "only an nnU-Net plans file" in r.stderr


def test_a_live_nnunet_module_is_read_with_its_own_channels_and_rank() -> None:
    # no in_channels attribute and no config on the module: its first conv says 1 channel and 3-D
    entry = _plans()["configurations"]["3d_fullres"]
    real = _real(entry["architecture"], 1, 3)
    t = unetviz.trace(real, size=tuple(entry["patch_size"]))
    assert t.error is None and t.source == "observed" and t.space == "volume"
    assert (t.in_channels, t.out_channels, t.out_size) == (1, 3, tuple(entry["patch_size"]))
    assert t.params == sum(p.numel() for p in real.parameters()) and len(t.skips) == 3


def test_a_residual_encoder_plans_configuration_is_the_real_network(tmp_path: Path) -> None:
    """A ResEnc plans configuration (the architecture entry nnUNetPlannerResEncM writes: BasicBlockD stages of
    1, 3, 4, 6 blocks, one conv a decoder stage) traced from the file equals the real network."""
    plans = _plans()
    arch = plans["configurations"]["3d_fullres"]["architecture"]
    kwargs = dict(arch["arch_kwargs"])
    kwargs.pop("n_conv_per_stage")
    kwargs.update(n_blocks_per_stage=[1, 3, 4, 6], n_conv_per_stage_decoder=[1, 1, 1],
                  block="dynamic_network_architectures.building_blocks.residual.BasicBlockD",
                  bottleneck_channels=None, stem_channels=None)
    arch.update(network_class_name="dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
                arch_kwargs=kwargs, _kw_requires_import=[*arch["_kw_requires_import"], "block"])
    (tmp_path / "nnUNetResEncUNetMPlans.json").write_text(json.dumps(plans))
    shutil.copy(HIPPO / "dataset.json", tmp_path / "dataset.json")
    t = unetviz.trace(tmp_path / "nnUNetResEncUNetMPlans.json")
    assert t.model == "ResidualEncoderUNet" and t.out_size == (40, 56, 40)
    real = _real(arch, 1, 3)
    assert t.params == sum(p.numel() for p in real.parameters())
    assert dict(t.manifest) == {k: tuple(v.shape) for k, v in real.state_dict().items()}
    assert list(dict(t.manifest)) == list(real.state_dict())
