"""Rows of the U diagram: which encoder and decoder nodes share a rank so each skip edge is flat.

Works on any node with an ``id`` (the layout's items), so it knows nothing about units or blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Link:
    """A skip edge from the node that pushed it to the node whose input it is concatenated into."""

    tail: str
    head: str | None
    index: int
    label: str



def pairs_of(links: list[Link], position: dict[str, int], enc: list[Any], dec: list[Any]) -> list[tuple[str, str]]:
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


def rows_of(enc: list[Any], dec: list[Any], mid: list[Any], pairs: list[tuple[str, str]], width: int,
          mid_width: int) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Rank groups: the nodes between two skip pushes sit side by side (a resnet and its attention), which
    keeps SD-sized models on one screen; an encoder row shares its rank with the decoder row its skip
    goes to."""
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
