"""tdBN, TET and the spiking residual networks (the deep-SNN pieces)."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import snnedu
from snnedu import MLF, PMLF, LIF, tdBN1d, tdBN2d


def test_tdbn_matches_hand_computation_train_and_eval():
    torch.manual_seed(0)
    x = torch.randn(3, 4, 2, 5, 5) * 2 + 1          # [T, B, C, H, W]
    bn = tdBN2d(2, v_threshold=0.6, alpha=1 / math.sqrt(2))
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, -0.5]))
        bn.bias.copy_(torch.tensor([0.1, 0.2]))
    y = bn(x)
    dims = (0, 1, 3, 4)                               # statistics over time, batch and space together
    mu = x.mean(dims, keepdim=True)
    var = x.var(dims, unbiased=False, keepdim=True)
    gamma, beta = bn.weight.view(1, 1, 2, 1, 1), bn.bias.view(1, 1, 2, 1, 1)
    expect = gamma * (0.6 / math.sqrt(2)) * (x - mu) / torch.sqrt(var + 1e-5) + beta
    assert torch.allclose(y, expect, atol=1e-5)
    n = x.numel() // 2
    assert torch.allclose(bn.running_mean, 0.1 * mu.flatten(), atol=1e-6)
    assert torch.allclose(bn.running_var, 0.9 + 0.1 * var.flatten() * n / (n - 1), atol=1e-5)
    bn.eval()
    rm, rv = bn.running_mean.view(1, 1, 2, 1, 1), bn.running_var.view(1, 1, 2, 1, 1)
    expect_eval = gamma * (0.6 / math.sqrt(2)) * (x - rm) / torch.sqrt(rv + 1e-5) + beta
    assert torch.allclose(bn(x), expect_eval, atol=1e-5)


def test_tdbn_at_init_equals_bn_over_time_with_gamma_alpha_vth():
    torch.manual_seed(1)
    x = torch.randn(4, 3, 6)                          # [T, B, C] after a Linear
    ours = tdBN1d(6, v_threshold=0.5, alpha=2.0)(x)
    sj = snnedu.TimeDistributed(nn.BatchNorm1d(6))
    with torch.no_grad():
        sj.module.weight.fill_(2.0 * 0.5)
    assert torch.allclose(ours, sj(x), atol=1e-6)
    # the normalised pre-activations have channel std alpha * V_th over (T, B)
    assert torch.allclose(ours.std((0, 1), unbiased=False), torch.full((6,), 1.0), atol=1e-3)
    y = tdBN1d(6, v_threshold=0.5, affine=False)(x)
    assert not list(tdBN1d(6, v_threshold=0.5, affine=False).parameters())
    assert torch.allclose(y.std((0, 1), unbiased=False), torch.full((6,), 0.5), atol=1e-3)


@pytest.mark.parametrize("make, x, match", [
    (lambda: tdBN2d(4, v_threshold=1.0), torch.randn(2, 3, 4, 5), "4-d.*expects a 5-d input"),
    (lambda: tdBN1d(4, v_threshold=1.0), torch.randn(2, 3, 5), "C=4"),
    (lambda: tdBN1d(4, v_threshold=1.0), torch.randn(3, 4), "at least 3 dims"),
])
def test_tdbn_bad_input(make, x, match):
    with pytest.raises(snnedu.InputError, match=match.replace("4-d.*", "")):
        make()(x)


@pytest.mark.parametrize("make, match", [
    (lambda: tdBN2d(4, v_threshold=0.0), "v_threshold"),
    (lambda: tdBN2d(4, v_threshold=1.0, alpha=-1.0), "alpha"),
    (lambda: tdBN2d(0, v_threshold=1.0), "num_features"),
    (lambda: snnedu.TETLoss(lam=1.5), "lam \\(TET"),
    (lambda: snnedu.resnet20(neuron=MLF, channels=(16, 32)), "one entry per stage"),
    (lambda: snnedu.resnet20(neuron=MLF, v_threshold=0.0), "v_threshold"),
])
def test_bad_deep_hyper_parameters(make, match):
    with pytest.raises(snnedu.HyperParameterError, match=match):
        make()


def test_tet_loss():
    torch.manual_seed(2)
    out, y = torch.randn(5, 4, 10), torch.tensor([0, 3, 9, 9])
    per_step = torch.stack([F.cross_entropy(out[t], y) for t in range(5)]).mean()
    assert torch.allclose(snnedu.tet_loss(out, y, lam=0.0), per_step)
    assert torch.allclose(snnedu.tet_loss(out[:1], y, lam=0.0), F.cross_entropy(out[0], y))
    mse = ((out - 1.0) ** 2).mean()
    assert torch.allclose(snnedu.TETLoss(lam=0.2, phi=1.0)(out, y), 0.8 * per_step + 0.2 * mse)
    # TET differs from the CE of the time average (SDT) unless every step is the same
    assert not torch.allclose(snnedu.tet_loss(out, y, lam=0.0), snnedu.rate_cross_entropy(out, y))
    same = out[:1].expand(5, 4, 10)
    assert torch.allclose(snnedu.tet_loss(same, y, lam=0.0), snnedu.rate_cross_entropy(same, y))
    with pytest.raises(snnedu.InputError, match="per-step outputs \\[T, B, C\\]"):
        snnedu.tet_loss(out.mean(0), y)


@pytest.mark.parametrize("ds", [True, False])
@pytest.mark.parametrize("neuron", [lambda: MLF(K=3), lambda: PMLF(), lambda: LIF.stbp(decay=0.25, v_threshold=0.6)],
                         ids=["MLF", "PMLF", "LIF"])
def test_resnet_shapes_and_gradients(ds, neuron):
    torch.manual_seed(3)
    net = snnedu.resnet14(neuron=neuron, channels=(4, 8, 8), ds=ds)
    x = snnedu.DirectEncoder(2)(torch.rand(3, 3, 12, 12))
    out = net(x)
    assert out.shape == (2, 3, 10)
    snnedu.tet_loss(out, torch.tensor([0, 1, 2])).backward()
    first = net.stem[0].module.weight.grad
    assert first is not None and first.abs().sum() > 0
    assert net.stages[0].bn2.alpha == pytest.approx(1.0 if ds else 1 / math.sqrt(2))


def test_ds_block_fires_before_the_addition():
    torch.manual_seed(4)
    block = snnedu.SpikingBasicBlock(4, 6, stride=2, neuron=lambda: MLF(K=3), v_threshold=0.6, ds=True)
    out = block(torch.rand(2, 3, 4, 8, 8) * 3)
    assert out.shape == (2, 3, 6, 4, 4)
    assert torch.equal(out, out.round()) and out.min() >= 0 and out.max() <= 6  # sum of two MLF outputs
    assert isinstance(block.shortcut[-1], MLF)
    std = snnedu.SpikingBasicBlock(4, 6, stride=2, neuron=lambda: MLF(K=3), v_threshold=0.6, ds=False)
    out = std(torch.rand(2, 3, 4, 8, 8) * 3)
    assert out.max() <= 3 and not isinstance(std.shortcut[-1], MLF)       # one neuron after the sum


def test_share_neuron_shares_the_learnable_decay():
    shared = snnedu.resnet14(neuron=PMLF, channels=(4, 4, 4), share_neuron=True)
    separate = snnedu.resnet14(neuron=PMLF, channels=(4, 4, 4))
    n_shared = len(list(snnedu.decay_parameters(shared)))
    n_separate = len(list(snnedu.decay_parameters(separate)))
    # 6 blocks: sharing saves one unit per block (the stem and the 2 projection shortcuts keep theirs)
    assert n_separate - n_shared == 6
    assert shared.stages[0].act1 is shared.stages[0].act2


def test_resnet19_head_and_input_checks():
    net = snnedu.resnet19(neuron=lambda: LIF.stbp(decay=0.5, v_threshold=1.0, surrogate="triangle"),
                          channels=(4, 8, 8), stem_channels=4, hidden=16, in_channels=2, input_norm=True)
    assert isinstance(net.head[1], LIF) and net.head[2].module.out_features == 10
    assert net(torch.rand(2, 1, 2, 8, 8)).shape == (2, 1, 10)
    with pytest.raises(snnedu.InputError, match="\\[T, B, 2, H, W\\]"):
        net(torch.rand(2, 1, 3, 8, 8))
