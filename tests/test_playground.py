"""The docs site's playground: unetviz's wheel in Pyodide, Graphviz in WebAssembly, in a real Chromium.

The page is served from the files ``make playground`` builds (a localhost static server: browsers load no
WebAssembly from ``file://``), with every request that is not to that server aborted, so the test shows the
page needs nothing from the internet. It traces sd15, sets ``layers_per_block`` to 3, and reads back the
figures, the concat sums, the skip stack and the diagram; each is compared with ``unetviz.trace`` of the same
config in this process. The browser is the system Chromium (``make chromium`` installs it), driven by
Playwright; the page's Python side (``bridge.py``) is tested natively too.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import json
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import unetviz
from unetviz.core.records import Trace, fmt_size
from unetviz.render.playground import SHAPES, Knob, concat_sum, controls, levels, view, with_levels

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "docs" / "site" / "playground"
BUILT = ROOT / "docs" / "_build" / "playground"
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
"""Headless, and no connection of Chromium's own (its updates, sync, field trials) to a closed network."""


def bridge() -> ModuleType:
    """``docs/site/playground/bridge.py``, the Python the page runs, imported here."""
    spec = importlib.util.spec_from_file_location("playground_bridge", SOURCE / "bridge.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def built() -> Path:
    """The playground's files: built now (npm ci, the wheels) if ``make playground`` has not run since the page
    or the package changed."""
    stamp = BUILT / "vendor" / "wheels.json"
    sources = [*SOURCE.iterdir(), *(ROOT / "unetviz").rglob("*.py")]  # the page and the package in its wheel
    stale = not stamp.is_file() or max(p.stat().st_mtime for p in sources) > stamp.stat().st_mtime
    if stale:
        subprocess.run([sys.executable, str(SOURCE / "build.py"), str(BUILT)], check=True, cwd=ROOT)
    return BUILT


mimetypes.add_type("text/javascript", ".mjs")  # an ES module and WebAssembly need their own types
mimetypes.add_type("application/wasm", ".wasm")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def served(folder: Path) -> Iterator[str]:
    """A static file server on localhost for ``folder``; its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium_or_skip() -> str:
    """The system Chromium; a skip only where it cannot be installed here (no apt-get, or not root)."""
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip("no /usr/bin/chromium, and it cannot be installed here (needs apt-get as root: make chromium)")
    pytest.fail("no /usr/bin/chromium: `make chromium` installs it (make test does)")


@contextlib.contextmanager
def page(base: str, width: int = 1280, height: int = 900) -> Iterator[tuple[Any, list[str]]]:
    """A Playwright page in headless Chromium that may reach ``base`` and nothing else, and the list of the
    requests it aborted."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        # a fresh profile each time (Playwright's persistent context is its --user-data-dir)
        context = p.chromium.launch_persistent_context(profile, executable_path=chromium_or_skip(), args=FLAGS,
                                                       viewport={"width": width, "height": height})
        try:
            pg = context.pages[0] if context.pages else context.new_page()
            blocked: list[str] = []

            def only_local(route: Any) -> None:
                url = route.request.url
                if url.startswith((base, "data:", "blob:")):
                    route.continue_()
                else:
                    blocked.append(url)
                    route.abort()

            context.route("**/*", only_local)
            yield pg, blocked
        finally:
            context.close()


def ready(pg: Any, runs: int) -> None:
    """Wait until the page has shown its ``runs``-th trace (or failed to start)."""
    pg.wait_for_function(f"document.body.dataset.state === 'failed' || Number(document.body.dataset.runs) >= {runs}",
                         timeout=60_000)
    assert pg.get_attribute("body", "data-state") != "failed", pg.inner_text("#error")


def shown(pg: Any) -> dict[str, Any]:
    """What the page shows: params, the concat sums, the skip rows, the diagram's node titles."""
    out: dict[str, Any] = pg.evaluate("""() => ({
      params: document.getElementById('params').textContent,
      sums: [...document.querySelectorAll('#concats td.sum')].map(td => td.textContent),
      skips: [...document.querySelectorAll('#skips tr')].slice(1).map(tr => [...tr.cells].map(c => c.textContent)),
      nodes: [...document.querySelectorAll('#diagram svg g.node text[font-weight="bold"]')].map(t => t.textContent),
      cats: [...document.querySelectorAll('#diagram svg text')].map(t => t.textContent)
        .filter(t => t.startsWith('cat ')),
      svg: document.querySelector('#diagram svg') !== null,
      error: document.getElementById('error').hidden ? '' : document.getElementById('error').textContent,
    })""")
    return out


def drawn(t: Trace) -> tuple[set[str], list[str]]:
    """What the units diagram of ``t`` must show: a node per unit (the time embedding is written in the
    conditioning note beside the U instead), and each concat's sum on its consumer."""
    cats = ["cat " + " + ".join(str(op.channels) for op in c.inputs) + f" = {c.channels}" for c in t.concats]
    return {u.path for u in t.units if u.kind != "mlp"}, sorted(cats)


def expected(t: Trace) -> dict[str, Any]:
    return {"params": f"{t.params:,}", "sums": [concat_sum(c) for c in t.concats],
            "skips": [[str(s.index), s.unit, str(s.channels), fmt_size(s.size), s.to or "(never popped)"]
                      for s in t.skips]}


def test_the_page_traces_sd15_and_follows_layers_per_block() -> None:
    config = {**unetviz.PRESETS["sd15"].config, "layers_per_block": 3}
    before, after = unetviz.trace("sd15"), unetviz.trace(config)
    with served(built()) as base, page(base) as (pg, blocked):
        pg.goto(base + "app.html#preset=sd15")
        ready(pg, 1)
        first = shown(pg)
        assert {k: first[k] for k in ("params", "sums", "skips")} == expected(before)
        assert first["svg"] and not first["error"]
        units = {u.path for u in before.units}
        assert drawn(before) == (set(first["nodes"]) & units, sorted(first["cats"]))
        field = pg.locator('textarea[data-key="layers_per_block"]')
        field.fill("3")
        field.press("Enter")
        ready(pg, 2)
        now = shown(pg)
        assert {k: now[k] for k in ("params", "sums", "skips")} == expected(after)
        units = {u.path for u in after.units}
        assert drawn(after) == (set(now["nodes"]) & units, sorted(now["cats"]))
        assert len(now["nodes"]) > len(first["nodes"])  # a resnet more per block: more nodes in the diagram
        # the first up block takes four inputs now: four concats, the last of them 1280 + 640
        assert [s for s, c in zip(now["sums"], after.concats, strict=True) if c.consumer.startswith("up_blocks.1.")] \
            == [concat_sum(c) for c in after.concats if c.consumer.startswith("up_blocks.1.")]
        assert sum(c.consumer.startswith("up_blocks.1.") for c in after.concats) == 4
        assert json.loads(pg.input_value("#json"))["layers_per_block"] == 3
        assert "layers_per_block" in pg.evaluate("location.hash")
        # an invalid value: unetviz's one-line error, the figures kept but marked stale
        field.fill("abc")
        field.press("Enter")
        pg.wait_for_selector("#error:not([hidden])")
        try:
            unetviz.trace({**config, "layers_per_block": "abc"})
        except unetviz.UnetvizError as e:
            message = str(e)
        assert pg.inner_text("#error") == f"error: {message}" and "\n" not in message
        # the link now holds the bad value: opened afresh, it shows the error and the fields, the value in its own
        pg.reload()
        pg.wait_for_selector("#error:not([hidden])")
        assert pg.inner_text("#error") == f"error: {message}"
        assert pg.input_value('textarea[data-key="layers_per_block"]') == "abc"
        assert not blocked, blocked


def test_a_link_loads_its_config_and_shows_a_failure() -> None:
    """A link's hash is the state: nnU-Net's 2-D lung U-Net at 500x500, where a skip and the upsampled map
    differ; the page names the module and both sizes, as unetviz does."""
    t = unetviz.trace("nnunet-lung-2d", size=500)
    assert t.error is not None
    with served(built()) as base, page(base, width=390, height=844) as (pg, blocked):
        pg.goto(base + "app.html#preset=nnunet-lung-2d&size=500")
        ready(pg, 1)
        failure = pg.inner_text("#failure")
        assert t.error.message in failure and f"at {t.error.at}" in failure
        widths = unetviz.PRESETS["nnunet-lung-2d"].config["arch_kwargs"]["features_per_stage"]
        assert pg.input_value('textarea[data-key="arch_kwargs.features_per_stage"]') == ", ".join(map(str, widths))
        assert not blocked


# --- the page's Python side, natively -------------------------------------------------------------------------------
def test_bridge_answers_the_view_or_the_one_line_error() -> None:
    b = bridge()
    presets = json.loads(b.presets())
    assert list(presets) == list(unetviz.PRESETS)
    config = {**presets["sdxl"], "transformer_layers_per_block": [1, 2, 4]}
    answer = json.loads(b.run(json.dumps(config), "sdxl"))
    t = unetviz.trace(config)
    assert answer["view"]["params"] == t.params and answer["view"]["macs"] == t.macs
    assert answer["view"]["preset"] == "sdxl (edited)" and answer["view"]["dot"].startswith("digraph")
    wrong = {"error": "config: got a JSON list; allowed: a JSON object of config keys"}
    assert json.loads(b.run("[1]", "sd15")) == wrong
    bad = json.loads(b.run(json.dumps({**config, "cross_attention_dim": "wide"}), "sdxl"))["error"]
    with pytest.raises(unetviz.UnetvizError) as e:
        unetviz.trace({**config, "cross_attention_dim": "wide"})
    assert bad == str(e.value)
    # a config that does not trace keeps its fields, the bad value in its own
    knobs = json.loads(b.run(json.dumps({**presets["sd15"], "layers_per_block": "abc"}), "sd15"))["controls"]["knobs"]
    assert {"key": "layers_per_block", "label": "layers per block", "value": "abc", "given": True} in knobs


def test_levels_add_and_remove_the_deepest_level() -> None:
    b = bridge()
    sd15 = dict(json.loads(b.presets())["sd15"])
    deeper = json.loads(b.run(json.dumps(sd15), "sd15", levels=5))["config"]
    assert deeper["block_out_channels"] == [*sd15["block_out_channels"], sd15["block_out_channels"][-1]]
    assert deeper["down_block_types"][-1] == sd15["down_block_types"][-1]
    assert deeper["up_block_types"][1:] == sd15["up_block_types"]  # up blocks run from the deepest level
    shape = SHAPES[("monai", "UNet")]
    monai = dict(unetviz.PRESETS["monai-spleen-ct"].config)
    fewer = with_levels(monai, shape, 3)
    assert fewer["channels"] == monai["channels"][:3] and fewer["strides"] == monai["strides"][:2]
    assert levels(fewer, shape) == 3 and unetviz.trace(fewer).error is None
    with pytest.raises(unetviz.UnetvizError, match="levels: got 0"):
        with_levels(monai, shape, 0)


def test_every_preset_has_controls_and_a_view() -> None:
    for name in unetviz.PRESETS:
        t = unetviz.trace(name)
        c = controls(t, dict(unetviz.PRESETS[name].config))
        assert len(c["knobs"]) >= 4, f"{name}: declare its keys in unetviz.render.playground.SHAPES"
        v = view(t)
        assert [x["sum"] for x in v["concats"]] == [concat_sum(x) for x in t.concats]
        assert all(int(x["sum"].split(" = ")[0]) == sum(int(p) for p in x["sum"].split(" = ")[1].split(" + "))
                   for x in v["concats"] if not x["terms"].count("cropped")), name
    assert all(isinstance(k, Knob) for s in SHAPES.values() for k in s.knobs)
