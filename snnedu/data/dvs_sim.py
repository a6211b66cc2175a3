"""A small DVS (dynamic vision sensor) simulator: frames of light in, events out.

**The sensor model** (:func:`simulate_dvs`). A DVS pixel does not report intensity ``I`` but changes of
its log intensity ``L = log(eps + I)``. Each pixel keeps a reference level ``L_ref`` (set when it last
fired); whenever ``|L - L_ref|`` reaches the contrast threshold ``C`` it emits an event — ON
(``p = 1``) for brighter, OFF (``p = 0``) for darker — and moves ``L_ref`` by ``C`` in that direction.
Between two frames the log intensity is taken to change linearly in time, so a change of ``k C``
gives ``k`` events whose time stamps sit where the straight line crosses the levels
``L_ref ± C, ± 2C, ...``. A refractory period and Poisson background activity
(:func:`background_noise`) complete the model.

The offline stand-ins of the event datasets (:mod:`snnedu.data.standins`) record their generated
scenes with it. Everything is plain numpy and deterministic given ``seed``.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .._checks import real, short_repr
from ..errors import HyperParameterError, InputError
from .events import make_events

__all__ = ["simulate_dvs", "background_noise"]


# --------------------------------------------------------------------------------------------------
# the sensor
# --------------------------------------------------------------------------------------------------
def _check_video(video, timestamps_us) -> Tuple[np.ndarray, np.ndarray]:
    v = np.asarray(video)
    if v.ndim != 3:
        raise InputError(f"simulate_dvs expects a grey video shaped [N, H, W], got shape {list(v.shape)}; "
                         "convert RGB frames to grey first (e.g. 0.299 R + 0.587 G + 0.114 B)")
    if v.shape[0] == 0 or v.shape[1] == 0 or v.shape[2] == 0:
        raise InputError(f"simulate_dvs got an empty video of shape {list(v.shape)}")
    if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)
            or v.dtype == np.bool_):
        raise InputError(f"simulate_dvs expects real intensities, got dtype {v.dtype}")
    v = v.astype(np.float64, copy=False)
    if not np.isfinite(v).all():
        raise InputError(f"simulate_dvs got {int(np.isnan(v).sum())} NaN and {int(np.isinf(v).sum())} inf "
                         f"intensities in a video of shape {list(v.shape)}")
    lo, hi = float(v.min()), float(v.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"simulate_dvs expects intensities in [0, 1], got values in [{lo:g}, {hi:g}]")
    t = np.asarray(timestamps_us)
    if t.shape != (v.shape[0],):
        raise InputError(f"timestamps_us must be 1-d with one time per frame ({v.shape[0]}), "
                         f"got shape {list(t.shape)}")
    if np.issubdtype(t.dtype, np.floating):
        if not np.isfinite(t).all():
            raise InputError("timestamps_us contains NaN or inf")
        t = np.rint(t)
    elif not np.issubdtype(t.dtype, np.integer):
        raise InputError(f"timestamps_us must be integers (microseconds), got dtype {t.dtype}")
    t = t.astype(np.int64)
    if t.size > 1 and np.any(np.diff(t) <= 0):
        k = int(np.flatnonzero(np.diff(t) <= 0)[0])
        raise InputError(f"timestamps_us must be strictly increasing, but frame {k + 1} is at {t[k + 1]} µs "
                         f"and frame {k} at {t[k]} µs")
    return v, t


def background_noise(shape: Tuple[int, int], t_start_us: int, t_end_us: int, rate_hz: float,
                     rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Poisson background activity: ``(t, x, y, p)`` arrays, unsorted.

    Every pixel of a sensor of ``shape = (H, W)`` fires at ``rate_hz`` on average, at times uniform in
    ``[t_start_us, t_end_us]`` (µs), with a random polarity. The total count is Poisson with mean
    ``rate_hz * H * W * (t_end_us - t_start_us) / 1e6``.
    """
    h, w = shape
    span = int(t_end_us) - int(t_start_us)
    lam = float(rate_hz) * h * w * max(span, 0) / 1e6
    n = int(rng.poisson(lam)) if lam > 0 else 0
    t = rng.integers(int(t_start_us), int(t_start_us) + span + 1, size=n, dtype=np.int64)
    pix = rng.integers(0, h * w, size=n)
    p = rng.integers(0, 2, size=n, dtype=np.uint8)
    return t, pix % w, pix // w, p


