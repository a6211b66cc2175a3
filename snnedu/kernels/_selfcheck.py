"""The fused Triton kernels against the reference loop: the comparisons behind the kernel tests and the GPU check.

Both ``tests/test_triton_kernels.py`` (CPU tensors, Triton interpreter) and ``benchmarks/gpu_check.py``
(CUDA, compiled kernels) call these functions, so the two run exactly the same checks. A case compares
:func:`snnedu.kernels.triton_neuron.triton_multistep` with :func:`snnedu.functional.neuron_multistep`
on one device: the spikes (identical), the last potential and the gradients w.r.t. the input, the
initial potential and every learnable parameter, within :data:`TOLERANCES` for the input's dtype.
A failed comparison raises :class:`AssertionError`; a passed one returns the largest errors seen.

:func:`catalogue` lists the cases of the GPU check by name (every neuron family, surrogate, reset,
``detach_reset``, learnable threshold, dtype and the awkward shapes); :func:`run_case` runs one.
"""
from __future__ import annotations

import zlib
from typing import Callable, Dict, List, Optional

import torch

import snnedu.functional as SF

__all__ = ["TOLERANCES", "SURROGATES", "MODULES", "DTYPES", "compare", "module_case", "direct_case",
           "levels_case", "k_granularity_case", "one_output_case", "edge_shapes_case", "no_grad_case",
           "catalogue", "run_case", "tolerance_text"]

#: per dtype: the last potential ``v`` and the gradients ``grad`` (``torch.testing.assert_close``
#: arguments); for half precision the gradients' ``atol`` is multiplied by ``max(1, max|reference|)``.
#: Spikes must be identical in every dtype: the kernels compute in float32 on the same values.
TOLERANCES = {
    torch.float32: {"v": dict(rtol=1e-5, atol=1e-5), "grad": dict(rtol=1e-5, atol=1e-5), "scaled": False},
    torch.float16: {"v": dict(rtol=1e-2, atol=1e-2), "grad": dict(rtol=2e-2, atol=2e-2), "scaled": True},
    torch.bfloat16: {"v": dict(rtol=1e-2, atol=1e-2), "grad": dict(rtol=2e-2, atol=2e-2), "scaled": True},
}
#: the long-sequence case sums gradients over many steps in another order than the reference: looser
LONG_T_TOLERANCE = {"v": dict(rtol=1e-5, atol=1e-5), "grad": dict(rtol=1e-4, atol=1e-4), "scaled": True}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
T, B, N = 5, 3, 7  # the default tiny shape

# non-default widths: catch a dropped parameter
SURROGATES = {"rect": SF.Rectangular(0.8), "sigmoid": SF.Sigmoid(3.0), "atan": SF.ATan(2.5),
              "triangle": SF.Triangle(0.7)}


def tolerance_text() -> Dict[str, str]:
    """The tolerances in words (for reports)."""
    out = {}
    for name, dt in DTYPES.items():
        t = TOLERANCES[dt]
        out[name] = (f"spikes identical; v_last rtol={t['v']['rtol']:g} atol={t['v']['atol']:g}; gradients "
                     f"rtol={t['grad']['rtol']:g} atol={t['grad']['atol']:g}" + (" x max(1, max|ref|)" if t["scaled"]
                                                                                   else ""))
    lt = LONG_T_TOLERANCE
    out["long T"] = (f"fp32, gradients rtol={lt['grad']['rtol']:g} atol={lt['grad']['atol']:g} x max(1, max|ref|) "
                     "(sums over many steps taken in another order)")
    return out


def _modules() -> Dict[str, Callable]:
    import snnedu
    return {
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
        "PMLF3-soft-atan-th-layer": lambda: snnedu.PMLF3(K=3, v_reset=None, surrogate="atan",
                                                         learn_threshold=True),
    }


#: neuron modules as the library builds them (what they pass to the kernels: their _params and _rest)
MODULES = _modules()


