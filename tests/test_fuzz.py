"""Property-based fuzzing of the library's boundaries (hypothesis).

Every generated case must end in a correct result or in a clear snnedu error (a subclass of
``snnedu.SnneduError``), never in a bare IndexError / ValueError / struct.error from deep inside and
never in a silently wrong shape. Targets:

1. AEDAT 3.1 / 2.0 readers and the DVS128 Gesture label csv: random bytes, valid files truncated at a
   random offset, bit flips anywhere.
2. events -> frames: every split, size and normalisation on odd streams (empty, one event,
   out-of-range coordinates, unsorted or huge time stamps, polarities other than 0/1, T > N), checked
   against a plain-Python reading of the docstring.
3. Encoders and the neuron zoo: wrong rank, dtypes, NaN/inf, T = 0, B = 0, random shapes; random
   (possibly impossible) constructor arguments.
4. Configs: every file under configs/ mutated (unknown keys, wrong types, out-of-range numbers,
   missing sections) and random YAML text.

Runs are reproducible (``derandomize=True``, no example database). ``SNNEDU_FUZZ_EXAMPLES=10``
multiplies every ``max_examples`` for a longer local search. The number of cases tried per target is
written to ``_build/reliability/fuzz_counts.json``.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

import snnedu
from snnedu.config import SCHEMA, ConfigError, load_config, validate_config
from snnedu.data.aedat import (AedatError, read_aedat20, read_aedat31, read_gesture_labels, write_aedat20,
                               write_aedat31, write_gesture_labels)
from snnedu.data.events import EVENT_DTYPE, check_events, make_events
from snnedu.data.frames import NORMALIZATIONS, events_to_frames
from snnedu.encoding import (DirectEncoder, LatencyEncoder, PoissonEncoder, direct_encode, latency_encode,
                             poisson_encode)
from snnedu.errors import DataError, HyperParameterError, InputError

from neuron_cases import CASES, neuron_classes

ROOT = Path(__file__).resolve().parents[1]
# hypothesis keeps caches (not examples: database=None) in a folder; keep it in the ignored _build/
set_hypothesis_home_dir(ROOT / "_build" / "reliability" / "hypothesis")
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def _multiplier() -> int:
    raw = os.environ.get("SNNEDU_FUZZ_EXAMPLES", "1")
    try:
        m = int(raw)
    except ValueError:
        raise ValueError(f"SNNEDU_FUZZ_EXAMPLES must be a positive integer, got {raw!r}") from None
    if m < 1:
        raise ValueError(f"SNNEDU_FUZZ_EXAMPLES must be a positive integer, got {raw!r}")
    return m


MULT = _multiplier()
COUNTS: Counter = Counter()


def fuzz(n: int):
    """hypothesis settings: ``n`` examples (times SNNEDU_FUZZ_EXAMPLES), reproducible, no database."""
    return settings(max_examples=n * MULT, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def _fuzz_counts():
    yield
    out = ROOT / "_build" / "reliability"
    out.mkdir(parents=True, exist_ok=True)
    report = {"multiplier": MULT, "total": sum(COUNTS.values()), "cases": dict(sorted(COUNTS.items()))}
    (out / "fuzz_counts.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nfuzz cases tried (SNNEDU_FUZZ_EXAMPLES={MULT}): " + json.dumps(report["cases"]))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _names_file(err: Exception, path: Path) -> None:
    assert str(path) in str(err), f"error does not name the file {path}: {err}"


# ==================================================================================================
# 1. AEDAT readers
# ==================================================================================================
HEADER31 = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
HEADER20 = b"#!AER-DAT2.0\r\n# fuzz\r\n"
MAX15 = 1 << 15  # AEDAT 3.1 stores x and y in 15 bits


def _check_read(events: np.ndarray, sensor) -> None:
    """What every successful read must give: sorted EVENT_DTYPE events inside the sensor, t >= 0."""
    assert isinstance(events, np.ndarray) and events.dtype == EVENT_DTYPE and events.ndim == 1
    check_events(events, sensor)
    if events.size:
        assert events["t"].min() >= 0


def _events(draw, n_max=200, size=128, t_max=2**33, t_min=0):
    n = draw(st.integers(0, n_max))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    lo = draw(st.integers(t_min, t_max))
    span = draw(st.sampled_from([0, 10, 1000, 2**20, 2**31 + 7, 2**32 + 3]))
    t = np.sort(rng.integers(lo, lo + span + 1, n, dtype=np.int64))
    ev = np.empty(n, EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(0, 2, n)
    return ev


event_arrays = st.composite(_events)


def _read(reader, path: Path, sensor, **kw):
    try:
        ev = reader(path, **kw)
    except AedatError as e:
        _names_file(e, path)
        assert "\n" not in str(e)
        return None
    _check_read(ev, sensor)
    return ev


columns = st.one_of(
    st.lists(st.integers(-3, 70000), max_size=6), st.lists(st.integers(-2**63, 2**64), max_size=3),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4), st.lists(st.booleans(), max_size=4),
    st.lists(st.integers(0, 1), max_size=6), st.lists(st.text(max_size=2), max_size=2))


@fuzz(200)
@given(cols=st.tuples(columns, columns, columns, columns), sort=st.booleans())
def test_make_events(cols, sort):
    """make_events packs exactly what it is given (sorted by t) or raises InputError: no wrap-around."""
    COUNTS["make_events"] += 1
    try:
        ev = make_events(*cols, sort=sort)
    except InputError as e:
        assert str(e)
        return
    t, x, y, p = cols
    assert ev.dtype == EVENT_DTYPE and ev.shape == (len(t),)
    rows = list(zip(*(list(map(int, c)) for c in cols)))
    assert all(0 <= r[1] < 2**16 and 0 <= r[2] < 2**16 and r[3] in (0, 1) for r in rows)
    expect = sorted(rows, key=lambda r: r[0]) if sort else rows  # sorted() is stable too
    assert [tuple(map(int, e)) for e in ev.tolist()] == expect


@fuzz(150)
@given(prefix=st.sampled_from([b"", HEADER31, b"#!AER-DAT3.1\r\n", b"#!END-HEADER\r\n"]),
       body=st.binary(max_size=600))
def test_aedat31_random_bytes(fuzz_dir, prefix, body):
    COUNTS["aedat31_random_bytes"] += 1
    path = fuzz_dir / "random31.aedat"
    path.write_bytes(prefix + body)
    _read(read_aedat31, path, (MAX15, MAX15))


packet_headers = st.tuples(st.integers(-3, 3), st.integers(-2**15, 2**15 - 1),
                           st.sampled_from([8, 8, 8, 0, -8, 4, 16, 2**31 - 1]),
                           st.sampled_from([4, 4, 4, 0, -4, 8]), st.sampled_from([0, 0, 1, 2**31 - 1, -1]),
                           st.integers(-1, 40), st.integers(-2, 40), st.integers(-1, 40))


@fuzz(150)
@given(packets=st.lists(st.tuples(packet_headers, st.binary(max_size=330)), max_size=4))
def test_aedat31_random_packets(fuzz_dir, packets):
    """Well-formed header, packets with random (often inconsistent) header fields and payloads."""
    COUNTS["aedat31_random_packets"] += 1
    path = fuzz_dir / "packets31.aedat"
    path.write_bytes(HEADER31 + b"".join(struct.pack("<hhiiiiii", *h) + body for h, body in packets))
    _read(read_aedat31, path, (MAX15, MAX15))


def _packet_ends(raw: bytes) -> dict:
    """Byte offset after each complete packet -> events before it (files written by write_aedat31)."""
    pos, n, ends = raw.index(b"#!END-HEADER\r\n") + 14, 0, {}
    ends[pos] = 0
    while pos < len(raw):
        number = struct.unpack_from("<i", raw, pos + 20)[0]
        pos, n = pos + 28 + 8 * number, n + number
        ends[pos] = n
    return ends


@fuzz(120)
@given(events=event_arrays(size=128), packet_events=st.integers(1, 64), cut=st.floats(0, 1))
def test_aedat31_truncated(fuzz_dir, events, packet_events, cut):
    COUNTS["aedat31_truncated"] += 1
    path = write_aedat31(fuzz_dir / "trunc31.aedat", events, packet_events=packet_events, durable=False)
    raw = path.read_bytes()
    np.testing.assert_array_equal(read_aedat31(path), events)  # the untouched file round-trips
    k = min(int(cut * len(raw)), len(raw) - 1)
    path.write_bytes(raw[:k])
    back = _read(read_aedat31, path, (128, 128))
    ends = _packet_ends(raw)
    if back is None:
        assert k not in ends, "a cut between two packets is a valid shorter file"
    else:  # only a cut exactly between two packets can be read: it is the start of the recording
        assert k in ends and back.size == ends[k]
        np.testing.assert_array_equal(back, events[:back.size])


@fuzz(150)
@given(events=event_arrays(n_max=60, size=128), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)),
                                                              min_size=1, max_size=4))
def test_aedat31_bit_flips(fuzz_dir, events, flips):
    COUNTS["aedat31_bit_flips"] += 1
    path = write_aedat31(fuzz_dir / "flip31.aedat", events, packet_events=16, durable=False)
    raw = bytearray(path.read_bytes())
    for where, bit in flips:
        raw[min(int(where * len(raw)), len(raw) - 1)] ^= 1 << bit
    path.write_bytes(bytes(raw))
    _read(read_aedat31, path, (MAX15, MAX15))


@fuzz(60)
@given(events=event_arrays(n_max=60, size=128), flips=st.lists(st.tuples(st.integers(0, 10**6), st.booleans()),
                                                              min_size=1, max_size=3))
def test_aedat31_sensor_size_check(fuzz_dir, events, flips):
    """With sensor_size given, a corrupt coordinate is an AedatError naming the file."""
    COUNTS["aedat31_sensor_size"] += 1
    path = write_aedat31(fuzz_dir / "sensor31.aedat", events, durable=False)
    raw = bytearray(path.read_bytes())
    pos, words = raw.index(b"#!END-HEADER\r\n") + 14, []  # byte offset of every event's data word
    while pos < len(raw):
        number = struct.unpack_from("<i", raw, pos + 20)[0]
        words += [pos + 28 + 8 * j for j in range(number)]
        pos += 28 + 8 * number
    assert len(words) == events.size
    flipped = set()
    for f, in_x in flips:  # set bit 12 of x (data bit 29) or of y (data bit 14): >= 4096
        if events.size:
            i = f % events.size
            raw[words[i] + (3 if in_x else 1)] ^= 0x20 if in_x else 0x40
            flipped ^= {(i, in_x)}
    path.write_bytes(bytes(raw))
    back = _read(read_aedat31, path, (128, 128), sensor_size=128)
    assert (back is None) == bool(flipped)
    if back is not None:
        np.testing.assert_array_equal(back, events)


@fuzz(120)
@given(prefix=st.sampled_from([b"", HEADER20, b"#!AER-DAT2.0", b"#!AER-DAT2.0\n#"]), body=st.binary(max_size=400),
       sensor=st.sampled_from([128, 128, 200, 64, 1]))
def test_aedat20_random_bytes(fuzz_dir, prefix, body, sensor):
    COUNTS["aedat20_random_bytes"] += 1
    path = fuzz_dir / "random20.aedat"
    path.write_bytes(prefix + body)
    _read(read_aedat20, path, (sensor, sensor), sensor_size=sensor)


@fuzz(40)
@given(sensor=st.one_of(st.integers(-2, 0), st.sampled_from([1.5, "128", None, True, (128, 128)])))
def test_aedat20_bad_sensor_size(fuzz_dir, sensor):
    COUNTS["aedat20_bad_sensor_size"] += 1
    path = fuzz_dir / "sensor20.aedat"
    path.write_bytes(HEADER20 + struct.pack(">II", 0x7F7F, 5))
    with pytest.raises((HyperParameterError, AedatError)):
        read_aedat20(path, sensor_size=sensor)


def _ambiguous20(t) -> bool:
    """Whether 32-bit time stamps cannot be read back exactly (the reader's rule: a step back by more
    than 2**31 µs is one wrap-around)."""
    t = [int(v) for v in t]
    if t and not 0 <= t[0] < 2**32:
        return True
    for a, b in zip(t[:-1], t[1:]):
        seen = (b % 2**32) - (a % 2**32) < -2**31
        if int(seen) != b // 2**32 - a // 2**32:
            return True
    return False


@fuzz(120)
@given(events=event_arrays(size=128, t_max=2**33), cut=st.floats(0, 1))
def test_aedat20_round_trip_and_truncation(fuzz_dir, events, cut):
    COUNTS["aedat20_round_trip_truncated"] += 1
    path = fuzz_dir / "trunc20.aedat"
    try:
        write_aedat20(path, events, durable=False)
    except AedatError as e:  # documented: time stamps the format cannot hold unambiguously
        _names_file(e, path)
        assert _ambiguous20(events["t"]), str(e)
        return
    assert not _ambiguous20(events["t"])
    raw = path.read_bytes()
    np.testing.assert_array_equal(read_aedat20(path), events)
    k = min(int(cut * len(raw)), len(raw) - 1)
    path.write_bytes(raw[:k])
    back = _read(read_aedat20, path, (128, 128))
    n_header = len(raw) - 8 * events.size
    if back is not None and k >= n_header:  # a cut on an event boundary: the start of the recording
        assert (k - n_header) % 8 == 0
        np.testing.assert_array_equal(back, events[:(k - n_header) // 8])
    elif back is not None:  # a cut right after a header line: no events
        assert back.size == 0


@fuzz(150)
@given(events=event_arrays(n_max=60, size=128, t_max=2**31), flips=st.lists(
    st.tuples(st.floats(0, 1), st.integers(0, 7)), min_size=1, max_size=4), sensor=st.sampled_from([128, 96]))
def test_aedat20_bit_flips(fuzz_dir, events, flips, sensor):
    COUNTS["aedat20_bit_flips"] += 1
    path = write_aedat20(fuzz_dir / "flip20.aedat", events, durable=False)
    raw = bytearray(path.read_bytes())
    for where, bit in flips:
        raw[min(int(where * len(raw)), len(raw) - 1)] ^= 1 << bit
    path.write_bytes(bytes(raw))
    _read(read_aedat20, path, (sensor, sensor), sensor_size=sensor)


label_text = st.one_of(
    st.binary(max_size=300),
    st.lists(st.tuples(st.integers(-2, 13), st.integers(-5, 10**12), st.integers(-5, 10**12)), max_size=6).map(
        lambda rows: ("class,startTime_usec,endTime_usec\n" + "".join(f"{c},{s},{e}\n" for c, s, e in rows)).encode()),
    st.text(alphabet="0123456789,-\n\r ab\x00\t\"", max_size=120).map(str.encode),
)


@fuzz(150)
@given(text=label_text)
def test_gesture_labels_random_text(fuzz_dir, text):
    COUNTS["gesture_labels_random"] += 1
    path = fuzz_dir / "user01_fuzz_labels.csv"
    path.write_bytes(text)
    try:
        rows = read_gesture_labels(path)
    except AedatError as e:
        _names_file(e, path)
        return
    for c, s, e in rows:
        assert all(type(v) is int for v in (c, s, e))
        assert 0 <= c <= 10 and s < e


@fuzz(80)
@given(rows=st.lists(st.tuples(st.integers(-1, 12), st.integers(-10, 10**10), st.integers(-10, 10**10)),
                     max_size=5))
def test_gesture_labels_write_read(fuzz_dir, rows):
    COUNTS["gesture_labels_round_trip"] += 1
    path = fuzz_dir / "user02_fuzz_labels.csv"
    valid = all(1 <= c <= 11 and 0 <= s < e for c, s, e in rows)  # times: non-negative int64 microseconds
    try:
        write_gesture_labels(path, rows, durable=False)
    except AedatError as e:
        assert not valid
        _names_file(e, path)
        return
    assert valid, "write_gesture_labels wrote rows its reader rejects"
    assert read_gesture_labels(path) == [(c - 1, s, e) for c, s, e in rows]


# ==================================================================================================
# 2. events -> frames
# ==================================================================================================
times = st.one_of(st.integers(0, 2000), st.integers(-2000, 2000), st.integers(-2**63, 2**63 - 1),
                  st.sampled_from([0, 2**31, 2**32, 2**62, -2**62]))


@st.composite
def odd_streams(draw):
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    n = draw(st.sampled_from([0, 1, 1, 2, draw(st.integers(0, 40))]))
    t = draw(st.lists(times, min_size=n, max_size=n))
    if draw(st.booleans()):
        t = sorted(t)
    oob = draw(st.integers(0, 9)) == 0  # sometimes allow coordinates outside the sensor
    x = draw(st.lists(st.integers(0, w + 2 if oob else w - 1), min_size=n, max_size=n))
    y = draw(st.lists(st.integers(0, h + 2 if oob else h - 1), min_size=n, max_size=n))
    p = draw(st.lists(st.sampled_from([0, 1, 0, 1, 2, 255] if draw(st.integers(0, 9)) == 0 else [0, 1]),
                      min_size=n, max_size=n))
    ev = np.empty(n, EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = t, x, y, p
    return ev, (h, w)


frame_options = st.fixed_dictionaries({
    "T": st.one_of(st.integers(1, 12), st.sampled_from([None, 0, -1, 2.0, True, 50])),
    "split_by": st.sampled_from(["number", "time", "duration", "duration", "count"]),
    "size": st.one_of(st.none(), st.integers(1, 7), st.tuples(st.integers(1, 7), st.integers(1, 7)),
                      st.sampled_from([0, (2, 2, 2), 2.5, "ab", (1, True)])),
    "normalization": st.sampled_from(list(NORMALIZATIONS) + [None, None, "l2"]),
    "duration_us": st.one_of(st.none(), st.integers(1, 3000), st.sampled_from([0, -5, 2**40, 2.5, float("nan")])),
})


def _reference_frames(events, T, split_by, sensor, size, duration_us):
    """The module docstring of snnedu.data.frames read literally, with Python integers."""
    sh, sw = sensor
    oh, ow = size
    t = [int(v) for v in events["t"]]
    n = len(t)
    seg = []
    if split_by == "number":
        di = n // T
        m = T
        seg = [min(i // di, T - 1) if di else T - 1 for i in range(n)]
    elif n == 0:
        m = T if T is not None else 1
    elif split_by == "time":
        m, dt = T, (t[-1] - t[0]) // T
        seg = [min(T - 1, (ti - t[0]) // dt) if dt else T - 1 for ti in t]
    else:
        raw = [(ti - t[0]) // duration_us for ti in t]
        if T is None:
            m = max(1, -(-(t[-1] - t[0]) // duration_us))
            seg = [min(s, m - 1) for s in raw]
        else:
            m = T
            seg = [s if s < T else -1 for s in raw]
    out = np.zeros((m, 2, oh, ow), np.int64)
    for (_, x, y, p), s in zip(events.tolist(), seg):
        if s >= 0:
            out[s, p, y * oh // sh, x * ow // sw] += 1
    return out


def _frames_problems(events, sensor, opts):
    """The error classes the documented contract allows here (empty: the call must succeed)."""
    T, split_by, size, dur = opts["T"], opts["split_by"], opts["size"], opts["duration_us"]
    problems = set()
    bad_args = (split_by not in ("number", "time", "duration") or (T is None and split_by != "duration")
                or (T is not None and (type(T) is not int or T < 1))
                or (split_by == "duration" and (type(dur) is not int or dur < 1))
                or opts["normalization"] not in NORMALIZATIONS)
    out_hw = sensor
    if size is not None:
        hw = (size, size) if type(size) is int else size
        if not isinstance(hw, tuple) or len(hw) != 2 or any(type(v) is not int or v < 1 for v in hw):
            bad_args = True
        elif hw[0] > sensor[0] or hw[1] > sensor[1]:
            bad_args = True
        else:
            out_hw = hw
    if bad_args:
        problems.add(HyperParameterError)
    if events.size:
        t = events["t"].astype(object)
        if (any(b < a for a, b in zip(t[:-1], t[1:])) or events["x"].max() >= sensor[1]
                or events["y"].max() >= sensor[0] or events["p"].max() > 1 or t[-1] - t[0] > 2**62):
            problems.add(InputError)
        elif not bad_args and T is None and -(-(t[-1] - t[0]) // dur) * 2 * out_hw[0] * out_hw[1] > 2**28:
            problems.add(InputError)  # too many frames for memory
    return problems


@fuzz(400)
@given(stream=odd_streams(), opts=frame_options)
def test_events_to_frames(stream, opts):
    COUNTS["events_to_frames"] += 1
    events, sensor = stream
    allowed = _frames_problems(events, sensor, opts)
    try:
        frames = events_to_frames(events, opts["T"], split_by=opts["split_by"], sensor_size=sensor,
                                  size=opts["size"], normalization=opts["normalization"],
                                  duration_us=opts["duration_us"])
    except (InputError, HyperParameterError, DataError) as e:
        assert type(e) in allowed, f"unexpected {type(e).__name__} (allowed: {allowed}): {e}"
        return
    assert not allowed, f"expected one of {allowed}, got frames {frames.shape}"
    size = opts["size"]
    out_hw = sensor if size is None else ((size, size) if isinstance(size, int) else tuple(size))
    ref = _reference_frames(events, opts["T"], opts["split_by"], sensor, out_hw, opts["duration_us"])
    assert frames.shape == ref.shape
    if opts["T"] is not None:
        assert frames.shape[0] == opts["T"]
    assert frames.shape[1:] == (2, *out_hw)
    if opts["normalization"] is None:
        assert frames.dtype == np.int32
        np.testing.assert_array_equal(frames, ref)
        if opts["split_by"] != "duration" or opts["T"] is None:
            assert frames.sum() == events.size  # nothing is lost
    else:
        assert frames.dtype == np.float32 and np.isfinite(frames).all()
        if opts["normalization"] in ("max", "max_frame", "sum"):
            assert frames.min() >= 0 and frames.max() <= 1.0 + 1e-6
        assert ((frames != 0) == (ref != 0)).all() or opts["normalization"] == "norm"


# ==================================================================================================
# 3. encoders and neurons
# ==================================================================================================
DTYPES = [torch.float32, torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
          torch.uint8, torch.bool]


@st.composite
def tensors(draw, min_rank=0, max_rank=4, unit=True):
    rank = draw(st.integers(min_rank, max_rank))
    shape = tuple(draw(st.lists(st.integers(0, 4) if draw(st.integers(0, 5)) == 0 else st.integers(1, 4),
                                min_size=rank, max_size=rank)))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**31))
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    if not unit:
        x = (x - 0.3) * draw(st.sampled_from([1.0, 3.0, 1e3]))
    special = draw(st.sampled_from([None] * 6 + [float("nan"), float("inf"), -float("inf"), 1.5, -0.5]))
    if special is not None and x.numel():
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = special
    if dtype == torch.bool:
        x = x > 0.5
    elif not dtype.is_floating_point:
        x = (x.nan_to_num(0.0, 0.0, 0.0) * 3).round().clamp(0, 255).to(dtype)
    else:
        x = x.to(dtype)
    return x


Ts = st.one_of(st.integers(1, 9), st.sampled_from([0, -1, 2.0, True, "4", None]))


def _encoder_problem(x, T, check_unit, threshold=0.0):
    if type(T) is not int or T < 1:
        return HyperParameterError
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:  # NaN fails too
        return HyperParameterError
    if x.dim() < 1 or not x.is_floating_point():
        return InputError
    if x.numel() and not bool(torch.isfinite(x).all()):
        return InputError
    if check_unit and x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        return InputError
    return None


@fuzz(300)
@given(x=tensors(), T=Ts, kind=st.sampled_from(["poisson", "direct", "latency"]), functional=st.booleans(),
       threshold=st.sampled_from([0.0, 0.0, 0.5, 1.0, 0, -0.1, 1.5, float("nan"), "0", None]))
def test_encoders(x, T, kind, functional, threshold):
    COUNTS["encoders"] += 1
    expected = _encoder_problem(x, T, kind != "direct", threshold if kind == "latency" else 0.0)
    try:
        if kind == "poisson":
            s = poisson_encode(x, T) if functional else PoissonEncoder(T)(x)
        elif kind == "direct":
            s = direct_encode(x, T) if functional else DirectEncoder(T)(x)
        else:
            s = latency_encode(x, T, threshold) if functional else LatencyEncoder(T, threshold)(x)
    except (InputError, HyperParameterError) as e:
        assert expected is not None and isinstance(e, expected), f"unexpected {type(e).__name__}: {e}"
        return
    assert expected is None, f"expected {expected.__name__}"
    assert s.shape == (T, *x.shape) and s.dtype == x.dtype
    if kind == "direct":
        assert torch.equal(s, x.expand(T, *x.shape))
        return
    assert bool(((s == 0) | (s == 1)).all())
    if kind == "latency" and x.numel():
        xf = x.double()
        fires = xf > threshold
        assert torch.equal(s.sum(0).bool(), fires)
        t_spike = torch.round((1 - xf) * (T - 1)).long()
        first = s.double().argmax(0)
        assert torch.all((first - t_spike).abs()[fires] <= 1)  # rounding in the input's precision


# every exported neuron family in several settings (tests/neuron_cases.py), and two recording ones
NEURONS = {
    **CASES,
    "LIF_record": lambda: snnedu.LIF(tau=2.0, v_reset=None, record=True),  # the reference loop
    "MLF_record": lambda: snnedu.MLF(K=2, record=True),
    "ALIF_record": lambda: snnedu.ALIF(record=True),
}


def _neuron_problem(x, rank_needed):
    if x.dim() < rank_needed or not x.is_floating_point():
        return InputError
    if rank_needed == 2 and x.shape[0] == 0:
        return InputError
    if x.numel() and not bool(torch.isfinite(x).all()):
        return InputError
    return None


@fuzz(300)
@given(x=tensors(min_rank=0, max_rank=5, unit=False), name=st.sampled_from(sorted(NEURONS)))
def test_neurons_multistep_and_step(x, name):
    COUNTS["neurons_inputs"] += 1
    neuron = NEURONS[name]()
    K = getattr(neuron, "K", 1)
    expected = _neuron_problem(x, 2)
    try:
        s = neuron(x)
    except InputError as e:
        assert expected is not None, f"unexpected InputError: {e}"
        return
    assert expected is None, f"expected {expected.__name__}, got output {tuple(s.shape)}"
    assert s.shape == x.shape and s.dtype == x.dtype
    assert bool(((s >= 0) & (s <= K) & (s == s.round())).all())
    if neuron.record:  # traces [T, B, ...], or [T, K, B, ...] for a multi-level unit
        trace_shape = x.shape if K == 1 else (x.shape[0], K, *x.shape[1:])
        assert neuron.h_seq.shape == trace_shape and neuron.v_seq.shape == trace_shape
    # the single-step path gives the same spikes (exact arithmetic only in float32 / float64)
    if x.dtype in (torch.float32, torch.float64) and x.numel() and float(x.abs().max()) < 1e6:
        fresh = NEURONS[name]()
        fresh.load_state_dict(neuron.state_dict())
        steps = torch.stack([fresh.step(xt) for xt in x])
        assert steps.shape == s.shape
        assert torch.equal(steps, s)


@fuzz(200)
@given(x=tensors(min_rank=0, max_rank=4, unit=False), name=st.sampled_from(sorted(NEURONS)))
def test_neurons_single_step(x, name):
    COUNTS["neurons_step"] += 1
    neuron = NEURONS[name]()
    expected = _neuron_problem(x, 1)
    try:
        s = neuron.step(x)
        s2 = neuron.step(x)
    except InputError as e:
        assert expected is not None, f"unexpected InputError: {e}"
        return
    assert expected is None
    assert s.shape == x.shape == s2.shape and s.dtype == x.dtype


anything = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.sampled_from([2**40, -2**40]),
                     st.floats(allow_nan=True, allow_infinity=True), st.floats(-3, 5),
                     st.text(max_size=5), st.lists(st.integers(-1, 3), max_size=3))
hyper = st.fixed_dictionaries({}, optional={
    "v_threshold": st.one_of(st.floats(-1, 3), anything), "v_reset": st.one_of(st.none(), st.floats(-1, 2), anything),
    "surrogate": st.sampled_from(["atan", "sigmoid", "rect", "triangle", "ATan", "relu", "", None, 3]),
    "detach_reset": st.booleans(), "learn_threshold": st.sampled_from([False, True, "layer", "neuron", "x", 2]),
    "threshold_noise": st.one_of(st.sampled_from([0.0, 1e-4, -1.0]), anything),
    "min_threshold": st.one_of(st.sampled_from([1e-3, 0.5]), anything)})
Ks = st.one_of(st.integers(-1, 5), anything, st.sampled_from([256, 257]))
family_hyper = {
    **{name: st.fixed_dictionaries({}) for name in neuron_classes()},   # the generic ones, for every class
    "IF": st.fixed_dictionaries({}),
    "LIF": st.fixed_dictionaries({}, optional={"tau": st.one_of(st.floats(0, 10), anything),
                                               "decay_input": st.booleans()}),
    "LIF.stbp": st.fixed_dictionaries({}, optional={"decay": st.one_of(st.floats(-0.5, 1.5), anything)}),
    "PLIF": st.fixed_dictionaries({}, optional={
        "tau_init": st.one_of(st.floats(0, 10), anything, st.sampled_from([1e200, 1 + 1e-15])),
        "per_neuron": st.booleans(), "tau_std": st.one_of(st.floats(0, 3), anything, st.sampled_from([1e200])),
        "shape": st.one_of(st.none(), st.sampled_from([(4,), [4], (0,), (-1,), 4, "ab", (2.5,), (), (3, 4)]))}),
    "MLF": st.fixed_dictionaries({}, optional={"K": Ks,
                                               "a": st.one_of(st.floats(-1, 3), anything),
                                               "decay": st.one_of(st.floats(-0.5, 1.5), anything)}),
    "PMLF": st.fixed_dictionaries({}, optional={"K": Ks,
                                                "decay_init": st.one_of(st.floats(-0.5, 1.5), anything),
                                                "per_level": st.booleans()}),
    "PMLF3": st.fixed_dictionaries({}, optional={"K": Ks,
                                                 "decay_init": st.one_of(st.floats(-0.5, 1.5), anything)}),
    "ALIF": st.fixed_dictionaries({}, optional={"tau": st.one_of(st.floats(0, 10), anything),
                                                "tau_a": st.one_of(st.floats(0, 100), anything),
                                                "beta": st.one_of(st.floats(-1, 2), anything),
                                                "decay_input": st.booleans()}),
}


def _build_neuron(family, kwargs):
    if family == "LIF.stbp":
        kwargs = {k: v for k, v in kwargs.items() if k != "v_reset"}
        return snnedu.LIF.stbp(**kwargs)
    return getattr(snnedu, family)(**kwargs)


@fuzz(400)
@given(family=st.sampled_from(sorted(family_hyper)), data=st.data())
def test_neuron_hyper_parameters(family, data):
    COUNTS["neurons_hyper_parameters"] += 1
    kwargs = {**data.draw(hyper), **data.draw(family_hyper[family])}
    try:
        neuron = _build_neuron(family, kwargs)
    except HyperParameterError as e:
        assert str(e) and "\n" not in str(e)
        return
    th = neuron.v_threshold
    assert isinstance(th, float) and math.isfinite(th) and th > 0
    assert neuron.v_reset is None or (math.isfinite(neuron.v_reset) and neuron.v_reset < th)
    K = getattr(neuron, "K", 1)
    assert type(K) is int and K >= 1
    x = torch.rand(3, 2, 4) * 2
    try:
        s = neuron(x)
    except InputError as e:  # a per-neuron shape given at construction that does not fit [4]
        assert "per neuron" in str(e)
        return
    assert s.shape == x.shape and bool(((s >= 0) & (s <= K)).all())
    for p in neuron.parameters():
        assert bool(torch.isfinite(p).all()), f"{family}({kwargs}) starts with non-finite parameters"


# ==================================================================================================
# 4. configs
# ==================================================================================================
RAW_CONFIGS = {p.name: yaml.safe_load(p.read_text()) for p in CONFIGS}
_KEY = r"""([A-Za-z_]\w*|'[^']*'|"[^"]*"|-?\d+|None|True|False)"""
FIELD_PATH = rf"^(config|{_KEY}(\.{_KEY})*)( / [\w.]+)*: "  # e.g. "model.neuron.tau: ...", "data.'': ..."


