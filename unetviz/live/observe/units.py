"""Which modules of a live model are its units and block headings, and a unit's record from what it saw.

Units are block-level steps (``docs/design.md``, rules shared by trace and observer): below the root and
its containers sit the top-level steps; a step with a ModuleList child (diffusers' ``down_blocks.i``,
``mid_block``) is a heading whose own contained steps are the units; any other step that holds
parameters is a unit. That reading of the module tree is then checked against the data flow
(``data_units``): a step that holds a U (MONAI's nested ``SkipConnection`` in a ``Sequential``, DynUNet's
``skip_layers``: a skip made and merged inside one call) or that returns maps of several resolutions (the list
of stage outputs of an nnU-Net or smp encoder, SwinUNETR's ``swinViT``) is a wrapper, not a step: its own
steps are the units, so each resolution stage is one. So is a call that ends in a skip merge of its own (MONAI's
innermost ``SkipConnection``: the cat is parameter-free, the wrapped bottom step is the unit); a wrapper whose
steps are all registered under earlier paths (DynUNet's ``skip_layers``) gives no unit: they are units there.
A module registered under two paths counts under the first (``named_modules()``); a step never called under
its path (nnU-Net's ``stages``, iterated) stands for its steps.

Blocks are read the same way (``data_units``): a heading whose calls merge skips at more than one resolution
(nnU-Net's and smp's ``decoder``, a ModuleList of levels) is half of the U, not a block: its steps are blocks
of their own. So is a heading whose call returns maps at more than two sizes (SwinUNETR's ``swinViT``, every
level's hidden state): its steps are read as the model's own, each Swin stage (a BasicLayer, with its list of
blocks) a heading over its transformer blocks and merging. A call whose layers are all channel-last (a Swin
block's LayerNorms and Linears) holds no U: its 4-d tensors are windows and attention scores. And a step
under no heading that is a stack of like steps (``_stack``: StackedConvBlocks' ``convs`` of ConvDropoutNormReLU,
StackedResidualBlocks' ``blocks`` of BasicBlockD, a ResNet ``layer1``) is a heading over them, as a diffusers
block is over its resnets: the stack's entries are the units.
"""

from __future__ import annotations

from torch import nn

from ...core.records import enclosing
from ..capture import Capture, ModuleEvent
from .unit_records import tokens_only

CONTAINERS = (nn.ModuleList, nn.ModuleDict)


def _transparent(m: nn.Module) -> bool:
    """Containers whose children are the steps: ModuleList/Dict and Sequential subclasses named like
    one (guided's TimestepEmbedSequential). A plain ``nn.Sequential`` is one step (lucidrains'
    Downsample, guided's ``out``), as is MONAI's TwoConv."""
    if isinstance(m, CONTAINERS):
        return True
    return isinstance(m, nn.Sequential) and type(m) is not nn.Sequential and "Sequential" in type(m).__name__


def _has_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters())


def unit_paths(model: nn.Module) -> tuple[dict[str, str], list[str]]:
    """(unit path -> class name, block heading paths): see the module docstring."""
    return _read_tree(model, "", {id(m): p for p, m in model.named_modules()})


def _read_tree(model: nn.Module, root: str, canonical: dict[int, str]) -> tuple[dict[str, str], list[str]]:
    """``unit_paths`` of the module at ``root``, read as a top level: its steps are blocks or headings."""
    units: dict[str, str] = {}
    blocks: list[str] = []

    def walk(m: nn.Module, path: str, level: int) -> None:
        for name, child in m.named_children():
            p = f"{path}.{name}" if path else name
            if canonical.get(id(child)) != p:
                continue  # registered earlier under another path (nnU-Net's decoder keeps the encoder)
            listed = path and isinstance(m, CONTAINERS) and (_transparent(child) or type(child) is nn.Sequential)
            if level == 0 and (listed or (isinstance(child, nn.Sequential) and _transparent(child))):
                # an entry of a top-level list that holds steps (guided's input_blocks.3, lucidrains'
                # downs.0): a heading, as the symbolic builders make it
                blocks.append(p)
                walk(child, p, 1)
            elif _transparent(child):
                walk(child, p, level)
            elif level == 0 and any(isinstance(c, CONTAINERS) for c in child.children()):
                blocks.append(p)
                walk(child, p, 1)
            elif _has_params(child):
                units[p] = type(child).__name__

    walk(model.get_submodule(root), root, 0)
    return units, blocks