# -------------------------------------------------------------------------------------------------
# the comparison
# -------------------------------------------------------------------------------------------------
def _run(fn, x, v0, params, leaves, ws=None, wv=None, use_s=True, use_v=True):
    s, v = fn(x, v0, params)
    if ws is None:  # random loss weights, representable in the outputs' dtype
        ws = torch.randn(s.shape, device=s.device).to(s.dtype)
        wv = torch.randn(v.shape, device=v.device).to(v.dtype)
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
    from . import triton_neuron
    return triton_neuron.triton_multistep(x, v0, **params)


def _same_values(t: torch.Tensor, dtype, requires_grad: bool) -> torch.Tensor:
    """``t`` rounded to ``dtype``, in ``t``'s memory layout (a non-contiguous ``t`` stays non-contiguous)."""
    out = t.detach().to(dtype)
    if not t.is_contiguous():
        out = torch.empty_strided(t.shape, t.stride(), dtype=dtype, device=t.device).copy_(out)
    return out.requires_grad_(requires_grad)


def compare(make_params, x, v0=None, leaves=(), dtype=torch.float32, use_s=True, use_v=True,
            tol: Optional[dict] = None, paths=(_tri, _ref)) -> dict:
    """Kernel against reference on ``x``'s device; ``make_params()`` builds fresh params (their graph to
    the leaves is used once per path). The reference runs in float32 on the very values the kernel gets
    (rounded to ``dtype``). ``paths``: the ``(kernel, reference)`` functions ``f(x, v0, params) ->
    (spikes, state)``. Returns the largest errors; raises ``AssertionError`` on a mismatch."""
    fast_fn, ref_fn = paths
    tol = tol or TOLERANCES[dtype]
    leaves = [t for t in leaves if t is not None and t.requires_grad]
    x_ref = x.detach().to(dtype).float().requires_grad_(x.requires_grad)
    v_ref = None if v0 is None else v0.detach().to(dtype).float().requires_grad_(v0.requires_grad)
    x_tri = _same_values(x, dtype, x.requires_grad)
    v_tri = None if v0 is None else v0.detach().to(dtype).requires_grad_(v0.requires_grad)
    ins_ref = [t for t in (x_ref, v_ref) if t is not None and t.requires_grad]
    ins_tri = [t for t in (x_tri, v_tri) if t is not None and t.requires_grad]
    s_t, v_t, g_t, ws, wv = _run(fast_fn, x_tri, v_tri, make_params(), ins_tri + leaves, use_s=use_s, use_v=use_v)
    s_r, v_r, g_r, _, _ = _run(ref_fn, x_ref, v_ref, make_params(), ins_ref + leaves, ws, wv, use_s, use_v)

    assert s_t.shape == s_r.shape and v_t.shape == v_r.shape, "output shapes differ"
    assert s_t.dtype == dtype and v_t.dtype == dtype, "output dtype differs from the input's"
    # same fp32 arithmetic as the reference: identical spikes, also for half inputs (computed in fp32)
    differ = int((s_t.float() != s_r).sum())
    assert differ == 0, f"spikes differ at {differ} of {s_r.numel()} places"
    torch.testing.assert_close(v_t.float(), v_r, **tol["v"])
    v_err = float((v_t.detach().float() - v_r.detach()).abs().max()) if v_r.numel() else 0.0
    report = {"spikes": int(s_r.sum()), "elements": s_r.numel(), "v_max_err": v_err, "grad_max_rel_err": 0.0}
    assert len(g_t) == len(g_r)
    for i, (a, b) in enumerate(zip(g_t, g_r)):
        assert (a is None) == (b is None), f"gradient {i}: one path has none"
        if a is None:
            continue
        assert a.shape == b.shape, f"gradient {i}: shapes differ"
        scale = max(1.0, b.abs().max().item()) if tol["scaled"] and b.numel() else 1.0
        g = dict(tol["grad"], atol=tol["grad"]["atol"] * scale)
        torch.testing.assert_close(a.float(), b.float(), **g, msg=lambda m, i=i: f"gradient {i}: {m}")
        if b.numel():
            rel = float((a.float() - b.float()).abs().max()) / scale
            report["grad_max_rel_err"] = max(report["grad_max_rel_err"], rel)
    return report


