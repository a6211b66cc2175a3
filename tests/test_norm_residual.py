"""Chapter 6's controls: the normalisations of SpikingMLP (none, BN over T·B, tdBN, per-step BN) and
the plain (shortcut-free) ResNet, in the library and in the config."""
import copy

import pytest
import torch
import torch.nn as nn

import snnedu
from snnedu import study as S
from snnedu.config import ConfigError, build_model, validate_config


def _pre_activations(net, x):
    """The input of every hidden neuron of a SpikingMLP, ``[T, B, width]`` each (train mode)."""
    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
             for m in net.modules() if isinstance(m, snnedu.BaseNeuron)]
    net.train()
    net(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("v_th", [0.6, 2.0])
def test_tdbn_scales_the_pre_activations_to_the_threshold_and_bn_does_not(v_th):
    torch.manual_seed(0)
    x = snnedu.DirectEncoder(3)(torch.rand(64, 1, 8, 8))
    make = lambda norm: snnedu.SpikingMLP((1, 8, 8), hidden=(32, 32), norm=norm,  # noqa: E731
                                          neuron=lambda: snnedu.MLF(K=1, v_threshold=v_th))
    for norm, want in (("tdbn", v_th), ("bn", 1.0)):
        for h in _pre_activations(make(norm), x):
            std = h.flatten(0, 1).std(0, unbiased=False)            # per unit, over T·B
            assert torch.allclose(std, torch.full_like(std, want), rtol=1e-2), (norm, v_th)
    tdbn = [m for m in make("tdbn").modules() if isinstance(m, snnedu.tdBN)]
    assert len(tdbn) == 2 and all(m.v_threshold == v_th for m in tdbn)


def test_per_step_bn_normalises_each_step_alone():
    torch.manual_seed(0)
    x = torch.rand(3, 32, 1, 4, 4) * torch.tensor([1.0, 5.0, 20.0]).view(3, 1, 1, 1, 1)  # steps on 3 scales
    net = snnedu.SpikingMLP((1, 4, 4), hidden=(8,), norm="bn_step")
    h = _pre_activations(net, x)[0]
    for t in range(3):
        assert torch.allclose(h[t].std(0, unbiased=False), torch.ones(8), rtol=1e-2)
    h_bn = _pre_activations(snnedu.SpikingMLP((1, 4, 4), hidden=(8,), norm="bn"), x)[0]
    assert (h_bn[2].std(0) / h_bn[0].std(0)).min() > 5  # over T·B the steps keep their scales


def test_norm_arguments_are_checked():
    with pytest.raises(snnedu.HyperParameterError, match="norm must be None or one of"):
        snnedu.SpikingMLP(norm="layer")
    with pytest.raises(snnedu.HyperParameterError, match="batch_norm=True is norm='bn'"):
        snnedu.SpikingMLP(norm="tdbn", batch_norm=True)
    with pytest.raises(snnedu.HyperParameterError, match="no scalar v_threshold"):
        snnedu.SpikingMLP(norm="tdbn", neuron=nn.ReLU)
    net = snnedu.SpikingMLP(batch_norm=True)
    assert net.norm == "bn" and not any(isinstance(m, nn.Linear) and m.bias is not None
                                        for m in list(net.modules())[:-1][:3])


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_a_plain_resnet_has_the_same_main_branch_and_no_shortcut():
    kw = dict(neuron=lambda: snnedu.MLF(K=1), channels=(4, 8, 8), in_channels=1)
    plain, ds = snnedu.resnet20(residual=False, **kw), snnedu.resnet20(**kw)
    assert all(b.shortcut is None for b in plain.stages)
    main = lambda net: sum(_n_params(getattr(b, n)) for b in net.stages for n in ("conv1", "bn1", "conv2", "bn2"))  # noqa: E731
    assert main(plain) == main(ds) and _n_params(plain) < _n_params(ds)
    # every tdBN of a plain block uses alpha = 1 (nothing is summed before a neuron)
    assert all(b.bn2.alpha == 1.0 for b in plain.stages)
    torch.manual_seed(0)
    x = torch.rand(2, 3, 1, 16, 16)
    assert plain(x).shape == (2, 3, 10)
    # the block's output is its main branch alone: zeroing the input's contribution through a shortcut
    # is impossible, so check it directly on one block
    blk = plain.stages[0]
    h = torch.rand(2, 3, 4, 16, 16)
    want = blk.act2(blk.bn2(blk.conv2(blk.act1(blk.bn1(blk.conv1(h))))))
    snnedu.reset(blk)
    assert torch.equal(blk(h), want)


BASE = {"name": "t", "data": {"dataset": "mnist", "T": 2, "batch_size": 8},
        "model": {"arch": "spiking_mlp", "hidden": [8, 8], "neuron": {"type": "MLF", "K": 1}},
        "train": {"epochs": 1, "lr": 1e-3}}


def _cfg(**model):
    raw = copy.deepcopy(BASE)
    raw["model"].update(model)
    return validate_config(raw)


def test_config_norm_and_residual_build_what_they_say_and_refuse_the_wrong_arch():
    net = build_model(_cfg(norm="tdbn"))
    assert sum(isinstance(m, snnedu.tdBN) for m in net.modules()) == 2
    with pytest.raises(ConfigError, match="model.norm: only for spiking_mlp"):
        build_model(_cfg(arch="resnet20", norm="bn", hidden=None, channels=[4, 4, 4]))
    with pytest.raises(ConfigError, match="model.residual: only for the resnets"):
        build_model(_cfg(residual=False))
    with pytest.raises(ConfigError, match="batch_norm: true is model.norm: bn"):
        build_model(_cfg(batch_norm=True, norm="bn_step"))
    res = build_model(_cfg(arch="resnet20", hidden=None, channels=[4, 4, 4], residual=False))
    assert all(b.shortcut is None for b in res[1].stages)


def test_the_new_fields_change_a_cells_key_only_away_from_their_neutral_value(tmp_path):
    text = ("name: k\nbase:\n  data: {dataset: mnist, T: 2, batch_size: 8}\n"
            "  model: {arch: spiking_mlp, hidden: [8], neuron: {type: LIF}}\n  train: {epochs: 1, lr: 0.001}\n"
            "axes:\n  - {'a': {model.hidden: [8]}, 'b': {model.hidden: [9]}}\nseeds: [0, 1, 2]\n")
    p = tmp_path / "k.yaml"
    p.write_text(text)
    keys = [c["key"] for c in S.study_cells(S.load_study(p))]
    p.write_text(text.replace("neuron: {type: LIF}}", "neuron: {type: LIF}, norm: null}"))
    assert [c["key"] for c in S.study_cells(S.load_study(p))] == keys
    p.write_text(text.replace("neuron: {type: LIF}}", "neuron: {type: LIF}, norm: bn}"))
    assert not set(keys) & {c["key"] for c in S.study_cells(S.load_study(p))}
