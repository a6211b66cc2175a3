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
- ``record`` — keep ``h_seq`` (potential before reset) and ``v_seq`` (after reset), ``[T, B, ...]``
  (``[T, K, B, ...]`` for multi-level units), detached, from the last multi-step call, for plots.
- ``learn_threshold`` — ``False`` (fixed), ``True``/``'layer'`` (one learnable threshold per layer) or
  ``'neuron'`` (one per neuron, STL); ``threshold_noise`` spreads the per-neuron initial values and
  ``min_threshold`` keeps them positive (see :mod:`snnedu.threshold`).

Families: :class:`IF`, :class:`LIF` (both charge forms), :class:`PLIF` (learnable tau per layer or
per neuron), :class:`MLF` (K levels), :class:`PMLF` / :class:`PMLF3` (MLF with a learnable decay
shared by the levels / one per level). Each is a choice of charge parameters, thresholds and number
of levels on top of one shared charge / fire / reset core.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from . import functional as SF
from . import kernels
from ._checks import flag, positive_int, real, short_repr, tensor_input
from .base import StatefulModule
from .decay import FixedLeak, LearnableDecay
from .errors import HyperParameterError, StateError
from .family import CORE, NeuronFamily
from .threshold import LearnableThreshold

__all__ = ["BaseNeuron", "IF", "LIF", "PLIF", "MLF", "PMLF", "PMLF3"]


def _level_count(K) -> int:
    """``K``, the number of levels of a multi-level unit, checked (1 to 256; the papers use 3)."""
    return positive_int("K (number of levels)", K, maximum=256)


