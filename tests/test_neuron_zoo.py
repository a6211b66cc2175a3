"""MLF, PMLF, PMLF3 and learnable thresholds: equivalences, gradients, state, bad hyper-parameters."""

import pytest
import torch
import torch.nn as nn
from torch.func import functional_call

import snnedu
from snnedu import LIF, MLF, PLIF, PMLF, PMLF3, IF

from neuron_cases import family_factory, neuron_classes
from snnedu.functional import Rectangular


# -- MLF -----------------------------------------------------------------------------------------------
def test_mlf_k1_equals_stbp_lif_values_and_gradients():
    torch.manual_seed(0)
    x = (torch.randn(15, 6, 9) + 0.5).requires_grad_(True)
    s_mlf = MLF(K=1, v_threshold=0.6, a=1.0, decay=0.25)(x)
    g_mlf, = torch.autograd.grad((s_mlf * torch.arange(15.0).view(15, 1, 1)).sum(), x)
    s_lif = LIF.stbp(decay=0.25, v_threshold=0.6, surrogate=Rectangular(1.0))(x)
    g_lif, = torch.autograd.grad((s_lif * torch.arange(15.0).view(15, 1, 1)).sum(), x)
    assert s_mlf.sum() > 0
    assert torch.equal(s_mlf, s_lif)
    assert torch.equal(g_mlf, g_lif)


def test_mlf_hand_computed_levels():
    # thresholds 0.6, 1.6, 2.6, decay 0.25, constant input 2.0:
    # t0: u = (2, 2, 2) -> levels 1, 2 fire -> 2 ; t1: u = (2, 2, 2.5) -> 2 ; t2: u3 = 0.625 + 2 = 2.625 -> 3
    mlf = MLF(K=3, v_threshold=0.6, a=1.0, decay=0.25, record=True)
    out = mlf(torch.full((3, 1), 2.0))
    assert out.flatten().tolist() == [2.0, 2.0, 3.0]
    assert mlf.h_seq.shape == (3, 3, 1)  # [T, K, B]
    assert torch.allclose(mlf.h_seq[:, 2, 0], torch.tensor([2.0, 2.5, 2.625]))
    assert torch.allclose(mlf.thresholds(), torch.tensor([0.6, 1.6, 2.6]))


def test_mlf_is_the_sum_of_its_levels():
    torch.manual_seed(1)
    x = (torch.rand(12, 4, 7) * 4).requires_grad_(True)
    out = MLF(K=3, v_threshold=0.6, a=1.0, decay=0.25)(x)
    g, = torch.autograd.grad((out ** 2).sum(), x)
    x2 = x.detach().clone().requires_grad_(True)
    levels = [LIF.stbp(decay=0.25, v_threshold=0.6 + k, surrogate=Rectangular(1.0))(x2) for k in range(3)]
    ref = sum(levels)
    g_ref, = torch.autograd.grad((ref ** 2).sum(), x2)
    assert torch.equal(out, ref)
    assert torch.allclose(g, g_ref)
    assert set(out.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0} and out.max() == 3


def test_gradient_flows_through_every_level():
    # a potential of 2.5 lies only in the third level's window [2.1, 3.1)
    x = torch.full((1, 1, 1), 2.5, requires_grad=True)
    for K, expect_grad in ((1, False), (2, False), (3, True)):
        x.grad = None
        MLF(K=K)(x).sum().backward()
        assert (x.grad.abs().sum() > 0) == expect_grad, K
    # each level's window passes gradient: probe the centre of each window
    for k in range(3):
        xk = torch.full((1, 1, 1), 0.6 + k, requires_grad=True)
        MLF(K=3)(xk).sum().backward()
        assert xk.grad.item() == pytest.approx(1.0)  # height 1/a of exactly one window


# -- PMLF / PMLF3 --------------------------------------------------------------------------------------
def test_pmlf_with_decay_at_init_equals_mlf():
    torch.manual_seed(2)
    x = torch.rand(20, 5, 3, 4) * 3
    ref = MLF(K=3, decay=0.25)(x)
    pm = PMLF(K=3, decay_init=0.25)
    pm.decay_param.w.requires_grad_(False)  # "tau fixed"
    assert torch.allclose(pm.decay, torch.tensor(0.25))
    assert torch.equal(pm(x), ref)
    assert torch.equal(PMLF3(K=3, decay_init=0.25)(x), ref)


