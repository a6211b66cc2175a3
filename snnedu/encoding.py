r"""Encoders: turn a static batch ``[B, ...]`` into a time-first sequence ``[T, B, ...]``.

- :class:`PoissonEncoder` (rate coding): :math:`s[t] = \mathbb 1[r[t] < p]`, :math:`r[t] \sim U[0,1)` i.i.d.
  per pixel and step, so a pixel of intensity :math:`p \in [0, 1]` spikes :math:`pT` times on average.
  Stochastic: different spike trains on every call.
- :class:`DirectEncoder`: the analog input repeated at every step; the first spiking layer of the
  network does the encoding (PLIF, MLF, TET papers). Deterministic.
- :class:`LatencyEncoder` (time-to-first-spike): each pixel spikes once, brighter pixels earlier:
  :math:`t_{spike} = \mathrm{round}((1 - p)(T - 1))`; pixels with :math:`p \le` ``threshold`` never spike.
- :class:`RowEncoder` (sequential rows, a memory task): an image fed one row per step, then ``delay``
  empty steps, then ``cue`` steps of a cue channel during which the network must answer (chapter 10).

All are ``nn.Module`` s (no parameters) so they can lead an ``nn.Sequential``; the pure functions
``poisson_encode``, ``direct_encode``, ``latency_encode`` do the same work.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from ._checks import positive_int, real, tensor_input
from .errors import InputError

__all__ = ["poisson_encode", "direct_encode", "latency_encode", "row_encode",
           "PoissonEncoder", "DirectEncoder", "LatencyEncoder", "RowEncoder"]


def _check_unit_interval(name: str, x: torch.Tensor) -> None:
    if x.numel() == 0:  # an empty batch encodes to an empty sequence
        return
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{name} expects intensities in [0, 1] (e.g. ToTensor() images, not normalised "
                         f"ones), got values in [{lo:.4g}, {hi:.4g}]")


def poisson_encode(x: torch.Tensor, T: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Bernoulli spikes with probability ``x`` at each of ``T`` steps: ``[B, ...] -> [T, B, ...]``."""
    T = positive_int("T", T)
    tensor_input("PoissonEncoder", x, min_dim=1, layout="[B, ...]")
    _check_unit_interval("PoissonEncoder", x)
    r = torch.rand((T, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
    return (r < x).to(x.dtype)


def direct_encode(x: torch.Tensor, T: int) -> torch.Tensor:
    """The same analog input at every step: ``[B, ...] -> [T, B, ...]`` (a broadcast view, no copy)."""
    T = positive_int("T", T)
    tensor_input("DirectEncoder", x, min_dim=1, layout="[B, ...]")
    return x.unsqueeze(0).expand(T, *x.shape)


def latency_encode(x: torch.Tensor, T: int, threshold: float = 0.0) -> torch.Tensor:
    """One spike per pixel at step ``round((1 - x) * (T - 1))``; ``x <= threshold`` never spikes."""
    T = positive_int("T", T)
    threshold = real("threshold", threshold, low=0.0, high=1.0)
    tensor_input("LatencyEncoder", x, min_dim=1, layout="[B, ...]")
    _check_unit_interval("LatencyEncoder", x)
    # half precision cannot hold (1 - x) * (T - 1) for long sequences (inf above 65504 in float16,
    # 8 significant bits in bfloat16): compute the spike step in float32 there
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    t_spike = torch.round((1.0 - xf) * (T - 1)).long()
    steps = torch.arange(T, device=x.device).view(T, *([1] * x.dim()))
    return ((steps == t_spike.unsqueeze(0)) & (x > threshold).unsqueeze(0)).to(x.dtype)


class _Encoder(nn.Module):
    def __init__(self, T: int):
        super().__init__()
        self.T = positive_int("T", T)

    def extra_repr(self) -> str:
        return f"T={self.T}"


class PoissonEncoder(_Encoder):
    """Rate coding: ``[B, ...]`` intensities in [0, 1] -> ``[T, B, ...]`` 0/1 spikes.

    Args:
        T (int): number of time steps of the output sequence (positive).
        generator (torch.Generator or None): random number generator for the spike draws; ``None``
            (default) uses PyTorch's global generator. Pass a seeded one for repeatable spike trains.

    Example::

        >>> enc = PoissonEncoder(T=16)
        >>> s = enc(torch.rand(8, 1, 28, 28))      # [16, 8, 1, 28, 28]
        >>> s.mean(0)                              # ~ the input intensities
    """

    def __init__(self, T: int, generator: Optional[torch.Generator] = None):
        super().__init__(T)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return poisson_encode(x, self.T, self.generator)


class DirectEncoder(_Encoder):
    """Direct (analog) coding: repeat ``[B, ...]`` over ``T`` steps -> ``[T, B, ...]``.

    Args:
        T (int): number of time steps of the output sequence (positive).

    Example::

        >>> DirectEncoder(T=4)(torch.rand(8, 784)).shape   # torch.Size([4, 8, 784])
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return direct_encode(x, self.T)


class LatencyEncoder(_Encoder):
    """Latency (time-to-first-spike) coding: ``[B, ...]`` in [0, 1] -> ``[T, B, ...]``, one spike per pixel.

    Args:
        T (int): number of time steps of the output sequence (positive).
        threshold (float): intensities ``<= threshold`` never spike; in [0, 1], default 0 (only
            black pixels stay silent).

    Example::

        >>> s = LatencyEncoder(T=8)(torch.tensor([[1.0, 0.5, 0.0]]))
        >>> s.argmax(0)   # tensor([[0, 4, 0]]) — and the 0.0 pixel has no spike at all
    """

    def __init__(self, T: int, threshold: float = 0.0):
        super().__init__(T)
        self.threshold = real("threshold", threshold, low=0.0, high=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return latency_encode(x, self.T, self.threshold)

    def extra_repr(self) -> str:
        return f"T={self.T}, threshold={self.threshold}"


def row_encode(x: torch.Tensor, delay: int = 0, cue: int = 1, gain: float = 1.0) -> torch.Tensor:
    """Images ``[B, H, W]`` or ``[B, 1, H, W]`` -> ``[H + delay + cue, B, W + 1]``: row ``t`` of the image
    at step ``t`` (times ``gain``) in channels ``0..W-1``, then ``delay`` steps of zeros, then ``cue``
    steps with only the last channel on (at ``gain``)."""
    tensor_input("row_encode", x, min_dim=3, layout="[B, H, W] or [B, 1, H, W]")
    if x.dim() > 4 or (x.dim() == 4 and x.shape[1] != 1):
        raise InputError(f"row_encode takes one-channel images [B, H, W] or [B, 1, H, W], got {list(x.shape)}")
    if x.dim() == 4:
        x = x[:, 0]
    B, H, W = x.shape
    seq = x.new_zeros((H + delay + cue, B, W + 1))
    seq[:H, :, :W] = x.transpose(0, 1) * gain
    seq[H + delay:, :, W] = gain
    return seq


class RowEncoder(nn.Module):
    """Sequential rows with a delayed cue: ``[B, (1,) H, W]`` -> ``[H + delay + cue, B, W + 1]``.

    The image is read one row per time step (28 steps for MNIST), followed by ``delay`` steps of
    silence and ``cue`` steps in which only an extra cue channel is on. Read out the network during the
    cue steps only (:class:`snnedu.layers.LastSteps`), and the answer must come from what the network
    still holds of the image ``delay`` steps after it ended: a memory task whose difficulty ``delay``
    sets (chapter 10, adaptive neurons). Deterministic, no parameters.

    Args:
        delay (int): empty steps between the last row and the cue, ``>= 0`` (default 0).
        cue (int): steps of the cue, ``>= 1`` (default 1).
        gain (float): scale of the pixels and of the cue, ``> 0`` (default 1).

    Example::

        >>> enc = RowEncoder(delay=20, cue=5)
        >>> enc(torch.rand(8, 1, 28, 28)).shape      # torch.Size([53, 8, 29])
    """

    def __init__(self, delay: int = 0, cue: int = 1, gain: float = 1.0):
        super().__init__()
        self.delay = positive_int("delay", delay, minimum=0)
        self.cue = positive_int("cue", cue)
        self.gain = real("gain", gain, low=0.0, low_open=True)

    def steps(self, height: int) -> int:
        """Sequence length for images of ``height`` rows."""
        return height + self.delay + self.cue

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return row_encode(x, self.delay, self.cue, self.gain)

    def extra_repr(self) -> str:
        return f"delay={self.delay}, cue={self.cue}, gain={self.gain}"