class BaseNeuron(StatefulModule):
    r"""Shared machinery: validation, thresholds, levels, state, multi-step and single-step paths.

    Subclasses implement :meth:`charge_params` returning the keyword arguments of
    :func:`snnedu.functional.charge` (``k`` and ``decay_input``). A multi-level unit sets
    :attr:`levels` ``K > 1`` and :attr:`level_spacing`: its input is fed to ``K`` independent
    sub-neurons with thresholds ``v_threshold + k * level_spacing`` (``k = 0..K-1``), each with its own
    potential and reset, and the output is the sum of their spikes (values ``0..K``).

    Args:
        v_threshold (float): firing threshold :math:`V_{th} > 0` (default 1.0).
        v_reset (float or None): potential after a spike (hard reset), default 0; ``None`` selects
            the soft reset :math:`V \leftarrow H - V_{th}`. Must lie below ``v_threshold``.
        surrogate (str or Surrogate): surrogate gradient of the spike, a name (``'atan'``,
            ``'sigmoid'``, ``'rect'``, ``'triangle'``) or a :class:`snnedu.Surrogate` (default
            ``'atan'``).
        detach_reset (bool): stop the gradient through the reset term (default ``False``; the PLIF
            paper uses ``True``).
        record (bool): keep the potentials before (``h_seq``) and after (``v_seq``) reset of the last
            multi-step call, detached (``[T, B, ...]``), for plots (default ``False``).
        learn_threshold (bool or str): ``False`` (default, fixed threshold), ``True`` or ``'layer'``
            (one learnable threshold for the layer) or ``'neuron'`` (one per neuron, STL); see
            :class:`snnedu.LearnableThreshold`.
        threshold_noise (float): std of the random spread of per-neuron initial thresholds (default 0;
            needs ``learn_threshold='neuron'``).
        min_threshold (float): floor of a learnable threshold in the forward pass (default 1e-3).
    """

    levels = 1
    level_spacing = 0.0
    #: the declaration this module runs (:mod:`snnedu.family`): its state variables and its step
    family: NeuronFamily = CORE
    _state_attrs = ("v", "h_seq", "v_seq")  # derived from ``family`` for every subclass (__init_subclass__)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._state_attrs = (*cls.family.state, "h_seq", *(f"{n}_seq" for n in cls.family.state))

    def __init__(self, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0, surrogate="atan",
                 detach_reset: bool = False, record: bool = False, learn_threshold=False,
                 threshold_noise: float = 0.0, min_threshold: float = 1e-3):
        super().__init__()
        self.v_threshold = real("v_threshold", v_threshold, low=0.0, low_open=True,
                                what="firing threshold")
        self.v_reset = real("v_reset", v_reset, allow_none=True)
        if self.v_reset is not None and self.v_reset >= self.v_threshold:
            raise HyperParameterError(f"v_reset ({self.v_reset}) must be below v_threshold "
                                      f"({self.v_threshold}), otherwise the neuron fires at every step")
        self.surrogate = SF.get_surrogate(surrogate)
        self.detach_reset = flag("detach_reset", detach_reset)
        self.record = flag("record", record)
        if not (isinstance(learn_threshold, bool) or learn_threshold in ("layer", "neuron")):
            raise HyperParameterError(f"learn_threshold must be False, True/'layer' or 'neuron', "
                                      f"got {short_repr(learn_threshold)}")
        self.threshold_param: Optional[LearnableThreshold] = None
        if learn_threshold:
            self.threshold_param = LearnableThreshold(self.v_threshold, per_neuron=learn_threshold == "neuron",
                                                      noise=threshold_noise, min_threshold=min_threshold)
        elif threshold_noise:
            raise HyperParameterError("threshold_noise needs learn_threshold='neuron'")
        self.reset()  # every state variable of the family, and its trace, starts as None

    # -- subclass hooks ------------------------------------------------------------------------------
    def charge_params(self, sample_ndim: int) -> dict:
        """``{'k': leak or None, 'decay_input': bool}`` for :func:`snnedu.functional.charge`.

        ``sample_ndim`` is the rank of one sample (no T, no B), for reshaping per-level tensors.
        """
        raise NotImplementedError

    def _prepare(self, sample_shape) -> None:
        """Called with one sample's shape before computing: lazily shaped parameters hook in here."""
        for m in self.children():
            if isinstance(m, (LearnableDecay, LearnableThreshold)):
                m.prepare(sample_shape, type(self).__name__)

    # -- thresholds and levels -------------------------------------------------------------------------
    @property
    def learn_threshold(self) -> bool:
        return self.threshold_param is not None

    def threshold(self, sample_ndim: int = 0, like: Optional[torch.Tensor] = None):
        """The threshold(s) used now: a float, or a tensor broadcasting against ``[(K,) B, *sample]``.

        ``like`` (the input) gives the device and dtype of the per-level offsets of a multi-level unit.
        """
        th = self.v_threshold if self.threshold_param is None else self.threshold_param.value()
        if self.levels == 1:
            return th
        ref = th if isinstance(th, torch.Tensor) else like
        offsets = torch.arange(self.levels, device=None if ref is None else ref.device,
                               dtype=torch.float32 if ref is None else ref.dtype) * self.level_spacing
        # [K, 1 (batch), 1, ...] + a scalar or a per-neuron [*sample] threshold -> [K, 1, *sample]
        return th + offsets.view(self.levels, *([1] * (sample_ndim + 1)))

    def _rest(self, x_t: torch.Tensor) -> Optional[torch.Tensor]:
        """Initial potential for one step ``[B, ...]``: ``None`` (the functional default) for a
        single-level neuron, ``[K, B, ...]`` for a multi-level unit. The input ``[B, ...]`` is not
        copied per level: it broadcasts against the ``[K, B, ...]`` potential in the charge step."""
        if self.levels == 1:
            return None
        return SF.initial_potential(x_t.new_empty((self.levels, *x_t.shape)), self.v_reset)

    def _from_levels(self, s: torch.Tensor, dim: int) -> torch.Tensor:
        """Output of a multi-level unit: the sum of the levels' spikes."""
        return s if self.levels == 1 else s.sum(dim)

    # -- paths ---------------------------------------------------------------------------------------
    def _params(self, sample_ndim: int, like: torch.Tensor) -> dict:
        th = self.threshold(sample_ndim, like)
        return dict(surrogate=self.surrogate, v_threshold=th, v_reset=self.v_reset,
                    detach_reset=self.detach_reset, **self.charge_params(sample_ndim))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Multi-step: ``x_seq`` ``[T, B, ...]`` -> spikes ``[T, B, ...]`` (state starts at rest).

        Runs on the fused backend :func:`snnedu.kernels.multistep` picks (a compiled loop on CPU, Triton
        kernels on CUDA, the reference loop with ``record=True`` or for a family without a fast path);
        all compute the same values."""
        name = type(self).__name__
        tensor_input(name, x_seq, min_dim=2, layout="[T, B, ...]", finite=False)
        self.reset()
        sample = x_seq.shape[2:]
        self._prepare(sample)
        # kernels.multistep also scans x_seq for NaN/inf (inside the kernel on the CPU backend)
        spikes, _, trace = kernels.multistep(x_seq, self._rest(x_seq[0]), record=self.record, name=name,
                                             family=self.family, **self._params(len(sample), x_seq))
        if trace is not None:
            self.h_seq = trace[0].detach()
            for state_name, seq in zip(self.family.state, trace[1:]):
                setattr(self, f"{state_name}_seq", seq.detach())
        return self._from_levels(spikes, 1)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Single step: ``x`` ``[B, ...]`` -> spikes ``[B, ...]``; the potential is kept in ``self.v``
        (and a family's other state variables in the attributes of their names)."""
        tensor_input(f"{type(self).__name__}.step", x, min_dim=1, layout="[B, ...]")
        state_shape = x.shape if self.levels == 1 else (self.levels, *x.shape)
        if self.v is not None and self.v.shape != state_shape:
            raise StateError(f"{type(self).__name__}.step got input of shape {list(x.shape)} but the "
                             f"stored potential has shape {list(self.v.shape)}; call snnedu.reset(model) "
                             "before a new sequence or batch")
        sample = x.shape[1:]
        self._prepare(sample)
        names = self.family.state
        if self.v is None:
            rest = self._rest(x)  # None, or the [K, B, ...] potential of a multi-level unit (one state variable)
            state = None if rest is None else (rest,)
        else:
            state = tuple(getattr(self, n) for n in names)
        s, state, _ = self.family.step(x, state, **self._params(len(sample), x))
        for n, value in zip(names, state):
            setattr(self, n, value)
        return self._from_levels(s, 0).to(x.dtype)  # per-neuron float32 parameters must not promote x

    def reset(self) -> None:
        """Forget the state (membrane potential, any other state variable) and recorded traces."""
        self.h_seq = None
        for n in self.family.state:
            setattr(self, n, None)
            setattr(self, f"{n}_seq", None)

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"hard, v_reset={self.v_reset}"
        th = ""
        if self.threshold_param is not None:
            th = f", learn_threshold={'neuron' if self.threshold_param.per_neuron else 'layer'}"
        return (f"v_threshold={self.v_threshold}{th}, reset={reset}, surrogate={self.surrogate}, "
                f"detach_reset={self.detach_reset}")