# -------------------------------------------------------------------------------------------------
# the cases (``device``: where the tensors live; inputs are drawn on the CPU, so a case draws the same
# numbers on every device)
# -------------------------------------------------------------------------------------------------
def _randn(*shape, device="cpu"):
    return torch.randn(shape).to(device)


def _leaf(t):
    return t.requires_grad_()


def module_case(name, shape=(T, B, N), dtype=torch.float32, random_v0=False, device="cpu", tol=None) -> dict:
    """A neuron module of :data:`MODULES`: exactly what it passes, gradients to its parameters."""
    m = MODULES[name]()
    with torch.no_grad():  # learnable parameters away from their symmetric initial values
        for p in m.parameters():
            if not isinstance(p, torch.nn.UninitializedParameter):
                p.add_(0.1 * torch.randn(p.shape))
    sample = shape[2:]
    m._prepare(sample)  # lazily shaped parameters get their shape on the CPU, then move
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    m = m.to(device)
    scale = 2.0 if m.levels > 1 else 1.0
    x = _leaf(_randn(*shape, device=device) * scale + 0.4)
    v0 = m._rest(x[0])
    if random_v0:
        state = x.shape[1:] if m.levels == 1 else (m.levels, *x.shape[1:])
        v0 = _leaf(0.3 * _randn(*state, device=device))
    return compare(lambda: m._params(len(sample), x), x, v0, list(m.parameters()), dtype, tol=tol)


def direct_case(charge, v_reset, detach, sg, shape=(T, B, N), dtype=torch.float32, device="cpu",
                layout="contiguous", tol=None) -> dict:
    """A direct call: charge form ("IF", "decay_input", "plain") x reset x detach_reset x surrogate, with a
    per-neuron leak and threshold. ``layout="transposed"``: the input is a non-contiguous view."""
    n = shape[-1]
    k = None if charge == "IF" else _leaf(0.2 + 0.6 * torch.rand(n).to(device))
    th = _leaf(0.8 + 0.4 * torch.rand(n).to(device))
    if layout == "transposed":  # [B, T, N] storage seen as [T, B, N]
        x = _leaf((_randn(shape[1], shape[0], *shape[2:], device=device) + 0.5).transpose(0, 1))
    else:
        x = _leaf(_randn(*shape, device=device) + 0.5)
    v0 = _leaf(0.3 * _randn(*shape[1:], device=device))
    params = dict(surrogate=SURROGATES[sg], k=k, v_threshold=th, v_reset=v_reset,
                  decay_input=charge != "plain", detach_reset=detach)
    return compare(lambda: params, x, v0, [k, th], dtype, tol=tol)


def levels_case(sg, dtype=torch.float32, device="cpu") -> dict:
    """K = 3 levels with per-level k [K, 1, 1] and a per-level, per-neuron threshold [K, 1, N]."""
    K = 3
    k = _leaf(torch.tensor([0.3, 0.5, 0.7]).view(K, 1, 1).to(device))
    th = _leaf((torch.arange(K).view(K, 1, 1) + 0.6 + 0.2 * torch.rand(K, 1, N)).to(device))
    x = _leaf(2 * _randn(T, B, N, device=device) + 0.5)
    v0 = _leaf(0.3 * _randn(K, B, N, device=device))
    params = dict(surrogate=SURROGATES[sg], k=k, v_threshold=th, v_reset=0.0, decay_input=False,
                  detach_reset=False)
    return compare(lambda: params, x, v0, [k, th], dtype)


