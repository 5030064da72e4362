"""Render every preset at unit detail (one node per unit, the U) into docs/diagrams/<preset>.svg, and the
headline models at block detail into docs/diagrams/<preset>.blocks.svg (`make diagrams`).

Needs Graphviz's `dot`. Prints one line per preset (the renderer's own message) and exits 1 if any
preset fails to render, so a broken diagram does not go unnoticed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import unetviz
from unetviz.render.graph.draw import write_graph

OUT = Path(__file__).resolve().parent / "diagrams"
BLOCKS = ("sd15", "sdxl")
"""The models whose block diagram is shown on its own (one node per block: the shape of the U at a glance)."""


def main() -> int:
    OUT.mkdir(exist_ok=True)
    failed = 0
    for name in unetviz.PRESETS:
        try:
            print(write_graph(unetviz.trace(name), OUT / f"{name}.svg", detail="units"))
            if name in BLOCKS:
                print(write_graph(unetviz.trace(name), OUT / f"{name}.blocks.svg", detail="blocks"))
        except unetviz.UnetvizError as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
