"""Word what a search found: which model each side of the clash belongs to, the likely cause and the fix.

Every sentence is made from the candidates and the knowledge records' widths; nothing here is a stored answer
to a particular error.
"""

from __future__ import annotations

from typing import Any

from .parse import Parsed
from .records import Candidate, Diagnosis
from .search import Found


def names(models: list[str] | tuple[str, ...], shown: int = 3) -> str:
    """``a, b, c (+2 more)``."""
    models = list(dict.fromkeys(models))
    more = f" (+{len(models) - shown} more)" if len(models) > shown else ""
    return ", ".join(models[:shown]) + more


def _where(c: Candidate) -> str:
    extra = f" = {c.original}" if c.original else ""
    block = f" [{c.block_id}]" if c.block_id else ""
    return f"{c.layer}{extra}{block}"


def _known(found: list[tuple[str, str, tuple[str, ...]]]) -> list[str]:
    return [f"{n} ({what})" for n, what, _ in found]


def word(p: Parsed, found: Found, scope: str) -> Diagnosis:
    """The diagnosis of ``p`` from what the search found (``matched`` False when it found nothing)."""
    base: dict[str, Any] = {"kind": p.kind, "message": p.message, "numbers": _numbers(p), "scope": scope}
    if not found.candidates:
        return Diagnosis(matched=False, **base, cause=_no_match(p, found, scope))
    cause, fix, alternatives, inputs = _WORDING[p.kind](p, found)
    return Diagnosis(matched=True, **base, candidates=found.candidates, inputs=tuple(inputs), cause=cause, fix=fix,
                     alternatives=tuple(alternatives))


def _numbers(p: Parsed) -> dict[str, Any]:
    if p.kind == "state_size":
        return {"mismatches": [{"key": m.key, "checkpoint": list(m.checkpoint), "model": list(m.model)}
                               for m in p.mismatches]}
    if p.kind == "state_keys":
        return {"missing": list(p.missing), "unexpected": list(p.unexpected)}
    return dict(p.numbers)


def _no_match(p: Parsed, found: Found, scope: str) -> str:
    where = f"{scope}" if scope else "the models unetviz knows (its presets and their published variants)"
    if p.kind == "other":
        return "unetviz reads no shape numbers in this error."
    a, b = p.numbers.get("expected"), p.numbers.get("got")
    if p.kind in ("concat", "broadcast") and isinstance(a, int) and isinstance(b, int) and abs(a - b) == 1:
        which = ("the model is a Keras one, and unetviz's are PyTorch models" if p.framework != "torch" else
                 f"no model of {where} fails with exactly these sizes")
        return (f"a skip and its upsampled partner differ by one ({a} vs {b}): the input reached an odd size at some"
                f" level, but {which}. Make the input a multiple of 2**(number of downsamplings) of your model"
                + (", or name it with --model." if p.framework == "torch" else "."))
    if found.facts.get("channels"):
        return ("a mismatch of channels (dimension 1) between two tensors: no layer or size of a known model"
                " explains it.")
    return f"no layer or size of {where} gives these numbers."


def _short(c: Candidate) -> str:
    """``attn2.to_k in IN01``: the end of the path, enough for a sentence (the whole path is listed below)."""
    parts = c.layer.split(".")
    return ".".join(parts[-2:] if len(parts) > 3 else parts) + (f" in {c.block_id}" if c.block_id else "")


def _matmul(p: Parsed, found: Found) -> tuple[str, str, list[str], list[str]]:
    n = p.numbers
    top = found.candidates[0]
    roles, width_names, in_names = found.facts["roles"], found.facts["width_names"], found.facts["in_names"]
    feeds = [m for _, _, fs in width_names for m in fs]
    readers = [r for r in found.facts["readers"] if r.split("'")[0] not in (*roles, *feeds)]
    owners = [*_known(width_names), *readers[:2]]
    what_in = ", ".join(x[0] for x in in_names)
    layer_models = [top.model, *top.also]
    cause = (f"A Linear taking {n['in']} to {n['out']} ({_short(top)} of {names(layer_models)}) was given"
             f" {n['rows']} rows {n['width']} wide. {n['in']} is " + (what_in or "a width made inside the model")
             + f"; {n['width']} is " + (" or ".join(owners) if owners else "no width unetviz knows a part for") + ".")
    role = roles.get(top.model, "inner")
    if role == "context":
        cause += (f" A conditioning made for {names(feeds) or 'another model'} reached a model whose cross-attention"
                  f" reads {n['in']}: the checkpoint, ControlNet, LoRA or adapter is for another base than the"
                  " text or image encoder in use.")
        fix = (f"Use parts of one base: {top.model} needs a {n['in']}-wide conditioning" +
               (f" ({what_in})" if what_in else "") + "; a " + f"{n['width']}-wide one needs a model made for it" +
               (f" ({names(feeds)})" if feeds else "") + ". Pick ControlNets and adapters trained on that base.")
    elif role == "added":
        cause += (" The added conditioning (pooled text and time ids) was built for another model: the base and the"
                  " refiner take different added embeddings.")
        fix = ("Build time_ids as the model's own pipeline does (the refiner's hold the aesthetic score instead of the"
               " target size) and do not share added_cond_kwargs between base and refiner.")
    else:
        cause += " The layer's input is made inside the model: the weights and the config disagree."
        fix = f"Load the weights with the config of the model they were trained as ({names(layer_models)})."
    alternatives = [f"{n['width']} is also {o}" for o in owners[1:]] if len(owners) > 1 else []
    return cause, fix, alternatives, owners[:1] if len(owners) > 1 else owners