def k_granularity_case(k_kind, device="cpu") -> dict:
    """The leak as a float, one tensor per layer or per neuron; a float threshold; v0 = None."""
    k = {"float": 0.4, "layer": torch.tensor(0.4, device=device).requires_grad_(),
         "neuron": _leaf(0.2 + 0.6 * torch.rand(N).to(device))}[k_kind]
    x = _leaf(_randn(T, B, N, device=device) + 0.5)
    params = dict(surrogate=SF.ATan(), k=k, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False)
    return compare(lambda: params, x, None, [k] if isinstance(k, torch.Tensor) else [])


def one_output_case(use, device="cpu") -> dict:
    """Backward with grad_spikes or grad_v_last absent (None)."""
    k = torch.tensor(0.5, device=device).requires_grad_()
    th = torch.tensor(0.9, device=device).requires_grad_()
    x = _leaf(_randn(T, B, N, device=device) + 0.5)
    params = dict(surrogate=SF.Sigmoid(), k=k, v_threshold=th, v_reset=None, decay_input=True, detach_reset=False)
    return compare(lambda: params, x, None, [k, th], use_s=use == "spikes", use_v=use == "v_last")


def edge_shapes_case(device="cpu") -> dict:
    """No sample axes ([T, B]), a single step, an explicit level count with v0=None, a [1, B, N] v0."""
    from .triton_neuron import triton_multistep
    sg = SF.Triangle()
    x = _leaf(_randn(T, B, device=device) + 0.5)
    compare(lambda: dict(surrogate=sg, k=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True,
                         detach_reset=False), x, None)
    x1 = _leaf(_randn(1, B, N, device=device) + 0.8)
    compare(lambda: dict(surrogate=sg, k=None, v_threshold=1.0, v_reset=0.0, decay_input=True,
                         detach_reset=False), x1, None)
    x = _leaf(_randn(T, B, N, device=device) + 0.8)
    p = dict(surrogate=sg, k=0.5, v_threshold=1.0, v_reset=-0.2, decay_input=False, detach_reset=False)
    s, v = triton_multistep(x, None, levels=3, **p)
    s_r, v_r, _ = SF.neuron_multistep(x, torch.full((3, B, N), -0.2, device=device), **p)
    assert torch.equal(s, s_r), "spikes differ (levels=3, v0=None)"
    torch.testing.assert_close(v, v_r, **TOLERANCES[torch.float32]["v"])
    v0 = _leaf(0.1 * _randn(1, B, N, device=device))
    return compare(lambda: p, x, v0)


def no_grad_case(device="cpu") -> dict:
    """Forward only (no tensor requires grad: no potential saved for backward)."""
    from .triton_neuron import triton_multistep
    x = _randn(T, B, N, device=device) + 0.5
    p = dict(surrogate=SF.ATan(), k=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False)
    s, v = triton_multistep(x, None, **p)
    s_r, v_r, _ = SF.neuron_multistep(x, None, **p)
    assert not s.requires_grad and torch.equal(s, s_r), "spikes differ (no grad)"
    torch.testing.assert_close(v, v_r, **TOLERANCES[torch.float32]["v"])
    return {"spikes": int(s_r.sum()), "elements": s_r.numel()}


# -------------------------------------------------------------------------------------------------
# the catalogue of the GPU check
# -------------------------------------------------------------------------------------------------
CHARGES = ("IF", "decay_input", "plain")
RESETS = {"hard0": 0.0, "hard-0.5": -0.5, "soft": None}


def _family_modules() -> Dict[str, Callable]:
    import snnedu
    return {
        "ALIF-hard-atan": lambda: snnedu.ALIF(tau=2.0, tau_a=10.0, beta=0.3),
        "ALIF-soft-sigmoid-th-neuron": lambda: snnedu.ALIF(tau=3.0, tau_a=20.0, beta=0.2, v_reset=None,
                                                           surrogate="sigmoid", learn_threshold="neuron",
                                                           threshold_noise=0.1),
        "ALIF-formB-vr-0.3-detach-rect-th-layer": lambda: snnedu.ALIF(tau=2.0, tau_a=8.0, beta=0.4,
                                                                      decay_input=False, v_reset=-0.3,
                                                                      detach_reset=True, surrogate="rect",
                                                                      learn_threshold=True),
    }


