r"""Spiking neuron layers: thin ``nn.Module`` shells over :mod:`snnedu.functional.neuron`.

Every neuron has two paths that give identical numbers:

- multi-step ``neuron(x_seq)``: ``x_seq`` is ``[T, B, ...]`` (time first), returns spikes of the same
  shape. State starts from rest at every call, so nothing leaks between batches.
- single-step ``neuron.step(x_t)``: ``x_t`` is ``[B, ...]``; the membrane potential is kept in
  ``neuron.v`` between calls until :func:`snnedu.reset` (teaching, online use).

Common hyper-parameters (papers' names):

- ``v_threshold`` :math:`V_{th} > 0` — firing threshold.
- ``v_reset`` — potential after a spike (hard reset); ``None`` selects the soft reset
  :math:`V \leftarrow H - V_{th}`.
- ``surrogate`` — name (``'atan'``, ``'sigmoid'``, ``'rect'``, ``'triangle'``) or a
  :class:`snnedu.Surrogate`; see :mod:`snnedu.functional.surrogate`.
- ``detach_reset`` — stop the gradient through the reset term (PLIF paper: True; MLF/TET/STL: False).
- ``record`` — keep ``h_seq`` (potential before reset) and ``v_seq`` (after reset), ``[T, B, ...]``,
  detached, from the last multi-step call, for plots.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from . import functional as SF
from ._checks import real, tensor_input
from .base import StatefulModule
from .decay import LearnableDecay
from .errors import HyperParameterError, InputError, StateError

__all__ = ["BaseNeuron", "IF", "LIF", "PLIF"]


class BaseNeuron(StatefulModule):
    """Shared machinery: validation, state, multi-step and single-step paths.

    Subclasses implement :meth:`charge_params` returning the keyword arguments of
    :func:`snnedu.functional.charge` (``k`` and ``decay_input``).
    """

    def __init__(self, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 surrogate="atan", detach_reset: bool = False, record: bool = False):
        super().__init__()
        self.v_threshold = real("v_threshold", v_threshold, low=0.0, low_open=True,
                                what="firing threshold")
        self.v_reset = real("v_reset", v_reset, allow_none=True)
        if self.v_reset is not None and self.v_reset >= self.v_threshold:
            raise HyperParameterError(f"v_reset ({self.v_reset}) must be below v_threshold "
                                      f"({self.v_threshold}), otherwise the neuron fires at every step")
        self.surrogate = SF.get_surrogate(surrogate)
        self.detach_reset = bool(detach_reset)
        self.record = bool(record)
        self.v: Optional[torch.Tensor] = None
        self.h_seq: Optional[torch.Tensor] = None
        self.v_seq: Optional[torch.Tensor] = None

    # -- subclass hooks ------------------------------------------------------------------------------
    def charge_params(self) -> dict:
        """``{'k': leak or None, 'decay_input': bool}`` for :func:`snnedu.functional.charge`."""
        raise NotImplementedError

    def _prepare(self, sample_shape) -> None:
        """Called with one sample's shape (no T, no B) before computing; lazy shapes hook in here."""

    # -- paths ---------------------------------------------------------------------------------------
    def _params(self) -> dict:
        return dict(surrogate=self.surrogate, v_threshold=self.v_threshold, v_reset=self.v_reset,
                    detach_reset=self.detach_reset, **self.charge_params())

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Multi-step: ``x_seq`` ``[T, B, ...]`` -> spikes ``[T, B, ...]`` (state starts at rest)."""
        tensor_input(type(self).__name__, x_seq, min_dim=2, layout="[T, B, ...]")
        self.reset()
        self._prepare(x_seq.shape[2:])
        spikes, _, trace = SF.neuron_multistep(x_seq, None, record=self.record, **self._params())
        if trace is not None:
            self.h_seq, self.v_seq = trace[0].detach(), trace[1].detach()
        return spikes

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Single step: ``x`` ``[B, ...]`` -> spikes ``[B, ...]``; the potential is kept in ``self.v``."""
        tensor_input(f"{type(self).__name__}.step", x, min_dim=1, layout="[B, ...]")
        if self.v is not None and self.v.shape != x.shape:
            raise StateError(f"{type(self).__name__}.step got input of shape {list(x.shape)} but the "
                             f"stored potential has shape {list(self.v.shape)}; call snnedu.reset(model) "
                             "before a new sequence or batch")
        self._prepare(x.shape[1:])
        s, self.v, _ = SF.neuron_step(x, self.v, **self._params())
        return s

    def reset(self) -> None:
        """Forget the membrane potential and recorded traces."""
        self.v = None
        self.h_seq = None
        self.v_seq = None

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"hard, v_reset={self.v_reset}"
        return (f"v_threshold={self.v_threshold}, reset={reset}, surrogate={self.surrogate}, "
                f"detach_reset={self.detach_reset}")


class IF(BaseNeuron):
    r"""Integrate-and-fire neuron: :math:`H[t] = V[t-1] + X[t]`, no leak.

    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]`` (multi-step), ``[B, ...]`` -> ``[B, ...]`` (``step``).

    Example::

        >>> neuron = IF(v_threshold=1.0)
        >>> s = neuron(torch.full((4, 1, 1), 0.5))   # fires at t = 1 and t = 3
    """

    def charge_params(self) -> dict:
        return {"k": None, "decay_input": True}


