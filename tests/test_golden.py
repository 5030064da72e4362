"""Golden files: what each format prints for the presets (``pytest --overwrite`` rewrites them).

They catch unintended changes anywhere between a builder and a renderer; the invariants in
test_structure.py say why the numbers are right, these say they did not move.
"""

from __future__ import annotations

import pytest
from conftest import Golden

import unetviz
from unetviz.render.formats import to_csv, to_markdown
from unetviz.render.graph.draw import to_graphviz

PRESETS = list(unetviz.PRESETS)
SMALL = ["ddpm-cifar10", "ronneberger2015", "ddpm-lucidrains", "iddpm-cifar10"]


@pytest.mark.parametrize("preset", PRESETS)
def test_units_markdown(golden: Golden, preset: str) -> None:
    golden(f"{preset}.units.md", to_markdown(unetviz.trace(preset), "units"))


@pytest.mark.parametrize("preset", SMALL)
def test_trace_json(golden: Golden, preset: str) -> None:
    golden(f"{preset}.trace.json", unetviz.trace(preset).to_json() + "\n")


@pytest.mark.parametrize("preset", SMALL)
def test_weights_json(golden: Golden, preset: str) -> None:
    golden(f"{preset}.weights.json", unetviz.weights(preset).to_json() + "\n")


@pytest.mark.parametrize("preset", ["ddpm-cifar10", "ronneberger2015"])
def test_layers_csv(golden: Golden, preset: str) -> None:
    golden(f"{preset}.layers.csv", to_csv(unetviz.trace(preset), "layers"))


@pytest.mark.parametrize(("preset", "detail"), [("ddpm-cifar10", "units"), ("ronneberger2015", "units"),
                                                ("ddpm-lucidrains", "blocks")])
def test_graph_dot(golden: Golden, preset: str, detail: str) -> None:
    golden(f"{preset}.{detail}.dot", str(to_graphviz(unetviz.trace(preset), detail=detail).source))
