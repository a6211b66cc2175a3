"""NIR export/import (snnedu.nir), checked against other frameworks' importers and exporters.

The peers (SpikingJelly 2.0.0, Norse 1.1.0, snnTorch 1.0.0, with nir 1.0.8 and nirtorch 2.6) come from
``requirements-bench.txt``, installed without dependencies into ``~/.cache/snnedu/bench-extra``
(``SNNEDU_BENCH_EXTRA``) by ``make bench-extra``, which ``make test`` runs first. That directory is
appended to ``sys.path`` (after the venv's site-packages, so it shadows nothing). These tests never
skip: without the peers they fail, naming the make target.

Every round trip runs the same input through snnedu and through the peer's import of snnedu's
export, one time step at a time on the peer's side, and requires the output spikes to be exactly
equal (float32) and every spiking layer's membrane potential (after reset) to agree within 1e-5.

**Ties.** NIR, Norse and snnTorch fire at ``v > theta``; snnedu and SpikingJelly at ``v >= theta``.
The inputs are chosen (the first of a fixed list of seeds) so that no pre-reset potential of any
neuron comes within ``MARGIN = 1e-4`` of its threshold, and the tests assert that, so neither the
comparison nor float rounding of the converted parameters can flip a spike.

**What each importer ignores or cannot take** (each is pinned by a test below, so a fix upstream
shows up as a failing "documents" test):

- SpikingJelly ``import_from_nir``: strict; every neuron parameter must be uniform across the layer
  (no per-neuron tau or threshold), ``r`` must be 1 or tau/dt, ``v_leak == v_reset``, tau/dt > 1;
  no Flatten quirk; AvgPool2d yes, SumPool2d no.
- Norse ``from_nir``: ignores ``r`` (always Form A, ``r = 1``; an IF always adds its input) and
  ``v_reset`` (always resets to 0); its default ``dt`` is 1e-3 (passed as 1e-4 here); maps
  ``nir.Flatten(start_dim=0)`` to ``torch.nn.Flatten(0)``, which flattens the batch too, so a
  network with a Flatten runs there with batch size 1 only; no AvgPool2d.
- snnTorch ``import_from_nir``: hard-codes ``dt = 1e-4``; ignores ``v_reset`` (resets to 0) and
  requires ``v_leak = 0`` and a uniform threshold; a Form-A LIF (``r = 1``) is imported with the
  input gain moved into the threshold (``theta * tau/dt``), so its potentials are ``tau/dt`` times
  snnedu's; it imports ``nir.IF`` as ``snn.Leaky(beta=0.9)`` with reset by subtraction and only
  for ``r == 1``, so IF layers cannot be taken there; the same Flatten quirk as Norse.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import snnedu
from snnedu import IF, LIF, MLF, PLIF, PMLF3, Flatten, TimeDistributed, tdBN1d
from snnedu.layers import PerStepBatchNorm
from snnedu.neurons import BaseNeuron

_EXTRA = Path(os.environ.get("SNNEDU_BENCH_EXTRA", Path.home() / ".cache" / "snnedu" / "bench-extra"))
if _EXTRA.is_dir() and str(_EXTRA) not in sys.path:
    sys.path.append(str(_EXTRA))
try:
    import nir
    import norse.torch as norse_torch
    import snntorch as snn
    from snntorch.export_nir import export_to_nir as snntorch_export
    from snntorch.import_nir import import_from_nir as snntorch_import
    from spikingjelly.activation_based import layer as sj_layer
    from spikingjelly.activation_based import neuron as sj_neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir as sj_export
    from spikingjelly.activation_based.nir_exchange import import_from_nir as sj_import
except ImportError as e:  # pragma: no cover - a setup error, reported as a failure, never a skip
    raise ImportError(f"tests/test_nir.py needs the peers of requirements-bench.txt in {_EXTRA}: run "
                      f"`make bench-extra` (make test does it) ({e})") from e

from snnedu.nir import DEFAULT_DT, NIRError, NIRGraphModule, export_nir, import_nir  # noqa: E402

DT = DEFAULT_DT
MARGIN = 1e-4
T, B = 8, 4
td = TimeDistributed
logging.getLogger("spikingjelly").setLevel(logging.ERROR)


# -------------------------------------------------------------------------------------------------
# helpers
# -------------------------------------------------------------------------------------------------
def _neurons(net):
    """``{NIR node key: neuron}`` (the keys export_nir gives)."""
    out = {}
    for name, m in net.named_modules():
        if isinstance(m, BaseNeuron):
            name = name[len("layers."):] if isinstance(net, NIRGraphModule) else name
            out[name.replace(".module", "").replace(".", "_")] = m
    return out


def _run_snnedu(net, x):
    """Multi-step run with recording: ``(output, {key: (h_seq, v_seq)}, {key: neuron})``."""
    neurons = _neurons(net)
    for m in neurons.values():
        m.record = True
    with torch.no_grad():
        out = net(x)
    return out, {k: (m.h_seq, m.v_seq) for k, m in neurons.items()}, neurons


def _margin(neurons, traces) -> float:
    """Smallest |H - theta| over all neurons, steps and (multi-level) levels."""
    best = float("inf")
    for k, m in neurons.items():
        h = traces[k][0]
        sample_ndim = h.dim() - 2 - (1 if m.levels > 1 else 0)
        th = m.threshold(sample_ndim, like=h)
        th = th.detach() if isinstance(th, torch.Tensor) else th
        best = min(best, float((h - th).abs().min()))
    return best


def _tie_free_input(net, shape, scale=3.0, offset=0.0):
    """The first seed whose input keeps every potential at least MARGIN away from its threshold."""
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        x = torch.rand((T, *shape), generator=g) * scale + offset
        out, traces, neurons = _run_snnedu(net, x)
        if _margin(neurons, traces) > MARGIN:
            return x, out, traces, neurons
    raise AssertionError("no tie-free input found among 40 seeds")


def _levels(key, neurons, traces):
    """``{peer node key: snnedu v_seq}``: one entry per layer, or per level of a multi-level unit."""
    m, v = neurons[key], traces[key][1]
    if m.levels == 1:
        return {key: v}
    return {f"{key}_level{k}": v[:, k] for k in range(m.levels)}


def _expected_v(neurons, traces):
    out = {}
    for k in neurons:
        out.update(_levels(k, neurons, traces))
    return out


def _compare(name, out, ref_out, pots, ref_pots, scale=None):
    assert out.shape == ref_out.shape, (name, out.shape, ref_out.shape)
    assert torch.equal(out.float(), ref_out.float()), f"{name}: spikes differ in {int((out != ref_out).sum())} places"
    assert set(pots) == set(ref_pots), (set(pots), set(ref_pots))
    for k, v in pots.items():
        ref = ref_pots[k] if scale is None or k not in scale else ref_pots[k] * scale[k]
        torch.testing.assert_close(v.float(), ref.float(), atol=1e-5 * (1 if scale is None or k not in scale
                                                                         else scale[k]), rtol=1e-6,
                                   msg=lambda m: f"{name}, layer {k}: {m}")


def _activity(out):
    """The output must carry spikes, and not all of them, or the comparison proves little."""
    frac = float((out > 0).float().mean())
    assert 0.02 < frac < 0.98, f"output spike fraction {frac}"


def _stepwise(m, x, keys, potential):
    """Run an imported module step by step: its outputs [T, ...] and, per key, ``potential(m, state, key)``."""
    state, outs, pots = None, [], {k: [] for k in keys}
    with torch.no_grad():
        for x_t in x:
            o, state = m(x_t, state)
            outs.append(o)
            for k in keys:
                pots[k].append(potential(m, state, k))
    return torch.stack(outs), {k: torch.stack(v) for k, v in pots.items()}


def _run_sj(graph, x, keys):
    return _stepwise(sj_import(graph, dt=DT), x, keys, lambda m, state, k: state[k][0])


def _run_norse(graph, x, keys):
    return _stepwise(norse_torch.from_nir(graph, dt=DT, ignore_warnings=True), x, keys,
                     lambda m, state, k: state.state[k][0].v)


def _run_snntorch(graph, x, keys):
    return _stepwise(snntorch_import(graph), x, keys, lambda m, state, k: m.get_submodule(k).mem.clone())


def _trained_bn(bn):
    """A batch norm with non-trivial running statistics and affine parameters (as after training)."""
    with torch.no_grad():
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        if bn.weight is not None:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.4)
    return bn


# -------------------------------------------------------------------------------------------------
# networks: name -> (builder, per-sample input shape, input scale)
# -------------------------------------------------------------------------------------------------
def _mlp(n1, n2, n_in=12, hidden=16, n_out=10, bias=True, gain=2.0):
    net = nn.Sequential(td(nn.Linear(n_in, hidden, bias=bias)), n1, td(nn.Linear(hidden, n_out, bias=bias)), n2)
    with torch.no_grad():   # larger weights than nn.Linear's default, so that both layers spike
        net[0].module.weight.mul_(gain)
        net[2].module.weight.mul_(gain)
    return net


def net_if():
    return _mlp(IF(v_threshold=1.0), IF(v_threshold=0.8)), (12,), 1.5


def net_lif_a():
    return _mlp(LIF(tau=2.0), LIF(tau=3.0, v_threshold=0.5), gain=3.0), (12,), 3.0


def net_lif_b():
    """Form B: the STBP LIF, and a PLIF with decay_input=False."""
    b = PLIF(tau_init=3.0, decay_input=False, v_threshold=0.7)
    with torch.no_grad():
        b.decay_param.w.fill_(-0.81)
    return _mlp(LIF.stbp(decay=0.25, v_threshold=0.6), b), (12,), 1.5


def net_plif_layer():
    a, b = PLIF(tau_init=2.0, detach_reset=True), PLIF(tau_init=3.0, v_threshold=0.5)
    with torch.no_grad():           # "trained" values, not the initial ones
        a.decay_param.w.fill_(0.37)
        b.decay_param.w.fill_(-0.81)
    return _mlp(a, b, gain=3.0), (12,), 3.0


def net_learned_threshold():
    a, b = LIF(tau=2.0, learn_threshold=True), LIF(tau=2.0, learn_threshold=True)
    with torch.no_grad():
        a.threshold_param.w.fill_(0.83)
        b.threshold_param.w.fill_(0.61)
    return _mlp(a, b), (12,), 3.0


def net_v_reset():
    return _mlp(LIF(tau=2.0, v_reset=-0.2), IF(v_threshold=0.7, v_reset=-0.1)), (12,), 3.0


def net_per_neuron():
    a = PLIF(tau_init=2.0, per_neuron=True, shape=(16,), tau_std=0.5, learn_threshold="neuron", threshold_noise=0.1)
    b = PLIF(tau_init=3.0, per_neuron=True, shape=(10,), tau_std=0.5)
    return _mlp(a, b, gain=3.0), (12,), 3.0


def net_cnn():
    """Conv -> BN (folded) -> LIF -> AvgPool -> Flatten -> Linear -> tdBN (folded) -> LIF -> Linear -> LIF."""
    net = nn.Sequential(td(nn.Conv2d(2, 4, 3, padding=1, bias=False)), td(_trained_bn(nn.BatchNorm2d(4))),
                        LIF(tau=2.0, v_threshold=0.3), td(nn.AvgPool2d(2)), Flatten(), td(nn.Linear(4 * 3 * 3, 12)),
                        _trained_bn(tdBN1d(12, 0.5)), LIF(tau=2.0, v_threshold=0.3), td(nn.Linear(12, 6)),
                        IF(v_threshold=0.5))
    return net.eval(), (2, 6, 6), 2.0


def net_cnn_norse():
    """As net_cnn without pooling (Norse has no AvgPool2d); run with batch size 1 (Norse's Flatten)."""
    net = nn.Sequential(td(nn.Conv2d(2, 4, 3, padding=1)), PerStepBatchNorm(_trained_bn(nn.BatchNorm2d(4))),
                        LIF(tau=2.0, v_threshold=0.3), Flatten(), td(nn.Linear(4 * 6 * 6, 12)),
                        LIF(tau=2.0, v_threshold=0.3))
    return net.eval(), (2, 6, 6), 2.0


def net_mlf():
    return nn.Sequential(td(nn.Linear(12, 16)), MLF(K=3, v_threshold=0.6, a=1.0, decay=0.25),
                         td(nn.Linear(16, 10)), PMLF3(K=2, v_threshold=0.5)), (12,), 3.0


NETS = {f.__name__[4:]: f for f in (net_if, net_lif_a, net_lif_b, net_plif_layer, net_learned_threshold,
                                     net_v_reset, net_per_neuron, net_cnn, net_cnn_norse, net_mlf)}


def _setup(name, batch=B):
    torch.manual_seed(0)
    net, shape, scale = NETS[name]()
    net.eval()
    x, out, traces, neurons = _tie_free_input(net, (batch, *shape), scale)
    _activity(out)
    return net, shape, x, out, traces, neurons


# -------------------------------------------------------------------------------------------------
# the mapping itself
# -------------------------------------------------------------------------------------------------
def test_mapping_of_neuron_parameters():
    net = nn.Sequential(td(nn.Linear(3, 2)), IF(v_threshold=0.9), td(nn.Linear(2, 2)), LIF(tau=2.5, v_reset=-0.1),
                        td(nn.Linear(2, 2)), LIF.stbp(decay=0.25, v_threshold=0.6))
    g = export_nir(net, dt=1e-3)
    n_if, n_a, n_b = g.nodes["1"], g.nodes["3"], g.nodes["5"]
    assert isinstance(n_if, nir.IF) and np.allclose(n_if.r, 1e3) and np.allclose(n_if.v_threshold, 0.9)
    assert isinstance(n_a, nir.LIF) and np.allclose(n_a.tau, 2.5e-3) and np.allclose(n_a.r, 1.0)
    assert np.allclose(n_a.v_leak, -0.1) and np.allclose(n_a.v_reset, -0.1)
    assert np.allclose(n_b.tau, 1e-3 / 0.75) and np.allclose(n_b.r, 1 / 0.75) and np.allclose(n_b.v_leak, 0.0)
    assert n_if.r.shape == (2,) and g.edges[0] == ("input", "0")


@pytest.mark.parametrize("name", ["if", "lif_a", "lif_b", "plif_layer", "learned_threshold", "v_reset", "per_neuron",
                                  "cnn", "cnn_norse", "mlf"])
def test_snnedu_round_trip_through_a_file(name, tmp_path):
    """export -> nir.write -> nir.read -> import_nir: the same spikes and potentials as the original."""
    net, shape, x, out, traces, neurons = _setup(name)
    path = tmp_path / "net.nir"
    nir.write(path, export_nir(net, input_shape=shape))
    net2 = import_nir(path)
    assert isinstance(net2, NIRGraphModule if name == "mlf" else nn.Sequential)
    out2, traces2, neurons2 = _run_snnedu(net2, x)
    assert _margin(neurons2, traces2) > MARGIN / 2
    _compare(name, out2, out, _expected_v(neurons2, traces2), _expected_v(neurons, traces))


# -------------------------------------------------------------------------------------------------
# snnedu -> NIR -> SpikingJelly
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["if", "lif_a", "lif_b", "plif_layer", "learned_threshold", "v_reset", "cnn", "mlf"])
def test_spikingjelly_imports_snnedu_export(name):
    net, shape, x, out, traces, neurons = _setup(name)
    ref = _expected_v(neurons, traces)
    got_out, got = _run_sj(export_nir(net, input_shape=shape), x, list(ref))
    _compare(f"spikingjelly/{name}", got_out, out, got, ref)


