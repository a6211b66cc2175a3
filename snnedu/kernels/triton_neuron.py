r"""Fused Triton kernels for the multi-step charge / fire / reset loop of every snnedu neuron.

:func:`triton_multistep` computes exactly what :func:`snnedu.functional.neuron_multistep` computes
(spikes and the last membrane potential, with the same surrogate-gradient backward), but in one
kernel launch forward and one backward instead of a Python loop of small tensor operations:

- each Triton program owns a block of ``(level, batch, neuron)`` elements and walks the time axis
  inside the kernel (``t = 0..T-1`` forward, ``T-1..0`` backward), so the membrane potential and the
  running gradients stay in registers and every input is read once per step;
- the levels of a multi-level unit (MLF family) are the rows of a 2-D block, so the shared input
  ``x[t]`` is loaded once for all ``K`` levels and its gradient is summed over the levels in registers;
- forward saves only the potential before reset ``h_seq`` (fp32); the spikes are recomputed in the
  backward pass as ``h >= theta``;
- ``x_seq`` may be fp32, fp16 or bf16; all arithmetic is fp32 and the spikes / ``v_last`` / input
  gradients come back in the input's dtype.

The recurrence (see :mod:`snnedu.functional.neuron`), with ``vr`` the reset potential (0 for the soft
reset) and ``k`` the leak::

    IF:                     h = v + x
    LIF, decay_input=True:  h = v + k (x - (v - vr))
    LIF, decay_input=False: h = v - k (v - vr) + x
    s = Heaviside(h - theta)                      (surrogate derivative g(h - theta) backward)
    hard reset: v = h (1 - s) + vr s              soft reset: v = h - theta s

Backward, with ``dL/dv_t`` arriving from step ``t+1`` (or from the caller's ``v_last``)::

    dv/dh   = (1 - s) + (vr - h) g   [hard]      1 - theta g    [soft]     (detach_reset: drop the g term)
    dv/dth  = (h - vr) g             [hard]      -s + theta g   [soft]     (detach_reset: 0 / -s)
    dL/dh   = dL/ds g + dL/dv dv/dh
    dL/dv_{t-1} = (1 - k) dL/dh ,  dL/dx_t = (k or 1) dL/dh  (summed over the levels)
    dL/dk  += dL/dh (x - (v_{t-1} - vr))  [decay_input]    -dL/dh (v_{t-1} - vr)  [not]
    dL/dth += -dL/ds g + dL/dv dv/dth

``k`` and ``theta`` may be floats or tensors per layer, per neuron or per level (anything that
broadcasts against a time step ``[(K,) B, *sample]`` without varying over the batch); they are
expanded to ``[K, N]`` (``N`` neurons per sample) for the kernel, and their gradients are summed over
the batch and back to the parameter's own shape.

The forward and backward are the PyTorch operators ``snnedu::triton_multistep`` and
``snnedu::triton_multistep_backward`` (fake implementations, registered autograd), so ``torch.compile``
treats a neuron layer as one opaque operator; eager calls skip the operator dispatch.

Use :func:`available` to know whether the kernels can run (Triton importable and a CUDA device, or
the Triton interpreter selected with ``TRITON_INTERPRET=1``, where the kernels accept CPU tensors).
"""
import os
from typing import Optional, Tuple, Union

import torch
from torch.autograd.function import once_differentiable

from .._checks import check_finite, flags
from ..functional.surrogate import Surrogate
from .common import Charge, MultistepSpec, SurrogateKind, as_tensor

try:  # Triton is optional: the module imports without it, available() then says False
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the environment
    triton = None

    class tl:  # placeholder so that the kernel signatures below still evaluate
        constexpr = "constexpr"

__all__ = ["available", "triton_multistep", "TritonMultistep", "surrogate_grad", "charge_step", "reset_step", "jit_helpers",
           "set_helpers", "jit_kernels", "check_input"]

Scalar = Union[float, torch.Tensor]


def _const(value: int):
    """A module-level compile-time constant a kernel may read (Triton accepts only constexpr globals)."""
    return tl.constexpr(int(value)) if triton is not None else int(value)


