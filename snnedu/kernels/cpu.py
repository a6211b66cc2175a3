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
import os
import threading
import weakref
from typing import Optional, Tuple

import numpy as np
import torch

from .._checks import check_finite
from .common import Charge, MultistepSpec, SurrogateKind, as_tensor

__all__ = ["available", "cpu_multistep"]

try:  # numba is a pinned requirement; without it the reference path is used
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

_BLOCK = 1024        # elements per block, at least (a block's potentials stay in a small local array)
_MAX_BLOCK = 16384   # ... and at most
_RECOMPUTE_FLOATS = 1 << 16   # backward: the recomputed potentials of a block, at most (256 KiB)
_HALF_PI = math.pi / 2
# the plan's kinds as plain ints, compile-time constants of the kernels (kernels.common.Charge / SurrogateKind)
_IF, _DECAY_INPUT = int(Charge.IF), int(Charge.DECAY_INPUT)
_RECTANGULAR, _SIGMOID, _ATAN = int(SurrogateKind.RECTANGULAR), int(SurrogateKind.SIGMOID), int(SurrogateKind.ATAN)


def available() -> bool:
    """True when numba is importable (the fast path can run)."""
    return numba is not None


if numba is not None:
    @njit(cache=True)
    def _charge_fire(x_t, v, leak, theta, h_out, s_out, vr, charge, hard, n_el):
        """One step of one level for a block of ``n_el`` elements: ``h_out`` <- the potential before
        reset (charged in the reference's operation order), ``s_out`` <- the spikes, ``v`` <- the
        potential after reset. One loop per variant, so no branch runs inside a loop."""
        if charge == _IF:
            if hard:
                for i in range(n_el):
                    h = v[i] + x_t[i]
                    fire = h - theta[i] >= 0
                    h_out[i] = h
                    s_out[i] = 1.0 if fire else 0.0
                    v[i] = vr if fire else h
            else:
                for i in range(n_el):
                    h = v[i] + x_t[i]
                    fire = h - theta[i] >= 0
                    h_out[i] = h
                    s_out[i] = 1.0 if fire else 0.0
                    v[i] = h - theta[i] if fire else h
        elif charge == _DECAY_INPUT:
            if hard:
                for i in range(n_el):
                    h = v[i] + leak[i] * (x_t[i] - (v[i] - vr))
                    fire = h - theta[i] >= 0
                    h_out[i] = h
                    s_out[i] = 1.0 if fire else 0.0
                    v[i] = vr if fire else h
            else:
                for i in range(n_el):
                    h = v[i] + leak[i] * (x_t[i] - (v[i] - vr))
                    fire = h - theta[i] >= 0
                    h_out[i] = h
                    s_out[i] = 1.0 if fire else 0.0
                    v[i] = h - theta[i] if fire else h
        else:
            if hard:
                for i in range(n_el):
                    h = v[i] - leak[i] * (v[i] - vr) + x_t[i]
                    fire = h - theta[i] >= 0
                    h_out[i] = h
                    s_out[i] = 1.0 if fire else 0.0
                    v[i] = vr if fire else h
            else:
                for i in range(n_el):
                    h = v[i] - leak[i] * (v[i] - vr) + x_t[i]
                    fire = h - theta[i] >= 0
                    h_out[i] = h
                    s_out[i] = 1.0 if fire else 0.0
                    v[i] = h - theta[i] if fire else h

    @njit(cache=True, fastmath=True, inline="always")
    def _surrogate_grad(kind, p, h, theta, out, n_el):
        """``out`` <- g(h - θ), the surrogate derivative of the spike (the formulas of
        :mod:`snnedu.functional.surrogate`); one loop per kind."""
        if kind == _RECTANGULAR:
            for i in range(n_el):
                out[i] = 1.0 / p if abs(h[i] - theta[i]) < p / 2 else 0.0
        elif kind == _SIGMOID:
            for i in range(n_el):
                e = 1.0 / (1.0 + math.exp(-p * (h[i] - theta[i])))
                out[i] = p * e * (1.0 - e)
        elif kind == _ATAN:
            for i in range(n_el):
                z = _HALF_PI * p * (h[i] - theta[i])
                out[i] = (p / 2) / (1.0 + z * z)
        else:
            for i in range(n_el):
                out[i] = max(p - abs(h[i] - theta[i]), 0.0) / (p * p)

    @njit(cache=True)
    def _gather_rows(rows, lo, n_el, N, out):
        """``out[q, i]`` <- ``rows[q, (lo + i) mod N]``: a block's per-element copy of ``[K, N]`` parameter
        rows (the neuron index wraps around instead of being divided out: one division per block)."""
        start = lo % N
        for q in range(out.shape[0]):
            n = start
            for i in range(n_el):
                out[q, i] = rows[q, n]
                n += 1
                if n == N:
                    n = 0

    @njit(cache=True)
    def _copy_block(state, lo, n_el, out):
        """``out[q, i]`` <- ``state[q, lo + i]``: a block of a ``[K, J]`` state."""
        for q in range(out.shape[0]):
            for i in range(n_el):
                out[q, i] = state[q, lo + i]

    @njit(cache=True, parallel=True)
    def _forward(x, v0, leak_rows, theta_rows, vr, charge, hard, N, block, spikes, v_last, n_bad):
        T, J = x.shape
        K = v0.shape[0]
        n_blocks = (J + block - 1) // block
        for blk in prange(n_blocks):
            lo = blk * block
            n_el = min(J, lo + block) - lo
            v = np.empty((K, n_el), dtype=np.float32)
            leak = np.empty((K, n_el), dtype=np.float32)
            theta = np.empty((K, n_el), dtype=np.float32)
            h = np.empty(n_el, dtype=np.float32)
            _copy_block(v0, lo, n_el, v)
            _gather_rows(leak_rows, lo, n_el, N, leak)
            _gather_rows(theta_rows, lo, n_el, N, theta)
            bad = 0
            for t in range(T):
                x_t = x[t, lo:lo + n_el]
                for i in range(n_el):                    # NaN and inf fail |x| < inf
                    bad += 0 if abs(x_t[i]) < np.inf else 1
                for q in range(K):
                    _charge_fire(x_t, v[q], leak[q], theta[q], h, spikes[t, q, lo:lo + n_el], vr, charge, hard, n_el)
            n_bad[blk] = bad
            for q in range(K):
                for i in range(n_el):
                    v_last[q, lo + i] = v[q, i]

    @njit(cache=True, parallel=True, fastmath=True)
    def _backward(g_spikes, g_spikes_per_step, g_spikes_per_level, g_vlast, x, v0, leak_rows, theta_rows, vr, charge, hard, detach,
                  sg_kind, sg_p, N, need_v0, need_leak, need_theta, block, gx, gv0, g_leak, g_theta):
        T, J = x.shape
        K = v0.shape[0]
        n_blocks = (J + block - 1) // block
        # dv/dh and dv/dθ of the four reset variants, selected by constant coefficients (no branch)
        hard_c = 1.0 if hard else 0.0                                # hard reset
        through_hard = 1.0 if (hard and not detach) else 0.0         # ... with gradient through the reset
        through_soft = 1.0 if (not hard and not detach) else 0.0     # soft reset, gradient through the reset
        input_scaled = 1.0 if charge == _DECAY_INPUT else 0.0        # dh/dx = k (Form A) or 1
        leaky = 1.0 if charge != _IF else 0.0                        # dh/dv = 1 - k (LIF) or 1 (IF)
        for blk in prange(n_blocks):
            lo = blk * block
            n_el = min(J, lo + block) - lo
            v = np.empty((K, n_el), dtype=np.float32)
            leak = np.empty((K, n_el), dtype=np.float32)
            theta = np.empty((K, n_el), dtype=np.float32)
            _copy_block(v0, lo, n_el, v)
            _gather_rows(leak_rows, lo, n_el, N, leak)
            _gather_rows(theta_rows, lo, n_el, N, theta)
            # recompute the block's potentials before reset: nothing of size T x J is kept from forward
            h_seq = np.empty((T, K, n_el), dtype=np.float32)
            scratch = np.empty(n_el, dtype=np.float32)
            for t in range(T):
                x_t = x[t, lo:lo + n_el]
                for q in range(K):
                    _charge_fire(x_t, v[q], leak[q], theta[q], h_seq[t, q], scratch, vr, charge, hard, n_el)
            gv = np.empty((K, n_el), dtype=np.float32)
            _copy_block(g_vlast, lo, n_el, gv)
            acc_leak = np.zeros((K, n_el), dtype=np.float32)
            acc_theta = np.zeros((K, n_el), dtype=np.float32)
            gx_t = np.empty(n_el, dtype=np.float32)
            sg = np.empty(n_el, dtype=np.float32)
            for t in range(T - 1, -1, -1):
                for i in range(n_el):
                    gx_t[i] = 0.0
                x_t = x[t, lo:lo + n_el]
                for q in range(K):
                    h_q = h_seq[t, q]
                    gs_q = g_spikes[t if g_spikes_per_step else 0, q if g_spikes_per_level else 0, lo:lo + n_el]
                    h_prev = h_seq[t - 1, q] if t > 0 else h_q
                    v_start = v0[q, lo:lo + n_el]
                    gv_q = gv[q]
                    leak_q = leak[q]
                    theta_q = theta[q]
                    _surrogate_grad(sg_kind, sg_p, h_q, theta_q, sg, n_el)
                    for i in range(n_el):
                        th = theta_q[i]
                        h = h_q[i]
                        g = sg[i]
                        s = 1.0 if h - th >= 0 else 0.0
                        dv_dh = (1.0 - s) * hard_c + (1.0 - hard_c) + through_hard * (vr - h) * g - through_soft * th * g
                        gv_i = gv_q[i]
                        gh = gs_q[i] * g + gv_i * dv_dh
                        if need_theta:
                            dv_dth = through_hard * (h - vr) * g + (1.0 - hard_c) * (-s) + through_soft * th * g
                            acc_theta[q, i] += -gs_q[i] * g + gv_i * dv_dth
                        if need_leak and charge != _IF:
                            if t > 0:                        # the potential after the previous step's reset
                                hp = h_prev[i]
                                if hp - th >= 0:
                                    v_prev = vr if hard else hp - th
                                else:
                                    v_prev = hp
                            else:
                                v_prev = v_start[i]
                            if charge == _DECAY_INPUT:
                                acc_leak[q, i] += gh * (x_t[i] - (v_prev - vr))
                            else:
                                acc_leak[q, i] -= gh * (v_prev - vr)
                        gx_t[i] += input_scaled * leak_q[i] * gh + (1.0 - input_scaled) * gh
                        gv_q[i] = (leaky * (1.0 - leak_q[i]) + (1.0 - leaky)) * gh
                gx[t, lo:lo + n_el] = gx_t
            for q in range(K):
                for i in range(n_el):
                    if need_v0:
                        gv0[q, lo + i] = gv[q, i]
                    if need_leak:
                        g_leak[q, lo + i] = acc_leak[q, i]
                    if need_theta:
                        g_theta[q, lo + i] = acc_theta[q, i]


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


