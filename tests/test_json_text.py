"""The JSON trace as the CLI writes it (one record per line) and the original names it carries, however the
trace was reached: the same data as ``Trace.to_dict``."""

from __future__ import annotations

import json

import pytest
from conftest import cli

import unetviz
from unetviz.checkpoints import keymaps
from unetviz.render.formats import render_text
from unetviz.render.json_trace import to_text, trace_json


@pytest.mark.parametrize("preset", ["sd15", "ronneberger2015", "dance-diffusion"])
def test_the_text_holds_the_dict(preset: str) -> None:
    t = unetviz.trace(preset)
    assert json.loads(trace_json(t)) == t.to_dict()
    assert json.loads(render_text(t, "json")) == t.to_dict()


def test_one_record_per_line() -> None:
    t = unetviz.trace("sd15")
    lines = trace_json(t).splitlines()
    start = lines.index('  "layers": [')
    assert all(line.startswith('    {"path": ') for line in lines[start + 1:start + 1 + len(t.layers)])
    assert lines[start + 1 + len(t.layers)] == "  ],"
    assert '    "attention_scores": [' in lines and lines[0] == "{" and lines[-1] == "}"


def test_empty_and_nested_values() -> None:
    data = {"a": [], "b": {}, "c": [1, 2], "d": {"e": [{"f": None}]}, "g": [{"h": [1]}, {"h": []}]}
    text = to_text(data)
    assert json.loads(text) == data
    assert text.splitlines()[1:3] == ['  "a": [],', '  "b": {},']


def test_the_cli_json_is_the_trace() -> None:
    r = cli("table", "sd15", "-s", "48x40", "-f", "json")
    assert r.returncode == 0 and json.loads(r.stdout) == unetviz.trace("sd15", size="48x40").to_dict()


def test_original_names_do_not_depend_on_the_size_or_the_route() -> None:
    """A forward pass that ran to the end stands for the diffusers twin at any size; one that failed uses
    the constructor's twins: each gives the same names."""
    routes = [unetviz.trace("sd15"), unetviz.trace("sd15", size="48x40"), unetviz.trace("sd15", context="77x512")]
    assert routes[2].error is not None
    names = []
    for t in routes:
        keymaps._NAMES.clear()
        names.append(keymaps.original_names(t))
    assert names[0] == names[1] == names[2]
    assert names[0]["down_blocks.1.downsamplers.0.conv"] == "input_blocks.6.0.op"
