"""SeqDropout, PerStepBatchNorm and the PLIF paper's networks (Fang et al. 2021; per-neuron tau: Pazderka 2024)."""
import pytest
import torch
import torch.nn as nn

import snnedu
from snnedu.errors import HyperParameterError, InputError, StateError
from snnedu.layers import PerStepBatchNorm, SeqDropout, TimeDistributed
from snnedu.models.plif_net import PLIFDVSNet, PLIFStaticNet
from snnedu.neurons import PLIF


def plifs(net):
    return [m for m in net.modules() if isinstance(m, PLIF)]


def linears(net):
    return [m for m in net.modules() if isinstance(m, nn.Linear)]


def per_neuron_plif():
    return PLIF(per_neuron=True, tau_std=0.1, detach_reset=True)


# -- SeqDropout -----------------------------------------------------------------------------------------

def test_seq_dropout_mask_constant_over_time_and_different_across_samples():
    drop = SeqDropout(p=0.5)
    y = drop(torch.ones(6, 8, 64))
    assert torch.equal(y, y[0].expand_as(y))                      # one mask for all T steps
    assert set(y.unique().tolist()) <= {0.0, 2.0}                  # scaled by 1 / (1 - p)
    masks = y[0]
    assert all(not torch.equal(masks[0], masks[b]) for b in range(1, 8))   # one mask per sample
    assert not torch.equal(y, drop(torch.ones(6, 8, 64)))          # a new call, a new mask
    assert drop.mask is None                                       # multi-step keeps no state


def test_seq_dropout_scaling_keeps_the_mean():
    drop = SeqDropout(p=0.25)
    x = torch.rand(3, 200, 500) + 0.5
    y = drop(x)
    ratio = y / x
    assert torch.allclose(ratio[(ratio != 0)], torch.tensor(4.0 / 3.0))
    assert abs((ratio == 0).float().mean().item() - 0.25) < 0.01
    assert abs(ratio.mean().item() - 1.0) < 0.02


def test_seq_dropout_eval_and_p0_are_identity():
    x = torch.randn(4, 3, 10)
    drop = SeqDropout(0.5).eval()
    assert torch.equal(drop(x), x) and torch.equal(drop.step(x[0]), x[0]) and drop.mask is None
    assert torch.equal(SeqDropout(0.0)(x), x)


def test_seq_dropout_step_path_equals_multistep_and_reset_draws_new_mask():
    x = torch.rand(5, 4, 3, 6)
    drop = SeqDropout(0.5)
    torch.manual_seed(7)
    y_multi = drop(x)
    torch.manual_seed(7)
    y_step = torch.stack([drop.step(x_t) for x_t in x])
    assert torch.equal(y_multi, y_step)
    mask = drop.mask.clone()
    assert torch.equal(drop.step(torch.ones(4, 3, 6)), mask)       # kept until reset
    snnedu.reset(nn.Sequential(drop))
    assert drop.mask is None
    assert not torch.equal(drop.step(torch.ones(4, 3, 6)), mask)   # reset -> a new mask
    with pytest.raises(StateError, match="snnedu.reset"):
        drop.step(torch.ones(2, 3, 6))


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, float("nan"), "0.5"])
def test_seq_dropout_rejects_bad_p(p):
    with pytest.raises(HyperParameterError, match="p must"):
        SeqDropout(p)


# -- PerStepBatchNorm ---------------------------------------------------------------------------------------

def _steps_that_differ(T=4, B=6, C=3):
    x = torch.randn(T, B, C, 5, 5)
    t = torch.arange(T, dtype=torch.float32).view(T, 1, 1, 1, 1)
    return x * (1.0 + t) + 2.0 * t                                # mean and spread change with t


def test_per_step_bn_matches_hand_computation():
    x = _steps_that_differ()
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
    y = PerStepBatchNorm(bn)(x)
    rm = torch.zeros(3)
    rv = torch.ones(3)
    for t in range(x.shape[0]):
        mean = x[t].mean(dim=(0, 2, 3))
        var = x[t].var(dim=(0, 2, 3), unbiased=False)
        ref = (x[t] - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + bn.eps)
        ref = ref * bn.weight.view(1, 3, 1, 1) + bn.bias.view(1, 3, 1, 1)
        assert torch.allclose(y[t], ref, atol=1e-5)
        n = x[t].numel() / 3
        rm = 0.9 * rm + 0.1 * mean
        rv = 0.9 * rv + 0.1 * var * n / (n - 1)
    assert bn.num_batches_tracked.item() == x.shape[0]            # running stats updated T times
    assert torch.allclose(bn.running_mean, rm, atol=1e-5) and torch.allclose(bn.running_var, rv, atol=1e-4)
    assert torch.allclose(PerStepBatchNorm(bn).step(x[0]), bn(x[0]))


