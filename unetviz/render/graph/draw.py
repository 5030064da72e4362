"""``unetviz graph``: diagrams of a trace at three details, with labelled skip edges.

``blocks``: one node per block heading (plus the head and tail units under no heading), laid out as
a U; ``units``: one node per unit, the same U; ``layers``: every layer, drawn as data flow (each
edge from the layer's recorded input producer), clustered per unit and block, in columns per
resolution level that step down and back up. The U layout is in ``units.py`` and ``layout.py``,
the layer diagram in ``flow.py``, ``bands.py`` and ``flowdot.py``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from ...core.errors import UnetvizError, bad_value
from ...core.records import Trace
from ..explain import input_text
from .flowdot import flow_graph
from .layout import DETAILS
from .units import u_graph

FORMATS = (".svg", ".png", ".pdf", ".dot")
DEFAULT_DETAIL = "units"

__all__ = ["DEFAULT_DETAIL", "DETAILS", "FORMATS", "fit_width", "notebook_svg", "to_graphviz", "write_graph"]


def _check_detail(detail: str) -> None:
    if detail not in DETAILS:
        raise bad_value("graph: --detail", detail, DETAILS)


def _title(trace: Trace, nodes: int, detail: str) -> str:
    name = trace.preset or trace.model
    what = {"blocks": "blocks", "units": "units", "layers": "layers"}[detail]
    parts = [f"{name} ({trace.family}, {trace.source})", f"input {input_text(trace)}",
             f"{nodes} {what}", f"{len(trace.skips)} skips", f"{trace.params:,} params"]
    if detail == "blocks":  # the narrow U of blocks: a title on two lines, so the title is not the widest thing
        return parts[0] + "\n" + " · ".join(parts[1:])
    return " · ".join(parts)


COLORS = ("kind", "macs")


def _build(trace: Trace, detail: str, two_pass: bool = False,
           color: str = "kind") -> tuple[Any, int, int, list[str]]:
    """The Digraph, its number of diagram nodes (blocks, units or layers), of drawn skip edges, and
    the edges to add after layout (layers detail, ``two_pass``)."""
    _check_detail(detail)
    if color not in COLORS:
        raise bad_value("graph: --color", color, COLORS)
    if color == "macs" and detail == "layers":
        raise UnetvizError("graph: --color macs colours blocks or units; allowed with --detail blocks or units")
    if detail == "layers":
        g, flow, late = flow_graph(trace, _title(trace, len(trace.layers), detail), two_pass)
        return g, len(trace.layers), sum(e.role == "skip" for e in flow.edges), late
    g, layout = u_graph(trace, detail, lambda n: _title(trace, n, detail), color)
    # every node drawn, the embeddings beside the U included: the count verify and the table give
    return g, len(layout.items) + len(layout.cond), sum(x.head is not None and x.index >= 0 for x in layout.links), []


def to_graphviz(trace: Trace, detail: str = DEFAULT_DETAIL, color: str = "kind") -> Any:
    """A ``graphviz.Digraph`` of the trace; ``detail``: ``blocks``, ``units`` or ``layers``; ``color``:
    ``kind`` or ``macs`` (a heat map of where the compute is)."""
    return _build(trace, detail, color=color)[0]


def _two_pass(g: Any, late: list[str], fmt_: str) -> bytes:
    """dot places the nodes without the long edges; ``neato -n2`` keeps every position and cluster box
    and draws those edges on top, as straight lines."""
    placed = _run(["dot", "-Tdot"], g.source.encode("utf-8")).decode("utf-8")
    end = placed.rstrip().rfind("}")
    return _run(["neato", "-n2", f"-T{fmt_}"], (placed[:end] + "".join(late) + "}\n").encode("utf-8"))


def _run(cmd: list[str], data: bytes) -> bytes:
    import subprocess

    try:
        done = subprocess.run(cmd, input=data, capture_output=True, check=False)
    except OSError as e:
        raise UnetvizError(f"graph: Graphviz's `{cmd[0]}` could not run: {e}") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise UnetvizError(f"graph: Graphviz's `{cmd[0]}` failed: {tail[0]}")
    return done.stdout


def notebook_svg(svg: str) -> str:
    """Graphviz's SVG made to scale with its container: ``width="100%"`` capped at its natural width,
    the height following from the viewBox, so a wide diagram fits the notebook's width."""
    m = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if m is None:
        return svg
    style = f"max-width:{float(m[1]):.0f}pt;height:auto"
    return svg.replace(m[0], f'<svg width="100%" style="{style}"', 1)


def fit_width(g: Any) -> Any:
    """``g`` (a ``graphviz.Digraph``) displayed in a notebook at the notebook's width: Jupyter asks
    ``_repr_mimebundle_`` and gets the SVG of ``notebook_svg``. Everything else about ``g`` is kept."""

    def bundle(include: Any = None, exclude: Any = None, **_: Any) -> dict[str, str]:
        return {"image/svg+xml": notebook_svg(g.pipe(format="svg", encoding="utf-8"))}

    g._repr_mimebundle_ = bundle
    return g


def _pipe(g: Any, fmt_: str, late: list[str]) -> bytes:
    if shutil.which("dot") is None:
        raise UnetvizError("graph: Graphviz's `dot` is not installed; install it (Debian/Ubuntu: `apt-get"
                           " install graphviz`, macOS: `brew install graphviz`) or write .dot with --out FILE.dot")
    if late:
        return _two_pass(g, late, fmt_)
    import graphviz

    try:
        data: bytes = g.pipe(format=fmt_, quiet=True)
    except graphviz.ExecutableNotFound as e:  # dot vanished between the check and the call
        raise UnetvizError(f"graph: Graphviz's `dot` could not run: {e}") from None
    except graphviz.CalledProcessError as e:
        tail = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise UnetvizError(f"graph: Graphviz's `dot` failed: {tail[0]}") from None
    return data


def write_graph(trace: Trace, out: Path, detail: str = DEFAULT_DETAIL, color: str = "kind") -> str:
    """Write the diagram to ``out`` (.svg/.png/.pdf through Graphviz's ``dot``, or .dot source only)."""
    ext = out.suffix.lower()
    if ext not in FORMATS:
        raise bad_value("graph: --out extension", ext or out.name, FORMATS)
    g, nodes, skips, late = _build(trace, detail, two_pass=ext != ".dot", color=color)
    data = g.source.encode("utf-8") if ext == ".dot" else _pipe(g, ext[1:], late)
    try:
        out.write_bytes(data)
    except OSError as e:
        raise UnetvizError(f"graph: --out {out}: cannot write: {e.strerror or e}") from None
    kb = max(1, round(out.stat().st_size / 1024))
    return f"wrote {out} ({nodes} {detail}, {skips} skip edges, {kb} KB)"