def test_spikingjelly_documents_uniform_parameters_only():
    net, shape, *_ = _setup("per_neuron")
    with pytest.raises(ValueError, match="uniform"):
        sj_import(export_nir(net, input_shape=shape), dt=DT)


# -------------------------------------------------------------------------------------------------
# snnedu -> NIR -> Norse
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["if", "lif_a", "plif_layer", "learned_threshold", "per_neuron", "cnn_norse"])
def test_norse_imports_snnedu_export(name):
    batch = 1 if name == "cnn_norse" else B      # Norse's Flatten(start_dim=0) also flattens the batch
    net, shape, x, out, traces, neurons = _setup(name, batch)
    ref = _expected_v(neurons, traces)
    got_out, got = _run_norse(export_nir(net, input_shape=shape), x if batch > 1 else x[:, 0], list(ref))
    if batch == 1:
        got_out, got = got_out.unsqueeze(1), {k: v.unsqueeze(1) for k, v in got.items()}
    _compare(f"norse/{name}", got_out, out, got, ref)


@pytest.mark.parametrize("name", ["lif_b", "v_reset"])
def test_norse_documents_ignored_r_and_v_reset(name):
    """Norse takes every LIF as Form A (r = 1) and resets to 0: a Form-B or v_reset != 0 network differs."""
    net, shape, x, out, traces, neurons = _setup(name)
    ref = _expected_v(neurons, traces)
    got_out, got = _run_norse(export_nir(net, input_shape=shape), x, list(ref))
    assert any(not torch.allclose(got[k], ref[k], atol=1e-3) for k in ref)


