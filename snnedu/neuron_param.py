r"""A trainable tensor of a spiking layer: one value per layer, per neuron, and optionally per level.

Learnable time constants (PLIF, PMLF, PMLF3) and learnable thresholds (STL) share everything except
their initial values: the granularity, the lazily inferred per-neuron shape, the shape check and the
``state_dict`` round trip. :class:`NeuronParameter` holds that shared part; subclasses only say how
to fill ``w`` (:meth:`NeuronParameter._init_values`).

Granularity (the shape of ``w``):

=====================  =====================  ============================================
``per_neuron``         ``levels``             ``w.shape``
=====================  =====================  ============================================
False (per layer)      None                   ``()``
True (per neuron)      None                   ``sample_shape``, e.g. ``(C, H, W)`` or ``(N,)``
False                  K                      ``(K,)`` — one per level of a multi-level unit
True                   K                      ``(K, *sample_shape)``
=====================  =====================  ============================================

``sample_shape`` is one sample's shape (no time, no batch). Pass it as ``shape``, or leave it out and
it is inferred from the first input (create the optimizer after that first forward pass).
:meth:`NeuronParameter.broadcast` reshapes a tensor derived from ``w`` so that it broadcasts against
a time step ``[B, *sample]`` (or ``[K, B, *sample]`` for multi-level units).
"""
from __future__ import annotations

from numbers import Integral
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ._checks import flag, positive_int, short_repr
from .errors import HyperParameterError, InputError

__all__ = ["NeuronParameter"]


class NeuronParameter(nn.Module):
    """Base class: holds ``w`` with the granularity described in the module docstring."""

    what = "parameter"  # used in error messages ("one time constant per neuron", ...)

    def __init__(self, per_neuron: bool = False, shape: Optional[Sequence[int]] = None,
                 levels: Optional[int] = None):
        super().__init__()
        if shape is not None:
            if not isinstance(shape, (tuple, list, torch.Size)) or not all(
                    isinstance(s, Integral) and not isinstance(s, bool) for s in shape):
                raise HyperParameterError(f"shape must be a tuple of positive ints, e.g. (128,), "
                                          f"got {short_repr(shape)}")
            shape = tuple(int(s) for s in shape)
        if shape is not None and any(s < 1 for s in shape):
            raise HyperParameterError(f"shape must contain positive sizes, got {shape}")
        self.per_neuron = flag("per_neuron", per_neuron) or bool(shape)
        self.levels = None if levels is None else positive_int("levels", levels)
        self._level_shape = () if self.levels is None else (self.levels,)
        if self.per_neuron and shape is None:
            self.w = nn.UninitializedParameter()
        else:
            self.w = nn.Parameter(torch.empty(self._level_shape + (shape or ())))
            self._init_values()

    def _init_values(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def is_materialized(self) -> bool:
        return not isinstance(self.w, nn.UninitializedParameter)

    def materialize(self, sample_shape: Sequence[int]) -> None:
        """Give a lazily created per-neuron ``w`` its shape from one sample's shape (no T, no B)."""
        if self.is_materialized:
            return
        self.w.materialize(self._level_shape + tuple(sample_shape))
        self._init_values()

    def check_shape(self, sample_shape: Sequence[int], where: str) -> None:
        """Raise a clear :class:`InputError` if a per-neuron ``w`` does not fit one sample's shape."""
        if self.per_neuron and tuple(self.w.shape) != self._level_shape + tuple(sample_shape):
            raise InputError(f"{where} has one {self.what} per neuron with shape "
                             f"{list(self.w.shape[len(self._level_shape):])}, but got input whose "
                             f"per-sample shape is {list(sample_shape)}")

    def prepare(self, sample_shape: Sequence[int], where: str) -> None:
        """Materialize (first call) and check a per-neuron ``w`` against one sample's shape."""
        if self.per_neuron:
            self.materialize(sample_shape)
            self.check_shape(sample_shape, where)

    def broadcast(self, t: torch.Tensor, sample_ndim: int) -> torch.Tensor:
        """Reshape ``t`` (shaped like ``w``) to broadcast against ``[B, *sample]`` / ``[K, B, *sample]``."""
        if self.levels is None:
            return t
        tail = t.shape[1:] if self.per_neuron else (1,) * sample_ndim
        return t.reshape(self.levels, 1, *tail)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "w"
        if not self.is_materialized and key in state_dict:
            self.w.materialize(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _shape_repr(self) -> str:
        shape = list(self.w.shape) if self.is_materialized else "lazy"
        return f"per_neuron={self.per_neuron}, levels={self.levels}, shape={shape}"