def _conv(p: Parsed, found: Found) -> tuple[str, str, list[str], list[str]]:
    n = p.numbers
    top = found.candidates[0]
    weight = n["weight"] if isinstance(n["weight"], list) else [n["weight"]] * 2
    if not weight:  # the weight's shape was cut off the pasted message: the count it expects stands in
        expected = n["expected"]
        weight = [0, expected if isinstance(expected, int) else 0]
    reads = found.facts["reads"].get(top.model, "")
    meaning = found.facts["meaning"].get(top.model) or (f"the {reads}" if reads else "its input")
    takes = [f"{m} ({what or 'its input'})" for m, what in found.facts["takes"]]
    latents = [f"the {name} latent" for name, _ in found.facts["latents"]]
    inputs = [*found.facts["images"], *takes, *latents]
    owners = names([top.model, *top.also])
    same = "has the same weight" if n["weight"] else f"reads {weight[1]} channels too"
    alternatives = [f"{c.model}'s {c.layer} {same}" for c in found.candidates[1:3]]
    if not found.facts["input_layer"].get(top.model):
        cause = (f"{_short(top)} of {owners} takes {weight[1]} channels and got {n['got']}: a layer inside the"
                 " model, so the weights and the config disagree.")
        return cause, f"Load the weights with the config they were trained with ({top.model}'s widths).", \
            alternatives, inputs
    cause = (f"{_short(top)}, the first conv of {owners}, reads {weight[1]} channels ({meaning}) and got {n['got']}"
             + (f", which is {names(inputs)}" if inputs else ", a count no known part makes") + ".")
    if reads == "image":
        cause += " The image has the wrong number of channels (an alpha channel, a grayscale image, or a latent"
        cause += " passed where the image is read)."
        fix = f"Convert the image to {weight[1]} channels (drop the alpha channel: .convert('RGB'))."
    else:
        cause += (" The checkpoint and the config (or the pipeline) disagree on the input: an inpainting, pix2pix"
                  " or other extra-channel model run as another kind, a latent of another autoencoder, or an image"
                  " where a latent belongs.")
        fix = (f"Give {top.model} the inputs it was trained on ({meaning}), or load the checkpoint with the config"
               f" whose in_channels is {n['got']}" + (f" ({names([m for m, _ in found.facts['takes']])})"
                                                     if takes else "") + ".")
    return cause, fix, alternatives, inputs


def _state_size(p: Parsed, found: Found) -> tuple[str, str, list[str], list[str]]:
    ck = next((c for c in found.candidates if c.side == "checkpoint"), None)
    cur = next((c for c in found.candidates if c.side == "model"), None)
    lines = found.facts["lines"]
    what = "LoRA" if found.facts["lora"] else (found.facts["loader"] + " checkpoint" if found.facts["loader"]
                                               else "checkpoint")
    ck_text = (f"the file's shapes are those of {names([ck.model, *ck.also])} ({ck.widths['lines']} of {lines}"
               " mismatched keys)" if ck else "the file's shapes are no known model's")
    cur_text = (f"the model's, those of {names([cur.model, *cur.also])} ({cur.widths['lines']} of {lines})"
                if cur else "the model's are no known model's")
    cause = f"A {what} made for one model was loaded into another: {ck_text}; {cur_text}."
    if found.facts["lora"] and cur:
        fix = f"Use a LoRA trained on {cur.model}'s base" + (f", or apply this one to {ck.model}." if ck else ".")
    elif ck:
        fix = f"Build the model with {ck.model}'s config (the file's)" + (
            f", or load a file made for {cur.model}." if cur else ".")
    else:
        fix = "Build the model with the config the file was trained with."
    return cause, fix, [], []