# -------------------------------------------------------------------------------------------------
# snnedu -> NIR -> snnTorch
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lif_a", "lif_b", "plif_layer", "learned_threshold", "mlf"])
def test_snntorch_imports_snnedu_export(name):
    net, shape, x, out, traces, neurons = _setup(name)
    ref = _expected_v(neurons, traces)
    graph = export_nir(net, input_shape=shape)
    # Form A (r = 1): snnTorch moves the input gain dt/tau into the threshold, so its potential is tau/dt times ours
    scale = {k: float(np.unique(graph.nodes[k].tau)[0] / DT) for k in ref
             if isinstance(graph.nodes[k], nir.LIF) and np.allclose(graph.nodes[k].r, 1.0)}
    got_out, got = _run_snntorch(graph, x, list(ref))
    _compare(f"snntorch/{name}", got_out, out, got, ref, scale=scale)


def test_snntorch_documents_unsupported_if():
    """snnTorch imports nir.IF only with r == 1 (and then as a leaky neuron); snnedu's IF has r = 1/dt."""
    net, shape, *_ = _setup("if")
    with pytest.raises(AssertionError, match="r != 1"):
        snntorch_import(export_nir(net, input_shape=shape))


# -------------------------------------------------------------------------------------------------
# the reverse direction: graphs exported by snnTorch and SpikingJelly, run in snnedu
# -------------------------------------------------------------------------------------------------
def _pick_input(net_snnedu, shape, scale):
    for seed in range(40):
        x = torch.rand((T, *shape), generator=torch.Generator().manual_seed(seed)) * scale
        out, traces, neurons = _run_snnedu(net_snnedu, x)
        if _margin(neurons, traces) > MARGIN:
            return x, out, traces, neurons
    raise AssertionError("no tie-free input found")


