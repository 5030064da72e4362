"""Find the layers of known models whose widths give an error's numbers: matmul (a Linear's in/out), conv (a
conv's weight shape), diffusers' added-conditioning and divisibility messages. State-dict errors are in
``state``, size errors in ``sizes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .index import Facts, all_facts
from .knowledge import AUTOENCODERS, IMAGES, LATENTS, Autoencoder, autoencoder_convs, input_meaning, widths_named
from .parse import Parsed
from .records import Candidate


@dataclass(frozen=True, kw_only=True)
class Found:
    """What a search found, for ``answer`` to word."""

    candidates: tuple[Candidate, ...] = ()
    """Matching layers, best first (one per model; the others with the same layer in ``also``)."""
    facts: dict[str, Any] = field(default_factory=dict)
    """Numbers the wording needs (which width is what, which models read the other side)."""


def grouped(hits: list[Candidate]) -> tuple[Candidate, ...]:
    """One candidate per distinct (layer in both namings, widths), the other models having it in ``also``."""
    seen: dict[tuple[str, str, str], list[Candidate]] = {}
    for c in hits:
        seen.setdefault((c.layer, c.original, repr(c.widths)), []).append(c)
    out = []
    for group in seen.values():
        first = group[0]
        others = tuple(dict.fromkeys(c.model for c in group[1:] if c.model != first.model))
        out.append(Candidate(model=first.model, layer=first.layer, original=first.original, block_id=first.block_id,
                             side=first.side, widths=first.widths, also=others))
    return tuple(out)


def matmul(p: Parsed, models: list[Facts]) -> Found:
    """A Linear [out, in] weight multiplies an input whose last dim is ``width``: in = C, out = D."""
    c_in, c_out, width = p.numbers["in"], p.numbers["out"], p.numbers["width"]
    hits = [Candidate(model=f["name"], layer=d, original=o, block_id=b, side="layer",
                      widths={"in": i, "out": o_})
            for f in models for d, o, b, i, o_ in f["linears"] if i == c_in and o_ == c_out]
    roles: dict[str, str] = {}
    for f in models:
        if any(c.model == f["name"] for c in hits):
            roles[f["name"]] = ("context" if f["context"] == c_in else "added" if f["added"] == c_in else "inner")
    readers = [f"{f['name']}'s context" for f in models if f["context"] == width]
    readers += [f"{f['name']}'s added conditioning" for f in models if f["added"] == width]
    return Found(candidates=_first_per_model(hits), facts={
        "roles": roles, "width_names": widths_named(int(width)), "in_names": widths_named(int(c_in)),  # type: ignore[arg-type]
        "readers": readers})


def _first_per_model(hits: list[Candidate]) -> tuple[Candidate, ...]:
    """The first matching layer of each model (a model has many to_k of one width: the first is named, the count
    kept), grouped across models with the same layer."""
    firsts: dict[str, Candidate] = {}
    counts: dict[str, int] = {}
    for c in hits:
        firsts.setdefault(c.model, c)
        counts[c.model] = counts.get(c.model, 0) + 1
    marked = [Candidate(model=c.model, layer=c.layer, original=c.original, block_id=c.block_id, side=c.side,
                        widths={**c.widths, "layers": counts[c.model]}) for c in firsts.values()]
    return grouped(marked)


def conv(p: Parsed, models: list[Facts], narrowed: bool = False) -> Found:
    """A conv whose weight has exactly the error's shape; what reads the channels the input had. Besides the
    U-Nets, the outer convs of the known autoencoders (unless the search is narrowed to one model)."""
    weight = list(p.numbers["weight"])  # type: ignore[arg-type]
    got = int(p.numbers["got"])  # type: ignore[arg-type]
    rank, expected = len(p.numbers["input"]), int(p.numbers["expected"])  # type: ignore[arg-type]

    def fits(w: list[int]) -> bool:  # without the weight's shape (cut off): any conv of that rank reading that many
        return w == weight if weight else len(w) == rank and w[1] == expected

    hits = [Candidate(model=f["name"], layer=d, original=o, block_id=b, side="layer", widths={"weight": w})
            for f in models for d, o, b, w in f["convs"] if fits(w)]
    reads = {f["name"]: ("image" if f["space"] == "pixel" else "latent") for f in models
             if f["convs"] and fits(f["convs"][0][3])}
    native = {f["name"]: [f["size"][-1]] for f in models if f["size"]}
    hinted = {f["name"] for f in models if f.get("hinted")}
    for a in () if narrowed else AUTOENCODERS:
        for path, w, what in autoencoder_convs(a):
            if fits(w):
                hits.append(Candidate(model=a.name, layer=path, side="layer", widths={"weight": w}))
                if what != "inner":
                    reads[a.name] = what
                    native[a.name] = _sizes_of(a, what, models)
    hits.sort(key=lambda c: (c.model not in hinted, c.model not in reads,
                             _distance(p.numbers["input"], native.get(c.model, []))))
    # the models whose input is declared to be more than the latent (inpainting, pix2pix): plain latent models
    # are covered by the latent records below
    # the other side of the clash may be any model, whatever model the search was narrowed to
    takes = [(f["name"], input_meaning(f["name"])) for f in (all_facts() if narrowed else models)
             if f["in_channels"] == got and f["rank"] == rank - 2 and input_meaning(f["name"])]
    latents = [(x.name, x.channels) for x in LATENTS if x.channels == got]
    images = [x.name for x in IMAGES if x.channels == got]
    reads_image = any(reads.get(c.model) == "image" for c in hits)
    return Found(candidates=_first_per_model(hits), facts={
        "input_layer": {c.model: c.model in reads for c in hits}, "reads": reads,
        "takes": takes, "latents": latents, "images": images if reads_image else [],
        "meaning": {c.model: input_meaning(c.model) for c in hits}})


def _sizes_of(a: Autoencoder, what: str, models: list[Facts]) -> list[int]:
    """The sizes an autoencoder's conv works at: the latents of the models it feeds (their own sizes), or their
    images (times the factor)."""
    latent = next(x for x in LATENTS if x.name == a.latent)
    sizes = [f["size"][-1] for f in models if f["name"] in latent.feeds and f["size"]]
    return [s * latent.factor for s in sizes] if what == "image" else sizes


def _distance(given: object, sizes: list[int]) -> float:
    """How far the error's input size (its last axis) is from the nearest size a model works at, in octaves: the
    ranking of models whose layers have the same shape (an image of 352x512 is a VAE's, not a 32x32 model's)."""
    if not isinstance(given, list) or len(given) < 3 or not given[-1] or not sizes:
        return math.inf
    return min(abs(math.log2(given[-1] / s)) for s in sizes if s)


def added_cond(p: Parsed, models: list[Facts]) -> Found:
    """diffusers' ``text_time`` U-Nets: the ones whose forward needs ``text_embeds`` and ``time_ids``."""
    hits = [Candidate(model=f["name"], layer="add_embedding", side="layer", widths={"in": f["added"]})
            for f in models if f["text_time"]]
    return Found(candidates=grouped(hits), facts={"widths": {c.widths["in"]: widths_named(c.widths["in"])
                                                              for c in hits}})


def divisible(p: Parsed, models: list[Facts]) -> Found:
    """A pipeline's check that the image is a whole number of latent pixels: the autoencoders of that factor."""
    factor = int(p.numbers["factor"])  # type: ignore[arg-type]
    vaes = [x for x in LATENTS if x.factor == factor]
    hits = [Candidate(model=x.name, layer="", side="input", widths={"downscales by": x.factor,
                                                                    "latent channels": x.channels}) for x in vaes]
    h, w = int(p.numbers["height"]), int(p.numbers["width"])  # type: ignore[arg-type]
    return Found(candidates=tuple(hits), facts={"nearest": [_nearest(h, factor), _nearest(w, factor)]})


def _nearest(n: int, factor: int) -> list[int]:
    lo = n // factor * factor
    return [lo, lo + factor] if lo else [factor]
