"""LoRA, LoCon, LoHa, LoKr and DoRA files: the kind's reader (base, rank, blocks, trigger words)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..core.records import Shape
from .bases import BASES, TRANSFORMER_BASES, by_context, named, text_encoder, transformer_base
from .kinds import Identified
from .lora import NetworkModule, block_of, parse_network

ALGOS = {"lora": "LoRA", "locon": "LoCon", "loha": "LyCORIS LoHa", "lokr": "LyCORIS LoKr"}
"""Algorithm key -> the name people use."""
METADATA_KEYS = ("ss_network_module", "ss_network_dim", "ss_network_alpha", "ss_base_model_version",
                 "ss_sd_model_name", "ss_v2", "ss_output_name", "ss_training_comment", "modelspec.architecture",
                 "modelspec.title", "modelspec.trigger_phrase")
"""kohya's and the ModelSpec's metadata worth showing (what they claim; the base is still read from widths)."""
TRIGGERS = 10
"""Trigger words shown: the most frequent tags of ``ss_tag_frequency``."""


def read_network(shapes: Mapping[str, Shape], meta: Mapping[str, str], anchor: str) -> Identified:
    modules, other, style = parse_network(shapes)
    algos = Counter(m.algo.split("+")[0] for m in modules)
    dora = any(m.algo.endswith("+dora") for m in modules)
    kinds = [ALGOS.get(a, a) for a, _ in algos.most_common()]
    name = " + ".join(kinds) + (" (DoRA)" if dora else "") + f" ({style} naming)"
    bases, evidence = network_base(modules)
    ranks = sorted({m.rank for m in modules if m.rank is not None})
    unet = [m for m in modules if m.part == "unet"]
    details: dict[str, Any] = {
        "naming": style, "algorithms": dict(algos), "dora": dora, "modules": len(modules),
        "unet_modules": len(unet), "text_encoder_modules": len(modules) - len(unet),
        "rank": ranks[0] if len(ranks) == 1 else ranks,
        "blocks": sorted({block_of(m.path) for m in unet}, key=_block_order),
        "text_encoders": sorted({m.part for m in modules if m.part != "unet"}),
        "other_keys": len([k for k in other if k not in ("lora_te_text_projection",)]),
    }
    denoiser = next((t for t in TRANSFORMER_BASES if bases == [t]), None)
    if denoiser is not None:  # a LoRA of a transformer denoiser: named, not traced
        name = name.replace(f" ({style} naming)", f" for {denoiser.name}'s transformer ({style} naming)")
        details["denoiser"] = (f"{denoiser.name}'s transformer ({denoiser.model}), not a U-Net: unetviz does not"
                               " trace it, and `fit` takes U-Net bases")
    details.update(_metadata(meta))
    key = "dora" if dora else "loha" if "loha" in algos else "lokr" if "lokr" in algos else "lora"
    return Identified(kind=key, name=name, base=named(bases), evidence=evidence, tensors=len(shapes), details=details)


def network_base(modules: list[NetworkModule]) -> tuple[list[Any], str]:
    """The bases a LoRA-style file's widths declare, and the width that says so: a U-Net cross-attention's
    ``to_k`` in-width (the context), else its text encoders' widths."""
    for m in modules:
        # to_k is a Linear in every SD U-Net: a factorisation's flattened in-width (LoHa, LoKr) is its in-width
        width = m.in_width or m.in_total
        if m.part == "unet" and m.path.replace(".", "_").endswith("attn2_to_k") and width:
            algo = m.algo.split("+")[0]
            what = "down-projection" if algo in ("lora", "locon") else f"{ALGOS.get(algo, algo)} factors"
            return by_context(width), f"its attn2.to_k {what} {'read' if 'factors' in what else 'reads'} {width}"
    for m in modules:
        # a transformer denoiser (FLUX.1, SD3): a block module that reads its hidden width
        width = m.in_width or m.in_total
        denoiser = transformer_base(m.path.replace(".", "_"), width) if m.part == "unet" else None
        if denoiser is not None:
            where = m.path if "." in m.path else m.name
            return [denoiser], f"its {where} down-projection reads {width}, {denoiser.name}'s hidden width"
    te = {m.part: m.in_width for m in modules if m.part != "unet" and m.in_width
          and m.path.replace(".", "_").endswith("self_attn_q_proj")}
    if te:
        widths = {p: text_encoder(w) for p, w in te.items()}
        found = [b for b in BASES if not b.variant and all(
            any(p in (t.kohya, t.diffusers) and w and t.encoder == w.key for t in b.text) for p, w in widths.items())]
        return found, "its text-encoder q_proj reads " + ", ".join(f"{w} ({p})" for p, w in te.items())
    return [], "no cross-attention or text-encoder module whose width tells the base"


def _block_order(block: str) -> tuple[int, int, str]:
    order = {"conv_in": 0, "time_embedding": 0, "time_embed": 0, "add_embedding": 0, "label_emb": 0,
             "down_blocks": 1, "input_blocks": 1, "mid_block": 2, "middle_block": 2, "up_blocks": 3,
             "output_blocks": 3, "conv_out": 4, "out": 4, "transformer_blocks": 1, "double_blocks": 1,
             "joint_blocks": 1, "single_transformer_blocks": 2, "single_blocks": 2}
    head, _, index = block.partition(".")
    return order.get(head, 5), int(index) if index.isdigit() else 0, head


def _metadata(meta: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    shown = {k: meta[k][:200] for k in METADATA_KEYS if k in meta}
    if shown:
        out["metadata"] = shown
    triggers = _triggers(meta.get("ss_tag_frequency", ""))
    if triggers:
        out["triggers"] = triggers
    return out


def _triggers(text: str) -> list[str]:
    """The most frequent tags over kohya's datasets (``{"10_name": {"tag": count}}``); untrusted text, so any
    other shape is ignored."""
    if not text or len(text) > 10_000_000:
        return []
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return []
    counts: Counter[str] = Counter()
    if isinstance(data, dict):
        for tags in data.values():
            if isinstance(tags, dict):
                counts.update({str(t).strip(): int(n) for t, n in tags.items() if isinstance(n, int)})
    return [t for t, _ in counts.most_common(TRIGGERS) if t]
