"""Event streams of a DVS (dynamic vision sensor) as one numpy structured array.

A DVS pixel reports a change of log intensity, not an intensity: each event is

    (t, x, y, p)   t: time stamp in microseconds (int64)
                   x: column, 0 .. W-1;  y: row, 0 .. H-1   (uint16)
                   p: polarity, 1 = ON (brighter), 0 = OFF (darker)  (uint8)

Every reader and generator in snnedu returns events as an array of :data:`EVENT_DTYPE`, sorted by
``t`` (stable, so events with the same time stamp keep their file order). ``events["x"]`` etc. give
the columns.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .._checks import flags
from ..errors import InputError

__all__ = ["EVENT_DTYPE", "make_events", "check_events", "slice_time"]

EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])


# allowed values of each column: [low, high) -- checked so that nothing wraps around when packed
_RANGES = {"t": (-2**63, 2**63), "x": (0, 2**16), "y": (0, 2**16), "p": (0, 2)}


def _check_column(name: str, c: np.ndarray) -> None:
    lo, hi = _RANGES[name]
    what = {"p": "polarity p must be 0 (OFF) or 1 (ON); for -1/+1 polarities pass (p > 0)",
            "t": "time stamps t must be integers (µs) within int64",
            "x": "x must be an integer column index in 0..65535",
            "y": "y must be an integer row index in 0..65535"}[name]
    if c.dtype.kind == "b":
        return
    if c.dtype.kind not in "iuf":
        raise InputError(f"{what}; got an array of dtype {c.dtype}")
    if not c.size:
        return
    if c.dtype.kind == "f" and not (np.isfinite(c).all() and (c == np.round(c)).all()):
        raise InputError(f"{what}; got non-integer or non-finite values")
    cmin, cmax = c.min(), c.max()
    if cmin < lo or (cmax >= hi if c.dtype.kind == "f" else int(cmax) >= hi):
        raise InputError(f"{what}; got values in [{cmin}, {cmax}]")


@flags("sort")
def make_events(t, x, y, p, *, sort: bool = True) -> np.ndarray:
    """Pack four equally long 1-d sequences into an :data:`EVENT_DTYPE` array (sorted by ``t``).

    Raises :class:`~snnedu.InputError` for columns of other lengths or ranks, and for values that the
    packed types cannot hold exactly (non-integer times, negative or > 65535 coordinates, a polarity
    other than 0/1) -- nothing is silently wrapped around or rounded."""
    cols = [np.asarray(c) for c in (t, x, y, p)]
    n = cols[0].shape[0] if cols[0].ndim == 1 else -1
    if any(c.ndim != 1 or c.shape[0] != n for c in cols):
        raise InputError(f"t, x, y, p must be 1-d and equally long, got shapes {[c.shape for c in cols]}")
    for name, c in zip("txyp", cols):
        _check_column(name, c)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    for name, c in zip("txyp", cols):
        ev[name] = c
    if sort and n > 1 and np.any(np.diff(ev["t"]) < 0):
        ev = ev[np.argsort(ev["t"], kind="stable")]
    return ev


def check_events(events: np.ndarray, sensor_size: Tuple[int, int], where: str = "events") -> np.ndarray:
    """Raise :class:`InputError` unless ``events`` is an :data:`EVENT_DTYPE` array, sorted by time, with
    coordinates inside ``sensor_size = (H, W)`` and polarities in {0, 1}. Returns ``events``."""
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE or events.ndim != 1:
        got = events.dtype if isinstance(events, np.ndarray) else type(events).__name__
        raise InputError(f"{where}: expected a 1-d array of snnedu.data.EVENT_DTYPE, got {got}")
    h, w = sensor_size
    if events.size:
        if np.any(np.diff(events["t"]) < 0):
            raise InputError(f"{where}: time stamps are not sorted (sort with np.sort(events, order='t'))")
        if events["x"].max() >= w or events["y"].max() >= h:
            raise InputError(f"{where}: coordinates outside the {h}x{w} sensor "
                             f"(max x {events['x'].max()}, max y {events['y'].max()})")
        if events["p"].max() > 1:
            raise InputError(f"{where}: polarity must be 0 or 1, found {events['p'].max()}")
    return events


def slice_time(events: np.ndarray, start_us: int, end_us: int) -> np.ndarray:
    """The events with ``start_us <= t < end_us`` (``events`` sorted by ``t``); a view, not a copy."""
    lo, hi = np.searchsorted(events["t"], [start_us, end_us], side="left")
    return events[lo:hi]
