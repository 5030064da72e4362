"""The functions the site's pages call while it builds: every number, table and diagram comes from here.

Pages are Jinja templates of MyST Markdown (``{{ sums("sd15", "up_blocks.1") }}``); ``generate.py``
renders them with ``CONTEXT``. Tables and diagrams are raw HTML blocks; figures are plain text.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import unetviz
from unetviz.core.inputs import InputSpec
from unetviz.core.records import Concat, Operand, Trace, Unit, fmt_size, within
from unetviz.families import lookup
from unetviz.presets import PRESETS
from unetviz.render.columns import COLUMNS
from unetviz.render.explain import explain as explain_lines
from unetviz.render.explain import input_text
from unetviz.render.rows import build_rows, concat_terms, relative
from unetviz.tracing import input_spec, resolve_named

OUT: dict[str, Path] = {}
"""``OUT["static"]``: where diagrams are written (set by ``generate.py``)."""
PAGE = {"root": ""}
"""``PAGE["root"]``: the relative path from the page being rendered to the site's root (``../``)."""


ROOT = Path(__file__).resolve().parent.parent.parent
ALIASES: dict[str, Any] = {
    "candle-default": {"family": "candle"},
    "candle-v1_5": ROOT / "examples" / "candle-sd15.json",
}
"""Sources that are not presets: candle's struct defaults and its v1_5 config (``examples/``)."""


def preset_input(name: str) -> InputSpec:
    """The input a preset declares (its own, or its family's)."""
    config, preset, _ = resolve_named(name)
    family, kwargs = lookup(config)
    return input_spec(family, preset, kwargs)


VAE_FACTOR = unetviz.trace("sd15").factor
"""Stable Diffusion's VAE: three stride-2 stages, so each side of the latent is an eighth of the image's. Not a
U-Net figure (unetviz does not trace the VAE): the factor the registry declares for Stable Diffusion's input."""


def source(name: str) -> Any:
    return ALIASES.get(name, name)


@cache
def trace(name: str, size: int | None = None) -> Trace:
    """The trace of a preset (or an alias in ``ALIASES``) at ``size`` (default: its own)."""
    t = unetviz.trace(source(name), size=size)
    return replace(t, name=name) if name in ALIASES else t


def blocks(name: str, prefix: str) -> list[str]:
    """The block headings whose path starts with ``prefix`` (``up_blocks.``), in order."""
    return [b for b, _ in trace(name).blocks if b.startswith(prefix)]


def skip_op(c: Concat) -> Operand:
    """The operand of a concat that was popped from the skip stack (else the last one)."""
    return next((op for op in c.inputs if op.skip is not None), c.inputs[-1])


def prev_op(c: Concat) -> Operand:
    """The operand that is not a skip: the running activation."""
    return next(op for op in c.inputs if op is not skip_op(c))


def pusher(name: str, index: int) -> str:
    """The unit that pushed skip ``index``."""
    return trace(name).skips[index].unit


def level_counts(name: str, word: str) -> dict[int, int]:
    """How many blocks each level has, from the block titles (``decoder level 3, ...``)."""
    out: dict[int, int] = {}
    for _, title in trace(name).blocks:
        m = re.match(rf"{word} level (\d+)", title)
        if m:
            out[int(m[1])] = out.get(int(m[1]), 0) + 1
    return out


def notes(name: str, kind: str = "attention") -> list[str]:
    """The distinct notes of the attention (or transformer) units, in forward order."""
    seen: list[str] = []
    for u in trace(name).units:
        if u.kind in (kind, "transformer" if kind == "attention" else kind) and u.note not in seen:
            seen.append(u.note)
    return seen


def tensor(name: str, key: str) -> str:
    """The shape of one state_dict tensor, as ``[320, 768]``."""
    return str(list(unetviz.weights(source(name)).tensors[key]))


