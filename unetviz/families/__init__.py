"""The family registry: one record per upstream model class, and the lookup of a config's family.

A builder has the signature ``build(tracer, args, size) -> Act``: it validates ``args`` as the
upstream constructor would (raising ``UnetvizError``), then walks the forward pass on ``tracer``
(``tracer.fail`` where the real model would fail) and returns the output activation.

Adding a family: its builder module here, its adapter in ``unetviz/upstream/``, one ``Family``
record in ``FAMILIES`` (plus presets and tests). Nothing else names families.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import Any

from ..core.config import Args
from ..core.errors import UnetvizError, bad_value, did_you_mean
from ..core.inputs import InputSpec
from ..core.records import Size
from ..engine.tracer import Act, Tracer


@dataclass(frozen=True, kw_only=True)
class Family:
    """Everything unetviz knows of one upstream model class."""

    key: str
    """Registry key: the diffusers class name, or the family name for the other families."""
    family: str
    """The family name configs use (``{"family": "guided"}``) and traces report."""
    model: str
    """The upstream class name shown in traces."""
    builder: str
    """The builder (see the module docstring) as ``module:function`` under ``unetviz.families``; imported on first
    use, so tracing one family never loads the others' builders."""
    defaults_from: str
    """The upstream constructor's keyword defaults, exactly: ``module:NAME`` of the dict beside the builder."""
    what: str
    """How errors name the constructor (``diffusers UNet2DConditionModel``)."""
    adapter: str
    """Module of the real-model adapter (``build``, ``inputs``), imported only by verification."""
    pip: str
    """What to install for the adapter's upstream package."""
    live: tuple[str, ...] = ()
    """Module prefixes whose class named ``model`` is this family when traced as a live module."""
    classes: tuple[str, ...] = ()
    """``_class_name`` values of config files that mean this record."""
    input: InputSpec
    """The model's input: rank, space (pixel, latent with its factor, audio), channels, whether it reads a
    context. Every command reads this; a preset may declare its own (``Preset.input``)."""
    input_from: str | None = None
    """For a class whose config declares its own rank (nnU-Net's ``conv_op``, MONAI's ``spatial_dims``):
    ``module:function`` of ``(kwargs) -> InputSpec`` reading that declaration; ``input`` is then its default."""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    """Other names of the family in ``{"family": ...}`` configs."""

    @property
    def build(self) -> Callable[[Tracer, Args, Size | None], Act]:
        """The builder function."""
        fn: Callable[[Tracer, Args, Size | None], Act] = _load(self.builder)
        return fn

    @property
    def defaults(self) -> Mapping[str, Any]:
        """The upstream constructor's keyword defaults."""
        value: Mapping[str, Any] = _load(self.defaults_from)
        return value

    def input_for(self, kwargs: Mapping[str, Any]) -> InputSpec:
        """The input a config of this class declares: ``input``, or what ``input_from`` reads from the config."""
        if self.input_from is None:
            return self.input
        spec: InputSpec = _load(self.input_from)(kwargs)
        return spec

    @property
    def ignores_unknown(self) -> bool:
        """diffusers' ``from_config`` warns about keys its constructor does not take (EMA bookkeeping, other
        versions' keys) and drops them; so does unetviz, with a warning naming them. The records with
        config ``_class_name``s are exactly the diffusers classes."""
        return bool(self.classes)


@cache
def _load(ref: str) -> Any:
    module, name = ref.split(":")
    return getattr(import_module(f".{module}", __name__), name)


DIFFUSERS_PIP = "diffusers==0.42.1"
PIXELS = InputSpec(rank="image", space="pixel", channels="the image's channels (RGB: 3)")
SD_LATENT = InputSpec(rank="image", space="latent", factor=8, context=True,
                      channels="the autoencoder's latent (Stable Diffusion's VAE: 4; its image is 8x larger)")
VIDEO_LATENT = InputSpec(rank="video", space="latent", factor=8, context=True,
                         channels="per frame, the autoencoder's latent (Stable Diffusion's VAE: 4)")
