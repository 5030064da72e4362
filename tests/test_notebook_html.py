"""The notebook view (issue 22 item 6): the HTML table reads the same under Jupyter's and nbconvert's stylesheets
(left-aligned, numbers right-aligned, a concat's sum on a line of its own), and the examples render."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import unetviz

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_table_wins_over_notebook_stylesheets() -> None:
    html = unetviz.trace("sd15")._repr_html_()
    assert "table.uv{margin-left:0 !important" in html and "text-align:left !important" in html
    assert ".uv .r{text-align:right !important}" in html
    # each concat row is followed by a full-width row holding its arithmetic, not a clipped note cell
    rows = re.findall(r"<tr class='concat'>(.*?)</tr>", html)
    assert len(rows) == 2 * len(unetviz.trace("sd15").concats)
    assert "colspan=" in rows[1] and "1920 = 1280 (previous, up_blocks.1.attentions.1)" in html


def test_the_examples_render_under_nbconvert(tmp_path: Path) -> None:
    pytest.importorskip("nbconvert")
    notebook = tmp_path / "01.ipynb"
    shutil.copy(EXAMPLES / "01-trace-a-preset.ipynb", notebook)
    r = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--execute", str(notebook)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "01.html").read_text(encoding="utf-8")
    assert re.search(r"<table class=[\"']uv[\"']", html) and "torch imported: False" in html