# the plan's kinds (kernels.common) as the kernels' constants
CHARGE_IF, CHARGE_DECAY_INPUT = _const(Charge.IF), _const(Charge.DECAY_INPUT)
SG_RECTANGULAR, SG_SIGMOID, SG_ATAN = (_const(SurrogateKind.RECTANGULAR), _const(SurrogateKind.SIGMOID),
                                       _const(SurrogateKind.ATAN))


@torch.compiler.assume_constant_result   # torch.compile takes it as a constant (it reads the environment)
def _interpret() -> bool:
    if triton is None:
        return False
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        try:
            return bool(knobs.runtime.interpret)
        except AttributeError:  # pragma: no cover - older Triton
            pass
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


def available() -> bool:
    """True when Triton imports and the kernels can run: a CUDA device, or ``TRITON_INTERPRET=1``."""
    if triton is None:
        return False
    return torch.cuda.is_available() or _interpret()


# ------------------------------------------------------------------------------------------------------
# Kernels. They are plain functions here and wrapped with ``triton.jit`` on first use (see _kernels):
# triton.jit decides at wrap time between the compiler and the interpreter, so wrapping lazily makes
# TRITON_INTERPRET=1 effective even when this module was imported before the variable was set.
#
# Layout (kernels.common.Layout): J = B * N elements per level and step; a step of a [K, J] state is
# contiguous, time-major tensors are [T, K, J] (h_seq, spikes) or [T, J] (x_seq). Parameters k / theta
# are [K, N] rows (MultistepSpec.rows) with strides (pk0, pk1) / (pt0, pt1).
#
# Only builtins of triton.language are used (no tl.sum / tl.sigmoid / tl.zeros, which are themselves
# jit functions fixed as compiled or interpreted when triton is imported): so the kernels also run in
# the interpreter when triton was imported before TRITON_INTERPRET=1 was set.
# ------------------------------------------------------------------------------------------------------

def _add(a, b):
    return a + b


def surrogate_grad(z, p, SG: tl.constexpr):
    """g(z), the surrogate derivative of the spike at ``z = h - θ`` for the kind ``SG``
    (:class:`snnedu.kernels.common.SurrogateKind`) with parameter ``p``: the formulas of
    :mod:`snnedu.functional.surrogate`. Kernels call it as ``_surrogate_grad`` (jit-wrapped by
    :func:`set_helpers`)."""
    if SG == SG_RECTANGULAR:  # width a
        g = (tl.abs(z) < p / 2).to(tl.float32) / p
    elif SG == SG_SIGMOID:  # alpha
        sgm = 1.0 / (1.0 + tl.exp(-(p * z)))
        g = p * sgm * (1.0 - sgm)
    elif SG == SG_ATAN:  # alpha
        u = (3.141592653589793 / 2) * p * z
        g = (p / 2) / (1.0 + u * u)
    else:  # triangle, gamma
        g = tl.maximum(p - tl.abs(z), 0.0) / (p * p)
    return g


def charge_step(v, x, leak, vr, CHARGE: tl.constexpr):
    """H, the potential before reset, in :func:`snnedu.functional.charge`'s operation order (so fp32
    results match the reference bit for bit). Kernels call it as ``_charge``."""
    if CHARGE == CHARGE_IF:
        h = v + x
    elif CHARGE == CHARGE_DECAY_INPUT:
        h = v + leak * (x - (v - vr))
    else:
        h = v - leak * (v - vr) + x
    return h


def reset_step(h, spike, theta, vr, HARD: tl.constexpr):
    """V after a step: ``vr`` (hard) or ``h - θ`` (soft) where ``spike``, else ``h``. Kernels call it
    as ``_reset``."""
    if HARD:
        v = tl.where(spike, vr, h)
    else:
        v = tl.where(spike, h - theta, h)
    return v


# the helpers kernels call, by the global name they call them with; jit-wrapped for the current mode
# (compiled or interpreted) and set as globals of each kernel module by set_helpers()
HELPERS = {"_add_combine": _add, "_surrogate_grad": surrogate_grad, "_charge": charge_step, "_reset": reset_step}
_add_combine = _surrogate_grad = _charge = _reset = None


