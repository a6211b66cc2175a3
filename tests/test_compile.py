"""torch.compile on the CPU fast path: the fused numba kernels are the operators
``snnedu::cpu_multistep`` / ``snnedu::cpu_multistep_backward`` (:mod:`snnedu.kernels.cpu`), with fake
implementations and a registered backward, so dynamo traces a whole network into one graph
(``fullgraph=True``) and the compiled network gives eager's spikes exactly and its gradients to float
rounding, at several T (the second T recompiles with a symbolic T: the fake implementations are checked
with dynamic shapes too).

The tests use the ``aot_eager`` backend (dynamo + AOTAutograd, the part that must understand the
operators; ~5 s here). Inductor works as well: on 2 CPU cores the first compile of the test network,
forward and backward, took ~40 s with a cold cache (~7 s more for the recompile at a second T) and ~3 s
with a warm one; spikes equal eager's, parameter gradients within 3e-7. That check is
:func:`check_inductor_compiled_network_equals_eager`, run by hand (too slow for the suite).

TorchScript (measured with torch 2.14):

- ``torch.jit.trace(net, x)`` works on the CPU fast path (the traced graph calls the operator; another T
  gives the same values as eager, backward works, ``torch.jit.save`` works; load needs ``import snnedu``
  first, which registers the operators). Before the operators, it failed inside numba (traced sizes are
  tensors). What a trace freezes, as any trace does: the backend picked at trace time (the CPU operator
  has only a CPU kernel), ``record=True`` (the reference loop, unrolled for the traced T), and the
  single-step ``.step()`` state, which lives in Python attributes.
- ``torch.jit.script`` does not support the neuron modules: it stops at the first Python feature it
  lacks (``**kwargs`` expansion in ``BaseNeuron.forward``), and the modules are Python throughout
  (backend dispatch, lazily shaped parameters). TorchScript is deprecated in PyTorch (``torch.jit.save``
  warns to use ``torch.export``); ``torch.compile`` is the supported way.
- The Triton path is registered the same way (``snnedu::triton_multistep`` and its backward): a network
  forced onto it compiles in one graph and equals eager (tests/test_triton_kernels.py, under the interpreter).
"""
import copy
import gc
import io
import os

import pytest
import torch

import snnedu
from snnedu import kernels
from snnedu.errors import InputError

pytestmark = pytest.mark.skipif(not kernels.cpu.available(), reason="the CPU fast path needs numba")


def _net():
    torch.manual_seed(0)

    def lin(a, b):
        layer = torch.nn.Linear(a, b)
        torch.nn.init.uniform_(layer.weight, -0.2, 0.8)   # positive on average: every layer fires
        return layer

    net = torch.nn.Sequential(
        lin(6, 8), snnedu.LIF(tau=2.0),
        lin(8, 8), snnedu.PLIF(tau_init=2.0),                                   # per layer
        lin(8, 8), snnedu.PLIF(per_neuron=True, tau_std=0.3, v_reset=None),     # per neuron, soft reset
        lin(8, 4), snnedu.MLF(K=3, learn_threshold="neuron"))                   # K levels, learned thresholds
    net(torch.zeros(1, 1, 6))                  # shape the lazily shaped (per-neuron) parameters
    return net


@pytest.fixture(scope="module")
def nets():
    graphs = []
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def backend(gm, example_inputs):           # aot_eager, keeping the graphs dynamo hands over
        graphs.append(gm)
        return aot_eager(gm, example_inputs)

    torch._dynamo.reset()
    eager = _net()
    held = [eager, torch.compile(copy.deepcopy(eager), backend=backend, fullgraph=True), graphs]
    yield held
    held.clear()                               # pytest keeps the fixture's value: free what it holds
    graphs.clear()
    _forget_compiled()


def _forget_compiled():
    """Drop dynamo's caches and free what they held (the fake tensors of a compile take more than one
    garbage collection): test_state.py counts live tensors, maybe in the same process."""
    torch._dynamo.reset()
    for _ in range(5):
        if not gc.collect():
            break


def _run(net, x, w):
    net.zero_grad()
    x = x.clone().requires_grad_(True)
    out = net(x)
    (out * w).sum().backward()
    return out, x.grad, [p.grad for p in net.parameters()]