class IF(BaseNeuron):
    r"""Integrate-and-fire neuron: :math:`H[t] = V[t-1] + X[t]`, no leak.

    Args:
        v_threshold (float): firing threshold :math:`V_{th} > 0` (default 1.0).
        v_reset (float or None): potential after a spike (hard reset), default 0; ``None`` selects
            the soft reset :math:`V \leftarrow H - V_{th}`. Must lie below ``v_threshold``.
        surrogate (str or Surrogate): surrogate gradient of the spike, a name (``'atan'``,
            ``'sigmoid'``, ``'rect'``, ``'triangle'``) or a :class:`snnedu.Surrogate` (default
            ``'atan'``).
        detach_reset (bool): stop the gradient through the reset term (default ``False``; the PLIF
            paper uses ``True``).
        record (bool): keep the potentials before (``h_seq``) and after (``v_seq``) reset of the last
            multi-step call, detached (``[T, B, ...]``), for plots (default ``False``).
        learn_threshold (bool or str): ``False`` (default, fixed threshold), ``True`` or ``'layer'``
            (one learnable threshold for the layer) or ``'neuron'`` (one per neuron, STL).
        threshold_noise (float): std of the random spread of per-neuron initial thresholds (default 0;
            needs ``learn_threshold='neuron'``).
        min_threshold (float): floor of a learnable threshold in the forward pass (default 1e-3).

    The other neurons take the last three as keyword arguments (``**threshold_options``).

    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]`` (multi-step), ``[B, ...]`` -> ``[B, ...]`` (``step``).

    Example::

        >>> neuron = IF(v_threshold=1.0)
        >>> s = neuron(torch.full((4, 1, 1), 0.5))   # fires at t = 1 and t = 3
    """

    def charge_params(self, sample_ndim: int) -> dict:
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
        tau (float): membrane time constant :math:`\tau \ge 1` in steps (leak ``1/tau`` in (0, 1]);
            default 2.
        decay_input (bool): ``True`` (default) scales the input by ``1/tau`` (Form A); ``False`` adds
            it unscaled.
        v_threshold (float): firing threshold :math:`V_{th} > 0` (default 1.0).
        v_reset (float or None): potential after a spike (hard reset), default 0; ``None`` selects
            the soft reset :math:`V \leftarrow H - V_{th}`. Must lie below ``v_threshold``.
        surrogate (str or Surrogate): surrogate gradient of the spike, a name (``'atan'``,
            ``'sigmoid'``, ``'rect'``, ``'triangle'``) or a :class:`snnedu.Surrogate` (default
            ``'atan'``).
        detach_reset (bool): stop the gradient through the reset term (default ``False``; the PLIF
            paper uses ``True``).
        record (bool): keep the potentials before (``h_seq``) and after (``v_seq``) reset of the last
            multi-step call, detached (``[T, B, ...]``), for plots (default ``False``).

    Keyword Args:
        learn_threshold (bool or str): ``False`` (default, fixed threshold), ``True`` or ``'layer'``
            (one learnable threshold for the layer) or ``'neuron'`` (one per neuron, STL).
        threshold_noise (float): std of the random spread of per-neuron initial thresholds (default 0;
            needs ``learn_threshold='neuron'``).
        min_threshold (float): floor of a learnable threshold in the forward pass (default 1e-3).

    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]``; ``step``: ``[B, ...]`` -> ``[B, ...]``.

    Example::

        >>> lif = LIF(tau=2.0, v_threshold=1.0)
        >>> spikes = lif(torch.rand(8, 32, 100))        # [T=8, B=32, N=100]
        >>> stbp = LIF.stbp(decay=0.25, v_threshold=0.5)  # u = 0.25 u (1 - o) + x
        >>> stl = LIF.stbp(decay=0.5, v_threshold=2.0, surrogate="atan", learn_threshold="neuron")
    """

    def __init__(self, tau: float = 2.0, decay_input: bool = True, v_threshold: float = 1.0,
                 v_reset: Optional[float] = 0.0, surrogate="atan", detach_reset: bool = False,
                 record: bool = False, **threshold_options):
        super().__init__(v_threshold, v_reset, surrogate, detach_reset, record, **threshold_options)
        #: the leak component (:class:`snnedu.decay.FixedLeak`): ``k``, ``tau`` and ``decay`` read it
        self.leak = FixedLeak.from_tau(tau)
        self.decay_input = flag("decay_input", decay_input)

    @classmethod
    def stbp(cls, decay: float = 0.25, v_threshold: float = 1.0, surrogate="rect",
             detach_reset: bool = False, record: bool = False, **threshold_options) -> "LIF":
        r"""Iterative STBP LIF (Form B): :math:`u[t] = \lambda u[t-1](1 - o[t-1]) + x[t]`, hard reset to 0.

        ``decay`` is :math:`\lambda \in (0, 1]` (MLF/tdBN: 0.25, TET: 0.5, STL: 0.5); ``decay = 1`` is
        a non-leaky integrator. The default surrogate is the rectangular window of STBP.
        """
        leak = FixedLeak.from_decay(decay, what="STBP decay factor lambda = 1 - 1/tau")
        lif = cls(decay_input=False, v_threshold=v_threshold, v_reset=0.0, surrogate=surrogate,
                  detach_reset=detach_reset, record=record, **threshold_options)
        lif.leak = leak   # the leak is a component: the STBP form keeps its decay factor exactly
        return lif

    @property
    def k(self) -> float:
        """Leak per step :math:`k = 1/\\tau`."""
        return self.leak.k

    @property
    def tau(self) -> float:
        """Membrane time constant :math:`\\tau` in steps (``inf`` for the STBP form with ``decay = 1``)."""
        return self.leak.tau

    @property
    def decay(self) -> float:
        """STBP decay factor :math:`\\lambda = 1 - 1/\\tau` (meaningful for ``decay_input=False``)."""
        return self.leak.decay

    def charge_params(self, sample_ndim: int) -> dict:
        return {"k": self.leak.leak(sample_ndim), "decay_input": self.decay_input}

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
        tau_init (float): initial time constant :math:`\tau_0 > 1` (default 2, i.e. ``w0 = 0``); the
            mean of the initial values when ``tau_std > 0``.
        per_neuron (bool): one ``w`` per neuron instead of one per layer (default ``False``).
        shape (tuple of int or None): shape of one sample's neurons, e.g. ``(C, H, W)`` or ``(N,)``,
            for per-neuron time constants; ``None`` (default) infers it from the first input.
        tau_std (float): std of the per-neuron initial time constants (default 0: all start at
            ``tau_init``); needs per-neuron time constants.
        decay_input (bool): ``True`` (default, the paper's Form A) scales the input by ``k``;
            ``False`` adds it unscaled.
        v_threshold (float): firing threshold :math:`V_{th} > 0` (default 1.0).
        v_reset (float or None): potential after a spike (hard reset), default 0; ``None`` selects
            the soft reset :math:`V \leftarrow H - V_{th}`. Must lie below ``v_threshold``.
        surrogate (str or Surrogate): surrogate gradient of the spike, a name (``'atan'``,
            ``'sigmoid'``, ``'rect'``, ``'triangle'``) or a :class:`snnedu.Surrogate` (default
            ``'atan'``).
        detach_reset (bool): stop the gradient through the reset term (default ``False``; the PLIF
            paper uses ``True``).
        record (bool): keep the potentials before (``h_seq``) and after (``v_seq``) reset of the last
            multi-step call, detached (``[T, B, ...]``), for plots (default ``False``).

    Keyword Args:
        learn_threshold (bool or str): ``False`` (default, fixed threshold), ``True`` or ``'layer'``
            (one learnable threshold for the layer) or ``'neuron'`` (one per neuron, STL).
        threshold_noise (float): std of the random spread of per-neuron initial thresholds (default 0;
            needs ``learn_threshold='neuron'``).
        min_threshold (float): floor of a learnable threshold in the forward pass (default 1e-3).

    Attributes: ``tau`` (tensor, differentiable), ``decay_param`` (the :class:`LearnableDecay`).

    Example::

        >>> layer = PLIF(tau_init=2.0)                                    # one tau for the layer
        >>> per_n = PLIF(tau_init=2.0, per_neuron=True, shape=(128, 16, 16), tau_std=0.1)
        >>> s = per_n(torch.randn(20, 4, 128, 16, 16))
    """

    def __init__(self, tau_init: float = 2.0, per_neuron: bool = False,
                 shape: Optional[Sequence[int]] = None, tau_std: float = 0.0,
                 decay_input: bool = True, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 surrogate="atan", detach_reset: bool = False, record: bool = False, **threshold_options):
        super().__init__(v_threshold, v_reset, surrogate, detach_reset, record, **threshold_options)
        self.decay_param = LearnableDecay(tau_init, shape=shape, per_neuron=per_neuron, tau_std=tau_std)
        self.decay_input = flag("decay_input", decay_input)

    @property
    def per_neuron(self) -> bool:
        return self.decay_param.per_neuron

    @property
    def tau(self) -> torch.Tensor:
        """Current membrane time constant(s) ``1/sigmoid(w)``: a scalar or one per neuron."""
        return self.decay_param.tau

    def charge_params(self, sample_ndim: int) -> dict:
        return {"k": self.decay_param.k, "decay_input": self.decay_input}

    def extra_repr(self) -> str:
        return f"decay_input={self.decay_input}, " + super().extra_repr()


