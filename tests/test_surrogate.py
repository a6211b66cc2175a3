import math

import pytest
import torch

import snnedu
from snnedu.functional import heaviside
from snnedu.functional.surrogate import ATan, Rectangular, Sigmoid, Triangle, get_surrogate

ALL = [Rectangular(1.0), Rectangular(0.5), Sigmoid(4.0), ATan(2.0), ATan(0.7), Triangle(1.0), Triangle(0.3)]


class _Primitive(torch.autograd.Function):
    """forward = smooth primitive g, backward = the analytic g' the surrogate uses."""

    @staticmethod
    def forward(ctx, x, sg):
        ctx.save_for_backward(x)
        ctx.sg = sg
        return sg.primitive(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.sg.grad(x), None


def _points(sg):
    # avoid the kinks of the piecewise surrogates, where finite differences are ill-defined
    x = torch.linspace(-2.3, 2.3, 47, dtype=torch.float64)
    if isinstance(sg, Rectangular):
        x = x[(x.abs() - sg.a / 2).abs() > 1e-3]
    if isinstance(sg, Triangle):
        x = x[((x.abs() - sg.gamma).abs() > 1e-3) & (x.abs() > 1e-3)]
    return x.requires_grad_(True)


@pytest.mark.parametrize("sg", ALL, ids=repr)
def test_gradcheck_analytic_derivative_matches_primitive(sg):
    assert torch.autograd.gradcheck(lambda x: _Primitive.apply(x, sg), (_points(sg),), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("sg", ALL, ids=repr)
def test_spike_forward_is_heaviside_and_backward_is_surrogate(sg):
    x = torch.linspace(-2, 2, 101, dtype=torch.float64).requires_grad_(True)
    s = sg(x)
    assert torch.equal(s, (x >= 0).double())
    (g,) = torch.autograd.grad(s.sum(), x)
    assert torch.allclose(g, sg.grad(x.detach()))


@pytest.mark.parametrize("sg", ALL, ids=repr)
def test_derivative_integrates_to_one_and_primitive_is_a_step(sg):
    x = torch.linspace(-400, 400, 4_000_001, dtype=torch.float64)
    integral = torch.trapezoid(sg.grad(x), x).item()
    # ATan has heavy tails: 1 - (2/pi) * atan(pi*alpha*400/2) of the mass lies beyond +-400
    # the rectangle's edges cost up to one grid step (2e-4 / a) in the trapezoid rule
    tol = 5e-3 if isinstance(sg, ATan) else 1e-3
    assert abs(integral - 1.0) < tol
    assert sg.primitive(torch.tensor(-50.0)).item() < 0.01
    assert sg.primitive(torch.tensor(50.0)).item() > 0.99


def test_threshold_convention_fires_at_equality():
    assert heaviside(torch.tensor([0.0])).item() == 1.0
    assert heaviside(torch.tensor([-1e-7])).item() == 0.0


def test_known_values():
    assert ATan(2.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)
    assert ATan(2.0).grad(torch.tensor(1.0)).item() == pytest.approx(1 / (1 + math.pi ** 2))
    assert Sigmoid(4.0).grad(torch.tensor(0.0)).item() == pytest.approx(1.0)
    assert Rectangular(1.0).grad(torch.tensor([0.49, 0.51])).tolist() == [1.0, 0.0]
    assert Triangle(1.0).grad(torch.tensor([0.0, 0.5, 1.5])).tolist() == [1.0, 0.5, 0.0]


def test_get_surrogate_by_name_and_errors():
    assert get_surrogate("atan") == ATan(2.0)
    assert get_surrogate("rect", a=0.5) == Rectangular(0.5)
    inst = Sigmoid(3.0)
    assert get_surrogate(inst) is inst
    with pytest.raises(snnedu.HyperParameterError, match="unknown surrogate 'relu'.*allowed"):
        get_surrogate("relu")
    with pytest.raises(snnedu.HyperParameterError, match="alpha"):
        ATan(alpha=0.0)
    with pytest.raises(snnedu.HyperParameterError, match="a \\(rectangular"):
        Rectangular(a=-1)
    with pytest.raises(snnedu.HyperParameterError):
        Triangle(gamma=float("nan"))