def _state_keys(p: Parsed, found: Found) -> tuple[str, str, list[str], list[str]]:
    ck = next((c for c in found.candidates if c.side == "checkpoint"), None)
    cur = next((c for c in found.candidates if c.side == "model"), None)
    parts = []
    if cur:
        parts.append(f"the missing keys are those of {names([cur.model, *cur.also])} ({cur.widths['keys']} of"
                     f" {cur.widths['of']}, e.g. {_where(cur)})")
    if ck:
        parts.append(f"the unexpected ones are those of {names([ck.model, *ck.also])} ({ck.widths['keys']} of"
                     f" {ck.widths['of']}, e.g. {_where(ck)})")
    kind = "LoRA " if found.facts["lora"] else ""
    cause = f"The {kind}file's keys and the model's differ: " + "; ".join(parts) + "."
    if ck and cur and ck.model == cur.model:
        cause += " Both belong to one model: the file holds it under another naming or prefix, or only part of it."
    fix = (f"Load the file into the model it is for ({ck.model})" if ck else "Load a file made for this model") + \
        (" or convert its keys to the naming the loader expects." if cur else ".")
    return cause, fix, [], []


def _tokens(p: Parsed, found: Found) -> tuple[str, str, list[str], list[str]]:
    top = found.candidates[0]
    a, b = p.numbers["expected"], p.numbers["got"]
    k = top.widths["tokens"]
    cause = (f"Two conditionings of different lengths were batched together: {a} and {b} tokens are"
             f" {top.widths['chunks'][0]} and {top.widths['chunks'][1]} chunks of {top.model}'s {k} tokens: a prompt"
             f" longer than {k} tokens was encoded in chunks and its negative (or another prompt) was not.")
    fix = ("Pad the shorter conditioning to the same number of chunks, or keep every prompt of a batch within the"
           " same length.")
    return cause, fix, [], [top.model]


def _sizes(p: Parsed, found: Found) -> tuple[str, str, list[str], list[str]]:
    if found.facts.get("tokens"):
        return _tokens(p, found)
    top = found.candidates[0]
    w = top.widths
    size = "x".join(str(x) for x in w["size"])
    works = " or ".join(str(x) for x in w["works"])
    px = f" ({w['multiple'] * w['factor']} px in the image)" if w["space"] == "latent" else ""
    a, b = p.numbers["expected"], p.numbers["got"]
    many = len(found.candidates) > 1
    cause = (f"A skip and its upsampled partner differ ({a} vs {b}): the input, halved level by level, reached an odd"
             f" size. " + (f"Of the models unetviz knows, {names([c.model for c in found.candidates])} fail with"
                           " exactly these sizes; e.g. " if many else "")
             + f"{top.model} fails at {top.layer or 'a skip'} for an input of {size}: its inputs must be multiples of"
             f" {w['multiple']}{px}.")
    fix = f"Resize, pad or crop the input to a multiple of {w['multiple']}" + (
        f" (nearest: {works})." if works else ".")
    alternatives = [f"{c.model} fails at {'x'.join(str(x) for x in c.widths['size'])} and needs multiples of"
                    f" {c.widths['multiple']}" for c in found.candidates[1:]]
    return cause, fix, alternatives, []


def _added(p: Parsed, found: Found) -> tuple[str, str, list[str], list[str]]:
    models = [c.model for c in found.candidates] + [m for c in found.candidates for m in c.also]
    widths = {w: ", ".join(n for n, _, _ in named) for w, named in found.facts["widths"].items()}
    cause = (f"An SDXL-style U-Net ({names(models)}: add_embedding reads "
             + "; ".join(f"{w} = {n}" for w, n in widths.items()) + ") was called without added_cond_kwargs: it"
             " was run by a pipeline or loop written for SD 1.x/2.x.")
    fix = ("Run it with its own pipeline (StableDiffusionXLPipeline) or pass added_cond_kwargs={'text_embeds':"
           " pooled text embeds, 'time_ids': the size/crop ids}.")
    return cause, fix, [], []


def _divisible(p: Parsed, found: Found) -> tuple[str, str, list[str], list[str]]:
    n = p.numbers
    near = found.facts["nearest"]
    vae = found.candidates[0]
    cause = (f"The image must be a whole number of latent pixels: {vae.model} downscales by {n['factor']}, and"
             f" {n['height']}x{n['width']} is not a multiple of it.")
    fix = f"Use a height of {' or '.join(map(str, near[0]))} and a width of {' or '.join(map(str, near[1]))}."
    return cause, fix, [], []


_WORDING = {"matmul": _matmul, "conv": _conv, "state_size": _state_size, "state_keys": _state_keys,
            "concat": _sizes, "broadcast": _sizes, "added_cond": _added, "divisible": _divisible}
