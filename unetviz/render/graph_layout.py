"""The U-shaped layout of a trace, as plain data: which node goes down the left (encoder), along the
bottom (bottleneck) or up the right (decoder), which skip edges pair which nodes on one rank.

Everything is derived from the Trace records (units, layers, skips, concats), never from path
names, so one layout works for every family and for observed traces of arbitrary modules.
``graph.py`` turns this into Graphviz statements.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..records import Failure, Layer, Size, Trace, Unit, numel
from ..tracer import fmt_size as fmt

DETAILS = ("blocks", "layers")
ROW_WIDTH = 3
"""Most nodes side by side in one encoder or decoder row at blocks detail."""
MID_WIDTH = 5


@dataclass
class Item:
    """One diagram node: a top-level unit (blocks detail) or a layer (layers detail)."""

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
class Link:
    """A skip edge from the node that pushed it to the node whose input it is concatenated into."""

    tail: str
    head: str | None
    index: int
    label: str


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


def _kind_of_layer(layer: Layer) -> str:
    t = layer.type.lower()
    if "conv" in t:
        return "conv"
    if "norm" in t:
        return "norm"
    if "embedding" in t:
        return "embed"
    return "mlp"


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


def _conditioning(trace: Trace, tops: list[Item], main: list[Item]) -> list[str]:
    """Say once how the conditioning enters, instead of drawing an edge into every consumer."""
    lines = [f"{c.path}: {c.type} {c.in_channels}→{c.out_channels}" for c in tops]
    fed: Counter[str] = Counter()
    ctx_dims: set[int] = set()
    ctx_tokens: set[int] = set()
    ctx_users: set[str] = set()
    for it in main:
        span = trace.layers[it.first : it.last]
        if any(x.in_size is None and x.tokens is None for x in span):
            fed[it.type] += 1
        image = numel(it.in_size)
        for x in span:
            # a token sequence whose length is not the image's: keys/values from an outside context
            if x.tokens is not None and image > 1 and x.tokens != image:
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


def build_layout(trace: Trace, detail: str) -> Layout:
    tops: list[Item] = []
    covered: set[int] = set()
    for u in _top_units(trace.units):
        covered.update(range(u.first, u.last))
        tops.append(Item("", u.path, u.kind, u.type, u.in_channels, u.out_channels, u.in_size, u.out_size,
                         u.first, u.last, u.block, u.note, params=u.params))
    for i, x in enumerate(trace.layers):
        if i not in covered:  # a layer outside every unit (or an observed trace without units)
            tops.append(Item("", x.path, _kind_of_layer(x), x.type, x.in_channels, x.out_channels, x.in_size,
                             x.out_size, i, i + 1, x.path.split(".")[0], x.note, x.tokens, x.kernel, x.stride,
                             x.params))
    tops.sort(key=lambda it: (it.first, it.last))
    cond_tops = [it for it in tops if _is_vector(trace.layers, it.first, it.last)]
    main_tops = [it for it in tops if all(it is not c for c in cond_tops)]  # identity: equal rows may repeat
    cond_lines = _conditioning(trace, cond_tops, main_tops)

    def expand(group: list[Item]) -> list[Item]:
        if detail == "blocks":
            return group
        out = []
        for top in group:
            for i in range(top.first, top.last):
                x = trace.layers[i]
                out.append(Item("", x.path, top.kind, x.type, x.in_channels, x.out_channels, x.in_size,
                                x.out_size, i, i + 1, top.block, x.note, x.tokens, x.kernel, x.stride, x.params))
        return out

    main, cond = expand(main_tops), expand(cond_tops)
    for k, it in enumerate([*main, *cond]):
        it.id = f"n{k}"
    at_layer: dict[int, Item] = {}
    for it in [*main, *cond]:
        for i in range(it.first, it.last):
            at_layer.setdefault(i, it)
    by_path = {it.path: it for it in [*main, *cond]}
    layer_index = {x.path: i for i, x in enumerate(trace.layers)}
    unit_last = {u.path: u.last - 1 for u in trace.units if u.last > u.first}

    def locate(path: str | None) -> Item | None:
        """The node that outputs ``path``: the item itself, the item holding that layer, or the item
        holding the last layer run inside that module."""
        if not path:
            return None
        if path in by_path:
            return by_path[path]
        if path in layer_index:
            return at_layer.get(layer_index[path])
        if path in unit_last:
            return at_layer.get(unit_last[path])
        inside = [i for p, i in layer_index.items() if p.startswith(path + ".")]
        return at_layer.get(max(inside)) if inside else None

    position = {it.id: k for k, it in enumerate(main)}
    consumer_of: dict[int, Item] = {}
    extra: list[Link] = []
    for c in trace.concats:
        head = at_layer.get(c.at) if c.at < len(trace.layers) else None
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
            # an operand kept aside outside the skip stack (lucidrains' ``r``): draw where it comes from
            # unless it is simply the previous node's output
            src = locate(op.source)
            k = position.get(head.id, 0)
            if src is not None and src is not head and (k == 0 or main[k - 1] is not src):
                extra.append(Link(src.id, head.id, -1, f"{op.channels}ch {fmt(op.size)}"))

    links: list[Link] = []
    # skip edges, then (index -1) concat operands from outside the stack
    for s in trace.skips:
        first, second = (s.unit, s.source) if detail == "blocks" else (s.source, s.unit)
        tail = locate(first) or locate(second)
        head = consumer_of.get(s.index) or locate(s.to)
        size = fmt(s.size)
        label = f"#{s.index} {s.channels}ch {size}"
        if tail is None and s.source != "input":
            continue
        if head is None and tail is not None:
            tail.cats.append(f"{label} pushed, never popped")
        links.append(Link(tail.id if tail else "input", head.id if head else None, s.index, label))

    links += extra
    # Phases: the encoder ends with the last node that pushes a skip, the decoder starts with the
    # first node that consumes one; whatever runs in between is the bottleneck.
    pushes = [position[x.tail] for x in links if x.tail in position and x.index >= 0]
    pops = [position[x.head] for x in links if x.head in position and x.index >= 0]
    enc_end = max(pushes) if pushes else len(main) - 1
    dec_start = min(pops) if pops else len(main)
    if dec_start <= enc_end:  # interleaved pushes and pops: split at the first pop
        enc_end = dec_start - 1
    enc, mid, dec = main[: enc_end + 1], main[enc_end + 1 : dec_start], main[dec_start:]

    pairs = _pairs(links, position, enc, dec)
    if trace.error is not None:
        hit = locate(trace.error.at)
        if hit is not None:
            hit.failed = True
    width = ROW_WIDTH if detail == "blocks" else 1
    rows, enc_rows, dec_rows = _rows(enc, dec, mid, pairs, width, MID_WIDTH if detail == "blocks" else 1)
    return Layout(enc, mid, dec, cond, links, pairs, cond_lines, trace.error, rows, enc_rows, dec_rows)


def _pairs(links: list[Link], position: dict[str, int], enc: list[Item], dec: list[Item]) -> list[tuple[str, str]]:
    """(encoder node, decoder node) of each skip that can share a rank.

    Pairs must be monotone (deeper encoder node <-> earlier decoder node), and a node may sit in one
    pair only, or dot gets contradictory rank constraints. A LIFO skip stack always satisfies this.
    """
    pairs: list[tuple[str, str]] = []
    enc_ids = {it.id for it in enc}  # not the input node: it sits on the top row with the output
    dec_ids = {it.id for it in dec}
    used: set[str] = set()
    last_head = len(position)
    for lk in sorted(links, key=lambda lk: (position.get(lk.tail, -1), lk.index)):
        if lk.index < 0 or lk.head is None or lk.tail not in enc_ids or lk.head not in dec_ids:
            continue
        if lk.tail in used or lk.head in used or position[lk.head] >= last_head:
            continue
        pairs.append((lk.tail, lk.head))
        used.update((lk.tail, lk.head))
        last_head = position[lk.head]
    return pairs


def _chunks(ids: list[str], width: int, from_end: bool) -> list[list[str]]:
    if from_end:  # the encoder: the node that pushes the skip must be in the last chunk, on the skip's rank
        head = len(ids) % width
        return ([ids[:head]] if head else []) + [ids[i : i + width] for i in range(head, len(ids), width)]
    return [ids[i : i + width] for i in range(0, len(ids), width)]


def _rows(enc: list[Item], dec: list[Item], mid: list[Item], pairs: list[tuple[str, str]], width: int,
          mid_width: int) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Rank groups. At blocks detail the nodes between two skip pushes sit side by side (a resnet and its
    attention), which keeps SD-sized models on one screen; at layers detail every node has its own rank."""
    tails = {t for t, _ in pairs}
    heads = {h for _, h in pairs}
    enc_rows: list[list[str]] = []
    seg: list[str] = []
    for it in enc:
        seg.append(it.id)
        if it.id in tails:
            enc_rows += _chunks(seg, width, True)
            seg = []
    enc_rows += _chunks(seg, width, True)
    dec_rows: list[list[str]] = []
    seg = []
    for it in dec:
        if it.id in heads and seg:
            dec_rows += _chunks(seg, width, False)
            seg = []
        seg.append(it.id)
    dec_rows += _chunks(seg, width, False)
    partner = dict(pairs)
    where = {i: k for k, row in enumerate(dec_rows) for i in row}
    merged: set[int] = set()
    rows: list[list[str]] = []
    for row in enc_rows:
        k = where.get(partner.get(row[-1], ""), -1)
        if k >= 0:
            merged.add(k)
            rows.append(row + dec_rows[k])
        else:
            rows.append(row)
    rows += [row for k, row in enumerate(dec_rows) if k not in merged]
    rows += _chunks([it.id for it in mid], mid_width, False)
    return rows, enc_rows, dec_rows
