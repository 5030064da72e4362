"""The docs site: generated from unetviz at build time, built by Sphinx with warnings as errors.

One module-scoped build (generator, then ``sphinx -W``, notebooks executed) is shared by the tests;
the hand-typed-number check reads the page sources themselves.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unetviz.presets import PRESETS

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "docs" / "site"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(generated source folder, built HTML folder): ``make docs`` in a temporary folder."""
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_nb")
    base = tmp_path_factory.mktemp("site")
    src, out = base / "src", base / "html"
    subprocess.run([sys.executable, str(SITE / "generate.py"), str(src)], check=True, cwd=ROOT)
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return src, out


def _text(html: str) -> str:
    """Visible text of an HTML page, roughly: tags dropped, entities of the digits we check kept."""
    return re.sub(r"<[^>]+>", " ", html)


def test_every_preset_has_a_page_with_a_diagram(site: tuple[Path, Path]) -> None:
    src, out = site
    for name in PRESETS:
        page = (out / "presets" / f"{name}.html").read_text(encoding="utf-8")
        assert "<svg" in page, f"{name}: no diagram"
        assert "uv-skip" in page or not _skips(name), f"{name}: no skip edges"
        assert "class='uv'" in page or 'class="uv"' in page, f"{name}: no unit table"
        key = re.sub(r"\W", "", name)
        assert (src / "_static" / "diagrams" / f"{key}units.svg").is_file(), name
    index = (out / "presets" / "index.html").read_text(encoding="utf-8")
    assert all(f"{name}.html" in index for name in PRESETS)


def _skips(name: str) -> int:
    import unetviz

    return sum(s.to is not None for s in unetviz.trace(name).skips)  # a skip never popped has no edge


def test_diagram_nodes_link_to_table_rows(site: tuple[Path, Path]) -> None:
    _, out = site
    page = (out / "presets" / "sd15.html").read_text(encoding="utf-8")
    links = set(re.findall(r'xlink:href="#(u-[^"]+)"', page))
    ids = set(re.findall(r"id='(u-[^']+)'", page))
    assert len(links) > 40 and links <= ids, sorted(links - ids)[:5]
    assert page.count('class="edge uv-skip"') == _skips("sd15")


def test_the_sums_appear_where_the_tutorials_say(site: tuple[Path, Path]) -> None:
    _, out = site
    lpb = _text((out / "tutorials" / "layers-per-block.html").read_text(encoding="utf-8"))
    assert "1024, 1024, 768" in lpb
    assert re.search(r"takes\s+1024\s*=\s*512", lpb) and re.search(r"takes\s+768\s*=\s*512", lpb)
    for page in ("sd15-skips.html", "sd15-skips.zh.html"):
        text = _text((out / "tutorials" / page).read_text(encoding="utf-8"))
        assert "2560/2560/1920" in text, page
        assert re.search(r"1920\s*=\s*1280", text), page
    ron = _text((out / "tutorials" / "ronneberger.html").read_text(encoding="utf-8"))
    assert "572x572" in ron and "388x388" in ron
    compare = _text((out / "tutorials" / "sd15-sd21-sdxl.html").read_text(encoding="utf-8"))
    assert "8 -&gt; 5/10/20/20" in compare or "8 -> 5/10/20/20" in compare
    # nnU-Net's network from its plans: the in-plane last stride, the skips, its own estimate beside unetviz's
    nn = _text((out / "tutorials" / "nnunet.html").read_text(encoding="utf-8"))
    assert "80x192x160" in nn and "5x12x10" in nn and "5x6x5" in nn and "528,211,200 elements" in nn
    assert "skip" in nn and "training" in nn


def test_notebooks_ran_and_their_outputs_are_on_the_site(site: tuple[Path, Path]) -> None:
    _, out = site
    names = sorted(p.stem for p in (ROOT / "examples").glob("*.ipynb"))
    assert len(names) >= 4
    for name in names:
        page = (out / "notebooks" / f"{name}.html").read_text(encoding="utf-8")
        assert "cell_output" in page, name
    assert "agrees:" in (out / "notebooks" / "04-verify.html").read_text(encoding="utf-8")  # the verdict is shown


def test_reference_pages(site: tuple[Path, Path]) -> None:
    _, out = site
    cli = _text((out / "reference" / "cli.html").read_text(encoding="utf-8"))
    import typer

    from unetviz.cli import app

    for name in getattr(typer.main.get_command(app), "commands", {}):
        assert f"unetviz {name}" in cli
    api = (out / "reference" / "api.html").read_text(encoding="utf-8")
    # the entry points under the names people import (unetviz.trace, not unetviz.api.trace), the records' fields,
    # the input declaration and the size grammar
    for name in ("unetviz.trace", "unetviz.weights", "unetviz.cost", "unetviz.diff", "unetviz.inspect",
                 "unetviz.check", "unetviz.keymap", "unetviz.verify", "unetviz.core.inputs.InputSpec",
                 "unetviz.core.inputs.read_size"):
        assert f'id="{name}"' in api, name
    assert "unetviz.api.trace" not in api and "in_channels" in api and "unetviz.analysis.diff.diff" in api


