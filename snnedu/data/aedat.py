"""Readers and writers of the two AEDAT formats the DVS datasets ship in (numpy only).

The bit layouts below are those of iniVation's AEDAT file-format documents ("AEDAT 3.1", "AEDAT 2.0"
and, for the DVS128 address word that AEDAT 2.0 inherits, "AEDAT 1.0") and of jAER's DVS128 event
extractor; where snnedu departs from other readers, it says so.

**AEDAT 3.1** (DVS128 Gesture, Amir et al. 2017). ASCII header lines starting with ``#`` up to and
including ``#!END-HEADER``, then packets. A packet is a 28-byte little-endian header::

    int16 type, int16 source, int32 event_size, int32 ts_offset, int32 ts_overflow,
    int32 capacity, int32 number, int32 valid

followed by ``number * event_size`` bytes. Polarity packets (type 1) hold 8-byte events: a uint32
data word ``d`` and an int32 time stamp in microseconds. The data word packs

    ====== ========================== =====================
    bits   field                      decoded as
    ====== ========================== =====================
    0      validity mark (1 = valid)  ``d & 1``
    1      polarity (1 = ON)          ``p = (d >> 1) & 1``
    2–16   y address (15 bits)        ``y = (d >> 2) & 0x7FFF``
    17–31  x address (15 bits)        ``x = (d >> 17) & 0x7FFF``
    ====== ========================== =====================

with (0, 0) in the upper left corner; the full time stamp is ``ts_overflow << 31 | ts``. Packets of
other types (special events, frames, IMU) are skipped. An event whose validity mark is 0 is invalid
by the format document (an all-zero packet holds only invalid events): :func:`read_aedat31` drops
such events unless ``keep_invalid=True``. SpikingJelly, tonic and iniVation's legacy reader keep
them, so on a file that holds any, ``keep_invalid=True`` is the way to match their event counts.

**AEDAT 2.0** (CIFAR10-DVS, Li et al. 2017). ``#`` header lines, then big-endian pairs
``(uint32 address, uint32 time stamp in µs)``. The DVS128 address word is

    ====== =====================================================================
    bits   field
    ====== =====================================================================
    0      polarity (raw)
    1–7    x address (raw, 7 bits)
    8–14   y address (raw, 7 bits)
    15     external (sync) event: not a pixel
    31     special event in jAER: not a pixel
    ====== =====================================================================

An address with bit 15 or bit 31 set is a special or sync event, as jAER's DVS128 extractor treats
it: :func:`read_aedat20` skips it (``return_info=True`` reports how many). A pixel address is
decoded as the dataset's authors (and SpikingJelly) do: ``x_raw = (a & 0xFE) >> 1``,
``y_raw = (a & 0x7F00) >> 8``, ``p_raw = a & 1``, stored with the orientation fix
``x = 127 - y_raw``, ``y = 127 - x_raw``, ``p = 1 - p_raw``. A wrapped 32-bit time stamp is unwrapped
(the time stamps of special events take part: they are on the same clock).

A truncated or corrupt file raises :class:`AedatError` naming the file and the byte offset; a reader
never returns a silently shortened recording. (One limit of both formats: they store no event count,
so a file cut exactly between two AEDAT 3.1 packets, or between two AEDAT 2.0 events, reads as the
shorter recording it then is.) Corruption that leaves the structure intact is caught where the
format allows it: a negative AEDAT 3.1 time stamp, or coordinates outside ``sensor_size`` (checked on
the events a reader returns, not on those it drops).
"""
from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from .._checks import flags, short_repr
from .._io import atomic_write_bytes
from ..errors import DataError, HyperParameterError
from .events import EVENT_DTYPE, check_events, make_events
from .frames import as_size

__all__ = ["AedatError", "AedatInfo", "read_aedat31", "write_aedat31", "read_aedat20", "write_aedat20",
           "read_gesture_labels", "write_gesture_labels", "labels_csv_path",
           "START_TIME_FORMAT"]

# The readers' version: bumped whenever what they return for the same file changes, so that frame
# caches built from an older reader's events are rebuilt (it is part of the cache key).
# 2: 15-bit AEDAT 3.1 coordinates, invalid-marked 3.1 events dropped, 2.0 special events skipped.
READER_VERSION = 2

