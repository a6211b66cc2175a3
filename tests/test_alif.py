"""ALIF (snnedu.alif) and the neuron-family declaration it is built on (snnedu.family): the equations
against a hand-written loop, LIF as its beta = 0 case, exact gradients of its smooth twin, state,
the backend switch, bad hyper-parameters; and the delayed-recall task pieces (RowEncoder, LastSteps,
the config's encoding: rows)."""
import pytest
import torch

import snnedu
from snnedu import ALIF, LIF, FAMILIES, NeuronFamily, SmoothSpike, register_family, register_fast_path
from snnedu.alif import ALIF_FAMILY, alif_step
from snnedu.errors import HyperParameterError, InputError, StateError
from snnedu.family import CORE, fast_path
from snnedu.kernels import chosen_backend, use_backend


def _hand_loop(x, tau, tau_a, beta, v_th=1.0, v_reset=0.0, decay_input=True):
    """ALIF written out with Python floats, one neuron at a time (the equations of snnedu.alif)."""
    T, N = x.shape
    spikes, vs, as_ = torch.zeros(T, N), torch.zeros(T, N), torch.zeros(T, N)
    for n in range(N):
        v, a = (0.0 if v_reset is None else v_reset), 0.0
        for t in range(T):
            xt = float(x[t, n])
            vr = 0.0 if v_reset is None else v_reset
            h = v + (xt - (v - vr)) / tau if decay_input else v - (v - vr) / tau + xt
            theta = v_th + beta * a
            s = 1.0 if h >= theta else 0.0
            v = (h - theta * s) if v_reset is None else (v_reset if s else h)
            a = (1 - 1 / tau_a) * a + s
            spikes[t, n], vs[t, n], as_[t, n] = s, v, a
    return spikes, vs, as_


@pytest.mark.parametrize("decay_input,v_reset", [(True, 0.0), (False, 0.0), (True, None), (True, -0.2)])
def test_alif_matches_a_hand_written_loop(decay_input, v_reset):
    torch.manual_seed(0)
    x = (torch.rand(40, 1, 12) * 3).double()
    n = ALIF(tau=3.0, tau_a=10.0, beta=0.4, decay_input=decay_input, v_reset=v_reset, record=True).double()
    s = n(x)
    ref_s, ref_v, ref_a = _hand_loop(x[:, 0], 3.0, 10.0, 0.4, v_reset=v_reset, decay_input=decay_input)
    assert s.sum() > 20
    assert torch.equal(s[:, 0].float(), ref_s)
    torch.testing.assert_close(n.v_seq[:, 0].float(), ref_v, atol=1e-6, rtol=0)
    torch.testing.assert_close(n.a_seq[:, 0].float(), ref_a, atol=1e-6, rtol=0)


def test_adaptation_slows_firing_under_constant_drive():
    n = ALIF(tau=2.0, tau_a=50.0, beta=0.3)
    s = n(torch.full((60, 1, 1), 4.0)).flatten()
    lif = LIF(tau=2.0)(torch.full((60, 1, 1), 4.0)).flatten()
    assert s[:20].sum() > s[40:].sum() > 0          # fires less and less often
    assert lif[:20].sum() == lif[40:].sum()         # LIF's rate does not change
    assert s.sum() < lif.sum()


@pytest.mark.parametrize("decay_input,v_reset,detach", [(True, 0.0, False), (False, 0.0, True), (True, None, False)])
def test_beta_zero_is_lif_in_values_and_gradients(decay_input, v_reset, detach):
    torch.manual_seed(1)
    x = (torch.rand(20, 4, 30) * 2).requires_grad_(True)
    kw = dict(tau=2.5, decay_input=decay_input, v_reset=v_reset, detach_reset=detach)
    weight = torch.arange(20.).view(20, 1, 1)
    with use_backend("reference"):      # the declarations themselves: the same loop, the same numbers
        a = ALIF(beta=0.0, tau_a=7.0, **kw)(x)
        g_a, = torch.autograd.grad((a * weight).sum(), x)
        b = LIF(**kw)(x)
        g_b, = torch.autograd.grad((b * weight).sum(), x)
    assert a.sum() > 0 and torch.equal(a, b) and torch.equal(g_a, g_b)
    fast = ALIF(beta=0.0, tau_a=7.0, **kw)(x)                       # ALIF's CPU kernel against LIF's
    g_fast, = torch.autograd.grad((fast * weight).sum(), x)
    lif_fast = LIF(**kw)(x)
    g_lif, = torch.autograd.grad((lif_fast * weight).sum(), x)
    assert torch.equal(fast, a) and torch.equal(lif_fast, a)
    torch.testing.assert_close(g_fast, g_lif, atol=1e-5, rtol=1e-5)