def test_per_step_bn_differs_from_bn_over_time_only_when_steps_differ():
    x = _steps_that_differ()
    per_step, over_tb = PerStepBatchNorm(nn.BatchNorm2d(3)), TimeDistributed(nn.BatchNorm2d(3))
    assert not torch.allclose(per_step(x), over_tb(x), atol=1e-2)
    same = x[:1].expand(4, *x.shape[1:]).contiguous()
    assert torch.allclose(per_step(same), over_tb(same), atol=1e-5)


def test_per_step_bn_checks_its_arguments():
    with pytest.raises(HyperParameterError, match="batch-norm module"):
        PerStepBatchNorm(nn.Linear(3, 3))
    with pytest.raises(InputError):
        PerStepBatchNorm(nn.BatchNorm1d(3))(torch.randn(4, 3))


# -- PLIFStaticNet ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset, shape, n_plif, n_drop", [
    ("mnist", (1, 28, 28), 4, 2), ("fashion_mnist", (1, 28, 28), 4, 2), ("cifar10", (3, 32, 32), 8, 1)])
def test_static_net_shapes_and_layer_counts(dataset, shape, n_plif, n_drop):
    net = PLIFStaticNet(dataset, T=3, channels=8, fc_hidden=32)
    out = net(torch.rand(2, *shape))
    assert out.shape == (3, 2, 10)
    assert torch.all((out >= 0) & (out <= 1))                     # voting rates of spikes
    assert net(torch.rand(2, *shape), T=5).shape == (5, 2, 10)
    assert len(plifs(net)) == n_plif
    assert sum(isinstance(m, SeqDropout) for m in net.modules()) == n_drop
    assert all(p.detach_reset and abs(p.tau.item() - 2.0) < 1e-6 for p in plifs(net))   # paper neuron


def test_static_net_full_sizes_without_running():
    with torch.device("meta"):
        mnist, cifar = PLIFStaticNet("mnist"), PLIFStaticNet("cifar10")
    assert [(m.in_features, m.out_features) for m in linears(mnist)] == [(128 * 7 * 7, 2048), (2048, 100)]
    assert [(m.in_features, m.out_features) for m in linears(cifar)] == [(256 * 8 * 8, 2048), (2048, 100)]
    assert all(m.bias is None for m in linears(cifar))
    convs = [m for m in cifar.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.out_channels == 256 for c in convs)


def test_static_net_encoder_runs_once_per_forward():
    net = PLIFStaticNet("mnist", T=6, channels=4, fc_hidden=16)
    seen = []
    net.encoder[0].register_forward_hook(lambda m, inp, out: seen.append(tuple(inp[0].shape)))
    first_neuron_input = []
    net.features[0].register_forward_pre_hook(lambda m, inp: first_neuron_input.append(tuple(inp[0].shape)))
    net(torch.rand(3, 1, 28, 28))
    assert seen == [(3, 1, 28, 28)]                                 # once, on the static batch
    assert first_neuron_input == [(6, 3, 4, 28, 28)]                # repeated over T afterwards
    net(torch.rand(3, 1, 28, 28))
    assert len(seen) == 2


@pytest.mark.parametrize("dataset, bn", [("mnist", "per_step"), ("cifar10", "time")])
def test_static_net_gradients_reach_encoder_and_every_tau(dataset, bn):
    net = PLIFStaticNet(dataset, T=4, channels=8, fc_hidden=32, bn=bn)
    with torch.no_grad():               # at this tiny width the FC layers would stay silent at init;
        for fc in linears(net):         # a larger weight makes every layer fire so every w gets a gradient
            fc.weight.mul_(8.0)
    x = torch.rand(8, *net.input_shape)
    out = net(x)
    snnedu.rate_mse(out, torch.arange(8) % 10).backward()
    assert net.encoder[0].weight.grad is not None and net.encoder[0].weight.grad.abs().sum() > 0
    for p in plifs(net):
        g = p.decay_param.w.grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_static_net_options_and_eval_determinism():
    net = PLIFStaticNet("mnist", T=2, channels=4, fc_hidden=16, pool="avg", bn="time")
    assert any(isinstance(m, nn.AvgPool2d) for m in net.modules())
    assert not any(isinstance(m, PerStepBatchNorm) for m in net.modules())
    net.eval()
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(net(x), net(x))


def test_static_net_rejects_bad_inputs_and_hyper_parameters():
    net = PLIFStaticNet("mnist", T=2, channels=4, fc_hidden=16)
    with pytest.raises(InputError, match="encoded sequence"):
        net(torch.rand(2, 3, 1, 28, 28))
    with pytest.raises(InputError, match="static image batch"):
        net(torch.rand(3, 3, 32, 32))
    for kw in (dict(dataset="imagenet"), dict(bn="tdbn"), dict(pool="min"), dict(p=1.0), dict(T=0),
               dict(channels=0)):
        with pytest.raises(HyperParameterError):
            PLIFStaticNet(**{"dataset": "mnist", **kw})