def test_snnedu_imports_snntorch_export():
    torch.manual_seed(0)
    # snnTorch writes a scalar beta/threshold as shape-() NIR parameters, which nir 1.0.8's type check
    # rejects, and a batched sample as an input type [B, 12]: so per-neuron tensors and one unbatched sample
    def leaky(n, beta, th):
        return snn.Leaky(beta=torch.full((n,), beta), threshold=torch.full((n,), th), reset_mechanism="zero",
                         init_hidden=True)
    peer = nn.Sequential(nn.Linear(12, 16), leaky(16, 0.8, 0.7), nn.Linear(16, 10), leaky(10, 0.5, 0.5))
    with torch.no_grad():
        for i in (0, 2):
            peer[i].weight.mul_(2.0)
    graph = snntorch_export(peer, torch.zeros(12))
    net = import_nir(graph)
    x, out, traces, neurons = _pick_input(net, (B, 12), 3.0)
    _activity(out)
    for m in peer.modules():
        if isinstance(m, snn.Leaky):
            m.reset_mem()
    with torch.no_grad():
        ref = torch.stack([peer(x_t) for x_t in x])
    assert torch.equal(out, ref)
    assert isinstance(net[1], LIF) and not net[1].decay_input and abs(net[1].decay - 0.8) < 1e-6
    for k, m in neurons.items():   # last potentials: snnTorch (reset_delay=True) keeps the one before reset
        assert torch.allclose(traces[k][0][-1], peer.get_submodule(k).mem, atol=1e-5)


