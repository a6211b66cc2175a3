"""The fused Triton neuron kernels against the reference loop, run on CPU with the Triton interpreter.

Every case compares :func:`snnedu.kernels.triton_neuron.triton_multistep` with
:func:`snnedu.functional.neuron_multistep`: spikes (bit-identical in float32), the last potential, and
the gradients w.r.t. the input, the initial potential and every learnable parameter (leak ``w`` and
threshold ``w`` of the modules, or the raw ``k`` / ``v_threshold`` tensors of direct calls).
Sizes are tiny: the interpreter runs each program in numpy.
"""
import os

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed: the fused GPU kernels cannot be tested")

import snnedu  # noqa: E402
import snnedu.functional as SF  # noqa: E402
from snnedu.kernels import triton_neuron as TN  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _interpreter():
    """Run the kernels with the Triton interpreter (CPU tensors) for this module only."""
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    yield
    if old is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = old


T, B, N = 5, 3, 7
SURROGATES = {"rect": SF.Rectangular(0.8), "sigmoid": SF.Sigmoid(3.0), "atan": SF.ATan(2.5),
              "triangle": SF.Triangle(0.7)}  # non-default widths: catch a dropped parameter
F32 = dict(rtol=1e-5, atol=1e-5)


def _weights(s, v):
    """Random loss weights, representable in the outputs' dtype (so half-precision runs see the same)."""
    ws = torch.randn(s.shape).to(s.dtype)
    wv = torch.randn(v.shape).to(v.dtype)
    return ws, wv


def _run(fn, x, v0, params, leaves, ws=None, wv=None, use_s=True, use_v=True):
    s, v = fn(x, v0, params)
    if ws is None:
        ws, wv = _weights(s, v)
    loss = 0.0
    if use_s:
        loss = loss + (s.float() * ws.float()).sum()
    if use_v:
        loss = loss + (v.float() * wv.float()).sum()
    grads = torch.autograd.grad(loss, leaves, allow_unused=True) if leaves else ()
    return s, v, grads, ws, wv


def _ref(x, v0, params):
    s, v, _ = SF.neuron_multistep(x, v0, **params)
    return s, v


def _tri(x, v0, params):
    return TN.triton_multistep(x, v0, **params)


def _compare(make_params, x, v0=None, leaves=(), dtype=torch.float32, use_s=True, use_v=True):
    """``make_params()`` builds fresh params (their graph to the leaves is used once per path)."""
    leaves = [t for t in leaves if t is not None and t.requires_grad]
    # the reference runs in fp32 on the very values the kernel gets (rounded to `dtype`)
    x_ref = x.detach().to(dtype).float().requires_grad_(x.requires_grad)
    v_ref = None if v0 is None else v0.detach().to(dtype).float().requires_grad_(v0.requires_grad)
    x_tri = x.detach().to(dtype).requires_grad_(x.requires_grad)
    v_tri = None if v0 is None else v0.detach().to(dtype).requires_grad_(v0.requires_grad)
    ins_ref = [t for t in (x_ref, v_ref) if t is not None and t.requires_grad]
    ins_tri = [t for t in (x_tri, v_tri) if t is not None and t.requires_grad]
    s_t, v_t, g_t, ws, wv = _run(_tri, x_tri, v_tri, make_params(), ins_tri + leaves, use_s=use_s, use_v=use_v)
    s_r, v_r, g_r, _, _ = _run(_ref, x_ref, v_ref, make_params(), ins_ref + leaves, ws, wv, use_s, use_v)

    assert s_t.shape == s_r.shape and v_t.shape == v_r.shape
    assert s_t.dtype == dtype and v_t.dtype == dtype
    # same fp32 arithmetic as the reference: identical spikes, also for half inputs (computed in fp32)
    assert torch.equal(s_t.float(), s_r), "spikes differ"
    if dtype == torch.float32:
        torch.testing.assert_close(v_t, v_r, **F32)
    else:
        torch.testing.assert_close(v_t.float(), v_r, rtol=1e-2, atol=1e-2)
    assert len(g_t) == len(g_r)
    for i, (a, b) in enumerate(zip(g_t, g_r)):
        assert (a is None) == (b is None), f"gradient {i}: one path has none"
        if a is None:
            continue
        assert a.shape == b.shape
        if dtype == torch.float32:
            torch.testing.assert_close(a, b, **F32, msg=lambda m: f"gradient {i}: {m}")
        else:
            scale = max(1.0, b.abs().max().item())
            torch.testing.assert_close(a.float(), b, rtol=2e-2, atol=2e-2 * scale,
                                       msg=lambda m: f"gradient {i}: {m}")
    return s_t, s_r


