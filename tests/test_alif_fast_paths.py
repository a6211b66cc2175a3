"""ALIF's fast paths (snnedu.kernels.alif_cpu, numba; snnedu.kernels.alif_triton, Triton under the
interpreter) against its reference loop (the family's declared step run by
snnedu.functional.state_multistep): spikes and both state variables exactly, gradients to the input,
the initial state, a learned leak and learned thresholds within float rounding; and ALIF under
torch.compile (its fast path runs eagerly inside the compiled network)."""
import os

import pytest
import torch

import snnedu
from snnedu import ALIF, kernels
from snnedu.alif import ALIF_FAMILY, alif_step
from snnedu.functional import state_multistep
from snnedu.kernels import alif_cpu, use_backend

try:
    import triton  # noqa: F401
    HAS_TRITON = True
except ImportError:  # pragma: no cover - triton is in the requirements
    HAS_TRITON = False

BACKENDS = ["cpu", pytest.param("triton", marks=pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed"))]

# (decay_input, v_reset, detach_reset, surrogate, learn_threshold): every option at least twice
CASES = [
    (True, 0.0, False, "atan", False),
    (False, 0.0, True, "sigmoid", "neuron"),
    (True, None, False, "triangle", True),
    (True, None, True, "rect", "neuron"),
    (False, -0.3, False, "atan", True),
    (True, -0.3, True, "sigmoid", False),
    (False, None, False, "rect", False),
    (True, 0.0, False, "triangle", "neuron"),
]


@pytest.fixture
def backend(request):
    """The backend under test; Triton runs with its interpreter on CPU tensors."""
    name = request.param
    old = os.environ.get("TRITON_INTERPRET")
    if name == "triton":
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield name
    finally:
        if old is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = old


def _run(module, x, w, backend):
    with use_backend(backend):
        xx = x.clone().requires_grad_(True)
        module.zero_grad()
        s = module(xx)
        (s * w).sum().backward()
    params = {n: p.grad.clone() for n, p in module.named_parameters()}
    return s.detach(), xx.grad, params


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("decay_input,v_reset,detach,surrogate,learn", CASES)
def test_module_on_the_fast_path_equals_the_reference(backend, decay_input, v_reset, detach, surrogate, learn):
    torch.manual_seed(0)
    m = ALIF(tau=2.0, tau_a=10.0, beta=0.3, decay_input=decay_input, v_reset=v_reset, detach_reset=detach,
             surrogate=surrogate, learn_threshold=learn, threshold_noise=0.1 if learn == "neuron" else 0.0)
    x = torch.randn(16, 3, 45) * 0.8 + 0.9
    w = torch.randn(16, 3, 45)
    assert kernels.chosen_backend(x, m.surrogate, family=ALIF_FAMILY) == "cpu"     # auto, on CPU
    s_ref, g_ref, p_ref = _run(m, x, w, "reference")
    s_fast, g_fast, p_fast = _run(m, x, w, backend)
    assert 0.03 < s_ref.mean() < 0.9                      # a regime where both adaptation and reset act
    assert torch.equal(s_fast, s_ref)
    torch.testing.assert_close(g_fast, g_ref, atol=1e-5, rtol=1e-4)
    assert p_ref.keys() == p_fast.keys() and bool(learn) == bool(p_ref)
    for name in p_ref:
        torch.testing.assert_close(p_fast[name], p_ref[name], atol=1e-4, rtol=1e-4)


def _fast(backend):
    if backend == "cpu":
        return alif_cpu.alif_cpu_multistep
    from snnedu.kernels import alif_triton
    return alif_triton.alif_triton_multistep


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
@pytest.mark.parametrize("decay_input,v_reset", [(True, 0.0), (False, None)])
def test_direct_call_with_a_state_and_a_learned_leak(backend, decay_input, v_reset):
    """The fast path itself, with a given initial (V, A), a per-neuron leak and a per-layer threshold
    that learn: the final state and the gradients to all five inputs."""
    torch.manual_seed(1)
    T, B, N = 12, 3, 20
    sg = snnedu.get_surrogate("atan")

    def leaves():
        torch.manual_seed(2)
        return [t.requires_grad_(True) for t in (torch.randn(T, B, N) * 0.8 + 0.6, torch.rand(B, N) * 0.5,
                                                 torch.rand(B, N) * 2, torch.rand(N) * 0.5 + 0.2,
                                                 torch.tensor(0.9))]

    out = {}
    for which in ("reference", backend):
        x, v0, a0, k, th = leaves()
        params = dict(surrogate=sg, k=k, v_threshold=th, beta=0.25, rho=0.8, v_reset=v_reset,
                      decay_input=decay_input, detach_reset=False)
        if which == "reference":
            s, (v, a), _ = state_multistep(alif_step, x, (v0, a0), **params)
        else:
            s, (v, a) = _fast(backend)(x, (v0, a0), **params)
        torch.manual_seed(3)
        loss = (s * torch.randn_like(s)).sum() + (v * torch.randn_like(v)).sum() + (a * torch.randn_like(a)).sum()
        loss.backward()
        out[which] = (s.detach(), v.detach(), a.detach(), [t.grad for t in (x, v0, a0, k, th)])
    ref, fast = out["reference"], out[backend]
    assert ref[0].sum() > 0
    for r, f in zip(ref[:3], fast[:3]):
        assert torch.equal(r, f)
    for name, r, f in zip(("x", "v0", "a0", "k", "v_threshold"), ref[3], fast[3]):
        assert r.abs().sum() > 0, name
        torch.testing.assert_close(f, r, atol=1e-4, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


def test_nan_input_is_found_by_the_cpu_kernel():
    x = torch.rand(5, 2, 3)
    x[3, 1, 2] = float("inf")
    with use_backend("cpu"), pytest.raises(snnedu.errors.InputError, match="ALIF"):
        ALIF()(x)


def test_alif_network_under_torch_compile_equals_eager():
    """torch.compile of a network with ALIF: the fast path runs eagerly inside the compiled network (a
    graph break), so values equal eager's, at two T."""
    torch.manual_seed(4)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), ALIF(beta=0.3, tau_a=8.0), torch.nn.Linear(8, 3),
                              snnedu.LIF(tau=2.0))
    compiled = torch.compile(net, backend="aot_eager")
    for T in (4, 7):
        x = torch.rand(T, 2, 6) * 2
        eager = net(x)
        out = compiled(x)
        assert torch.equal(out, eager)
        g_eager, = torch.autograd.grad(eager.sum(), net[0].weight)
        g_out, = torch.autograd.grad(compiled(x).sum(), net[0].weight)
        torch.testing.assert_close(g_out, g_eager, atol=1e-6, rtol=1e-6)
