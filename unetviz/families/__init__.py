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
from typing import Any

from ..core.config import Args
from ..core.errors import UnetvizError, bad_value, did_you_mean
from ..core.inputs import InputSpec
from ..core.records import Size
from ..engine.tracer import Act, Tracer
from . import candle, lucidrains, ronneberger
from .diffusers import controlnet, motion, svd, unet1d, unet2d, unet3d
from .openai import guided, ldm


@dataclass(frozen=True, kw_only=True)
class Family:
    """Everything unetviz knows of one upstream model class."""

    key: str
    """Registry key: the diffusers class name, or the family name for the other families."""
    family: str
    """The family name configs use (``{"family": "guided"}``) and traces report."""
    model: str
    """The upstream class name shown in traces."""
    defaults: Mapping[str, Any]
    """The upstream constructor's keyword defaults, exactly."""
    build: Callable[[Tracer, Args, Size | None], Act]
    """The builder (see the module docstring)."""
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
    aliases: tuple[str, ...] = field(default_factory=tuple)
    """Other names of the family in ``{"family": ...}`` configs."""

    @property
    def ignores_unknown(self) -> bool:
        """diffusers' ``from_config`` warns about keys its constructor does not take (EMA bookkeeping, other
        versions' keys) and drops them; so does unetviz, with a warning naming them. The records with
        config ``_class_name``s are exactly the diffusers classes."""
        return bool(self.classes)


DIFFUSERS_PIP = "diffusers==0.42.1"
PIXELS = InputSpec(rank="image", space="pixel", channels="the image's channels (RGB: 3)")
SD_LATENT = InputSpec(rank="image", space="latent", factor=8, context=True,
                      channels="the autoencoder's latent (Stable Diffusion's VAE: 4; its image is 8x larger)")
VIDEO_LATENT = InputSpec(rank="video", space="latent", factor=8, context=True,
                         channels="per frame, the autoencoder's latent (Stable Diffusion's VAE: 4)")
FAMILIES: tuple[Family, ...] = (
    Family(key="UNet2DModel", family="diffusers", model="UNet2DModel", defaults=unet2d.UNET2D_DEFAULTS,
           build=unet2d.unet2d, what="diffusers UNet2DModel", adapter="unetviz.live.upstream.diffusers",
           pip=DIFFUSERS_PIP, live=("diffusers",), classes=("UNet2DModel",), input=PIXELS),
    Family(key="UNet2DConditionModel", family="diffusers", model="UNet2DConditionModel",
           defaults=unet2d.UNET2D_CONDITION_DEFAULTS, build=unet2d.unet2d_condition,
           what="diffusers UNet2DConditionModel", adapter="unetviz.live.upstream.diffusers", pip=DIFFUSERS_PIP,
           live=("diffusers",), classes=("UNet2DConditionModel",), input=SD_LATENT),
    Family(key="lucidrains", family="lucidrains", model="Unet", defaults=lucidrains.DEFAULTS, build=lucidrains.build,
           what="denoising_diffusion_pytorch.Unet", adapter="unetviz.live.upstream.lucidrains",
           pip="denoising-diffusion-pytorch==2.3.4", live=("denoising_diffusion_pytorch",), input=PIXELS),
    Family(key="guided", family="guided", model="UNetModel", defaults=guided.DEFAULTS, build=guided.build,
           what="guided_diffusion.unet.UNetModel", adapter="unetviz.live.upstream.guided",
           pip="guided-diffusion-sdk==1.0.0",
           live=("guided_diffusion", "improved_diffusion"), input=PIXELS),
    Family(key="ronneberger", family="ronneberger", model="UNet2015", defaults=ronneberger.DEFAULTS,
           build=ronneberger.build, what="the 2015 Ronneberger U-Net", adapter="unetviz.live.upstream.ronneberger",
           pip="torch",
           input=InputSpec(rank="image", space="pixel", channels="the image's channels (the paper's microscopy: 1)")),
    Family(key="candle", family="candle", model="UNet2DConditionModel", defaults=candle.DEFAULTS, build=candle.build,
           what="candle UNet2DConditionModelConfig", adapter="unetviz.live.upstream.candle", pip=DIFFUSERS_PIP,
           input=SD_LATENT),
    Family(key="ldm", family="ldm", model="UNetModel", defaults=ldm.DEFAULTS, build=ldm.build,
           what="ldm.modules.diffusionmodules.openaimodel.UNetModel", adapter="unetviz.live.upstream.ldm",
           pip="--no-deps stable-diffusion-sdkit==2.1.5 omegaconf==2.4.0", live=("ldm.", "sgm."), input=SD_LATENT),
    Family(key="ControlNetModel", family="diffusers", model="ControlNetModel",
           defaults=controlnet.CONTROLNET_DEFAULTS, build=controlnet.controlnet, what="diffusers ControlNetModel",
           adapter="unetviz.live.upstream.controlnet", pip=DIFFUSERS_PIP, live=("diffusers",),
           classes=("ControlNetModel",), input=SD_LATENT),
    Family(key="UNet1DModel", family="diffusers", model="UNet1DModel", defaults=unet1d.UNET1D_DEFAULTS,
           build=unet1d.unet1d, what="diffusers UNet1DModel", adapter="unetviz.live.upstream.unet1d", pip=DIFFUSERS_PIP,
           live=("diffusers",), classes=("UNet1DModel",),
           input=InputSpec(rank="length", space="audio", channels="the audio's channels (stereo: 2)")),
    Family(key="UNet3DConditionModel", family="diffusers", model="UNet3DConditionModel",
           defaults=unet3d.UNET3D_DEFAULTS, build=unet3d.unet3d_condition, what="diffusers UNet3DConditionModel",
           adapter="unetviz.live.upstream.unet3d", pip=DIFFUSERS_PIP, live=("diffusers",),
           classes=("UNet3DConditionModel",), input=VIDEO_LATENT),
    Family(key="UNetSpatioTemporalConditionModel", family="diffusers", model="UNetSpatioTemporalConditionModel",
           defaults=svd.SVD_DEFAULTS, build=svd.svd, what="diffusers UNetSpatioTemporalConditionModel",
           adapter="unetviz.live.upstream.svd", pip=DIFFUSERS_PIP, live=("diffusers",),
           classes=("UNetSpatioTemporalConditionModel",), input=VIDEO_LATENT),
    Family(key="UNetMotionModel", family="diffusers", model="UNetMotionModel", defaults=motion.MOTION_DEFAULTS,
           build=motion.unet_motion, what="diffusers UNetMotionModel", adapter="unetviz.live.upstream.motion",
           pip=DIFFUSERS_PIP, live=("diffusers",), classes=("UNetMotionModel",), input=VIDEO_LATENT),
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
    kwargs = {k: v for k, v in config.items() if not k.startswith("_") and k != "family"}
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
