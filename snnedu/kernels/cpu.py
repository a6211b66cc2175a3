"""The CPU fast path: multi-step neurons as one compiled loop over time (numba), forward and backward.

The reference (:func:`snnedu.functional.neuron_multistep`) builds an autograd graph of ~6 tensor
operations per time step and keeps each one's inputs for backward. Here one operator runs the whole
sequence in a compiled loop: each element's potential stays in a register, the input is
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

The forward and backward loops are registered with ``torch.library`` as the operators
``snnedu::cpu_multistep`` and ``snnedu::cpu_multistep_backward``, with fake implementations (output
shapes only) and the backward as their autograd rule, so ``torch.compile(model)`` (any backend,
``fullgraph=True`` too) and ``torch.jit.trace`` see one opaque operator per neuron layer instead of
trying to trace into numba, and compute exactly what eager mode computes (``tests/test_compile.py``).
Eager calls run the same two functions through a plain :class:`torch.autograd.Function`, which skips
the operator dispatch (0.1-0.2 ms a call).
"""
from __future__ import annotations

import math
import threading
import weakref
from typing import Optional, Tuple

import numpy as np
import torch

from .._checks import check_finite, flag
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


# -- the kernels as PyTorch operators ---------------------------------------------------------------------
# Registered with torch.library, so that torch.compile (dynamo / AOTAutograd / inductor) treats each as one
# opaque operator with a known output shape (the fake implementations) and a known backward, instead of
# trying to trace into numba. The operators' contract:
#
#   snnedu::cpu_multistep(x [T, B, *S], v0 [K, B, *S], k, th, vr, mode, hard, detach, sg_kind, sg_p, name)
#       -> (spikes [T, K, B, *S], v_last [K, B, *S])
#
# with the leak k and threshold th as tensors of the parameters' own shapes (broadcastable to
# [K, 1, *S]; a 0-d tensor for a float) and the scalars of the plan: the reset potential vr, the charge
# mode (0 IF, 1 decay_input, 2 plain leak), hard/soft reset, detach_reset, the surrogate code and
# parameter (used by backward only) and the neuron's name (for the NaN/inf message).
# snnedu::cpu_multistep_backward(g_spikes, g_vlast, x, v0, k, th, ..., need_k, need_th) returns
# (grad_x, grad_v0, grad_k, grad_th) in the shapes and dtypes of x, v0, k and th.

def _flat_f32(t: torch.Tensor, *shape: int) -> torch.Tensor:
    return t.detach().reshape(shape).to(torch.float32).contiguous()


