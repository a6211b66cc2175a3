import copy

import pytest
import torch
import torch.nn as nn

import snnedu
from snnedu import IF, LIF, PLIF

from neuron_cases import CASES, neuron_classes

# every exported neuron family in several settings (tests/neuron_cases.py), plus shapes that matter here
CONFIGS = {
    **CASES,
    "PLIF-neuron-shaped": lambda: PLIF(tau_init=2.0, per_neuron=True, shape=(3, 4), tau_std=0.2, detach_reset=True),
    "LIF-no-decay-input-vr": lambda: LIF(tau=4.0, decay_input=False, v_reset=-0.2, surrogate="sigmoid"),
}


def test_every_exported_neuron_class_is_covered():
    """The family-wide property tests read tests/neuron_cases.py, which derives its list from the package:
    every exported neuron class is in it, in each generic setting, and has the CPU fast path that the
    fast-path property test runs."""
    classes = neuron_classes()
    assert {"IF", "LIF", "PLIF", "MLF", "PMLF", "PMLF3", "ALIF"} <= set(classes)
    x = torch.rand(3, 2, 4)
    for name, cls in classes.items():
        assert name in CASES and f"{name}-soft-sigmoid" in CASES, name
        assert snnedu.kernels.chosen_backend(x, cls().surrogate, family=cls.family) == "cpu", name


@pytest.mark.parametrize("name", CONFIGS)
def test_multistep_equals_single_step_values_and_gradients(name):
    torch.manual_seed(1)
    a = CONFIGS[name]()
    x = (torch.randn(12, 5, 3, 4) * 1.5 + 0.6).requires_grad_(True)
    s_multi = a(x)
    (s_multi * torch.linspace(0.1, 1.0, 12).view(12, 1, 1, 1)).sum().backward()
    g_multi = x.grad.clone()
    p_multi = [p.grad.clone() for p in a.parameters()]

    b = copy.deepcopy(a)
    for p in b.parameters():
        p.grad = None
    x.grad = None
    snnedu.reset(b)
    s_single = torch.stack([b.step(x[t]) for t in range(x.shape[0])])
    (s_single * torch.linspace(0.1, 1.0, 12).view(12, 1, 1, 1)).sum().backward()
    assert torch.equal(s_multi, s_single)
    assert s_multi.sum() > 0  # the test input does make the neurons fire
    # the multi-step path may run a fused kernel (snnedu.kernels) whose backward rounds differently
    torch.testing.assert_close(g_multi, x.grad, rtol=1e-5, atol=1e-6)
    # parameter gradients are sums over steps accumulated in a different order: equal up to rounding
    for pm, ps in zip(p_multi, [p.grad for p in b.parameters()]):
        assert torch.allclose(pm, ps, rtol=1e-6, atol=1e-7)


def test_if_hand_computed():
    s = IF(v_threshold=1.0)(torch.full((4, 1, 1), 0.5))
    assert s.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    # soft reset keeps the overshoot: 0.7, 1.4 -> fire, 0.4+0.7 = 1.1 -> fire, 0.1+0.7 = 0.8
    s = IF(v_reset=None)(torch.full((4, 1), 0.7))
    assert s.flatten().tolist() == [0.0, 1.0, 1.0, 0.0]


def test_lif_form_a_hand_computed():
    lif = LIF(tau=2.0, record=True)
    s = lif(torch.full((3, 1), 1.5))
    # H1 = 0 + 0.5*(1.5 - 0) = 0.75 ; H2 = 0.75 + 0.5*(1.5 - 0.75) = 1.125 -> spike, reset 0 ; H3 = 0.75
    assert s.flatten().tolist() == [0.0, 1.0, 0.0]
    assert torch.allclose(lif.h_seq.flatten(), torch.tensor([0.75, 1.125, 0.75]))
    assert torch.allclose(lif.v_seq.flatten(), torch.tensor([0.75, 0.0, 0.75]))


def test_stbp_form_b_equals_iterative_equation():
    torch.manual_seed(3)
    x = torch.randn(20, 8, 6)
    lam, vth = 0.25, 0.5
    u = torch.zeros(8, 6)
    o = torch.zeros(8, 6)
    ref = []
    for t in range(20):
        u = lam * u * (1 - o) + x[t]
        o = (u >= vth).float()
        ref.append(o)
    assert torch.equal(LIF.stbp(decay=lam, v_threshold=vth)(x), torch.stack(ref))


