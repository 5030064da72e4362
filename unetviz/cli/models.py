"""The commands about a model: ``table``, ``graph``, ``verify``, ``cost``, ``diff`` and ``presets``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    ConfigOpt,
    ConfigurationOpt,
    ContextOpt,
    CostFormat,
    DatasetOpt,
    DebugOpt,
    Depth,
    Detail,
    Dtype,
    Format,
    PresetOpt,
    SizeOpt,
    SourceArg,
    _model_fails,
    _print,
    _source,
    _warn,
    app,
    width,
)


@app.command(epilog="Examples: [bold]unetviz table sd15[/bold] · [bold]unetviz table sdxl --depth blocks[/bold] ·"
                    " [bold]unetviz table -c unet/config.json -s 64x96 -f json[/bold]")
def table(source: SourceArg = None, preset: PresetOpt = None, config: ConfigOpt = None,
          configuration: ConfigurationOpt = None, dataset: DatasetOpt = None, size: SizeOpt = None,
          format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.rich,
          depth: Annotated[Depth, typer.Option("--depth", "-d", help="One row per resnet/attention/sampler,"
                                               " per layer, or per block.")] = Depth.units,
          pair: Annotated[str | None, typer.Option("--pair", help="For a ControlNet: the U-Net (preset or config)"
                                                   " whose skips its residuals are added to.",
                                                   show_default=False)] = None,
          context: ContextOpt = None, debug: DebugOpt = False) -> int:
    """Every unit's (or layer's) channels and sizes, the skip pushes and pops, and each concat's sum.


    SIZE: N, HxW, DxHxW (volumes), FxHxW (video frames), or Npx / HxWpx: the image of a latent model."""
    from ..api import trace

    if pair is not None:
        return _pair(_source(source, preset, config), pair, size, format)
    t = trace(_source(source, preset, config, configuration, dataset), size=size, context=context)
    _warn(t)
    if format is Format.rich:
        from ..render.table import render_table

        _print(render_table(t, depth.value, width()))
        return _model_fails(t, printed=True)
    from ..render.formats import render_text

    _print(render_text(t, format.value, depth.value))
    return _model_fails(t, printed=False)


def _pair(controlnet: str | Path | dict[str, Any], unet: str, size: str | None, format: Format) -> int:
    import json

    from ..analysis.controlnet_pair import pair_sources
    from ..render.pair import pair_dict, render_pair

    p = pair_sources(controlnet, _source(unet, None, None), size)
    _print(json.dumps(pair_dict(p), indent=2) + "\n" if format is Format.json else render_pair(p, width()))
    return 0 if p.ok else 1


@app.command(epilog="Examples: [bold]unetviz graph sd15 -o sd15.svg[/bold] ·"
                    " [bold]unetviz graph sd15 --detail layers -o sd15-layers.png[/bold]")
def graph(source: SourceArg = None, preset: PresetOpt = None, config: ConfigOpt = None,
          configuration: ConfigurationOpt = None, dataset: DatasetOpt = None, size: SizeOpt = None,
          out: Annotated[Path, typer.Option("--out", "-o", help="FILE.svg | .png | .pdf | .dot",
                                            show_default=False)] = Path("unet.svg"),
          detail: Annotated[Detail, typer.Option("--detail", help="One node per block, per unit, or per layer"
                                                 " (data flow).")] = Detail.units,
          pair: Annotated[str | None, typer.Option("--pair", help="SOURCE is a ControlNet: draw this U-Net (preset"
                                                   " or config) with the ControlNet's residuals beside its"
                                                   " encoder.", show_default=False)] = None,
          color: Annotated[str, typer.Option("--color", help="Fill nodes by their kind, or by their MACs (a heat"
                                             " map: kind|macs).")] = "kind",
          context: ContextOpt = None, debug: DebugOpt = False) -> int:
    """A U-shaped Graphviz diagram with labelled skip connections and concat sums."""
    from ..api import trace
    from ..render.graph.draw import write_graph

    if pair is not None:  # what pair_sources does, keeping both traces for the drawing
        from ..analysis.controlnet_pair import pair as pair_traces
        from ..render.graph.pair import write_graph_pair

        u = trace(_source(pair, None, None), size=size)
        _warn(u)
        src = _source(source, preset, config, configuration, dataset)
        c = trace(src, size=(u.in_size[0], u.in_size[-1]) if u.in_size else (64, 64))
        p = pair_traces(c, u)
        print(write_graph_pair(p, u, c, out, detail.value))
        if not p.ok:
            print(f"error: {p.message}", file=sys.stderr)
        return 0 if p.ok else 1
    t = trace(_source(source, preset, config, configuration, dataset), size=size, context=context)
    _warn(t)
    print(write_graph(t, out, detail.value, color))
    return _model_fails(t, printed=False)


@app.command(epilog="Examples: [bold]unetviz verify sd15[/bold] · [bold]unetviz verify sdxl -s 60x60[/bold] ·"
                    " [bold]unetviz verify sd15 --context 77x1024[/bold]")
def verify(source: SourceArg = None, preset: PresetOpt = None, config: ConfigOpt = None,
           configuration: ConfigurationOpt = None, dataset: DatasetOpt = None, size: SizeOpt = None,
           context: ContextOpt = None, debug: DebugOpt = False) -> int:
    """Check the trace against the real model built on torch's meta device (needs torch + the upstream package)."""
    from ..api import verify as run
    from ..render.report import render_report

    report = run(_source(source, preset, config, configuration, dataset), size, context)
    _print(render_report(report))
    # agreeing on where the model fails is agreement (0); `unetviz table` exits 1 for that failure
    return 0 if report.ok else 1


