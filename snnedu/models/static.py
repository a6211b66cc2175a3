"""Small classifiers for static images (MNIST-sized), used by the first chapters.

Both take an already-encoded sequence ``[T, B, *input_shape]`` and return per-step class scores
``[T, B, n_classes]`` from a non-spiking linear read-out (average over time for the logits, see
:func:`snnedu.losses.rate_cross_entropy`). The spiking non-linearity is any neuron factory, e.g.
``neuron=lambda: snnedu.LIF(tau=2.0)`` or ``functools.partial(snnedu.PLIF, tau_init=2.0)``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from .._checks import flag, positive_int, tensor_input
from ..errors import HyperParameterError, InputError
from ..layers import Flatten, TimeDistributed
from ..neurons import LIF

__all__ = ["StaticClassifier", "SpikingMLP", "SpikingCNN"]


def _default_neuron() -> nn.Module:
    return LIF(tau=2.0)


class StaticClassifier(nn.Module):
    """Base: checks that the input is ``[T, B, *input_shape]`` before running ``self.body``."""

    def __init__(self, input_shape: Sequence[int]):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        layout = f"[T, B, {', '.join(map(str, self.input_shape))}]"
        tensor_input(name, x_seq, min_dim=2, layout=layout)
        if tuple(x_seq.shape[2:]) != self.input_shape:
            hint = ""
            if tuple(x_seq.shape[1:]) == self.input_shape:
                hint = (" — this looks like a static batch [B, ...] without a time dimension; "
                        "encode it first, e.g. snnedu.DirectEncoder(T)(x) or snnedu.PoissonEncoder(T)(x)")
            raise InputError(f"{name} expects input shaped {layout}, got {list(x_seq.shape)}{hint}")
        return self.body(x_seq)


class SpikingMLP(StaticClassifier):
    """Fully connected SNN: ``Flatten -> [Linear (-> BN) -> neuron] x len(hidden) -> Linear`` read-out.

    ``batch_norm=True`` puts a ``BatchNorm1d`` (statistics over T·B) between each hidden Linear and
    its neuron — what keeps a deep plain SNN trainable at all (chapter 4).

    Args:
        input_shape (sequence of int): shape of one step of one sample, e.g. ``(1, 28, 28)``
            (default); it is flattened.
        hidden (sequence of int): widths of the hidden spiking layers (default ``(256,)``; ``()``
            gives a single Linear read-out).
        n_classes (int): number of classes, at least 2 (default 10).
        neuron (callable): factory called once per hidden layer that returns a fresh neuron module
            (default ``LIF(tau=2.0)``).
        batch_norm (bool): put a ``BatchNorm1d`` between each hidden Linear and its neuron (default
            ``False``).

    Shapes: ``[T, B, *input_shape] -> [T, B, n_classes]``.

    Example::

        >>> net = SpikingMLP(input_shape=(1, 28, 28), hidden=(256,), n_classes=10)
        >>> net(snnedu.DirectEncoder(4)(torch.rand(8, 1, 28, 28))).shape   # [4, 8, 10]
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), hidden: Sequence[int] = (256,),
                 n_classes: int = 10, neuron: Callable[[], nn.Module] = _default_neuron,
                 batch_norm: bool = False):
        super().__init__(input_shape)
        n_classes = positive_int("n_classes", n_classes, minimum=2)
        batch_norm = flag("batch_norm", batch_norm)
        hidden = tuple(positive_int("hidden size", h) for h in hidden)
        prev = 1
        for s in self.input_shape:
            prev *= s
        layers = [Flatten()]
        for h in hidden:
            layers.append(TimeDistributed(nn.Linear(prev, h, bias=not batch_norm)))
            if batch_norm:
                layers.append(TimeDistributed(nn.BatchNorm1d(h)))
            layers.append(neuron())
            prev = h
        layers.append(TimeDistributed(nn.Linear(prev, n_classes)))
        self.body = nn.Sequential(*layers)


class SpikingCNN(StaticClassifier):
    """Small convolutional SNN for 28x28 (or any H, W divisible by 4) images.

    ``{Conv3x3(c) -> BN -> neuron -> MaxPool2} x 2 -> Flatten -> Linear(hidden) -> neuron -> Linear``.
    BatchNorm statistics are taken over T·B together.

    Args:
        input_shape (sequence of int): ``(C, H, W)`` of one step of one sample, ``H`` and ``W``
            divisible by 4 (default ``(1, 28, 28)``).
        channels (int): channels of both conv layers (default 32).
        hidden (int): width of the hidden spiking Linear layer (default 128).
        n_classes (int): number of classes, at least 2 (default 10).
        neuron (callable): factory called once per spiking layer that returns a fresh neuron module
            (default ``LIF(tau=2.0)``).

    Shapes: ``[T, B, C, H, W] -> [T, B, n_classes]``.

    Example::

        >>> net = SpikingCNN(input_shape=(1, 28, 28), channels=16)
        >>> net(snnedu.DirectEncoder(4)(torch.rand(8, 1, 28, 28))).shape   # [4, 8, 10]
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), channels: int = 32,
                 hidden: int = 128, n_classes: int = 10, neuron: Callable[[], nn.Module] = _default_neuron):
        super().__init__(input_shape)
        if len(self.input_shape) != 3 or self.input_shape[1] % 4 or self.input_shape[2] % 4:
            raise HyperParameterError(f"SpikingCNN needs input_shape (C, H, W) with H, W divisible by 4, "
                                      f"got {self.input_shape}")
        c_in, h, w = self.input_shape
        c = positive_int("channels", channels)
        hidden = positive_int("hidden", hidden)
        n_classes = positive_int("n_classes", n_classes, minimum=2)
        td = TimeDistributed
        self.body = nn.Sequential(
            td(nn.Conv2d(c_in, c, 3, padding=1, bias=False)), td(nn.BatchNorm2d(c)), neuron(), td(nn.MaxPool2d(2)),
            td(nn.Conv2d(c, c, 3, padding=1, bias=False)), td(nn.BatchNorm2d(c)), neuron(), td(nn.MaxPool2d(2)),
            Flatten(),
            td(nn.Linear(c * (h // 4) * (w // 4), hidden)), neuron(),
            td(nn.Linear(hidden, n_classes)),
        )
