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
from snnedu.kernels import _selfcheck as SC  # noqa: E402
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


T, B, N = SC.T, SC.B, SC.N
F32 = SC.TOLERANCES[torch.float32]["v"]
SURROGATES = SC.SURROGATES


# -------------------------------------------------------------------------------------------------
# 1. exactly what the neuron modules pass (their _params and _rest), gradients to their parameters
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(SC.MODULES))
def test_modules_fp32(name):
    SC.module_case(name)


@pytest.mark.parametrize("name", ["LIF-th-neuron-soft-detach", "PLIF-neuron-soft-sigmoid", "PMLF3-th-neuron-detach"])
def test_modules_conv_shape_and_initial_potential(name):
    """A [C, H, W] sample and a random initial potential (gradient w.r.t. v0 too)."""
    SC.module_case(name, shape=(4, 2, 2, 2, 3), random_v0=True)


@pytest.mark.parametrize("name", list(SC.FAMILY_MODULES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_declared_families_fast_path(name, dtype):
    """A declared family's Triton kernel (ALIF) against its own reference loop, every state variable."""
    report = SC.family_case(name, dtype=dtype)
    assert report["spikes"] > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", ["IF-soft-sigmoid-detach", "PLIF-neuron-no-decay_input-th-neuron", "PMLF3"])
def test_modules_half(name, dtype):
    SC.module_case(name, dtype=dtype)


# -------------------------------------------------------------------------------------------------
# 2. direct calls: every charge form x reset x detach_reset x surrogate, per-neuron k and threshold
# -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sg", list(SURROGATES))
@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
@pytest.mark.parametrize("v_reset", [0.0, -0.5, None], ids=["hard0", "hard-0.5", "soft"])
@pytest.mark.parametrize("charge", ["IF", "decay_input", "plain"])
def test_direct_grid(charge, v_reset, detach, sg):
    SC.direct_case(charge, v_reset, detach, sg)


@pytest.mark.parametrize("sg", list(SURROGATES))
def test_direct_levels_per_level_params(sg):
    """K = 3 levels with per-level k [K, 1, 1] and a per-level, per-neuron threshold [K, 1, N]."""
    SC.levels_case(sg)


@pytest.mark.parametrize("k_kind", ["float", "layer", "neuron"])
def test_direct_k_granularity_and_float_threshold(k_kind):
    SC.k_granularity_case(k_kind)


@pytest.mark.parametrize("use", ["spikes", "v_last"])
def test_only_one_output_used(use):
    """Backward with grad_spikes or grad_v_last absent (None)."""
    SC.one_output_case(use)


def test_edge_shapes():
    """No sample axes ([T, B]), a single step, an explicit level count with v0=None, a [1, B, N] v0."""
    SC.edge_shapes_case()


def test_no_grad_path():
    SC.no_grad_case()


def test_non_contiguous_input_and_blocks():
    """A transposed (non-contiguous) input, and more elements than one program's block."""
    SC.direct_case("IF", None, True, "triangle", shape=(4, 3, 11), layout="transposed")
    SC.direct_case("decay_input", 0.0, False, "atan", shape=(3, 1, SC._block_cap(1) + 1))


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


# -------------------------------------------------------------------------------------------------
# 4. torch.compile on the Triton path: the kernels are the operators snnedu::triton_multistep(_backward)
# -------------------------------------------------------------------------------------------------

def test_triton_operators_pass_opcheck():
    """Schema, fake (meta) implementation and registered autograd of the forward operator agree with
    its real implementation (torch.library.opcheck, here through the interpreter)."""
    x = torch.rand(3, 2, 5) * 2
    v0 = torch.zeros(1, 2, 5)
    th = torch.tensor(0.9, requires_grad=True)
    torch.library.opcheck(torch.ops.snnedu.triton_multistep.default,
                          (x.requires_grad_(), v0, torch.tensor(0.5), th, 0.0, 1, True, False, 2, 2.0, True, "LIF"),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


def test_triton_network_under_torch_compile_equals_eager():
    """A LIF / per-neuron PLIF / MLF network forced onto the Triton backend, compiled in one graph
    (fullgraph, aot_eager), gives eager's spikes and gradients at two T."""
    torch.manual_seed(0)
    linears = [torch.nn.Linear(a, b) for a, b in ((6, 8), (8, 8), (8, 4))]
    for layer in linears:
        torch.nn.init.uniform_(layer.weight, -0.2, 0.8)          # positive on average: every layer fires
    net = torch.nn.Sequential(linears[0], snnedu.LIF(tau=2.0), linears[1],
                              snnedu.PLIF(per_neuron=True, tau_std=0.3, v_reset=None), linears[2],
                              snnedu.MLF(K=3, learn_threshold="neuron"))
    with snnedu.kernels.use_backend("triton"):
        net(torch.zeros(1, 1, 6))                                   # shape the lazily shaped parameters
        compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
        for T in (3, 5):
            x = torch.rand(T, 2, 6) * 2
            eager = net(x)
            out = compiled(x)
            assert eager.sum() > 0 and torch.equal(out, eager)
            g_eager = torch.autograd.grad(eager.sum(), list(net.parameters()))
            g_out = torch.autograd.grad(compiled(x).sum(), list(net.parameters()))
            for a, b in zip(g_out, g_eager):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
