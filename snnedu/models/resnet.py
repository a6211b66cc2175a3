r"""Spiking residual networks: the standard spiking ResNet (tdBN paper) and the spiking DS-ResNet of the
MLF paper, with any neuron family (``neuron=`` factory). Input ``[T, B, C, H, W]``, output ``[T, B, classes]``.

Two residual blocks, ``conv`` = 3x3, bias-free; ``norm`` = :class:`snnedu.tdBN2d`:

- **standard** (``ds=False``; Zheng et al. 2021): the branches are added *before* the neuron,

  .. math:: o = N\big(\mathrm{tdBN}_{\alpha=1/\sqrt2}(\mathrm{conv}(N(\mathrm{tdBN}(\mathrm{conv}\,x)))) + s(x)\big),

  with the shortcut :math:`s` the identity or ``conv1x1 -> tdBN(alpha=1/sqrt 2)``;
- **dormant-suppressed** (``ds=True``; Feng et al. 2022): each branch fires *before* the addition,

  .. math:: o = N(\mathrm{tdBN}(\mathrm{conv}(N(\mathrm{tdBN}(\mathrm{conv}\,x))))) + s(x),

  with :math:`s` the identity or ``conv1x1 -> tdBN -> N``. The block's output is integer-valued, so
  the next convolution stays multiplication-free: ``0..2K`` after a projection shortcut (two spike
  tensors of a K-level neuron), and an identity block adds up to ``K`` to its input. Every tdBN uses
  :math:`\alpha = 1`.

``residual=False`` drops the shortcut: a **plain** block
:math:`o = N(\mathrm{tdBN}(\mathrm{conv}(N(\mathrm{tdBN}(\mathrm{conv}\,x)))))` with the same convolutions
and neurons, every tdBN with :math:`\alpha = 1` — the control of chapter 6's degradation study.

``share_neuron=True`` uses one neuron object for both activations of a block's main branch. For
neurons without parameters this changes nothing; for PMLF/PMLF3 it shares the learnable decay, which
is what the PMLF project's training scripts imply (they log one decay per block; see chapter 7).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn as nn

from .._checks import flag, positive_int, real, tensor_input
from ..errors import HyperParameterError, InputError
from ..layers import TimeDistributed, tdBN2d

__all__ = ["SpikingBasicBlock", "SpikingResNet", "resnet14", "resnet19", "resnet20"]


class _GlobalAvgPool(nn.Module):
    """Mean over ``H, W``: ``[T, B, C, H, W] -> [T, B, C]``. A plain reduction, so its CUDA backward is
    deterministic (that of ``nn.AdaptiveAvgPool2d`` is not; see :mod:`snnedu.determinism`)."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq.mean((-2, -1))


def _conv(c_in: int, c_out: int, k: int, stride: int) -> nn.Module:
    return TimeDistributed(nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False))


