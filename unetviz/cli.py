"""The command line (typer): the only module that prints.

Exit codes: 0 ok; 1 the model fails at this input or ``verify`` found a disagreement; 2 bad input,
as one line on stderr. Everything heavy (rich, the tracer, torch) is imported inside the commands,
so ``unetviz --help`` and a JSON trace start fast.
"""

from __future__ import annotations

import copy
import gc
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from .core.errors import UnetvizError, did_you_mean


class _Group(TyperGroup):
    """Subcommands in the order declared, and a did-you-mean for a mistyped one."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if args and name not in self.commands and not name.startswith("-"):
            hint = did_you_mean(name, self.commands)
            raise UnetvizError(f"command: no command {name!r}{hint} (allowed: {', '.join(self.commands)})")
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=_Group, no_args_is_help=True, rich_markup_mode="rich", add_completion=True,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Show how a U-Net's channels, skip connections and resolutions evolve, layer by layer,"
                       " from its config alone, and check it against the real model.\n\n"
                       "Start with: [bold]unetviz table sd15[/bold]  (or any preset from [bold]unetviz presets[/bold],"
                       " or a config: [bold]unetviz table --config unet/config.json[/bold])")


class Format(str, Enum):
    rich = "rich"
    json = "json"
    csv = "csv"
    md = "md"


class Depth(str, Enum):
    units = "units"
    layers = "layers"
    blocks = "blocks"


class Detail(str, Enum):
    blocks = "blocks"
    units = "units"
    layers = "layers"


class WeightsFormat(str, Enum):
    rich = "rich"
    json = "json"


SourceArg = Annotated[str | None, typer.Argument(help="A preset name or a config file / model folder.",
                                                 show_default=False)]
PresetOpt = Annotated[str | None, typer.Option("--preset", "-p", help="A preset name (see `unetviz presets`).",
                                               show_default=False)]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="A config .json/.yaml, or a model folder"
                                                " holding config.json.", show_default=False)]
SizeOpt = Annotated[str | None, typer.Option("--size", "-s", help="The model's own input: N (NxN; a 1-D model's"
                                             " length), HxW, DxHxW (volumes) or FxHxW (video frames); a latent for"
                                             " latent models, or the image with px (1024px, 768x1344px); default:"
                                             " the config's own.", show_default=False)]
ContextOpt = Annotated[str | None, typer.Option("--context", help="The encoder_hidden_states a caller passes:"
                                                " TOKENSxWIDTH (77x1024) or none; default: what the model's"
                                                " pipeline passes.", show_default=False)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]
ConfigurationOpt = Annotated[str | None, typer.Option("--configuration", help="nnU-Net plans: which configuration"
                                                      " (2d, 3d_fullres...); default: 3d_fullres where there is"
                                                      " one.", show_default=False)]
DatasetOpt = Annotated[Path | None, typer.Option("--dataset", help="nnU-Net plans: the dataset.json giving the"
                                                 " channels and classes; default: the one beside the plans.",
                                                 show_default=False)]


def _source(source: str | None, preset: str | None, config: Path | None, configuration: str | None = None,
            dataset: Path | None = None) -> str | Path | dict[str, Any]:
    """--preset only names presets, --config only reads files; a bare SOURCE is a path if one exists. An nnU-Net
    plans file (or trained-model folder) becomes the config of the configuration chosen."""
    given = [x for x in (source, preset, config) if x is not None]
    if len(given) != 1:
        raise UnetvizError("give exactly one of SOURCE, --preset NAME or --config FILE (e.g. `unetviz table sd15`)")
    path = config
    if source is not None and (Path(source).exists() or Path(source).suffix.lower() in (".json", ".yaml", ".yml")):
        path = Path(source)
    if path is None:
        from .presets import find_preset

        if configuration is not None or dataset is not None:
            raise UnetvizError("--configuration/--dataset: only an nnU-Net plans file has them, not a preset")
        return find_preset(str(preset or source)).name  # an unknown name gets a did-you-mean, never a file lookup
    from .tracing import resolve_named

    resolved, _, _ = resolve_named(path, configuration, dataset)
    return resolved if "_name" in resolved else path  # a plans configuration carries its own name


def width() -> int:
    """The terminal's width; piped output honours ``COLUMNS`` (default 120)."""
    import os
    import shutil

    if sys.stdout.isatty():
        return shutil.get_terminal_size((120, 40)).columns
    try:
        return max(40, int(os.environ.get("COLUMNS", "120")))
    except ValueError:
        return 120


