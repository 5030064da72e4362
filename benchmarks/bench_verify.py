"""Whole-process wall time and peak RSS of ``unetviz verify --preset sdxl``, next to importing torch + diffusers.

Targets: peak RSS < 1.5 GB; time < the import time + 3 s (everything verify adds on top of the
imports it cannot avoid: the symbolic trace, building SDXL on the meta device, the hooked forward,
torchinfo and the comparison). ``import diffusers`` is lazy: resolving ``diffusers.UNet2DConditionModel``
imports the model code (unets, blocks, attention, torch._dynamo) and costs seconds more, which
verify cannot avoid either, so that baseline is shown too. Each command runs in a fresh
subprocess; ``RUSAGE_CHILDREN`` is the maximum over the children so far, hence the heavier
command runs last.

    python benchmarks/bench_verify.py [--preset sdxl] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEAK_LIMIT_MB = 1536.0
EXTRA_LIMIT_S = 3.0


def run(cmd: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB of the children so far, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr[-2000:])
    return wall, peak_kb / 1024, proc.returncode


def verify_command(preset: str) -> list[str]:
    if (ROOT / "unetviz" / "cli.py").exists():
        return [sys.executable, "-m", "unetviz", "verify", "--preset", preset]
    # until the CLI lands: the same work through the Python API
    return [sys.executable, "-c", f"import unetviz, sys; sys.exit(0 if unetviz.verify({preset!r}).ok else 1)"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="sdxl")
    ap.add_argument("--repeat", type=int, default=3, help="best of N wall times (the peak is the max)")
    opts = ap.parse_args()
    imports = [sys.executable, "-c", "import torch, diffusers"]
    verify = verify_command(opts.preset)
    classes = [sys.executable, "-c", "import torch, diffusers; diffusers.UNet2DConditionModel"]
    run(imports)  # warm the page cache so the first timed import is not a cold disk read
    t_import = min(run(imports)[0] for _ in range(opts.repeat))
    _, peak_import, _ = run(imports)
    t_class = min(run(classes)[0] for _ in range(opts.repeat))
    _, peak_class, _ = run(classes)
    results = [run(verify) for _ in range(opts.repeat)]
    t_verify = min(r[0] for r in results)
    peak_verify = max(r[1] for r in results)
    code = results[-1][2]
    print(f"import torch, diffusers : {t_import:6.2f} s   peak RSS {peak_import:7.0f} MB")
    print(f"+ the UNet model classes: {t_class:6.2f} s   peak RSS {peak_class:7.0f} MB")
    print(f"{' '.join(verify[2:]) if verify[1] == '-m' else 'unetviz.verify(' + repr(opts.preset) + ')':24}: "
          f"{t_verify:6.2f} s   peak RSS {peak_verify:7.0f} MB   exit {code}")
    extra = t_verify - t_import
    ok_time, ok_mem = extra < EXTRA_LIMIT_S, peak_verify < PEAK_LIMIT_MB
    print(f"verify adds {t_verify - t_class:.2f} s over importing the model classes")
    print(f"verify adds {extra:.2f} s over the imports (target < {EXTRA_LIMIT_S:.0f} s): {'ok' if ok_time else 'OVER'};"
          f" peak {peak_verify:.0f} MB (target < {PEAK_LIMIT_MB:.0f} MB): {'ok' if ok_mem else 'OVER'}")
    return 0 if ok_time and ok_mem and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
