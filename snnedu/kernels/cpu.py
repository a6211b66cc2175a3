"""The CPU fast path: multi-step neurons as one compiled loop over time (numba), forward and backward.

The reference (:func:`snnedu.functional.neuron_multistep`) builds an autograd graph of ~6 tensor
operations per time step and keeps each one's inputs for backward. Here one :class:`torch.autograd.Function`
runs the whole sequence in a compiled loop: each element's potential stays in a register, the input is
read once per step, and backward needs only the potential before reset ``h[t]`` (spikes are
recomputed as ``h >= θ``). The elements are split into blocks that run in parallel on
``torch.get_num_threads()`` threads; a block walks through time with its potentials in a small local
array, which keeps the memory access contiguous.

It computes exactly what the reference computes (the charge is evaluated in the same order, so
forward values and spikes are bit-identical in float32) and the same gradients (up to float rounding)
for every family: IF, LIF (both charge forms), PLIF with per-layer/per-neuron/per-level leak,
MLF/PMLF/PMLF3 (K levels), learnable thresholds, hard/soft reset, ``detach_reset`` and the four
built-in surrogates. float16/bfloat16 inputs are computed in float32 and returned in their dtype.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from .common import Layout, layout, param_rows, reduce_grad, surrogate_code

__all__ = ["available", "cpu_multistep"]

try:  # numba is a pinned requirement; without it the reference path is used
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

_BLOCK = 1024
_HALF_PI = math.pi / 2


def available() -> bool:
    """True when numba is importable (the fast path can run)."""
    return numba is not None


if numba is not None:
    @njit(cache=True, inline="always")
    def _sg(u, kind, p):  # surrogate derivative g'(u), as in snnedu.functional.surrogate
        if kind == 0:
            return (1.0 / p) if abs(u) < p / 2 else 0.0
        if kind == 1:
            s = 1.0 / (1.0 + math.exp(-p * u))
            return p * s * (1.0 - s)
        if kind == 2:
            q = _HALF_PI * p * u
            return (p / 2) / (1.0 + q * q)
        d = p - abs(u)
        return d / (p * p) if d > 0 else 0.0

    @njit(cache=True, parallel=True)
    def _forward(x, v0, k, th, vr, mode, hard, N, spikes, hseq, save_h, vlast):
        T, J = x.shape
        K = v0.shape[0]
        nblk = (J + _BLOCK - 1) // _BLOCK
        for blk in prange(nblk):
            lo = blk * _BLOCK
            n_el = min(J, lo + _BLOCK) - lo
            v = np.empty((K, n_el), dtype=x.dtype)
            for q in range(K):
                for i in range(n_el):
                    v[q, i] = v0[q, lo + i]
            for t in range(T):
                for i in range(n_el):
                    j = lo + i
                    n = j % N
                    xt = x[t, j]
                    for q in range(K):
                        vp = v[q, i]
                        if mode == 0:
                            h = vp + xt
                        elif mode == 1:
                            h = vp + k[q, n] * (xt - (vp - vr))
                        else:
                            h = vp - k[q, n] * (vp - vr) + xt
                        if save_h:
                            hseq[t, q, j] = h
                        if h - th[q, n] >= 0:
                            spikes[t, q, j] = 1.0
                            v[q, i] = vr if hard else h - th[q, n]
                        else:
                            spikes[t, q, j] = 0.0
                            v[q, i] = h
            for q in range(K):
                for i in range(n_el):
                    vlast[q, lo + i] = v[q, i]

    @njit(cache=True, parallel=True)
    def _backward(gs, gvl, hseq, v0, x, k, th, vr, mode, hard, detach, sg_kind, sg_p, N, need_k, need_th,
                  gx, gv0, gk, gth):
        T, K, J = hseq.shape
        nblk = (J + _BLOCK - 1) // _BLOCK
        for blk in prange(nblk):
            lo = blk * _BLOCK
            n_el = min(J, lo + _BLOCK) - lo
            gv = np.empty((K, n_el), dtype=np.float32)
            for q in range(K):
                for i in range(n_el):
                    gv[q, i] = gvl[q, lo + i]
                    gk[q, lo + i] = 0.0
                    gth[q, lo + i] = 0.0
            for t in range(T - 1, -1, -1):
                for i in range(n_el):
                    j = lo + i
                    n = j % N
                    gxt = 0.0
                    for q in range(K):
                        thr = th[q, n]
                        h = hseq[t, q, j]
                        u = h - thr
                        g = _sg(u, sg_kind, sg_p)
                        s = 1.0 if u >= 0 else 0.0
                        if hard:
                            dvdh = (1.0 - s) + ((vr - h) * g if not detach else 0.0)
                        else:
                            dvdh = 1.0 - (thr * g if not detach else 0.0)
                        gvq = gv[q, i]
                        gh = gs[t, q, j] * g + gvq * dvdh
                        if need_th:
                            if hard:
                                dvdth = 0.0 if detach else (h - vr) * g
                            else:
                                dvdth = -s + (0.0 if detach else thr * g)
                            gth[q, j] += -gs[t, q, j] * g + gvq * dvdth
                        kk = k[q, n]
                        if need_k and mode != 0:
                            if t > 0:
                                hp = hseq[t - 1, q, j]
                                if hp - thr >= 0:
                                    vprev = vr if hard else hp - thr
                                else:
                                    vprev = hp
                            else:
                                vprev = v0[q, j]
                            if mode == 1:
                                gk[q, j] += gh * (x[t, j] - (vprev - vr))
                            else:
                                gk[q, j] += -gh * (vprev - vr)
                        if mode == 1:
                            gxt += kk * gh
                            gv[q, i] = (1.0 - kk) * gh
                        elif mode == 2:
                            gxt += gh
                            gv[q, i] = (1.0 - kk) * gh
                        else:
                            gxt += gh
                            gv[q, i] = gh
                    gx[t, j] = gxt
            for q in range(K):
                for i in range(n_el):
                    gv0[q, lo + i] = gv[q, i]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _set_threads() -> None:
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


class _CPUMultistep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq, v0, k_param, th_param, lay, k_is_none, vr, decay_input, hard, detach, surrogate):
        mode = 0 if k_is_none else (1 if decay_input else 2)
        x2 = x_seq.detach().reshape(lay.T, lay.J).to(torch.float32).contiguous()
        v02 = v0.detach().reshape(lay.K, lay.J).to(torch.float32).contiguous()
        k_rows = param_rows(None if k_is_none else k_param, lay, "cpu")
        th_rows = param_rows(th_param, lay, "cpu")
        spikes = torch.empty(lay.T, lay.K, lay.J, dtype=torch.float32)
        save_h = any(ctx.needs_input_grad[:4])  # autograd is off inside forward: ask what needs grads
        hseq = torch.empty(lay.T, lay.K, lay.J, dtype=torch.float32) if save_h else torch.empty(1, 1, 1)
        vlast = torch.empty(lay.K, lay.J, dtype=torch.float32)
        _set_threads()
        _forward(_np(x2), _np(v02), _np(k_rows), _np(th_rows), np.float32(vr), mode, hard, lay.N,
                 _np(spikes), _np(hseq), save_h, _np(vlast))
        need_x = mode == 1 and ctx.needs_input_grad[2]
        ctx.save_for_backward(hseq, v02, x2 if need_x else torch.empty(1, 1), k_rows, th_rows,
                              k_param if isinstance(k_param, torch.Tensor) else torch.empty(0),
                              th_param if isinstance(th_param, torch.Tensor) else torch.empty(0))
        ctx.cfg = (lay, mode, float(vr), hard, detach, surrogate_code(surrogate), x_seq.dtype)
        out = spikes.to(x_seq.dtype).reshape(lay.spikes_shape())
        return out, vlast.to(x_seq.dtype).reshape(lay.state_shape())

    @staticmethod
    def backward(ctx, g_spikes, g_vlast):
        hseq, v02, x2, k_rows, th_rows, k_param, th_param = ctx.saved_tensors
        lay, mode, vr, hard, detach, (sg_kind, sg_p), dtype = ctx.cfg
        need_k, need_th = bool(ctx.needs_input_grad[2]), bool(ctx.needs_input_grad[3])
        gs = (torch.zeros(lay.T, lay.K, lay.J) if g_spikes is None
              else g_spikes.reshape(lay.T, lay.K, lay.J).to(torch.float32).contiguous())
        gvl = (torch.zeros(lay.K, lay.J) if g_vlast is None
               else g_vlast.reshape(lay.K, lay.J).to(torch.float32).contiguous())
        gx = torch.empty(lay.T, lay.J)
        gv0 = torch.empty(lay.K, lay.J)
        gk = torch.empty(lay.K, lay.J)
        gth = torch.empty(lay.K, lay.J)
        _set_threads()
        _backward(_np(gs), _np(gvl), _np(hseq), _np(v02), _np(x2), _np(k_rows), _np(th_rows), np.float32(vr),
                  mode, hard, detach, sg_kind, np.float32(sg_p), lay.N, need_k, need_th,
                  _np(gx), _np(gv0), _np(gk), _np(gth))
        grad_x = gx.reshape(lay.T, lay.B, *lay.S).to(dtype)
        grad_v0 = gv0.reshape(lay.state_shape()).to(dtype) if ctx.needs_input_grad[1] else None
        grad_k = reduce_grad(gk, k_param, lay) if need_k else None
        grad_th = reduce_grad(gth, th_param, lay) if need_th else None
        return grad_x, grad_v0, grad_k, grad_th, None, None, None, None, None, None, None


def cpu_multistep(x_seq: torch.Tensor, v0: Optional[torch.Tensor] = None, *, surrogate, k=None,
                  v_threshold=1.0, v_reset: Optional[float] = 0.0, decay_input: bool = True,
                  detach_reset: bool = False):
    """Same arguments and results as :func:`snnedu.functional.neuron_multistep` (without ``record``):
    ``(spikes [T, (K,) B, *S], v_last)``. ``v0`` ``[K, B, *S]`` selects K levels."""
    lay = layout(x_seq, v0)
    if v0 is None:
        v0 = torch.full((lay.B, *lay.S), 0.0 if v_reset is None else float(v_reset), dtype=x_seq.dtype)
    vr = 0.0 if v_reset is None else float(v_reset)
    return _CPUMultistep.apply(x_seq, v0, k, v_threshold, lay, k is None, vr, bool(decay_input),
                               v_reset is not None, bool(detach_reset), surrogate)