class SpikingBasicBlock(nn.Module):
    """One residual block (see the module docstring). Shapes: ``[T, B, c_in, H, W] -> [T, B, c_out, H', W']``.

    Args:
        c_in (int): input channels.
        c_out (int): output channels; ``c_out != c_in`` or ``stride != 1`` adds a projection shortcut.
        stride (int): stride of the first conv and of the projection shortcut (default 1; 2 halves
            ``H`` and ``W``).
        neuron (callable): keyword only; factory that returns a fresh spiking activation, e.g.
            ``lambda: MLF(K=3)``.
        v_threshold (float): keyword only; the threshold every tdBN of the block scales to (that of
            the neuron, e.g. 0.6 for MLF).
        ds (bool): dormant-suppressed block (default ``True``, MLF) or standard block (``False``,
            tdBN paper).
        share_neuron (bool): one neuron object for both activations of the main branch (default
            ``False``; ``True`` for the PMLF settings).
        residual (bool): add the shortcut (default ``True``); ``False`` gives the plain block of the
            same depth (``ds`` then changes nothing).

    Example::

        >>> block = SpikingBasicBlock(16, 32, stride=2, neuron=lambda: MLF(K=3), v_threshold=0.6)
        >>> block(torch.rand(4, 2, 16, 8, 8)).shape          # [4, 2, 32, 4, 4]
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, *, neuron: Callable[[], nn.Module],
                 v_threshold: float, ds: bool = True, share_neuron: bool = False, residual: bool = True):
        super().__init__()
        self.ds = flag("ds", ds)
        share_neuron = flag("share_neuron", share_neuron)
        self.residual = flag("residual", residual)
        a_sum = 1.0 if (self.ds or not self.residual) else 1.0 / math.sqrt(2.0)
        self.conv1, self.bn1 = _conv(c_in, c_out, 3, stride), tdBN2d(c_out, v_threshold)
        self.act1 = neuron()
        self.conv2, self.bn2 = _conv(c_out, c_out, 3, 1), tdBN2d(c_out, v_threshold, alpha=a_sum)
        self.act2 = self.act1 if share_neuron else neuron()
        self.shortcut = nn.Identity()
        if not self.residual:
            self.shortcut = None
        elif stride != 1 or c_in != c_out:
            layers = [_conv(c_in, c_out, 1, stride), tdBN2d(c_out, v_threshold, alpha=a_sum)]
            if self.ds:
                layers.append(neuron())
            self.shortcut = nn.Sequential(*layers)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.bn1(self.conv1(x_seq)))
        h = self.bn2(self.conv2(h))
        if not self.residual:
            return self.act2(h)
        if self.ds:
            return self.act2(h) + self.shortcut(x_seq)
        return self.act2(h + self.shortcut(x_seq))


class SpikingResNet(nn.Module):
    """CIFAR-style spiking ResNet: stem conv3x3-tdBN-neuron, three stages, global average pool, head.

    Args:
        blocks (sequence of int): blocks per stage, e.g. ``(3, 3, 3)`` (ResNet-20, default) or
            ``(2, 2, 2)`` (ResNet-14).
        channels (sequence of int): channels of the stages, e.g. ``(16, 32, 64)`` (default); stages
            2 and 3 start with stride 2.
        neuron (callable): keyword only; factory of the spiking activation, e.g. ``lambda: MLF(K=3)``.
        v_threshold (float): keyword only; threshold used by every tdBN (that of the neuron, e.g. 0.6
            for MLF).
        in_channels (int): input channels: 3 for images (default), 2 for DVS polarity frames.
        n_classes (int): number of classes, at least 2 (default 10).
        stem_channels (int or None): output channels of the stem conv (default ``None``:
            ``channels[0]``).
        ds (bool): DS-ResNet blocks (``True``, default) or standard spiking blocks (``False``).
        share_neuron (bool): one neuron object for both activations of each block's main branch
            (default ``False``); see the module docstring.
        residual (bool): residual blocks (default ``True``); ``False`` gives the plain network of the
            same depth, without shortcuts (chapter 6's degradation control).
        hidden (int or None): ``None`` (default) for a ``Linear(C, classes)`` head (MLF, PMLF); a
            width for ``Linear(C, hidden) -> neuron -> Linear(hidden, classes)`` (ResNet-19 of
            tdBN/TET).
        input_norm (bool): a non-affine tdBN on the raw input (default ``False``; the MLF code does
            this for DVS frames).

    Shapes: ``[T, B, in_channels, H, W] -> [T, B, n_classes]`` (per-step outputs: average over T for
    :func:`snnedu.rate_cross_entropy`, or use them per step with :func:`snnedu.tet_loss`).

    Example::

        >>> net = resnet20(neuron=lambda: MLF(K=3), channels=(16, 32, 64))
        >>> net(DirectEncoder(4)(torch.rand(2, 3, 32, 32))).shape      # [4, 2, 10]
    """

    def __init__(self, blocks: Sequence[int] = (3, 3, 3), channels: Sequence[int] = (16, 32, 64), *,
                 neuron: Callable[[], nn.Module], v_threshold: float, in_channels: int = 3, n_classes: int = 10,
                 stem_channels: int = None, ds: bool = True, share_neuron: bool = False, hidden: int = None,
                 input_norm: bool = False, residual: bool = True):
        super().__init__()
        if len(blocks) != len(channels) or not blocks:
            raise HyperParameterError(f"blocks and channels need one entry per stage, got {tuple(blocks)} and "
                                      f"{tuple(channels)}")
        blocks = [positive_int("blocks per stage", b) for b in blocks]
        channels = [positive_int("stage channels", c) for c in channels]
        self.in_channels = positive_int("in_channels", in_channels)
        n_classes = positive_int("n_classes", n_classes, minimum=2)
        v_threshold = real("v_threshold", v_threshold, low=0.0, low_open=True)
        stem = positive_int("stem_channels", stem_channels or channels[0])
        ds, share_neuron, input_norm = flag("ds", ds), flag("share_neuron", share_neuron), flag("input_norm", input_norm)
        residual = flag("residual", residual)
        self.input_norm = tdBN2d(self.in_channels, 1.0, affine=False) if input_norm else nn.Identity()
        self.stem = nn.Sequential(_conv(self.in_channels, stem, 3, 1), tdBN2d(stem, v_threshold), neuron())
        layers, c_prev = [], stem
        for i, (n, c) in enumerate(zip(blocks, channels)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(SpikingBasicBlock(c_prev, c, stride, neuron=neuron, v_threshold=v_threshold,
                                                ds=ds, share_neuron=share_neuron, residual=residual))
                c_prev = c
        self.stages = nn.Sequential(*layers)
        self.pool = _GlobalAvgPool()
        if hidden is None:
            self.head = TimeDistributed(nn.Linear(c_prev, n_classes))
        else:
            hidden = positive_int("hidden", hidden)
            self.head = nn.Sequential(TimeDistributed(nn.Linear(c_prev, hidden)), neuron(),
                                      TimeDistributed(nn.Linear(hidden, n_classes)))
        for m in self.modules():  # Kaiming-normal init (MLF code); fan_out for convs, fan_in for the head
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input(type(self).__name__, x_seq, min_dim=5, layout=f"[T, B, {self.in_channels}, H, W]")
        if x_seq.dim() != 5 or x_seq.shape[2] != self.in_channels:
            raise InputError(f"{type(self).__name__} expects input shaped [T, B, {self.in_channels}, H, W], "
                             f"got {list(x_seq.shape)}")
        h = self.stages(self.stem(self.input_norm(x_seq)))
        return self.head(self.pool(h))


def resnet20(*, neuron, v_threshold: float = 0.6, channels=(16, 32, 64), **kw) -> SpikingResNet:
    """ResNet-20: three stages of 3 blocks. MLF/PMLF use ``channels=(64, 128, 256)`` on CIFAR-10 and
    ``(16, 32, 64)`` on DVS128 Gesture (Feng et al. 2022)."""
    return SpikingResNet((3, 3, 3), channels, neuron=neuron, v_threshold=v_threshold, **kw)


def resnet14(*, neuron, v_threshold: float = 0.6, channels=(32, 64, 128), **kw) -> SpikingResNet:
    """ResNet-14: three stages of 2 blocks (the MLF/PMLF CIFAR10-DVS network, 2-channel input)."""
    return SpikingResNet((2, 2, 2), channels, neuron=neuron, v_threshold=v_threshold, **kw)


def resnet19(*, neuron, v_threshold: float = 1.0, channels=(128, 256, 512), stem_channels: int = 128,
             ds: bool = False, hidden: int = 256, **kw) -> SpikingResNet:
    """ResNet-19 of the tdBN and TET papers: stages of (3, 3, 2) blocks with 128/256/512 channels, a
    128-channel stem (the paper's; TET's code uses 64), standard blocks and an FC256-neuron-FC head."""
    return SpikingResNet((3, 3, 2), channels, neuron=neuron, v_threshold=v_threshold, stem_channels=stem_channels,
                         ds=ds, hidden=hidden, **kw)