UPSTREAM = "unetviz.live.upstream."
NNUNET_VOLUME = InputSpec(rank="volume", space="volume", channels="the scan's channels (modalities)")
FAMILIES: tuple[Family, ...] = (
    Family(key="UNet2DModel", family="diffusers", model="UNet2DModel", input=PIXELS,
           builder="diffusers.unet2d:unet2d", defaults_from="diffusers.unet2d:UNET2D_DEFAULTS",
           what="diffusers UNet2DModel", adapter=UPSTREAM + "diffusers", pip=DIFFUSERS_PIP, live=("diffusers",),
           classes=("UNet2DModel",)),
    Family(key="UNet2DConditionModel", family="diffusers", model="UNet2DConditionModel", input=SD_LATENT,
           builder="diffusers.unet2d:unet2d_condition", defaults_from="diffusers.unet2d:UNET2D_CONDITION_DEFAULTS",
           what="diffusers UNet2DConditionModel", adapter=UPSTREAM + "diffusers", pip=DIFFUSERS_PIP,
           live=("diffusers",), classes=("UNet2DConditionModel",)),
    Family(key="lucidrains", family="lucidrains", model="Unet", input=PIXELS,
           builder="lucidrains:build", defaults_from="lucidrains:DEFAULTS",
           what="denoising_diffusion_pytorch.Unet", adapter=UPSTREAM + "lucidrains",
           pip="denoising-diffusion-pytorch==2.3.4", live=("denoising_diffusion_pytorch",)),
    Family(key="guided", family="guided", model="UNetModel", input=PIXELS,
           builder="openai.guided:build", defaults_from="openai.guided:DEFAULTS",
           what="guided_diffusion.unet.UNetModel", adapter=UPSTREAM + "guided", pip="guided-diffusion-sdk==1.0.0",
           live=("guided_diffusion", "improved_diffusion")),
    Family(key="ronneberger", family="ronneberger", model="UNet2015",
           input=InputSpec(rank="image", space="pixel", channels="the image's channels (the paper's microscopy: 1)"),
           builder="ronneberger:build", defaults_from="ronneberger:DEFAULTS",
           what="the 2015 Ronneberger U-Net", adapter=UPSTREAM + "ronneberger", pip="torch"),
    Family(key="candle", family="candle", model="UNet2DConditionModel", input=SD_LATENT,
           builder="candle:build", defaults_from="candle:DEFAULTS",
           what="candle UNet2DConditionModelConfig", adapter=UPSTREAM + "candle", pip=DIFFUSERS_PIP),
    Family(key="ldm", family="ldm", model="UNetModel", input=SD_LATENT,
           builder="openai.ldm:build", defaults_from="openai.ldm:DEFAULTS",
           what="ldm.modules.diffusionmodules.openaimodel.UNetModel", adapter=UPSTREAM + "original",
           pip="--no-deps stable-diffusion-sdkit==2.1.5 omegaconf==2.4.0", live=("ldm.", "sgm.")),
    Family(key="ControlNetModel", family="diffusers", model="ControlNetModel", input=SD_LATENT,
           builder="diffusers.controlnet:controlnet", defaults_from="diffusers.controlnet:CONTROLNET_DEFAULTS",
           what="diffusers ControlNetModel", adapter=UPSTREAM + "controlnet", pip=DIFFUSERS_PIP, live=("diffusers",),
           classes=("ControlNetModel",)),
    Family(key="UNet1DModel", family="diffusers", model="UNet1DModel",
           input=InputSpec(rank="length", space="audio", channels="the audio's channels (stereo: 2)"),
           builder="diffusers.unet1d:unet1d", defaults_from="diffusers.unet1d:UNET1D_DEFAULTS",
           what="diffusers UNet1DModel", adapter=UPSTREAM + "unet1d", pip=DIFFUSERS_PIP, live=("diffusers",),
           classes=("UNet1DModel",)),
    Family(key="UNet3DConditionModel", family="diffusers", model="UNet3DConditionModel", input=VIDEO_LATENT,
           builder="diffusers.unet3d:unet3d_condition", defaults_from="diffusers.unet3d:UNET3D_DEFAULTS",
           what="diffusers UNet3DConditionModel", adapter=UPSTREAM + "unet3d", pip=DIFFUSERS_PIP, live=("diffusers",),
           classes=("UNet3DConditionModel",)),
    Family(key="UNetSpatioTemporalConditionModel", family="diffusers", model="UNetSpatioTemporalConditionModel",
           input=VIDEO_LATENT, builder="diffusers.svd:svd", defaults_from="diffusers.svd:SVD_DEFAULTS",
           what="diffusers UNetSpatioTemporalConditionModel", adapter=UPSTREAM + "svd", pip=DIFFUSERS_PIP,
           live=("diffusers",), classes=("UNetSpatioTemporalConditionModel",)),
    Family(key="UNetMotionModel", family="diffusers", model="UNetMotionModel", input=VIDEO_LATENT,
           builder="diffusers.motion:unet_motion", defaults_from="diffusers.motion:MOTION_DEFAULTS",
           what="diffusers UNetMotionModel", adapter=UPSTREAM + "motion", pip=DIFFUSERS_PIP, live=("diffusers",),
           classes=("UNetMotionModel",)),
    Family(key="nnunet", family="nnunet", model="PlainConvUNet", input=NNUNET_VOLUME,
           input_from="nnunet.config:input_spec", builder="nnunet.unet:build", defaults_from="nnunet.config:DEFAULTS",
           what="nnU-Net's get_network_from_plans", adapter=UPSTREAM + "nnunet",
           pip="dynamic-network-architectures==0.4.4", live=("dynamic_network_architectures",)),
    Family(key="monai", family="monai", model="UNet", input=NNUNET_VOLUME, input_from="monai.config:input_spec",
           builder="monai.model:build", defaults_from="monai.config:DEFAULTS", what="a MONAI network_def",
           adapter=UPSTREAM + "monai", pip="monai==1.6.1"),
)
BY_KEY: dict[str, Family] = {f.key: f for f in FAMILIES}
BY_CLASS: dict[str, Family] = {c: f for f in FAMILIES for c in f.classes}
FAMILY_NAMES: tuple[str, ...] = tuple(dict.fromkeys(f.family for f in FAMILIES))