def test_step_by_step_equals_multistep_and_reset_clears_both_state_variables():
    torch.manual_seed(2)
    x = torch.rand(25, 3, 8) * 2
    n = ALIF(tau=2.0, tau_a=20.0, beta=0.3)
    multi = n(x)
    stepped = torch.stack([n.step(x_t) for x_t in x])
    assert torch.equal(multi, stepped) and multi.sum() > 0
    assert n.v is not None and n.a is not None and float(n.a.max()) > 0
    snnedu.reset(n)
    assert n.v is None and n.a is None
    n.step(x[0])
    with pytest.raises(StateError, match="snnedu.reset"):
        n.step(torch.rand(5, 8))


def test_smooth_twin_gradcheck_covers_every_path_of_the_step():
    # With SmoothSpike the spike is sigmoid(4 (h - theta)): ALIF becomes a smooth function of the input,
    # so autograd through the reset, the adaptation and the threshold must equal finite differences.
    torch.manual_seed(3)
    n = ALIF(tau=2.0, tau_a=5.0, beta=0.5, surrogate=SmoothSpike("sigmoid")).double()
    x = (torch.rand(8, 2, 3, dtype=torch.float64) * 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: n(z), (x,), eps=1e-6, atol=1e-6)
    # the adaptation path matters: with beta = 0 the gradient is different
    g1, = torch.autograd.grad(n(x).sum(), x)
    n0 = ALIF(tau=2.0, tau_a=5.0, beta=0.0, surrogate=SmoothSpike("sigmoid")).double()
    g0, = torch.autograd.grad(n0(x).sum(), x)
    assert (g1 - g0).abs().max() > 1e-3


def test_smooth_spike_is_the_primitive_of_its_base():
    sg = SmoothSpike("atan")
    x = torch.linspace(-2, 2, 9)
    assert torch.equal(sg(x), snnedu.ATan().primitive(x))
    assert repr(sg) == "SmoothSpike(base=ATan(alpha=2.0))"


def test_backend_switch_runs_a_family_without_fast_path_on_the_reference():
    fam = register_family(NeuronFamily("test-no-fast-path", ("v", "a"), alif_step))

    class Slow(ALIF):
        family = fam

    x = torch.rand(4, 2, 3)
    sg = snnedu.get_surrogate("atan")
    assert fast_path(fam, "cpu") is None and fast_path(ALIF_FAMILY, "cpu") is not None
    assert chosen_backend(x, sg, family=fam) == "reference"
    assert chosen_backend(x, sg, family=ALIF_FAMILY) == "cpu"
    assert chosen_backend(x.double(), sg, family=ALIF_FAMILY) == "reference"   # float64 is honoured
    assert torch.equal(Slow(beta=0.3)(x * 4), ALIF(beta=0.3)(x * 4))
    with use_backend("cpu"):
        with pytest.raises(HyperParameterError, match="no 'cpu' fast path"):
            Slow()(x)


def test_registry_holds_the_families_and_refuses_clashes():
    assert FAMILIES["ALIF"] is ALIF_FAMILY and FAMILIES["core"] is CORE
    assert ALIF.family is ALIF_FAMILY and snnedu.LIF.family is CORE
    with pytest.raises(HyperParameterError, match="already registered"):
        register_family(NeuronFamily("ALIF", ("v", "a"), alif_step))
    with pytest.raises(HyperParameterError, match="first state variable"):
        NeuronFamily("bad", ("a", "v"), alif_step)
    with pytest.raises(HyperParameterError, match="distinct"):
        NeuronFamily("bad", ("v", "v"), alif_step)
    with pytest.raises(HyperParameterError, match="'cpu' or 'triton'"):
        register_fast_path(ALIF_FAMILY, "gpu", lambda *a, **k: None)
    with pytest.raises(HyperParameterError, match="NeuronFamily"):
        register_family("ALIF")


