r"""ALIF's Triton fast path: the adaptive-threshold LIF (:mod:`snnedu.alif`) as one GPU kernel each way.

Built on the core Triton kernels' pieces (:mod:`snnedu.kernels.triton_neuron`: the charge, reset and
surrogate helpers, the input checks) and the shared plan (:class:`~snnedu.kernels.common.MultistepSpec`).
Each program owns a block of elements and walks through time with :math:`V` and :math:`A` in
registers; forward saves the potentials before reset and the adapted thresholds (fp32 ``[T, J]`` each)
for backward, which follows the equations in :mod:`snnedu.kernels.alif_cpu`. Like the core kernels it
runs on CUDA, or on CPU tensors under ``TRITON_INTERPRET=1`` (how the tests check it).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch.autograd.function import once_differentiable

from .common import Charge, MultistepSpec, shape_dtype
from .triton_neuron import CHARGE_DECAY_INPUT, CHARGE_IF, _block, available, check_input, jit_kernels, tl, triton

__all__ = ["alif_triton_multistep"]

_charge = _reset = _surrogate_grad = _add_combine = None  # set per mode by _kernels() (see triton_neuron)


def _alif_fwd_kernel(x_ptr, v0_ptr, a0_ptr, k_ptr, th_ptr, s_ptr, h_ptr, theta_ptr, vlast_ptr, alast_ptr,
                     T, J, N, pk, pt, v_reset, beta, rho,
                     CHARGE: tl.constexpr, HARD: tl.constexpr, SAVE: tl.constexpr, BLOCK: tl.constexpr):
    cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)   # element b * N + n
    mask = cols < J
    n = cols % N
    base = tl.load(th_ptr + n * pt, mask=mask, other=1.0).to(tl.float32)
    if CHARGE != CHARGE_IF:
        leak = tl.load(k_ptr + n * pk, mask=mask, other=0.0).to(tl.float32)
    else:
        leak = 0.0
    v = tl.load(v0_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    a = tl.load(a0_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    vr = v_reset if HARD else 0.0
    offs = cols
    for _t in range(T):
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        theta = base + beta * a
        h = _charge(v, x, leak, vr, CHARGE)
        if SAVE:
            tl.store(h_ptr + offs, h, mask=mask)
            tl.store(theta_ptr + offs, theta, mask=mask)
        spike = (h - theta) >= 0.0
        s = spike.to(tl.float32)
        tl.store(s_ptr + offs, s.to(s_ptr.dtype.element_ty), mask=mask)
        v = _reset(h, spike, theta, vr, HARD)
        a = rho * a + s
        offs += J
    tl.store(vlast_ptr + cols, v.to(vlast_ptr.dtype.element_ty), mask=mask)
    tl.store(alast_ptr + cols, a.to(alast_ptr.dtype.element_ty), mask=mask)


def _alif_bwd_kernel(gs_ptr, gv_ptr, ga_ptr, h_ptr, theta_ptr, x_ptr, v0_ptr, k_ptr,
                     gx_ptr, gv0_ptr, ga0_ptr, gk_ptr, gth_ptr,
                     T, J, N, pk, v_reset, beta, rho, sg_p,
                     CHARGE: tl.constexpr, HARD: tl.constexpr, DETACH: tl.constexpr, SG: tl.constexpr,
                     NEED_K: tl.constexpr, NEED_TH: tl.constexpr, BLOCK: tl.constexpr):
    cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < J
    n = cols % N
    if CHARGE != CHARGE_IF:
        leak = tl.load(k_ptr + n * pk, mask=mask, other=0.0).to(tl.float32)
    vr = v_reset if HARD else 0.0
    gv = tl.load(gv_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    ga = tl.load(ga_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    if NEED_K:
        v0 = tl.load(v0_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        gk = tl.full([BLOCK], 0.0, tl.float32)
    if NEED_TH:
        gth_sum = tl.full([BLOCK], 0.0, tl.float32)
    offs = (T - 1).to(tl.int64) * J + cols
    h = tl.load(h_ptr + offs, mask=mask, other=0.0)
    th = tl.load(theta_ptr + offs, mask=mask, other=1.0)
    for i in range(T):
        t = T - 1 - i
        z = h - th
        spike = z >= 0.0
        s = spike.to(tl.float32)
        g = _surrogate_grad(z, sg_p, SG)
        gs = tl.load(gs_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        # dL/dS collects the output's gradient, the adaptation's (A = ρA + S) and the reset's
        if DETACH:
            gz = (gs + ga) * g
        elif HARD:
            gz = (gs + ga + gv * (vr - h)) * g
        else:
            gz = (gs + ga - gv * th) * g
        if HARD:
            gh = gz + gv * (1.0 - s)
            gth = -gz
        else:
            gh = gz + gv
            gth = -gz - gv * s
        gh = tl.where(mask, gh, 0.0)
        gth = tl.where(mask, gth, 0.0)
        if NEED_TH:
            gth_sum += gth
        h_prev = tl.load(h_ptr + offs - J, mask=mask & (t > 0), other=0.0)
        th_prev = tl.load(theta_ptr + offs - J, mask=mask & (t > 0), other=1.0)
        if NEED_K:
            vp = tl.where(t > 0, _reset(h_prev, (h_prev - th_prev) >= 0.0, th_prev, vr, HARD), v0)
            if CHARGE == CHARGE_DECAY_INPUT:
                x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
                gk += gh * (x - (vp - vr))
            else:
                gk -= gh * (vp - vr)
        if CHARGE == CHARGE_DECAY_INPUT:
            gx = leak * gh
        else:
            gx = gh
        tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        ga = rho * ga + beta * gth
        if CHARGE == CHARGE_IF:
            gv = gh
        else:
            gv = (1.0 - leak) * gh
        h = h_prev
        th = th_prev
        offs -= J
    tl.store(gv0_ptr + cols, gv, mask=mask)
    tl.store(ga0_ptr + cols, ga, mask=mask)
    if NEED_K:
        tl.store(gk_ptr + cols, gk, mask=mask)
    if NEED_TH:
        tl.store(gth_ptr + cols, gth_sum, mask=mask)


_JIT_CACHE: dict = {}


def _kernels():
    """``(fwd, bwd)`` of the ALIF kernels for the current mode, with the helpers they call set."""
    return jit_kernels(_JIT_CACHE, _alif_fwd_kernel, _alif_bwd_kernel, globals())


class _ALIFTriton(torch.autograd.Function):
    """``forward(ctx, x [T, B, *S], v0, a0 [B, *S], k, v_threshold, spec, beta, rho)`` ->
    ``(spikes, v_last, a_last)``."""

    @staticmethod
    def forward(ctx, x_seq, v0, a0, k, v_threshold, spec: MultistepSpec, beta: float, rho: float):
        fwd, _ = _kernels()
        lay = spec.layout
        T, J = lay.T, lay.J
        dev = x_seq.device
        x = x_seq.detach().contiguous()
        v0c, a0c = v0.detach().contiguous(), a0.detach().contiguous()
        kp, thp = spec.rows(k, dev), spec.rows(v_threshold, dev)
        spikes = torch.empty_like(x)
        v_last, a_last = torch.empty_like(x[0]), torch.empty_like(x[0])
        save = any(ctx.needs_input_grad[:5])
        h_seq = torch.empty((T, J) if save else (1,), dtype=torch.float32, device=dev)
        theta_seq = torch.empty_like(h_seq)
        BLOCK = _block(1, J)    # one level: the core kernels' block for K = 1
        if J > 0:
            fwd[(triton.cdiv(J, BLOCK),)](
                x, v0c, a0c, kp, thp, spikes, h_seq, theta_seq, v_last, a_last,
                T, J, lay.N, kp.stride(1), thp.stride(1), spec.v_reset, beta, rho,
                CHARGE=int(spec.charge), HARD=spec.hard_reset, SAVE=save, BLOCK=BLOCK, num_warps=4,
                enable_fp_fusion=False)  # rounds like the reference: spikes identical
        if save:
            ctx.save_for_backward(h_seq, theta_seq, x, v0c, kp)
            ctx.plan = (spec, beta, rho, BLOCK, shape_dtype(k), shape_dtype(v_threshold))
        return spikes, v_last, a_last

    @staticmethod
    @once_differentiable
    def backward(ctx, g_spikes, g_vlast, g_alast):
        _, bwd = _kernels()
        h_seq, theta_seq, x, v0c, kp = ctx.saved_tensors
        spec, beta, rho, BLOCK, k_sd, th_sd = ctx.plan
        lay = spec.layout
        T, J = lay.T, lay.J
        f32, dev = torch.float32, x.device
        need_k = bool(ctx.needs_input_grad[3]) and spec.charge != Charge.IF
        need_th = bool(ctx.needs_input_grad[4])
        gx = torch.empty_like(x)
        gv0, ga0 = torch.empty(J, dtype=f32, device=dev), torch.empty(J, dtype=f32, device=dev)
        gk = torch.empty(J if need_k else 1, dtype=f32, device=dev)
        gth = torch.empty(J if need_th else 1, dtype=f32, device=dev)
        if J > 0:
            bwd[(triton.cdiv(J, BLOCK),)](
                g_spikes.contiguous(), g_vlast.contiguous(), g_alast.contiguous(), h_seq, theta_seq, x, v0c, kp,
                gx, gv0, ga0, gk, gth, T, J, lay.N, kp.stride(1), spec.v_reset, beta, rho, spec.surrogate_param,
                CHARGE=int(spec.charge), HARD=spec.hard_reset, DETACH=spec.detach_reset, SG=int(spec.surrogate),
                NEED_K=need_k, NEED_TH=need_th, BLOCK=BLOCK, num_warps=4)
        shape = (lay.B, *lay.S)
        return (gx, gv0.view(shape).to(x.dtype), ga0.view(shape).to(x.dtype),
                spec.grad_to(gk.view(1, J), *k_sd) if need_k else None,
                spec.grad_to(gth.view(1, J), *th_sd) if need_th else None, None, None, None)



def alif_triton_multistep(x_seq: torch.Tensor, state0: Optional[Tuple[torch.Tensor, torch.Tensor]] = None, *,
                          surrogate, k, v_threshold=1.0, beta: float, rho: float, v_reset: Optional[float] = 0.0,
                          decay_input: bool = True, detach_reset: bool = False):
    """ALIF over a sequence with the Triton kernels, the registered ``"triton"`` fast path of
    :data:`snnedu.alif.ALIF_FAMILY`: the arguments of :func:`snnedu.alif.alif_step`, with ``x_seq``
    ``[T, B, ...]`` (fp32, fp16 or bf16; CUDA, or CPU under ``TRITON_INTERPRET=1``) and ``state0``
    ``None`` (rest) or ``(v, a)`` (each ``[B, ...]``). Returns ``(spikes [T, B, ...], (v_last, a_last))``
    in ``x_seq``'s dtype."""
    spec = MultistepSpec.build(x_seq, None, surrogate=surrogate, k=k, v_reset=v_reset, decay_input=decay_input,
                               detach_reset=detach_reset, what="the ALIF Triton fast path")
    if not available():
        raise RuntimeError("the ALIF Triton fast path needs triton and a CUDA device (or TRITON_INTERPRET=1)")
    check_input(x_seq, "the ALIF Triton fast path")
    shape = x_seq.shape[1:]
    if state0 is None:
        v0, a0 = x_seq.new_full(shape, spec.v_reset), x_seq.new_zeros(shape)
    else:
        v0, a0 = (s.expand(shape) for s in state0)
    spikes, v_last, a_last = _ALIFTriton.apply(x_seq, v0, a0, k, v_threshold, spec, float(beta), float(rho))
    return spikes, (v_last, a_last)
