"""The commands about weights and files: ``weights``, ``keymap``, ``inspect``, ``fit`` and ``why``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    ConfigOpt,
    ConfigurationOpt,
    DatasetOpt,
    DebugOpt,
    KeymapFormat,
    Naming,
    PresetOpt,
    SourceArg,
    WeightsFormat,
    _print,
    _source,
    app,
    width,
)


@app.command(epilog="Examples: [bold]unetviz weights sd15 -f json[/bold] ·"
                    " [bold]unetviz weights sd15 --naming original[/bold] ·"
                    " [bold]unetviz weights sd15 --check v1-5-pruned.safetensors[/bold]")
def weights(source: SourceArg = None, preset: PresetOpt = None, config: ConfigOpt = None,
            configuration: ConfigurationOpt = None, dataset: DatasetOpt = None,
            format: Annotated[WeightsFormat, typer.Option("--format", "-f",
                                                          help="Output format.")] = WeightsFormat.rich,
            naming: Annotated[Naming | None, typer.Option("--naming", help="Key names: diffusers' or the original"
                                                          " CompVis/Stability ones (Stable Diffusion U-Nets);"
                                                          " default: the source's own.", show_default=False)] = None,
            check: Annotated[Path | None, typer.Option("--check", help="Compare with a .safetensors header or a .json"
                                                       " manifest, in either naming, under the usual prefixes"
                                                       " (nothing is unpickled).", show_default=False)] = None,
            debug: DebugOpt = False) -> int:
    """The state_dict manifest: every key and shape, in the real model's order, at no particular size."""
    import json

    from .. import api
    from ..render.weights import render_check, render_weights

    src = _source(source, preset, config, configuration, dataset)
    if check is not None:
        result = api.check(src, check, None if naming is None else naming.value)
        if format is WeightsFormat.json:
            _print(json.dumps(result.to_dict(), indent=1) + "\n")
        else:
            _print(render_check(result, str(check), width()) + "\n")
        return 0 if result.ok else 1
    w = api.weights(src, None if naming is None else naming.value)
    _print(w.to_json() + "\n" if format is WeightsFormat.json else render_weights(w, width()))
    return 0


@app.command(epilog="Examples: [bold]unetviz keymap sd15 -f csv > sd15-keys.csv[/bold] ·"
                    " [bold]unetviz keymap sdxl -f json[/bold]")
def keymap(source: SourceArg = None, preset: PresetOpt = None, config: ConfigOpt = None,
           format: Annotated[KeymapFormat, typer.Option("--format", "-f", help="Output format.")] = KeymapFormat.rich,
           debug: DebugOpt = False) -> int:
    """Every tensor in both namings (diffusers <-> original CompVis/Stability), one to one, with its shape."""
    from ..api import keymap as run
    from ..render.keymap import keymap_csv, keymap_json, keymap_lines

    pairs = run(_source(source, preset, config))
    if format is KeymapFormat.json:
        _print(keymap_json(pairs))
    elif format is KeymapFormat.csv:
        _print(keymap_csv(pairs))
    else:
        _print("\n".join(keymap_lines(pairs, width())) + "\n")
    return 0


@app.command(epilog="Examples: [bold]unetviz inspect v1-5-pruned.safetensors[/bold] ·"
                    " [bold]unetviz inspect unet.safetensors -f json[/bold]")
def inspect(file: Annotated[Path, typer.Argument(help="A .safetensors file (only its header is read) or a .json"
                                                 " manifest.", show_default=False)],
            format: Annotated[WeightsFormat, typer.Option("--format", "-f",
                                                          help="Output format.")] = WeightsFormat.rich,
            debug: DebugOpt = False) -> int:
    """What is this file? Its kind, the base model its widths declare, its details and config.

    A U-Net checkpoint, LoRA/LyCORIS, ControlNet, T2I-/IP-Adapter, motion module, VAE or text encoder: its base
    model (read from its widths), its details, and a config where unetviz traces it."""
    import json

    from ..api import inspect as run
    from ..render.inspect import inspect_dict, render_identified

    found, check = run(file)  # a kind unetviz traces is compared with its rebuilt config's manifest
    if format is WeightsFormat.json:
        _print(json.dumps(inspect_dict(found, file.name, check), indent=1) + "\n")
    else:
        _print(render_identified(found, check, str(file), width()))
    return 0


@app.command(epilog="Examples: [bold]unetviz fit sd15 lora.safetensors[/bold] ·"
                    " [bold]unetviz fit v1-5-pruned.safetensors lora.safetensors -f json[/bold]")
def fit(base: Annotated[str, typer.Argument(help="The base model: a checkpoint (.safetensors), a preset name or a"
                                             " config file.", show_default=False)],
        files: Annotated[list[Path], typer.Argument(help="The add-ons: LoRAs, ControlNets, adapters, motion modules,"
                                                     " VAEs... (.safetensors; only headers are read).",
                                                show_default=False)],
        format: Annotated[WeightsFormat, typer.Option("--format", "-f", help="Output format.")] = WeightsFormat.rich,
        debug: DebugOpt = False) -> int:
    """Do these files load together? Each add-on's targets, dropped keys and shape clashes.

    For each add-on: the modules of the base it targets, the keys a loader would drop, every shape clash with
    its layer and both widths. Exit 0 they fit, 1 they do not, 2 bad input."""
    import json

    from ..api import fit as run
    from ..render.fit import render_fit

    report = run(base, files)
    if format is WeightsFormat.json:
        _print(json.dumps(report.to_json(), indent=1) + "\n")
    else:
        _print(render_fit(report, width()))
    return 0 if report.ok else 1


@app.command(epilog="Examples: [bold]unetviz why \"mat1 and mat2 shapes cannot be multiplied (77x2048 and"
                    " 768x320)\"[/bold] · [bold]unetviz why \"Given groups=1, weight of size [320, 4, 3, 3], expected"
                    " input[1, 9, 64, 64] to have 4 channels, but got 9 channels instead\" -m sd15[/bold]")
def why(text: Annotated[str, typer.Argument(help="The error text, or a whole traceback, as pasted.",
                                            show_default=False)],
        model: Annotated[str | None, typer.Option("--model", "-m", help="Narrow the search to this model: a preset"
                                                  " name, a config file or a checkpoint.")] = None,
        format: Annotated[WeightsFormat, typer.Option("--format", "-f", help="Output format.")] = WeightsFormat.rich,
        debug: DebugOpt = False) -> int:
    """Which layers and models a pasted shape error is about, the likely cause and the fix.

    Exit 0 with an answer, 1 when nothing unetviz knows matches, 2 for text that is not an error."""
    import json

    from ..api import why as run
    from ..render.why import render_why

    found = run(text, model)
    if format is WeightsFormat.json:
        _print(json.dumps(found.to_json(), indent=1) + "\n")
    else:
        _print(render_why(found, width()))
    return 0 if found.matched else 1
