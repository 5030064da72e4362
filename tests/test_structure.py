"""The structure every family shares: the records, the registry, the kinds, the quantities, the manifest.

Symbolic only (no torch): nothing here is skipped for a missing upstream package.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

import unetviz
from unetviz.core.kinds import KIND_NAMES, KINDS, kind_of
from unetviz.core.quantities import LAYER_QUANTITIES
from unetviz.core.records import Layer, Unit, numel, within
from unetviz.families import FAMILIES, lookup
from unetviz.render.rows import block_rows

PRESETS = list(unetviz.PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
def test_tracing_every_preset_never_imports_torch(preset: str) -> None:
    code = (f"import sys, unetviz; t = unetviz.trace({preset!r}); t.to_json(); unetviz.weights({preset!r})\n"
            "from unetviz.render.formats import to_markdown, to_csv, to_html; to_markdown(t); to_csv(t); to_html(t)\n"
            "bad = [m for m in ('torch', 'diffusers', 'numpy') if m in sys.modules]; sys.exit(','.join(bad) or 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("preset", PRESETS)
def test_units_and_blocks_partition_the_layers_and_sum_to_the_model(preset: str) -> None:
    t = unetviz.trace(preset)
    covered = [i for u in t.units for i in range(u.first, u.last)]
    assert covered == list(range(len(t.layers)))  # every layer in exactly one unit, in order
    # tensors of modules the constructor makes and the forward never runs (nnU-Net's deep-supervision heads at
    # inference) have no layer row; every other parameter is a layer's; an alias key repeats another tensor
    owned = {k for x in t.layers for k, _ in x.tensors}
    unrun = {k: s for k, s in t.manifest if k not in owned and k not in t.buffers and k not in t.aliases}
    assert sum(u.params for u in t.units) == sum(x.params for x in t.layers) + sum(map(numel, unrun.values())) \
        == t.params
    rows = block_rows(t)

    def inside(path: str) -> int:
        return sum(numel(s) for k, s in unrun.items() if within(k.rsplit(".", 1)[0], path))

    assert sum(sum(x.params for x in r.layers) + inside(r.path) for r in rows) == t.params
    # a block's params are exactly the state_dict tensors under its path (head and tail are blocks of their own)
    for r in rows:
        under = sum(numel(s) for k, s in t.manifest
                    if within(k.rsplit(".", 1)[0], r.path) and k not in t.buffers and k not in t.aliases)
        assert sum(x.params for x in r.layers) + inside(r.path) == under, r.path


@pytest.mark.parametrize("preset", PRESETS)
def test_every_unit_kind_is_in_the_vocabulary(preset: str) -> None:
    assert {u.kind for u in unetviz.trace(preset).units} <= set(KIND_NAMES)


def test_every_kind_has_a_colour_and_a_legend_label() -> None:
    assert set(KINDS) == set(KIND_NAMES)
    assert all(s.color.startswith("#") and s.label for s in KINDS.values())


def test_the_classifier_reads_norms_as_norms_and_samplers_by_size() -> None:
    assert kind_of("conv_norm_out", "GroupNorm") == "norm"  # "up" must not win over "norm"
    assert kind_of("up_blocks.0.upsamplers.0", "Upsample2D") == "upsample"
    assert kind_of("input_blocks.3.0", "ResBlock", (32, 32), (16, 16)) == "downsample"
    assert kind_of("down.0", "Down", (572, 572), (568, 568)) == "conv"


def test_records_are_keyword_only_and_frozen() -> None:
    t = unetviz.trace("ddpm-cifar10")
    for record in (t.layers[0], t.units[0], t.skips[0], t.concats[0], t):
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.path = "x"  # type: ignore[misc,union-attr]
    with pytest.raises(TypeError):
        Layer("conv_in", "Conv2d", 3, 8, (8, 8), (8, 8))  # type: ignore[call-arg]
    # a written docstring (dataclass makes one from the signature when there is none) and keyword-only fields
    assert Unit.__doc__ is not None and not Unit.__doc__.startswith("Unit(")
    assert all(f.kw_only for f in dataclasses.fields(Unit))


def test_the_registry_has_one_record_per_class_and_finds_each_family() -> None:
    keys = [f.key for f in FAMILIES]
    assert len(keys) == len(set(keys))
    for preset in PRESETS:
        family, _ = lookup(unetviz.api.resolve(preset)[0])
        assert family.family == unetviz.trace(preset).family


def test_a_quantity_is_one_function_summed_everywhere() -> None:
    t = unetviz.trace("sd15")
    d = t.to_dict()
    for q in LAYER_QUANTITIES:
        assert all(layer[q.name] == q.of_layer(x) for layer, x in zip(d["layers"], t.layers, strict=True))
        assert sum(u[q.name] for u in d["units"]) == sum(q.of_layer(x) for x in t.layers)


@pytest.mark.parametrize("preset, size", [("ddpm-cifar10", 31), ("unet2d-attn-64", 50), ("ddpm-lucidrains", 60),
                                          ("iddpm-cifar10", 30), ("adm-imagenet256", 250), ("ronneberger2015", 64)])
def test_a_failing_trace_still_has_the_whole_manifest(preset: str, size: int) -> None:
    t = unetviz.trace(preset, size=size)
    assert t.error is not None
    w = unetviz.weights(preset)
    assert t.manifest == w.manifest and t.params == w.params


def test_the_failing_2015_unet_reports_its_params() -> None:
    t = unetviz.trace("ronneberger2015", size=64)
    assert t.error is not None and t.params == 31_030_658 and len(t.manifest) == 46


def test_weights_of_a_model_that_runs_only_at_odd_sizes() -> None:
    config = {"_class_name": "UNet2DModel", "block_out_channels": [32, 64], "norm_num_groups": 8,
              "down_block_types": ["DownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "UpBlock2D"],
              "downsample_padding": 2, "sample_size": 16}
    w = unetviz.weights(config)
    assert len(w.manifest) > 0 and w.params == sum(numel(s) for _, s in w.manifest)
    assert unetviz.trace(config).manifest == w.manifest


def test_a_trace_repr_is_short() -> None:
    r = repr(unetviz.trace("sdxl"))
    assert len(r) < 200 and "2,567,463,684 params" in r
