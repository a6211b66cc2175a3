"""The CPU fast path (snnedu.kernels.cpu) against the reference loop, and the backend switch."""
import pytest
import torch

import snnedu
from snnedu import kernels
from snnedu.errors import HyperParameterError
from snnedu.functional import neuron_multistep
from snnedu.kernels.cpu import cpu_multistep

from neuron_cases import CASES

def _grads(out, x, params, w):
    return torch.autograd.grad((out * w).sum(), [x] + params, allow_unused=True)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("shape", [(7, 3, 5), (4, 2, 3, 4, 4)])
def test_fast_path_matches_reference(name, shape):
    """Every neuron configuration (tests/neuron_cases.py: every exported family) on its CPU fast path
    against its reference loop, through the module: identical spikes, gradients to the input and to
    every learned parameter within rounding."""
    torch.manual_seed(1)
    x = torch.rand(shape) * 2.5 - 0.3
    w = torch.randn(shape)
    results = {}
    for backend in ("reference", "cpu"):
        torch.manual_seed(2)                      # the same random initial values (tau_std, threshold_noise)
        mod = CASES[name]()
        xx = x.clone().requires_grad_(True)
        with kernels.use_backend(backend):
            out = mod(xx)
        params = [p for p in mod.parameters() if p.requires_grad]
        results[backend] = (out, _grads(out, xx, params, w))
    assert kernels.chosen_backend(x, mod.surrogate, family=mod.family) == "cpu"   # what "auto" runs
    (ref, g_ref), (fast, g_fast) = results["reference"], results["cpu"]
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    assert torch.equal(fast, ref)                 # spikes identical (the charge is computed in the same order)
    assert g_ref[0].abs().sum() > 0
    for a, b in zip(g_ref, g_fast):
        if a is None:
            assert b is None or not b.any()
        else:
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_gradient_through_initial_and_last_potential():
    torch.manual_seed(0)
    x = torch.rand(5, 4, 6) * 2
    v0 = torch.rand(4, 6, requires_grad=True)
    kw = dict(surrogate=snnedu.ATan(), k=0.5, v_threshold=1.0, v_reset=0.0)
    s_r, v_r, _ = neuron_multistep(x, v0, **kw)
    s_c, v_c = cpu_multistep(x, v0, **kw)
    assert torch.equal(s_r, s_c)
    g_r = torch.autograd.grad(s_r.sum() + (v_r ** 2).sum(), v0)[0]
    g_c = torch.autograd.grad(s_c.sum() + (v_c ** 2).sum(), v0)[0]
    torch.testing.assert_close(g_c, g_r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_other_dtypes_are_computed_in_float32_and_returned_in_theirs(dtype):
    x = (torch.rand(6, 3, 8) * 2).to(dtype).requires_grad_(True)
    out = snnedu.LIF(tau=2.0)(x)
    assert out.dtype == dtype
    with kernels.use_backend("reference"):
        ref = snnedu.LIF(tau=2.0)(x.float())
    assert (out.float() != ref).float().mean() < 0.05
    out.sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()


def test_modules_use_the_fast_path_and_the_switch():
    x = torch.rand(4, 2, 8) * 2
    assert kernels.chosen_backend(x, snnedu.ATan()) == "cpu"
    with kernels.use_backend("reference"):
        assert kernels.chosen_backend(x, snnedu.ATan()) == "reference"
        ref = snnedu.LIF()(x)
    assert torch.equal(snnedu.LIF()(x), ref)
    assert kernels.chosen_backend(x, snnedu.ATan(), record=True) == "reference"   # traces need the reference
    lif = snnedu.LIF(record=True)
    lif(x)
    assert lif.h_seq.shape == x.shape
    with kernels.use_backend("cpu"):
        with pytest.raises(HyperParameterError, match="record=True"):
            kernels.chosen_backend(x, snnedu.ATan(), record=True)
    with pytest.raises(HyperParameterError, match="backend must be one of"):
        kernels.set_backend("gpu")
    assert kernels.get_backend() == "auto"


def test_inference_without_grad_matches():
    net = torch.nn.Sequential(snnedu.TimeDistributed(torch.nn.Linear(8, 8)), snnedu.PLIF(per_neuron=True))
    x = torch.rand(5, 3, 8)
    with torch.no_grad():
        a = net(x)
        with kernels.use_backend("reference"):
            b = net(x)
    assert torch.equal(a, b)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_non_finite_input_is_a_clear_error_on_every_backend(backend):
    from snnedu.errors import InputError

    x = torch.rand(4, 2, 300)
    x[2, 1, 17] = float("nan")
    x[3, 0, 5] = float("inf")
    with kernels.use_backend(backend):
        with pytest.raises(InputError, match="PLIF got non-finite input: 1 NaN and 1 inf"):
            snnedu.PLIF()(x)
        snnedu.set_input_checks(False)
        try:
            snnedu.PLIF()(x)          # checks off: no scan, no error
        finally:
            snnedu.set_input_checks(True)


def test_time_broadcast_output_gradient_matches():
    # out.sum() and out.mean(0)-based losses hand backward a gradient that is broadcast over time
    torch.manual_seed(3)
    x = torch.rand(9, 4, 33) * 2
    for loss in (lambda o: o.sum(), lambda o: (o.mean(0) * torch.arange(33.0)).sum()):
        grads = []
        for backend in ("cpu", "reference"):
            xx = x.clone().requires_grad_(True)
            with kernels.use_backend(backend):
                loss(snnedu.PLIF(per_neuron=True)(xx)).backward()
            grads.append(xx.grad)
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_buffer_pool_keeps_enough_for_two_large_buffers(monkeypatch):
    """The pool keeps 1/8 of the RAM, between 1 and 4 GiB: enough for the spikes and the input gradient
    of a T=64, 4 M-neuron layer (1 GiB each), so neither comes fresh from the system at every step."""
    import os
    from snnedu.kernels import cpu
    ram = {"SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: ram[name])
    for phys_gib, kept_gib in ((2, 1), (24, 3), (128, 4)):
        ram["SC_PHYS_PAGES"] = phys_gib * (1 << 30) // 4096
        assert cpu._pool_bytes() == kept_gib << 30
    monkeypatch.setattr(os, "sysconf", lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert cpu._pool_bytes() == 1 << 30
    assert cpu._pool.max_bytes >= 1 << 30


def test_buffer_pool_reuses_only_dead_buffers():
    from snnedu.kernels.cpu import _BufferPool

    pool = _BufferPool(max_bytes=1 << 30)
    pool.min_bytes = 1024
    a = pool.empty(64, 8)
    a.fill_(1.0)
    ptr = a.data_ptr()
    b = pool.empty(64, 8)                       # a is alive: b must be other memory
    assert b.data_ptr() != ptr
    view = a[3:]                                # a view keeps the buffer alive
    del a
    c = pool.empty(64, 8)
    assert c.data_ptr() != ptr and view.sum() == 61 * 8
    del view
    d = pool.empty(64, 8)                       # now it is free and reused
    assert d.data_ptr() == ptr
    assert pool.empty(4, 4).data_ptr() not in (ptr, b.data_ptr())   # small requests bypass the pool


def test_float64_is_honoured_on_the_default_path():
    # issue #15 item 3: the default CPU path computed float64 in float32, so 1 - 1e-12 fired
    x = torch.full((1, 1, 1), 1 - 1e-12, dtype=torch.float64)
    assert kernels.chosen_backend(x, snnedu.ATan()) == "reference"
    assert snnedu.IF()(x).item() == 0.0 and snnedu.IF().step(x[0]).item() == 0.0
    assert snnedu.IF()(torch.full((1, 1, 1), 1.0, dtype=torch.float64)).item() == 1.0
    with kernels.use_backend("cpu"):
        with pytest.raises(HyperParameterError, match="float64 input needs the 'reference' backend"):
            snnedu.IF()(x)


@pytest.mark.parametrize("family", sorted(CASES))
def test_float64_near_the_threshold_equals_the_reference_in_every_family(family):
    # inputs within 1e-9 of multiples of 0.25 (IF/MLF potentials land within 1e-9 of the threshold,
    # where float32 rounding flips spikes): float64 gives the reference's spikes and gradients exactly
    g = torch.Generator().manual_seed(0)
    x = (torch.randint(0, 5, (6, 2, 7), generator=g).double() * 0.25
         + (torch.rand(6, 2, 7, generator=g, dtype=torch.float64) - 0.5) * 2e-9).requires_grad_(True)
    torch.manual_seed(1)
    net = CASES[family]().double()
    out = net(x)                          # (lazily shaped parameters draw their initial values here)
    torch.manual_seed(1)
    ref = CASES[family]().double()
    with kernels.use_backend("reference"):
        want = ref(x)
    assert out.dtype == torch.float64 and torch.equal(out, want)
    gx, = torch.autograd.grad((out * torch.arange(out.numel(), dtype=torch.float64).view_as(out)).sum(), x)
    with kernels.use_backend("reference"):
        gw, = torch.autograd.grad((ref(x) * torch.arange(out.numel(), dtype=torch.float64).view_as(out)).sum(), x)
    assert gx.dtype == torch.float64 and torch.equal(gx, gw)
