r"""Events -> frames: integrate an event stream into a fixed number of frames (chapter 8).

A frame counts the events of one time segment per polarity and pixel:

.. math::  F[j, p, y, x] = \#\{ i \in \text{segment } j : (p_i, y_i, x_i) = (p, y, x) \}

How the recording of N events is cut into segments (``split_by``):

- ``"number"`` — equal event counts: ``di = N // T``; segment ``j`` holds events
  ``[j·di, (j+1)·di)``, the last one ``[(T-1)·di, N)`` (it takes the remainder). Used by the PLIF
  paper (T = 20 on DVS128 Gesture and CIFAR10-DVS) and by TET (T = 10).
- ``"time"`` — equal durations: ``dt = (t_{N-1} - t_0) // T``; segment ``j`` holds
  ``t_0 + j·dt <= t < t_0 + (j+1)·dt``, the last one extends to the final event. Empty segments are
  fine (found with ``searchsorted``, not by indexing an empty mask — a crash in SpikingJelly).
- ``"duration"`` — fixed windows of ``duration_us``: frame ``(t - t_0) // duration_us``. With ``T``
  given only the window ``[t_0, t_0 + T·duration_us)`` is kept (the MLF setting, e.g. 40 x 30 ms);
  with ``T=None`` the number of frames is ``ceil((t_{N-1} - t_0) / duration_us)`` (at least 1).

Counting uses ``np.bincount`` (a fancy-index ``+=`` would drop duplicate events, a bug of the TET
preprocessing). ``size`` shrinks the sensor by scaling event coordinates (``x * W' // W``) before
counting, so counts stay integers and nothing is lost; :func:`resize_frames` is the image-resize route
(bilinear/area on frames) that TET uses after normalising.

Normalisations (per frame and polarity unless said otherwise; ``eps = 1e-5``): ``None`` raw counts
(PLIF), ``"frequency"`` counts per second of the segment, ``"max"`` divide by the maximum,
``"max_frame"`` divide by the maximum over both polarities (TET), ``"norm"`` zero mean / unit
variance, ``"sum"`` divide by the total count.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import short_repr
from ..errors import HyperParameterError, InputError
from .events import check_events

__all__ = ["events_to_frames", "segment_index", "normalize_frames", "resize_frames", "SPLIT_MODES",
           "NORMALIZATIONS", "MAX_FRAME_VALUES", "as_size"]

SPLIT_MODES = ("number", "time", "duration")
NORMALIZATIONS = (None, "frequency", "max", "max_frame", "norm", "sum")
_EPS = 1e-5
_MAX_SPAN = 1 << 62  # keeps every time difference inside int64
MAX_FRAME_VALUES = 1 << 28  # events_to_frames refuses to build more than this many counts (1 GiB of int32)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def as_size(size: Union[int, Sequence[int]], name: str = "size") -> Tuple[int, int]:
    """``64`` -> ``(64, 64)``; ``(h, w)`` checked positive."""
    hw = (size, size) if _is_int(size) else tuple(size) if isinstance(size, (tuple, list, np.ndarray)) else ()
    if len(hw) != 2 or not all(_is_int(v) and v > 0 for v in hw):
        raise HyperParameterError(f"{name} must be a positive int or (height, width), got {short_repr(size)}")
    return int(hw[0]), int(hw[1])


def segment_index(t: np.ndarray, T: Optional[int], split_by: str = "number",
                  duration_us: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """Segment of every event (``-1`` = outside the kept window) and the number of frames.

    ``t``: sorted int64 time stamps ``[N]`` (µs). Returns ``(seg [N] int64, M)``.
    """
    if split_by not in SPLIT_MODES:
        raise HyperParameterError(f"split_by must be one of {SPLIT_MODES}, got {short_repr(split_by)}")
    if split_by == "duration":
        if not _is_int(duration_us) or duration_us <= 0:
            raise HyperParameterError(f"split_by='duration' needs an integer duration_us > 0 (µs), "
                                      f"got {short_repr(duration_us)}")
        duration_us = int(duration_us)
    if T is None:
        if split_by != "duration":
            raise HyperParameterError(f"T (number of frames) is required with split_by={short_repr(split_by)}")
    elif not _is_int(T) or T < 1:
        raise HyperParameterError(f"T must be a positive int, got {short_repr(T)}")
    n = t.shape[0]
    if n and int(t[-1]) - int(t[0]) > _MAX_SPAN:
        raise InputError(f"time stamps span {int(t[-1]) - int(t[0])} µs (from {int(t[0])} to {int(t[-1])}), "
                         f"more than 2**62 µs: not a recording, check the time unit / offset")
    if split_by == "number":
        di = n // T
        seg = np.minimum(np.arange(n) // di, T - 1) if di > 0 else np.full(n, T - 1)
        return seg.astype(np.int64), int(T)
    if n == 0:
        return np.zeros(0, np.int64), int(T) if T is not None else 1
    t0 = t[0]
    if split_by == "time":
        dt = (t[-1] - t0) // T
        bounds = t0 + dt * np.arange(1, T, dtype=np.int64)
        return np.searchsorted(bounds, t, side="right").astype(np.int64), int(T)
    seg = (t - t0) // duration_us
    if T is None:
        m = max(1, int(-(-(t[-1] - t0) // duration_us)))
        return np.minimum(seg, m - 1), m
    return np.where(seg < T, seg, -1), int(T)


def normalize_frames(frames: np.ndarray, normalization: Optional[str],
                     durations_us: Optional[np.ndarray] = None) -> np.ndarray:
    """Normalise count frames ``[M, 2, H, W]`` (see the module docstring); returns float32."""
    if normalization not in NORMALIZATIONS:
        raise HyperParameterError(f"normalization must be one of {NORMALIZATIONS}, got {short_repr(normalization)}")
    if normalization is None:
        return frames
    f = frames.astype(np.float32)
    if normalization == "frequency":
        if durations_us is None:
            raise HyperParameterError("normalization='frequency' needs the segment durations")
        return f / (np.asarray(durations_us, np.float32).reshape(-1, 1, 1, 1) * 1e-6 + _EPS)
    if normalization == "max":
        return f / (f.max(axis=(2, 3), keepdims=True) + _EPS)
    if normalization == "max_frame":
        return f / (f.max(axis=(1, 2, 3), keepdims=True) + _EPS)
    if normalization == "sum":
        return f / (f.sum(axis=(2, 3), keepdims=True) + _EPS)
    mean = f.mean(axis=(2, 3), keepdims=True)
    return (f - mean) / (f.std(axis=(2, 3), keepdims=True) + _EPS)


def events_to_frames(events: np.ndarray, T: Optional[int], *, split_by: str = "number",
                     sensor_size: Union[int, Sequence[int]] = 128,
                     size: Union[None, int, Sequence[int]] = None, normalization: Optional[str] = None,
                     duration_us: Optional[int] = None) -> np.ndarray:
    """Integrate ``events`` (:data:`~snnedu.data.EVENT_DTYPE`, sorted) into frames ``[T, 2, H, W]``.

    Args:
        T: number of frames (``None`` only with ``split_by="duration"``); ``T`` may exceed the number
            of events (with ``"number"`` they then all fall in the last frame, as ``N // T = 0``).
        split_by: ``"number"``, ``"time"`` or ``"duration"`` (module docstring).
        sensor_size: ``(H, W)`` of the sensor, 128 for DVS128 Gesture and CIFAR10-DVS.
        size: output ``(H', W')`` (events' coordinates are scaled), default the sensor size.
        normalization: ``None`` (raw counts, int32) or a name from :data:`NORMALIZATIONS` (float32).
        duration_us: window length for ``split_by="duration"``.

    Channel 0 holds OFF events (p = 0), channel 1 ON events.

    **Compared with tonic** (``tonic.transforms.ToFrame`` of tonic 1.7, measured by
    ``tests/test_tonic.py``). ``ToFrame(sensor_size, n_event_bins=T)`` and ``ToFrame(sensor_size,
    n_time_bins=T)`` give the same ``[T, P, H, W]`` layout and the same first ``T - 1`` frames as
    ``split_by="number"`` and ``"time"``; only the last frame differs, because tonic drops the events of
    the final partial bin and snnedu keeps them (its last segment takes the remainder, as SpikingJelly's
    does), so that every event of the recording is counted once:

    - by number tonic's bins hold ``N // T`` events each, and the last ``N mod T`` events are dropped;
    - by time tonic's bins are ``dt = (t_{N-1} - t_0) // T`` µs long and end at ``t_0 + T·dt``, so the
      events with ``t >= t_0 + T·dt`` are dropped: those at the last time stamp (usually one event)
      when the span is a multiple of ``T``, otherwise also those of the final ``(t_{N-1} - t_0) mod T``
      µs -- a handful of events for a recording of 10^5 µs or more, but half of a 20-event recording
      with time stamps ``0 .. 19`` and ``T = 10``.

    Also measured: with ``T > N``, tonic's frames by number are all empty, while snnedu puts every event
    in the last frame (``N // T = 0``); tonic counts in ``int16``, which wraps around past 32,767 events
    per pixel and frame (snnedu counts in int32).

    Raises :class:`~snnedu.InputError` for events that are not sorted, lie outside the sensor, have a
    polarity other than 0/1 or span more than 2**62 µs, and :class:`~snnedu.HyperParameterError` for
    impossible arguments; more than :data:`MAX_FRAME_VALUES` output values is refused (InputError when
    ``T=None`` lets the recording decide, HyperParameterError otherwise).
    """
    sh, sw = as_size(sensor_size, "sensor_size")
    oh, ow = as_size(size, "size") if size is not None else (sh, sw)
    if oh > sh or ow > sw:
        raise HyperParameterError(f"size {(oh, ow)} is larger than the sensor {(sh, sw)}; "
                                  "use resize_frames to up-sample")
    if normalization not in NORMALIZATIONS:
        raise HyperParameterError(f"normalization must be one of {NORMALIZATIONS}, got {short_repr(normalization)}")
    check_events(events, (sh, sw))
    seg, m = segment_index(events["t"], T, split_by, duration_us)
    if m * 2 * oh * ow > MAX_FRAME_VALUES:
        what = (f"T = {m}" if T is not None else
                f"the recording spans {m} windows of duration_us = {duration_us} (T=None)")
        err = HyperParameterError if T is not None else InputError
        raise err(f"{what} would make {m} frames of 2x{oh}x{ow}, more than {MAX_FRAME_VALUES} values; "
                  "use fewer frames, a smaller size or longer windows")
    keep = seg >= 0
    ev, seg = (events[keep], seg[keep]) if not keep.all() else (events, seg)
    x = ev["x"].astype(np.int64) * ow // sw
    y = ev["y"].astype(np.int64) * oh // sh
    flat = ((seg * 2 + ev["p"].astype(np.int64)) * oh + y) * ow + x
    frames = np.bincount(flat, minlength=m * 2 * oh * ow).reshape(m, 2, oh, ow).astype(np.int32)
    durations = None
    if normalization == "frequency":
        durations = np.zeros(m, np.float64)
        if ev.size:
            first = np.searchsorted(seg, np.arange(m), side="left")
            last = np.searchsorted(seg, np.arange(m), side="right") - 1
            ok = last >= first
            durations[ok] = ev["t"][last[ok]] - ev["t"][first[ok]]
    return normalize_frames(frames, normalization, durations)


def resize_frames(frames, size: Union[int, Sequence[int]], mode: str = "bilinear") -> torch.Tensor:
    """Resize frames ``[..., H, W]`` (numpy or tensor) to ``size`` with ``torch.nn.functional.interpolate``
    (``mode``: ``"bilinear"``, ``"area"`` or ``"nearest"``). Returns a float32 tensor.

    TET resizes CIFAR10-DVS frames from 128x128 to 48x48 this way after max-normalisation; for raw
    counts prefer ``events_to_frames(..., size=...)``, which keeps integer counts.
    """
    if mode not in ("bilinear", "area", "nearest"):
        raise HyperParameterError(f"mode must be 'bilinear', 'area' or 'nearest', got {short_repr(mode)}")
    x = torch.as_tensor(np.asarray(frames) if not torch.is_tensor(frames) else frames).float()
    if x.dim() < 2:
        raise InputError(f"frames must be [..., H, W], got shape {list(x.shape)}")
    lead = x.shape[:-2]
    x = x.reshape(-1, 1, *x.shape[-2:])
    kw = {"align_corners": False} if mode == "bilinear" else {}
    y = F.interpolate(x, size=as_size(size), mode=mode, **kw)
    return y.reshape(*lead, *y.shape[-2:])