_PACKET_HEADER = np.dtype([("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
                           ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4")])
_POLARITY = 1
_POLARITY_EVENT = np.dtype([("data", "<u4"), ("ts", "<i4")])
_AEDAT20_EVENT = np.dtype([("addr", ">u4"), ("ts", ">u4")])
_ADDR15 = 0x7FFF                     # AEDAT 3.1 polarity events: 15-bit x and y addresses
_SPECIAL20 = 0x8000 | 0x80000000     # AEDAT 2.0 DVS128: bit 15 (external/sync) or bit 31 (special)
START_TIME_FORMAT = "%Y-%m-%d %H:%M:%S (TZ%z)"  # the AEDAT 3.1 '#Start-Time:' header line (strftime)


class AedatError(DataError):
    """An AEDAT file is truncated, corrupt or not in the expected format (the message names the file
    and the byte offset)."""


class AedatInfo(NamedTuple):
    """What a reader met besides the events it returned (``return_info=True``).

    ``invalid``: AEDAT 3.1 polarity events whose validity mark (bit 0) is 0 -- dropped, or returned
    with ``keep_invalid=True``. ``other_packets``: AEDAT 3.1 packets of other types (special events,
    frames, IMU, ...), skipped. ``special``: AEDAT 2.0 special or sync addresses (bit 15 or bit 31
    set), skipped. Counts that do not apply to a format are 0."""
    invalid: int = 0
    other_packets: int = 0
    special: int = 0


# --------------------------------------------------------------------------------------------------
# AEDAT 3.1
# --------------------------------------------------------------------------------------------------
def _read_bytes(path) -> Tuple[Path, bytes]:
    path = Path(path)
    try:
        return path, path.read_bytes()
    except FileNotFoundError:
        raise AedatError(f"{path}: no such file") from None


def _header_end_31(path: Path, raw: bytes) -> int:
    if not raw.startswith(b"#!AER-DAT3"):
        raise AedatError(f"{path}: not an AEDAT 3.x file (offset 0: expected '#!AER-DAT3', "
                         f"found {raw[:10]!r})")
    mark = raw.find(b"#!END-HEADER")
    if mark < 0:
        raise AedatError(f"{path}: header never ends (no '#!END-HEADER' line; file has {len(raw)} bytes)")
    nl = raw.find(b"\n", mark)
    if nl < 0:
        raise AedatError(f"{path}: truncated after the header mark at offset {mark}")
    return nl + 1


def _check_coordinates(path: Path, events: np.ndarray, sensor_size) -> np.ndarray:
    h, w = sensor_size
    bad = np.flatnonzero((events["x"] >= w) | (events["y"] >= h))
    if bad.size:
        e = events[bad[0]]
        raise AedatError(f"{path}: {bad.size} events lie outside the {h}x{w} sensor (corrupt file?), "
                         f"e.g. x={int(e['x'])}, y={int(e['y'])} at t={int(e['t'])} µs")
    return events


@flags("keep_invalid", "return_info")
def read_aedat31(path, sensor_size=None, *, keep_invalid: bool = False, return_info: bool = False
                 ) -> Union[np.ndarray, Tuple[np.ndarray, AedatInfo]]:
    """Polarity events of an AEDAT 3.1 file as an :data:`EVENT_DTYPE` array sorted by time (µs).

    ``sensor_size`` (an int or ``(H, W)``, e.g. 128 for DVS128 Gesture): when given, an event outside
    the sensor raises :class:`AedatError` (the format itself allows 15-bit coordinates, < 32768).
    ``keep_invalid``: also return the events whose validity mark is 0 (by the format document they
    are invalid and dropped; SpikingJelly, tonic and iniVation's legacy reader keep them).
    ``return_info``: return ``(events, AedatInfo)``, which counts the invalid events and the skipped
    packets. The bit layout is in the module docstring."""
    hw = None if sensor_size is None else as_size(sensor_size, "sensor_size")
    path, raw = _read_bytes(path)
    pos = _header_end_31(path, raw)
    chunks: List[np.ndarray] = []
    n_invalid = n_other = 0
    hsize = _PACKET_HEADER.itemsize
    while pos < len(raw):
        if len(raw) - pos < hsize:
            raise AedatError(f"{path}: truncated packet header at offset {pos} "
                             f"({len(raw) - pos} of {hsize} bytes)")
        h = np.frombuffer(raw, dtype=_PACKET_HEADER, count=1, offset=pos)[0]
        size, number = int(h["size"]), int(h["number"])
        if size <= 0 or number < 0 or h["ts_overflow"] < 0:
            raise AedatError(f"{path}: corrupt packet header at offset {pos} "
                             f"(event size {size}, number {number}, ts overflow {int(h['ts_overflow'])})")
        body = pos + hsize
        end = body + size * number
        if end > len(raw):
            raise AedatError(f"{path}: truncated packet at offset {pos}: it declares {number} events of "
                             f"{size} bytes, but the file ends {len(raw) - body} bytes after its header")
        if int(h["type"]) == _POLARITY:
            if size != _POLARITY_EVENT.itemsize or int(h["ts_offset"]) != 4:
                raise AedatError(f"{path}: polarity packet at offset {pos} has event size {size} and "
                                 f"time-stamp offset {int(h['ts_offset'])} (expected 8 and 4)")
            ev = np.frombuffer(raw, dtype=_POLARITY_EVENT, count=number, offset=body)
            keep = np.arange(number)
            valid = (ev["data"] & 1).astype(bool)
            n_invalid += number - int(np.count_nonzero(valid))
            if not keep_invalid:
                keep, ev = keep[valid], ev[valid]
            if ev.size and ev["ts"].min() < 0:  # 31-bit time stamps: the overflow counter holds the rest
                i = int(np.argmax(ev["ts"] < 0))
                raise AedatError(f"{path}: corrupt polarity event at offset {body + 8 * int(keep[i])}: "
                                 f"negative time stamp {int(ev['ts'][i])}")
            d = ev["data"]
            t = (np.int64(h["ts_overflow"]) << 31) | ev["ts"].astype(np.int64)
            # 15-bit addresses: y in bits 2-16, x in bits 17-31 (bit 1 polarity, bit 0 validity)
            chunks.append(make_events(t, (d >> 17) & _ADDR15, (d >> 2) & _ADDR15, (d >> 1) & 1, sort=False))
        else:
            n_other += 1
        pos = end
    events = np.concatenate(chunks) if chunks else np.empty(0, EVENT_DTYPE)
    if events.size > 1 and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    if hw is not None:
        _check_coordinates(path, events, hw)
    return (events, AedatInfo(invalid=n_invalid, other_packets=n_other)) if return_info else events


def _start_time_line(start_time: Optional[datetime]) -> str:
    """The ``#Start-Time:`` value in the documented form; ``None``: now, local time."""
    if start_time is None:
        start_time = datetime.now().astimezone()
    elif not isinstance(start_time, datetime):
        raise HyperParameterError(f"start_time must be a datetime or None, got {short_repr(start_time)}")
    elif start_time.tzinfo is None or start_time.utcoffset() is None:
        start_time = start_time.astimezone()  # a naive datetime is local time
    if start_time.utcoffset().total_seconds() % 60:
        raise HyperParameterError(f"start_time's UTC offset must be whole minutes (the header writes "
                                  f"+HHMM), got {start_time.utcoffset()}")
    return start_time.strftime(START_TIME_FORMAT)


@flags("durable")
def write_aedat31(path, events: np.ndarray, labels: Optional[Sequence[Tuple[int, int, int]]] = None, *,
                  packet_events: int = 4096, sensor_size: Tuple[int, int] = (128, 128),
                  source: str = "DVS128", start_time: Optional[datetime] = None,
                  durable: bool = True) -> Path:
    """Write polarity events as AEDAT 3.1 (atomically), like the DVS128 Gesture recordings.

    Every event is written with its validity mark set (bit 0 = 1), in the layout of the module
    docstring. ``labels``: optional rows ``(class 1..11, start_us, end_us)`` written next to it as
    ``<name>_labels.csv`` (the dataset's own layout). ``sensor_size``: ``(H, W)``, each at most 32768
    (15-bit addresses). ``start_time``: the header's ``#Start-Time:`` line, written as
    ``%Y-%m-%d %H:%M:%S (TZ%z)`` (``START_TIME_FORMAT``); ``None`` writes the current local time,
    a naive datetime is taken as local time. ``durable``: see ``snnedu._io.atomic_write_bytes``.
    Returns the path of the .aedat file.
    """
    sensor_size = as_size(sensor_size, "sensor_size")
    if max(sensor_size) > _ADDR15 + 1:
        raise HyperParameterError(f"sensor_size must be at most 32768x32768 (AEDAT 3.1 stores 15-bit "
                                  f"addresses), got {sensor_size}")
    start = _start_time_line(start_time)
    events = check_events(events, sensor_size, where=str(path))
    t = events["t"]
    if t.size and t[0] < 0:
        raise AedatError(f"{path}: negative time stamps cannot be written")
    header = (f"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: {source}\r\n"
              f"#Start-Time: {start}\r\n#!END-HEADER\r\n").encode("ascii")
    parts = [header]
    overflow = t >> 31
    # packets never straddle a change of the overflow counter
    cuts = np.flatnonzero(np.diff(overflow)) + 1
    for seg in np.split(np.arange(t.size), cuts):
        for start in range(0, seg.size, packet_events):
            idx = seg[start:start + packet_events]
            n = idx.size
            h = np.zeros(1, _PACKET_HEADER)
            h["type"], h["source"], h["size"], h["ts_offset"] = _POLARITY, 1, 8, 4
            h["ts_overflow"] = int(overflow[idx[0]])
            h["capacity"] = h["number"] = h["valid"] = n
            ev = np.empty(n, _POLARITY_EVENT)
            e = events[idx]
            ev["data"] = ((e["x"].astype(np.uint32) << 17) | (e["y"].astype(np.uint32) << 2)
                          | (e["p"].astype(np.uint32) << 1) | 1)
            ev["ts"] = (e["t"] & 0x7FFFFFFF).astype(np.int32)
            parts += [h.tobytes(), ev.tobytes()]
    path = Path(path)
    atomic_write_bytes(path, b"".join(parts), durable)
    if labels is not None:
        write_gesture_labels(labels_csv_path(path), labels, durable)
    return path


def labels_csv_path(aedat_path) -> Path:
    """``user01_led.aedat`` -> ``user01_led_labels.csv`` (DVS128 Gesture's naming)."""
    p = Path(aedat_path)
    return p.with_name(p.stem + "_labels.csv")


def _check_label_row(path, where: str, c: int, s: int, e: int) -> None:
    """One label row: class 1..11 and a non-empty window ``[s, e)`` of microseconds within int64 and
    not negative (AEDAT time stamps), so that an end time of 10^23 is an error, not a silent slice."""
    if not 1 <= c <= 11 or e <= s:
        raise AedatError(f"{path}: {where} has class {c} (expected 1..11) or an empty interval "
                         f"[{short_repr(s, 30)}, {short_repr(e, 30)})")
    if not (0 <= s < 2**63 and 0 <= e < 2**63):
        raise AedatError(f"{path}: {where}: times must be microseconds in 0..2^63-1 (int64), got "
                         f"[{short_repr(s, 30)}, {short_repr(e, 30)})")


@flags("durable")
def write_gesture_labels(path, rows: Sequence[Tuple[int, int, int]], durable: bool = True) -> Path:
    """Write DVS128 Gesture label rows ``(class 1..11, startTime_usec, endTime_usec)`` (atomically).
    Rows that :func:`read_gesture_labels` would reject raise :class:`AedatError` instead."""
    for i, row in enumerate(rows):
        c, s, e = row
        _check_label_row(path, f"row {i}", int(c), int(s), int(e))
    lines = ["class,startTime_usec,endTime_usec"] + [f"{int(c)},{int(s)},{int(e)}" for c, s, e in rows]
    atomic_write_bytes(path, ("\r\n".join(lines) + "\r\n").encode("ascii"), durable)
    return Path(path)


def read_gesture_labels(path) -> List[Tuple[int, int, int]]:
    """Rows ``(class 0..10, start_us, end_us)`` of a DVS128 Gesture label csv (classes made 0-based)."""
    path = Path(path)
    if not path.exists():
        raise AedatError(f"{path}: label file missing (each userXX_<lighting>.aedat needs its _labels.csv)")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise AedatError(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None
    rows = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            lineno = reader.line_num
            if not any(c.strip() for c in row) or (lineno == 1 and row[0].strip() == "class"):
                continue  # blank lines, the header line
            try:
                c, s, e = (int(v) for v in row[:3])
            except ValueError:
                raise AedatError(f"{path}: line {lineno} is not 'class,start_us,end_us': {row[:4]!r:.200}") \
                    from None
            _check_label_row(path, f"line {lineno}", c, s, e)
            rows.append((c - 1, s, e))
    except csv.Error as e:
        raise AedatError(f"{path}: not a csv file (line {reader.line_num}: {e})") from None
    return rows


# --------------------------------------------------------------------------------------------------
# AEDAT 2.0 (CIFAR10-DVS)
# --------------------------------------------------------------------------------------------------
def _header_end_20(path: Path, raw: bytes) -> int:
    if not raw.startswith(b"#!AER-DAT2"):
        raise AedatError(f"{path}: not an AEDAT 2.x file (offset 0: expected '#!AER-DAT2', "
                         f"found {raw[:10]!r})")
    pos = 0
    while pos < len(raw) and raw[pos:pos + 1] == b"#":
        nl = raw.find(b"\n", pos)
        if nl < 0:
            raise AedatError(f"{path}: truncated inside the header at offset {pos}")
        pos = nl + 1
    return pos


def _unwrap32(ts: np.ndarray) -> np.ndarray:
    """32-bit time stamps (int64 array) unwrapped: a step back by more than 2**31 µs is a wrap-around."""
    t = ts.astype(np.int64)
    if t.size > 1:
        wraps = np.cumsum(np.diff(t) < -(1 << 31))
        t[1:] += wraps.astype(np.int64) << 32
    return t


@flags("return_info")
def read_aedat20(path, sensor_size: int = 128, *, return_info: bool = False
                 ) -> Union[np.ndarray, Tuple[np.ndarray, AedatInfo]]:
    """Events of a CIFAR10-DVS AEDAT 2.0 file as an :data:`EVENT_DTYPE` array (orientation fixed, µs).

    ``sensor_size``: side of the square sensor (128); the decoded 7-bit coordinates are
    ``sensor_size - 1 - raw``, so an event that does not fit raises :class:`AedatError`. Addresses
    with bit 15 or bit 31 set are special or sync events, not pixels: they are skipped, and
    ``return_info=True`` returns ``(events, AedatInfo)`` with their number in ``special``. The bit
    layout is in the module docstring."""
    side = as_size(sensor_size, "sensor_size")[0] if not isinstance(sensor_size, (tuple, list)) else None
    if side is None:
        raise HyperParameterError(f"sensor_size must be a positive int (a square sensor), "
                                  f"got {short_repr(sensor_size)}")
    path, raw = _read_bytes(path)
    pos = _header_end_20(path, raw)
    n, rest = divmod(len(raw) - pos, _AEDAT20_EVENT.itemsize)
    if rest:
        raise AedatError(f"{path}: truncated event at offset {pos + n * 8} ({rest} of 8 bytes)")
    ev = np.frombuffer(raw, dtype=_AEDAT20_EVENT, count=n, offset=pos)
    t = _unwrap32(ev["ts"])  # special events share the clock: unwrap before they are dropped
    a = ev["addr"].astype(np.int64)
    pixel = np.flatnonzero((a & _SPECIAL20) == 0)
    n_special = n - pixel.size
    if n_special:
        a, t = a[pixel], t[pixel]
    top = side - 1
    x_raw, y_raw, p_raw = (a & 0xFE) >> 1, (a & 0x7F00) >> 8, a & 1
    if a.size and max(int(x_raw.max()), int(y_raw.max())) > top:
        i = int(np.argmax((x_raw > top) | (y_raw > top)))
        raise AedatError(f"{path}: event at offset {pos + 8 * int(pixel[i])} has raw coordinates "
                         f"({int(x_raw[i])}, {int(y_raw[i])}), outside the {side}x{side} sensor")
    events = make_events(t, top - y_raw, top - x_raw, 1 - p_raw)
    return (events, AedatInfo(special=n_special)) if return_info else events


@flags("durable")
def write_aedat20(path, events: np.ndarray, *, sensor_size: int = 128, durable: bool = True) -> Path:
    """Write events as a CIFAR10-DVS AEDAT 2.0 file (atomically): the inverse of :func:`read_aedat20`.
    ``durable``: see ``snnedu._io.atomic_write_bytes``."""
    side = as_size(sensor_size, "sensor_size")[0] if not isinstance(sensor_size, (tuple, list)) else 0
    if not 1 <= side <= 128:
        raise HyperParameterError(f"sensor_size must be an int in 1..128 (7-bit addresses), "
                                  f"got {short_repr(sensor_size)}")
    events = check_events(events, (sensor_size, sensor_size), where=str(path))
    t = events["t"]
    if t.size and (t[0] < 0 or t[0] >= 1 << 32 or not np.array_equal(_unwrap32(t & 0xFFFFFFFF), t)):
        raise AedatError(f"{path}: time stamps must start in [0, 2**32) µs, and a gap of 2**31 µs or more "
                         "must not cross a 32-bit wrap-around (the reader could not tell it from a wrap)")
    top = sensor_size - 1
    y_raw = top - events["x"].astype(np.uint32)
    x_raw = top - events["y"].astype(np.uint32)
    p_raw = 1 - events["p"].astype(np.uint32)
    ev = np.empty(events.size, _AEDAT20_EVENT)
    ev["addr"] = (y_raw << 8) | (x_raw << 1) | p_raw
    ev["ts"] = (events["t"] & 0xFFFFFFFF).astype(np.uint32)
    header = (b"#!AER-DAT2.0\r\n# This is a raw AE data file created by snnedu\r\n"
              b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
              b"# Timestamps tick is 1 us\r\n")
    path = Path(path)
    atomic_write_bytes(path, header + ev.tobytes(), durable)
    return path