def test_form_a_and_form_b_coincide_under_the_mapping():
    # Form A with tau, v_reset = 0 equals Form B with decay = 1 - 1/tau on input X / tau
    torch.manual_seed(4)
    x = torch.rand(30, 4, 10) * 3
    a = LIF(tau=4.0, decay_input=True, v_threshold=0.7)(x)
    b = LIF(tau=4.0, decay_input=False, v_threshold=0.7)(x / 4.0)
    assert torch.equal(a, b)


def test_plif_with_fixed_w_equals_lif():
    x = torch.randn(10, 3, 7) * 2
    plif = PLIF(tau_init=3.0)
    assert torch.allclose(plif.tau, torch.tensor(3.0))
    assert torch.equal(plif(x), LIF(tau=plif.tau.item())(x))


def test_per_neuron_plif_with_equal_w_equals_per_layer():
    torch.manual_seed(5)
    x = torch.randn(9, 4, 2, 3) * 2
    layer = PLIF(tau_init=2.0)
    neuron = PLIF(tau_init=2.0, per_neuron=True, shape=(2, 3))
    assert neuron.decay_param.w.shape == (2, 3)
    out_l, out_n = layer(x), neuron(x)
    assert torch.equal(out_l, out_n)
    (out_l * torch.arange(9.0).view(9, 1, 1, 1)).sum().backward()
    (out_n * torch.arange(9.0).view(9, 1, 1, 1)).sum().backward()
    # per-layer gradient is the sum of the per-neuron gradients
    assert torch.allclose(layer.decay_param.w.grad, neuron.decay_param.w.grad.sum(), rtol=1e-5, atol=1e-6)
    assert neuron.decay_param.w.grad.abs().sum() > 0


def test_per_neuron_init_is_shifted_lognormal_with_requested_moments():
    torch.manual_seed(6)
    p = PLIF(tau_init=2.0, per_neuron=True, shape=(200, 100), tau_std=0.3)
    tau = p.tau.detach()
    assert (tau > 1).all()
    assert tau.mean().item() == pytest.approx(2.0, abs=0.01)
    assert tau.std().item() == pytest.approx(0.3, abs=0.01)
    constant = PLIF(tau_init=4.0, per_neuron=True, shape=(5,))
    assert torch.allclose(constant.tau, torch.full((5,), 4.0))


def test_lazy_per_neuron_shape_and_state_dict_round_trip():
    p = PLIF(per_neuron=True, tau_std=0.1)
    assert not p.decay_param.is_materialized
    p(torch.randn(3, 2, 4, 5))
    assert p.decay_param.w.shape == (4, 5)
    with pytest.raises(snnedu.InputError, match="one time constant per neuron"):
        p(torch.randn(3, 2, 4, 6))
    q = PLIF(per_neuron=True, tau_std=0.1)
    q.load_state_dict(p.state_dict())
    assert torch.equal(q.tau, p.tau)
    x = torch.randn(5, 2, 4, 5)
    assert torch.equal(q(x), p(x))


def test_plif_tau_learns():
    torch.manual_seed(7)
    p = PLIF(tau_init=2.0)
    opt = torch.optim.SGD(p.parameters(), lr=1.0)
    x = torch.rand(8, 16, 10)
    before = p.tau.item()
    for _ in range(3):
        opt.zero_grad()
        p(x).mean().neg().backward()  # maximise firing -> the leak should shrink (tau grows)
        opt.step()
    assert p.tau.item() != before


def test_detach_reset_changes_the_gradient_only():
    torch.manual_seed(8)
    x = (torch.rand(10, 4, 6) * 2).requires_grad_(True)
    grads = []
    outs = []
    for detach in (False, True):
        x.grad = None
        s = LIF(tau=2.0, detach_reset=detach)(x)
        s.sum().backward()
        outs.append(s)
        grads.append(x.grad.clone())
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(grads[0], grads[1])


