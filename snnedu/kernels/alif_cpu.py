r"""ALIF's CPU fast path: the adaptive-threshold LIF (:mod:`snnedu.alif`) as one compiled loop over time.

It is built from the core kernel's pieces (:mod:`snnedu.kernels.cpu`) and plan
(:class:`~snnedu.kernels.common.MultistepSpec`): at each step the adapted threshold
:math:`\theta = V_{th} + \beta A` is written into the threshold buffer that the core's charge / fire /
reset loop reads, and then :math:`A \leftarrow \rho A + S`. So forward values and spikes are bit-identical
to the reference loop (:func:`snnedu.functional.state_multistep` over :func:`snnedu.alif.alif_step`).

Backward re-runs a block's forward into a local buffer (the potentials before reset and the thresholds)
and walks back through time with the gradients of both state variables. With :math:`z = H - \theta` and
:math:`g = \sigma'(z)` the surrogate derivative, at each step::

    dL/dS  = dL/dS(out) + dL/dA[t] + dL/dV[t] dV/dS       (dV/dS: V_reset - H hard, -θ soft; 0 detach_reset)
    dL/dz  = dL/dS g
    dL/dH  = dL/dz + dL/dV[t] dV/dH                       (dV/dH: 1 - S hard, 1 soft)
    dL/dθ  = -dL/dz + dL/dV[t] dV/dθ                      (dV/dθ: 0 hard, -S soft)
    dL/dA[t-1] = ρ dL/dA[t] + β dL/dθ,   dL/dV[t-1] = (1 - k) dL/dH,   dL/dX[t] = (k or 1) dL/dH

and the baseline threshold and the leak, when they are learned, collect ``dL/dθ`` and the core's
``dL/dk`` over time.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from .._checks import check_finite
from .common import Charge, MultistepSpec, shape_dtype
from .cpu import (_DECAY_INPUT, _IF, _pool, as_numpy, available, backward_block, flat_f32, forward_block,
                  numba, output_grad, set_threads)

__all__ = ["alif_cpu_multistep"]

if numba is not None:
    from numba import njit, prange

    from .cpu import _charge_fire, _copy_block, _gather_rows, _surrogate_grad

    @njit(cache=True)
    def _adapted_step(x_t, v, a, leak, base, theta, h_out, s_out, beta, rho, vr, charge, hard, n_el):
        """One ALIF step of a block: ``theta`` <- θ = V_th + β A, then the core's charge / fire / reset
        (``h_out`` <- H, ``s_out`` <- S, ``v`` <- V), then ``a`` <- ρ A + S. Returns the number of
        non-finite inputs."""
        bad = 0
        for i in range(n_el):
            bad += 0 if abs(x_t[i]) < np.inf else 1           # NaN and inf fail |x| < inf
            theta[i] = base[i] + beta * a[i]
        _charge_fire(x_t, v, leak, theta, h_out, s_out, vr, charge, hard, n_el)
        for i in range(n_el):
            a[i] = rho * a[i] + s_out[i]
        return bad

    @njit(cache=True)
    def _block_params(v0, a0, leak_rows, base_rows, lo, n_el, N):
        """A block's state ``[2, n_el]`` (V, A) and parameters ``[2, n_el]`` (leak, baseline threshold)."""
        state = np.empty((2, n_el), dtype=np.float32)
        params = np.empty((2, n_el), dtype=np.float32)
        _copy_block(v0, lo, n_el, state[0:1])
        _copy_block(a0, lo, n_el, state[1:2])
        _gather_rows(leak_rows, lo, n_el, N, params[0:1])
        _gather_rows(base_rows, lo, n_el, N, params[1:2])
        return state, params

    @njit(cache=True, parallel=True)
    def _forward(x, v0, a0, leak_rows, base_rows, beta, rho, vr, charge, hard, N, block, spikes, v_last, a_last,
                 n_bad):
        T, J = x.shape
        n_blocks = (J + block - 1) // block
        for blk in prange(n_blocks):
            lo = blk * block
            n_el = min(J, lo + block) - lo
            state, params = _block_params(v0, a0, leak_rows, base_rows, lo, n_el, N)
            h = np.empty(n_el, dtype=np.float32)
            theta = np.empty(n_el, dtype=np.float32)
            bad = 0
            for t in range(T):
                bad += _adapted_step(x[t, lo:lo + n_el], state[0], state[1], params[0], params[1], theta, h,
                                     spikes[t, lo:lo + n_el], beta, rho, vr, charge, hard, n_el)
            n_bad[blk] = bad
            for i in range(n_el):
                v_last[0, lo + i] = state[0, i]
                a_last[0, lo + i] = state[1, i]

    @njit(cache=True, parallel=True, fastmath=True)
    def _backward(g_spikes, g_spikes_per_step, g_vlast, g_alast, x, v0, a0, leak_rows, base_rows, beta, rho, vr,
                  charge, hard, detach, sg_kind, sg_p, N, need_leak, need_theta, block, gx, gv0, ga0, g_leak,
                  g_theta):
        T, J = x.shape
        n_blocks = (J + block - 1) // block
        hard_c = 1.0 if hard else 0.0
        through_hard = 1.0 if (hard and not detach) else 0.0     # dV/dS = V_reset - H through the hard reset
        through_soft = 1.0 if (not hard and not detach) else 0.0  # dV/dS = -θ through the soft reset
        input_scaled = 1.0 if charge == _DECAY_INPUT else 0.0
        leaky = 1.0 if charge != _IF else 0.0
        for blk in prange(n_blocks):
            lo = blk * block
            n_el = min(J, lo + block) - lo
            state, params = _block_params(v0, a0, leak_rows, base_rows, lo, n_el, N)
            # recompute the block's potentials before reset and thresholds: nothing of size T x J is kept
            h_seq = np.empty((T, n_el), dtype=np.float32)
            theta_seq = np.empty((T, n_el), dtype=np.float32)
            s_t = np.empty(n_el, dtype=np.float32)
            for t in range(T):
                _adapted_step(x[t, lo:lo + n_el], state[0], state[1], params[0], params[1], theta_seq[t], h_seq[t],
                              s_t, beta, rho, vr, charge, hard, n_el)
            gv = np.empty(n_el, dtype=np.float32)
            ga = np.empty(n_el, dtype=np.float32)
            for i in range(n_el):
                gv[i] = g_vlast[0, lo + i]
                ga[i] = g_alast[0, lo + i]
            acc_leak = np.zeros(n_el, dtype=np.float32)
            acc_theta = np.zeros(n_el, dtype=np.float32)
            sg = np.empty(n_el, dtype=np.float32)
            leak_q = params[0]
            for t in range(T - 1, -1, -1):
                x_t = x[t, lo:lo + n_el]
                gs_t = g_spikes[t if g_spikes_per_step else 0, 0, lo:lo + n_el]
                h_t = h_seq[t]
                th_t = theta_seq[t]
                _surrogate_grad(sg_kind, sg_p, h_t, th_t, sg, n_el)
                gx_t = gx[t, lo:lo + n_el]
                for i in range(n_el):
                    h = h_t[i]
                    th = th_t[i]
                    g = sg[i]
                    s = 1.0 if h - th >= 0 else 0.0
                    gz = (gs_t[i] + ga[i] + gv[i] * (through_hard * (vr - h) - through_soft * th)) * g
                    gh = gz + gv[i] * ((1.0 - s) * hard_c + (1.0 - hard_c))
                    gth = -gz - gv[i] * (1.0 - hard_c) * s
                    if need_theta:
                        acc_theta[i] += gth
                    if need_leak and charge != _IF:
                        if t > 0:                                 # the potential after the previous reset
                            hp = h_seq[t - 1, i]
                            tp = theta_seq[t - 1, i]
                            if hp - tp >= 0:
                                v_prev = vr if hard else hp - tp
                            else:
                                v_prev = hp
                        else:
                            v_prev = v0[0, lo + i]
                        if charge == _DECAY_INPUT:
                            acc_leak[i] += gh * (x_t[i] - (v_prev - vr))
                        else:
                            acc_leak[i] -= gh * (v_prev - vr)
                    ga[i] = rho * ga[i] + beta * gth
                    gx_t[i] = input_scaled * leak_q[i] * gh + (1.0 - input_scaled) * gh
                    gv[i] = (leaky * (1.0 - leak_q[i]) + (1.0 - leaky)) * gh
            for i in range(n_el):
                gv0[0, lo + i] = gv[i]
                ga0[0, lo + i] = ga[i]
                g_leak[0, lo + i] = acc_leak[i]
                g_theta[0, lo + i] = acc_theta[i]