def naming_rows(limit: int = 12, prefix: str = "") -> str:
    """diffusers key, original key and shape for SD 1.5 (``unetviz.checkpoints.naming``), or ``""`` when that
    module is not there."""
    try:
        from unetviz.checkpoints.naming import keymap
    except ImportError:
        return ""
    try:  # another issue's module, still changing: the page leaves the section out rather than fail
        pairs = [p for p in keymap(trace("sd15"), trace("sd15-ldm")) if p[0].startswith(prefix)][:limit]
    except unetviz.UnetvizError:
        return ""
    e = html.escape
    rows = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td><td class='r'>{e(str(list(s)))}</td></tr>" for a, b, s in pairs)
    return raw(f"<div class='uv-scroll'><table class='uv'><tr><th>diffusers</th><th>original (ldm)</th>"
               f"<th class='r'>shape</th></tr>{rows}</table></div>")


def unit(name: str, path: str, size: int | None = None) -> Unit:
    """One unit of a trace, by module path."""
    found = [u for u in trace(name, size).units if u.path == path]
    if not found:
        raise KeyError(f"{name}: no unit {path!r}")
    return found[0]


def units(name: str, block: str, kind: str | None = None) -> list[Unit]:
    """The units under ``block`` (a heading or a path prefix), optionally of one kind."""
    out = [u for u in trace(name).units if within(u.path, block) or u.block == block]
    return [u for u in out if kind is None or u.kind == kind or (kind == "attention" and u.kind == "transformer")]


def cats(name: str, block: str = "", size: int | None = None) -> list[Concat]:
    """The concats whose consumer lies within ``block`` (all of them for ``""``)."""
    return [c for c in trace(name, size).concats if not block or within(c.consumer, block)]


def sums(name: str, block: str, sep: str = "/") -> str:
    """``2560/2560/1920``: the channels of each concat in ``block``."""
    return sep.join(str(c.channels) for c in cats(name, block))


def terms(name: str, block: str = "") -> str:
    """The concat arithmetic of ``block`` as a Markdown list (the table's own words)."""
    t = trace(name)
    return "\n".join(f"- `{c.consumer}`: {concat_terms(t, c)}" for c in cats(name, block))


def n(x: int) -> str:
    """``859,520,964``."""
    return f"{x:,}"


def size(s: Iterable[int] | None) -> str:
    """``64x64``."""
    return fmt_size(tuple(s) if s is not None else None)


def config_json(name: str) -> str:
    """The preset's config as the JSON a user would write (inputs, not figures): a key a line."""
    config = PRESETS[name].config if name in PRESETS else json.loads(Path(source(name)).read_text())
    items = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in config.items()]
    return "{\n" + ",\n".join(items) + "\n}"


def error(name: str, at: int) -> str:
    """What fails when ``name`` is traced at ``at`` x ``at`` (``runs`` when nothing does)."""
    e = trace(name, at).error
    return "runs" if e is None else (f"fails at `{e.at}`: " if e.at else "fails: ") + e.message


def failing(name: str, at: int) -> bool:
    return trace(name, at).error is not None


def next_ok(name: str, at: int, step: int = 1) -> int:
    """The smallest size >= ``at`` at which ``name`` runs."""
    s = at
    while failing(name, s):
        s += step
    return s


def ok_sizes(name: str, lo: int, hi: int) -> list[int]:
    """Every square size in ``lo..hi`` at which ``name`` runs."""
    return [s for s in range(lo, hi + 1) if not failing(name, s)]


def slug(path: str) -> str:
    return "u-" + re.sub(r"[^A-Za-z0-9_-]", "-", path)


def raw(html_text: str) -> str:
    """A MyST raw-HTML block (no blank line inside, so Markdown never interrupts it)."""
    body = "\n".join(line for line in html_text.splitlines() if line.strip())
    return "```{raw} html\n" + body + "\n```"


def _cell_class(align: str) -> str:
    return " class='r'" if align == "right" else ""


