"""``unetviz.verify``: the symbolic diffusers traces against the real models on the meta device."""

from __future__ import annotations

from dataclasses import replace

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import unetviz
from unetviz.api import resolve
from unetviz.core.quantities import is_free
from unetviz.families import lookup
from unetviz.live.verification import compare, observe_real, verify
from unetviz.render.report import render_report, verdict

DIFFUSERS_PRESETS = ["sd15", "sd21", "sdxl", "ddpm-cifar10", "unet2d-attn-64"]


def _ok(report: unetviz.live.verification.Report) -> None:
    assert report.ok, "\n".join(f"{d.what} {d.path}: ours {d.ours}, real {d.real}" for d in report.disagreements)


@pytest.mark.parametrize("preset", DIFFUSERS_PRESETS)
def test_presets_agree_at_default_size(preset: str) -> None:
    report = verify(preset)
    _ok(report)
    ours = unetviz.trace(preset)
    assert report.counts["layers"] == len([x for x in ours.layers if not is_free(x)]) > 0
    assert report.counts["tensors"] == len(ours.manifest)
    assert report.counts["concats"] == len(ours.concats) == len(ours.skips)
    # three witnesses: the symbolic manifest, the real state_dict and torchinfo's module walk
    assert report.params_ours == report.params_real == report.params_torchinfo
    assert report.output_real == report.output_ours == (ours.out_channels, *ours.in_size)
    assert report.error_ours is None and report.error_real is None


@pytest.mark.parametrize(("preset", "size"), [("sd15", "64x96"), ("ddpm-cifar10", "32x48"),
                                              ("unet2d-attn-64", "48x80")])
def test_non_square_sizes_agree(preset: str, size: str) -> None:
    report = verify(preset, size)
    _ok(report)
    h, w = (int(v) for v in size.split("x"))
    assert report.output_real is not None and report.output_real[1:] == (h, w)


def test_sd15_at_60_runs_through_upsample_size() -> None:
    # 60 is not divisible by 8: diffusers forwards upsample_size, so the decoder meets every skip
    report = verify("sd15", 60)
    _ok(report)
    assert report.error_real is None and report.output_real == (4, 60, 60)


@pytest.mark.parametrize("size", [30, "31x32"])
def test_ddpm_cifar10_odd_size_fails_in_both_at_the_same_place(size: int | str) -> None:
    # UNet2DModel never passes upsample_size: a skip at 7x7 meets an upsampled 6x6
    report = verify("ddpm-cifar10", size)
    _ok(report)
    assert report.error_ours is not None and report.error_real is not None
    assert report.output_ours is None and report.output_real is None
    assert report.error_ours.startswith("up_blocks.1")
    assert report.error_real.startswith("up_blocks.1")
    assert "Sizes of tensors must match" in report.error_real
    assert "failed after layer up_blocks.0.upsamplers.0.conv" in report.error_real


@pytest.fixture(scope="module")
def cifar_pair() -> tuple[unetviz.Trace, unetviz.Trace]:
    ours = unetviz.trace("ddpm-cifar10")
    family, kwargs = lookup(resolve("ddpm-cifar10")[0])
    real, _, _, _ = observe_real(family, kwargs, ours, {})
    return ours, real


def test_a_perturbed_layer_is_caught_with_both_values(cifar_pair: tuple[unetviz.Trace, unetviz.Trace]) -> None:
    ours, real = cifar_pair
    assert compare(ours, real) == []
    i = next(i for i, x in enumerate(ours.layers) if x.path == "up_blocks.1.resnets.0.conv1")
    bad = replace(ours, layers=(*ours.layers[:i], replace(ours.layers[i], in_channels=999), *ours.layers[i + 1:]))
    diffs = compare(bad, real)
    assert [(d.what, d.path, d.ours, d.real) for d in diffs] == [
        ("layer.in_channels", "up_blocks.1.resnets.0.conv1", "999", "512")]