class _ALIFMultistep(torch.autograd.Function):
    """``forward(ctx, x [T, B, *S], v0 [B, *S], a0 [B, *S], k, v_threshold, spec, beta, rho, name)`` ->
    ``(spikes, v_last, a_last)``; gradients to ``x``, ``v0``, ``a0`` and to ``k`` / ``v_threshold``
    when they are tensors."""

    @staticmethod
    def forward(ctx, x, v0, a0, k, v_threshold, spec: MultistepSpec, beta: float, rho: float, name: str):
        lay = spec.layout
        T, J = lay.T, lay.J
        spikes = _pool.empty(T, J)
        v_last = torch.empty(1, J)
        a_last = torch.empty(1, J)
        block = forward_block(J)
        n_bad = np.zeros((J + block - 1) // block, dtype=np.int64)
        leak_rows, base_rows = spec.rows(k, "cpu"), spec.rows(v_threshold, "cpu")
        set_threads()
        _forward(as_numpy(flat_f32(x, T, J)), as_numpy(flat_f32(v0, 1, J)), as_numpy(flat_f32(a0, 1, J)),
                 as_numpy(leak_rows), as_numpy(base_rows), np.float32(beta), np.float32(rho), np.float32(spec.v_reset),
                 int(spec.charge), spec.hard_reset, lay.N, block, as_numpy(spikes), as_numpy(v_last),
                 as_numpy(a_last), n_bad)
        if n_bad.any():
            check_finite(name, x, known_bad=True)
        ctx.save_for_backward(x, v0, a0, leak_rows, base_rows)
        ctx.plan = (spec, beta, rho, shape_dtype(k), shape_dtype(v_threshold))
        shape = (lay.B, *lay.S)
        return (spikes.to(x.dtype).view(T, *shape), v_last.to(x.dtype).view(shape), a_last.to(x.dtype).view(shape))

    @staticmethod
    def backward(ctx, g_spikes, g_vlast, g_alast):
        x, v0, a0, leak_rows, base_rows = ctx.saved_tensors
        spec, beta, rho, k_sd, th_sd = ctx.plan
        lay = spec.layout
        T, J = lay.T, lay.J
        need_k = bool(ctx.needs_input_grad[3]) and spec.charge != Charge.IF
        need_th = bool(ctx.needs_input_grad[4])
        gs, per_step, _ = output_grad(g_spikes, T, 1, J)   # (autograd hands over zeros for an unused output)
        gx = _pool.empty(T, J)
        gv0, ga0, gk, gth = (torch.empty(1, J) for _ in range(4))
        set_threads()
        _backward(as_numpy(gs), per_step,
                  as_numpy(flat_f32(g_vlast, 1, J)), as_numpy(flat_f32(g_alast, 1, J)),
                  as_numpy(flat_f32(x, T, J)), as_numpy(flat_f32(v0, 1, J)), as_numpy(flat_f32(a0, 1, J)),
                  as_numpy(leak_rows), as_numpy(base_rows), np.float32(beta), np.float32(rho),
                  np.float32(spec.v_reset), int(spec.charge), spec.hard_reset, spec.detach_reset, int(spec.surrogate),
                  np.float32(spec.surrogate_param), lay.N, need_k, need_th, backward_block(T, 3, J), as_numpy(gx),
                  as_numpy(gv0), as_numpy(ga0), as_numpy(gk), as_numpy(gth))
        return (gx.to(x.dtype).view(x.shape), gv0.to(v0.dtype).view(v0.shape), ga0.to(a0.dtype).view(a0.shape),
                spec.grad_to(gk, *k_sd) if need_k else None, spec.grad_to(gth, *th_sd) if need_th else None,
                None, None, None, None)



def alif_cpu_multistep(x_seq: torch.Tensor, state0: Optional[Tuple[torch.Tensor, torch.Tensor]] = None, *,
                       surrogate, k, v_threshold=1.0, beta: float, rho: float, v_reset: Optional[float] = 0.0,
                       decay_input: bool = True, detach_reset: bool = False, name: str = "ALIF"):
    """ALIF over a sequence on the CPU fast path, the registered ``"cpu"`` fast path of
    :data:`snnedu.alif.ALIF_FAMILY`: the arguments of :func:`snnedu.alif.alif_step`, with ``x_seq``
    ``[T, B, ...]`` and ``state0`` ``None`` (rest) or ``(v, a)`` (each ``[B, ...]``). Returns
    ``(spikes [T, B, ...], (v_last, a_last))``, the values of the reference loop (spikes and states
    bit-identical in float32; gradients within float rounding)."""
    spec = MultistepSpec.build(x_seq, None, surrogate=surrogate, k=k, v_reset=v_reset, decay_input=decay_input,
                               detach_reset=detach_reset, what="the ALIF CPU fast path")
    if not available():
        raise RuntimeError("the ALIF CPU fast path needs numba")
    if state0 is None:
        v0, a0 = x_seq[0].new_full(x_seq.shape[1:], spec.v_reset), x_seq.new_zeros(x_seq.shape[1:])
    else:
        v0, a0 = (s.expand(x_seq.shape[1:]) for s in state0)
    spikes, v_last, a_last = _ALIFMultistep.apply(x_seq, v0, a0, k, v_threshold, spec, float(beta), float(rho), name)
    return spikes, (v_last, a_last)