def _steps(model: nn.Module, path: str, canonical: dict[int, str]) -> list[str]:
    """The steps directly inside module ``path``: its children that hold parameters, through containers."""
    out: list[str] = []

    def walk(m: nn.Module, prefix: str) -> None:
        for name, child in m.named_children():
            p = f"{prefix}.{name}" if prefix else name
            if canonical.get(id(child)) != p or not _has_params(child):
                continue
            if isinstance(child, CONTAINERS):
                walk(child, p)
            else:
                out.append(p)

    walk(model.get_submodule(path), path)
    return out


def _wrapper(events: list[ModuleEvent], cap: Capture) -> bool:
    """A call of the module holds a U (a skip made and merged inside it) or returns maps of several sizes."""
    flow = cap.flow
    if all(tokens_only(cap.layers[ev.first:ev.last]) for ev in events):
        # only channel-last layers: it works on tokens (a Swin block), its 4-d maps are attention scores and
        # windows, no resolution of the U
        return False
    for ev in events:
        if len(set(ev.out_sizes)) > 1 or _down_and_up(ev, cap) or _cut_in_a_stage(ev, cap):
            return True
        for m in cap.merges:
            # a call that ends in a skip merge of its own forward returns the merge (MONAI's innermost
            # SkipConnection, cat(x, bottom(x))): the parameter-free cat is no step, the module it wraps is
            if m.skips and m.inside == ev.path and ev.enter <= m.time < ev.leave and m.at == ev.last:
                return True
            # a merge inside the call makes its result before the call ends: its clock is below ``leave``
            if ev.enter <= m.time < ev.leave and any(
                    ev.enter < flow.creation.get(flow.carrier.get(m.operands[i].key, m.operands[i].key), 0)
                    <= ev.leave for i in m.skips):
                return True
    return False


def _down_and_up(ev: ModuleEvent, cap: Capture) -> bool:
    """The call went below both its input's and its output's resolution: it holds a U (MONAI's innermost
    ``SkipConnection`` around a strided conv and its transposed conv)."""
    rank = cap.flow.rank
    if ev.in_shape is None or len(ev.in_shape) != rank:
        return False
    if ev.out_shape is None:  # cut short by the model's failure (a concat of 4x4 with 4x5): down, then up at all
        seen = [n for c, n, k in sorted(cap.flow.lows) if ev.enter < c <= ev.leave and k not in cap.flow.channel_last]
        low = seen.index(min(seen)) if seen else 0
        # up is an upsampling (as ``resampling`` reads one), not a rounding: a ResNet-D block's avg-pool floors
        # 127 to 63 where its strided conv makes 64, and the sum of the two fails
        return bool(seen) and seen[low] < _numel(ev.in_shape[2:]) and any(n > 1.5 * seen[low] for n in seen[low:])
    if len(ev.out_shape) != rank:
        return False
    least = min(_numel(ev.in_shape[2:]), _numel(ev.out_shape[2:]))
    return cap.flow.below(ev.enter, ev.leave, least)


def _cut_in_a_stage(ev: ModuleEvent, cap: Capture) -> bool:
    """The call was cut short by a failure inside one of its steps, after another step finished and below its
    input's resolution: an encoder that dies in its second stage, whose list of stage outputs never came. (A
    step failing in its own forward, a residual block's sum, is no wrapper: the failure is its.)"""
    at = cap.error_at or ""
    if ev.out_shape is not None or ev.in_shape is None or not at.startswith(f"{ev.path}."):
        return False
    finished = any(e.out_shape is not None and e.path.startswith(f"{ev.path}.") and ev.enter <= e.enter
                   and e.leave <= ev.leave for e in cap.modules)
    seen = [n for c, n, k in cap.flow.lows if ev.enter < c <= ev.leave and k not in cap.flow.channel_last]
    return finished and bool(seen) and min(seen) < _numel(ev.in_shape[2:])


def _numel(size: tuple[int, ...]) -> int:
    n = 1
    for d in size:
        n *= d
    return n