def test_snnedu_imports_spikingjelly_export():
    torch.manual_seed(0)
    peer = nn.Sequential(sj_layer.Linear(12, 16), sj_neuron.LIFNode(tau=2.5, v_threshold=0.8),
                         sj_layer.Linear(16, 10, bias=False), sj_neuron.LIFNode(tau=3.0, decay_input=False),
                         sj_layer.Linear(10, 8), sj_neuron.IFNode(v_threshold=0.5))
    graph = sj_export(peer, torch.zeros(B, 12), dt=DT)
    net = import_nir(graph)
    x, out, traces, neurons = _pick_input(net, (B, 12), 3.0)
    _activity(out)
    from spikingjelly.activation_based import functional as sj_functional
    sj_functional.reset_net(peer)
    with torch.no_grad():
        ref = torch.stack([peer(x_t) for x_t in x])
    assert torch.equal(out, ref)
    for k, m in neurons.items():   # potentials after the last step
        assert torch.allclose(traces[k][1][-1], peer.get_submodule(k.lstrip("_")).v, atol=1e-5)


# -------------------------------------------------------------------------------------------------
# what NIR cannot express, and what import_nir cannot take
# -------------------------------------------------------------------------------------------------
def test_clear_errors_on_export():
    with pytest.raises(NIRError, match=r"layer 1 \(LIF\).*soft reset"):
        export_nir(_mlp(LIF(v_reset=None), LIF()))
    with pytest.raises(NIRError, match=r"layer 1 \(MaxPool2d\).*max pooling"):
        export_nir(nn.Sequential(td(nn.Conv2d(1, 2, 3)), td(nn.MaxPool2d(2)), LIF()), input_shape=(1, 8, 8))
    with pytest.raises(NIRError, match=r"layer 0 \(BatchNorm1d\).*no Linear/Conv"):
        export_nir(nn.Sequential(td(nn.BatchNorm1d(4)), LIF()), input_shape=(4,))
    with pytest.raises(NIRError, match=r"_Residual\).*not a plain chain"):
        export_nir(_Residual(), input_shape=(4,))
    with pytest.raises(NIRError, match="input_shape"):
        export_nir(nn.Sequential(td(nn.Conv2d(1, 2, 3)), LIF()))
    with pytest.raises(NIRError, match="no shape yet"):
        export_nir(_mlp(PLIF(per_neuron=True), LIF()))
    with pytest.raises(NIRError, match="dt"):
        export_nir(_mlp(LIF(), LIF()), dt=0)


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(4, 4), LIF()

    def forward(self, x):
        return self.lif(x + self.fc(x))