def test_a_perturbed_skip_concat_and_manifest_are_caught(cifar_pair: tuple[unetviz.Trace, unetviz.Trace]) -> None:
    ours, real = cifar_pair
    c = ours.concats[0]
    ops = (c.inputs[0], replace(c.inputs[1], skip=3, source="conv_in"))
    skips = tuple(replace(s, to="nowhere") if s.index == 0 else s for s in ours.skips)
    key, shape = ours.manifest[5]
    manifest = (*ours.manifest[:5], (key, (*shape, 2)), *ours.manifest[6:])
    bad = replace(ours, concats=(replace(c, inputs=ops), *ours.concats[1:]), skips=skips, manifest=manifest)
    got = {(d.what, d.path, d.ours, d.real) for d in compare(bad, real)}
    assert ("concat.input[1].skip", "up_blocks.0.resnets.0", "3", "11") in got
    assert ("concat.input[1].from", "up_blocks.0.resnets.0", "conv_in", "down_blocks.3.resnets.1") in got
    assert ("skip.to", "skip 0", "nowhere", "up_blocks.3.resnets.2") in got
    assert ("manifest.shape", key, "x".join(map(str, (*shape, 2))), "x".join(map(str, shape))) in got
    assert any(d[0] == "params" for d in got)


def test_units_and_blocks_are_compared_and_norms_observed_as_norms(
        cifar_pair: tuple[unetviz.Trace, unetviz.Trace]) -> None:
    ours, real = cifar_pair
    observed = {u.path: u.kind for u in real.units}
    assert observed["conv_norm_out"] == "norm" and observed["up_blocks.0.upsamplers.0"] == "upsample"
    j = next(j for j, u in enumerate(ours.units) if u.path == "down_blocks.1.attentions.0")
    bad = replace(ours, units=(*ours.units[:j], replace(ours.units[j], kind="resnet"), *ours.units[j + 1:]))
    assert [(d.what, d.path, d.ours, d.real) for d in compare(bad, real)] == [
        ("unit.kind", "down_blocks.1.attentions.0", "resnet", "attention")]
    moved = replace(ours, units=(*ours.units[:j], replace(ours.units[j], block="down_blocks.2"),
                                 *ours.units[j + 1:]))
    got = {d.what for d in compare(moved, real)}
    assert {"unit.block", "block.params"} <= got


def test_a_swapped_layer_order_is_caught(cifar_pair: tuple[unetviz.Trace, unetviz.Trace]) -> None:
    ours, real = cifar_pair
    layers = list(ours.layers)
    layers[3], layers[4] = layers[4], layers[3]
    diffs = compare(replace(ours, layers=tuple(layers)), real)
    assert diffs[0].what == "layer.path" and diffs[0].path == "#3"
    assert ours.layers[4].path in diffs[0].ours and ours.layers[3].path in diffs[0].real


def test_render_report_shows_verdict_and_every_disagreement(cifar_pair: tuple[unetviz.Trace, unetviz.Trace]) -> None:
    from rich.console import Console

    report = verify("ddpm-cifar10")
    console = Console(width=200, record=True, color_system=None)
    console.print(render_report(report))
    text = console.export_text()
    assert f"{report.counts['layers']} layers, 38 units, 13 blocks, 12 concats, 328 tensors agree" in text
    assert "params 35,746,307 (torchinfo 35,746,307)" in text
    bad = replace(report, ok=False, disagreements=(
        unetviz.live.verification.Disagreement("layer.out_channels", "conv_in", "7", "128"),))
    console = Console(width=200, record=True, color_system=None)
    console.print(render_report(bad))
    text = console.export_text()
    assert "1 disagreement(s)" in text and "layer.out_channels" in text and "conv_in" in text
    assert "7" in text and "128" in text
    assert verdict(bad).startswith("ddpm-cifar10 at 32x32:")


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(unetviz.UnetvizError, match="family"):
        verify({"family": "nosuch"})


@pytest.mark.parametrize(("preset", "package"), [("ddpm-lucidrains", "denoising_diffusion_pytorch"),
                                                 ("iddpm-cifar10", "guided_diffusion"),
                                                 ("adm-imagenet256", "guided_diffusion"),
                                                 ("ronneberger2015", "torch")])
def test_other_families_agree(preset: str, package: str) -> None:
    # the verifier is family-agnostic: the same capture checks every builder behind the adapters
    pytest.importorskip(package)
    report = verify(preset)
    _ok(report)
    assert report.params_ours == report.params_real == report.params_torchinfo
    assert report.counts["concats"] > 0


def test_unetviz_verify_stays_callable_after_the_submodule_is_imported() -> None:
    # the implementation lives in unetviz.live.verification, so importing it cannot rebind unetviz.verify
    import unetviz.live.verification as module

    assert unetviz.verify.__module__ == "unetviz.api" and module.verify.__module__ == "unetviz.live.verification"
    assert unetviz.verify is not module.verify  # the facade, not the submodule's function, is the package's name
    assert unetviz.verify("ddpm-cifar10", "32x40").ok and unetviz.verify("ddpm-cifar10").ok