def test_pmlf3_with_equal_decays_equals_pmlf_and_gradients_sum():
    torch.manual_seed(3)
    x = torch.rand(10, 4, 6) * 3
    a, b = PMLF(decay_init=0.4), PMLF3(decay_init=0.4)
    out_a, out_b = a(x), b(x)
    assert torch.equal(out_a, out_b)
    w = torch.linspace(0.1, 1.0, 10).view(10, 1, 1)
    (out_a * w).sum().backward()
    (out_b * w).sum().backward()
    assert b.decay_param.w.shape == (3,)
    assert torch.allclose(a.decay_param.w.grad, b.decay_param.w.grad.sum(), rtol=1e-5, atol=1e-6)
    assert (b.decay_param.w.grad != 0).all()  # every level's decay gets its own gradient


def test_pmlf_decay_learns_and_stays_in_range():
    torch.manual_seed(4)
    unit = PMLF3(decay_init=0.25)
    opt = torch.optim.SGD(unit.parameters(), lr=50.0)
    x = 0.5 + torch.rand(8, 16, 10) * 2.0  # potentials reach every level's window
    before = unit.decay.detach().clone()
    for _ in range(5):
        opt.zero_grad()
        unit(x).mean().neg().backward()  # more spikes -> longer memory helps -> decay grows
        opt.step()
    after = unit.decay.detach()
    assert (after > before).all()
    assert ((after > 0) & (after < 1)).all()


# -- learnable thresholds ------------------------------------------------------------------------------
# every exported neuron class (tests/neuron_cases.py), and LIF's STBP form and PLIF per neuron
FAMILIES = {
    **{name: family_factory(name) for name in neuron_classes()},
    "STBP": lambda **kw: LIF.stbp(decay=0.5, surrogate="atan", **kw),
    "PLIF-neuron": lambda **kw: PLIF(tau_init=2.0, per_neuron=True, **kw),
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["layer", "neuron"])
def test_every_family_learns_its_threshold(family, mode):
    torch.manual_seed(5)
    neuron = FAMILIES[family](learn_threshold=mode)
    x = torch.rand(6, 4, 3, 5) * 2.5
    s = neuron(x)
    th = neuron.threshold_param
    assert th.w.shape == ((3, 5) if mode == "neuron" else ())
    (s * torch.rand_like(s)).sum().backward()
    assert th.w.grad is not None and th.w.grad.abs().sum() > 0
    # fixed thresholds at the same value give the same spikes
    fixed = FAMILIES[family]()
    assert torch.equal(fixed(x), s.detach())


def test_threshold_gradient_is_minus_the_surrogate():
    # one step, so no reset path: dL/dtheta = -sum g'(H - theta) dL/dS
    neuron = LIF.stbp(decay=0.5, v_threshold=1.0, surrogate="atan", learn_threshold="neuron")
    x = torch.randn(1, 7, 4) + 1.0
    s = neuron(x)
    s.sum().backward()
    expect = -snnedu.ATan().grad(x[0] - 1.0).sum(0)
    assert torch.allclose(neuron.threshold_param.w.grad, expect)


def test_threshold_is_kept_positive_and_can_recover():
    neuron = LIF.stbp(decay=0.5, v_threshold=0.5, learn_threshold=True, min_threshold=0.05)
    with torch.no_grad():
        neuron.threshold_param.w.fill_(-1.0)  # e.g. pushed down by weight decay
    assert neuron.threshold_param.value().item() == pytest.approx(0.05)
    x = torch.full((1, 3, 2), 0.049)  # just below the floor: would fire for any threshold <= 0.049
    assert neuron(x).sum() == 0
    neuron(torch.full((1, 3, 2), 0.06)).sum().backward()
    assert neuron.threshold_param.w.grad.item() < 0  # straight-through: a gradient still arrives