def test_detach_reset_and_dropout_are_ignored():
    a = export_nir(nn.Sequential(td(nn.Linear(4, 3)), snnedu.SeqDropout(0.5), LIF(detach_reset=True)))
    b = export_nir(nn.Sequential(td(nn.Linear(4, 3)), LIF()))
    assert [type(n).__name__ for n in a.nodes.values()] == [type(n).__name__ for n in b.nodes.values()]


def test_clear_errors_on_import():
    z = np.zeros(3)
    cuba = nir.NIRGraph.from_list(nir.CubaLIF(tau_syn=z + 1e-3, tau_mem=z + 1e-3, r=z + 1, v_leak=z, v_threshold=z + 1))
    with pytest.raises(NIRError, match="CubaLIF.*no snnedu equivalent"):
        import_nir(cuba)
    with pytest.raises(NIRError, match="r = 1/dt"):
        import_nir(nir.NIRGraph.from_list(nir.IF(r=z + 1, v_threshold=z + 1)))
    lif = nir.LIF(tau=z + 2e-4, r=z + 1, v_leak=z + 0.5, v_threshold=z + 1, v_reset=z)
    with pytest.raises(NIRError, match="v_leak"):
        import_nir(nir.NIRGraph.from_list(lif))
    rec = nir.NIRGraph(nodes={"input": nir.Input(np.array([3])), "lif": nir.LIF(tau=z + 2e-4, r=z + 1, v_leak=z,
                                                                               v_threshold=z + 1),
                              "w": nir.Linear(np.eye(3)), "output": nir.Output(np.array([3]))},
                       edges=[("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")])
    with pytest.raises(NIRError, match="recurrent"):
        import_nir(rec)
