r"""Learnable leak, shared by PLIF (per layer or per neuron) and, later, PMLF.

The leak is kept in :math:`(0, 1)` by a sigmoid of an unconstrained parameter ``w`` (spec §5):

.. math:: k = \sigma(w) = 1/\tau, \qquad \tau = 1 + e^{-w} \in (1, \infty),\qquad w_0 = -\ln(\tau_0 - 1)

so :math:`\tau_0 = 2` starts at :math:`w_0 = 0`, where the sigmoid is steepest.

Per-neuron initialisation (TU Delft thesis, §4.2, the shifted log-normal): :math:`\tau = 1 + e^{Y}`
with :math:`Y \sim \mathcal N(\mu_{log}, \sigma_{log}^2)`, where for a target mean :math:`\mu` and std
:math:`\sigma` of :math:`\tau`, :math:`\mu' = \mu - 1`,
:math:`\mu_{log} = \ln(\mu'^2 / \sqrt{\sigma^2 + \mu'^2})`, :math:`\sigma_{log} = \sqrt{\ln(1 + \sigma^2/\mu'^2)}`.
Since :math:`w = -\ln(\tau - 1) = -Y`, this is simply :math:`w \sim \mathcal N(-\mu_{log}, \sigma_{log}^2)`,
and :math:`\tau > 1` always holds.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ._checks import real
from .errors import HyperParameterError, InputError

__all__ = ["LearnableDecay", "tau_to_w", "shifted_lognormal_params"]


def tau_to_w(tau: float) -> float:
    """Parameter ``w`` with ``1/sigmoid(w) = tau`` (requires ``tau > 1``)."""
    return -math.log(tau - 1.0)


def shifted_lognormal_params(tau_mean: float, tau_std: float):
    """``(mu_log, sigma_log)`` of ``log(tau - 1)`` for a shifted log-normal tau with the given mean/std."""
    m = tau_mean - 1.0
    mu_log = math.log(m * m / math.sqrt(tau_std ** 2 + m * m))
    sigma_log = math.sqrt(math.log(1.0 + tau_std ** 2 / (m * m)))
    return mu_log, sigma_log


class LearnableDecay(nn.Module):
    """Holds the trainable ``w`` of a learnable membrane time constant.

    Args:
        tau_init: initial time constant :math:`\\tau_0 > 1` (the mean for per-neuron init).
        shape: ``None`` or ``()`` — one ``w`` per layer; a tuple such as ``(C, H, W)`` or ``(N,)`` —
            one ``w`` per neuron (it broadcasts over the batch dimension of ``[B, C, H, W]``).
        per_neuron: with ``shape=None``, infer the per-neuron shape lazily from the first input
            (create the optimizer after that first forward pass, or pass ``shape``).
        tau_std: std of the per-neuron initial tau (0 = every neuron starts at ``tau_init``).

    Attributes ``k`` (= 1/tau), ``tau`` are differentiable views of ``w``.

    Example::

        >>> d = LearnableDecay(tau_init=2.0, shape=(128,), tau_std=0.1)
        >>> d.tau.mean()   # ~2.0
    """

    def __init__(self, tau_init: float = 2.0, shape: Optional[Sequence[int]] = None,
                 per_neuron: bool = False, tau_std: float = 0.0):
        super().__init__()
        self.tau_init = real("tau_init", tau_init, low=1.0, low_open=True,
                             what="initial membrane time constant; 1/tau must lie in (0, 1)")
        self.tau_std = real("tau_std", tau_std, low=0.0, what="std of the per-neuron initial tau")
        shape = None if shape is None else tuple(int(s) for s in shape)
        if shape is not None and any(s < 1 for s in shape):
            raise HyperParameterError(f"shape must contain positive sizes, got {shape}")
        self.per_neuron = bool(per_neuron) or bool(shape)
        if self.tau_std > 0 and not self.per_neuron:
            raise HyperParameterError("tau_std > 0 needs per-neuron time constants (per_neuron=True or a shape)")
        if self.per_neuron and shape is None:
            self.w = nn.UninitializedParameter()
        else:
            self.w = nn.Parameter(torch.empty(shape or ()))
            self._init_values()

    # -- initialisation -------------------------------------------------------------------------------
    def _init_values(self) -> None:
        with torch.no_grad():
            if self.tau_std == 0:
                self.w.fill_(tau_to_w(self.tau_init))
            else:
                mu_log, sigma_log = shifted_lognormal_params(self.tau_init, self.tau_std)
                self.w.normal_(-mu_log, sigma_log)

    @property
    def is_materialized(self) -> bool:
        return not isinstance(self.w, nn.UninitializedParameter)

    def materialize(self, neuron_shape: Sequence[int]) -> None:
        """Give a lazily created per-neuron ``w`` its shape (one sample's shape, no batch dim)."""
        if self.is_materialized:
            return
        self.w.materialize(tuple(neuron_shape))
        self._init_values()

    def check_shape(self, neuron_shape: Sequence[int], where: str) -> None:
        """Raise a clear error if per-neuron ``w`` does not match one sample's shape."""
        if self.per_neuron and tuple(self.w.shape) != tuple(neuron_shape):
            raise InputError(f"{where} has one time constant per neuron with shape {list(self.w.shape)}, "
                             f"but got input whose per-sample shape is {list(neuron_shape)}")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "w"
        if not self.is_materialized and key in state_dict:
            self.w.materialize(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- views -----------------------------------------------------------------------------------------
    @property
    def k(self) -> torch.Tensor:
        """Leak per step, ``1/tau = sigmoid(w)``, in (0, 1)."""
        return torch.sigmoid(self.w)

    @property
    def tau(self) -> torch.Tensor:
        """Membrane time constant ``1/sigmoid(w) = 1 + exp(-w)`` (in steps)."""
        return 1.0 / torch.sigmoid(self.w)

    def extra_repr(self) -> str:
        shape = list(self.w.shape) if self.is_materialized else "lazy"
        return f"tau_init={self.tau_init}, per_neuron={self.per_neuron}, shape={shape}, tau_std={self.tau_std}"
