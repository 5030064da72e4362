"""The docs site: generated from unetviz at build time, built by Sphinx with warnings as errors.

One module-scoped build (generator, then ``sphinx -W``, notebooks executed) is shared by the tests;
the hand-typed-number check reads the page sources themselves.
"""

from __future__ import annotations

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