def _print(renderable: Any) -> None:
    if isinstance(renderable, str):
        sys.stdout.write(renderable)
        return
    from rich.console import Console

    if sys.stdout.isatty():
        Console(width=width()).print(renderable)
        return
    console = Console(width=width(), color_system=None)
    with console.capture() as cap:
        console.print(renderable)
    sys.stdout.write("\n".join(line.rstrip() for line in cap.get().splitlines()) + "\n")


def _warn(trace: Any) -> None:
    for line in getattr(trace, "warnings", ()):
        print(f"warning: {line}", file=sys.stderr)


def _model_fails(trace: Any, printed: bool) -> int:
    if trace.error is None:
        return 0
    if not printed:
        print(f"error: the model fails at this input: {trace.error.message}", file=sys.stderr)
    return 1


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

    SIZE is HxW for images and N (the length) for 1-D models."""
    from .api import trace

    if pair is not None:
        return _pair(_source(source, preset, config), pair, size, format)
    t = trace(_source(source, preset, config, configuration, dataset), size=size, context=context)
    _warn(t)
    if format is Format.rich:
        from .render.table import render_table

        _print(render_table(t, depth.value, width()))
        return _model_fails(t, printed=True)
    from .render.formats import render_text

    _print(render_text(t, format.value, depth.value))
    return _model_fails(t, printed=False)


class Naming(str, Enum):
    diffusers = "diffusers"
    original = "original"


def _pair(controlnet: str | Path | dict[str, Any], unet: str, size: str | None, format: Format) -> int:
    import json

    from .analysis.controlnet_pair import pair_sources
    from .render.pair import pair_dict, render_pair

    p = pair_sources(controlnet, _source(unet, None, None), size)
    _print(json.dumps(pair_dict(p), indent=2) + "\n" if format is Format.json else render_pair(p, width()))
    return 0 if p.ok else 1


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

    from . import api
    from .render.weights import render_check, render_weights

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


class KeymapFormat(str, Enum):
    rich = "rich"
    json = "json"
    csv = "csv"


@app.command(epilog="Examples: [bold]unetviz keymap sd15 -f csv > sd15-keys.csv[/bold] ·"
                    " [bold]unetviz keymap sdxl -f json[/bold]")
def keymap(source: SourceArg = None, preset: PresetOpt = None, config: ConfigOpt = None,
           format: Annotated[KeymapFormat, typer.Option("--format", "-f", help="Output format.")] = KeymapFormat.rich,
           debug: DebugOpt = False) -> int:
    """Every tensor in both namings (diffusers <-> original CompVis/Stability), one to one, with its shape."""
    from .api import keymap as run
    from .render.keymap import keymap_csv, keymap_json, keymap_lines

    pairs = run(_source(source, preset, config))
    if format is KeymapFormat.json:
        _print(keymap_json(pairs))
    elif format is KeymapFormat.csv:
        _print(keymap_csv(pairs))
    else:
        _print("\n".join(keymap_lines(pairs, width())) + "\n")
    return 0


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
    from .api import trace
    from .render.graph.draw import write_graph

    if pair is not None:  # what pair_sources does, keeping both traces for the drawing
        from .analysis.controlnet_pair import pair as pair_traces
        from .render.graph.pair import write_graph_pair

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
    from .api import verify as run
    from .render.report import render_report

    report = run(_source(source, preset, config, configuration, dataset), size, context)
    _print(render_report(report))
    # agreeing on where the model fails is agreement (0); `unetviz table` exits 1 for that failure
    return 0 if report.ok else 1


@app.command(epilog="Examples: [bold]unetviz inspect v1-5-pruned.safetensors[/bold] ·"
                    " [bold]unetviz inspect unet.safetensors -f json[/bold]")
def inspect(file: Annotated[Path, typer.Argument(help="A .safetensors file (only its header is read) or a .json"
                                                 " manifest.", show_default=False)],
            format: Annotated[WeightsFormat, typer.Option("--format", "-f",
                                                          help="Output format.")] = WeightsFormat.rich,
            debug: DebugOpt = False) -> int:
    """What is this file? A U-Net checkpoint, LoRA/LyCORIS, ControlNet, T2I-/IP-Adapter, motion module, VAE or
    text encoder: its base model (read from its widths), its details, and a config where unetviz traces it."""
    import json

    from .api import inspect as run
    from .render.inspect import inspect_dict, render_identified

    found, check = run(file)  # a kind unetviz traces is compared with its rebuilt config's manifest
    if format is WeightsFormat.json:
        _print(json.dumps(inspect_dict(found, file.name, check), indent=1) + "\n")
    else:
        _print(render_identified(found, check, str(file), width()))
    return 0


class CostFormat(str, Enum):
    rich = "rich"
    json = "json"
    csv = "csv"


class Dtype(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


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
    """MACs (FlopCounterMode's convention, with and without the attention matmuls) and activation memory per
    size and per level, from the config alone."""
    from .render.cost import run_cost

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
    from .analysis.diff import diff as compare
    from .render.diff import render_diff

    _print(render_diff(compare(_source(a, None, None), _source(b, None, None), size=size), width(), changed))
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
    """Do these files load together? Each add-on's targets in the base, the keys a loader would drop, every
    shape clash with its layer and both widths. Exit 0 they fit, 1 they do not, 2 bad input."""
    import json

    from .api import fit as run
    from .render.fit import render_fit

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

    from .api import why as run
    from .render.why import render_why

    found = run(text, model)
    if format is WeightsFormat.json:
        _print(json.dumps(found.to_json(), indent=1) + "\n")
    else:
        _print(render_why(found, width()))
    return 0 if found.matched else 1


@app.command(epilog="Example: [bold]unetviz presets --names[/bold]")
def presets(names: Annotated[bool, typer.Option("--names", help="Only the names, one a line.")] = False,
            debug: DebugOpt = False) -> int:
    """The built-in presets, with their figures computed now."""
    from .presets import PRESETS

    if names:
        _print("".join(f"{n}\n" for n in PRESETS))
        return 0
    from .api import trace
    from .render.presets import render_presets

    _print(render_presets([(p, trace(name)) for name, p in PRESETS.items()], width()))
    return 0


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"unetviz {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", help="Show the version and exit.",
                                                callback=_version, is_eager=True)] = False) -> None:
    """Show how a U-Net's channels, skip connections and resolutions evolve, layer by layer."""


def _command(args: list[str]) -> click.Command:
    """The click group, with only the subcommand that ``args`` name when they name one: typer makes each
    command's options from its signature, a cost every run would pay for commands it does not run. Help,
    shell completion and anything else get every command."""
    import os

    chosen = [c for c in app.registered_commands if args and _name(c) == args[0]]
    if not chosen or "_UNETVIZ_COMPLETE" in os.environ:
        return typer.main.get_command(app)
    one = copy.copy(app)  # the same group (callback, --version, settings) with the one command
    one.registered_commands = chosen
    return typer.main.get_command(one)


def _name(command: typer.models.CommandInfo) -> str:
    """A registered command's name, as typer derives it."""
    if command.name:
        return command.name
    return typer.main.get_command_name(command.callback.__name__) if command.callback else ""


def main(argv: list[str] | None = None) -> None:
    """Console entry point: bad input -> ``error: ...`` on stderr and exit 2, never a traceback."""
    args = sys.argv[1:] if argv is None else argv
    # one command per process, whose records (tens of thousands for SDXL) live until it exits: the cyclic
    # collector's passes over them would free nothing, and took ~10% of a JSON trace's run
    saved = gc.get_threshold()
    gc.set_threshold(50_000)
    try:
        code = _run(args)
    finally:
        gc.set_threshold(*saved)
    sys.exit(code)


def _run(args: list[str]) -> int:
    """The command's exit code."""
    debug = "--debug" in args
    command = _command(args)
    try:
        code = command.main(args=args, prog_name="unetviz", standalone_mode=False)
    except UnetvizError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        code = 2
    except click.exceptions.NoArgsIsHelpError:  # click has printed the usage: a bare `unetviz` is no error
        code = 0
    except click.UsageError as e:
        hint = f" (see `unetviz {e.ctx.info_name} --help`)" if e.ctx and e.ctx.info_name != "unetviz" else ""
        print(f"error: {e.format_message()}{hint}", file=sys.stderr)
        code = 2
    except click.exceptions.Exit as e:
        code = e.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        code = 130
    except BrokenPipeError:  # `unetviz table ... | head`
        code = 0
    return code if isinstance(code, int) else 0
