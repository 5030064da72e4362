"""Start-up cost as a whole process: CPU seconds (user + sys, from getrusage of the child) of `import torch`,
`unetviz table sdxl --format json`, `unetviz --version` and `unetviz table sd15` (the rich table), and the
ratios to `import torch` measured in the same run.

CPU time rather than wall time, and the best of N runs, so that other work on a shared machine moves the
figures less; the ratios compare commands measured side by side. Each command runs once first, unmeasured,
with bytecode writing on: what an installed package runs is its cached bytecode, not a fresh compile.
Targets (issue 19): the JSON trace <= 0.06x of `import torch`, `--version` under 0.08 s.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

PY = sys.executable
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SCRIPT = Path(PY).with_name("unetviz")
UNETVIZ = [str(SCRIPT)] if SCRIPT.exists() else [PY, "-m", "unetviz"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["COLUMNS"] = "120"  # the rich table's width: the same work whatever terminal runs the benchmark

COMMANDS = {
    "import torch": [PY, "-c", "import torch"],
    "unetviz table sdxl --format json": [*UNETVIZ, "table", "sdxl", "--format", "json"],
    "unetviz --version": [*UNETVIZ, "--version"],
    "unetviz table sd15": [*UNETVIZ, "table", "sd15"],
}


def cpu_seconds(argv: list[str]) -> float:
    """Best user + sys CPU seconds of ``argv`` over RUNS fresh processes (after one unmeasured run)."""
    subprocess.run(argv, capture_output=True, env=ENV, check=True)
    best = float("inf")
    for _ in range(RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def main() -> None:
    # interleaved rounds: a burst of load elsewhere touches every command alike, not one of them
    best = dict.fromkeys(COMMANDS, float("inf"))
    for _ in range(2):
        for name, argv in COMMANDS.items():
            best[name] = min(best[name], cpu_seconds(argv))
    torch = best["import torch"]
    print(f"{'command':36} {'CPU s':>7} {'x torch':>8}   (best of {2 * RUNS} runs)")
    for name, secs in best.items():
        print(f"{name:36} {secs:7.3f} {secs / torch:8.3f}")
    json_ratio, version = best["unetviz table sdxl --format json"] / torch, best["unetviz --version"]
    print(f"targets: JSON trace <= 0.06x of import torch: {json_ratio:.3f}x {'ok' if json_ratio <= 0.06 else 'MISSED'};"
          f" --version < 0.08 s: {version:.3f} s {'ok' if version < 0.08 else 'MISSED'}")


if __name__ == "__main__":
    main()