def test_multistep_resets_state_automatically_and_step_keeps_it():
    lif = LIF(tau=2.0)
    x = torch.rand(6, 3, 5) * 2
    assert torch.equal(lif(x), lif(x))
    assert lif.v is None  # no state (and no autograd graph) kept after a multi-step call
    lif.step(x[0])
    v1 = lif.v.clone()
    lif.step(x[1])
    assert not torch.equal(lif.v, v1)
    net = nn.Sequential(nn.Identity(), lif)
    snnedu.reset(net)
    assert lif.v is None


def test_step_with_new_batch_size_without_reset_is_a_clear_error():
    lif = LIF()
    lif.step(torch.rand(4, 3))
    with pytest.raises(snnedu.StateError, match="snnedu.reset"):
        lif.step(torch.rand(5, 3))


def test_two_models_do_not_share_state():
    a, b = LIF(), LIF()
    xa, xb = torch.rand(4, 3) * 3, torch.rand(4, 3) * 3
    ref = LIF()
    ra1 = ref.step(xa)
    a.step(xa)
    b.step(xb)
    b.step(xb)
    assert torch.equal(a.step(xa), ref.step(xa))
    assert ra1.shape == (4, 3)


def test_no_state_leaks_between_batches_in_a_network():
    torch.manual_seed(9)
    net = nn.Sequential(snnedu.DirectEncoder(5), snnedu.SpikingMLP(input_shape=(8,), hidden=(16,), n_classes=3))
    x1, x2 = torch.rand(4, 8), torch.rand(4, 8)
    out2_fresh = net(x2)
    net(x1)
    assert torch.equal(net(x2), out2_fresh)


@pytest.mark.parametrize("make, match", [
    (lambda: LIF(tau=0.5), "tau must be finite and in \\[1.0, inf\\]"),
    (lambda: LIF(tau=float("nan")), "tau"),
    (lambda: LIF.stbp(decay=0.0), "decay must be finite and in \\(0.0, 1.0\\]"),
    (lambda: LIF.stbp(decay=1.5), "decay"),
    (lambda: PLIF(tau_init=1.0), "tau_init must be finite and in \\(1.0, inf\\]"),
    (lambda: PLIF(per_neuron=True, tau_std=-0.1), "tau_std"),
    (lambda: PLIF(tau_std=0.1), "per-neuron"),
    (lambda: LIF(v_threshold=0.0), "v_threshold must be finite and in \\(0.0, inf\\]"),
    (lambda: IF(v_threshold=-1.0), "v_threshold"),
    (lambda: IF(v_reset=2.0), "v_reset .* must be below v_threshold"),
    (lambda: LIF(surrogate="nope"), "unknown surrogate 'nope'"),
    (lambda: LIF(tau="2"), "tau must be a real number"),
])
def test_impossible_hyper_parameters_are_rejected_at_construction(make, match):
    with pytest.raises(snnedu.HyperParameterError, match=match):
        make()


@pytest.mark.parametrize("x, match", [
    (torch.rand(5), "\\[T, B, ...\\].*got shape \\[5\\]"),
    (torch.tensor(1.0), "at least 2 dims"),
    (torch.full((3, 2, 4), float("nan")), "non-finite input: 24 NaN"),
    (torch.tensor([[1.0, float("inf")]]), "0 NaN and 1 inf"),
    (torch.ones(3, 2, dtype=torch.long), "floating-point"),
    (torch.ones(0, 2, 3), "T = 0"),
    ([1.0, 2.0], "torch.Tensor"),
])
def test_bad_input_is_a_clear_error(x, match):
    with pytest.raises(snnedu.InputError, match=match):
        LIF()(x)


def test_nan_in_single_step_is_an_error_and_checks_can_be_disabled():
    with pytest.raises(snnedu.InputError, match="NaN"):
        IF().step(torch.tensor([float("nan")]))
    snnedu.set_input_checks(False)
    try:
        IF()(torch.full((2, 1), float("nan")))  # no scan: no error
    finally:
        snnedu.set_input_checks(True)


def test_state_dict_round_trip_and_repr():
    p = PLIF(tau_init=3.0)
    with torch.no_grad():
        p.decay_param.w.fill_(0.3)
    q = PLIF()
    q.load_state_dict(p.state_dict())
    assert torch.equal(q.tau, p.tau)
    assert "tau=2" in repr(LIF())
    assert "surrogate=Rectangular(a=1.0)" in repr(LIF.stbp())
