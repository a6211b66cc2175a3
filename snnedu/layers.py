"""Layers for time-first tensors ``[T, B, ...]``.

- :class:`TimeDistributed` applies any stateless module (``nn.Linear``, ``nn.Conv2d``, ``nn.BatchNorm2d``,
  pooling, ...) to every time step at once by folding time into the batch:
  ``[T, B, ...] -> [T*B, ...] -> module -> [T, B, ...]``. A BatchNorm inside it computes statistics
  over T·B (spec §0.5, behaviour 2).
- :class:`Flatten` flattens everything after ``[T, B]``: ``[T, B, C, H, W] -> [T, B, C*H*W]``.
- :func:`fold_time` / :func:`unfold_time` are the functional forms.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ._checks import tensor_input

__all__ = ["fold_time", "unfold_time", "TimeDistributed", "Flatten"]


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
