"""``unetviz why "ERROR"`` as a whole process, over the test messages (the real errors of
``tests/data/why/real_errors.json`` and the kinds the tests make with the real upstream classes).

Run: ``.venv/bin/python benchmarks/bench_why.py [--runs N]``. Prints, per message, the wall time of the first and
the best of N fresh ``python -m unetviz why TEXT`` processes (import, parse, search, rendering; target under 0.5 s)
and the CPU time the best used (user + system: on a shared machine the wall time includes waiting for a core),
then the median and the worst. It runs with a fresh cache folder: the first process builds the index (reported
apart as the cold start), every later one reads it, as a user's every call after the first does; a size error's
first call traces the model at a few sizes, later calls read the verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT / "tests" / "data" / "why" / "real_errors.json"
MADE = [
    "a and b must have same reduction dim, but got [77, 2048] X [768, 320].",
    "Sizes of tensors must match except in dimension 1. Expected 11 in dimension 4 but got 12 for tensor number 1"
    " in the list",
    "Given groups=1, weight of size [320, 4, 3, 3], expected input[2, 9, 8, 8] to have 4 channels, but got 9 channels"
    " instead",
    "<class 'diffusers.models.unets.unet_2d_condition.UNet2DConditionModel'> has the config param"
    " `addition_embed_type` set to 'text_time' which requires the keyword argument `text_embeds` to be passed in"
    " `added_cond_kwargs`",
    "ValueError: `height` and `width` have to be divisible by 8 but are 500 and 512.",
]


def one(text: str, env: dict[str, str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one ``unetviz why`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "unetviz", "why", text], cwd=ROOT, env=env, capture_output=True,
                         check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, run.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="processes per message (the best is kept)")
    args = parser.parse_args()
    messages = [(e["id"], e["text"]) for e in json.loads(REAL.read_text(encoding="utf-8"))["errors"]]
    messages += [(f"made-{i}", text) for i, text in enumerate(MADE)]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "UNETVIZ_CACHE_DIR": cache, "COLUMNS": "100"}
        cold, cold_cpu, _ = one(messages[0][1], env)
        print(f"cold start (builds and writes the index): {cold:.3f} s wall, {cold_cpu:.3f} s CPU")
        firsts, walls, cpus = [], [], []
        for name, text in messages:
            runs = [one(text, env) for _ in range(args.runs)]
            best = min(runs, key=lambda r: r[0])
            firsts.append(runs[0][0])
            walls.append(best[0])
            cpus.append(best[1])
            print(f"{name:28s} exit {best[2]}  first {runs[0][0]:.3f} s  best {best[0]:.3f} s wall"
                  f"  {best[1]:.3f} s CPU")
    print(f"{len(messages)} messages, best of {args.runs}: median {statistics.median(walls):.3f} s wall"
          f" ({statistics.median(cpus):.3f} s CPU), worst {max(walls):.3f} s wall ({max(cpus):.3f} s CPU);"
          f" {sum(w < 0.5 for w in walls)}/{len(walls)} under 0.5 s")
    print(f"first call of each message (a size error's traces not yet cached): median"
          f" {statistics.median(firsts):.3f} s, worst {max(firsts):.3f} s; {sum(w < 0.5 for w in firsts)}/"
          f"{len(firsts)} under 0.5 s")


if __name__ == "__main__":
    main()