def data_units(model: nn.Module, cap: Capture, static: list[str], blocks: list[str]
               ) -> tuple[list[ModuleEvent], list[str]]:
    """(the unit calls in forward order, the block headings): ``static`` and ``blocks`` (``unit_paths``) with
    wrappers replaced by their steps, headings over several levels dissolved, stacks made headings (module
    docstring)."""
    canonical = {id(m): p for p, m in model.named_modules()}
    events: dict[str, list[ModuleEvent]] = {}
    for ev in cap.modules:
        events.setdefault(ev.path, []).append(ev)
    heads = [b for b in blocks if not _several_levels(events.get(b, []), cap)]
    for b in [b for b in heads if _returns_levels(events.get(b, []))]:
        # an encoder returning the maps of every level (SwinUNETR's swinViT) is no block: its steps are read
        # as the model's own, each stage holding a list of steps (a Swin BasicLayer) a heading over them
        inner, more = _read_tree(model, b, canonical)
        static = [p for p in static if not p.startswith(f"{b}.")] + list(inner)
        heads = [h for h in heads if h != b] + more
    chosen: set[str] = set()

    def expand(path: str) -> None:
        calls = events.get(path)
        if calls is None or _wrapper(calls, cap):
            inner = _steps(model, path, canonical)
            if inner:
                for p in inner:
                    expand(p)
                return
            if calls is not None and not any(True for _ in model.get_submodule(path).parameters(recurse=False)):
                # a wrapper whose steps are all registered first elsewhere (DynUNet's skip_layers chain, holding
                # input_block, downsamples.i, bottleneck, upsamples.i again): they are units under those paths
                return
        if calls is None:
            return
        stack = [] if enclosing(path, heads) else [p for p in _stack(model, path, canonical) if p in events]
        if stack:
            heads.append(path)
            for p in stack:
                expand(p)
        else:
            chosen.add(path)

    for p in static:
        expand(p)
    return [ev for ev in cap.modules if ev.path in chosen], heads


def _returns_levels(calls: list[ModuleEvent]) -> bool:
    """The heading's call returns maps at more than two sizes: a block returns at most its own level's and the
    next one's (a diffusers down block's resnet outputs and its downsampler's), so this spans levels."""
    return any(len(set(ev.out_sizes)) > 2 for ev in calls)


def _several_levels(calls: list[ModuleEvent], cap: Capture) -> bool:
    """The heading's calls merge skips at more than one resolution: it spans levels of the U."""
    sizes = {m.size for m in cap.merges for ev in calls if m.skips and ev.enter <= m.time < ev.leave}
    return len(sizes) > 1


def _stack(model: nn.Module, path: str, canonical: dict[int, str]) -> list[str]:
    """The entries of the stack module ``path`` is, or ``[]``: down the modules whose parameters lie in one
    child, the innermost plain ``nn.Sequential`` met, if its entries that hold parameters are all of one class
    and each a module of its own modules (a step, not a bare layer). ``encoder.stages.0`` (a Sequential holding
    a StackedConvBlocks) gives ``encoder.stages.0.0.convs.0`` and ``.1``; guided's ``out`` (GroupNorm, SiLU,
    conv) and MONAI's TwoConv (a Sequential subclass: one step, as its builder makes it) give nothing."""
    m, p, seq = model.get_submodule(path), path, ""
    while True:
        if type(m) is nn.Sequential:
            seq = p
        kids = [(f"{p}.{n}", c) for n, c in m.named_children()
                if canonical.get(id(c)) == f"{p}.{n}" and _has_params(c)]
        if len(kids) != 1:
            break
        p, m = kids[0]
    if not seq:
        return []
    entries = [(f"{seq}.{n}", c) for n, c in model.get_submodule(seq).named_children()
               if canonical.get(id(c)) == f"{seq}.{n}" and _has_params(c)]
    like = len({type(c) for _, c in entries}) == 1
    steps = all(any(True for _ in c.children()) and not isinstance(c, (nn.Sequential, *CONTAINERS)) for _, c in entries)
    return [q for q, _ in entries] if entries and like and steps else []


def unit_of(path: str, units: list[str]) -> str:
    """The unit a layer or a skip's source lies in; a path under none is its own."""
    return enclosing(path, units) or path