def simulate_dvs(video, timestamps_us, *, contrast_threshold: float = 0.15, refractory_us: float = 1000,
                 noise_rate_hz: float = 0.1, eps: float = 1e-3, seed: int = 0) -> np.ndarray:
    """Turn a grey video into DVS events.

    Args:
        video: intensities in [0, 1], shape ``[N, H, W]`` (frames, rows, columns).
        timestamps_us: the frames' times, strictly increasing integers in µs, shape ``[N]`` (floats
            are rounded to whole µs).
        contrast_threshold: ``C > 0``, the log-intensity step that makes one event.
        refractory_us: ``>= 0``; an event closer than this (µs) to the previous *emitted* event of the
            same pixel is dropped. The pixel's reference level still moves past the dropped level, so
            the change it stood for is lost (as if the pixel had fired without reporting it); a
            later change is measured from the new reference.
        noise_rate_hz: ``>= 0``, background activity per pixel (Poisson, uniform in time over
            ``[timestamps_us[0], timestamps_us[-1]]``, random polarity). Noise events neither move the
            reference levels nor are subject to the refractory period.
        eps: ``> 0``, offset of the log, ``L = log(eps + I)``: it stops a black pixel from having an
            infinitely negative log intensity and sets how sensitive dark pixels are.
        seed: seeds the noise (the change events are deterministic).

    Returns:
        a 1-d array of :data:`snnedu.data.events.EVENT_DTYPE` sorted by ``t`` (µs), ``x`` the column
        (0..W-1), ``y`` the row (0..H-1), ``p`` 1 = ON (brighter), 0 = OFF (darker).

    The reference levels start at frame 0's log intensity. Between frames ``k`` and ``k + 1`` a pixel
    whose ``L_{k+1}`` differs from its reference by ``|ΔL| >= C`` emits ``floor(|ΔL| / C)`` events of
    polarity ``sign(ΔL)`` at the times where the straight line from ``(t_k, L_k)`` to
    ``(t_{k+1}, L_{k+1})`` crosses ``L_ref + sign(ΔL) j C`` (``j = 1, 2, ...``), rounded to whole µs.

    Example::

        >>> video = np.full((2, 4, 4), 0.2); video[1, 1, 2] = 0.6        # one pixel brightens 3x
        >>> ev = simulate_dvs(video, [0, 10_000], noise_rate_hz=0)
        >>> ev["x"], ev["y"], ev["p"]     # 7 ON events (log 3 / 0.15 = 7.3) at column 2, row 1
    """
    C = real("contrast_threshold", contrast_threshold, low=0, low_open=True)
    refr = real("refractory_us", refractory_us, low=0)
    rate = real("noise_rate_hz", noise_rate_hz, low=0)
    eps = real("eps", eps, low=0, low_open=True)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise HyperParameterError(f"seed must be an integer, got {short_repr(seed)}")
    v, ts = _check_video(video, timestamps_us)
    n_frames, h, w = v.shape

    L_prev = np.log(eps + v[0]).ravel()
    L_ref = L_prev.copy()
    never = np.iinfo(np.int64).min // 4
    last_t = np.full(h * w, never, dtype=np.int64)   # time of each pixel's last emitted event
    out_t: List[np.ndarray] = []
    out_i: List[np.ndarray] = []
    out_p: List[np.ndarray] = []
    for k in range(n_frames - 1):
        L_new = np.log(eps + v[k + 1]).ravel()
        d = L_new - L_ref
        n = np.floor(np.abs(d) / C + 1e-9).astype(np.int64)     # tolerance: a change of exactly k C -> k
        idx = np.flatnonzero(n)
        if idx.size:
            nk = n[idx]
            s = np.sign(d[idx])
            t0, dt = int(ts[k]), int(ts[k + 1] - ts[k])
            # level j of pixel i is crossed at fraction (L_ref + s j C - L_prev) / (L_new - L_prev) of the
            # interval; the denominator has the sign of s and is non-zero, since |L_prev - L_ref| < C
            pix, sj, nj = idx, s, nk
            base = (L_ref[idx] - L_prev[idx]) / (L_new[idx] - L_prev[idx])
            step = s * C / (L_new[idx] - L_prev[idx])
            chunk_t, chunk_i, chunk_p = [], [], []
            for j in range(1, int(nk.max()) + 1):    # j-th event of every pixel that has >= j of them
                tj = t0 + np.rint(np.clip(base + j * step, 0.0, 1.0) * dt).astype(np.int64)
                keep = tj - last_t[pix] >= refr      # refractory: measured from the last *emitted* event
                last_t[pix[keep]] = tj[keep]
                chunk_t.append(tj[keep])
                chunk_i.append(pix[keep])
                chunk_p.append(sj[keep] > 0)
                more = nj > j
                pix, sj, nj, base, step = pix[more], sj[more], nj[more], base[more], step[more]
            ct = np.concatenate(chunk_t)
            order = np.argsort(ct, kind="stable")    # events of one interval lie in (t_k, t_k+1]: sort locally
            out_t.append(ct[order])
            out_i.append(np.concatenate(chunk_i)[order])
            out_p.append(np.concatenate(chunk_p)[order].astype(np.uint8))
            L_ref[idx] += s * nk * C
        L_prev = L_new

    rng = np.random.default_rng(int(seed))
    nt, nx, ny, npol = background_noise((h, w), int(ts[0]), int(ts[-1]), rate, rng)
    order = np.argsort(nt, kind="stable")
    if out_t:
        t, i, p = np.concatenate(out_t), np.concatenate(out_i), np.concatenate(out_p)
    else:
        t, i, p = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.uint8)
    # two sorted runs (change events, noise): make_events' stable sort merges them
    return make_events(np.concatenate([t, nt[order]]), np.concatenate([i % w, nx[order]]),
                       np.concatenate([i // w, ny[order]]), np.concatenate([p, npol[order]]))