def test_cli_page_pastes_as_typed(site: tuple[Path, Path]) -> None:
    """Options keep their two hyphens (no smart en-dash), defaults are the values one types (``rich``, not
    ``Format.rich``), and each command's examples are commands, one a line."""
    _, out = site
    page = (out / "reference" / "cli.html").read_text(encoding="utf-8")
    text = html.unescape(_text(page))
    assert not re.findall(r"[\u2013\u2014][a-z]", text), re.findall(r".{20}[\u2013\u2014][a-z].{10}", text)[:3]
    assert "--sizes 512px" in text and "--depth blocks" in text
    assert not re.search(r"\b[A-Z]\w*(Format|Detail|Depth|Dtype)\.\w+|\bFormat\.\w+", text)
    assert re.search(r"<code[^>]*><span class=\"pre\">rich</span></code>", page)
    import typer

    from unetviz.cli import app

    for cmd in getattr(typer.main.get_command(app), "commands", {}).values():
        for p in cmd.params:
            for opt in p.opts:
                if opt.startswith("--"):
                    assert opt in text, opt


def test_the_site_has_its_pages_and_marks_the_chinese_one(site: tuple[Path, Path]) -> None:
    _, out = site
    changelog = (out / "changelog.html").read_text(encoding="utf-8")
    versions = re.findall(r"^## (.+)$", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert versions and all(html.escape(v, quote=False) in changelog for v in versions), versions
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="changelog.html"' in index and 'href="install.html"' in index
    # the sidebar's section headings (toctree captions)
    assert all(f">{c}<" in index for c in ("Get started", "Tutorials", "Reference", "Project"))
    zh = (out / "tutorials" / "sd15-skips.zh.html").read_text(encoding="utf-8")
    assert re.search(r"<html[^>]*\blang=\"zh\"", zh) and re.search(r"<html[^>]*\blang=\"en\"", index)
    # its computed sections are Chinese too: the explanation, the arithmetic, the tables (the diagram's labels
    # are module names and figures, as in the code)
    body = _text(re.sub(r"<svg.*?</svg>", " ", zh.split("<article", 1)[1], flags=re.S))
    for english in ("pops", "previous", "skip #", "The encoder", "pushed by", "open the SVG", "heads x", "shortcut",
                    "expects a"):
        assert english not in body, english
    assert "弹出" in body and "跨层特征" in body and "入栈者" in body
    assert "copybutton" in index  # a copy button on every code block
    install = (out / "install.html").read_text(encoding="utf-8")
    svgs = re.findall(r"src=['\"]_static/terminal/([^'\"]+\.svg)", install)
    assert len(svgs) >= 3 and all((out / "_static" / "terminal" / s).is_file() for s in svgs)
    assert "<svg" in (out / "_static" / "terminal" / svgs[0]).read_text(encoding="utf-8")


SKIPPED = ("verify",)
"""Commands the site shows that its test does not run: ``verify`` builds the real model (torch, diffusers,
seconds to minutes per model); test_verify.py runs it."""


def site_commands(out: Path) -> dict[str, tuple[int, str]]:
    """Every ``unetviz ...`` command on the built site (code blocks' lines and inline code), with the exit status
    its page states (1 where the text around it says the model fails, else 0) and a page it is on."""
    found: dict[str, tuple[int, str]] = {}
    for page in sorted(out.rglob("*.html")):
        rel = page.relative_to(out).as_posix()
        if rel.startswith(("_static", "_sources", "genindex", "search", "changelog")):
            continue  # the changelog is history: the commands as they were, and syntax (`presets [--names]`)
        doc = re.sub(r"<h[1-6].*?</h[1-6]>", " ", page.read_text(encoding="utf-8"), flags=re.S)
        for block in re.split(r"</(?:p|pre|li|td)>", doc):
            said = html.unescape(_text(block))
            expect = 1 if re.search(r"(exit|exits with) status\s*1\b|exit status 1", said) else 0
            spans = re.findall(r"<code[^>]*>(.*?)</code>", block, re.S)
            codes = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in spans]
            pre = re.findall(r"<pre[^>]*>(.*)", block, re.S)
            # highlighted code is spans inside the text: dropped, not made spaces (`unetviz.trace` stays one word)
            lines = [x for p in pre for x in html.unescape(re.sub(r"<[^>]+>", "", p)).splitlines()]
            for raw in [*codes, *lines]:
                cmd = " ".join(re.sub(r"\s#\s.*$", "", raw).strip().removeprefix("$ ").split())
                placeholder = any(re.fullmatch(r"\[?[A-Z][A-Z_]*\]?", a) for a in cmd.split()[1:])  # FILE, A B
                if not cmd.startswith("unetviz ") or placeholder:
                    continue
                if len(cmd.split()) < 3 and cmd != "unetviz presets":
                    continue  # `unetviz diff` in a sentence names a command; it is not one to run
                found.setdefault(cmd, (expect, rel))
    return found


