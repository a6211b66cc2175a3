"""The kernel plan: what every fused backend (numba on CPU, Triton on GPU) needs to know of one call.

A fused kernel computes the same thing as :func:`snnedu.functional.neuron_multistep` (the reference)
for ``K`` levels (``K = 1`` for IF/LIF/PLIF, ``K > 1`` for MLF-family units) in one pass over time::

    x_seq  [T, B, *S]         input current, shared by the K levels
    v0     [K, B, *S]         initial potential (None: rest)
    k      None | float | tensor broadcastable to [K, 1, *S]     leak per step (None: IF)
    θ      float | tensor broadcastable to [K, 1, *S]            firing threshold
    ->  spikes [T, (K,) B, *S] (K only when v0 has a level axis, like the reference), v_last [(K,) B, *S]

:class:`MultistepSpec` is that call, planned once: the :class:`Layout` (``N = prod(S)`` neurons per
sample, ``J = B·N`` elements per level and step), the :class:`Charge` and reset kinds, the surrogate as
a ``(SurrogateKind, parameter)`` pair, and the helpers that turn parameters into ``[K, N]`` rows for a
kernel and per-element gradients ``[K, J]`` back into the parameters' own shapes. Both backends build
it with :meth:`MultistepSpec.build` and read everything from it, so a new surrogate or charge form is
added here, in one place (and in the kernels' arithmetic).
"""
from __future__ import annotations

import dataclasses
import enum
import math
from typing import Optional, Tuple, Union

import torch

from .._checks import flag
from ..functional.surrogate import ATan, Rectangular, Sigmoid, Surrogate, Triangle

__all__ = ["Charge", "SurrogateKind", "fused_surrogate", "Layout", "MultistepSpec", "shape_dtype", "as_tensor"]


class Charge(enum.IntEnum):
    """How the potential charges (:func:`snnedu.functional.charge`), with ``vr`` the reset potential.

    The kernels receive ``int(charge)``."""

    IF = 0           #: ``h = v + x``
    DECAY_INPUT = 1  #: ``h = v + k (x - (v - vr))`` (LIF Form A)
    PLAIN_LEAK = 2   #: ``h = v - k (v - vr) + x`` (LIF Form B)


class SurrogateKind(enum.IntEnum):
    """The built-in surrogates a fused kernel computes, each with one parameter (its attribute)."""

    RECTANGULAR = 0  #: ``1/a`` on ``|z| < a/2``
    SIGMOID = 1      #: ``alpha σ(alpha z)(1 - σ(alpha z))``
    ATAN = 2         #: ``(alpha/2) / (1 + (π/2 alpha z)²)``
    TRIANGLE = 3     #: ``max(gamma - |z|, 0) / gamma²``


_SURROGATES = {Rectangular: (SurrogateKind.RECTANGULAR, "a"), Sigmoid: (SurrogateKind.SIGMOID, "alpha"),
               ATan: (SurrogateKind.ATAN, "alpha"), Triangle: (SurrogateKind.TRIANGLE, "gamma")}


def fused_surrogate(surrogate: Surrogate) -> Optional[Tuple[SurrogateKind, float]]:
    """``(kind, parameter)`` of a built-in surrogate, or ``None`` for a class no kernel computes
    (a subclass too: it may have changed the formula)."""
    entry = _SURROGATES.get(type(surrogate))
    if entry is None:
        return None
    kind, attr = entry
    return kind, float(getattr(surrogate, attr))


class Layout:
    """Shapes of one call: ``T``, ``K`` levels, batch ``B``, sample shape ``S`` and ``N = prod(S)``;
    ``multi`` says whether the results carry the level axis (the reference's do exactly when ``v0``
    has one)."""

    def __init__(self, T: int, K: int, B: int, S: Tuple[int, ...], multi: Optional[bool] = None):
        self.T, self.K, self.B, self.S = T, K, B, tuple(S)
        self.N = math.prod(self.S)
        self.J = self.B * self.N
        self.multi = K > 1 if multi is None else bool(multi)

    def spikes_shape(self) -> Tuple[int, ...]:
        return (self.T, self.K, self.B, *self.S) if self.multi else (self.T, self.B, *self.S)

    def state_shape(self) -> Tuple[int, ...]:
        return (self.K, self.B, *self.S) if self.multi else (self.B, *self.S)


