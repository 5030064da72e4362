"""What every command shares: the typer app (commands listed in one declared order), the option types, how
a SOURCE is read, the terminal width and the one way output is printed."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from ..core.errors import UnetvizError, did_you_mean

ORDER = ("table", "weights", "keymap", "graph", "verify", "inspect", "cost", "diff", "fit", "why", "presets")
"""The commands in the order ``unetviz --help`` lists them (they are registered module by module)."""


class _Group(TyperGroup):
    """Subcommands in the order declared, and a did-you-mean for a mistyped one."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        first = [c for c in ORDER if c in self.commands]
        return first + [c for c in self.commands if c not in ORDER]

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if args and name not in self.commands and not name.startswith("-"):
            hint = did_you_mean(name, self.commands)
            allowed = ", ".join(self.list_commands(ctx))
            raise UnetvizError(f"command: no command {name!r}{hint} (allowed: {allowed})")
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


class Naming(str, Enum):
    diffusers = "diffusers"
    original = "original"


class KeymapFormat(str, Enum):
    rich = "rich"
    json = "json"
    csv = "csv"


class CostFormat(str, Enum):
    rich = "rich"
    json = "json"
    csv = "csv"


class Dtype(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


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
        from ..presets import find_preset

        if configuration is not None or dataset is not None:
            raise UnetvizError("--configuration/--dataset: only an nnU-Net plans file has them, not a preset")
        return find_preset(str(preset or source)).name  # an unknown name gets a did-you-mean, never a file lookup
    from ..tracing import resolve_named

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


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        print(f"unetviz {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", help="Show the version and exit.",
                                                callback=_version, is_eager=True)] = False) -> None:
    """Show how a U-Net's channels, skip connections and resolutions evolve, layer by layer."""