def test_threshold_noise_and_state_dict_round_trip_of_lazy_thresholds():
    torch.manual_seed(6)
    a = MLF(learn_threshold="neuron", threshold_noise=1e-2)
    x = torch.rand(4, 3, 8, 5) * 3
    a(x)
    w = a.threshold_param.w.detach()
    assert w.shape == (8, 5) and 0.003 < float(w.std()) < 0.03 and abs(float(w.mean()) - 0.6) < 0.01
    assert a.thresholds().shape == (3, 8, 5)
    assert torch.allclose(a.thresholds()[2] - a.thresholds()[0], torch.full((8, 5), 2.0))
    b = MLF(learn_threshold="neuron", threshold_noise=1e-2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b(x), a(x))
    with pytest.raises(snnedu.InputError, match="one threshold per neuron"):
        a(torch.rand(4, 3, 8, 6))


class _Trajectory(nn.Module):
    """Potential before reset at every step, through the neuron's own functional path (not detached)."""

    def __init__(self, neuron):
        super().__init__()
        self.neuron = neuron

    def forward(self, x):
        n = self.neuron
        _, _, (h, _) = snnedu.functional.neuron_multistep(x, n._rest(x[0]), record=True,
                                                          **n._params(x.dim() - 2, x))
        return h


@pytest.mark.parametrize("make", [
    lambda: PLIF(tau_init=2.0, per_neuron=True, shape=(3,), tau_std=0.2, detach_reset=True,
                 learn_threshold="neuron", v_threshold=0.8),
    lambda: PMLF(decay_init=0.3, detach_reset=True, learn_threshold=True),
    lambda: PMLF3(decay_init=0.3, detach_reset=True, learn_threshold="neuron"),
    lambda: LIF(tau=2.0, v_reset=None, detach_reset=True, learn_threshold="neuron"),
], ids=["PLIF-neuron", "PMLF", "PMLF3", "LIF-soft"])
def test_gradcheck_of_potential_trajectory_wrt_every_learnable_parameter(make):
    # With detach_reset the potential is a smooth function of the input, the decays and the
    # thresholds between threshold crossings, so finite differences must match autograd.
    torch.manual_seed(7)
    neuron = make().double()
    x = (torch.rand(5, 2, 3, dtype=torch.float64) * 2).requires_grad_(True)
    assert neuron(x).sum() > 0  # the neuron fires, so resets are part of the trajectory
    traj = _Trajectory(neuron)
    names = [n for n, _ in traj.named_parameters()]
    assert any("threshold" in n for n in names)
    vals = [p.detach().clone().requires_grad_(True) for _, p in traj.named_parameters()]

    def run(x_, *v):
        return functional_call(traj, dict(zip(names, v)), (x_,))

    assert torch.autograd.gradcheck(run, (x, *vals), eps=1e-7, atol=1e-5)


# -- state (multi-step == single-step for the zoo is checked with the other families in test_neurons.py)
def test_mlf_step_state_and_reset():
    mlf = MLF(K=3)
    mlf.step(torch.rand(4, 5))
    assert mlf.v.shape == (3, 4, 5)  # one potential per level
    with pytest.raises(snnedu.StateError, match="snnedu.reset"):
        mlf.step(torch.rand(2, 5))
    snnedu.reset(mlf)
    assert mlf.v is None
    x = torch.rand(6, 2, 5) * 3
    assert torch.equal(mlf(x), mlf(x))


@pytest.mark.parametrize("make", [lambda: MLF(K=2, learn_threshold=True), lambda: PMLF3(), lambda: PMLF()])
def test_zoo_state_dict_round_trip(make):
    a, b = make(), make()
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.1)
    b.load_state_dict(a.state_dict())
    x = torch.rand(5, 2, 4) * 3
    assert torch.equal(a(x), b(x))


