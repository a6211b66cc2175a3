"""The AEDAT readers against files written to the format documents, not by snnedu's own writers.

The small writers below follow the bit layouts of iniVation's "AEDAT 3.1" and "AEDAT 2.0"/"AEDAT 1.0"
file-format pages and of jAER's DVS128 event extractor, field by field with ``struct``:

- AEDAT 3.1 polarity event: little-endian ``uint32 data, int32 ts``; data bit 0 = validity mark,
  bit 1 = polarity, bits 2-16 = y, bits 17-31 = x (15-bit addresses); packets of 28-byte headers.
- AEDAT 2.0 DVS128 event: big-endian ``uint32 address, uint32 ts``; bit 0 = polarity, bits 1-7 = x,
  bits 8-14 = y, bit 15 = external (sync) event, bit 31 = special event.
"""
import re
import struct
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from snnedu.data.aedat import (START_TIME_FORMAT, AedatError, AedatInfo, read_aedat20, read_aedat31,
                               write_aedat31)
from snnedu.data.standins import write_gesture_standin
from snnedu.data.events import make_events
from snnedu.errors import HyperParameterError

HEADER31 = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
            b"#Start-Time: 2017-01-05 13:42:07 (TZ+0100)\r\n#!END-HEADER\r\n")
HEADER20 = b"#!AER-DAT2.0\r\n# written by the test's own writer\r\n"
POLARITY, SPECIAL = 1, 0


# --------------------------------------------------------------------------------------------------
# test-local writers, from the documented layouts
# --------------------------------------------------------------------------------------------------
def data_word31(x, y, p, valid=True):
    assert 0 <= x < 2**15 and 0 <= y < 2**15 and p in (0, 1)
    return (x << 17) | (y << 2) | (p << 1) | int(valid)


def packet31(words_ts, ptype=POLARITY, overflow=0):
    """One packet: header (type, source, event size, ts offset, ts overflow, capacity, number, valid)
    and its 8-byte events ``(uint32 data word, int32 time stamp)``."""
    n = len(words_ts)
    n_valid = sum(w & 1 for w, _ in words_ts)
    head = struct.pack("<hhiiiiii", ptype, 1, 8, 4, overflow, n, n, n_valid)
    return head + b"".join(struct.pack("<Ii", w, ts) for w, ts in words_ts)


def file31(tmp_path, *packets, name="spec31.aedat"):
    f = tmp_path / name
    f.write_bytes(HEADER31 + b"".join(packets))
    return f


def file20(tmp_path, words_ts, name="spec20.aedat"):
    f = tmp_path / name
    f.write_bytes(HEADER20 + b"".join(struct.pack(">II", a, ts) for a, ts in words_ts))
    return f


def address20(x_raw, y_raw, p_raw):
    assert 0 <= x_raw < 128 and 0 <= y_raw < 128 and p_raw in (0, 1)
    return (y_raw << 8) | (x_raw << 1) | p_raw


def as_tuples(ev):
    return [tuple(int(v) for v in e) for e in ev[["t", "x", "y", "p"]].tolist()]


# --------------------------------------------------------------------------------------------------
# AEDAT 3.1: 15-bit coordinates
# --------------------------------------------------------------------------------------------------
def test_aedat31_coordinates_above_8191_read_back_exactly(tmp_path):
    rng = np.random.default_rng(18)
    n = 3000
    x = rng.integers(0, 2**15, n)
    y = rng.integers(0, 2**15, n)
    x[:4], y[:4] = [0, 8191, 8192, 2**15 - 1], [2**15 - 1, 8192, 8191, 0]  # the 13-bit edge, the 15-bit top
    p = rng.integers(0, 2, n)
    t = np.sort(rng.integers(0, 2**31, n))
    words = [(data_word31(int(a), int(b), int(c)), int(d)) for a, b, c, d in zip(x, y, p, t)]
    f = file31(tmp_path, packet31(words[:1000]), packet31(words[1000:]))
    ev = read_aedat31(f)
    assert as_tuples(ev) == list(zip(t.tolist(), x.tolist(), y.tolist(), p.tolist()))
    assert int(np.count_nonzero((x >= 8192) | (y >= 8192))) > 2000  # most would have wrapped with 13 bits
    np.testing.assert_array_equal(read_aedat31(f, sensor_size=2**15), ev)


def test_aedat31_out_of_sensor_coordinate_above_8191_is_an_error_not_a_wrap(tmp_path):
    # x = 8197 = 8192 + 5: a 13-bit mask would read x = 5, inside a 128x128 sensor
    f = file31(tmp_path, packet31([(data_word31(3, 4, 1), 10), (data_word31(8197, 4, 1), 11)]))
    with pytest.raises(AedatError, match=r"spec31\.aedat: 1 events lie outside the 128x128 sensor.*x=8197"):
        read_aedat31(f, sensor_size=128)
    assert read_aedat31(f)["x"].tolist() == [3, 8197]
    g = file31(tmp_path, packet31([(data_word31(2, 2**15 - 1, 0), 10)]), name="y.aedat")  # y in bits 2-16
    with pytest.raises(AedatError, match="y=32767"):
        read_aedat31(g, sensor_size=(128, 128))


