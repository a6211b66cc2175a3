r"""Surrogate gradients: a Heaviside step forward, a smooth derivative backward.

A spiking neuron fires when its membrane potential crosses the threshold,
:math:`S = \Theta(x)` with :math:`x = H - V_{th}` and :math:`\Theta(x) = 1` if :math:`x \ge 0`
(the SpikingJelly convention, Fang et al. 2023). :math:`\Theta` has zero derivative almost everywhere, so
backpropagation through it learns nothing. A *surrogate* keeps the exact step in the forward pass and
uses the derivative :math:`g'(x)` of a smooth primitive :math:`g \approx \Theta` in the backward pass.

=============  ==========================================================  ==================
name           :math:`g'(x)`                                               default
=============  ==========================================================  ==================
``rect``       :math:`\frac{1}{a}\,\mathbb{1}[|x| < a/2]`  (STBP, MLF)      ``a = 1.0``
``sigmoid``    :math:`\alpha\,s(1-s),\; s = \sigma(\alpha x)`               ``alpha = 4.0``
``atan``       :math:`\frac{\alpha/2}{1 + (\pi \alpha x / 2)^2}` (PLIF)     ``alpha = 2.0``
``triangle``   :math:`\frac{1}{\gamma^2}\max(0, \gamma - |x|)` (TET)        ``gamma = 1.0``
=============  ==========================================================  ==================

Every :math:`g'` integrates to 1 over the real line, so each is the derivative of a smooth step
``primitive`` going from 0 to 1.

Example::

    >>> sg = ATan(alpha=2.0)
    >>> x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    >>> sg(x)                       # tensor([0., 1., 1.])  exact spikes
    >>> sg(x).sum().backward(); x.grad   # = sg.grad(x), the ATan bump
"""
from __future__ import annotations

import math

import torch

from .._checks import real, short_repr
from ..errors import HyperParameterError

__all__ = ["Surrogate", "Rectangular", "Sigmoid", "ATan", "Triangle", "SmoothSpike", "get_surrogate",
           "heaviside", "SURROGATES"]


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """The spike non-linearity without any gradient: ``1.0 where x >= 0 else 0.0`` (same dtype)."""
    return (x >= 0).to(x.dtype)


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward; ``grad_out * surrogate.grad(x)`` backward."""

    @staticmethod
    def forward(ctx, x, surrogate):
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class. Subclasses define :meth:`grad` (:math:`g'`) and :meth:`primitive` (:math:`g`).

    Calling the object on ``x = H - V_th`` (any shape) returns spikes of the same shape and dtype;
    in backward the incoming gradient is multiplied by ``grad(x)``. The base class takes no
    constructor arguments; each subclass takes its own shape parameter.
    """

    name = "surrogate"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SpikeFunction.apply(x, self)

    def grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def primitive(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self._params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._params() == other._params()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self._params().items())))


class Rectangular(Surrogate):
    r"""Rectangular window of width ``a`` and height ``1/a`` (STBP; MLF uses ``a = 1``).

    :math:`g'(x) = \frac{1}{a}\mathbb{1}[|x| < a/2]`, primitive :math:`\mathrm{clip}(x/a + 1/2, 0, 1)`.

    Args:
        a (float): width of the window around the threshold, ``a > 0`` (default 1.0); the height
            ``1/a`` keeps the area at 1.
    """

    name = "rect"

    def __init__(self, a: float = 1.0):
        self.a = real("a (rectangular surrogate width)", a, low=0, low_open=True)

    def _params(self):
        return {"a": self.a}

    def grad(self, x):
        return (x.abs() < self.a / 2).to(x.dtype) / self.a

    def primitive(self, x):
        return (x / self.a + 0.5).clamp(0.0, 1.0)


class Sigmoid(Surrogate):
    r"""Logistic surrogate: :math:`g(x) = \sigma(\alpha x)`, :math:`g'(x) = \alpha\, g (1 - g)`.

    Args:
        alpha (float): steepness, ``alpha > 0`` (default 4.0, SpikingJelly's); the peak of
            :math:`g'` is ``alpha / 4``.
    """

    name = "sigmoid"

    def __init__(self, alpha: float = 4.0):
        self.alpha = real("alpha (sigmoid surrogate steepness)", alpha, low=0, low_open=True)

    def _params(self):
        return {"alpha": self.alpha}

    def grad(self, x):
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1 - s)

    def primitive(self, x):
        return torch.sigmoid(self.alpha * x)