@app.command(epilog="Examples: [bold]unetviz cost sd15[/bold] · [bold]unetviz cost sdxl --sizes"
                    " 512px,768px,1024px,1536px --plot sdxl.svg[/bold] · [bold]unetviz cost sd15 --sizes 64,96 -f json"
                    "[/bold] · [bold]unetviz cost svd --size 14x576x1024px[/bold]")
def cost(source: SourceArg = None, preset: PresetOpt = None, config: ConfigOpt = None,
         configuration: ConfigurationOpt = None, dataset: DatasetOpt = None,
         sizes: Annotated[str | None, typer.Option("--sizes", "--size", help="Comma-separated sizes, each as"
                                                   " --size takes it: the model's own input (N, HxW, FxHxW; a latent"
                                                   " for latent models) or the image with px (1024px, 768x1344px);"
                                                   " default: the model's size x 0.5 to 2.",
                                                   show_default=False)] = None,
         batch: Annotated[int | None, typer.Option("--batch", "-b", min=1, help="Batch size for memory; default: the"
                                                   " config's (an nnU-Net plans' batch_size), else 1.",
                                                   show_default=False)] = None,
         dtype: Annotated[Dtype, typer.Option("--dtype", help="Activation dtype for memory.")] = Dtype.fp16,
         format: Annotated[CostFormat, typer.Option("--format", "-f", help="Output format.")] = CostFormat.rich,
         plot: Annotated[Path | None, typer.Option("--plot", help="Also draw how MACs and memory grow with"
                                                   " resolution: FILE.svg or .png.", show_default=False)] = None,
         debug: DebugOpt = False) -> int:
    """MACs and memory (weights, inference, training) at several sizes and per level, from the config alone.

    MACs follow FlopCounterMode's convention, with and without the attention matmuls."""
    from ..render.cost import run_cost

    src = _source(source, preset, config, configuration, dataset)
    out, code = run_cost(src, sizes, batch, dtype.value, format.value, plot, width())
    _print(out)
    return code


@app.command(epilog="Examples: [bold]unetviz diff sd15 sd21[/bold] · [bold]unetviz diff sd15 sdxl --changed[/bold]")
def diff(a: Annotated[str, typer.Argument(help="A preset name or a config file.", show_default=False)],
         b: Annotated[str, typer.Argument(help="A preset name or a config file.", show_default=False)],
         size: SizeOpt = None,
         changed: Annotated[bool, typer.Option("--changed", help="Only the units that differ.")] = False,
         debug: DebugOpt = False) -> int:
    """Two models side by side, block by block and unit by unit, with a summary in plain words."""
    from ..analysis.diff import diff as compare
    from ..render.diff import render_diff

    _print(render_diff(compare(_source(a, None, None), _source(b, None, None), size=size), width(), changed))
    return 0


@app.command(epilog="Example: [bold]unetviz presets --names[/bold]")
def presets(names: Annotated[bool, typer.Option("--names", help="Only the names, one a line.")] = False,
            debug: DebugOpt = False) -> int:
    """The built-in presets, with their figures computed now."""
    from ..presets import PRESETS

    if names:
        _print("".join(f"{n}\n" for n in PRESETS))
        return 0
    from ..api import trace
    from ..render.presets import render_presets

    _print(render_presets([(p, trace(name)) for name, p in PRESETS.items()], width()))
    return 0