def jit_helpers() -> dict:
    """The helpers kernels call (``HELPERS``: the reduction's combine, the surrogate derivative, the
    charge and the reset) wrapped with ``triton.jit`` in the current mode."""
    return {name: triton.jit(fn) for name, fn in HELPERS.items()}


def set_helpers(module_globals: dict, helpers: dict) -> dict:
    """Set the jit-wrapped helpers as globals of a kernel module; returns the ones they replace."""
    old = {name: module_globals.get(name) for name in helpers}
    module_globals.update(helpers)
    return old


def _fwd_kernel(x_ptr, v0_ptr, k_ptr, th_ptr, s_ptr, h_ptr, vlast_ptr,
                T, K, J, N, pk0, pk1, pt0, pt1, v_reset,
                CHARGE: tl.constexpr, HARD: tl.constexpr, SAVE_H: tl.constexpr,
                KP: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    cols = pid * BLOCK + tl.arange(0, BLOCK)  # element of one level: b * N + n
    rows = tl.arange(0, KP)  # level
    cmask = cols < J
    mask = (rows < K)[:, None] & cmask[None, :]
    n = (cols % N)[None, :]
    lvl = rows[:, None]
    th = tl.load(th_ptr + lvl * pt0 + n * pt1, mask=mask, other=1.0).to(tl.float32)
    if CHARGE != CHARGE_IF:
        leak = tl.load(k_ptr + lvl * pk0 + n * pk1, mask=mask, other=0.0).to(tl.float32)
    else:
        leak = 0.0  # unused by the IF charge
    eoff = lvl * J + cols[None, :]
    v = tl.load(v0_ptr + eoff, mask=mask, other=0.0).to(tl.float32)
    vr = v_reset if HARD else 0.0
    KJ = K * J
    x_ptrs = x_ptr + cols
    s_ptrs = s_ptr + eoff
    h_ptrs = h_ptr + eoff
    for _t in range(T):
        x = tl.load(x_ptrs, mask=cmask, other=0.0).to(tl.float32)[None, :]
        h = _charge(v, x, leak, vr, CHARGE)
        if SAVE_H:
            tl.store(h_ptrs, h, mask=mask)
        spike = (h - th) >= 0.0
        # via fp32: the interpreter cannot cast a bool block straight to bf16
        tl.store(s_ptrs, spike.to(tl.float32).to(s_ptr.dtype.element_ty), mask=mask)
        v = _reset(h, spike, th, vr, HARD)
        x_ptrs += J
        s_ptrs += KJ
        h_ptrs += KJ
    tl.store(vlast_ptr + eoff, v.to(vlast_ptr.dtype.element_ty), mask=mask)


def _bwd_kernel(gs_ptr, gv_ptr, h_ptr, x_ptr, v0_ptr, k_ptr, th_ptr,
                gx_ptr, gv0_ptr, gk_ptr, gth_ptr,
                T, K, J, N, pk0, pk1, pt0, pt1, v_reset, sg_p,
                CHARGE: tl.constexpr, HARD: tl.constexpr, DETACH: tl.constexpr,
                SG: tl.constexpr, HAS_GS: tl.constexpr, HAS_GV: tl.constexpr,
                NEED_K: tl.constexpr, NEED_TH: tl.constexpr,
                KP: tl.constexpr, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    cols = pid * BLOCK + tl.arange(0, BLOCK)
    rows = tl.arange(0, KP)
    cmask = cols < J
    mask = (rows < K)[:, None] & cmask[None, :]
    n = (cols % N)[None, :]
    lvl = rows[:, None]
    th = tl.load(th_ptr + lvl * pt0 + n * pt1, mask=mask, other=1.0).to(tl.float32)
    if CHARGE != CHARGE_IF:
        leak = tl.load(k_ptr + lvl * pk0 + n * pk1, mask=mask, other=0.0).to(tl.float32)
        keep = 1.0 - leak  # dh/dv
    vr = v_reset if HARD else 0.0
    eoff = lvl * J + cols[None, :]
    KJ = K * J
    last = (T - 1).to(tl.int64)
    x_ptrs = x_ptr + last * J + cols
    gx_ptrs = gx_ptr + last * J + cols
    h_ptrs = h_ptr + last * KJ + eoff
    gs_ptrs = gs_ptr + last * KJ + eoff
    if HAS_GV:
        gv = tl.load(gv_ptr + eoff, mask=mask, other=0.0).to(tl.float32)
    else:
        gv = tl.full([KP, BLOCK], 0.0, tl.float32)
    if NEED_K:
        v0 = tl.load(v0_ptr + eoff, mask=mask, other=0.0).to(tl.float32)
        gk = tl.full([KP, BLOCK], 0.0, tl.float32)
    if NEED_TH:
        gth = tl.full([KP, BLOCK], 0.0, tl.float32)
    h = tl.load(h_ptrs, mask=mask, other=0.0)
    for i in range(T):
        t = T - 1 - i
        z = h - th
        spike = z >= 0.0
        s = spike.to(tl.float32)
        g = _surrogate_grad(z, sg_p, SG)
        if HARD:
            if DETACH:
                dvdh = 1.0 - s
            else:
                dvdh = (1.0 - s) + (vr - h) * g
        else:
            if DETACH:
                dvdh = tl.full([KP, BLOCK], 1.0, tl.float32)
            else:
                dvdh = 1.0 - th * g
        if HAS_GS:
            gs = tl.load(gs_ptrs, mask=mask, other=0.0).to(tl.float32)
            dh = gs * g + gv * dvdh
        else:
            dh = gv * dvdh
        dh = tl.where(mask, dh, 0.0)
        if NEED_TH:
            if HARD:
                if DETACH:
                    dth = tl.full([KP, BLOCK], 0.0, tl.float32)
                else:
                    dth = gv * ((h - vr) * g)
            else:
                if DETACH:
                    dth = -gv * s
                else:
                    dth = gv * (th * g - s)
            if HAS_GS:
                dth = dth - gs * g
            gth += dth
        # potential before reset of the previous step (loaded once: it is the next iteration's h)
        h_prev = tl.load(h_ptrs - KJ, mask=mask & (t > 0), other=0.0)
        if NEED_K:
            vp = tl.where(t > 0, _reset(h_prev, (h_prev - th) >= 0.0, th, vr, HARD), v0)
            if CHARGE == CHARGE_DECAY_INPUT:
                x = tl.load(x_ptrs, mask=cmask, other=0.0).to(tl.float32)[None, :]
                gk += dh * (x - (vp - vr))
            else:
                gk -= dh * (vp - vr)
        if CHARGE == CHARGE_DECAY_INPUT:
            gx = tl.reduce(leak * dh, 0, _add_combine)  # x is shared: sum over the levels
        else:
            gx = tl.reduce(dh, 0, _add_combine)
        tl.store(gx_ptrs, gx.to(gx_ptr.dtype.element_ty), mask=cmask)
        if CHARGE == CHARGE_IF:
            gv = dh
        else:
            gv = keep * dh
        h = h_prev
        x_ptrs -= J
        gx_ptrs -= J
        h_ptrs -= KJ
        gs_ptrs -= KJ
    tl.store(gv0_ptr + eoff, gv, mask=mask)
    if NEED_K:
        tl.store(gk_ptr + eoff, gk, mask=mask)
    if NEED_TH:
        tl.store(gth_ptr + eoff, gth, mask=mask)


def jit_kernels(cache: dict, fwd_kernel, bwd_kernel, module_globals: dict):
    """``(fwd, bwd)``: a kernel module's forward and backward wrapped with ``triton.jit`` for the current
    mode (compiled or interpreted), kept in that module's ``cache``, with the helpers they call set as
    globals of the module (:func:`set_helpers`). ``T`` is never specialised: the backward kernels compute
    ``(T - 1)`` as a 64-bit offset."""
    mode = _interpret()
    if mode not in cache:
        cache[mode] = (triton.jit(fwd_kernel, do_not_specialize=["T"]),
                       triton.jit(bwd_kernel, do_not_specialize=["T"]), jit_helpers())
    fwd, bwd, helpers = cache[mode]
    set_helpers(module_globals, helpers)
    return fwd, bwd


_JIT_CACHE: dict = {}


def _kernels():
    """``(fwd, bwd)`` of the core kernels for the current mode (:func:`jit_kernels`)."""
    return jit_kernels(_JIT_CACHE, _fwd_kernel, _bwd_kernel, globals())


# ------------------------------------------------------------------------------------------------------
# Host side
# ------------------------------------------------------------------------------------------------------


def _block(KP: int, M: int) -> int:
    cap = max(1, 1024 // KP) if _interpret() else max(1, 256 // KP)  # interpreter: fewer, larger programs
    return max(1, min(cap, triton.next_power_of_2(M)))


# -- the kernels as PyTorch operators ---------------------------------------------------------------------
# As on the CPU path (snnedu.kernels.cpu), the forward and backward are registered with torch.library, so
# that torch.compile sees one opaque operator per neuron layer with a known output shape and backward:
#
#   snnedu::triton_multistep(x [T, B, *S], v0 [K, B, *S], k, th, vr, charge, hard, detach, sg_kind, sg_p, save_h,
#                            name)
#       -> (spikes [T, K, B, *S], v_last [K, B, *S], h_seq [T, K, B, *S] fp32, or [0] without save_h)
#   snnedu::triton_multistep_backward(g_spikes, g_vlast, h_seq, x, v0, k, th, ..., need_k, need_th)
#       -> (grad_x, grad_v0, grad_k, grad_th) in the shapes and dtypes of x, v0, k and th
#
# The potentials before reset (h_seq) are an output of the forward operator: backward needs them and an
# operator keeps nothing else between the two. Eager calls run the same two functions through the
# autograd Function TritonMultistep (no operator dispatch).

def _operator_inputs(x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p):
    """What both operators start from: the plan, the input and initial potential as contiguous tensors,
    and the leak and threshold as ``[K, N]`` rows on the input's device."""
    spec = MultistepSpec.of_operator(x, v0, vr, charge, hard, detach, sg_kind, sg_p)
    return (spec, x.detach().contiguous(), v0.detach().contiguous(), spec.rows(k, x.device),
            spec.rows(th, x.device))


def _forward_impl(x: torch.Tensor, v0: torch.Tensor, k: torch.Tensor, th: torch.Tensor, vr: float, charge: int,
                  hard: bool, detach: bool, sg_kind: int, sg_p: float, save_h: bool, name: str
                  ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    check_finite(name, x)     # one scan of the input (the CPU kernel does it as it reads)
    fwd, _ = _kernels()
    spec, x, v0c, kp, thp = _operator_inputs(x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p)
    lay = spec.layout
    T, K, J, N = lay.T, lay.K, lay.J, lay.N
    dev = x.device
    spikes = torch.empty((T, K, lay.B, *lay.S), dtype=x.dtype, device=dev)
    v_last = torch.empty((K, lay.B, *lay.S), dtype=x.dtype, device=dev)
    h_seq = torch.empty((T, K, lay.B, *lay.S) if save_h else (0,), dtype=torch.float32, device=dev)
    KP = triton.next_power_of_2(K)
    BLOCK = _block(KP, J)
    if J > 0:
        fwd[(triton.cdiv(J, BLOCK),)](
            x, v0c, kp, thp, spikes, h_seq, v_last,
            T, K, J, N, kp.stride(0), kp.stride(1), thp.stride(0), thp.stride(1), spec.v_reset,
            CHARGE=charge, HARD=hard, SAVE_H=save_h, KP=KP, BLOCK=BLOCK, num_warps=4,
            enable_fp_fusion=False)  # no fused multiply-add: rounds like the reference, spikes identical
    return spikes, v_last, h_seq


def _backward_impl(g_spikes: torch.Tensor, g_vlast: torch.Tensor, h_seq: torch.Tensor, x: torch.Tensor,
                   v0: torch.Tensor, k: torch.Tensor, th: torch.Tensor, vr: float, charge: int, hard: bool,
                   detach: bool, sg_kind: int, sg_p: float, need_k: bool, need_th: bool
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    _, bwd = _kernels()
    spec, x, v0c, kp, thp = _operator_inputs(x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p)
    lay = spec.layout
    T, K, J, N = lay.T, lay.K, lay.J, lay.N
    dev = x.device
    f32 = torch.float32
    gx = torch.empty_like(x)
    gv0 = torch.empty((K, J), dtype=f32, device=dev)
    gk = torch.empty((K, J) if need_k else (1,), dtype=f32, device=dev)
    gth = torch.empty((K, J) if need_th else (1,), dtype=f32, device=dev)
    KP = triton.next_power_of_2(K)
    BLOCK = _block(KP, J)
    if J > 0:
        bwd[(triton.cdiv(J, BLOCK),)](
            g_spikes.contiguous(), g_vlast.contiguous(), h_seq, x, v0c, kp, thp, gx, gv0, gk, gth,
            T, K, J, N, kp.stride(0), kp.stride(1), thp.stride(0), thp.stride(1), spec.v_reset,
            spec.surrogate_param, CHARGE=charge, HARD=hard, DETACH=detach, SG=sg_kind, HAS_GS=True, HAS_GV=True,
            NEED_K=need_k, NEED_TH=need_th, KP=KP, BLOCK=BLOCK, num_warps=4)
    return (gx, gv0.view(v0.shape).to(v0.dtype),
            spec.grad_to(gk, k.shape, k.dtype) if need_k else k.new_zeros(k.shape),
            spec.grad_to(gth, th.shape, th.dtype) if need_th else th.new_zeros(th.shape))


if triton is not None:
    _op_forward = torch.library.custom_op("snnedu::triton_multistep", _forward_impl, mutates_args=())

    @_op_forward.register_fake
    def _(x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p, save_h, name):
        full = (x.shape[0], v0.shape[0], *x.shape[1:])
        return (x.new_empty(full), x.new_empty((v0.shape[0], *x.shape[1:])),
                x.new_empty(full if save_h else (0,), dtype=torch.float32))

    _op_backward = torch.library.custom_op("snnedu::triton_multistep_backward", _backward_impl, mutates_args=())

    @_op_backward.register_fake
    def _(g_spikes, g_vlast, h_seq, x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p, need_k, need_th):
        return x.new_empty(x.shape), v0.new_empty(v0.shape), k.new_empty(k.shape), th.new_empty(th.shape)


def _setup_context(ctx, inputs, output):
    x, v0, k, th, *plan, _save_h, _name = inputs
    ctx.save_for_backward(x, v0, k, th, output[2])
    ctx.plan = tuple(plan)


def _gradients(ctx, g_spikes, g_vlast, _g_h, backward=None):
    x, v0, k, th, h_seq = ctx.saved_tensors
    vr, charge, hard, detach, sg_kind, sg_p = ctx.plan
    need_k = bool(ctx.needs_input_grad[2]) and charge != int(Charge.IF)
    need_th = bool(ctx.needs_input_grad[3])
    g_spikes = torch.zeros((x.shape[0], v0.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device) \
        if g_spikes is None else g_spikes
    g_vlast = torch.zeros_like(v0) if g_vlast is None else g_vlast
    gx, gv0, gk, gth = (backward or _op_backward)(g_spikes, g_vlast, h_seq, x, v0, k, th, vr, charge, hard, detach,
                                                  sg_kind, sg_p, need_k, need_th)
    return (gx, gv0 if ctx.needs_input_grad[1] else None, gk if need_k else None, gth if need_th else None,
            None, None, None, None, None, None, None, None)


if triton is not None:
    _op_forward.register_autograd(_gradients, setup_context=_setup_context)


class TritonMultistep(torch.autograd.Function):
    """The fused kernels as an autograd Function, for eager mode (the operators' dispatch is skipped; the
    same functions run). Use :func:`triton_multistep`, which plans the call.

    ``forward(ctx, x_seq, v0, k, v_threshold, vr, charge, hard, detach, sg_kind, sg_p, save_h, name)``:
    ``x_seq`` ``[T, B, *sample]``, ``v0`` the initial potential ``[K, B, *sample]`` (also for ``K = 1``),
    ``k`` / ``v_threshold`` tensors (:func:`~snnedu.kernels.common.as_tensor`) and the plan's scalars
    (:meth:`~snnedu.kernels.common.MultistepSpec.operator_args`); returns spikes ``[T, K, B, *sample]``,
    ``v_last`` ``[K, B, *sample]`` and the potentials before reset (fp32, for backward).
    """

    @staticmethod
    def forward(ctx, *inputs):
        out = _forward_impl(*inputs)
        _setup_context(ctx, inputs, out)
        ctx.mark_non_differentiable(out[2])
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g_spikes, g_vlast, g_h):
        return _gradients(ctx, g_spikes, g_vlast, g_h, backward=_backward_impl)


def check_input(x_seq: torch.Tensor, what: str) -> None:
    """What every Triton kernel needs of its input: triton, a float32/float16/bfloat16 tensor, on CUDA
    (or on CPU under ``TRITON_INTERPRET=1``)."""
    if triton is None:
        raise RuntimeError(f"{what} needs the triton package (pip install triton)")
    if x_seq.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise NotImplementedError(f"{what} supports float32, float16 and bfloat16 inputs, got {x_seq.dtype}")
    if not x_seq.is_cuda and not _interpret():
        raise RuntimeError(f"{what} needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors)")


@flags("decay_input", "detach_reset")
def triton_multistep(x_seq: torch.Tensor, v0: Optional[torch.Tensor] = None, *, levels: Optional[int] = None,
                     k: Optional[Scalar] = None, v_threshold: Scalar = 1.0, v_reset: Optional[float] = 0.0,
                     decay_input: bool = True, detach_reset: bool = False, surrogate: Surrogate = None,
                     name: str = "neuron"):
    """Fused multi-step neuron: same arguments and results as :func:`snnedu.functional.neuron_multistep`.

    Args:
        x_seq: input ``[T, B, *sample]`` (fp32, fp16 or bf16; CUDA, or CPU under ``TRITON_INTERPRET=1``).
        v0: initial potential ``[B, *sample]`` (``levels == 1``) or ``[K, B, *sample]``; ``None`` starts
            from rest (``v_reset``, or 0 for the soft reset). It may broadcast to that shape.
        levels: ``K``, the number of levels of a multi-level unit (the input is shared by the levels);
            ``None`` infers it like the reference does: ``v0.shape[0]`` when ``v0`` has one more
            dimension than a time step, else 1.
        k: leak — ``None`` (IF), a float, or a tensor per layer / per neuron / per level.
        v_threshold: float or tensor (per layer, per neuron, per level ``[K, 1, ...]``).
        v_reset: float (hard reset) or ``None`` (soft reset).
        decay_input, detach_reset: as in :func:`snnedu.functional.charge` / ``reset_potential``.
        surrogate: a :class:`~snnedu.functional.surrogate.Rectangular`, ``Sigmoid``, ``ATan`` or
            ``Triangle`` instance (other classes raise :class:`NotImplementedError`).
        name: the neuron's name in the :class:`snnedu.errors.InputError` a NaN/inf input raises (unless
            input checks are off).

    Returns ``(spikes, v_last)``: spikes ``[T, B, *sample]`` (``[T, K, B, *sample]`` when ``levels > 1``)
    in ``x_seq``'s dtype, and the potential after the last step ``[(K,) B, *sample]``. Gradients flow to
    ``x_seq``, ``v0``, and to ``k`` / ``v_threshold`` when they are tensors requiring grad.
    """
    if surrogate is None:
        raise ValueError("triton_multistep needs a surrogate instance")
    spec = MultistepSpec.build(x_seq, v0, surrogate=surrogate, k=k, v_reset=v_reset, decay_input=decay_input,
                               detach_reset=detach_reset, levels=levels, what="triton_multistep")
    check_input(x_seq, "triton_multistep")
    traced = torch.compiler.is_compiling() or torch.jit.is_tracing()
    run = _op_forward if traced else TritonMultistep.apply
    save_h = torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad
                                             for t in (x_seq, v0, k, v_threshold))
    spikes, v_last, _ = run(x_seq, spec.initial_state(x_seq, v0), as_tensor(k), as_tensor(v_threshold),
                            *spec.operator_args(), save_h, name)
    return spec.results(spikes, v_last)