class MLF(BaseNeuron):
    r"""Multi-level firing unit (Feng et al., IJCAI 2022): ``K`` Form-B LIF levels on the same input.

    Level :math:`k = 1..K` has its own potential, threshold and reset:

    .. math::

        u_k[t] &= \lambda\, u_k[t-1]\,(1 - o_k[t-1]) + x[t] \\
        o_k[t] &= \Theta\big(u_k[t] - V_{th}^k\big) \\
        V_{th}^k &= V_{th}^1 + (k - 1)\,a \\
        \text{out}[t] &= \textstyle\sum_{k=1}^{K} o_k[t] \in \{0, 1, \dots, K\}

    The thresholds are spaced by the width ``a`` of the rectangular surrogate
    :math:`g'(x) = \frac1a \mathbb 1[|x| < a/2]`, so the K gradient windows tile the potential axis
    without overlap (``K = 3``, ``V_th = 0.6``, ``a = 1``: windows [0.1, 1.1), [1.1, 2.1), [2.1, 3.1)):
    a unit whose potential is far above the first threshold still gets a gradient, which suppresses
    "dormant" units in deep networks. ``K = 1`` is exactly ``LIF.stbp(decay, v_threshold)`` with the
    rectangular surrogate. The unit has no trainable parameters (unless ``learn_threshold``: then the
    first threshold is learned and the others keep their offsets ``(k-1) a``).

    Args:
        K (int): number of levels (paper: 3).
        v_threshold (float): first threshold :math:`V_{th}^1 > 0` (paper and default: 0.6).
        a (float): surrogate width and threshold spacing, ``a > 0`` (paper and default: 1.0).
        decay (float or LearnableDecay): decay factor :math:`\lambda \in (0, 1]` (paper and default: 0.25),
            or a :class:`snnedu.LearnableDecay` with ``form='decay'``, which then is the unit's leak (how
            :class:`PMLF` and :class:`PMLF3` are built).
        v_reset (float or None): potential a level returns to after its spike (hard reset; paper and
            default: 0); ``None`` selects the soft reset (subtract the level's threshold).
        surrogate (str or Surrogate or None): surrogate gradient of every level; ``None`` (default)
            is a :class:`snnedu.Rectangular` of width ``a``, centred on each level's threshold.
        detach_reset (bool): stop the gradient through the reset term (default and paper: ``False``).
        record (bool): keep the potentials before (``h_seq``) and after (``v_seq``) reset of the
            last multi-step call, detached, ``[T, K, B, ...]`` (default ``False``).

    Keyword Args:
        learn_threshold (bool or str): ``False`` (default, fixed threshold), ``True`` or ``'layer'``
            (one learnable threshold for the layer) or ``'neuron'`` (one per neuron, STL); only the
            first threshold is learned, the others keep their offsets ``(k-1) a``.
        threshold_noise (float): std of the random spread of per-neuron initial thresholds (default 0;
            needs ``learn_threshold='neuron'``).
        min_threshold (float): floor of a learnable threshold in the forward pass (default 1e-3).

    Shapes: ``[T, B, ...]`` -> ``[T, B, ...]`` with values in ``0..K``; ``step``: ``[B, ...]`` -> ``[B, ...]``.
    With ``record=True``, ``h_seq``/``v_seq`` are ``[T, K, B, ...]`` (one trace per level).

    Example::

        >>> mlf = MLF(K=3, v_threshold=0.6, a=1.0, decay=0.25)
        >>> out = mlf(torch.rand(4, 8, 64) * 3)          # [T=4, B=8, N=64], values in {0, 1, 2, 3}
        >>> mlf.thresholds()                              # tensor([0.6, 1.6, 2.6])
    """

    def __init__(self, K: int = 3, v_threshold: float = 0.6, a: float = 1.0, decay: float = 0.25,
                 v_reset: Optional[float] = 0.0, surrogate=None, detach_reset: bool = False,
                 record: bool = False, **threshold_options):
        self_K = _level_count(K)
        a = real("a (surrogate width and threshold spacing)", a, low=0.0, low_open=True)
        surrogate = SF.Rectangular(a) if surrogate is None else surrogate
        super().__init__(v_threshold, v_reset, surrogate, detach_reset, record, **threshold_options)
        self.K = self_K
        self.a = a
        if isinstance(decay, LearnableDecay):    # PMLF / PMLF3 pass their learnable decay as the component
            self.decay_param = decay
        else:
            self.leak = FixedLeak.from_decay(decay, what="decay factor lambda of u = lambda u (1 - o) + x")

    @property
    def levels(self) -> int:
        return self.K

    @property
    def level_spacing(self) -> float:
        return self.a

    @property
    def decay(self):
        """Decay factor :math:`\\lambda` (a float for MLF, a tensor for PMLF / PMLF3)."""
        return self._leak_component().decay

    def _leak_component(self):
        """The leak: a :class:`snnedu.decay.FixedLeak` (MLF) or the :class:`LearnableDecay` (PMLF, PMLF3)."""
        return self.decay_param if isinstance(getattr(self, "decay_param", None), LearnableDecay) else self.leak

    def thresholds(self) -> torch.Tensor:
        """The K thresholds :math:`V_{th}^k` (for a per-neuron learnable threshold: ``[K, *sample]``)."""
        tp = self.threshold_param
        sample_ndim = tp.w.dim() if tp is not None and tp.per_neuron and tp.is_materialized else 0
        th = torch.as_tensor(self.threshold(sample_ndim)).detach()
        return th.reshape(self.K, *th.shape[2:])

    def charge_params(self, sample_ndim: int) -> dict:
        return {"k": self._leak_component().leak(sample_ndim), "decay_input": False}

    def _decay_repr(self) -> str:
        return f"decay={self.leak.decay}"

    def extra_repr(self) -> str:
        return f"K={self.K}, a={self.a}, {self._decay_repr()}, " + super().extra_repr()


