"""Whole-process time of `unetviz graph --preset sdxl --detail layers --out X.svg`, beside torchview's
`draw_graph` + render of the same model (diffusers UNet2DConditionModel on meta) at depth 3.

Each command runs in a fresh process. unetviz: median of N runs (target < 5 s); torchview: one run
under a timeout (default 300 s), reported as "did not finish in 300 s" if it runs out.
Environment: BENCH_RUNS (default 3), BENCH_TIMEOUT (default 300), BENCH_SKIP_TORCHVIEW=1.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "300"))

TORCHVIEW = r"""
import sys, time
import torch, torchview
import unetviz
from unetviz.api import resolve
from unetviz.live.upstream.diffusers import build, inputs
cfg, _ = resolve("sdxl")
model = build(cfg["_class_name"], {k: v for k, v in cfg.items() if not k.startswith("_")})
args, kw = inputs(model, unetviz.trace("sdxl"))
t0 = time.perf_counter()
try:
    g = torchview.draw_graph(model, input_data=list(args), device="meta", depth=3, **kw)
    t1 = time.perf_counter()
    body = g.visual_graph.body
    print(f"torchview traced in {t1 - t0:.1f} s ({sum('->' in line for line in body)} edges); rendering...",
          flush=True)
    path = g.visual_graph.render(sys.argv[1], format="svg", cleanup=True)
    nodes = sum(1 for line in body if "->" not in line and "[" in line)
    edges = sum(1 for line in body if "->" in line)
    print(f"torchview: trace {t1 - t0:.1f} s, render {time.perf_counter() - t1:.1f} s, {nodes} nodes,"
          f" {edges} edges, none labelled as skips")
except Exception as e:  # torchview's own limits on this model are part of the comparison
    print("torchview failed:", type(e).__name__, str(e).splitlines()[0][:120] if str(e) else "")
"""


def run(argv: list[str], timeout: float | None = None) -> tuple[float, str]:
    """(seconds, last output line). On timeout the whole process group goes (torchview's render runs
    `dot` in a grandchild that would otherwise outlive the benchmark)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        done = out.strip().splitlines()
        return time.perf_counter() - t0, f"did not finish in {timeout:.0f} s" + (f" ({done[-1]})" if done else "")
    lines = (out or err).strip().splitlines()
    return time.perf_counter() - t0, lines[-1][:140] if lines else f"exit {p.returncode}"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sdxl-layers.svg"
        cli = Path(__file__).resolve().parents[1] / "unetviz" / "cli.py"
        if cli.exists():
            argv = [PY, "-m", "unetviz", "graph", "--preset", "sdxl", "--detail", "layers", "--out", str(out)]
        else:  # before the CLI exists: the same work through the API
            argv = [PY, "-c", "import sys, pathlib, unetviz; from unetviz.render.graph.draw import write_graph;"
                    " print(write_graph(unetviz.trace('sdxl'), pathlib.Path(sys.argv[1]), 'layers'))", str(out)]
        times, msg = [], ""
        for _ in range(RUNS):
            secs, msg = run(argv)
            times.append(secs)
        name = "unetviz graph --preset sdxl --detail layers"
        print(f"{name:48} median {statistics.median(times):6.2f} s  (runs: "
              f"{', '.join(f'{t:.2f}' for t in times)}; target < 5 s)  {msg}")
        blocks = [*argv[:-1], str(Path(tmp) / "sdxl-blocks.svg")]
        if "--detail" in blocks:
            blocks[blocks.index("--detail") + 1] = "blocks"
        else:
            blocks[2] = blocks[2].replace("'layers'", "'blocks'")
        secs, msg = run(blocks)
        print(f"{'unetviz graph --preset sdxl --detail blocks':48} {secs:13.2f} s  {msg}")
        if os.environ.get("BENCH_SKIP_TORCHVIEW") == "1":
            return
        secs, msg = run([PY, "-c", TORCHVIEW, str(Path(tmp) / "torchview")], timeout=TIMEOUT)
        print(f"{'torchview draw_graph(sdxl, depth=3) + render':48} {secs:13.2f} s  {msg}")


if __name__ == "__main__":
    main()
