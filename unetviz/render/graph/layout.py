"""The U-shaped layout of a trace, as plain data: which node goes down the left (encoder), along the
bottom (bottleneck) or up the right (decoder), which skip edges pair which nodes on one rank.

Everything is derived from the Trace records (units, layers, skips, concats), never from path
names, so one layout works for every family and for observed traces of arbitrary modules.
``graph.py`` turns this into Graphviz statements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ...core.kinds import KINDS, kind_of
from ...core.records import Failure, Layer, Size, Trace, Unit, numel
from ...core.records import fmt_size as fmt
from .rows import Link, pairs_of, rows_of

DETAILS = ("blocks", "units", "layers")
"""``blocks``: one node per block heading; ``units``: one per unit; ``layers``: every layer, as data flow."""
ROW_WIDTH = 3
"""Most nodes side by side in one encoder or decoder row."""
MID_WIDTH = 5


@dataclass
class Item:
    """One diagram node: a block heading (blocks detail) or a top-level unit (units detail)."""

    id: str
    path: str
    kind: str
    type: str
    in_channels: int
    out_channels: int
    in_size: Size | None
    out_size: Size | None
    first: int
    last: int
    block: str
    note: str = ""
    tokens: int | None = None
    kernel: Size | None = None
    stride: Size | None = None
    params: int = 0
    cats: list[str] = field(default_factory=list)
    """One line per concat feeding this node: ``cat 1280 + 640 = 1920``."""
    failed: bool = False


@dataclass
class Layout:
    enc: list[Item]
    mid: list[Item]
    dec: list[Item]
    cond: list[Item]
    links: list[Link]
    pairs: list[tuple[str, str]]
    """(encoder node, decoder node) pairs put on the same rank, so their skip edge is horizontal."""
    cond_lines: list[str]
    failure: Failure | None
    rows: list[list[str]] = field(default_factory=list)
    """Node ids that share a rank: an encoder row and the decoder row its skip goes to."""
    enc_rows: list[list[str]] = field(default_factory=list)
    dec_rows: list[list[str]] = field(default_factory=list)
    """Decoder rows bottom-up."""

    @property
    def items(self) -> list[Item]:
        return [*self.enc, *self.mid, *self.dec]


def _top_units(units: tuple[Unit, ...]) -> list[Unit]:
    """Units not nested in another unit's layer range (a transformer, not its attn1/attn2/ff)."""
    kept: list[Unit] = []
    end = -1
    for u in sorted(units, key=lambda u: (u.first, -u.last)):
        if u.first >= end or (u.first == u.last and not kept):
            kept.append(u)
            end = max(end, u.last)
    return kept


def _is_vector(layers: tuple[Layer, ...], first: int, last: int) -> bool:
    """True when every layer sees a plain vector (no image, no token sequence): a time/class embedding."""
    span = layers[first:last]
    return bool(span) and all(x.in_size is None and x.tokens is None for x in span)


def _modules(trace: Trace) -> tuple[frozenset[str], frozenset[str]]:
    """Every layer's path, and every module at or above a layer: a source is inside the model when it is one
    of the second or lies within one of the first (set lookups instead of a scan of the layers for every
    token layer, which was most of SDXL's diagram time)."""
    layers = frozenset(y.path for y in trace.layers)
    above: set[str] = set()
    for path in layers:
        parts = path.split(".")
        above.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return layers, frozenset(above)


def _outside(trace: Trace, it: Item, x: Layer, modules: tuple[frozenset[str], frozenset[str]]) -> bool:
    """``x`` reads a tensor from outside the image path: a named input (``encoder_hidden_states``), or, with
    no source recorded, a width the unit's image never has. Windows folded into the batch (Swin) and keys
    and values pooled from the image (SegFormer's reduction) are fewer tokens of the image's own width.
    ``modules``: ``_modules(trace)``."""
    if x.source:
        layers, above = modules
        parts = x.source.split(".")
        # a layer within the source (the source is at or above a layer), or the source within a layer
        inside = x.source == "input" or x.source in above or any(".".join(parts[:i]) in layers
                                                                 for i in range(1, len(parts) + 1))
        return not inside
    widths = {it.in_channels, it.out_channels}
    widths |= {y.in_channels for y in trace.layers[it.first : it.last]
               if y.in_size is not None or y.tokens == numel(it.in_size)}
    return x.in_channels not in widths


