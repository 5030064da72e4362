"""Sphinx configuration of the unetviz site (the source tree is written by ``generate.py``)."""

from __future__ import annotations

project = "unetviz"
author = "unetviz contributors"
copyright = "unetviz contributors"

extensions = ["myst_nb", "sphinx.ext.autodoc"]
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
exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
suppress_warnings = ["mystnb.unknown_mime_type"]
