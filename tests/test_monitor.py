"""Monitor: firing statistics, SOP/MAC counts and energy against hand computations; plots; callbacks."""
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import snnedu
from snnedu import IF, MLF, Monitor, TimeDistributed
from snnedu.monitor import E_AC, E_MAC, synaptic_ops


def test_neuron_statistics_by_hand():
    # IF with threshold 1 on [T=4, B=2, N=3] currents: neuron 0 always fires, neuron 1 never, neuron 2 once
    x = torch.tensor([[[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]).repeat(4, 1, 1)
    x[0, 0, 2] = x[1, 0, 2] = 0.5  # sample 0, neuron 2: 0.5 + 0.5 -> one spike at t = 1
    neuron = IF(v_threshold=1.0)
    with Monitor(neuron) as mon:
        s = neuron(x)
    (row,) = mon.neuron_stats()
    assert s.sum() == 9  # 2 samples x 4 steps for neuron 0, plus one
    assert row["neurons"] == 3
    assert row["firing_rate"] == pytest.approx(9 / 24)
    assert row["dormant"] == pytest.approx(3 / 6)      # (s0,n1), (s1,n1), (s1,n2)
    assert row["saturated"] == pytest.approx(2 / 6)    # neuron 0 in both samples
    assert row["dead"] == pytest.approx(1 / 3)         # neuron 1 never fired at all
    assert mon.n_samples == 2
    neuron(x)  # detached: nothing more is counted
    assert mon.neuron_stats()[0]["firing_rate"] == pytest.approx(9 / 24)


def test_sop_and_mac_counts_by_hand():
    torch.manual_seed(0)
    net = nn.Sequential(TimeDistributed(nn.Linear(4, 5)), IF(), TimeDistributed(nn.Linear(5, 2)))
    analog = torch.rand(3, 2, 4)  # [T=3, B=2, 4] analog input -> dense MACs in the first layer
    hidden = net[1](net[0](analog)).detach()
    with Monitor(net) as mon:
        net(analog)
    syn = mon.synapse_stats()
    assert syn[0]["mac"] == pytest.approx(3 * 2 * 4 * 5 / 2) and syn[0]["sop"] == 0
    assert syn[1]["sop"] == pytest.approx(float(hidden.sum()) * 2 / 2) and syn[1]["mac"] == 0
    assert mon.energy_per_sample() == pytest.approx(E_AC * syn[1]["sop"] + E_MAC * syn[0]["mac"])
    assert "SOP" in mon.table() and "uJ" in mon.table()


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), (2, 1)])
def test_conv_sop_is_exact_at_the_borders(stride, padding):
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, stride=stride, padding=padding, bias=False)
    x = (torch.rand(2, 2, 6, 5) < 0.3).float() * torch.randint(1, 3, (2, 2, 6, 5)).float()
    # brute force: for every output position, every input unit inside its receptive field costs one
    # accumulate per output channel (zero padding contributes nothing)
    xp = F.pad(x, (padding,) * 4)
    Ho = (6 + 2 * padding - 3) // stride + 1
    Wo = (5 + 2 * padding - 3) // stride + 1
    total = 0.0
    for i in range(Ho):
        for j in range(Wo):
            total += float(xp[:, :, i * stride:i * stride + 3, j * stride:j * stride + 3].sum()) * 3
    assert synaptic_ops(conv, x) == pytest.approx(total)


def test_mlf_coverage_counts_every_window():
    # potentials 0.6, 1.6, 2.6 (one per window) and 5.0 (outside all): coverage 3/4 with K=3, 1/4 with K=1
    x = torch.tensor([[[0.6, 1.6, 2.6, 5.0]]])
    for K, expect in ((3, 0.75), (1, 0.25)):
        unit = MLF(K=K, record=False)
        with Monitor(unit, coverage=True) as mon:
            unit(x)
        assert mon.neuron_stats()[0]["coverage"] == pytest.approx(expect)
        assert unit.record is False and unit.h_seq is None  # restored after detach