#: modules of declared families other than the core (each with a registered Triton fast path), checked
#: against their own reference loop (the family's step in :func:`snnedu.functional.state_multistep`)
FAMILY_MODULES = _family_modules()


def family_case(name, shape=(T, B, N), dtype=torch.float32, device="cpu", tol=None) -> dict:
    """A module of :data:`FAMILY_MODULES`: its family's Triton fast path against its reference loop;
    every state variable is compared (stacked as the ``v`` output)."""
    from ..family import fast_path
    m = FAMILY_MODULES[name]()
    sample = shape[2:]
    m._prepare(sample)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    m = m.to(device)
    family = m.family
    fast = fast_path(family, "triton")

    def tri(x, state0, params):
        s, state = fast(x, state0, **params)
        return s, torch.stack(state)

    def ref(x, state0, params):
        s, state, _ = SF.state_multistep(family.step, x, state0, **params)
        return s, torch.stack(state)

    x = _leaf(_randn(*shape, device=device) + 0.7)
    return compare(lambda: m._params(len(sample), x), x, None, list(m.parameters()), dtype, tol=tol,
                   paths=(tri, ref))


def _block_cap(levels: int) -> int:
    """Elements per Triton program for ``levels`` levels (as the kernels choose it now)."""
    from . import triton_neuron
    kp = 1 << max(0, (levels - 1).bit_length())
    return triton_neuron._block(kp, 1 << 30)