@pytest.mark.parametrize("T", [3, 5])
def test_compiled_network_equals_eager(nets, T):
    eager, compiled, graphs = nets
    assert kernels.chosen_backend(torch.zeros(T, 2, 6), snnedu.ATan()) == "cpu"
    g = torch.Generator().manual_seed(T)
    x = torch.rand(T, 4, 6, generator=g) * 3
    w = torch.randn(T, 4, 4, generator=g)
    out_e, gx_e, grads_e = _run(eager, x, w)
    out_c, gx_c, grads_c = _run(compiled, x, w)
    assert 0 < out_e.sum() and out_e.max() >= 2                    # the MLF levels above the first fire
    assert out_c.shape == out_e.shape and out_c.dtype == out_e.dtype
    assert torch.equal(out_c, out_e)                               # spikes: exactly
    torch.testing.assert_close(gx_c, gx_e, rtol=1e-5, atol=1e-7)
    names = [n for n, _ in eager.named_parameters()]
    assert len(grads_e) == len(grads_c) == 11                       # 4 Linear x 2, 2 PLIF w, MLF threshold
    for name, a, b in zip(names, grads_e, grads_c):
        assert a is not None and b is not None, name
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7, msg=name)
    assert any(a.abs().sum() > 0 for a in grads_e[8:])              # the neurons' own parameters learn
    # one graph per compile (fullgraph), calling the fused operator, never the numba code itself
    assert graphs and all("snnedu.cpu_multistep" in str(gm.graph) for gm in graphs)


def test_compiled_network_reports_non_finite_input(nets):
    _, compiled, _ = nets
    x = torch.rand(3, 4, 6)
    x[1, 2, 3] = float("nan")
    with pytest.raises(InputError, match="LIF got non-finite input: 8 NaN"):
        compiled(x)


def test_operators_pass_opcheck():
    # schema, fake implementation, autograd registration and AOT dispatch with dynamic shapes
    x = (torch.rand(4, 2, 5) * 2).requires_grad_(True)
    v0 = torch.zeros(3, 2, 5, requires_grad=True)
    k = torch.full((5,), 0.3, requires_grad=True)                 # per neuron, shared by the levels
    th = (torch.tensor([0.6, 1.6, 2.6]).view(3, 1, 1) + torch.zeros(1, 1, 5)).requires_grad_(True)
    result = torch.library.opcheck(torch.ops.snnedu.cpu_multistep.default,
                                   (x, v0, k, th, 0.0, 2, True, False, 0, 1.0, "MLF"))
    assert set(result.values()) == {"SUCCESS"}, result


def test_jit_trace_runs_the_operator():
    net = _net()
    x3, x5 = torch.rand(3, 2, 6) * 3, torch.rand(5, 2, 6) * 3
    traced = torch.jit.trace(net, x3, check_trace=False)
    assert "snnedu::cpu_multistep" in str(traced.inlined_graph)
    assert torch.equal(traced(x3), net(x3)) and torch.equal(traced(x5), net(x5))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    buf.seek(0)
    assert torch.equal(torch.jit.load(buf)(x5), net(x5))


def check_inductor_compiled_network_equals_eager():
    """Inductor (C++ codegen, ~40 s cold on 2 cores, so not in the suite): run by hand with
    ``python -c "import sys; sys.path.insert(0, 'tests'); import test_compile as t;
    t.check_inductor_compiled_network_equals_eager()"``."""
    torch._dynamo.reset()
    try:
        _compare_inductor_with_eager()
    finally:
        _forget_compiled()                     # the compiled network is gone here: free what it held


def _compare_inductor_with_eager():
    eager = _net()
    compiled = torch.compile(copy.deepcopy(eager), fullgraph=True)
    for T in (3, 5):
        g = torch.Generator().manual_seed(T)
        x, w = torch.rand(T, 4, 6, generator=g) * 3, torch.randn(T, 4, 4, generator=g)
        out_e, gx_e, grads_e = _run(eager, x, w)
        out_c, gx_c, grads_c = _run(compiled, x, w)
        assert torch.equal(out_c, out_e)
        for a, b in zip([gx_e, *grads_e], [gx_c, *grads_c]):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