def test_a_registered_fast_path_is_used_by_the_switch():
    fam = register_family(NeuronFamily("test-double-alif", ("v", "a"), alif_step))
    calls = []

    def fast(x_seq, state0, **params):
        calls.append(x_seq.shape)
        s, state, _ = snnedu.functional.state_multistep(alif_step, x_seq, state0, **params)
        return s, state

    register_fast_path(fam, "cpu", fast)

    class Double(ALIF):
        family = fam

    x = torch.rand(6, 2, 5) * 3
    assert torch.equal(Double(beta=0.2)(x), ALIF(beta=0.2)(x)) and calls == [x.shape]
    with use_backend("reference"):
        Double(beta=0.2)(x)
    assert len(calls) == 1


@pytest.mark.parametrize("kwargs,match", [
    (dict(tau=0.5), "tau"), (dict(tau_a=0.9), "tau_a"), (dict(beta=-0.1), "beta"),
    (dict(beta=float("nan")), "beta"), (dict(decay_input="yes"), "decay_input"), (dict(v_reset=1.0), "v_reset"),
])
def test_bad_hyper_parameters_are_refused(kwargs, match):
    with pytest.raises(HyperParameterError, match=match):
        ALIF(**kwargs)


def test_nan_input_is_refused():
    with pytest.raises(InputError):
        ALIF()(torch.tensor([[[float("nan")]]]))


# -- the delayed-recall task ---------------------------------------------------------------------------
def test_row_encoder_lays_out_rows_delay_and_cue():
    img = torch.rand(2, 1, 28, 28)
    enc = snnedu.RowEncoder(delay=3, cue=2, gain=2.0)
    seq = enc(img)
    assert seq.shape == (33, 2, 29) and enc.steps(28) == 33
    assert torch.equal(seq[5, 1, :28], img[1, 0, 5] * 2)
    assert seq[28:31].abs().sum() == 0                        # the delay is empty
    assert torch.equal(seq[31:, :, 28], torch.full((2, 2), 2.0)) and seq[31:, :, :28].abs().sum() == 0
    assert seq[:28, :, 28].abs().sum() == 0                   # the cue channel is off during the rows
    with pytest.raises(InputError):
        enc(torch.rand(2, 3, 28, 28))
    with pytest.raises(HyperParameterError):
        snnedu.RowEncoder(cue=0)


def test_last_steps_keeps_the_read_out_window():
    from snnedu.layers import LastSteps
    x = torch.arange(10.).view(5, 1, 2)
    assert torch.equal(LastSteps(2)(x), x[3:])
    with pytest.raises(InputError, match="only 5 steps"):
        LastSteps(6)(x)


def test_config_builds_the_delayed_recall_network_and_checks_T():
    from snnedu.config import ConfigError, build_model, validate_config
    raw = {"name": "t", "data": {"dataset": "mnist", "encoding": "rows", "delay": 4, "cue": 2, "T": 34, "batch_size": 8},
           "model": {"arch": "spiking_mlp", "hidden": [16], "readout_steps": 2,
                     "neuron": {"type": "ALIF", "tau": 2.0, "tau_a": 20.0, "beta": 0.3}},
           "train": {"epochs": 1, "lr": 1e-3}}
    net = build_model(validate_config(raw))
    assert net(torch.rand(3, 1, 28, 28)).shape == (2, 3, 10)
    assert any(isinstance(m, ALIF) for m in net.modules())
    raw["data"]["T"] = 33
    with pytest.raises(ConfigError, match="28 rows"):
        build_model(validate_config(raw))
    raw["data"].update(T=8, encoding="direct")
    with pytest.raises(ConfigError, match="only for data.encoding: rows"):
        build_model(validate_config(raw))