def _conditioning(trace: Trace, tops: list[Item], main: list[Item]) -> list[str]:
    """Say once how the conditioning enters, instead of drawing an edge into every consumer."""
    lines = [f"{c.path}: {c.type} {c.in_channels}→{c.out_channels}" for c in tops]
    fed: Counter[str] = Counter()
    ctx_dims: set[int] = set()
    ctx_tokens: set[int] = set()
    ctx_users: set[str] = set()
    modules = _modules(trace)
    for it in main:
        span = trace.layers[it.first : it.last]
        if any(x.in_size is None and x.tokens is None for x in span):
            fed[it.type] += 1
        image = numel(it.in_size)
        for x in span:
            # a token sequence whose length is not the image's: keys/values from an outside context
            if x.tokens is not None and image > 1 and x.tokens != image and _outside(trace, it, x, modules):
                ctx_dims.add(x.in_channels)
                ctx_tokens.add(x.tokens)
                ctx_users.add(x.path.rsplit(".", 1)[0])
    if tops and fed:
        used = ", ".join(f"{n} {t}" for t, n in fed.most_common())
        lines.append(f"embedding vector added in {used}")
    if ctx_users:
        dims = "/".join(str(d) for d in sorted(ctx_dims))
        toks = "/".join(str(d) for d in sorted(ctx_tokens))
        lines.append(f"context {toks} tokens x {dims}-d → k/v of {len(ctx_users)} cross-attentions")
    return lines


def _tops(trace: Trace) -> list[Item]:
    """One item per top-level unit, plus one per layer outside every unit, in execution order."""
    tops: list[Item] = []
    covered: set[int] = set()
    for u in _top_units(trace.units):
        covered.update(range(u.first, u.last))
        tops.append(Item("", u.path, u.kind, u.type, u.in_channels, u.out_channels, u.in_size, u.out_size,
                         u.first, u.last, u.block, u.note, params=u.params))
    for i, x in enumerate(trace.layers):
        if i not in covered:  # a layer outside every unit (or an observed trace without units)
            tops.append(Item("", x.path, kind_of(x.path, x.type), x.type, x.in_channels, x.out_channels,
                             x.in_size, x.out_size, i, i + 1, x.path.split(".")[0], x.note, x.tokens, x.kernel,
                             x.stride, x.params))
    tops.sort(key=lambda it: (it.first, it.last))
    return tops


def _merge_blocks(trace: Trace, tops: list[Item]) -> list[Item]:
    """One item per block heading (``down_blocks.1``, ``mid_block``); a unit under no heading (conv_in,
    conv_out) stays an item of its own, so the blocks partition the model."""
    titles = dict(trace.blocks)
    groups: list[list[Item]] = []
    for it in tops:
        key = it.block if it.block in titles else it.path
        if groups and (groups[-1][0].block if groups[-1][0].block in titles else groups[-1][0].path) == key:
            groups[-1].append(it)
        else:
            groups.append([it])
    out: list[Item] = []
    for g in groups:
        a, z = g[0], g[-1]
        if len(g) == 1 and a.block not in titles:
            out.append(a)
            continue
        params: Counter[str] = Counter()
        for it in g:
            params[it.kind] += it.params or 1
        counts = Counter(KINDS[k].label if k in KINDS else k for k in (it.kind for it in g))
        note = ", ".join(f"{n} {label}" for label, n in counts.items())
        out.append(Item("", a.block, _block_kind(g, params), titles.get(a.block, a.type), a.in_channels,
                        z.out_channels, a.in_size, z.out_size, a.first, z.last, a.block, note,
                        params=sum(it.params for it in g)))
    return out


ATTENDING = ("attention", "transformer")


def _block_kind(group: list[Item], params: Counter[str]) -> str:
    """A block is coloured by what it contains: any attention or transformer makes it an attention block
    (a CrossAttnUpBlock2D's resnets outweigh its transformers, yet it attends as its down twin does); else
    the kind holding most parameters (a resnet block with its sampler is a resnet block)."""
    attending = next((it.kind for it in group if it.kind in ATTENDING), None)
    return attending or params.most_common(1)[0][0]


class _Locator:
    """Finds the node that outputs a module path: the item itself, the item holding that layer, or
    the item holding the last layer run inside that module."""

    def __init__(self, trace: Trace, items: list[Item]) -> None:
        self.at_layer: dict[int, Item] = {}
        for it in items:
            for i in range(it.first, it.last):
                self.at_layer.setdefault(i, it)
        self.by_path = {it.path: it for it in items}
        self.layer_index = {x.path: i for i, x in enumerate(trace.layers)}
        self.unit_last = {u.path: u.last - 1 for u in trace.units if u.last > u.first}

    def __call__(self, path: str | None) -> Item | None:
        if not path:
            return None
        if path in self.by_path:
            return self.by_path[path]
        if path in self.layer_index:
            return self.at_layer.get(self.layer_index[path])
        if path in self.unit_last:
            return self.at_layer.get(self.unit_last[path])
        inside = [i for p, i in self.layer_index.items() if p.startswith(path + ".")]
        return self.at_layer.get(max(inside)) if inside else None


