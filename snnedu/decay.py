r"""The leak of a neuron as a component: fixed (:class:`FixedLeak`: LIF, its STBP form, MLF) or learnable
(:class:`LearnableDecay`: PLIF per layer or per neuron, PMLF and PMLF3). A neuron holds one and asks it
for its leak per step with ``leak(sample_ndim)``.

The leak is kept in :math:`(0, 1)` by a sigmoid of an unconstrained parameter ``w``. Two forms:

- ``form='inv_tau'`` (PLIF, Form A): :math:`k = \sigma(w) = 1/\tau`, so :math:`\tau = 1 + e^{-w} \in (1, \infty)`,
  initialised at :math:`w_0 = -\ln(\tau_0 - 1)` (:math:`\tau_0 = 2` gives :math:`w_0 = 0`, where the
  sigmoid is steepest).
- ``form='decay'`` (PMLF, Form B): the decay factor :math:`\lambda = \sigma(w)` of
  :math:`u[t] = \lambda u[t-1](1 - o[t-1]) + x[t]`, initialised at :math:`w_0 = \ln(\lambda_0 / (1 - \lambda_0))`.
  The leak is then :math:`k = 1 - \lambda` and the equivalent time constant :math:`\tau = 1/(1 - \lambda)`.

Per-neuron initialisation (Pazderka's TU Delft thesis, 2024: the shifted log-normal): :math:`\tau = 1 + e^{Y}`
with :math:`Y \sim \mathcal N(\mu_{log}, \sigma_{log}^2)`, where for a target mean :math:`\mu` and std
:math:`\sigma` of :math:`\tau`, :math:`\mu' = \mu - 1`,
:math:`\mu_{log} = \ln(\mu'^2 / \sqrt{\sigma^2 + \mu'^2})`, :math:`\sigma_{log} = \sqrt{\ln(1 + \sigma^2/\mu'^2)}`.
Since :math:`w = -\ln(\tau - 1) = -Y`, this is simply :math:`w \sim \mathcal N(-\mu_{log}, \sigma_{log}^2)`,
and :math:`\tau > 1` always holds.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import torch

from ._checks import real, short_repr
from .errors import HyperParameterError
from .neuron_param import NeuronParameter

__all__ = ["FixedLeak", "LearnableDecay", "decay_parameters", "tau_to_w", "decay_to_w", "shifted_lognormal_params"]


@dataclasses.dataclass(frozen=True)
class FixedLeak:
    r"""A fixed leak per step, the constant counterpart of :class:`LearnableDecay`. Build it from a time
    constant (:meth:`from_tau`, LIF) or from a decay factor (:meth:`from_decay`, the STBP form and MLF),
    so that the given number is kept exactly and the other two are derived from it.

    Args:
        k (float): leak per step, :math:`k \in [0, 1]` (:math:`1/\tau`, or :math:`1 - \lambda`).
        tau (float): time constant in steps, :math:`1/k` (``inf`` for :math:`k = 0`).
        decay (float): decay factor :math:`\lambda = 1 - k`.
    """

    k: float
    tau: float
    decay: float

    @classmethod
    def from_tau(cls, tau: float) -> "FixedLeak":
        """The leak ``k = 1/tau`` of a membrane time constant ``tau >= 1`` (steps)."""
        tau = real("tau", tau, low=1.0, what="membrane time constant in steps; the leak 1/tau must lie in (0, 1]")
        k = 1.0 / tau
        return cls(k, tau, 1.0 - k)

    @classmethod
    def from_decay(cls, decay: float, what: str = "decay factor lambda = 1 - 1/tau") -> "FixedLeak":
        """The leak ``k = 1 - decay`` of a decay factor ``decay`` in ``(0, 1]`` (``1``: no leak)."""
        decay = real("decay", decay, low=0.0, high=1.0, low_open=True, what=what)
        k = 1.0 - decay
        return cls(k, float("inf") if k == 0 else 1.0 / k, decay)

    def leak(self, sample_ndim: int = 0) -> float:
        """The leak per step for :func:`snnedu.functional.charge` (a float)."""
        return self.k


def tau_to_w(tau: float) -> float:
    """Parameter ``w`` with ``1/sigmoid(w) = tau`` (requires ``tau > 1``)."""
    return -math.log(tau - 1.0)


def decay_to_w(decay: float) -> float:
    """Parameter ``w`` with ``sigmoid(w) = decay`` (requires ``0 < decay < 1``)."""
    return math.log(decay / (1.0 - decay))


def shifted_lognormal_params(tau_mean: float, tau_std: float):
    """``(mu_log, sigma_log)`` of ``log(tau - 1)`` for a shifted log-normal tau with the given mean/std."""
    m = tau_mean - 1.0
    r = tau_std / m  # in log space: no overflow of tau_std ** 2 or m * m for extreme arguments
    var_log = math.log1p(r * r) if r < 1e150 else 2.0 * math.log(r)
    return math.log(m) - 0.5 * var_log, math.sqrt(var_log)


class LearnableDecay(NeuronParameter):
    """Holds the trainable ``w`` of a learnable membrane time constant.

    Args:
        tau_init (float): initial time constant :math:`\\tau_0 > 1` (the mean for per-neuron init;
            default 2); ``form='inv_tau'`` only.
        shape (tuple of int or None): ``None`` (default) or ``()`` — one ``w`` per layer; a tuple
            such as ``(C, H, W)`` or ``(N,)`` — one ``w`` per neuron (it broadcasts over the batch
            dimension of ``[B, C, H, W]``).
        per_neuron (bool): with ``shape=None``, infer the per-neuron shape lazily from the first
            input (create the optimizer after that first forward pass, or pass ``shape``); default
            ``False``.
        tau_std (float): std of the per-neuron initial tau (default 0: every neuron starts at
            ``tau_init``).
        form (str): ``'inv_tau'`` (default; PLIF: ``k = sigmoid(w)``) or ``'decay'`` (PMLF:
            ``decay = sigmoid(w)``).
        decay_init (float or None): initial decay factor :math:`\\lambda_0 \\in (0, 1)`;
            ``form='decay'`` only (``None``: 0.25).
        levels (int or None): ``K`` gives one ``w`` per level of a multi-level unit (PMLF3);
            ``None`` (default) one for the unit.

    Attributes ``k`` (leak per step, = 1/tau), ``tau`` and ``decay`` (= 1 - k) are differentiable
    views of ``w``, shaped like ``w``.

    Example::

        >>> d = LearnableDecay(tau_init=2.0, shape=(128,), tau_std=0.1)
        >>> d.tau.mean()                                   # ~2.0
        >>> LearnableDecay(form="decay", decay_init=0.25, levels=3).decay   # tensor([0.25, 0.25, 0.25])
    """

    what = "time constant"

    def __init__(self, tau_init: float = 2.0, shape: Optional[Sequence[int]] = None,
                 per_neuron: bool = False, tau_std: float = 0.0, form: str = "inv_tau",
                 decay_init: Optional[float] = None, levels: Optional[int] = None):
        if form not in ("inv_tau", "decay"):
            raise HyperParameterError(f"form must be 'inv_tau' (PLIF) or 'decay' (PMLF), got {short_repr(form)}")
        self.form = form
        if form == "inv_tau":
            if decay_init is not None:
                raise HyperParameterError("decay_init belongs to form='decay'; use tau_init with form='inv_tau'")
            self.tau_init = real("tau_init", tau_init, low=1.0, low_open=True,
                                 what="initial membrane time constant; 1/tau must lie in (0, 1)")
            self.w0 = tau_to_w(self.tau_init)
        else:
            decay_init = 0.25 if decay_init is None else decay_init
            self.decay_init = real("decay_init", decay_init, low=0.0, high=1.0, low_open=True, high_open=True,
                                   what="initial decay factor lambda = sigmoid(w)")
            self.tau_init = 1.0 / (1.0 - self.decay_init)
            self.w0 = decay_to_w(self.decay_init)
        self.tau_std = real("tau_std", tau_std, low=0.0, what="std of the per-neuron initial tau")
        if self.tau_std > 0 and form != "inv_tau":
            raise HyperParameterError("tau_std (log-normal per-neuron init) is defined for form='inv_tau' only")
        if self.tau_std > 0 and not (per_neuron or shape):
            raise HyperParameterError("tau_std > 0 needs per-neuron time constants (per_neuron=True or a shape)")
        if self.tau_std > 0 and not all(abs(v) < 1e30 for v in shifted_lognormal_params(self.tau_init, self.tau_std)):
            raise HyperParameterError(f"tau_init = {self.tau_init} with tau_std = {self.tau_std} gives a log-normal "
                                      "spread that float32 cannot hold; use a smaller tau_std")
        super().__init__(per_neuron=per_neuron, shape=shape, levels=levels)

    def _init_values(self) -> None:
        with torch.no_grad():
            if self.tau_std == 0:
                self.w.fill_(self.w0)
            else:
                mu_log, sigma_log = shifted_lognormal_params(self.tau_init, self.tau_std)
                self.w.normal_(-mu_log, sigma_log)

    # -- views -----------------------------------------------------------------------------------------
    @property
    def k(self) -> torch.Tensor:
        """Leak per step, in (0, 1) -- ``sigmoid(w)`` (inv_tau) or ``1 - sigmoid(w)`` (decay)."""
        return torch.sigmoid(self.w if self.form == "inv_tau" else -self.w)

    @property
    def decay(self) -> torch.Tensor:
        """Decay factor :math:`\\lambda = 1 - k` of the iterative form ``u = decay * u * (1 - o) + x``."""
        return torch.sigmoid(-self.w if self.form == "inv_tau" else self.w)

    @property
    def tau(self) -> torch.Tensor:
        """Membrane time constant ``1/k`` in steps (``1 + exp(-w)`` for ``form='inv_tau'``)."""
        return 1.0 / self.k

    def leak(self, sample_ndim: int) -> torch.Tensor:
        """The leak per step for :func:`snnedu.functional.charge`, shaped to broadcast against a state
        ``[(K,) B, *sample]`` (``sample_ndim`` is the rank of one sample)."""
        return self.broadcast(self.k, sample_ndim)

    def extra_repr(self) -> str:
        init = f"tau_init={self.tau_init}" if self.form == "inv_tau" else f"decay_init={self.decay_init}"
        return f"form={self.form!r}, {init}, {self._shape_repr()}, tau_std={self.tau_std}"


def decay_parameters(model: torch.nn.Module):
    """The ``w`` of every :class:`LearnableDecay` in ``model`` (PLIF, PMLF, PMLF3), e.g. for an optimizer
    group with its own learning rate::

        >>> taus = list(decay_parameters(net))
        >>> opt = torch.optim.Adam([{"params": taus, "lr": 1e-2},
        ...                         {"params": [p for p in net.parameters() if all(p is not t for t in taus)]}])
    """
    for m in model.modules():
        if isinstance(m, LearnableDecay):
            yield m.w