# -------------------------------------------------------------------------------------------------
# 1. exactly what the neuron modules pass (their _params and _rest), gradients to their parameters
# -------------------------------------------------------------------------------------------------

MODULES = {
    "IF-atan": lambda: snnedu.IF(v_threshold=1.0),
    "IF-soft-sigmoid-detach": lambda: snnedu.IF(v_reset=None, surrogate="sigmoid", detach_reset=True),
    "LIF-decay_input-vr-0.5-triangle": lambda: snnedu.LIF(tau=2.0, v_reset=-0.5, surrogate="triangle"),
    "LIF-stbp-rect": lambda: snnedu.LIF.stbp(decay=0.25, v_threshold=0.5),
    "LIF-no-decay_input-soft": lambda: snnedu.LIF(tau=3.0, decay_input=False, v_reset=None),
    "LIF-th-layer-vr-0.5": lambda: snnedu.LIF(tau=2.0, v_reset=-0.5, learn_threshold=True),
    "LIF-th-neuron-soft-detach": lambda: snnedu.LIF(tau=2.0, v_reset=None, detach_reset=True,
                                                    learn_threshold="neuron", threshold_noise=0.1),
    "LIF-stbp-th-neuron-atan": lambda: snnedu.LIF.stbp(decay=0.5, v_threshold=1.0, surrogate="atan",
                                                       learn_threshold="neuron", threshold_noise=0.05),
    "PLIF-layer-detach": lambda: snnedu.PLIF(tau_init=2.0, detach_reset=True),
    "PLIF-neuron-soft-sigmoid": lambda: snnedu.PLIF(tau_init=2.0, per_neuron=True, tau_std=0.3,
                                                    v_reset=None, surrogate="sigmoid"),
    "PLIF-neuron-no-decay_input-th-neuron": lambda: snnedu.PLIF(tau_init=3.0, per_neuron=True, tau_std=0.5,
                                                                decay_input=False, learn_threshold="neuron",
                                                                threshold_noise=0.1),
    "MLF": lambda: snnedu.MLF(K=3, v_threshold=0.6, a=1.0, decay=0.25),
    "MLF-K2-soft-triangle": lambda: snnedu.MLF(K=2, v_reset=None, surrogate="triangle"),
    "PMLF": lambda: snnedu.PMLF(K=3, decay_init=0.25),
    "PMLF-th-layer-vr-0.5": lambda: snnedu.PMLF(K=3, decay_init=0.4, v_reset=-0.5, learn_threshold=True),
    "PMLF3": lambda: snnedu.PMLF3(K=3, decay_init=0.25),
    "PMLF3-th-neuron-detach": lambda: snnedu.PMLF3(K=3, decay_init=0.3, detach_reset=True,
                                                   learn_threshold="neuron", threshold_noise=0.1),
    "PMLF3-soft-atan-th-layer": lambda: snnedu.PMLF3(K=3, v_reset=None, surrogate="atan", learn_threshold=True),
}


