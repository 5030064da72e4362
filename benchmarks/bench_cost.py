"""``unetviz cost --preset sdxl`` over 6 sizes as a whole process, beside FlopCounterMode on meta for the same sizes.

Run: ``.venv/bin/python benchmarks/bench_cost.py [--runs N]``. Prints the unetviz process's wall time (import,
six traces and the report, as a user sees it; target under 0.5 s), then torch's FlopCounterMode on the real
``UNet2DConditionModel`` on the meta device: the imports, the build, and one forward per size, with both
totals side by side (they must agree exactly).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = "512px,768px,1024px,1280px,1536px,2048px"
PROCESS = ("from unetviz.render.cost import run_cost; from rich.console import Console;"
           f" out, code = run_cost('sdxl', '{SIZES}', width=120); Console(width=120).print(out)")


def unetviz_process(runs: int) -> float:
    """Best wall time of a fresh ``python -c`` running what ``unetviz cost --preset sdxl`` runs."""
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", PROCESS], cwd=ROOT, check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def flop_counter() -> tuple[float, float, list[tuple[str, int, float]]]:
    """(import seconds, build seconds, [(size, MACs at batch 1, seconds)]) with FlopCounterMode on meta."""
    t0 = time.perf_counter()
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from unetviz.live.upstream import diffusers as adapter
    from unetviz.tracing import resolve, trace_config
    imports = time.perf_counter() - t0
    config, preset = resolve("sdxl")
    t0 = time.perf_counter()
    model = adapter.build("UNet2DConditionModel", {k: v for k, v in config.items() if not k.startswith("_")})
    build = time.perf_counter() - t0
    out = []
    for px in SIZES.split(","):
        trace = trace_config(config, px, preset)  # the size grammar reads 1024px as the 128x128 latent
        args, kw = adapter.inputs(model, trace)
        t0 = time.perf_counter()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(*args, **kw)
        out.append((px, counter.get_total_flops() // 2 // int(args[0].shape[0]), time.perf_counter() - t0))
    return imports, build, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    n = parser.parse_args().runs
    wall = unetviz_process(n)
    print(f"unetviz cost --preset sdxl --sizes {SIZES}: {wall:.3f} s (whole process, best of {n}; target < 0.5 s)")
    from unetviz.analysis.cost import cost

    ours = {s.request: s.macs for s in cost("sdxl", SIZES).sizes}
    imports, build, rows = flop_counter()
    print(f"FlopCounterMode on meta: imports {imports:.2f} s, build {build:.2f} s,"
          f" forwards {sum(r[2] for r in rows):.2f} s")
    for px, macs, secs in rows:
        same = "equal" if ours[px] == macs else "DIFFERENT"
        print(f"  {px:>6}: FlopCounterMode {macs / 1e9:9.1f} G MACs in {secs:5.2f} s;"
              f" unetviz {ours[px] / 1e9:9.1f} G ({same})")


if __name__ == "__main__":
    main()