def _paths(node, prefix=()):
    """Every (path, is_leaf) of a nested dict."""
    for k, v in node.items():
        yield prefix + (k,), not isinstance(v, dict)
        if isinstance(v, dict):
            yield from _paths(v, prefix + (k,))


values = st.one_of(st.none(), st.booleans(), st.integers(-5, 300), st.sampled_from([0, -1, 10**30, 10**400]),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                   st.sampled_from(["mnist", "cifar10", "dvs128_gesture", "resnet20", "LIF", "number", "max",
                                    "sgd", "step", "tet", "PLIF", "LIF.stbp", "direct"]),
                   st.lists(st.integers(-2, 64), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                              max_size=2))
keys = st.one_of(st.text(max_size=6), st.sampled_from(["T", "tau", "K", "decay", "lr", "typo", "neuron", "epochs",
                                                       "size", "scheduler", "v_reset", "tau_init"]),
                 st.integers(0, 3))


@fuzz(300)
@given(name=st.sampled_from(sorted(RAW_CONFIGS)), data=st.data())
def test_config_mutations(name, data):
    COUNTS["config_mutations"] += 1
    raw = copy.deepcopy(RAW_CONFIGS[name])
    validate_config(copy.deepcopy(raw))  # every shipped config is valid
    for _ in range(data.draw(st.integers(1, 3))):
        paths = list(_paths(raw))
        path, _ = data.draw(st.sampled_from(paths))
        parent = raw
        for k in path[:-1]:
            parent = parent[k]
        action = data.draw(st.sampled_from(["set", "set", "delete", "add", "section"]))
        if action == "set":
            parent[path[-1]] = data.draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add":
            target = parent[path[-1]] if isinstance(parent[path[-1]], dict) else parent
            target[data.draw(keys)] = data.draw(values)
        else:
            raw[data.draw(st.sampled_from(["data", "model", "train", "extra"]))] = data.draw(values)
    try:
        cfg = validate_config(raw)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg, f"not one line: {msg!r}"
        assert re.match(FIELD_PATH, msg), f"message does not start with the field: {msg!r}"
        return
    _check_valid_config(cfg)