def _concat_links(trace: Trace, locate: _Locator, main: list[Item]) -> tuple[dict[int, Item], list[Link]]:
    """Each concat's consumer node (its sum goes into the node's label), keyed by skip index, and the
    operands kept aside outside the skip stack (lucidrains' ``r``) as extra links."""
    position = {it.id: k for k, it in enumerate(main)}
    consumer_of: dict[int, Item] = {}
    extra: list[Link] = []
    for c in trace.concats:
        head = locate.at_layer.get(c.at) if c.at < len(trace.layers) else None
        head = head or locate(c.consumer)
        if head is None:
            continue
        line = "cat " + " + ".join(str(op.channels) for op in c.inputs) + f" = {c.channels}"
        if c.crop is not None:
            line += f" (crop {fmt(c.crop[0])}→{fmt(c.crop[1])})"
        head.cats.append(line)
        for op in c.inputs:
            if op.skip is not None:
                consumer_of[op.skip] = head
                continue
            # drawn where it comes from unless it is simply the previous node's output
            src = locate(op.source)
            k = position.get(head.id, 0)
            if src is not None and src is not head and (k == 0 or main[k - 1] is not src):
                extra.append(Link(src.id, head.id, -1, f"{op.channels}ch {fmt(op.size)}"))
    return consumer_of, extra


def _skip_links(trace: Trace, locate: _Locator, consumer_of: dict[int, Item]) -> list[Link]:
    links: list[Link] = []
    for s in trace.skips:
        tail = locate(s.unit) or locate(s.source)
        head = consumer_of.get(s.index) or locate(s.to)
        label = f"#{s.index} None" if s.empty else f"#{s.index} {s.channels}ch {fmt(s.size)}"
        if tail is None and s.source != "input":
            continue
        if head is None and tail is not None:
            tail.cats.append(f"{label} pushed, {f'{s.taken} takes it, unused' if s.taken else 'never popped'}")
        links.append(Link(tail.id if tail else "input", head.id if head else None, s.index, label))
    return links


def build_layout(trace: Trace, detail: str) -> Layout:
    """The U of ``units`` (one node per unit) or ``blocks`` (one node per block heading)."""
    tops = _tops(trace)
    cond = [it for it in tops if _is_vector(trace.layers, it.first, it.last)]
    main = [it for it in tops if all(it is not c for c in cond)]  # identity: equal rows may repeat
    cond_lines = _conditioning(trace, cond, main)
    if detail == "blocks":
        main = _merge_blocks(trace, main)
    for k, it in enumerate([*main, *cond]):
        it.id = f"n{k}"
    locate = _Locator(trace, [*main, *cond])
    consumer_of, extra = _concat_links(trace, locate, main)
    links = _skip_links(trace, locate, consumer_of) + extra
    # Phases: the encoder ends with the last node that pushes a skip, the decoder starts with the
    # first node that consumes one; whatever runs in between is the bottleneck.
    position = {it.id: k for k, it in enumerate(main)}
    pushes = [position[x.tail] for x in links if x.tail in position and x.index >= 0]
    pops = [position[x.head] for x in links if x.head in position and x.index >= 0]
    enc_end = max(pushes) if pushes else len(main) - 1
    dec_start = min(pops) if pops else len(main)
    if dec_start <= enc_end:  # interleaved pushes and pops: split at the first pop
        enc_end = dec_start - 1
    enc, mid, dec = main[: enc_end + 1], main[enc_end + 1 : dec_start], main[dec_start:]
    pairs = pairs_of(links, position, enc, dec)
    if trace.error is not None:
        hit = locate(trace.error.at)
        if hit is not None:
            hit.failed = True
    # a block node is wide (its type, channels, sizes and concat sums): one a row keeps the U narrow enough to
    # read at a page's width, the head and tail steps stacked above the decoder's top
    width = 1 if detail == "blocks" else ROW_WIDTH
    rows, enc_rows, dec_rows = rows_of(enc, dec, mid, pairs, width, MID_WIDTH)
    return Layout(enc, mid, dec, cond, links, pairs, cond_lines, trace.error, rows, enc_rows, dec_rows)