def test_fit_callbacks_extend_history_and_plots_draw():
    torch.manual_seed(2)
    x, y = torch.rand(32, 6), torch.randint(0, 2, (32,))
    loader = [(x[:16], y[:16]), (x[16:], y[16:])]
    net = nn.Sequential(snnedu.DirectEncoder(3), snnedu.SpikingMLP(
        input_shape=(6,), hidden=(8, 8), n_classes=2, batch_norm=True,
        neuron=lambda: snnedu.PLIF(per_neuron=True, tau_std=0.1, learn_threshold="neuron")))
    net(x[:2])
    hist = snnedu.fit(net, loader, epochs=2, progress=False, verbose=False, device="cpu",
                      callbacks=[lambda m, row: {"tau_mean": float(snnedu.viz.learned_values(m)[0][1].mean())}])
    assert [(name, v.shape, pn) for name, v, pn in snnedu.viz.learned_values(net)] == [
        ("1.body.3", (8,), True), ("1.body.6", (8,), True)]
    assert len(hist["tau_mean"]) == 2 and all(isinstance(v, float) for v in hist["tau_mean"])
    assert sum(isinstance(m, nn.BatchNorm1d) for m in net.modules()) == 2
    ax = snnedu.viz.tau_histogram(net)
    assert len(ax.patches) > 0
    ax = snnedu.viz.threshold_histogram(net)
    assert ax.get_legend() is not None and len(ax.get_legend().get_texts()) == 2
    with Monitor(net) as mon:
        net(x)
    ax = snnedu.viz.layer_bars(mon.neuron_stats(), "firing_rate", label="PLIF")
    assert len(ax.patches) == 2
    pm = snnedu.PMLF3()
    pm(torch.rand(2, 1, 3))
    ax = snnedu.viz.tau_histogram(pm, kind="decay")
    assert len(ax.lines) == 3 and len(ax.patches) == 0  # three per-level values: one line each
    plt.close("all")


def test_voting_readout_rate_mse_and_decay_parameters():
    spikes = torch.zeros(2, 3, 20)
    spikes[:, 0, :10] = 1.0          # sample 0: every voter of class 0 fires
    spikes[0, 1, 10:15] = 1.0        # sample 1: half the voters of class 1 fire at t = 0
    rates = snnedu.VotingReadout(n_classes=2, group=10)(spikes)
    assert rates.shape == (2, 3, 2)
    assert rates[:, 0].tolist() == [[1.0, 0.0], [1.0, 0.0]] and rates[0, 1].tolist() == [0.0, 0.5]
    y = torch.tensor([0, 1, 1])
    # mean over time: sample 1 has rate 0.25 for class 1 -> error 0.75; sample 2 has 0 -> error 1
    expect = (0.75 ** 2 + 1.0 ** 2) / 6
    assert snnedu.rate_mse(rates, y).item() == pytest.approx(expect)
    assert snnedu.predict(rates).tolist()[:2] == [0, 1]
    with pytest.raises(snnedu.InputError, match="2 x 10 = 20 neurons"):
        snnedu.VotingReadout(2, 10)(torch.zeros(2, 3, 21))
    with pytest.raises(snnedu.InputError, match="target must be"):
        snnedu.rate_mse(rates, torch.zeros(2, dtype=torch.long))
    net = nn.Sequential(snnedu.PLIF(), IF(), snnedu.PMLF3())
    assert [tuple(p.shape) for p in snnedu.decay_parameters(net)] == [(), (3,)]


def test_monitor_names_wrapped_layers_after_their_wrapper():
    net = nn.Sequential()
    net.add_module("fc1", TimeDistributed(nn.Linear(3, 4)))
    net.add_module("lif1", IF())
    mon = Monitor(net)
    assert list(mon.synapse_names.values()) == ["fc1"] and list(mon.neuron_names.values()) == ["lif1"]
