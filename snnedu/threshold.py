r"""Learnable firing thresholds and the learning modes of STL (synapse-threshold synergistic learning).

Sun et al. (IEEE TCDS 2023) train the firing threshold :math:`\theta` of every neuron together with the
synaptic weights. With :math:`S = \Theta(H - \theta)` and a surrogate :math:`g'`, the threshold gets the
gradient

.. math:: \frac{\partial L}{\partial \theta} = -\sum g'(H - \theta)\, \frac{\partial L}{\partial S}

(summed over time, batch and — for a shared threshold — neurons). Any snnedu neuron learns its
threshold with ``learn_threshold=True`` (one per layer) or ``learn_threshold='neuron'`` (one per
neuron, the STL code's choice), optionally with a small random spread ``threshold_noise`` at
initialisation (the paper's "heterogeneity", std 1e-4 in its code).

**Kept positive** (a deviation from the paper, whose thresholds are unconstrained): the threshold
used in the forward pass is :math:`\max(\theta, \theta_{min})` with a straight-through gradient, so the
gradient is exactly the paper's while :math:`\theta \ge \theta_{min}` and a threshold pushed below the
floor can still be pulled back up (it never gets stuck at the clamp).

The three learning modes compared in the STL paper (:func:`set_learning_mode`):

- ``'synapses'`` (SL): weights learn, thresholds frozen;
- ``'thresholds'`` (TL): thresholds learn, every other parameter frozen at its initial value;
- ``'both'`` (STL): everything learns.
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

import torch
import torch.nn as nn

from ._checks import real, short_repr
from .errors import HyperParameterError
from .neuron_param import NeuronParameter

__all__ = ["LearnableThreshold", "threshold_parameters", "synapse_parameters", "set_learning_mode",
           "LEARNING_MODES"]


class LearnableThreshold(NeuronParameter):
    """A trainable firing threshold: one per layer, or one per neuron.

    Args:
        init (float): initial threshold :math:`\\theta_0`, above ``min_threshold`` (default 1.0).
        per_neuron (bool): one threshold per neuron instead of one per layer (default ``False``);
            see :class:`snnedu.neuron_param.NeuronParameter`.
        shape (tuple of int or None): shape of one sample's neurons for per-neuron thresholds;
            ``None`` (default) infers it from the first input.
        noise (float): std of a Gaussian spread added at initialisation (default 0; per-neuron only;
            STL code: 1e-4).
        min_threshold (float): floor :math:`\\theta_{min} > 0` of the threshold used in the forward
            pass (default 1e-3).

    :meth:`value` returns the threshold to use (clamped, straight-through gradient), shaped like ``w``.

    Example::

        >>> th = LearnableThreshold(2.0, per_neuron=True, shape=(100,), noise=1e-4)
        >>> th.value().shape            # torch.Size([100])
    """

    what = "threshold"

    def __init__(self, init: float = 1.0, per_neuron: bool = False, shape: Optional[Sequence[int]] = None,
                 noise: float = 0.0, min_threshold: float = 1e-3):
        self.min_threshold = real("min_threshold", min_threshold, low=0.0, low_open=True,
                                  what="floor that keeps a learnable threshold positive")
        self.init = real("v_threshold", init, low=self.min_threshold, low_open=True,
                         what=f"initial learnable threshold, above min_threshold = {self.min_threshold}")
        self.noise = real("threshold_noise", noise, low=0.0, what="std of the initial threshold spread")
        if self.noise > 0 and not (per_neuron or shape):
            raise HyperParameterError("threshold_noise > 0 needs per-neuron thresholds (learn_threshold='neuron')")
        super().__init__(per_neuron=per_neuron, shape=shape)

    def _init_values(self) -> None:
        with torch.no_grad():
            self.w.fill_(self.init)
            if self.noise > 0:
                self.w.add_(torch.randn_like(self.w), alpha=self.noise)

    def value(self) -> torch.Tensor:
        """``max(w, min_threshold)`` forward; gradient passed straight through to ``w``."""
        w = self.w
        return w + (w.clamp(min=self.min_threshold) - w).detach()

    def extra_repr(self) -> str:
        return (f"init={self.init}, {self._shape_repr()}, noise={self.noise}, "
                f"min_threshold={self.min_threshold}")


def threshold_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The ``w`` of every :class:`LearnableThreshold` in ``model`` (e.g. for their own optimizer group)."""
    for m in model.modules():
        if isinstance(m, LearnableThreshold):
            yield m.w


def synapse_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Every parameter of ``model`` that is not a learnable threshold (weights, biases, BN, tau ...)."""
    ths = {id(p) for p in threshold_parameters(model)}
    for p in model.parameters():
        if id(p) not in ths:
            yield p


LEARNING_MODES = {"synapses": (True, False), "sl": (True, False),
                  "thresholds": (False, True), "tl": (False, True),
                  "both": (True, True), "stl": (True, True)}


def set_learning_mode(model: nn.Module, mode: str) -> dict:
    """Put ``model`` in one of the STL paper's learning modes by setting ``requires_grad``.

    ``mode``: ``'synapses'``/``'SL'`` (thresholds frozen), ``'thresholds'``/``'TL'`` (everything but the
    thresholds frozen), ``'both'``/``'STL'``. Returns the number of trainable scalars in each group:
    ``{'mode', 'synapses', 'thresholds'}``. Build the optimizer *after* this call (or give it only
    ``p.requires_grad`` parameters); frozen parameters keep their initial values.

    Example::

        >>> net = SpikingMLP(neuron=lambda: LIF.stbp(decay=0.5, v_threshold=1.0, learn_threshold="neuron"))
        >>> net(DirectEncoder(4)(x))          # materialise the lazily shaped per-neuron thresholds
        >>> set_learning_mode(net, "TL")      # {'mode': 'thresholds', 'synapses': 0, 'thresholds': ...}
    """
    key = str(mode).lower()
    if key not in LEARNING_MODES:
        raise HyperParameterError(f"unknown learning mode {short_repr(mode)}; allowed: 'synapses' (SL), "
                                  "'thresholds' (TL), 'both' (STL)")
    train_syn, train_th = LEARNING_MODES[key]
    ths = list(threshold_parameters(model))
    if train_th and not ths:
        raise HyperParameterError(f"learning mode {short_repr(mode)} trains thresholds, but the model has none: build "
                                  "its neurons with learn_threshold=True or 'neuron'")
    if any(isinstance(p, nn.UninitializedParameter) for p in ths):
        raise HyperParameterError("the model has lazily shaped per-neuron thresholds: run one forward pass "
                                  "(or pass shape=) before set_learning_mode")
    th_ids = {id(p) for p in ths}
    counts = {"synapses": 0, "thresholds": 0}
    for p in model.parameters():
        is_th = id(p) in th_ids
        p.requires_grad_(train_th if is_th else train_syn)
        if p.requires_grad and not isinstance(p, nn.UninitializedParameter):
            counts["thresholds" if is_th else "synapses"] += p.numel()
    names = {(True, False): "synapses", (False, True): "thresholds", (True, True): "both"}
    return {"mode": names[train_syn, train_th], **counts}
