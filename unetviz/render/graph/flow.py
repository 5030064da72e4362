"""The data flow of every layer (``--detail layers``), as plain data: which node feeds which.

Each layer's input edge comes from ``Layer.source``, the producer the tracer recorded: a layer, a
module (its output: the one layer left unconsumed in it, or a ``⊕`` sum of several, e.g. conv2 and
conv_shortcut), ``input``, or a named tensor (``encoder_hidden_states``, ``time_proj``) drawn once as
one node. An empty source is the concat that feeds the unit (its consumer layers) or, inside a unit,
the op that combines the layers run before it (attention's q, k and v). Vector layers inside a unit
(``time_emb_proj``) read the time embedding: they get a short dotted edge into the unit instead of a
long edge from the embedding. ``graph_bands.py`` places the nodes in columns per resolution level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.kinds import kind_of
from ...core.records import Layer, Trace, Unit, within
from ...core.records import fmt_size as fmt
from .layout import _top_units

CONTEXT = "encoder_hidden_states"


@dataclass
class FNode:
    """One node: a layer, a concat, a residual sum, a named tensor, the input, the output."""

    id: str
    role: str
    """layer, holder (a module's own tensors), temb (reads the time embedding), cat, sum, tensor, input,
    output, failure."""
    text: str
    kind: str = "layer"
    group: str = ""
    """The top-level unit (or loose layer) it is drawn in; ``""`` for nodes outside any."""
    layer: int = -1
    tip: str = ""
    notes: list[str] = field(default_factory=list)
    failed: bool = False


@dataclass
class FEdge:
    tail: str
    head: str
    role: str
    """flow, temb, context, skip (from the skip stack), aside (a concat operand kept outside it), invis
    (placement only)."""
    label: str = ""
    id: str = ""


@dataclass
class Flow:
    nodes: dict[str, FNode]
    edges: list[FEdge]
    groups: list[tuple[str, Unit | None, list[str]]]
    """(group path, its unit, node ids in execution order) for every top-level unit or loose layer."""


class _Builder:
    def __init__(self, trace: Trace) -> None:
        self.t = trace
        self.layers = trace.layers
        self.index: dict[str, int] = {}
        for i, x in enumerate(self.layers):
            self.index.setdefault(x.path, i)
        prefixes = {x.path[:k] for x in self.layers for k, ch in enumerate(x.path) if ch == "."}
        self.modules = prefixes
        self.holders = {i for i, x in enumerate(self.layers) if x.path in prefixes}
        self.vector = {i for i, x in enumerate(self.layers) if x.in_size is None and x.tokens is None}
        self.unit_at: list[Unit | None] = [None] * len(self.layers)
        for u in _top_units(trace.units):
            for i in range(u.first, u.last):
                self.unit_at[i] = u
        self.vector_units = {u.path for u in trace.units if all(i in self.vector for i in range(u.first, u.last))}
        self.nodes: dict[str, FNode] = {"input": FNode("input", "input", f"input {trace.in_channels}ch "
                                                        f"{fmt(trace.in_size)}")}
        """In execution order: a concat before its consumer, a sum after its operands."""
        self.edges: list[FEdge] = []
        self.consumed: set[int] = set()
        self.outputs: dict[str, list[str]] = {}
        self.cat_for: dict[int, int] = {}

    # -- naming -------------------------------------------------------------------------------------
    def group_of(self, i: int) -> str:
        u = self.unit_at[i]
        return u.path if u is not None else self.layers[i].path

    def is_temb(self, i: int) -> bool:
        """A vector layer inside an image unit: a projection of the time (class) embedding. A layer fed by an
        image layer (a norm whose volume size went unrecorded) reads that image, not the embedding."""
        if i not in self.vector or self.group_of(i) in self.vector_units or self.unit_at[i] is None:
            return False
        src = self.index.get(self.layers[i].source, -1)
        return src < 0 or src in self.vector or self.layers[src].out_size is None

    def tensor(self, name: str, group: str = "") -> str:
        nid = "ctx" if name == CONTEXT else f"T{len([n for n in self.nodes if n.startswith('T')])}"
        for n in self.nodes.values():
            if n.role == "tensor" and n.tip == name:
                return n.id
        text = name
        if name == CONTEXT:
            x = next(x for x in self.layers if x.source == CONTEXT)
            text = f"context (encoder_hidden_states)\n{x.tokens} tokens x {x.in_channels}"
        self.nodes[nid] = FNode(nid, "tensor", text, "layer", group, tip=name)
        return nid

    def edge(self, tail: str, head: str, role: str = "flow", label: str = "", eid: str = "") -> None:
        self.edges.append(FEdge(tail, head, role, label, eid))

    # -- producers ----------------------------------------------------------------------------------
    def output_of(self, path: str) -> list[str]:
        """The node(s) whose output is the output of module ``path`` (cached: one tensor, one node)."""
        if path in self.outputs:
            return self.outputs[path]
        inside = [j for p, j in self.index.items() if within(p, path) and j not in self.holders]
        inside = [j for j in inside if j not in self.vector or self.group_of(j) in self.vector_units]
        dangling = sorted(j for j in inside if j not in self.consumed)
        if len(dangling) > 1:
            sid = f"S{len(self.outputs)}"
            self.nodes[sid] = FNode(sid, "sum", "⊕", "layer", self.group_of(dangling[0]), tip=f"{path}: sum")
            for j in dangling:
                self.edge(f"L{j}", sid)
                self.consumed.add(j)
            out = [sid]
        else:
            out = [f"L{j}" for j in (dangling or sorted(inside)[-1:])]
        self.outputs[path] = out
        return out

    def resolve(self, path: str) -> list[str]:
        """The node(s) producing ``path``: a layer, a module's output, the input; [] if unknown."""
        if path in self.index and self.index[path] not in self.holders:
            return [f"L{self.index[path]}"]
        if path in self.index or path in self.modules:
            return self.output_of(path)
        return ["input"] if path == "input" else []

    def before(self, path: str, i: int) -> list[str]:
        """A step with no parameters (an activation, a dropout: ``convs.0.nonlin``) is no layer: it passes on
        the last layer its parent module ran before layer ``i``, so no node is drawn for the step itself."""
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        if not parent or (parent not in self.modules and parent not in self.index):
            return []
        ran = [j for j in range(min(i, len(self.layers))) if within(self.layers[j].path, parent)
               and j not in self.holders and j not in self.vector]
        if ran and all(j < i for p, j in self.index.items() if within(p, parent)):
            # the parent has run all its layers: the step reads what the parent combines at its end (a
            # ResEnc block's nonlin2 reads the ⊕ of conv2.norm and skip.1.norm), not only its last layer
            return self.output_of(parent)
        return [f"L{ran[-1]}"] if ran else []

    def gather(self, i: int) -> list[str]:
        """What an op inside the unit combines: the unconsumed layers run just before ``i`` (to_q, to_k and
        to_v for attention's to_out), back to the first layer already read by another."""
        u = self.unit_at[i]
        got: list[int] = []
        for j in range(i - 1, (u.first if u else i) - 1, -1):
            if j in self.vector or j in self.holders:
                continue
            if j in self.consumed:
                break
            got.append(j)
        return [f"L{j}" for j in reversed(got)]

    def inputs(self, i: int) -> list[str]:
        x = self.layers[i]
        src = x.source
        if i in self.cat_for:
            return [f"C{self.cat_for[i]}"]
        direct = (self.resolve(src) or self.before(src, i)) if src else []
        if direct and src != "input":
            return direct
        if src == "input":
            return [self.tensor("input (labels)", self.group_of(i))] if i in self.vector else ["input"]
        u = self.unit_at[i]
        if not src or (u is not None and within(src, u.path)):
            got = self.gather(i)
            if got:
                return got
        return [self.tensor(src, self.group_of(i) if src != CONTEXT else "")] if src else []

    # -- the passes -----------------------------------------------------------------------------------
    def assign_concats(self) -> None:
        """Each concat feeds the unit's layers that read an unnamed input from ``at`` on: the first one,
        and any other of the concat's width (a resnet's conv_shortcut)."""
        for k, c in enumerate(self.t.concats):
            u = self.unit_at[c.at] if c.at < len(self.layers) else None
            end = u.last if u is not None else c.at + 1
            first = True
            for i in range(c.at, end):
                x = self.layers[i]
                if x.source or i in self.vector or i in self.holders or i in self.cat_for:
                    continue
                if first or x.in_channels == c.channels:
                    self.cat_for[i] = k
                    first = False

    def add_layers(self) -> None:
        at: dict[int, list[int]] = {}
        for k, c in enumerate(self.t.concats):
            at.setdefault(c.at, []).append(k)
        for i, x in enumerate(self.layers):
            for k in at.get(i, []):  # the concat runs first: its operands are read before layer i
                self.add_concat(k)
            nid = f"L{i}"
            role = "holder" if i in self.holders else "temb" if self.is_temb(i) else "layer"
            self.nodes[nid] = FNode(nid, role, x.path, kind_of(x.path, x.type), self.group_of(i), i,
                                    _tip(x))
            if role in ("holder", "temb"):
                # beside the unit's next layer: the embedding's projection is added into it; a module's
                # own tensors (lucidrains' LinearAttention) have no edge of their own
                nxt = next((j for j in range(i + 1, len(self.layers)) if self.group_of(j) == self.group_of(i)
                            and j not in self.vector and j not in self.holders), None)
                if nxt is not None:
                    self.edge(nid, f"L{nxt}", "temb" if role == "temb" else "invis")
                if role == "temb":
                    self.nodes[nid].notes.append(f"reads {x.source or 'the embedding'}")
                continue
            ins = self.inputs(i)
            for p in ins:
                self.edge(p, nid, "context" if p == "ctx" else "flow")
            self.read(ins)

    def add_concat(self, k: int) -> None:
        skips = {s.index: s for s in self.t.skips}
        c = self.t.concats[k]
        cid = f"C{k}"
        text = "cat " + " + ".join(str(op.channels) for op in c.inputs) + f" = {c.channels}"
        if c.crop is not None:
            text += f" (crop {fmt(c.crop[0])}→{fmt(c.crop[1])})"
        group = self.group_of(c.at) if c.at < len(self.layers) else ""
        self.nodes[cid] = FNode(cid, "cat", text, "layer", group, tip=f"{c.consumer}: {text}")
        main = True
        for op in c.inputs:
            s = skips.get(op.skip) if op.skip is not None else None
            if s is not None:
                tails = self.resolve(s.unit) or self.resolve(s.source) or self.before(s.source, c.at) or ["input"]
                self.edge(tails[0], cid, "skip", f"#{s.index} {s.channels}ch {fmt(s.size)}", f"skip{s.index}")
                self.read(tails)
                continue
            tails = self.resolve(op.source)
            role = "flow" if main else "aside"
            main = False
            for tl in tails:
                self.edge(tl, cid, role, "" if role == "flow" else f"{op.channels}ch {fmt(op.size)}")
            self.read(tails)

    def read(self, ids: list[str]) -> None:
        self.consumed.update(int(n[1:]) for n in ids if n.startswith("L"))

    def add_ends(self) -> None:
        popped = {op.skip for c in self.t.concats for op in c.inputs if op.skip is not None}
        for s in self.t.skips:
            if s.index not in popped:
                for tl in self.resolve(s.unit) or self.resolve(s.source):
                    what = "None" if s.empty else f"{s.channels}ch {fmt(s.size)}"
                    fate = f"{s.taken} takes it, unused" if s.taken else "never popped"
                    self.nodes[tl].notes.append(f"#{s.index} {what} pushed, {fate}")
        main = [i for i in range(len(self.layers)) if i not in self.vector and i not in self.holders]
        last = self.output_of(self.group_of(main[-1])) if main else ["input"]
        err = self.t.error
        if err is not None:
            hit = (self.resolve(err.at) if err.at else []) or last
            for h in hit:
                self.nodes[h].failed = True
            self.nodes["failure"] = FNode("failure", "failure", err.message, tip=err.at or "")
            self.edge(hit[-1], "failure")
        elif self.t.out_channels is not None:
            self.nodes["output"] = FNode("output", "output", f"output {self.t.out_channels}ch {fmt(self.t.out_size)}")
            self.edge(last[-1], "output")

    def groups(self) -> list[tuple[str, Unit | None, list[str]]]:
        out: dict[str, list[str]] = {}
        units: dict[str, Unit | None] = {}
        for n in sorted(self.nodes.values(), key=_order):
            if n.group:
                out.setdefault(n.group, []).append(n.id)
        for i in range(len(self.layers)):
            units.setdefault(self.group_of(i), self.unit_at[i])
        return [(g, units.get(g), ids) for g, ids in sorted(out.items(), key=lambda kv: _first(self, kv[1]))]


def _first(b: _Builder, ids: list[str]) -> int:
    return min((b.nodes[n].layer for n in ids if b.nodes[n].layer >= 0), default=1 << 30)


def _order(n: FNode) -> tuple[int, str]:
    return (n.layer if n.layer >= 0 else 1 << 30, n.id)


def _tip(x: Layer) -> str:
    tip = f"{x.path}: {x.type} {x.in_channels}→{x.out_channels}, {x.params:,} params"
    return tip + (f"; {x.note}" if x.note else "") + (f"; input from {x.source}" if x.source else "")


def build_flow(trace: Trace) -> Flow:
    b = _Builder(trace)
    b.assign_concats()
    b.add_layers()
    for k, c in enumerate(trace.concats):
        if c.at >= len(trace.layers):  # a concat after the last layer
            b.add_concat(k)
    b.add_ends()
    return Flow(b.nodes, b.edges, b.groups())