Param = Union[None, float, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class MultistepSpec:
    """One multi-step call, planned for a fused kernel (see the module docstring).

    Attributes:
        layout (Layout): the shapes.
        charge (Charge): the charge form.
        hard_reset (bool): hard reset to ``v_reset`` (``False``: the soft reset ``v = h - θ``).
        v_reset (float): the reset potential, ``vr`` in the charge (0 for the soft reset).
        detach_reset (bool): no gradient through the reset term.
        surrogate (SurrogateKind): the surrogate's kind.
        surrogate_param (float): its parameter.
    """

    layout: Layout
    charge: Charge
    hard_reset: bool
    v_reset: float
    detach_reset: bool
    surrogate: SurrogateKind
    surrogate_param: float

    def __post_init__(self):
        flag("hard_reset", self.hard_reset)
        flag("detach_reset", self.detach_reset)

    @classmethod
    def build(cls, x_seq: torch.Tensor, v0: Optional[torch.Tensor], *, surrogate: Surrogate, k: Param = None,
              v_reset: Optional[float] = 0.0, decay_input: bool = True, detach_reset: bool = False,
              levels: Optional[int] = None, what: str = "a fused kernel") -> "MultistepSpec":
        """Plan a call with :func:`snnedu.functional.neuron_multistep`'s arguments. ``levels`` (``K``)
        is inferred like the reference does when ``None``: ``v0.shape[0]`` when ``v0`` has one more
        dimension than a time step, else 1. A surrogate no kernel computes raises
        ``NotImplementedError`` naming it (and ``what``)."""
        code = fused_surrogate(surrogate)
        if code is None:
            names = ", ".join(c.__name__ for c in _SURROGATES)
            raise NotImplementedError(f"{what} has kernels for the surrogates {names}; got "
                                      f"{type(surrogate).__name__} (it runs on the reference path)")
        if x_seq.dim() < 2:
            raise ValueError(f"x_seq must be [T, B, ...], got shape {list(x_seq.shape)}")
        if x_seq.shape[0] == 0:
            raise ValueError("x_seq has no time steps (T = 0)")
        multi = v0 is not None and v0.dim() == x_seq.dim()
        K = int(levels) if levels is not None else (v0.shape[0] if multi else 1)
        if K < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        lay = Layout(x_seq.shape[0], K, x_seq.shape[1], tuple(x_seq.shape[2:]), multi=multi or K > 1)
        decay_input = flag("decay_input", decay_input)
        charge = Charge.IF if k is None else (Charge.DECAY_INPUT if decay_input else Charge.PLAIN_LEAK)
        return cls(lay, charge, v_reset is not None, 0.0 if v_reset is None else float(v_reset),
                   flag("detach_reset", detach_reset), code[0], code[1])

    @classmethod
    def of_operator(cls, x: torch.Tensor, v0: torch.Tensor, vr: float, charge: int, hard: bool, detach: bool,
                    sg_kind: int, sg_p: float) -> "MultistepSpec":
        """The plan back from an operator's plain arguments (``x`` ``[T, B, *S]``, ``v0`` ``[K, B, *S]``
        and the scalars; operator schemas take only plain values)."""
        lay = Layout(x.shape[0], v0.shape[0], x.shape[1], tuple(x.shape[2:]), multi=True)
        return cls(lay, Charge(charge), hard, vr, detach, SurrogateKind(sg_kind), sg_p)

    def operator_args(self) -> tuple:
        """The plan as an operator's plain arguments ``(vr, charge, hard, detach, sg_kind, sg_p)``."""
        return (self.v_reset, int(self.charge), self.hard_reset, self.detach_reset, int(self.surrogate),
                self.surrogate_param)

    # -- inputs ------------------------------------------------------------------------------------
    def initial_state(self, x_seq: torch.Tensor, v0: Optional[torch.Tensor]) -> torch.Tensor:
        """The initial potential as ``[K, B, *S]`` (rest, ``v_reset``, where ``v0`` is ``None``)."""
        lay = self.layout
        full = (lay.K, lay.B, *lay.S)
        if v0 is None:
            return x_seq.new_full(full, self.v_reset)
        try:
            return (v0 if lay.multi else v0.unsqueeze(0)).expand(full)
        except RuntimeError:
            raise ValueError(f"v0 of shape {list(v0.shape)} does not fit the state {list(lay.state_shape())} "
                             f"of x_seq {[lay.T, lay.B, *lay.S]}") from None

    def rows(self, p: Param, device, default: float = 0.0) -> torch.Tensor:
        """A parameter (``None`` -> ``default``, a float, or a tensor broadcastable to ``[K, 1, *S]``;
        ``[*S]`` when K = 1) as a contiguous float32 ``[K, N]`` tensor, detached. A parameter that varies
        over the batch raises ``NotImplementedError`` (the reference computes it)."""
        lay = self.layout
        t = torch.as_tensor(default if p is None else p, dtype=torch.float32, device=device).detach()
        target = (lay.K, 1, *lay.S)
        try:
            ok = torch.broadcast_shapes(t.shape, target) == target
        except RuntimeError:
            ok = False
        if not ok:
            raise NotImplementedError(f"a parameter of shape {list(t.shape)} does not fit one value per layer, "
                                      f"level or neuron of a state [K, B, *{list(lay.S)}] (K={lay.K}); parameters "
                                      "that vary over the batch need snnedu.functional.neuron_multistep")
        return torch.broadcast_to(t, target).reshape(lay.K, lay.N).contiguous()

    # -- outputs -----------------------------------------------------------------------------------
    def grad_to(self, g: torch.Tensor, shape, dtype) -> torch.Tensor:
        """A per-element parameter gradient ``[K, J]`` (already summed over time) summed to a parameter
        of ``shape`` and ``dtype``."""
        lay = self.layout
        return g.reshape(lay.K, lay.B, *lay.S).sum(1, keepdim=True).sum_to_size(shape).to(dtype)

    def results(self, spikes: torch.Tensor, v_last: torch.Tensor):
        """``(spikes [T, K, B, *S], v_last [K, B, *S])`` in the reference's shapes (no level axis when
        the call had none)."""
        return spikes.reshape(self.layout.spikes_shape()), v_last.reshape(self.layout.state_shape())


def shape_dtype(p) -> Optional[Tuple[torch.Size, torch.dtype]]:
    """What a backward pass needs to know of a parameter (``None`` for a float): its shape and dtype,
    without keeping a reference to the tensor itself."""
    return (p.shape, p.dtype) if isinstance(p, torch.Tensor) else None


def as_tensor(p) -> torch.Tensor:
    """A parameter for an operator: a tensor as it is (its gradient comes back in its shape), a float
    (or ``None``, the IF leak, unused) as a 0-d float32 tensor."""
    return p if isinstance(p, torch.Tensor) else torch.tensor(0.0 if p is None else float(p))