# -- bad hyper-parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: MLF(K=0), "K \\(number of levels\\) must be an integer >= 1"),
    (lambda: MLF(K=2.5), "K \\(number of levels\\)"),
    (lambda: MLF(a=0.0), "a \\(surrogate width"),
    (lambda: MLF(v_threshold=-0.6), "v_threshold must be finite and in \\(0.0, inf\\]"),
    (lambda: MLF(decay=0.0), "decay must be finite and in \\(0.0, 1.0\\]"),
    (lambda: PMLF(decay_init=1.0), "decay_init must be finite and in \\(0.0, 1.0\\)"),
    (lambda: PMLF3(K=0), "K \\(number of levels\\)"),
    (lambda: PLIF(per_neuron=True, tau_std=-0.5), "tau_std must be finite and in \\[0.0, inf\\]"),
    (lambda: snnedu.TauVarianceRegularizer(lam=-0.01), "lam \\(tau regulariser weight\\)"),
    (lambda: LIF(learn_threshold="channel"), "learn_threshold must be False, True/'layer' or 'neuron'"),
    (lambda: LIF(learn_threshold=True, v_threshold=0.0), "v_threshold must be finite and in \\(0.0"),
    (lambda: LIF(learn_threshold=True, min_threshold=0.0), "min_threshold"),
    (lambda: LIF(learn_threshold=True, v_threshold=0.01, min_threshold=0.1), "above min_threshold"),
    (lambda: LIF(learn_threshold=True, threshold_noise=-1.0), "threshold_noise"),
    (lambda: LIF(learn_threshold=True, threshold_noise=0.1), "needs per-neuron thresholds"),
    (lambda: LIF(threshold_noise=0.1), "needs learn_threshold='neuron'"),
])
def test_bad_zoo_hyper_parameters_are_rejected(make, match):
    with pytest.raises(snnedu.HyperParameterError, match=match):
        make()


# -- STL learning modes and joint decision ---------------------------------------------------------------
def _stl_net():
    torch.manual_seed(9)
    net = nn.Sequential(snnedu.DirectEncoder(3), snnedu.SpikingMLP(
        input_shape=(6,), hidden=(8,), n_classes=3,
        neuron=lambda: LIF.stbp(decay=0.5, v_threshold=0.5, surrogate="atan", learn_threshold="neuron")))
    net(torch.rand(2, 6))
    return net


def test_learning_modes_freeze_the_right_parameters_and_training_respects_them():
    x, y = torch.rand(16, 6), torch.randint(0, 3, (16,))
    for mode, syn_moves, th_moves in (("SL", True, False), ("thresholds", False, True), ("STL", True, True)):
        net = _stl_net()
        info = snnedu.set_learning_mode(net, mode)
        assert (info["synapses"] > 0) == syn_moves and (info["thresholds"] == 8) == th_moves
        th = list(snnedu.threshold_parameters(net))
        syn = list(snnedu.synapse_parameters(net))
        assert len(th) == 1 and len(syn) == 4
        before = [p.detach().clone() for p in net.parameters()]
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=0.05)
        for _ in range(3):
            opt.zero_grad()
            snnedu.rate_cross_entropy(net(x), y).backward()
            opt.step()
        moved = {id(p): not torch.equal(p.detach(), b) for p, b in zip(net.parameters(), before)}
        assert moved[id(th[0])] == th_moves, mode
        assert any(moved[id(p)] for p in syn) == syn_moves, mode


def test_learning_mode_errors():
    with pytest.raises(snnedu.HyperParameterError, match="unknown learning mode 'weights'"):
        snnedu.set_learning_mode(_stl_net(), "weights")
    plain = snnedu.SpikingMLP(input_shape=(6,), hidden=(8,), n_classes=3)
    with pytest.raises(snnedu.HyperParameterError, match="has none"):
        snnedu.set_learning_mode(plain, "TL")
    lazy = snnedu.SpikingMLP(input_shape=(6,), hidden=(8,), n_classes=3,
                             neuron=lambda: LIF(learn_threshold="neuron"))
    with pytest.raises(snnedu.HyperParameterError, match="forward pass"):
        snnedu.set_learning_mode(lazy, "STL")


def test_joint_decision_soft_votes():
    a = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]]])            # [T=1, B=2, C=3]
    b = torch.tensor([[0.0, 0.1, 0.0], [0.0, 0.0, 5.0]])               # [B, C]
    assert snnedu.joint_decision([a]).tolist() == [0, 1]
    assert snnedu.joint_decision([a, b]).tolist() == [0, 2]
    assert snnedu.joint_decision([a, b], weights=[1.0, 0.0]).tolist() == [0, 1]
    with pytest.raises(snnedu.InputError, match="same \\[B, C\\]"):
        snnedu.joint_decision([a, torch.zeros(3, 3)])
    with pytest.raises(snnedu.HyperParameterError, match="weights"):
        snnedu.joint_decision([a, b], weights=[1.0, -1.0])
