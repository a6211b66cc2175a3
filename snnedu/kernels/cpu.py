"""The CPU fast path: multi-step neurons as one compiled loop over time (numba), forward and backward.

The reference (:func:`snnedu.functional.neuron_multistep`) builds an autograd graph of ~6 tensor
operations per time step and keeps each one's inputs for backward. Here one :class:`torch.autograd.Function`
runs the whole sequence in a compiled loop: each element's potential stays in a register, the input is
read once per step, and backward needs only the potential before reset ``h[t]`` (spikes are
recomputed as ``h >= θ``) — and not even that is stored: backward re-runs the cheap forward of a block
of elements into a small local buffer. The elements are split into blocks that run in parallel on
``torch.get_num_threads()`` threads; a block walks through time with its potentials in a small local
array, which keeps the memory access contiguous.

It computes exactly what the reference computes (the charge is evaluated in the same order, so
forward values and spikes are bit-identical in float32) and the same gradients (up to float rounding)
for every family: IF, LIF (both charge forms), PLIF with per-layer/per-neuron/per-level leak,
MLF/PMLF/PMLF3 (K levels), learnable thresholds, hard/soft reset, ``detach_reset`` and the four
built-in surrogates. float16/bfloat16 (and, when called directly, float64) inputs are computed in
float32 and returned in their dtype; the neuron modules send float64 to the reference instead
(:func:`snnedu.kernels.chosen_backend`).
"""
from __future__ import annotations

import math
import threading
import weakref
from typing import Optional

import numpy as np
import torch