def _pool_bytes(fraction: int = 8, cap: int = 4 << 30, floor: int = 1 << 30) -> int:
    """How many bytes of freed buffers :data:`_pool` keeps: 1/``fraction`` of the machine's RAM, between
    ``floor`` (1 GiB) and ``cap`` (4 GiB). A forward+backward at T=64 over 4 M neurons cycles two 1 GiB
    buffers (spikes, input gradient): with only 1 GiB kept, one of them came fresh from the system at every
    step, and its page faults made a forward take 3.6 s instead of 0.19 s on a 2-core VM."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return floor
    return int(min(cap, max(floor, ram // fraction)))


_pool = _BufferPool(max_bytes=_pool_bytes())


def set_threads() -> None:
    """Run numba's parallel loops on torch's thread count (and keep torch's own setting)."""
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
#   snnedu::cpu_multistep(x [T, B, *S], v0 [K, B, *S], k, th, vr, charge, hard, detach, sg_kind, sg_p, name)
#       -> (spikes [T, K, B, *S], v_last [K, B, *S])
#
# with the leak k and threshold th as tensors of the parameters' own shapes (broadcastable to
# [K, 1, *S]; a 0-d tensor for a float) and the plan's scalars (kernels.common.MultistepSpec): the reset
# potential vr, the Charge kind, hard/soft reset, detach_reset, the SurrogateKind and its parameter (used
# by backward only), and the neuron's name (for the NaN/inf message).
# snnedu::cpu_multistep_backward(g_spikes, g_vlast, x, v0, k, th, ..., need_v0, need_k, need_th) returns
# (grad_x, grad_v0, grad_k, grad_th) in the shapes and dtypes of x, v0, k and th (grad_v0 empty, [0],
# without need_v0: the initial potential of a module is its rest, which needs no gradient).

def flat_f32(t: torch.Tensor, *shape: int) -> torch.Tensor:
    """``t`` detached, reshaped to ``shape``, as a contiguous float32 tensor (a kernel's input)."""
    return t.detach().reshape(shape).to(torch.float32).contiguous()


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """The numpy view of a CPU tensor (no copy), for a numba kernel."""
    return t.detach().numpy()


def _forward_impl(x: torch.Tensor, v0: torch.Tensor, k: torch.Tensor, th: torch.Tensor, vr: float, charge: int,
                  hard: bool, detach: bool, sg_kind: int, sg_p: float, name: str) -> Tuple[torch.Tensor, torch.Tensor]:
    spec = MultistepSpec.of_operator(x, v0, vr, charge, hard, detach, sg_kind, sg_p)
    T, K, J = spec.layout.T, spec.layout.K, spec.layout.J
    spikes = _pool.empty(T, K, J)
    v_last = torch.empty(K, J, dtype=torch.float32)
    block = forward_block(J, K)
    n_bad = np.zeros((J + block - 1) // block, dtype=np.int64)
    set_threads()
    _forward(as_numpy(flat_f32(x, T, J)), as_numpy(flat_f32(v0, K, J)), as_numpy(spec.rows(k, "cpu")),
             as_numpy(spec.rows(th, "cpu")), np.float32(vr), charge, hard, spec.layout.N, block, as_numpy(spikes),
             as_numpy(v_last), n_bad)
    if n_bad.any():
        check_finite(name, x, known_bad=True)
    return (spikes.to(x.dtype).view(T, K, *x.shape[1:]),
            v_last.to(x.dtype).view(K, *x.shape[1:]))


_op_forward = torch.library.custom_op("snnedu::cpu_multistep", _forward_impl, mutates_args=(),
                                     device_types="cpu")


@_op_forward.register_fake
def _(x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p, name):
    return x.new_empty((x.shape[0], v0.shape[0], *x.shape[1:])), x.new_empty((v0.shape[0], *x.shape[1:]))


def output_grad(g: torch.Tensor, T: int, K: int, J: int) -> Tuple[torch.Tensor, bool, bool]:
    """The spikes' gradient as float32 ``[T or 1, K or 1, J]``, whether it varies over time and whether
    it varies over the levels. A gradient that is the same at every step (of ``out.sum()``,
    ``out.mean(0)``, ...) arrives broadcast over time, and the gradient of a multi-level unit's output
    (the sum of its levels' spikes) arrives broadcast over the levels: each is passed once instead of
    materialising T (or K) copies."""
    gs = g.reshape(T, K, J)
    per_step = gs.shape[0] > 1 and gs.stride(0) != 0
    per_level = gs.shape[1] > 1 and gs.stride(1) != 0
    gs = gs[:T if per_step else 1, :K if per_level else 1]
    return gs.to(torch.float32).contiguous(), per_step, per_level


def forward_block(J: int, K: int = 1) -> int:
    """Elements per block of a pass over ``J`` elements per step and ``K`` levels: 1024 for small
    problems, doubling with ``J`` up to 16384 / K, so that a large problem at a short T runs in about 64
    blocks (each block allocates its local arrays once: fewer, larger blocks cost less per element) while
    a block's ``K`` rows of state stay as small as one LIF block's, and there are still enough blocks to
    share among the threads. It depends on ``J`` and ``K`` alone, never on the thread count, so results
    do not."""
    block = _BLOCK
    while block * K < _MAX_BLOCK and J >= 128 * block:
        block *= 2
    return block


def backward_block(T: int, per_element: int, J: int) -> int:
    """Elements per block of a backward pass over ``J`` elements that recomputes ``per_element`` floats
    per step and element (``K`` levels: ``per_element = K``): :func:`forward_block`, made smaller where
    the recomputed buffer would exceed ``_RECOMPUTE_FLOATS`` (256 KiB, in the core's cache)."""
    return max(16, min(forward_block(J, per_element), _RECOMPUTE_FLOATS // max(1, T * per_element)))


def _backward_impl(g_spikes: torch.Tensor, g_vlast: torch.Tensor, x: torch.Tensor, v0: torch.Tensor,
                   k: torch.Tensor, th: torch.Tensor, vr: float, charge: int, hard: bool, detach: bool,
                   sg_kind: int, sg_p: float, need_v0: bool, need_k: bool, need_th: bool
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    spec = MultistepSpec.of_operator(x, v0, vr, charge, hard, detach, sg_kind, sg_p)
    T, K, J = spec.layout.T, spec.layout.K, spec.layout.J
    gs, per_step, per_level = output_grad(g_spikes, T, K, J)
    gx = _pool.empty(T, J)
    # a gradient nobody asked for is neither computed into memory nor allocated ([K, 0])
    gv0, gk, gth = (torch.empty(K, J if need else 0) for need in (need_v0, need_k, need_th))
    set_threads()
    _backward(as_numpy(gs), per_step, per_level, as_numpy(flat_f32(g_vlast, K, J)), as_numpy(flat_f32(x, T, J)),
              as_numpy(flat_f32(v0, K, J)), as_numpy(spec.rows(k, "cpu")), as_numpy(spec.rows(th, "cpu")),
              np.float32(vr), charge, hard, detach, sg_kind, np.float32(sg_p), spec.layout.N, need_v0, need_k,
              need_th, backward_block(T, K, J), as_numpy(gx), as_numpy(gv0), as_numpy(gk), as_numpy(gth))
    # per-element parameter gradients [K, B*N] (summed over time) -> the parameters' own shapes
    return (gx.to(x.dtype).view(x.shape), gv0.to(v0.dtype).view(v0.shape) if need_v0 else v0.new_empty((0,)),
            spec.grad_to(gk, k.shape, k.dtype) if need_k else k.new_zeros(k.shape),
            spec.grad_to(gth, th.shape, th.dtype) if need_th else th.new_zeros(th.shape))


_op_backward = torch.library.custom_op("snnedu::cpu_multistep_backward", _backward_impl, mutates_args=(),
                                      device_types="cpu")


@_op_backward.register_fake
def _(g_spikes, g_vlast, x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p, need_v0, need_k, need_th):
    return (x.new_empty(x.shape), v0.new_empty(v0.shape if need_v0 else (0,)), k.new_empty(k.shape),
            th.new_empty(th.shape))


def _setup_context(ctx, inputs, output):
    x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p, _name = inputs
    # backward recomputes the potentials from the input: the input is kept (no copy), nothing new of
    # size T x B x N is stored
    ctx.save_for_backward(x, v0, k, th)
    ctx.cfg = (vr, charge, hard, detach, sg_kind, sg_p)


def _gradients(ctx, g_spikes, g_vlast, backward=_op_backward):
    x, v0, k, th = ctx.saved_tensors
    vr, charge, hard, detach, sg_kind, sg_p = ctx.cfg
    need_v0 = bool(ctx.needs_input_grad[1])
    need_k = bool(ctx.needs_input_grad[2]) and charge != _IF
    need_th = bool(ctx.needs_input_grad[3])
    gx, gv0, gk, gth = backward(g_spikes, g_vlast, x, v0, k, th, vr, charge, hard, detach, sg_kind, sg_p,
                                need_v0, need_k, need_th)
    return (gx, gv0 if need_v0 else None, gk if need_k else None, gth if need_th else None,
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


def cpu_multistep(x_seq: torch.Tensor, v0: Optional[torch.Tensor] = None, *, surrogate, k=None,
                  v_threshold=1.0, v_reset: Optional[float] = 0.0, decay_input: bool = True,
                  detach_reset: bool = False, name: str = "neuron"):
    """Same arguments and results as :func:`snnedu.functional.neuron_multistep` (without ``record``):
    ``(spikes [T, (K,) B, *S], v_last)``. ``v0`` ``[K, B, *S]`` selects K levels. A NaN/inf in
    ``x_seq`` raises :class:`snnedu.errors.InputError` naming ``name`` (unless input checks are off)."""
    spec = MultistepSpec.build(x_seq, v0, surrogate=surrogate, k=k, v_reset=v_reset, decay_input=decay_input,
                               detach_reset=detach_reset, what="the CPU fast path")
    traced = torch.compiler.is_compiling() or torch.jit.is_tracing()
    run = _op_forward if traced else _EagerMultistep.apply
    spikes, v_last = run(x_seq, spec.initial_state(x_seq, v0), as_tensor(k), as_tensor(v_threshold),
                         *spec.operator_args(), name)
    return spec.results(spikes, v_last)
