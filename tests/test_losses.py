import pytest
import torch
import torch.nn.functional as F

import snnedu
from snnedu import PLIF, TauVarianceRegularizer


def test_rate_cross_entropy_is_ce_of_time_mean():
    out = torch.randn(6, 4, 10)
    y = torch.tensor([1, 2, 3, 9])
    assert torch.allclose(snnedu.rate_cross_entropy(out, y), F.cross_entropy(out.mean(0), y))
    assert torch.equal(snnedu.predict(out), out.mean(0).argmax(-1))
    with pytest.raises(snnedu.InputError, match="target must be \\[B\\]"):
        snnedu.rate_cross_entropy(out, torch.tensor([1, 2]))
    with pytest.raises(snnedu.InputError, match="\\[T, B, C\\] or \\[B, C\\]"):
        snnedu.predict(torch.randn(2, 3, 4, 5))


def test_tau_variance_regularizer_on_tau_and_w():
    torch.manual_seed(0)
    net = torch.nn.Sequential(PLIF(per_neuron=True, shape=(50,), tau_std=0.3),
                              PLIF(per_neuron=True, shape=(4, 5), tau_std=0.1),
                              PLIF())  # per-layer: contributes nothing
    a, b = net[0].decay_param, net[1].decay_param
    expect_tau = 0.1 * (a.tau.var() + b.tau.var())
    expect_w = 0.1 * (a.w.var() + b.w.var())
    assert torch.allclose(TauVarianceRegularizer(0.1)(net), expect_tau)
    assert torch.allclose(TauVarianceRegularizer(0.1, on="w")(net), expect_w)
    assert TauVarianceRegularizer(0.0)(net).item() == 0.0
    reg = TauVarianceRegularizer(1.0)(net)
    reg.backward()
    assert a.w.grad.abs().sum() > 0 and net[2].decay_param.w.grad is None


def test_tau_regularizer_bad_arguments():
    with pytest.raises(snnedu.HyperParameterError, match="lam .* must be finite and in \\[0.0, inf\\]"):
        TauVarianceRegularizer(-0.01)
    with pytest.raises(snnedu.HyperParameterError, match="'tau' or 'w'"):
        TauVarianceRegularizer(0.1, on="k")