def _forward_impl(x: torch.Tensor, v0: torch.Tensor, k: torch.Tensor, th: torch.Tensor, vr: float, mode: int,
                  hard: bool, detach: bool, sg_kind: int, sg_p: float, name: str) -> Tuple[torch.Tensor, torch.Tensor]:
    lay = Layout(x.shape[0], v0.shape[0], x.shape[1], tuple(x.shape[2:]))
    T, K, J = lay.T, lay.K, lay.J
    x2 = _flat_f32(x, T, J)
    v02 = _flat_f32(v0, K, J)
    spikes = _pool.empty(T, K, J)
    vlast = torch.empty(K, J, dtype=torch.float32)
    bad = np.zeros((J + _BLOCK - 1) // _BLOCK, dtype=np.int64)
    _set_threads()
    _forward(_np(x2), _np(v02), _np(param_rows(k, lay, "cpu")), _np(param_rows(th, lay, "cpu")), np.float32(vr),
             mode, hard, lay.N, _np(spikes), _np(vlast), bad)
    if bad.any():
        check_finite(name, x, known_bad=True)
    return (spikes.to(x.dtype).view(T, K, *x.shape[1:]),
            vlast.to(x.dtype).view(K, *x.shape[1:]))


_op_forward = torch.library.custom_op("snnedu::cpu_multistep", _forward_impl, mutates_args=(),
                                     device_types="cpu")


@_op_forward.register_fake
def _(x, v0, k, th, vr, mode, hard, detach, sg_kind, sg_p, name):
    return x.new_empty((x.shape[0], v0.shape[0], *x.shape[1:])), x.new_empty((v0.shape[0], *x.shape[1:]))


def _backward_impl(g_spikes: torch.Tensor, g_vlast: torch.Tensor, x: torch.Tensor, v0: torch.Tensor,
                   k: torch.Tensor, th: torch.Tensor, vr: float, mode: int, hard: bool, detach: bool,
                   sg_kind: int, sg_p: float, need_k: bool, need_th: bool
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    lay = Layout(x.shape[0], v0.shape[0], x.shape[1], tuple(x.shape[2:]))
    T, K, J = lay.T, lay.K, lay.J
    # a gradient that is the same at every step (of out.sum(), out.mean(0), ...) is broadcast over
    # time: pass one step of it instead of materialising T copies
    gs = g_spikes.reshape(T, K, J)
    gs_time = gs.shape[0] > 1 and gs.stride(0) != 0
    gs = (gs if gs_time else gs[:1]).to(torch.float32).contiguous()
    gvl = _flat_f32(g_vlast, K, J)
    gx = _pool.empty(T, J)
    gv0 = torch.empty(K, J)
    gk = torch.empty(K, J)
    gth = torch.empty(K, J)
    bsize = max(16, min(_BLOCK, (1 << 18) // max(1, T * K)))   # recompute buffer <= 1 MiB per block
    _set_threads()
    _backward(_np(gs), gs_time, _np(gvl), _np(_flat_f32(x, T, J)), _np(_flat_f32(v0, K, J)),
              _np(param_rows(k, lay, "cpu")), _np(param_rows(th, lay, "cpu")), np.float32(vr), mode, hard, detach,
              sg_kind, np.float32(sg_p), lay.N, need_k, need_th, bsize, _np(gx), _np(gv0), _np(gk), _np(gth))
    # per-element parameter gradients [K, B*N] (summed over time) -> the parameters' own shapes
    return (gx.to(x.dtype).view(x.shape), gv0.to(v0.dtype).view(v0.shape),
            reduce_grad(gk, k, lay) if need_k else k.new_zeros(k.shape),
            reduce_grad(gth, th, lay) if need_th else th.new_zeros(th.shape))


_op_backward = torch.library.custom_op("snnedu::cpu_multistep_backward", _backward_impl, mutates_args=(),
                                      device_types="cpu")


@_op_backward.register_fake
def _(g_spikes, g_vlast, x, v0, k, th, vr, mode, hard, detach, sg_kind, sg_p, need_k, need_th):
    return x.new_empty(x.shape), v0.new_empty(v0.shape), k.new_empty(k.shape), th.new_empty(th.shape)


def _setup_context(ctx, inputs, output):
    x, v0, k, th, vr, mode, hard, detach, sg_kind, sg_p, _name = inputs
    # backward recomputes the potentials from the input: the input is kept (no copy), nothing new of
    # size T x B x N is stored
    ctx.save_for_backward(x, v0, k, th)
    ctx.cfg = (vr, mode, hard, detach, sg_kind, sg_p)


def _gradients(ctx, g_spikes, g_vlast, backward=_op_backward):
    x, v0, k, th = ctx.saved_tensors
    vr, mode, hard, detach, sg_kind, sg_p = ctx.cfg
    need_k = bool(ctx.needs_input_grad[2]) and mode != 0
    need_th = bool(ctx.needs_input_grad[3])
    gx, gv0, gk, gth = backward(g_spikes, g_vlast, x, v0, k, th, vr, mode, hard, detach, sg_kind, sg_p,
                                    need_k, need_th)
    return (gx, gv0 if ctx.needs_input_grad[1] else None, gk if need_k else None, gth if need_th else None,
            None, None, None, None, None, None, None)


_op_forward.register_autograd(_gradients, setup_context=_setup_context)


class _EagerMultistep(torch.autograd.Function):
    """The same forward and backward as the operators, for eager mode: the operators' dispatch cost
    0.1-0.2 ms per call here (a third of the time of a small layer), so eager calls skip it. Both run
    the same functions, so they give identical values; torch.compile and torch.jit.trace see only the
    operators."""

    @staticmethod
    def forward(ctx, *inputs):
        out = _forward_impl(*inputs)
        _setup_context(ctx, inputs, out)
        return out

    @staticmethod
    def backward(ctx, g_spikes, g_vlast):
        return _gradients(ctx, g_spikes, g_vlast, backward=_backward_impl)


def _as_tensor(p) -> torch.Tensor:
    """A parameter for the operator: a tensor as it is (its gradient comes back in its shape), a float
    (or ``None``, the IF leak, unused) as a 0-d float32 tensor."""
    return p if isinstance(p, torch.Tensor) else torch.tensor(0.0 if p is None else float(p))


def cpu_multistep(x_seq: torch.Tensor, v0: Optional[torch.Tensor] = None, *, surrogate, k=None,
                  v_threshold=1.0, v_reset: Optional[float] = 0.0, decay_input: bool = True,
                  detach_reset: bool = False, name: str = "neuron"):
    """Same arguments and results as :func:`snnedu.functional.neuron_multistep` (without ``record``):
    ``(spikes [T, (K,) B, *S], v_last)``. ``v0`` ``[K, B, *S]`` selects K levels. A NaN/inf in
    ``x_seq`` raises :class:`snnedu.errors.InputError` naming ``name`` (unless input checks are off)."""
    decay_input, detach_reset = flag("decay_input", decay_input), flag("detach_reset", detach_reset)
    lay = layout(x_seq, v0)
    vr = 0.0 if v_reset is None else float(v_reset)
    if v0 is None:
        v0 = torch.full((lay.K, lay.B, *lay.S), vr, dtype=x_seq.dtype)
    mode = 0 if k is None else (1 if decay_input else 2)
    sg_kind, sg_p = surrogate_code(surrogate)
    traced = torch.compiler.is_compiling() or torch.jit.is_tracing()
    run = _op_forward if traced else _EagerMultistep.apply
    spikes, v_last = run(x_seq, v0.reshape(lay.K, lay.B, *lay.S), _as_tensor(k), _as_tensor(v_threshold),
                         vr, mode, v_reset is not None, bool(detach_reset), sg_kind, sg_p, name)
    return spikes.reshape(lay.spikes_shape()), v_last.reshape(lay.state_shape())
