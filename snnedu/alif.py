r"""ALIF: the adaptive-threshold LIF neuron of LSNNs (Bellec et al., NeurIPS 2018), as a declared family.

This file is the whole family: the pure step function, its declaration (:data:`ALIF_FAMILY`,
registered in :data:`snnedu.family.FAMILIES`), one registry line per fast path, and the module shell
:class:`ALIF`. The multi-step reference, single-step use, ``record``, ``reset`` and the monitor come from
:class:`snnedu.BaseNeuron`; the fused kernels are one file per backend (:mod:`snnedu.kernels.alif_cpu`,
:mod:`snnedu.kernels.alif_triton`). Chapter 10 of the book builds it step by step.

Each neuron keeps two state variables, the membrane potential :math:`V` and an adaptation variable
:math:`A` that counts recent spikes with its own, longer memory :math:`\tau_a`:

.. math::

    H[t] &= \text{charge}(V[t-1], X[t])                  \quad\text{(LIF, } k = 1/\tau\text{)} \\
    \theta[t] &= V_{th} + \beta\, A[t-1]                  \quad\text{(the adapted threshold)} \\
    S[t] &= \Theta\big(H[t] - \theta[t]\big) \\
    V[t] &= \text{reset}(H[t], S[t], \theta[t]) \\
    A[t] &= \rho\, A[t-1] + S[t], \qquad \rho = 1 - 1/\tau_a

Every spike raises the neuron's threshold by :math:`\beta`, and the raise decays with :math:`\tau_a`
steps. A neuron that fired a lot in the recent past is harder to drive now, so its response to the
same input carries a trace of its history for about :math:`\tau_a` steps, even after its membrane
potential has forgotten it (after about :math:`\tau` steps). With :math:`\beta = 0` it is exactly
:class:`snnedu.LIF`. LSNN writes :math:`a[t+1] = \rho a[t] + (1 - \rho) z[t]` with a larger
:math:`\beta`; that is this form with :math:`\beta_{here} = (1 - \rho)\,\beta_{LSNN}`.

The surrogate gradient flows through :math:`\theta`, so through :math:`A` into earlier time steps
(``detach_reset`` stops it through the reset term only, as for every family).
"""
from __future__ import annotations

from typing import Optional

import torch

from ._checks import flag, real
from .family import NeuronFamily, register_family, register_fast_path
from .functional.neuron import charge, fire, initial_potential, reset_potential
from .kernels import alif_cpu, alif_triton
from .neurons import BaseNeuron

__all__ = ["ALIF", "ALIF_FAMILY", "alif_step"]


def alif_step(x: torch.Tensor, state, *, surrogate, k, v_threshold, beta: float, rho: float,
              v_reset: Optional[float] = 0.0, decay_input: bool = True, detach_reset: bool = False):
    """One ALIF step. ``x``: ``[B, ...]``; ``state``: ``None`` (rest: ``V = V_reset``, ``A = 0``) or
    ``(v, a)``, each ``[B, ...]``. Returns ``(spikes, (v, a), h)`` (see the module docstring)."""
    if state is None:
        v, a = initial_potential(x, v_reset), torch.zeros_like(x)
    else:
        v, a = state
    h = charge(v, x, k, v_reset, decay_input)
    theta = v_threshold + beta * a
    s = fire(h, theta, surrogate)
    v = reset_potential(h, s, theta, v_reset, detach_reset)
    return s, (v, rho * a + s), h


#: The declaration of ALIF, with the state ``(v, a)`` and the step :func:`alif_step`; its fast paths
#: are :mod:`snnedu.kernels.alif_cpu` (numba) and :mod:`snnedu.kernels.alif_triton` (Triton).
ALIF_FAMILY = register_family(NeuronFamily("ALIF", ("v", "a"), alif_step,
                                           "adaptive-threshold LIF (LSNN, Bellec et al. 2018)"))
register_fast_path(ALIF_FAMILY, "cpu", alif_cpu.alif_cpu_multistep)
register_fast_path(ALIF_FAMILY, "triton", alif_triton.alif_triton_multistep)


class ALIF(BaseNeuron):
    r"""Adaptive-threshold leaky integrate-and-fire neuron (LSNN): every spike raises the threshold by
    ``beta``, and the raise decays with ``tau_a`` steps (equations in :mod:`snnedu.alif`).

    Args:
        tau (float): membrane time constant :math:`\tau \ge 1` in steps (leak ``1/tau``; default 2).
        tau_a (float): adaptation time constant :math:`\tau_a \ge 1` in steps
            (:math:`\rho = 1 - 1/\tau_a`; default 20).
        beta (float): threshold raise per spike, :math:`\beta \ge 0` (default 0.2; 0 is LIF).
        decay_input (bool): ``True`` (default, Form A) scales the input by ``1/tau``; ``False`` adds
            it unscaled (Form B).
        v_threshold (float): baseline threshold :math:`V_{th} > 0` (default 1.0).
        v_reset (float or None): potential after a spike (hard reset), default 0; ``None`` selects the
            soft reset :math:`V \leftarrow H - \theta`. Must lie below ``v_threshold``.
        surrogate (str or Surrogate): surrogate gradient of the spike (default ``'atan'``).
        detach_reset (bool): stop the gradient through the reset term (default ``False``).
        record (bool): keep ``h_seq``, ``v_seq`` and ``a_seq`` (``[T, B, ...]``, detached) of the last
            multi-step call, for plots (default ``False``).

    Keyword Args:
        learn_threshold (bool or str): ``False`` (default), ``True``/``'layer'`` or ``'neuron'``: the
            baseline :math:`V_{th}` is learned; the adaptation adds to it.
        threshold_noise (float): std of the spread of per-neuron initial thresholds (default 0).
        min_threshold (float): floor of a learnable threshold in the forward pass (default 1e-3).

    State: ``v`` and ``a`` (``[B, ...]``) between :meth:`step` calls, cleared by :func:`snnedu.reset`.
    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]``; ``step``: ``[B, ...]`` -> ``[B, ...]``.

    Example::

        >>> alif = ALIF(tau=2.0, tau_a=50.0, beta=0.3)
        >>> s = alif(torch.full((40, 1, 1), 0.9))      # fires, then slower and slower
    """

    family = ALIF_FAMILY

    def __init__(self, tau: float = 2.0, tau_a: float = 20.0, beta: float = 0.2, decay_input: bool = True,
                 v_threshold: float = 1.0, v_reset: Optional[float] = 0.0, surrogate="atan",
                 detach_reset: bool = False, record: bool = False, **threshold_options):
        super().__init__(v_threshold, v_reset, surrogate, detach_reset, record, **threshold_options)
        self.tau = real("tau", tau, low=1.0, what="membrane time constant in steps; the leak 1/tau must lie in (0, 1]")
        self.tau_a = real("tau_a", tau_a, low=1.0, what="adaptation time constant in steps (rho = 1 - 1/tau_a)")
        self.beta = real("beta", beta, low=0.0, what="threshold raise per spike")
        self.decay_input = flag("decay_input", decay_input)

    def charge_params(self, sample_ndim: int) -> dict:
        return {"k": 1.0 / self.tau, "decay_input": self.decay_input, "beta": self.beta,
                "rho": 1.0 - 1.0 / self.tau_a}

    def extra_repr(self) -> str:
        return (f"tau={self.tau}, tau_a={self.tau_a}, beta={self.beta}, decay_input={self.decay_input}, "
                + super().extra_repr())
