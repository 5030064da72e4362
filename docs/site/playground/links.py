"""Links into the playground from the site's pages: ``{{ playground("sd15", layers_per_block=3) }}``.

A link carries the preset and the keys changed from its config in the URL's hash, as the page writes it
itself; the config is traced while the site builds, so a link to a config unetviz rejects fails the build.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode

import uvdocs

import unetviz

APP = "playground/app.html"


def playground_url(preset: str, size: str = "", detail: str = "", **changes: Any) -> str:
    """The playground's address, relative to the page being rendered, with ``preset`` changed by ``changes``."""
    config = {**unetviz.PRESETS[preset].config, **changes}
    unetviz.trace(config, size=size or None)  # raises UnetvizError on a config the page would reject
    query = {"preset": preset}
    if changes:
        query["set"] = json.dumps(changes, separators=(",", ":"))
    if size:
        query["size"] = size
    if detail:
        query["detail"] = detail
    return f"{uvdocs.PAGE['root']}{APP}#" + urlencode(query)


def playground(preset: str, text: str = "", size: str = "", detail: str = "", **changes: Any) -> str:
    """A link into the playground (``text``: its words, Markdown code spans allowed; by default the changes, as
    ``key = value``). Raw HTML: a Markdown link to a file Sphinx does not build would be a broken cross-reference."""
    words = text or ", ".join(f"`{k} = {json.dumps(v)}`" for k, v in changes.items()) or f"`{preset}`"
    code = r"<code class='docutils literal notranslate'>\1</code>"
    shown = re.sub(r"`([^`]+)`", code, html.escape(words, quote=False))
    url = html.escape(playground_url(preset, size, detail, **changes))
    return f"<a class='uv-play reference external' href=\"{url}\">{shown}</a>"


def playground_trace(preset: str, size: str = "", **changes: Any) -> Any:
    """The trace the playground shows for ``preset`` changed by ``changes`` (the figures a link's words quote)."""
    return unetviz.trace({**unetviz.PRESETS[preset].config, **changes}, size=size or None)


def playground_cats(preset: str, block: str, **changes: Any) -> list[Any]:
    """The concats inside ``block`` of ``preset`` changed by ``changes``."""
    from unetviz.core.records import within

    return [c for c in playground_trace(preset, **changes).concats if within(c.consumer, block)]


def failing_size(preset: str) -> str:
    """The largest square size below ``preset``'s own at which it fails (a size its downsampling does not divide)."""
    own = unetviz.trace(preset).in_size[-1]
    at = next(s for s in range(own - 1, 0, -1) if uvdocs.failing(preset, s))
    return str(at)


CONTEXT = {"playground": playground, "playground_url": playground_url, "failing_size": failing_size,
           "playground_trace": playground_trace, "playground_cats": playground_cats}