def _module_case(name, shape=(T, B, N), dtype=torch.float32, random_v0=False):
    m = MODULES[name]()
    with torch.no_grad():  # learnable parameters away from their symmetric initial values
        for p in m.parameters():
            if not isinstance(p, torch.nn.UninitializedParameter):
                p.add_(0.1 * torch.randn_like(p))
    sample = shape[2:]
    m._prepare(sample)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    scale = 2.0 if m.levels > 1 else 1.0
    x = (torch.randn(shape) * scale + 0.4).requires_grad_()
    v0 = m._rest(x[0])
    if random_v0:
        state = x.shape[1:] if m.levels == 1 else (m.levels, *x.shape[1:])
        v0 = (0.3 * torch.randn(state)).requires_grad_()
    _compare(lambda: m._params(len(sample), x), x, v0, list(m.parameters()), dtype)


@pytest.mark.parametrize("name", list(MODULES))
def test_modules_fp32(name):
    _module_case(name)


@pytest.mark.parametrize("name", ["LIF-th-neuron-soft-detach", "PLIF-neuron-soft-sigmoid", "PMLF3-th-neuron-detach"])
def test_modules_conv_shape_and_initial_potential(name):
    """A [C, H, W] sample and a random initial potential (gradient w.r.t. v0 too)."""
    _module_case(name, shape=(4, 2, 2, 2, 3), random_v0=True)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", ["IF-soft-sigmoid-detach", "PLIF-neuron-no-decay_input-th-neuron", "PMLF3"])
def test_modules_half(name, dtype):
    _module_case(name, dtype=dtype)


# -------------------------------------------------------------------------------------------------
# 2. direct calls: every charge form x reset x detach_reset x surrogate, per-neuron k and threshold
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sg", list(SURROGATES))
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
@pytest.mark.parametrize("v_reset", [0.0, -0.5, None], ids=["hard0", "hard-0.5", "soft"])
@pytest.mark.parametrize("charge", ["IF", "decay_input", "plain"])
def test_direct_grid(charge, v_reset, detach, sg):
    k = None if charge == "IF" else (0.2 + 0.6 * torch.rand(N)).requires_grad_()
    th = (0.8 + 0.4 * torch.rand(N)).requires_grad_()
    x = (torch.randn(T, B, N) + 0.5).requires_grad_()
    v0 = (0.3 * torch.randn(B, N)).requires_grad_()
    params = dict(surrogate=SURROGATES[sg], k=k, v_threshold=th, v_reset=v_reset,
                  decay_input=charge != "plain", detach_reset=detach)
    _compare(lambda: params, x, v0, [k, th])


@pytest.mark.parametrize("sg", list(SURROGATES))
def test_direct_levels_per_level_params(sg):
    """K = 3 levels with per-level k [K, 1, 1] and a per-level, per-neuron threshold [K, 1, N]."""
    K = 3
    k = torch.tensor([0.3, 0.5, 0.7]).view(K, 1, 1).requires_grad_()
    th = (torch.arange(K).view(K, 1, 1) + 0.6 + 0.2 * torch.rand(K, 1, N)).requires_grad_()
    x = (2 * torch.randn(T, B, N) + 0.5).requires_grad_()
    v0 = (0.3 * torch.randn(K, B, N)).requires_grad_()
    params = dict(surrogate=SURROGATES[sg], k=k, v_threshold=th, v_reset=0.0, decay_input=False,
                  detach_reset=False)
    _compare(lambda: params, x, v0, [k, th])


@pytest.mark.parametrize("k_kind", ["float", "layer", "neuron"])
def test_direct_k_granularity_and_float_threshold(k_kind):
    k = {"float": 0.4, "layer": torch.tensor(0.4, requires_grad=True),
         "neuron": (0.2 + 0.6 * torch.rand(N)).requires_grad_()}[k_kind]
    x = (torch.randn(T, B, N) + 0.5).requires_grad_()
    params = dict(surrogate=SF.ATan(), k=k, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False)
    _compare(lambda: params, x, None, [k] if isinstance(k, torch.Tensor) else [])