def catalogue(quick: bool = False) -> Dict[str, Callable[[str], dict]]:
    """Name -> ``case(device)``: what the GPU check runs. ``quick`` (the CPU rehearsal): one case of
    each kind, tiny. The full list: every module of :data:`MODULES` in fp32, fp16 and bf16; the direct
    grid charge x reset x detach_reset x surrogate in fp32 and, for half precision, every surrogate x
    reset with and without detach; K levels; the awkward shapes (odd N; N below, at and above a block
    of the kernel; T = 1; a long T; a non-contiguous input)."""
    cases: Dict[str, Callable[[str], dict]] = {}

    def add(name, fn):
        cases[name] = fn

    dtypes = {"fp32": torch.float32} if quick else DTYPES
    if quick:  # three families in fp32, one each in fp16 and bf16
        quick_modules = ["IF-soft-sigmoid-detach", "PLIF-neuron-no-decay_input-th-neuron", "PMLF3-th-neuron-detach"]
        per_dtype = {"fp32": quick_modules, "fp16": quick_modules[1:2], "bf16": quick_modules[2:]}
    else:
        per_dtype = {dname: list(MODULES) for dname in DTYPES}
    for dname, names in per_dtype.items():
        for name in names:
            add(f"module/{name}/{dname}", lambda d, name=name, dt=DTYPES[dname]: module_case(name, dtype=dt, device=d))
    family_names = list(FAMILY_MODULES)[:1] if quick else list(FAMILY_MODULES)
    for dname, dt in dtypes.items():
        for name in family_names:
            add(f"family/{name}/{dname}", lambda d, name=name, dt=dt: family_case(name, dtype=dt, device=d))
    add("module-conv-v0/PMLF3-th-neuron-detach/fp32",
        lambda d: module_case("PMLF3-th-neuron-detach", shape=(4, 2, 2, 2, 3), random_v0=True, device=d))
    grid = [(c, r, det, sg) for c in CHARGES for r in RESETS for det in (False, True) for sg in SURROGATES]
    if quick:
        grid = [("decay_input", "soft", True, "sigmoid"), ("plain", "hard-0.5", False, "rect")]
    for c, r, det, sg in grid:
        add(f"direct/{c}/{r}/{'detached' if det else 'attached'}/{sg}/fp32",
            lambda d, c=c, r=r, det=det, sg=sg: direct_case(c, RESETS[r], det, sg, device=d))
    if not quick:
        for dname in ("fp16", "bf16"):
            for i, (r, sg) in enumerate((r, sg) for r in RESETS for sg in SURROGATES):
                c = CHARGES[i % 3]
                for det in (False, True):
                    add(f"direct/{c}/{r}/{'detached' if det else 'attached'}/{sg}/{dname}",
                        lambda d, c=c, r=r, det=det, sg=sg, dt=DTYPES[dname]:
                        direct_case(c, RESETS[r], det, sg, dtype=dt, device=d))
        for sg in SURROGATES:
            add(f"levels/{sg}/fp32", lambda d, sg=sg: levels_case(sg, device=d))
        for dname in ("fp16", "bf16"):
            add(f"levels/atan/{dname}", lambda d, dt=DTYPES[dname]: levels_case("atan", dtype=dt, device=d))
        for kk in ("float", "layer", "neuron"):
            add(f"k-granularity/{kk}", lambda d, kk=kk: k_granularity_case(kk, device=d))
        for use in ("spikes", "v_last"):
            add(f"one-output/{use}", lambda d, use=use: one_output_case(use, device=d))
    else:
        add("levels/triangle/fp32", lambda d: levels_case("triangle", device=d))
    add("edge-shapes", lambda d: edge_shapes_case(device=d))
    add("no-grad", lambda d: no_grad_case(device=d))

    # awkward shapes, relative to the kernel's block (elements per program) for 1 and 3 levels
    cap1, cap3 = _block_cap(1), _block_cap(3)
    shapes = {
        "odd-N": (3, 3, 13),
        "M-below-block": (4, 1, cap1 - 1),
        "M-at-block": (4, 1, cap1),
        "M-above-block": (4, 1, cap1 + 1),
        "M-many-blocks-odd-N": (3, 5, 2 * cap1 + 3),
        "T1": (1, 4, 37),
    }
    dts = dtypes if not quick else {"fp32": torch.float32}
    for sname, shape in shapes.items():
        if quick and sname not in ("odd-N", "M-above-block", "T1"):
            continue
        for dname, dt in dts.items():
            add(f"shape/{sname}{list(shape)}/{dname}",
                lambda d, shape=shape, dt=dt: direct_case("decay_input", 0.0, False, "atan", shape=shape,
                                                          dtype=dt, device=d))
    k3 = (3, 2, cap3 + 1)  # levels: a block holds cap3 elements of each of the K rows
    add(f"shape/levels-above-block{list(k3)}/fp32",
        lambda d: module_case("PMLF3-th-neuron-detach", shape=k3, device=d))
    long_t = (64, 2, 9) if quick else (2048, 4, 300)
    add(f"shape/long-T{list(long_t)}/fp32",
        lambda d: direct_case("plain", -0.5, False, "sigmoid", shape=long_t, device=d, tol=LONG_T_TOLERANCE))
    nc = (4, 3, 11) if quick else (16, 8, 1001)
    for dname, dt in dts.items():
        add(f"shape/non-contiguous{list(nc)}/{dname}",
            lambda d, dt=dt: direct_case("IF", None, True, "triangle", shape=nc, dtype=dt, device=d,
                                         layout="transposed"))
    return cases


def run_case(name: str, device="cpu", quick: bool = False, cases: Optional[dict] = None) -> dict:
    """Run one case of :func:`catalogue` (seeded by its name) and return its report."""
    cases = cases if cases is not None else catalogue(quick)
    torch.manual_seed(zlib.crc32(name.encode()))
    return cases[name](device)


def case_names(quick: bool = False) -> List[str]:
    return list(catalogue(quick))