def _check_valid_config(cfg):
    """A config that validates satisfies the schema (types, choices, ranges) everywhere."""
    def walk(node, schema, where):
        for key, spec in schema.items():
            if key == "*":
                continue
            assert key in node, f"{where}{key} missing after validation"
            if isinstance(spec, dict):
                walk(node[key], spec, f"{where}{key}.")
                continue
            v = node[key]
            assert isinstance(v, spec.types) and not (isinstance(v, bool) and bool not in spec.types), \
                f"{where}{key} = {v!r}"
            if spec.choices is not None:
                assert v in spec.choices
            if isinstance(v, int) and not isinstance(v, bool):
                assert abs(v) < 2**63, f"{where}{key} = {v!r}"
            if spec.low is not None and isinstance(v, (int, float)) and not isinstance(v, bool):
                assert v > spec.low if spec.low_open else v >= spec.low, f"{where}{key} = {v!r}"
            if isinstance(v, float):
                assert math.isfinite(v), f"{where}{key} = {v!r}"
            if isinstance(v, list):
                assert all(type(i) is int and i >= 1 for i in v), f"{where}{key} = {v!r}"
    walk(cfg, SCHEMA, "")
    for k in cfg["model"]["neuron"]:
        assert isinstance(k, str)


yaml_text = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=120).map(lambda b: b.decode("latin-1")),
    st.sampled_from(["", "---", "[]", "- 1\n- 2", "name: x", "data: 3", "{a: 1", "!!python/object:os.system {}",
                     "name: &a x\nsource: *b", "? [a, b]\n: 1", "\t- x", "a: b: c", "\x00", "%YAML 9.9\n---\n1"]),
    st.sampled_from(sorted(RAW_CONFIGS)).flatmap(
        lambda n: st.tuples(st.just((ROOT / "configs" / n).read_text()), st.integers(0, 2000)).map(
            lambda tk: tk[0][:tk[1]])),
)


@fuzz(200)
@given(text=yaml_text, as_bytes=st.booleans(), junk=st.binary(max_size=4))
def test_load_config_random_yaml(fuzz_dir, text, as_bytes, junk):
    COUNTS["config_random_yaml"] += 1
    path = fuzz_dir / "fuzz.yaml"
    if as_bytes:  # possibly not UTF-8
        path.write_bytes(text.encode("utf-8", "surrogatepass") + junk)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cfg = load_config(path)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    _check_valid_config(cfg)