# -- PLIFDVSNet ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("preset, kw, n_classes, fc", [
    ("dvs128_gesture", dict(channels=4, input_size=64), 11, (4 * 2 * 2, 4)),
    ("cifar10_dvs", dict(channels=4, input_size=32), 10, (4 * 2 * 2, 4)),
    ("nmnist", dict(channels=4), 10, (4 * 8 * 8, 64)),            # 34 -> 17 -> 8, as in the paper
])
def test_dvs_presets_small_shapes(preset, kw, n_classes, fc):
    net = getattr(PLIFDVSNet, preset)(**kw)
    H, W = net.input_size
    out = net(torch.rand(3, 2, 2, H, W) * 3)
    assert out.shape == (3, 2, n_classes)
    assert (net.fc_in, net.fc_hidden) == fc
    assert [(m.in_features, m.out_features) for m in linears(net)] == [fc, (fc[1], 10 * n_classes)]


@pytest.mark.parametrize("preset, n_conv, fcs", [
    ("dvs128_gesture", 5, [(2048, 512), (512, 110)]),
    ("cifar10_dvs", 4, [(8192, 2048), (2048, 100)]),
    ("nmnist", 2, [(8192, 2048), (2048, 100)]),
])
def test_dvs_full_presets_sizes_without_running(preset, n_conv, fcs):
    with torch.device("meta"):                                      # no memory, no compute
        net = getattr(PLIFDVSNet, preset)()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == n_conv and convs[0].in_channels == 2 and all(c.out_channels == 128 for c in convs)
    assert [(m.in_features, m.out_features) for m in linears(net)] == fcs
    assert len(plifs(net)) == n_conv + 2
    n_params = sum(p.numel() for p in net.parameters())
    conv_params = 2 * 128 * 9 + (n_conv - 1) * 128 * 128 * 9
    assert n_params == conv_params + n_conv * 2 * 128 + sum(a * b for a, b in fcs) + n_conv + 2


def test_dvs_per_neuron_plif_shapes_after_one_forward():
    # the thesis' Gesture net at small size: C=4, 64x64 (full size: (128,128,128) ... (512,), (110,))
    net = PLIFDVSNet.dvs128_gesture(channels=4, input_size=64, neuron=per_neuron_plif)
    ws = [p.decay_param.w for p in plifs(net)]
    assert all(isinstance(w, nn.UninitializedParameter) for w in ws)
    bn = net.features[1].bn
    net.materialize()
    assert net.training and bn.num_batches_tracked.item() == 0     # no statistics touched
    shapes = [tuple(p.decay_param.w.shape) for p in plifs(net)]
    assert shapes == [(4, 64, 64), (4, 32, 32), (4, 16, 16), (4, 8, 8), (4, 4, 4), (4,), (110,)]
    taus = torch.cat([p.tau.detach().flatten() for p in plifs(net)])
    assert (taus > 1).all() and abs(taus.mean().item() - 2.0) < 0.05
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)               # after the shapes are known
    snnedu.rate_mse(net(torch.rand(2, 2, 2, 64, 64) * 3), torch.tensor([0, 5])).backward()
    opt.step()


def test_static_net_per_neuron_materialize():
    net = PLIFStaticNet("mnist", T=4, channels=4, fc_hidden=16, neuron=per_neuron_plif)
    net.materialize()
    assert net.T == 4
    assert [tuple(p.decay_param.w.shape) for p in plifs(net)] == [(4, 28, 28), (4, 14, 14), (16,), (100,)]


def test_dvs_rejects_bad_inputs_and_hyper_parameters():
    with pytest.raises(HyperParameterError, match="too small for n_down=5"):
        PLIFDVSNet.dvs128_gesture(input_size=16)
    with pytest.raises(HyperParameterError, match="fc_hidden"):
        PLIFDVSNet(channels=1, input_size=32, n_down=5)             # C*h*w // 4 = 0
    for kw in (dict(p=1.0), dict(p=-0.5), dict(bn="over_time"), dict(pool="lp"), dict(channels=0),
               dict(input_size=(64, "a")), dict(n_down=0)):
        with pytest.raises(HyperParameterError):
            PLIFDVSNet.cifar10_dvs(**{"channels": 4, "input_size": 32, **kw})
    net = PLIFDVSNet.nmnist(channels=4)
    with pytest.raises(InputError, match=r"\[T, B, 2, 34, 34\]"):
        net(torch.rand(2, 2, 2, 32, 32))
    with pytest.raises(InputError):
        net(torch.rand(2, 2, 34, 34))
