r"""Non-spiking reference models that state how hard an event dataset is (chapters 8 and 9).

A spiking network's accuracy on event frames means little without two anchors: what a **linear
probe** gets from the frames summed over time (a bag of event counts, no order), and what a **small
non-spiking CNN** gets from the same summed frames. A dataset where the probe is already near 100 %
cannot separate methods; one where the CNN stays near chance is hopeless at that scale. Both models
discard the time axis on purpose, so a spiking network that beats them has used the order of events.

Both take the frames every snnedu network takes, ``[T, B, C_in, H, W]`` event counts, and return
``[1, B, n_classes]`` logits: one "time step", so :func:`snnedu.predict` and
:func:`snnedu.rate_cross_entropy` work on them unchanged. The summed counts are scaled by each
sample's total count (a sample with twice the events gives the same input), then by the number of
pixels, so that the input values are of order one whatever the frame size.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn as nn

from .._checks import positive_int, tensor_input
from ..errors import InputError
from .plif_net import _pair

__all__ = ["summed_frames", "LinearProbe", "FrameCNN"]


def summed_frames(x: torch.Tensor) -> torch.Tensor:
    """``[T, B, C, H, W]`` event counts -> ``[B, C, H, W]``, summed over time and scaled per sample so that
    the mean pixel value is 1 (an all-zero sample stays zero).

    Args:
        x: event frames, time first; counts or any non-negative values.
    """
    x = tensor_input("x", x, min_dim=5, layout="[T, B, C, H, W]")
    if x.dim() != 5:
        raise InputError(f"summed_frames expects event frames [T, B, C, H, W], got shape {list(x.shape)}")
    s = x.sum(0)
    total = s.flatten(1).sum(1)
    scale = torch.where(total > 0, s[0].numel() / total.clamp_min(1e-30), torch.zeros_like(total))
    return s * scale.view(-1, 1, 1, 1)


class LinearProbe(nn.Module):
    """A linear classifier on the summed frames: how much a bag of event counts alone tells.

    Args:
        in_channels (int): input channels (2: OFF and ON counts).
        input_size (int or tuple of int): frame size ``H`` (square) or ``(H, W)``.
        n_classes (int): classes.

    Shapes: ``[T, B, in_channels, H, W]`` -> ``[1, B, n_classes]`` logits.
    """

    def __init__(self, in_channels: int = 2, input_size: Union[int, Sequence[int]] = 32, n_classes: int = 10):
        super().__init__()
        H, W = _pair("input_size", input_size)
        self.fc = nn.Linear(positive_int("in_channels", in_channels) * H * W,
                            positive_int("n_classes", n_classes, minimum=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(summed_frames(x).flatten(1)).unsqueeze(0)


class FrameCNN(nn.Module):
    """A small non-spiking CNN on the summed frames: ``{conv3x3(C) - BN - ReLU - maxpool2} x n_down ->
    global average pool -> FC``.

    Args:
        in_channels (int): input channels (2: OFF and ON counts).
        input_size (int or tuple of int): frame size ``H`` (square) or ``(H, W)``; must allow ``n_down`` halvings.
        n_classes (int): classes.
        channels (int): conv width ``C`` (default 16).
        n_down (int): conv blocks, each halving the resolution (default 3).

    Shapes: ``[T, B, in_channels, H, W]`` -> ``[1, B, n_classes]`` logits.
    """

    def __init__(self, in_channels: int = 2, input_size: Union[int, Sequence[int]] = 32, n_classes: int = 10,
                 channels: int = 16, n_down: int = 3):
        super().__init__()
        H, W = _pair("input_size", input_size)
        n_down = positive_int("n_down", n_down)
        if min(H, W) >> n_down == 0:
            raise InputError(f"FrameCNN: input {H}x{W} is too small for n_down={n_down} halvings")
        c, layers = positive_int("in_channels", in_channels), []
        for _ in range(n_down):
            layers += [nn.Conv2d(c, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
                       nn.MaxPool2d(2)]
            c = channels
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(channels, positive_int("n_classes", n_classes, minimum=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(summed_frames(x))).unsqueeze(0)