def lookup(config: Mapping[str, Any]) -> tuple[Family, dict[str, Any]]:
    """(registry record, constructor kwargs) of a config dict."""
    if not isinstance(config, Mapping):
        raise UnetvizError(f"config: must be a dict, got {type(config).__name__}")
    cls = config.get("_class_name")
    fam = config.get("family")
    # a MONAI network_def names its class by _target_: the monai family reads it (and only it) as an argument
    kwargs = {k: v for k, v in config.items() if (not k.startswith("_") or (k == "_target_" and fam == "monai"))
              and k != "family"}
    if cls is not None:
        if cls not in BY_CLASS:
            raise UnetvizError(f"_class_name: got {cls!r}{did_you_mean(cls, tuple(BY_CLASS))}; allowed:"
                               f" {', '.join(BY_CLASS)}")
        return BY_CLASS[cls], kwargs
    if fam is None:
        raise UnetvizError("config: no \"family\" key and no \"_class_name\"; allowed families: "
                           + ", ".join(FAMILY_NAMES) + " (or a diffusers config.json with _class_name"
                           " UNet2DModel / UNet2DConditionModel)")
    if fam not in FAMILY_NAMES:
        raise UnetvizError(f"family: got {fam!r}{did_you_mean(fam, FAMILY_NAMES)}; allowed: {', '.join(FAMILY_NAMES)}")
    if fam == "diffusers":
        cls = kwargs.pop("class", "UNet2DConditionModel")
        if cls not in BY_CLASS:
            raise bad_value("class", cls, BY_CLASS)
        return BY_CLASS[cls], kwargs
    return BY_KEY[str(fam)], kwargs


def recognise(module_name: str, class_name: str) -> Family | None:
    """The record of a live module's class (``type(m).__module__``, ``type(m).__name__``), if any."""
    for f in FAMILIES:
        if class_name in (f.model, *f.classes) and module_name.startswith(f.live or ("\0",)):
            return f
    return None