class ATan(Surrogate):
    r"""Arc-tangent surrogate (PLIF paper, STL-SNN).

    .. math::

        g(x) = \frac{1}{\pi}\arctan\Big(\frac{\pi}{2}\alpha x\Big) + \frac12, \qquad
        g'(x) = \frac{\alpha/2}{1 + (\pi\alpha x/2)^2}

    ``alpha = 2`` gives :math:`g'(x) = 1/(1 + (\pi x)^2)`.

    Args:
        alpha (float): steepness, ``alpha > 0`` (default 2.0, the PLIF and STL setting); the peak
            of :math:`g'` is ``alpha / 2``.
    """

    name = "atan"

    def __init__(self, alpha: float = 2.0):
        self.alpha = real("alpha (atan surrogate steepness)", alpha, low=0, low_open=True)

    def _params(self):
        return {"alpha": self.alpha}

    def grad(self, x):
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * x) ** 2)

    def primitive(self, x):
        return torch.atan(math.pi / 2 * self.alpha * x) / math.pi + 0.5


class Triangle(Surrogate):
    r"""Triangular surrogate (TET code): :math:`g'(x) = \frac{1}{\gamma^2}\max(0, \gamma - |x|)`.

    Args:
        gamma (float): half-width of the triangle, ``gamma > 0`` (default 1.0, the TET setting);
            the peak of :math:`g'` is ``1 / gamma``.
    """

    name = "triangle"

    def __init__(self, gamma: float = 1.0):
        self.gamma = real("gamma (triangle surrogate half-width)", gamma, low=0, low_open=True)

    def _params(self):
        return {"gamma": self.gamma}

    def grad(self, x):
        return (self.gamma - x.abs()).clamp(min=0) / self.gamma ** 2

    def primitive(self, x):
        g = self.gamma
        xc = x.clamp(-g, g)
        left = (g + xc) ** 2 / (2 * g * g)
        right = 1 - (g - xc) ** 2 / (2 * g * g)
        return torch.where(xc < 0, left, right)


SURROGATES = {"rect": Rectangular, "rectangular": Rectangular, "sigmoid": Sigmoid,
              "atan": ATan, "triangle": Triangle}


class SmoothSpike(Surrogate):
    """A checking tool, not for training: "spikes" that are the smooth primitive :math:`g(x)` itself.

    With it, a neuron is a smooth function of its input and parameters, so its autograd gradient must
    equal finite differences (``torch.autograd.gradcheck``). That checks every path of a family's step
    (reset, extra state variables such as ALIF's adaptation) in float64, which the Heaviside forward
    of a real surrogate hides (chapter 10). Its derivative is :math:`g'`, the wrapped surrogate's.

    Args:
        base (Surrogate or str): the surrogate whose primitive is used (default ``'sigmoid'``).
    """

    name = "smooth"

    def __init__(self, base="sigmoid"):
        self.base = get_surrogate(base)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.base.primitive(x)

    def grad(self, x):
        return self.base.grad(x)

    def primitive(self, x):
        return self.base.primitive(x)

    def _params(self) -> dict:
        return {"base": self.base}


def get_surrogate(spec="atan", **kwargs) -> Surrogate:
    """Turn ``spec`` into a :class:`Surrogate`.

    ``spec`` is a Surrogate instance (returned as is), or one of the names ``'rect'``, ``'sigmoid'``,
    ``'atan'``, ``'triangle'`` (``kwargs`` go to its constructor, e.g. ``get_surrogate('rect', a=1.0)``).
    """
    if isinstance(spec, Surrogate):
        if kwargs:
            raise HyperParameterError("pass surrogate keyword arguments only together with a name")
        return spec
    if isinstance(spec, str) and spec.lower() in SURROGATES:
        return SURROGATES[spec.lower()](**kwargs)
    allowed = ", ".join(repr(k) for k in ("rect", "sigmoid", "atan", "triangle"))
    raise HyperParameterError(f"unknown surrogate {short_repr(spec)}; allowed: {allowed} "
                              "or a snnedu.Surrogate instance")