from .._checks import check_finite, flag
from .common import layout, param_rows, reduce_grad, surrogate_code

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
    @njit(cache=True)
    def _charge_fire(xt, vq, kq, tq, hb, sp, vr, mode, hard, n_el):
        """One step of one level for a block: ``hb`` <- h (charge, the reference's operation order),
        ``sp`` <- spikes, ``vq`` <- the potential after reset. One fused loop per variant."""
        if mode == 0:
            if hard:
                for i in range(n_el):
                    h = vq[i] + xt[i]
                    fire = h - tq[i] >= 0
                    hb[i] = h
                    sp[i] = 1.0 if fire else 0.0
                    vq[i] = vr if fire else h
            else:
                for i in range(n_el):
                    h = vq[i] + xt[i]
                    fire = h - tq[i] >= 0
                    hb[i] = h
                    sp[i] = 1.0 if fire else 0.0
                    vq[i] = h - tq[i] if fire else h
        elif mode == 1:
            if hard:
                for i in range(n_el):
                    h = vq[i] + kq[i] * (xt[i] - (vq[i] - vr))
                    fire = h - tq[i] >= 0
                    hb[i] = h
                    sp[i] = 1.0 if fire else 0.0
                    vq[i] = vr if fire else h
            else:
                for i in range(n_el):
                    h = vq[i] + kq[i] * (xt[i] - (vq[i] - vr))
                    fire = h - tq[i] >= 0
                    hb[i] = h
                    sp[i] = 1.0 if fire else 0.0
                    vq[i] = h - tq[i] if fire else h
        else:
            if hard:
                for i in range(n_el):
                    h = vq[i] - kq[i] * (vq[i] - vr) + xt[i]
                    fire = h - tq[i] >= 0
                    hb[i] = h
                    sp[i] = 1.0 if fire else 0.0
                    vq[i] = vr if fire else h
            else:
                for i in range(n_el):
                    h = vq[i] - kq[i] * (vq[i] - vr) + xt[i]
                    fire = h - tq[i] >= 0
                    hb[i] = h
                    sp[i] = 1.0 if fire else 0.0
                    vq[i] = h - tq[i] if fire else h

    @njit(cache=True)
    def _gather(v0, k, th, lo, n_el, N, v, kk, tt):
        for q in range(v.shape[0]):
            for i in range(n_el):
                n = (lo + i) % N          # per-element parameters, gathered once per block
                v[q, i] = v0[q, lo + i]
                kk[q, i] = k[q, n]
                tt[q, i] = th[q, n]

    @njit(cache=True, parallel=True)
    def _forward(x, v0, k, th, vr, mode, hard, N, spikes, vlast, bad):
        T, J = x.shape
        K = v0.shape[0]
        nblk = (J + _BLOCK - 1) // _BLOCK
        for blk in prange(nblk):
            lo = blk * _BLOCK
            n_el = min(J, lo + _BLOCK) - lo
            v = np.empty((K, n_el), dtype=np.float32)
            kk = np.empty((K, n_el), dtype=np.float32)
            tt = np.empty((K, n_el), dtype=np.float32)
            hb = np.empty(n_el, dtype=np.float32)
            _gather(v0, k, th, lo, n_el, N, v, kk, tt)
            nbad = 0
            for t in range(T):
                xt = x[t, lo:lo + n_el]
                for i in range(n_el):                    # NaN and inf fail |x| < inf
                    nbad += 0 if abs(xt[i]) < np.inf else 1
                for q in range(K):
                    _charge_fire(xt, v[q], kk[q], tt[q], hb, spikes[t, q, lo:lo + n_el], vr, mode, hard, n_el)
            bad[blk] = nbad
            for q in range(K):
                for i in range(n_el):
                    vlast[q, lo + i] = v[q, i]

    @njit(cache=True, parallel=True, fastmath=True)
    def _backward(gs, gs_time, gvl, x, v0, k, th, vr, mode, hard, detach, sg_kind, sg_p, N, need_k, need_th,
                  bsize, gx, gv0, gk, gth):
        T, J = x.shape
        K = v0.shape[0]
        nblk = (J + bsize - 1) // bsize
        inv_p, half_p, inv_p2 = 1.0 / sg_p, sg_p / 2, 1.0 / (sg_p * sg_p)
        c_hard = 1.0 if hard else 0.0                        # hard reset
        c_hnd = 1.0 if (hard and not detach) else 0.0        # hard reset, gradient through the reset
        c_snd = 1.0 if (not hard and not detach) else 0.0    # soft reset, gradient through the reset
        c_b = 1.0 if mode == 1 else 0.0                      # dh/dx = k (decay_input) or 1
        c_leak = 1.0 if mode != 0 else 0.0                   # dh/dv = 1 - k (LIF) or 1 (IF)
        for blk in prange(nblk):
            lo = blk * bsize
            n_el = min(J, lo + bsize) - lo
            v = np.empty((K, n_el), dtype=np.float32)
            kk = np.empty((K, n_el), dtype=np.float32)
            tt = np.empty((K, n_el), dtype=np.float32)
            _gather(v0, k, th, lo, n_el, N, v, kk, tt)
            # recompute the block's potentials before reset: nothing of size T x J is kept from forward
            hbuf = np.empty((T, K, n_el), dtype=np.float32)
            scratch = np.empty(n_el, dtype=np.float32)
            for t in range(T):
                xt = x[t, lo:lo + n_el]
                for q in range(K):
                    _charge_fire(xt, v[q], kk[q], tt[q], hbuf[t, q], scratch, vr, mode, hard, n_el)
            gv = np.empty((K, n_el), dtype=np.float32)
            for q in range(K):
                for i in range(n_el):
                    gv[q, i] = gvl[q, lo + i]
            acc_k = np.zeros((K, n_el), dtype=np.float32)
            acc_th = np.zeros((K, n_el), dtype=np.float32)
            gxt = np.empty(n_el, dtype=np.float32)
            gb = np.empty(n_el, dtype=np.float32)
            for t in range(T - 1, -1, -1):
                for i in range(n_el):
                    gxt[i] = 0.0
                xt = x[t, lo:lo + n_el]
                for q in range(K):
                    hq = hbuf[t, q]
                    gsq = gs[t if gs_time else 0, q, lo:lo + n_el]
                    hp = hbuf[t - 1, q] if t > 0 else hq
                    vq0 = v0[q, lo:lo + n_el]
                    gvq = gv[q]
                    kq = kk[q]
                    tq = tt[q]
                    # g = surrogate'(h - θ), one loop per kind (no branch on the kind inside a loop)
                    if sg_kind == 0:
                        for i in range(n_el):
                            gb[i] = inv_p if abs(hq[i] - tq[i]) < half_p else 0.0
                    elif sg_kind == 1:
                        for i in range(n_el):
                            e = 1.0 / (1.0 + math.exp(-sg_p * (hq[i] - tq[i])))
                            gb[i] = sg_p * e * (1.0 - e)
                    elif sg_kind == 2:
                        for i in range(n_el):
                            z = _HALF_PI * sg_p * (hq[i] - tq[i])
                            gb[i] = (sg_p / 2) / (1.0 + z * z)
                    else:
                        for i in range(n_el):
                            gb[i] = max(sg_p - abs(hq[i] - tq[i]), 0.0) * inv_p2
                    for i in range(n_el):
                        thr = tq[i]
                        h = hq[i]
                        g = gb[i]
                        s = 1.0 if h - thr >= 0 else 0.0
                        # dv/dh and dv/dθ of the four reset variants, selected by constant coefficients
                        dvdh = (1.0 - s) * c_hard + (1.0 - c_hard) + c_hnd * (vr - h) * g - c_snd * thr * g
                        gvi = gvq[i]
                        gh = gsq[i] * g + gvi * dvdh
                        if need_th:
                            dvdth = c_hnd * (h - vr) * g + (1.0 - c_hard) * (-s) + c_snd * thr * g
                            acc_th[q, i] += -gsq[i] * g + gvi * dvdth
                        if need_k and mode != 0:
                            if t > 0:
                                hpi = hp[i]
                                if hpi - thr >= 0:
                                    vprev = vr if hard else hpi - thr
                                else:
                                    vprev = hpi
                            else:
                                vprev = vq0[i]
                            if mode == 1:
                                acc_k[q, i] += gh * (xt[i] - (vprev - vr))
                            else:
                                acc_k[q, i] -= gh * (vprev - vr)
                        gxt[i] += c_b * kq[i] * gh + (1.0 - c_b) * gh
                        gvq[i] = (c_leak * (1.0 - kq[i]) + (1.0 - c_leak)) * gh
                gx[t, lo:lo + n_el] = gxt
            for q in range(K):
                for i in range(n_el):
                    gv0[q, lo + i] = gv[q, i]
                    gk[q, lo + i] = acc_k[q, i]
                    gth[q, lo + i] = acc_th[q, i]