class PMLF(MLF):
    r"""MLF with a learnable decay (the PMLF project): :math:`\lambda = \sigma(w)`, trained with the weights.

    ``per_level=False`` (PMLF): one :math:`w` per unit, shared by all K levels.
    ``per_level=True`` (:class:`PMLF3`, "3PMLF"): one :math:`w_k` per level.

    Design choices where the project's model code is unpublished (its training scripts log one
    decay per unit; see the book's chapter 7 and its Paper settings appendix): the update keeps MLF's
    multiplicative form :math:`u = \lambda u (1 - o) + x`, the decay is one scalar per unit (not per
    neuron), and :math:`w_0 = \ln(\lambda_0/(1-\lambda_0))` so that
    ``decay_init = 0.25`` starts at MLF's setting up to float32 rounding: :math:`\sigma(w_0)` is stored as
    0.25 within one unit in the last place (the leak :math:`1 - \lambda_0` may come out as 0.7500000596),
    so a frozen PMLF matches MLF with that decay bit for bit, and MLF with 0.25 to within rounding, not
    exactly.

    Args:
        K (int): number of levels (default 3).
        v_threshold (float): first threshold :math:`V_{th}^1 > 0` (default 0.6).
        a (float): surrogate width and threshold spacing, ``a > 0`` (default 1.0).
        decay_init (float): initial decay factor :math:`\lambda_0 \in (0, 1)` (default 0.25, MLF's
            fixed value).
        per_level (bool): one learnable decay per level (3PMLF) instead of one for the unit
            (default ``False``).
        v_reset (float or None): potential a level returns to after its spike (default 0); ``None``
            selects the soft reset.
        surrogate (str or Surrogate or None): surrogate gradient; ``None`` (default) is a
            :class:`snnedu.Rectangular` of width ``a``.
        detach_reset (bool): stop the gradient through the reset term (default ``False``).
        record (bool): keep the potentials ``h_seq`` / ``v_seq``, ``[T, K, B, ...]``, of the last
            multi-step call (default ``False``).

    Keyword Args:
        learn_threshold (bool or str): ``False`` (default, fixed threshold), ``True`` or ``'layer'``
            (one learnable threshold for the layer) or ``'neuron'`` (one per neuron, STL).
        threshold_noise (float): std of the random spread of per-neuron initial thresholds (default 0;
            needs ``learn_threshold='neuron'``).
        min_threshold (float): floor of a learnable threshold in the forward pass (default 1e-3).

    Attributes: ``decay`` and ``tau`` (= 1/(1 - decay)) — tensors, shape ``()`` or ``(K,)``;
    ``decay_param`` — the :class:`LearnableDecay`.

    Example::

        >>> unit = PMLF(K=3, decay_init=0.25)        # one learnable decay for the three levels
        >>> unit3 = PMLF3(K=3, decay_init=0.25)      # one per level: unit3.decay.shape == (3,)
    """

    def __init__(self, K: int = 3, v_threshold: float = 0.6, a: float = 1.0, decay_init: float = 0.25,
                 per_level: bool = False, v_reset: Optional[float] = 0.0, surrogate=None,
                 detach_reset: bool = False, record: bool = False, **threshold_options):
        K = _level_count(K)
        decay = LearnableDecay(form="decay", decay_init=decay_init, levels=K if flag("per_level", per_level) else None)
        # composition: MLF's leak is this learnable decay instead of a fixed one
        super().__init__(K, v_threshold, a, decay, v_reset, surrogate, detach_reset, record, **threshold_options)

    @property
    def per_level(self) -> bool:
        return self.decay_param.levels is not None

    @property
    def decay(self) -> torch.Tensor:
        return self.decay_param.decay

    @property
    def tau(self) -> torch.Tensor:
        return self.decay_param.tau

    def _decay_repr(self) -> str:
        return f"decay_init={self.decay_param.decay_init} (learnable)"

    def extra_repr(self) -> str:
        return f"per_level={self.per_level}, " + super().extra_repr()


