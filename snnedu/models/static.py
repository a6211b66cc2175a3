"""Small classifiers for static images (MNIST-sized), used by the first chapters.

Both take an already-encoded sequence ``[T, B, *input_shape]`` and return per-step class scores
``[T, B, n_classes]`` from a non-spiking linear read-out (average over time for the logits, see
:func:`snnedu.losses.rate_cross_entropy`). The spiking non-linearity is any neuron factory, e.g.
``neuron=lambda: snnedu.LIF(tau=2.0)`` or ``functools.partial(snnedu.PLIF, tau_init=2.0)``.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn

from .._checks import flag, positive_int, tensor_input
from ..errors import HyperParameterError, InputError
from ..layers import Flatten, PerStepBatchNorm, TimeDistributed, tdBN1d
from ..neurons import LIF

__all__ = ["StaticClassifier", "SpikingMLP", "SpikingCNN"]

NORMS = ("bn", "tdbn", "bn_step")


def _norm_layer(norm: str, width: int, neuron: nn.Module) -> nn.Module:
    """The normalisation ``norm`` of a ``[T, B, width]`` layer whose neuron is ``neuron``."""
    if norm == "bn":
        return TimeDistributed(nn.BatchNorm1d(width))
    if norm == "bn_step":
        return PerStepBatchNorm(nn.BatchNorm1d(width))
    v_th = getattr(neuron, "v_threshold", None)
    if isinstance(v_th, torch.Tensor) and v_th.numel() == 1:
        v_th = float(v_th.detach())
    if isinstance(v_th, bool) or not isinstance(v_th, (int, float)):
        raise HyperParameterError(f"norm='tdbn' scales to the threshold of the neuron that follows, but "
                                  f"{type(neuron).__name__} has no scalar v_threshold")
    return tdBN1d(width, v_threshold=float(v_th))


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

    ``norm`` puts a normalisation between each hidden Linear and its neuron — what keeps a deep plain
    SNN trainable at all (chapters 4 and 6):

    - ``"bn"``: ``BatchNorm1d`` with statistics over T·B together (``batch_norm=True`` is the same);
    - ``"tdbn"``: :class:`snnedu.tdBN1d`, the same statistics but scaled to the threshold
      :math:`V_{th}` of the neuron that follows (read from the neuron's ``v_threshold``);
    - ``"bn_step"``: :class:`snnedu.PerStepBatchNorm`, statistics of each time step alone.

    Args:
        input_shape (sequence of int): shape of one step of one sample, e.g. ``(1, 28, 28)``
            (default); it is flattened.
        hidden (sequence of int): widths of the hidden spiking layers (default ``(256,)``; ``()``
            gives a single Linear read-out).
        n_classes (int): number of classes, at least 2 (default 10).
        neuron (callable): factory called once per hidden layer that returns a fresh neuron module
            (default ``LIF(tau=2.0)``).
        batch_norm (bool): put a ``BatchNorm1d`` between each hidden Linear and its neuron (default
            ``False``); the same as ``norm="bn"``.
        norm (str or None): ``None`` (default), ``"bn"``, ``"tdbn"`` or ``"bn_step"`` (see above);
            not together with ``batch_norm=True``.

    Shapes: ``[T, B, *input_shape] -> [T, B, n_classes]``.

    Example::

        >>> net = SpikingMLP(input_shape=(1, 28, 28), hidden=(256,), n_classes=10)
        >>> net(snnedu.DirectEncoder(4)(torch.rand(8, 1, 28, 28))).shape   # [4, 8, 10]
    """

    def __init__(self, input_shape: Sequence[int] = (1, 28, 28), hidden: Sequence[int] = (256,),
                 n_classes: int = 10, neuron: Callable[[], nn.Module] = _default_neuron,
                 batch_norm: bool = False, norm: Optional[str] = None):
        super().__init__(input_shape)
        n_classes = positive_int("n_classes", n_classes, minimum=2)
        if flag("batch_norm", batch_norm):
            if norm not in (None, "bn"):
                raise HyperParameterError(f"batch_norm=True is norm='bn'; got both it and norm={norm!r}")
            norm = "bn"
        if norm is not None and norm not in NORMS:
            raise HyperParameterError(f"norm must be None or one of {', '.join(map(repr, NORMS))}, got {norm!r}")
        self.norm = norm
        hidden = tuple(positive_int("hidden size", h) for h in hidden)
        prev = 1
        for s in self.input_shape:
            prev *= s
        layers = [Flatten()]
        for h in hidden:
            layers.append(TimeDistributed(nn.Linear(prev, h, bias=norm is None)))
            act = neuron()
            if norm is not None:
                layers.append(_norm_layer(norm, h, act))
            layers.append(act)
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