def table(name: str, block: str = "", depth: str = "units", anchors: bool = False, size: int | None = None) -> str:
    """The unit (or layer) table of a trace, or of one block, as HTML; ``anchors``: each unit row gets
    the id the diagram's nodes link to."""
    e = html.escape
    t = trace(name, size)
    head = "".join(f"<th{_cell_class(c.align)}>{e(c.title)}</th>" for c in COLUMNS)
    out = [f"<div class='uv-scroll'><table class='uv'><tr>{head}</tr>"]
    used: set[str] = set()

    def rid(path: str, give: bool) -> str:
        if not give or slug(path) in used:
            return ""
        used.add(slug(path))
        return f" id='{slug(path)}'"

    for r in build_rows(t, depth):
        if block and not (within(r.path, block) or r.parent == block):
            continue
        if r.kind == "heading":
            out.append(f"<tr class='heading'{rid(r.path, anchors and not r.parent)}><td></td>"
                       f"<td colspan='{len(COLUMNS) - 1}'>{e(relative(r.path, r.parent))}"
                       f" <span class='t'>{e(r.type)}</span></td></tr>")
            continue
        tds = "".join(f"<td{_cell_class(c.align)}>{e(c.cell(r))}</td>" for c in COLUMNS)
        out.append(f"<tr class='{r.kind}'{rid(r.path, anchors and r.kind == 'unit')}>{tds}</tr>")
    out.append("</table></div>")
    return raw("\n".join(out))


def skip_table(name: str, size: int | None = None) -> str:
    """The skip stack, push order: index, pusher, channels, size, popper."""
    e = html.escape
    t = trace(name, size)
    out = ["<div class='uv-scroll'><table class='uv'><tr><th class='r'>#</th><th>pushed by</th><th class='r'>ch</th>"
           "<th class='r'>size</th><th>popped by</th></tr>"]
    out += [f"<tr><td class='r'>{s.index}</td><td>{e(s.unit)}</td><td class='r'>{s.channels}</td>"
            f"<td class='r'>{fmt_size(s.size)}</td><td>{e(s.to or '(never popped)')}</td></tr>" for s in t.skips]
    return raw("\n".join([*out, "</table></div>"]))


def explain(name: str, size: int | None = None) -> str:
    """unetviz's plain-words explanation of the skips, as Markdown."""
    lines = explain_lines(trace(name, size))
    return "\n".join(f"    - {x.strip()}" if x.startswith("  ") else f"- {x}" for x in lines)


_TITLE = re.compile(r'<a xlink:title="([^":]+)(: [^"]*)?"')


def _svg(t: Trace, detail: str, fit: bool) -> str:
    from unetviz.render.graph.draw import to_graphviz

    svg: str = to_graphviz(t, detail=detail).pipe(format="svg", encoding="utf-8")
    svg = svg[svg.index("<svg"):]
    m = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if m is None:
        return svg
    # graphviz's points drawn as CSS pixels: 3/4 of the natural size, 10pt labels at 10px; ``fit``: at most
    # the page's width (the height follows the viewBox)
    w, h = float(m[1]), float(m[2])
    fixed = f'width="{w:.0f}px" height="{h:.0f}px"'
    return svg.replace(m[0], "<svg " + (f'width="100%" style="max-width:{w:.0f}px;height:auto"' if fit else fixed), 1)