# --------------------------------------------------------------------------------------------------
# AEDAT 3.1: the validity mark
# --------------------------------------------------------------------------------------------------
def test_aedat31_invalid_marked_events_are_dropped_by_default_and_kept_on_request(tmp_path):
    events = [(5, 6, 1, 100, True), (7, 8, 0, 101, False), (9, 10, 1, 102, True), (11, 12, 0, 103, False)]
    words = [(data_word31(x, y, p, v), t) for x, y, p, t, v in events]
    zeroed = struct.pack("<hhiiiiii", POLARITY, 1, 8, 4, 0, 2, 2, 0) + bytes(16)  # an all-zero packet
    special = packet31([(0x1234, 104)], ptype=SPECIAL)
    late = packet31([(data_word31(1, 2, 1, False), 5)], overflow=1)
    f = file31(tmp_path, packet31(words), zeroed, special, late)

    ev, info = read_aedat31(f, return_info=True)
    assert as_tuples(ev) == [(100, 5, 6, 1), (102, 9, 10, 1)]
    assert info == AedatInfo(invalid=2 + 2 + 1, other_packets=1, special=0)
    np.testing.assert_array_equal(read_aedat31(f), ev)

    kept, info_kept = read_aedat31(f, keep_invalid=True, return_info=True)  # SpikingJelly's / tonic's view
    assert as_tuples(kept) == [(0, 0, 0, 0), (0, 0, 0, 0), (100, 5, 6, 1), (101, 7, 8, 0), (102, 9, 10, 1),
                               (103, 11, 12, 0), (2**31 + 5, 1, 2, 1)]
    assert info_kept == info


def test_aedat31_checks_apply_to_the_events_returned(tmp_path):
    # an invalid event's contents are not an event: out-of-sensor coordinates or a negative time stamp
    # in it are no error by default, and are with keep_invalid=True
    f = file31(tmp_path, packet31([(data_word31(3, 3, 1), 10), (data_word31(9000, 3, 1, False), 11)]))
    assert as_tuples(read_aedat31(f, sensor_size=128)) == [(10, 3, 3, 1)]
    with pytest.raises(AedatError, match="x=9000"):
        read_aedat31(f, sensor_size=128, keep_invalid=True)
    g = file31(tmp_path, packet31([(data_word31(3, 3, 1), 10), (data_word31(4, 4, 0, False), -7)]), name="g.aedat")
    assert as_tuples(read_aedat31(g)) == [(10, 3, 3, 1)]
    with pytest.raises(AedatError, match=rf"g\.aedat: corrupt polarity event at offset {len(HEADER31) + 28 + 8}: "
                                         r"negative time stamp -7"):
        read_aedat31(g, keep_invalid=True)


def test_snnedus_writer_sets_the_validity_mark_and_reads_back_identically(tmp_path):
    rng = np.random.default_rng(1)
    t = np.sort(rng.integers(2**31 - 1000, 2**31 + 1000, 500))  # crosses the overflow counter
    ev = make_events(t, rng.integers(0, 128, 500), rng.integers(0, 128, 500), rng.integers(0, 2, 500))
    path = write_aedat31(tmp_path / "ours.aedat", ev, packet_events=100)
    raw = path.read_bytes()
    pos = raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    words, ours = [], b""
    while pos < len(raw):  # walk the packets as the format document describes them
        ptype, _, size, ts_offset, overflow, capacity, number, valid = struct.unpack_from("<hhiiiiii", raw, pos)
        assert (ptype, size, ts_offset, capacity, valid) == (POLARITY, 8, 4, number, number)
        chunk = [struct.unpack_from("<Ii", raw, pos + 28 + 8 * k) for k in range(number)]
        words += [w for w, _ in chunk]
        ours += packet31(chunk, overflow=overflow)  # the test's writer gives the same bytes
        pos += 28 + 8 * number
    assert len(words) == ev.size and all(w & 1 for w in words)
    assert ours == raw[raw.index(b"#!END-HEADER\r\n") + 14:]
    back, info = read_aedat31(path, return_info=True)
    np.testing.assert_array_equal(back, ev)
    np.testing.assert_array_equal(read_aedat31(path, keep_invalid=True), ev)
    assert info == AedatInfo()


def test_writer_refuses_sensors_beyond_15_bit_addresses(tmp_path):
    ev = make_events([1], [40000], [0], [1])
    with pytest.raises(HyperParameterError, match="15-bit"):
        write_aedat31(tmp_path / "big.aedat", ev, sensor_size=(128, 40001))
    big = write_aedat31(tmp_path / "ok.aedat", make_events([1], [2**15 - 1], [0], [1]), sensor_size=2**15)
    assert read_aedat31(big)["x"].tolist() == [2**15 - 1]


