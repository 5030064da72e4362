"""Read the numbers out of a pasted error: a bare message or a whole traceback, with or without the prefix
lines that PyTorch, diffusers, ComfyUI, A1111, kohya or Keras put before it.

Each recognised message becomes one ``Parsed`` record of a ``kind`` with the numbers it carries; a text that
holds none of them but reads as an error (``Error``/``Exception``/``Traceback``) is parsed as ``other`` (the
search then says "no match"); a text that is not an error at all is a ``UnetvizError`` (exit 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..core.errors import UnetvizError

Shape = tuple[int, ...]

KINDS = ("matmul", "conv", "state_size", "state_keys", "concat", "broadcast", "added_cond", "divisible", "other")
"""The kinds of error ``why`` reads, in the order the parser tries them."""


@dataclass(frozen=True, kw_only=True)
class Mismatch:
    """One ``size mismatch for KEY`` line of ``load_state_dict``."""

    key: str
    """The key as the error names it (any prefix kept)."""
    checkpoint: Shape
    """The tensor's shape in the file being loaded."""
    model: Shape
    """The shape the model being loaded into has."""


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """What one error message says, as numbers."""

    kind: str
    """One of ``KINDS``."""
    message: str
    """The error line the numbers come from, whitespace collapsed."""
    numbers: dict[str, int | list[int]] = field(default_factory=dict)
    """The message's numbers by name: ``rows``, ``width`` (what reached the layer), ``in``/``out`` (the weight's
    input and output widths), ``weight``, ``input``, ``expected``/``got``, ``dim``..."""
    mismatches: tuple[Mismatch, ...] = ()
    """``state_size``: every ``size mismatch`` line."""
    missing: tuple[str, ...] = ()
    """``state_keys``: the keys the model has and the file lacks."""
    unexpected: tuple[str, ...] = ()
    """``state_keys``: the keys the file has and the model lacks."""
    loader: str = ""
    """The class ``load_state_dict`` was loading into, when the message names it (``ControlNet``, ``UNetModel``)."""
    framework: str = "torch"
    """``torch``, or ``keras`` for Keras' and TensorFlow's messages (channel-last shapes)."""


_N = r"(\d+)"
_LIST = r"\[([\d,\s]*)\]"
_MATMUL = (
    re.compile(rf"mat1 and mat2 shapes cannot be multiplied \({_N}x{_N} and {_N}x{_N}\)"),
    re.compile(rf"a and b must have same reduction dim, but got \[{_N},\s*{_N}\] X \[{_N},\s*{_N}\]"),
    re.compile(rf"Matrix size-incompatible: In\[0\]: \[{_N},\s*{_N}\], In\[1\]: \[{_N},\s*{_N}\]"),
)
# the weight's part is often cut off when the message is pasted: the rest still names both channel counts
_CONV = re.compile(rf"(?:Given (?:groups|transposed)=\d+, weight of size {_LIST}, )?expected input{_LIST} to have {_N}"
                   rf" channels, but got {_N} channels instead")
_SIZE = re.compile(r"size mismatch for ([\w.\-]+): copying a param with shape torch\.Size\(" + _LIST +
                   r"\) from checkpoint, the shape in current model is torch\.Size\(" + _LIST + r"\)")
_LOADER = re.compile(r"Error\(s\) in loading state_dict for (\w+)")
_KEYS = re.compile(r"(Missing|Unexpected) key\(s\) in state_dict: ((?:\"[^\"]+\"(?:, )?)+)")
_CAT = (
    re.compile(rf"Sizes of tensors must match except in dimension {_N}\. Expected size {_N} but got size {_N}"),
    re.compile(rf"Sizes of tensors must match except in dimension {_N}\. Expected {_N} in dimension {_N} but got"
               rf" {_N}"),
    re.compile(rf"Sizes of tensors must match except in dimension {_N}\. Got {_N} and {_N} in dimension {_N}"),
    re.compile(rf"Sizes of tensors must match except in dimension {_N}\. Got {_N} and {_N} \(The offending"),
    re.compile(rf"All dimensions except {_N} must match\. Input \d+ has shape \[([\d\s]+)\] and doesn't match input"
               r" \d+ with shape \[([\d\s]+)\]"),
)
_KERAS = re.compile(r"`?Concatenate`? layer requires inputs with matching shapes except for the concat(?:enation)?"
                    r" axis\.[^\[]*\[\(([^)]*)\),\s*\(([^)]*)\)")
_TF_CONCAT = re.compile(r"ConcatOp ?: Dimensions of inputs should match: shape\[0\] = " + _LIST +
                        r" vs\. shape\[1\] = " + _LIST)
_BROADCAST = re.compile(rf"The size of tensor a \({_N}\) must match the size of tensor b \({_N}\) at non-singleton"
                        rf" dimension {_N}")
_ADDED = re.compile(r"(?:has the config param `)?addition_embed_type`? set to '(\w+)' which requires the keyword"
                    r" argument `(\w+)`(?: to be passed in `added_cond_kwargs`)?")
_DIVISIBLE = re.compile(rf"`height` and `width` have to be divisible by {_N} but are {_N} and {_N}")
_ERRORISH = re.compile(r"(Error|Exception|Traceback|error:|failed|mismatch|cannot|must)", re.IGNORECASE)


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def _dims(text: str) -> list[int]:
    """``None, 28, 28, 512`` (a Keras shape) -> the numbers, ``None`` (the batch) as 0."""
    return [0 if p.strip() == "None" else int(p) for p in text.split(",") if p.strip()]