class _BufferPool:
    """Large float32 buffers kept for reuse, like PyTorch's CUDA caching allocator.

    A fresh buffer larger than glibc's 32 MiB mmap threshold arrives as untouched pages, and the page
    faults of its first write cost as much as the neuron kernel itself. Buffers handed out here come
    back when the last tensor using them dies (a ``weakref.finalize`` on the numpy view that the tensor
    holds), and the next request of the same size reuses them. At most ``max_bytes`` are kept.
    """

    min_bytes = 32 << 20

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = max_bytes
        self.free = {}          # nbytes -> [np.ndarray, ...]
        self.kept = 0
        self.lock = threading.Lock()

    def empty(self, *shape: int) -> torch.Tensor:
        n = math.prod(shape)
        nbytes = n * 4
        if nbytes < self.min_bytes:
            return torch.empty(shape, dtype=torch.float32)
        with self.lock:
            stack = self.free.get(nbytes)
            base = stack.pop() if stack else None
            if base is not None:
                self.kept -= nbytes
        if base is None:
            base = np.empty(n, dtype=np.float32)
        view = base.view()
        weakref.finalize(view, self._release, base)
        return torch.from_numpy(view).view(shape)

    def _release(self, base: np.ndarray) -> None:
        with self.lock:
            if self.kept + base.nbytes <= self.max_bytes:
                self.free.setdefault(base.nbytes, []).append(base)
                self.kept += base.nbytes

    def clear(self) -> None:
        """Give every kept buffer back to the system."""
        with self.lock:
            self.free.clear()
            self.kept = 0


_pool = _BufferPool()


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def _set_threads() -> None:
    n = torch.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    # numba's OpenMP layer, launched by its first call, sets the OpenMP thread count it shares with
    # torch to NUMBA_NUM_THREADS: without this, torch.set_num_threads(1) silently became 2 after the
    # first neuron forward (and results then depended on whether that forward had run in this process)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _contiguous_f32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32).contiguous()