# --------------------------------------------------------------------------------------------------
# AEDAT 3.1: the #Start-Time: header line
# --------------------------------------------------------------------------------------------------
def _start_time_line(path):
    lines = path.read_bytes().split(b"#!END-HEADER")[0].split(b"\r\n")
    found = [ln for ln in lines if ln.startswith(b"#Start-Time: ")]
    assert len(found) == 1
    return found[0][len(b"#Start-Time: "):].decode("ascii")


def test_writer_start_time_line_has_the_documented_form(tmp_path):
    assert START_TIME_FORMAT == "%Y-%m-%d %H:%M:%S (TZ%z)"
    ev = make_events([1, 2], [0, 1], [0, 1], [0, 1])
    when = datetime(2017, 1, 5, 13, 42, 7, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    given = _start_time_line(write_aedat31(tmp_path / "a.aedat", ev, start_time=when))
    assert given == "2017-01-05 13:42:07 (TZ-0530)"
    assert datetime.strptime(given, START_TIME_FORMAT) == when

    before = datetime.now(timezone.utc).replace(microsecond=0)
    now = _start_time_line(write_aedat31(tmp_path / "b.aedat", ev))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \(TZ[+-]\d{4}\)", now), now
    assert before <= datetime.strptime(now, START_TIME_FORMAT) <= datetime.now(timezone.utc)

    with pytest.raises(HyperParameterError, match="start_time"):
        write_aedat31(tmp_path / "c.aedat", ev, start_time="yesterday")
    assert not (tmp_path / "c.aedat").exists()


def test_gesture_standin_recordings_have_a_fixed_start_time_and_only_valid_events(tmp_path):
    # the DVS stand-in generator writes through write_aedat31: deterministic bytes, nothing dropped
    folder = write_gesture_standin(tmp_path, n_train_users=1, n_test_users=0, lightings=("a",), size=16,
                                   progress=False)
    rec = folder / "user01_a.aedat"
    assert _start_time_line(rec) == "1970-01-01 00:00:00 (TZ+0000)"
    ev, info = read_aedat31(rec, sensor_size=128, return_info=True)
    assert ev.size > 0 and info == AedatInfo()
    np.testing.assert_array_equal(read_aedat31(rec, keep_invalid=True), ev)


# --------------------------------------------------------------------------------------------------
# AEDAT 2.0: special and sync addresses
# --------------------------------------------------------------------------------------------------
def test_aedat20_sync_and_special_words_among_pixel_events_are_skipped_and_counted(tmp_path):
    words = [(address20(0, 0, 0), 5),
             (0x8000, 6),                              # a bare sync word: not an ON event at (127, 127)
             (address20(10, 100, 1), 7),
             (0x8000 | address20(3, 4, 1), 8),         # bit 15 with pixel bits: still a sync event
             (0x80000000 | address20(5, 6, 0), 9),     # bit 31: a special event in jAER
             (address20(127, 3, 0), 10)]
    f = file20(tmp_path, words)
    ev, info = read_aedat20(f, return_info=True)
    assert as_tuples(ev) == [(5, 127, 127, 1), (7, 27, 117, 0), (10, 124, 0, 1)]
    assert info == AedatInfo(special=3)
    np.testing.assert_array_equal(read_aedat20(f), ev)


def test_aedat20_special_words_neither_fail_the_sensor_check_nor_shift_error_offsets(tmp_path):
    # on a 64x64 sensor the sync word 0x8000 would have raw coordinates (0, 0), but 0x80FF would have
    # (127, 0), outside: skipped, it is no error
    ok = file20(tmp_path, [(0x80FF, 1), (address20(3, 60, 1), 2)], name="ok.aedat")
    assert as_tuples(read_aedat20(ok, sensor_size=64)) == [(2, 3, 60, 0)]
    # the offset named for a real out-of-sensor pixel counts the skipped words
    bad = file20(tmp_path, [(0x8000, 1), (0x8000, 2), (address20(100, 3, 1), 3)], name="bad.aedat")
    with pytest.raises(AedatError, match=rf"bad\.aedat: event at offset {len(HEADER20) + 16} has raw "
                                         r"coordinates \(100, 3\), outside the 64x64 sensor"):
        read_aedat20(bad, sensor_size=64)


def test_aedat20_time_stamps_of_special_words_take_part_in_the_unwrap(tmp_path):
    # the wrap of the 32-bit clock shows only through the sync word between the two pixels: the step
    # back from the first pixel to the sync word exceeds 2**31 µs, the one to the second pixel does not
    words = [(address20(1, 1, 1), 2**32 - 10), (0x8000, 2**31 - 20), (address20(2, 2, 0), 2**31 - 5)]
    ev = read_aedat20(file20(tmp_path, words))
    assert ev["t"].tolist() == [2**32 - 10, 2**32 + 2**31 - 5]