def parse(text: str) -> Parsed:
    """The first error ``why`` can read in ``text`` (the last traceback's message wins where several are given)."""
    flat = " ".join(text.split())
    if not flat:
        raise UnetvizError("text: got an empty string; allowed: an error message or a traceback")
    for reader in (_matmul, _conv, _state_size, _state_keys, _concat, _broadcast, _added, _divisible):
        found = reader(flat)
        if found is not None:
            return found
    if _ERRORISH.search(flat):
        return Parsed(kind="other", message=_last_line(text))
    raise UnetvizError(f"text: {flat[:60]!r} reads as no error message; allowed: a PyTorch/diffusers/Keras error or"
                       " a whole traceback")


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _matmul(flat: str) -> Parsed | None:
    for rx in _MATMUL:
        hits = list(rx.finditer(flat))
        if hits:
            m = hits[-1]
            a, b, c, d = (int(g) for g in m.groups())
            return Parsed(kind="matmul", message=m.group(0), numbers={"rows": a, "width": b, "in": c, "out": d})
    return None


def _conv(flat: str) -> Parsed | None:
    hits = list(_CONV.finditer(flat))
    if not hits:
        return None
    m = hits[-1]
    weight, given = _ints(m.group(1) or ""), _ints(m.group(2))  # no weight: []
    return Parsed(kind="conv", message=m.group(0), numbers={"weight": weight, "input": given,
                                                            "expected": int(m.group(3)), "got": int(m.group(4))})


def _state_size(flat: str) -> Parsed | None:
    found = tuple(Mismatch(key=m.group(1), checkpoint=tuple(_ints(m.group(2))), model=tuple(_ints(m.group(3))))
                  for m in _SIZE.finditer(flat))
    if not found:
        return None
    loader = _LOADER.search(flat)
    first = _SIZE.search(flat)
    return Parsed(kind="state_size", message=first.group(0) if first else "", mismatches=found,
                  loader=loader.group(1) if loader else "")


def _state_keys(flat: str) -> Parsed | None:
    missing: list[str] = []
    unexpected: list[str] = []
    for m in _KEYS.finditer(flat):
        keys = re.findall(r"\"([^\"]+)\"", m.group(2))
        (missing if m.group(1) == "Missing" else unexpected).extend(keys)
    if not missing and not unexpected:
        return None
    loader = _LOADER.search(flat)
    head = next(_KEYS.finditer(flat)).group(0)
    return Parsed(kind="state_keys", message=head[:160], missing=tuple(missing), unexpected=tuple(unexpected),
                  loader=loader.group(1) if loader else "")


def _concat(flat: str) -> Parsed | None:
    for n, rx in enumerate(_CAT):
        hits = list(rx.finditer(flat))
        if not hits:
            continue
        m = hits[-1]
        if n == 4:  # TensorFlow: whole shapes, channel-last
            a, b = _ints(m.group(2)), _ints(m.group(3))
            return _from_shapes(m.group(0), a, b, int(m.group(1)))
        g = [int(x) for x in m.groups()]
        if n == 1:  # torch >= 2.x on some devices: "Expected 11 in dimension 4 but got 12"
            g = [g[0], g[1], g[3], g[2]]
        numbers: dict[str, int | list[int]] = {"cat_dim": g[0], "expected": g[1], "got": g[2]}
        if n in (1, 2):
            numbers["dim"] = g[3]
        if n in (0, 1):  # "Expected size A but got size B for tensor number N": A is the first operand's
            numbers["ordered"] = 1
        return Parsed(kind="concat", message=m.group(0), numbers=numbers)
    keras = _KERAS.search(flat)
    if keras:
        return _from_shapes(keras.group(0), _dims(keras.group(1)), _dims(keras.group(2)), -1)
    tf = _TF_CONCAT.search(flat)
    if tf:
        return _from_shapes(tf.group(0), _ints(tf.group(1)), _ints(tf.group(2)), -1)
    return None


def _from_shapes(message: str, a: list[int], b: list[int], axis: int) -> Parsed | None:
    """Two whole shapes (Keras/TensorFlow, channel-last): the first spatial axis where they differ."""
    if len(a) != len(b):
        return None
    cat = axis % len(a)
    differ = [i for i in range(1, len(a)) if i != cat and a[i] != b[i]]
    if not differ:
        return None
    i = differ[0]
    return Parsed(kind="concat", message=message, numbers={"cat_dim": cat, "expected": a[i], "got": b[i], "dim": i,
                                                          "rank": len(a)}, framework="keras")


def _broadcast(flat: str) -> Parsed | None:
    hits = list(_BROADCAST.finditer(flat))
    if not hits:
        return None
    m = hits[-1]
    a, b, d = (int(g) for g in m.groups())
    return Parsed(kind="broadcast", message=m.group(0), numbers={"expected": a, "got": b, "dim": d})


def _added(flat: str) -> Parsed | None:
    m = _ADDED.search(flat)
    if m is None:
        return None
    return Parsed(kind="added_cond", message=m.group(0), numbers={}, loader=f"{m.group(1)}:{m.group(2)}")


def _divisible(flat: str) -> Parsed | None:
    m = _DIVISIBLE.search(flat)
    if m is None:
        return None
    f, h, w = (int(g) for g in m.groups())
    return Parsed(kind="divisible", message=m.group(0), numbers={"factor": f, "height": h, "width": w})