class _CPUMultistep(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_seq, v0, k_param, th_param, lay, k_is_none, vr, decay_input, hard, detach, surrogate,
                name):
        mode = 0 if k_is_none else (1 if decay_input else 2)
        x2 = x_seq.detach().reshape(lay.T, lay.J).to(torch.float32).contiguous()
        v02 = v0.detach().reshape(lay.K, lay.J).to(torch.float32).contiguous()
        k_rows = param_rows(None if k_is_none else k_param, lay, "cpu")
        th_rows = param_rows(th_param, lay, "cpu")
        spikes = _pool.empty(lay.T, lay.K, lay.J)
        vlast = torch.empty(lay.K, lay.J, dtype=torch.float32)
        bad = np.zeros((lay.J + _BLOCK - 1) // _BLOCK, dtype=np.int64)
        _set_threads()
        _forward(_np(x2), _np(v02), _np(k_rows), _np(th_rows), np.float32(vr), mode, hard, lay.N,
                 _np(spikes), _np(vlast), bad)
        if bad.any():
            check_finite(name, x_seq, known_bad=True)
        # backward recomputes the potentials from the input: the input is kept (no copy when it is
        # float32 and contiguous), nothing new of size T x B x N is stored
        ctx.save_for_backward(x2, v02, k_rows, th_rows,
                              k_param if isinstance(k_param, torch.Tensor) else torch.empty(0),
                              th_param if isinstance(th_param, torch.Tensor) else torch.empty(0))
        ctx.cfg = (lay, mode, float(vr), hard, detach, surrogate_code(surrogate), x_seq.dtype)
        return spikes.to(x_seq.dtype).reshape(lay.spikes_shape()), vlast.to(x_seq.dtype).reshape(lay.state_shape())

    @staticmethod
    def backward(ctx, g_spikes, g_vlast):
        x2, v02, k_rows, th_rows, k_param, th_param = ctx.saved_tensors
        lay, mode, vr, hard, detach, (sg_kind, sg_p), dtype = ctx.cfg
        need_k, need_th = bool(ctx.needs_input_grad[2]), bool(ctx.needs_input_grad[3])
        # a gradient that is the same at every step (of out.sum(), out.mean(0), ...) is broadcast over
        # time: pass one step of it instead of materialising T copies
        gs = torch.zeros(1, lay.K, lay.J) if g_spikes is None else g_spikes.reshape(lay.T, lay.K, lay.J)
        gs_time = gs.shape[0] > 1 and gs.stride(0) != 0
        gs = _contiguous_f32(gs if gs_time else gs[:1])
        gvl = (torch.zeros(lay.K, lay.J) if g_vlast is None
               else g_vlast.reshape(lay.K, lay.J).to(torch.float32).contiguous())
        gx = _pool.empty(lay.T, lay.J)
        gv0 = torch.empty(lay.K, lay.J)
        gk = torch.empty(lay.K, lay.J)
        gth = torch.empty(lay.K, lay.J)
        bsize = max(16, min(_BLOCK, (1 << 18) // (lay.T * lay.K)))   # recompute buffer <= 1 MiB per block
        _set_threads()
        _backward(_np(gs), gs_time, _np(gvl), _np(x2), _np(v02), _np(k_rows), _np(th_rows), np.float32(vr),
                  mode, hard, detach, sg_kind, np.float32(sg_p), lay.N, need_k, need_th, bsize,
                  _np(gx), _np(gv0), _np(gk), _np(gth))
        grad_x = gx.reshape(lay.T, lay.B, *lay.S).to(dtype)
        grad_v0 = gv0.reshape(lay.state_shape()).to(dtype) if ctx.needs_input_grad[1] else None
        grad_k = reduce_grad(gk, k_param, lay) if need_k else None
        grad_th = reduce_grad(gth, th_param, lay) if need_th else None
        return grad_x, grad_v0, grad_k, grad_th, None, None, None, None, None, None, None, None


def cpu_multistep(x_seq: torch.Tensor, v0: Optional[torch.Tensor] = None, *, surrogate, k=None,
                  v_threshold=1.0, v_reset: Optional[float] = 0.0, decay_input: bool = True,
                  detach_reset: bool = False, name: str = "neuron"):
    """Same arguments and results as :func:`snnedu.functional.neuron_multistep` (without ``record``):
    ``(spikes [T, (K,) B, *S], v_last)``. ``v0`` ``[K, B, *S]`` selects K levels. A NaN/inf in
    ``x_seq`` raises :class:`snnedu.errors.InputError` naming ``name`` (unless input checks are off)."""
    decay_input, detach_reset = flag("decay_input", decay_input), flag("detach_reset", detach_reset)
    lay = layout(x_seq, v0)
    if v0 is None:
        v0 = torch.full((lay.B, *lay.S), 0.0 if v_reset is None else float(v_reset), dtype=x_seq.dtype)
    vr = 0.0 if v_reset is None else float(v_reset)
    return _CPUMultistep.apply(x_seq, v0, k, v_threshold, lay, k is None, vr, bool(decay_input),
                               v_reset is not None, bool(detach_reset), surrogate, name)
