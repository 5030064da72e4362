"""Render every preset at unit detail (one node per unit, the U) into docs/diagrams/<preset>.svg
(`make diagrams`).

Needs Graphviz's `dot`. Prints one line per preset (the renderer's own message) and exits 1 if any
preset fails to render, so a broken diagram does not go unnoticed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import unetviz
from unetviz.render.graph.draw import write_graph

OUT = Path(__file__).resolve().parent / "diagrams"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    failed = 0
    for name in unetviz.PRESETS:
        try:
            print(write_graph(unetviz.trace(name), OUT / f"{name}.svg", detail="units"))
        except unetviz.UnetvizError as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