class PMLF3(PMLF):
    r"""3PMLF: :class:`PMLF` with one learnable decay per level (``per_level=True``).

    Args:
        K (int): number of levels, and of learnable decays (default 3).
        v_threshold (float): first threshold :math:`V_{th}^1 > 0` (default 0.6).
        a (float): surrogate width and threshold spacing, ``a > 0`` (default 1.0).
        decay_init (float): initial value :math:`\lambda_0 \in (0, 1)` of every level's decay
            (default 0.25).
        v_reset (float or None): potential a level returns to after its spike (default 0); ``None``
            selects the soft reset.
        surrogate (str or Surrogate or None): surrogate gradient; ``None`` (default) is a
            :class:`snnedu.Rectangular` of width ``a``.
        detach_reset (bool): stop the gradient through the reset term (default ``False``).
        record (bool): keep the potentials ``h_seq`` / ``v_seq``, ``[T, K, B, ...]``, of the last
            multi-step call (default ``False``).

    Keyword Args:
        learn_threshold (bool or str): ``False`` (default, fixed threshold), ``True`` or ``'layer'``
            (one learnable threshold for the layer) or ``'neuron'`` (one per neuron, STL).
        threshold_noise (float): std of the random spread of per-neuron initial thresholds (default 0;
            needs ``learn_threshold='neuron'``).
        min_threshold (float): floor of a learnable threshold in the forward pass (default 1e-3).

    Example::

        >>> unit = PMLF3(K=3, decay_init=0.25)
        >>> unit.decay            # tensor([0.25, 0.25, 0.25], grad_fn=...)
    """

    def __init__(self, K: int = 3, v_threshold: float = 0.6, a: float = 1.0, decay_init: float = 0.25,
                 v_reset: Optional[float] = 0.0, surrogate=None, detach_reset: bool = False,
                 record: bool = False, **threshold_options):
        super().__init__(K, v_threshold, a, decay_init, True, v_reset, surrogate, detach_reset, record,
                         **threshold_options)
