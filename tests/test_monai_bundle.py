"""A MONAI bundle's network from its own config (issue 21): network_def with @references, the inferer's
roi_size; nothing evaluated. The expected figures come from MONAI's own network built on the meta device."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import unetviz
from unetviz.presets import PRESETS


def _bundle(root: Path, network: dict[str, Any], **extra: Any) -> Path:
    (root / "configs").mkdir(parents=True)
    config = {"imports": ["$import glob"], "bundle_root": ".", "num_channels": 1, "classes": 2,
              "device": "$torch.device('cpu')", "network_def": network, "network": "$@network_def.to(@device)",
              "inferer": {"_target_": "SlidingWindowInferer", "roi_size": "@patch", "sw_batch_size": 4},
              "patch": [96, 96, 96], **extra}
    (root / "configs" / "inference.json").write_text(json.dumps(config, indent=1))
    return root


SPLEEN = {"_target_": "UNet", "spatial_dims": 3, "in_channels": "@num_channels", "out_channels": "@classes",
          "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 2, "norm": "batch"}


def test_a_bundle_folder_is_its_network(tmp_path: Path) -> None:
    folder = _bundle(tmp_path / "spleen_ct_segmentation", SPLEEN)
    t = unetviz.trace(folder)
    assert t.name == "spleen_ct_segmentation" and t.in_size == (96, 96, 96) and t.space == "volume"
    assert (t.in_channels, t.out_channels, t.out_size) == (1, 2, (96, 96, 96))
    same = unetviz.trace("monai-spleen-ct")
    assert (t.params, t.manifest, t.macs) == (same.params, same.manifest, same.macs)
    torch = pytest.importorskip("torch")
    monai_nets = pytest.importorskip("monai.networks.nets")
    with torch.device("meta"):
        real = monai_nets.UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128, 256),
                               strides=(2, 2, 2, 2), num_res_units=2, norm="batch")
    assert t.params == sum(p.numel() for p in real.parameters())
    assert dict(t.manifest) == {k: tuple(v.shape) for k, v in real.state_dict().items()}
    assert "monai-spleen-ct" in PRESETS


@pytest.mark.parametrize(("edit", "words"), [
    ({"in_channels": "$__import__('os').system('echo hi')"}, "never evaluates"),
    ({"out_channels": "%other.json#classes"}, "reads another file"),
    ({"out_channels": "@nowhere"}, "@nowhere names no entry"),
    ({"_target_": "os.system"}, "_target_: got 'os.system'"),
])
def test_nothing_is_evaluated_or_imported(tmp_path: Path, edit: dict[str, Any], words: str) -> None:
    folder = _bundle(tmp_path / "b", {**SPLEEN, **edit})
    r = subprocess.run([sys.executable, "-m", "unetviz", "table", str(folder)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and words in r.stderr, r.stderr
    assert "hi" not in r.stdout
