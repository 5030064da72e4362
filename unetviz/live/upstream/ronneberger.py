"""The 2015 U-Net (Ronneberger, Fischer, Brox) as a plain torch module: the ground truth of the
ronneberger family, since the paper shipped no PyTorch code.

It follows the paper's Fig. 1: per level two 3x3 convs, each followed by a ReLU (unpadded, so each
loses a 2-pixel border); 2x2 max-pool with stride 2 between levels, doubling the channels; on the
way up a 2x2 "up-convolution" halving the channels, a concat with the centre-cropped skip of the
same level, two 3x3 convs + ReLU; finally a 1x1 conv to the classes. The paper has 23 convs.

Names are chosen for reading the trace: ``down.i.conv1``, ``up.j.upconv``, ``up.j.crop``,
``final``. ``CenterCrop`` is a module (not a slice in ``forward``) so the cropped skip has a
producer of its own, and an odd size before a max-pool is an error here, as in the paper (it
picks tile sizes so every pooled map is even), instead of silently dropping a row.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...core.records import Trace


class SizeError(ValueError):
    """The input size does not fit the model (an odd map before a max-pool)."""


class CenterCrop(nn.Module):
    """Cut the middle ``size`` out of a feature map (the skip, to the up-convolved size)."""

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = x.shape[-2:]
        th, tw = size
        if th > h or tw > w:
            raise SizeError(f"cannot crop a {h}x{w} skip to {th}x{tw}")
        top, left = (h - th) // 2, (w - tw) // 2
        return x[..., top : top + th, left : left + tw]


class Down(nn.Module):
    """One contracting level: (2x2 max-pool,) conv1 + ReLU, conv2 + ReLU."""

    def __init__(self, name: str, in_channels: int, out_channels: int, padding: int, bias: bool,
                 pool: bool) -> None:
        super().__init__()
        self.name = name  # for error messages: a module does not know its own path
        self.pool = nn.MaxPool2d(2) if pool else None
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=padding, bias=bias)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=padding, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            h, w = x.shape[-2:]
            if h % 2 or w % 2:
                raise SizeError(f"{self.name}.pool (MaxPool2d 2x2) gets an odd {h}x{w} input;"
                                " every 2x2 max-pool needs an even height and width")
            x = self.pool(x)
        x = F.relu(self.conv1(x))
        return F.relu(self.conv2(x))


class Up(nn.Module):
    """One expanding level: up-conv 2x2 (halves channels), crop-and-concat, conv1 + ReLU, conv2 + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, padding: int, bias: bool) -> None:
        super().__init__()
        self.upconv = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2, bias=bias)
        # same-padded convs keep the sizes, so the skip already matches: no crop at all
        self.crop = CenterCrop() if padding == 0 else None
        self.conv1 = nn.Conv2d(2 * out_channels, out_channels, 3, padding=padding, bias=bias)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=padding, bias=bias)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.upconv(x)
        if self.crop is not None:
            h, w = x.shape[-2:]
            skip = self.crop(skip, (h, w))
        x = torch.cat([skip, x], dim=1)  # the paper's "copy and crop" comes first
        x = F.relu(self.conv1(x))
        return F.relu(self.conv2(x))


class UNet2015(nn.Module):
    """The U-Net of the paper with its defaults: 572x572x1 in, 388x388x2 out, 31,030,658 parameters.

    ``depth`` counts the levels including the bottleneck; level ``i`` has ``base_channels * 2**i``
    channels. ``padding`` 0 = unpadded convs (paper), 1 = same-padded. ``input_size`` is only
    recorded (like diffusers' ``sample_size``): the tile size the model is meant for.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base_channels: int = 64, depth: int = 5,
                 padding: int = 0, bias: bool = True, input_size: int | list[int] = 572) -> None:
        super().__init__()
        if padding not in (0, 1) or depth < 1:
            raise ValueError(f"padding must be 0 or 1 and depth >= 1, got {padding}, {depth}")
        self.input_size = input_size
        widths = [base_channels * 2**i for i in range(depth)]
        self.down = nn.ModuleList(
            Down(f"down.{i}", widths[i - 1] if i else in_channels, w, padding, bias, pool=i > 0)
            for i, w in enumerate(widths)
        )
        self.up = nn.ModuleList(Up(2 * w, w, padding, bias) for w in reversed(widths[:-1]))
        self.final = nn.Conv2d(base_channels, num_classes, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[torch.Tensor] = []
        for i, level in enumerate(self.down):
            x = level(x)
            if i < len(self.down) - 1:  # the bottleneck's output goes straight up
                skips.append(x)
        for level in self.up:
            x = level(x, skips.pop())
        out: torch.Tensor = self.final(x)
        return out


def build(cls: str | None, kwargs: dict[str, Any]) -> torch.nn.Module:
    """The reference model on the meta device (no memory for the weights)."""
    with torch.device("meta"):
        model = UNet2015(**kwargs)
    return model.eval()


def inputs(model: torch.nn.Module, trace: Trace) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The image batch: one tile of the traced size."""
    sample = torch.empty(1, trace.in_channels, *trace.in_size, device=torch.device("meta"))
    return (sample,), {}