class LIF(BaseNeuron):
    r"""Leaky integrate-and-fire neuron with membrane time constant ``tau`` (in time steps).

    ``decay_input=True`` (default; PLIF paper, SpikingJelly, "Form A"):
    :math:`H[t] = V[t-1] + \frac{1}{\tau}\big(X[t] - (V[t-1] - V_{reset})\big)`.

    ``decay_input=False``: :math:`H[t] = V[t-1] - \frac{1}{\tau}(V[t-1] - V_{reset}) + X[t]`; with a hard
    reset to 0 it is the iterative STBP form :math:`u[t] = \lambda u[t-1](1-o[t-1]) + x[t]` used by
    tdBN, MLF, TET and STL-SNN ("Form B"), where the *decay factor* :math:`\lambda = 1 - 1/\tau`.
    Build that one by its own parameter with :meth:`LIF.stbp` (those papers call :math:`\lambda`
    "tau" — snnedu keeps ``tau`` for the time constant and ``decay`` for :math:`\lambda`).

    Args:
        tau: membrane time constant :math:`\tau \ge 1` (leak ``1/tau`` in (0, 1]); default 2.

    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]``; ``step``: ``[B, ...]`` -> ``[B, ...]``.

    Example::

        >>> lif = LIF(tau=2.0, v_threshold=1.0)
        >>> spikes = lif(torch.rand(8, 32, 100))        # [T=8, B=32, N=100]
        >>> stbp = LIF.stbp(decay=0.25, v_threshold=0.5)  # u = 0.25 u (1 - o) + x
    """

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: Optional[float] = 0.0, surrogate="atan", detach_reset: bool = False,
                 record: bool = False):
        super().__init__(v_threshold, v_reset, surrogate, detach_reset, record)
        self.tau = real("tau", tau, low=1.0,
                        what="membrane time constant in steps; the leak 1/tau must lie in (0, 1]")
        self.k = 1.0 / self.tau
        self.decay_input = bool(decay_input)

    @classmethod
    def stbp(cls, decay: float = 0.25, v_threshold: float = 1.0, surrogate="rect",
             detach_reset: bool = False, record: bool = False) -> "LIF":
        r"""Iterative STBP LIF (Form B): :math:`u[t] = \lambda u[t-1](1 - o[t-1]) + x[t]`, hard reset to 0.

        ``decay`` is :math:`\lambda \in (0, 1]` (MLF/tdBN: 0.25, TET: 0.5, STL: 0.5); ``decay = 1`` is
        a non-leaky integrator. The default surrogate is the rectangular window of STBP.
        """
        decay = real("decay", decay, low=0.0, high=1.0, low_open=True,
                     what="STBP decay factor lambda = 1 - 1/tau")
        self = cls.__new__(cls)
        BaseNeuron.__init__(self, v_threshold, 0.0, surrogate, detach_reset, record)
        self.k = 1.0 - decay
        self.tau = float("inf") if decay == 1.0 else 1.0 / self.k
        self.decay_input = False
        return self

    @property
    def decay(self) -> float:
        """STBP decay factor :math:`\\lambda = 1 - 1/\\tau` (meaningful for ``decay_input=False``)."""
        return 1.0 - self.k

    def charge_params(self) -> dict:
        return {"k": self.k, "decay_input": self.decay_input}

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, decay_input={self.decay_input}, " + super().extra_repr()


class PLIF(BaseNeuron):
    r"""Parametric LIF: LIF whose time constant is learned (Fang et al., ICCV 2021).

    :math:`k = \sigma(w) = 1/\tau`, :math:`H[t] = V[t-1] + k\,(X[t] - (V[t-1] - V_{reset}))` (Form A,
    ``decay_input=True``), initialised at :math:`w_0 = -\ln(\tau_0 - 1)`.

    Granularity:

    - ``per_neuron=False`` (default, the PLIF paper): one ``w`` shared by the whole layer.
    - ``per_neuron=True`` (TU Delft thesis): one ``w`` per neuron, i.e. shaped like one sample
      (``(C, H, W)`` for conv layers, ``(N,)`` for linear ones); pass ``shape`` or let it be inferred
      from the first input. ``tau_std > 0`` draws the initial tau from a shifted log-normal with mean
      ``tau_init`` and std ``tau_std`` (always > 1). Penalise the spread with
      :class:`snnedu.TauVarianceRegularizer`.

    Args:
        tau_init: :math:`\tau_0 > 1` (default 2, i.e. ``w0 = 0``).

    Attributes: ``tau`` (tensor, differentiable), ``decay_param`` (the :class:`LearnableDecay`).

    Example::

        >>> layer = PLIF(tau_init=2.0)                                    # one tau for the layer
        >>> per_n = PLIF(tau_init=2.0, per_neuron=True, shape=(128, 16, 16), tau_std=0.1)
        >>> s = per_n(torch.randn(20, 4, 128, 16, 16))
    """

    def __init__(self, tau_init: float = 2.0, per_neuron: bool = False,
                 shape: Optional[Sequence[int]] = None, tau_std: float = 0.0,
                 decay_input: bool = True, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 surrogate="atan", detach_reset: bool = False, record: bool = False):
        super().__init__(v_threshold, v_reset, surrogate, detach_reset, record)
        self.decay_param = LearnableDecay(tau_init, shape=shape, per_neuron=per_neuron, tau_std=tau_std)
        self.decay_input = bool(decay_input)

    @property
    def per_neuron(self) -> bool:
        return self.decay_param.per_neuron

    @property
    def tau(self) -> torch.Tensor:
        """Current membrane time constant(s) ``1/sigmoid(w)``: a scalar or one per neuron."""
        return self.decay_param.tau

    def _prepare(self, sample_shape) -> None:
        if self.per_neuron:
            self.decay_param.materialize(sample_shape)
            self.decay_param.check_shape(sample_shape, type(self).__name__)

    def charge_params(self) -> dict:
        return {"k": self.decay_param.k, "decay_input": self.decay_input}

    def extra_repr(self) -> str:
        return f"decay_input={self.decay_input}, " + super().extra_repr()
