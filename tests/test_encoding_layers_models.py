import pytest
import torch
import torch.nn as nn

import snnedu
from snnedu import DirectEncoder, Flatten, LatencyEncoder, PoissonEncoder, TimeDistributed


def test_poisson_rate_matches_intensity_and_is_binary():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([[0.0, 0.1, 0.5, 0.9, 1.0]])
    s = PoissonEncoder(T=20000, generator=g)(p)
    assert s.shape == (20000, 1, 5)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(s.mean(0), p, atol=0.01)
    assert s[:, 0, 0].sum() == 0 and s[:, 0, 4].sum() == 20000


def test_poisson_error_shrinks_with_T():
    g = torch.Generator().manual_seed(1)
    p = torch.rand(64, 100, generator=g)
    err = [(PoissonEncoder(T, generator=g)(p).mean(0) - p).abs().mean().item() for T in (4, 64, 1024)]
    assert err[0] > err[1] > err[2]


def test_direct_and_latency():
    x = torch.rand(3, 1, 4, 4)
    d = DirectEncoder(T=5)(x)
    assert d.shape == (5, 3, 1, 4, 4) and all(torch.equal(d[t], x) for t in range(5))
    s = LatencyEncoder(T=8)(torch.tensor([[1.0, 0.5, 0.0, 0.001]]))
    assert s.sum(0).tolist() == [[1.0, 1.0, 0.0, 1.0]]
    assert s[:, 0, 0].argmax().item() == 0 and s[:, 0, 1].argmax().item() == 4 and s[:, 0, 3].argmax().item() == 7


@pytest.mark.parametrize("enc", [PoissonEncoder(4), LatencyEncoder(4)])
def test_rate_encoders_reject_values_outside_unit_interval(enc):
    with pytest.raises(snnedu.InputError, match="intensities in \\[0, 1\\].*got values in \\[-0.5, 2"):
        enc(torch.tensor([[-0.5, 2.0]]))


@pytest.mark.parametrize("enc", [PoissonEncoder(4), DirectEncoder(4), LatencyEncoder(4)])
def test_encoders_reject_nan_scalars_and_bad_T(enc):
    with pytest.raises(snnedu.InputError, match="NaN"):
        enc(torch.tensor([[0.5, float("nan")]]))
    with pytest.raises(snnedu.InputError, match="at least 1 dims"):
        enc(torch.tensor(0.5))
    with pytest.raises(snnedu.HyperParameterError, match="T must be an integer >= 1"):
        type(enc)(T=0)


def test_time_distributed_equals_per_step_application():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(4, 5, 2, 6, 6)
    y = TimeDistributed(conv)(x)
    assert y.shape == (4, 5, 3, 6, 6)
    assert torch.allclose(y, torch.stack([conv(x[t]) for t in range(4)]), atol=1e-6)
    with pytest.raises(snnedu.InputError, match="\\[T, B, features...\\]"):
        TimeDistributed(nn.Linear(3, 2))(torch.randn(5, 3))
    assert Flatten()(torch.randn(4, 5, 2, 3, 3)).shape == (4, 5, 18)


@pytest.mark.parametrize("net", [
    snnedu.SpikingMLP(input_shape=(1, 28, 28), hidden=(32, 16)),
    snnedu.SpikingCNN(input_shape=(1, 28, 28), channels=4, hidden=8),
])
def test_models_shapes_and_missing_time_dimension(net):
    out = net(DirectEncoder(3)(torch.rand(2, 1, 28, 28)))
    assert out.shape == (3, 2, 10)
    with pytest.raises(snnedu.InputError, match="without a time dimension; encode it first"):
        net(torch.rand(2, 1, 28, 28))
    with pytest.raises(snnedu.InputError, match="expects input shaped \\[T, B, 1, 28, 28\\]"):
        net(torch.rand(3, 2, 1, 32, 32))


def test_model_accepts_any_neuron_factory():
    net = snnedu.SpikingMLP(input_shape=(10,), hidden=(7,), neuron=lambda: snnedu.PLIF(per_neuron=True))
    net(torch.rand(2, 3, 10))
    plif = [m for m in net.modules() if isinstance(m, snnedu.PLIF)]
    assert len(plif) == 1 and plif[0].decay_param.w.shape == (7,)
    with pytest.raises(snnedu.HyperParameterError, match="divisible by 4"):
        snnedu.SpikingCNN(input_shape=(1, 30, 30))


def test_materialize_shapes_lazy_parameters_without_touching_bn_or_training_flags():
    net = snnedu.SpikingMLP(input_shape=(6,), hidden=(5,), n_classes=3, batch_norm=True,
                            neuron=lambda: snnedu.PLIF(per_neuron=True))
    net.train()
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm1d))
    snnedu.materialize(net, torch.rand(2, 4, 6) * 5)
    plif = next(m for m in net.modules() if isinstance(m, snnedu.PLIF))
    assert plif.decay_param.w.shape == (5,)
    assert torch.equal(bn.running_mean, torch.zeros(5)) and int(bn.num_batches_tracked) == 0
    assert all(m.training for m in net.modules()) and plif.v is None
