"""Layers for time-first tensors ``[T, B, ...]``.

- :class:`TimeDistributed` applies any stateless module (``nn.Linear``, ``nn.Conv2d``, ``nn.BatchNorm2d``,
  pooling, ...) to every time step at once by folding time into the batch:
  ``[T, B, ...] -> [T*B, ...] -> module -> [T, B, ...]``. A BatchNorm inside it computes statistics
  over T·B (spec §0.5, behaviour 2).
- :class:`Flatten` flattens everything after ``[T, B]``: ``[T, B, C, H, W] -> [T, B, C*H*W]``.
- :class:`VotingReadout` averages groups of output neurons into class scores (the voting layer of
  the PLIF and STL papers): ``[T, B, n_classes * group] -> [T, B, n_classes]``.
- :func:`fold_time` / :func:`unfold_time` are the functional forms.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._checks import positive_int, tensor_input
from .errors import InputError

__all__ = ["fold_time", "unfold_time", "TimeDistributed", "Flatten", "VotingReadout"]


def fold_time(x_seq: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...] -> [T*B, ...]`` (a view when possible)."""
    return x_seq.reshape(x_seq.shape[0] * x_seq.shape[1], *x_seq.shape[2:])


def unfold_time(y: torch.Tensor, T: int) -> torch.Tensor:
    """``[T*B, ...] -> [T, B, ...]``."""
    return y.reshape(T, y.shape[0] // T, *y.shape[1:])


class TimeDistributed(nn.Module):
    """Apply a stateless ``module`` to all ``T`` steps at once.

    Shapes: ``[T, B, *in] -> [T, B, *out]`` where ``module`` maps ``[N, *in] -> [N, *out]``.

    Example::

        >>> fc = TimeDistributed(nn.Linear(784, 100))
        >>> fc(torch.rand(8, 32, 784)).shape      # torch.Size([8, 32, 100])
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input(f"TimeDistributed({type(self.module).__name__})", x_seq, min_dim=3,
                     layout="[T, B, features...]", float_only=False)
        return unfold_time(self.module(fold_time(x_seq)), x_seq.shape[0])


class Flatten(nn.Module):
    """Flatten all dims after ``[T, B]``: ``[T, B, ...] -> [T, B, prod(...)]``."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input("Flatten", x_seq, min_dim=2, layout="[T, B, ...]", float_only=False)
        return x_seq.flatten(2)


class VotingReadout(nn.Module):
    """Voting layer: the mean of each group of ``group`` consecutive neurons is one class score.

    The PLIF, per-neuron-PLIF and STL networks end in a spiking layer of ``n_classes * group``
    neurons (``group = 10``); averaging each group's spikes gives per-step class rates, which are
    trained with :func:`snnedu.rate_mse` (MSE to the one-hot label) and decoded with
    :func:`snnedu.predict`.

    Shapes: ``[T, B, n_classes * group] -> [T, B, n_classes]``.

    Example::

        >>> vote = VotingReadout(n_classes=10, group=10)
        >>> vote(torch.ones(4, 2, 100)).shape        # torch.Size([4, 2, 10])
    """

    def __init__(self, n_classes: int, group: int = 10):
        super().__init__()
        self.n_classes = positive_int("n_classes", n_classes, minimum=2)
        self.group = positive_int("group", group)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input("VotingReadout", x_seq, min_dim=3, layout="[T, B, n_classes * group]")
        if x_seq.shape[-1] != self.n_classes * self.group:
            raise InputError(f"VotingReadout expects {self.n_classes} x {self.group} = "
                             f"{self.n_classes * self.group} neurons in the last axis, got shape {list(x_seq.shape)}")
        return x_seq.unflatten(-1, (self.n_classes, self.group)).mean(-1)

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, group={self.group}"