@pytest.mark.parametrize("use", ["spikes", "v_last"])
def test_only_one_output_used(use):
    """Backward with grad_spikes or grad_v_last absent (None)."""
    k = torch.tensor(0.5, requires_grad=True)
    th = torch.tensor(0.9, requires_grad=True)
    x = (torch.randn(T, B, N) + 0.5).requires_grad_()
    params = dict(surrogate=SF.Sigmoid(), k=k, v_threshold=th, v_reset=None, decay_input=True, detach_reset=False)
    _compare(lambda: params, x, None, [k, th], use_s=use == "spikes", use_v=use == "v_last")


def test_edge_shapes():
    """No sample axes ([T, B]), a single step, an explicit level count with v0=None, a [1, B, N] v0."""
    sg = SF.Triangle()
    x = (torch.randn(T, B) + 0.5).requires_grad_()
    _compare(lambda: dict(surrogate=sg, k=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True,
                          detach_reset=False), x, None)
    x1 = (torch.randn(1, B, N) + 0.8).requires_grad_()
    _compare(lambda: dict(surrogate=sg, k=None, v_threshold=1.0, v_reset=0.0, decay_input=True,
                          detach_reset=False), x1, None)
    x = (torch.randn(T, B, N) + 0.8).requires_grad_()
    p = dict(surrogate=sg, k=0.5, v_threshold=1.0, v_reset=-0.2, decay_input=False, detach_reset=False)
    s, v = TN.triton_multistep(x, None, levels=3, **p)
    s_r, v_r, _ = SF.neuron_multistep(x, torch.full((3, B, N), -0.2), **p)
    assert torch.equal(s, s_r)
    torch.testing.assert_close(v, v_r, **F32)
    v0 = (0.1 * torch.randn(1, B, N)).requires_grad_()
    _compare(lambda: p, x, v0)


def test_no_grad_path():
    x = torch.randn(T, B, N) + 0.5
    p = dict(surrogate=SF.ATan(), k=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False)
    s, v = TN.triton_multistep(x, None, **p)
    s_r, v_r, _ = SF.neuron_multistep(x, None, **p)
    assert not s.requires_grad and torch.equal(s, s_r)
    torch.testing.assert_close(v, v_r, **F32)


# -------------------------------------------------------------------------------------------------
# 3. errors and availability
# -------------------------------------------------------------------------------------------------

def test_available_under_interpreter():
    assert TN.available()


def test_unsupported_surrogate_is_named():
    class MySurrogate(SF.ATan):
        pass

    x = torch.randn(T, B, N)
    with pytest.raises(NotImplementedError, match="MySurrogate"):
        TN.triton_multistep(x, None, surrogate=MySurrogate(), k=0.5, v_threshold=1.0, v_reset=0.0,
                            decay_input=True, detach_reset=False)


def test_batch_varying_parameter_is_rejected():
    x = torch.randn(T, B, N)
    with pytest.raises(NotImplementedError, match="batch"):
        TN.triton_multistep(x, None, surrogate=SF.ATan(), k=torch.rand(B, N), v_threshold=1.0,
                            v_reset=0.0, decay_input=True, detach_reset=False)


def test_module_forward_through_backend_switch():
    """If the backend switch exists, a module forced onto 'triton' matches the reference backend."""
    kernels = pytest.importorskip("snnedu.kernels")
    if not hasattr(kernels, "use_backend"):
        pytest.skip("snnedu.kernels has no backend switch yet")
    m = snnedu.PMLF3(K=3, learn_threshold="neuron", threshold_noise=0.1)
    x = (2 * torch.randn(T, B, N)).requires_grad_()
    outs = []
    for backend in ("reference", "triton"):
        with kernels.use_backend(backend):
            out = m(x)
        grads = torch.autograd.grad((out * torch.linspace(-1, 1, N)).sum(), [x, *m.parameters()])
        outs.append((out, grads))
    assert torch.equal(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1]):
        torch.testing.assert_close(a, b, **F32)