def _fixtures(folder: Path) -> None:
    """The files the site's examples name: a diffusers config folder and two checkpoints (headers only: unetviz
    reads names and shapes, never the data)."""
    import json
    import math
    import struct

    import unetviz

    (folder / "unet").mkdir()
    (folder / "unet" / "config.json").write_text(json.dumps(PRESETS["sd15"].config), encoding="utf-8")

    def header_only(path: Path, tensors: dict[str, tuple[int, ...]]) -> None:
        head, at = {}, 0
        for k, shape in tensors.items():
            n = 2 * math.prod(shape)
            head[k] = {"dtype": "F16", "shape": list(shape), "data_offsets": [at, at + n]}
            at += n
        raw = json.dumps(head).encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw)

    header_only(folder / "unet.safetensors", dict(unetviz.weights("sd15").tensors))
    original = unetviz.weights("sd15", naming="original").tensors
    header_only(folder / "v1-5-pruned.safetensors", {f"model.diffusion_model.{k}": s for k, s in original.items()})
    # a kohya LoRA for SD 1.5 (`unetviz fit`): rank 4 on every attention projection
    lora: dict[str, tuple[int, ...]] = {}
    for key, (out, into) in ((k, s) for k, s in unetviz.weights("sd15").tensors.items()
                             if ".attn" in k and k.endswith(("to_q.weight", "to_k.weight", "to_v.weight"))):
        name = "lora_unet_" + key.removesuffix(".weight").replace(".", "_")
        lora.update({f"{name}.lora_down.weight": (4, into), f"{name}.lora_up.weight": (out, 4), f"{name}.alpha": ()})
    header_only(folder / "lora.safetensors", lora)
    # the nnU-Net tutorial's plans file, with its dataset.json, and a trained model's folder
    import shutil

    plans = Path(__file__).parent / "data" / "nnunet" / "Dataset004_Hippocampus"
    results = folder / "nnUNet_results" / "Dataset006_Lung" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    results.mkdir(parents=True)
    for where, name in ((folder, "nnUNetPlans.json"), (results, "plans.json")):
        shutil.copy(plans / "nnUNetPlans.json", where / name)
        shutil.copy(plans / "dataset.json", where / "dataset.json")


def test_every_command_on_the_site_runs(site: tuple[Path, Path], tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io
    import shlex

    from unetviz.cli import main

    _, out = site
    commands = site_commands(out)
    assert len(commands) > 40 and "unetviz table sdxl --depth blocks" in commands
    assert any(e == 1 for e, _ in commands.values())  # sizes.md: a size at which the model fails
    _fixtures(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    bad = []
    for cmd, (expect, page) in commands.items():
        argv = shlex.split(cmd.split(" > ")[0])[1:]  # a redirection is the shell's, not the command's
        if argv[0] in SKIPPED:
            continue
        said = io.StringIO()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said), pytest.raises(SystemExit) as e:
            main(argv)  # the console entry point, in this process: the traces are cached across commands
        if e.value.code != expect:
            bad.append(f"{page}: {cmd}: exit {e.value.code}, expected {expect}: {said.getvalue()[-300:]!r}")
    assert not bad, "\n".join(bad)


ALLOWED = {"2015", "1.5", "2.1"}
"""Numbers that are names (the 2015 U-Net, SD 1.5, SD 2.1), not figures."""


def hand_typed_numbers(text: str) -> list[str]:
    """Digit runs in a page source outside Jinja placeholders, fenced code and code spans, links'
    targets and identifiers (``sd15``, ``Conv2d``, ``attn2``)."""
    text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{##.*?##\}", " ", text, flags=re.S)
    text = re.sub(r"^(```|:::).*?^\1", " ", text, flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return [m for m in re.findall(r"(?<![\w.#-])\d+(?:\.\d+)?(?![\w])", text) if m not in ALLOWED]


@pytest.mark.parametrize("page", sorted(p.relative_to(SITE).as_posix() for p in SITE.glob("tutorials/*.md")))
def test_no_number_in_a_tutorial_is_typed_by_hand(page: str) -> None:
    found = hand_typed_numbers((SITE / page).read_text(encoding="utf-8"))
    assert not found, f"{page}: numbers typed by hand: {found}"


def test_the_number_scanner() -> None:
    assert hand_typed_numbers("takes 768 channels") == ["768"]
    assert hand_typed_numbers("takes {{ c.channels }} in `sd15`, Conv2d, SD 1.5, the 2015 U-Net") == []
    assert hand_typed_numbers("```json\n{\"a\": 64}\n```\n") == []
