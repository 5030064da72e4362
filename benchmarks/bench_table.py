"""Whole-process time and peak memory of `unetviz table --preset sdxl --format json`, beside the cost of
merely importing torch and of torchinfo's summary of the same model on the meta device.

Each command runs in a fresh process; the figure is the median of N runs (peak RSS from getrusage).
Targets (issue 2): unetviz under 0.25 s and 60 MB, torch never imported.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time

PY = sys.executable
RUNS = int(os.environ.get("BENCH_RUNS", "5"))

TORCHINFO = r"""
import torch, torchinfo
from unetviz.api import resolve
from unetviz.live.upstream.diffusers import build, inputs
import unetviz
cfg, _ = resolve("sdxl")
model = build(cfg["_class_name"], {k: v for k, v in cfg.items() if not k.startswith("_")})
args, kw = inputs(model, unetviz.trace("sdxl"))
try:
    s = torchinfo.summary(model, input_data=list(args), device="meta", verbose=0, depth=8, **kw)
    print("torchinfo total params", s.total_params)
except Exception as e:  # torchinfo's own limits on meta tensors are part of the comparison
    print("torchinfo failed:", type(e).__name__, str(e).splitlines()[0][:120])
"""


def measure(argv: list[str]) -> tuple[float, float, str]:
    """(median seconds, peak RSS MB, last stdout line) over RUNS fresh processes."""
    times, peaks, out = [], [], ""
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        r = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        # ru_maxrss of children is the max over all children so far: run the biggest last
        peaks.append(max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024)
        lines = (r.stdout or r.stderr).strip().splitlines()
        out = lines[-1][:100] if lines else f"exit {r.returncode}"
    return statistics.median(times), max(peaks), out


def main() -> None:
    rows = [
        ("unetviz table --preset sdxl --format json", [PY, "-m", "unetviz", "table", "--preset", "sdxl",
                                                       "--format", "json"]),
        ("python -c 'import torch'", [PY, "-c", "import torch"]),
        ("torchinfo.summary(sdxl) on meta", [PY, "-c", TORCHINFO]),
    ]
    check = subprocess.run([PY, "-X", "importtime", "-m", "unetviz", "table", "--preset", "sdxl", "--format", "json"],
                           capture_output=True, text=True)
    torch_loaded = any(line.rstrip().endswith("| torch") for line in check.stderr.splitlines())
    print(f"{'command':45} {'median s':>9} {'peak MB':>8}  output")
    for name, argv in rows:
        secs, mb, out = measure(argv)
        print(f"{name:45} {secs:9.3f} {mb:8.1f}  {out}")
    print(f"unetviz imported torch: {torch_loaded}   (targets: < 0.25 s, < 60 MB, False)")


if __name__ == "__main__":
    main()
