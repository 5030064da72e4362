"""Sphinx configuration of the unetviz site (the source tree is written by ``generate.py``)."""

from __future__ import annotations

project = "unetviz"
author = "unetviz contributors"
copyright = "unetviz contributors"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx_copybutton"]
# the pages are full of command lines: docutils' smart quotes would turn `--depth` in prose into an en-dash,
# and a pasted `unetviz table sdxl –depth blocks` fails
smartquotes = False
# the copy button copies the command, not the prompt or the output after it (a block with no "$ " line is
# copied whole)
copybutton_prompt_text = "$ "
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# notebooks run on every build; a failing cell fails the build
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True, "undoc-members": False}

html_theme = "furo"
html_title = "unetviz"
html_static_path = ["_static"]
html_css_files = ["uvdocs.css"]
html_js_files = ["uvdocs.js"]
html_theme_options = {"sidebar_hide_name": False}
language = "en"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
suppress_warnings = ["mystnb.unknown_mime_type"]


def _page_language(app: object, pagename: str, templatename: str, context: dict[str, object],
                   doctree: object) -> None:
    """A page whose name ends in ``.zh`` (the Chinese walkthrough) is marked ``lang="zh"``, so browsers,
    screen readers and fonts treat it as Chinese; every other page is English."""
    context["language"] = "zh" if pagename.endswith(".zh") else "en"


def setup(app: object) -> None:
    app.connect("html-page-context", _page_language)  # type: ignore[attr-defined]