def diagram(name: str, detail: str = "units", anchors: bool = False, size: int | None = None, page: str = "",
            fit: bool | None = None, wide: bool = False) -> str:
    """The diagram as inline SVG: tooltips on every node; with ``anchors`` each node links to its table
    row (on ``page``, default this one); skip edges get ``uv-skip`` so hovering one highlights its producer
    and consumer. ``fit`` (default: for block diagrams) scales it to the page's width; else it scrolls.
    ``wide``: on a wide screen it also takes the room of the page's table of contents (a page that hides it)."""
    t = trace(name, size)
    svg = _svg(t, detail, detail == "blocks" if fit is None else fit)
    key = re.sub(r"\W", "", f"{name}{detail}{size or ''}")
    if "static" in OUT:
        (OUT["static"] / f"{key}.svg").write_text(svg, encoding="utf-8")
    if anchors or page:
        paths = {u.path for u in t.units} | {b for b, _ in t.blocks}
        target = f"{PAGE['root']}{page}" if page else ""
        svg = _TITLE.sub(lambda m: m[0] + (f' xlink:href="{target}#{slug(m[1])}" target="_top"'
                                           if m[1] in paths else ""), svg)
    svg = re.sub(r'<g id="skip(\d+)" class="edge"', lambda m: f'<g id="{key}-skip{m[1]}" class="edge uv-skip"', svg)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    href = f"{PAGE['root']}_static/diagrams/{key}.svg"
    link = f"<p class='uv-full'><a href='{href}'>open the SVG at full size</a></p>" if "static" in OUT else ""
    cls = "uv-diagram uv-wide" if wide else "uv-diagram"
    return raw(f"<div class='{cls}' data-trace='{html.escape(name)}'>{svg}</div>{link}")


def weights_table(name: str, prefix: str = "", limit: int | None = None, details: str = "") -> str:
    """State_dict keys and shapes in the real model's order (those under ``prefix``); ``details``: folded
    under that summary line."""
    e = html.escape
    w = unetviz.weights(source(name))
    items = [(k, s) for k, s in w.tensors.items() if k.startswith(prefix)][:limit]
    rows = "".join(f"<tr><td>{e(k)}</td><td class='r'>{e(str(list(s)))}</td></tr>" for k, s in items)
    body = (f"<div class='uv-scroll'><table class='uv'><tr><th>tensor</th><th class='r'>shape</th></tr>{rows}"
            "</table></div>")
    return raw(f"<details><summary>{e(details)}</summary>{body}</details>" if details else body)


def block_params(name: str) -> str:
    """Parameters per block, as HTML (the blocks partition the model)."""
    t = trace(name)
    rows = [r for r in build_rows(t, "blocks")]
    body = "".join(f"<tr><td>{html.escape(r.path)}</td><td>{html.escape(r.type)}</td>"
                   f"<td class='r'>{sum(x.params for x in r.layers):,}</td></tr>" for r in rows)
    return raw(f"<div class='uv-scroll'><table class='uv'><tr><th>block</th><th>type</th><th class='r'>params</th></tr>"
               f"{body}</table></div>")


def cli(argv: str, width: int = 100) -> str:
    """The output of ``unetviz ARGV`` (the real command line, run now), in a text block."""
    import os
    import shlex
    import subprocess
    import sys

    env = {**os.environ, "COLUMNS": str(width)}
    done = subprocess.run([sys.executable, "-m", "unetviz", *shlex.split(argv)], capture_output=True, text=True,
                          env=env, check=False)
    text = (done.stdout + done.stderr).rstrip()
    return f"```text\n$ unetviz {argv}\n{text}\n```"


def diff_text(a: str, b: str, width: int = 100, changed_only: bool = False) -> str:
    from unetviz.analysis.diff import diff
    from unetviz.render.diff import diff_text as render

    return "```text\n" + render(diff(trace(a), trace(b)), width, changed_only).rstrip() + "\n```"


def summary(a: str, b: str) -> str:
    from unetviz.analysis.diff import diff

    return diff(trace(a), trace(b)).summary


CONTEXT: dict[str, Callable[..., Any] | Any] = {
    f.__name__: f for f in (trace, unit, units, cats, sums, terms, n, size, config_json, error, failing, next_ok,
                            ok_sizes, table, skip_table, explain, diagram, weights_table, block_params, cli,
                            diff_text, summary, blocks, skip_op, prev_op, pusher, level_counts, notes, tensor,
                            naming_rows)
}
CONTEXT["PRESETS"] = PRESETS
CONTEXT["VAE_FACTOR"] = VAE_FACTOR
CONTEXT["input_text"] = input_text
CONTEXT["spec"] = preset_input
CONTEXT["weights"] = unetviz.weights
CONTEXT["cost"] = unetviz.cost
