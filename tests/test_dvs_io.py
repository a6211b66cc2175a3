"""AEDAT readers/writers, events -> frames, and the HDF5 frame cache (files written by the tests)."""
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snnedu.data.aedat import (AedatError, read_aedat20, read_aedat31, read_gesture_labels, write_aedat20,
                               write_aedat31)
from snnedu.data.events import EVENT_DTYPE, make_events
from snnedu.data.frame_cache import CacheError, CacheUnit, FrameCache, build_frame_cache
from snnedu.data.frames import events_to_frames, resize_frames
from snnedu.errors import HyperParameterError, InputError


def random_events(n, seed=0, t_max=1_000_000, size=128, t0=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t0, t0 + t_max, n))
    return make_events(t, rng.integers(0, size, n), rng.integers(0, size, n), rng.integers(0, 2, n))


# --------------------------------------------------------------------------------------------------
# AEDAT 3.1
# --------------------------------------------------------------------------------------------------
HEADER31 = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"


def packet(ptype, events_bytes, n, size=8, overflow=0):
    return struct.pack("<hhiiiiii", ptype, 1, size, 4, overflow, n, n, n) + events_bytes


def test_aedat31_decodes_the_documented_bit_layout(tmp_path):
    # built by hand from the format description, not with the writer
    evs = [(5, 127, 1, 10), (0, 0, 0, 11), (64, 3, 1, 11), (100, 120, 0, 2**31 - 1)]
    body = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | 1, t) for x, y, p, t in evs)
    special = struct.pack("<Ii", 0xDEAD, 12) * 2  # a type-0 packet: skipped
    late = struct.pack("<Ii", (7 << 17) | (9 << 2) | 1, 5)  # overflow 1 -> t = 2**31 + 5
    f = tmp_path / "a.aedat"
    f.write_bytes(HEADER31 + packet(1, body, 4) + packet(0, special, 2) + packet(1, late, 1, overflow=1))
    ev = read_aedat31(f)
    assert ev.dtype == EVENT_DTYPE
    assert ev["x"].tolist() == [5, 0, 64, 100, 7]
    assert ev["y"].tolist() == [127, 0, 3, 120, 9]
    assert ev["p"].tolist() == [1, 0, 1, 0, 0]
    assert ev["t"].tolist() == [10, 11, 11, 2**31 - 1, 2**31 + 5]


def test_aedat31_round_trip_with_labels(tmp_path):
    ev = random_events(10_000, t0=2**31 - 500_000)  # crosses the 31-bit overflow
    rows = [(1, 2**31 - 400_000, 2**31 - 100_000), (11, 2**31, 2**31 + 400_000)]
    path = write_aedat31(tmp_path / "user01_led.aedat", ev, labels=rows, packet_events=777)
    back = read_aedat31(path)
    np.testing.assert_array_equal(back, ev)
    assert read_gesture_labels(tmp_path / "user01_led_labels.csv") == [(0, rows[0][1], rows[0][2]),
                                                                      (10, rows[1][1], rows[1][2])]


@pytest.mark.parametrize("cut, what", [(10, "header"), (-3, "truncated packet at offset"),
                                       (20, "truncated packet header at offset")])
def test_aedat31_truncated_files_name_file_and_offset(tmp_path, cut, what):
    path = write_aedat31(tmp_path / "rec.aedat", random_events(100))
    raw = path.read_bytes()
    if cut == 20:  # inside the first packet header
        cut += raw.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    path.write_bytes(raw[:cut])
    with pytest.raises(AedatError, match=what) as e:
        read_aedat31(path)
    assert "rec.aedat" in str(e.value)


def test_aedat31_wrong_magic_and_corrupt_packet(tmp_path):
    bad = tmp_path / "x.aedat"
    bad.write_bytes(b"hello world")
    with pytest.raises(AedatError, match="not an AEDAT 3"):
        read_aedat31(bad)
    bad.write_bytes(HEADER31 + packet(1, b"\0" * 16, 2, size=0))
    with pytest.raises(AedatError, match=f"corrupt packet header at offset {len(HEADER31)}"):
        read_aedat31(bad)
    with pytest.raises(AedatError, match="no such file"):
        read_aedat31(tmp_path / "missing.aedat")


def test_gesture_labels_reject_bad_rows(tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("class,startTime_usec,endTime_usec\n1,10,5\n")
    with pytest.raises(AedatError, match="line 2"):
        read_gesture_labels(f)
    f.write_text("class,startTime_usec,endTime_usec\n3,a,5\n")
    with pytest.raises(AedatError, match="line 2"):
        read_gesture_labels(f)


# --------------------------------------------------------------------------------------------------
# AEDAT 2.0
# --------------------------------------------------------------------------------------------------
def test_aedat20_decodes_the_cifar10_dvs_address_layout(tmp_path):
    # (x_raw, y_raw, p_raw, t) -> stored x = 127 - y_raw, y = 127 - x_raw, p = 1 - p_raw
    raw_events = [(0, 0, 0, 5), (10, 100, 1, 6), (127, 3, 0, 9)]
    body = b"".join(struct.pack(">II", (yr << 8) | (xr << 1) | pr, t) for xr, yr, pr, t in raw_events)
    f = tmp_path / "cifar10_cat_0.aedat"
    f.write_bytes(b"#!AER-DAT2.0\r\n# comment\r\n" + body)
    ev = read_aedat20(f)
    assert ev["x"].tolist() == [127, 27, 124]
    assert ev["y"].tolist() == [127, 117, 0]
    assert ev["p"].tolist() == [1, 0, 1]
    assert ev["t"].tolist() == [5, 6, 9]


def test_aedat20_round_trip_truncation_and_wrap(tmp_path):
    ev = random_events(5000, seed=1)
    path = write_aedat20(tmp_path / "a.aedat", ev)
    np.testing.assert_array_equal(read_aedat20(path), ev)
    raw = path.read_bytes()
    path.write_bytes(raw[:-5])
    with pytest.raises(AedatError, match=r"a\.aedat: truncated event at offset \d+ \(3 of 8 bytes\)"):
        read_aedat20(path)
    # a 32-bit time stamp that wraps around is unwrapped
    body = struct.pack(">II", 2, 2**32 - 10) + struct.pack(">II", 2, 5)
    path.write_bytes(b"#!AER-DAT2.0\r\n" + body)
    assert read_aedat20(path)["t"].tolist() == [2**32 - 10, 2**32 + 5]
    path.write_bytes(b"#!AER-DAT3.1\r\n")
    with pytest.raises(AedatError, match="not an AEDAT 2"):
        read_aedat20(path)


def test_writers_refuse_bad_events(tmp_path):
    ev = random_events(10)
    ev["x"][0] = 200
    with pytest.raises(InputError, match="outside"):
        write_aedat31(tmp_path / "a.aedat", ev)
    with pytest.raises(InputError, match="EVENT_DTYPE"):
        write_aedat20(tmp_path / "a.aedat", np.zeros((3, 4)))
    assert not list(tmp_path.iterdir())  # nothing half-written left behind


# --------------------------------------------------------------------------------------------------
# events -> frames against a slow, obviously correct reference
# --------------------------------------------------------------------------------------------------
def reference_frames(ev, T, split_by, H=128, W=128, duration_us=None, size=None):
    oh, ow = size or (H, W)
    n = len(ev)
    t = [int(e["t"]) for e in ev]
    if split_by == "number":
        di = n // T
        bounds = [(j * di, (j + 1) * di if j < T - 1 else n) for j in range(T)]
        members = [range(a, b) for a, b in bounds]
    elif split_by == "time":
        dt = (t[-1] - t[0]) // T
        members = []
        for j in range(T):
            lo = t[0] + j * dt
            hi = t[0] + (j + 1) * dt
            members.append([i for i in range(n) if lo <= t[i] and (t[i] < hi or j == T - 1)])
    else:
        members = [[i for i in range(n) if t[0] + j * duration_us <= t[i] < t[0] + (j + 1) * duration_us]
                   for j in range(T)]
    F = np.zeros((T, 2, oh, ow), np.int64)
    for j, idx in enumerate(members):
        for i in idx:
            e = ev[i]
            F[j, e["p"], int(e["y"]) * oh // H, int(e["x"]) * ow // W] += 1
    return F


@pytest.mark.parametrize("split_by", ["number", "time", "duration"])
@pytest.mark.parametrize("n, T", [(997, 7), (5, 8), (300, 1)])
def test_frames_match_reference(split_by, n, T):
    ev = random_events(n, seed=n + T, size=16)
    ev["t"][n // 3:n // 2] = ev["t"][n // 3]  # a burst with one time stamp and (likely) empty time bins
    ev = np.sort(ev, order="t", kind="stable")
    ev["x"][:10] = 3  # duplicates of one pixel
    ev["y"][:10] = 4
    kw = {"duration_us": 90_000} if split_by == "duration" else {}
    got = events_to_frames(ev, T, split_by=split_by, sensor_size=16, **kw)
    want = reference_frames(ev, T, split_by, 16, 16, **kw)
    assert got.shape == (T, 2, 16, 16)
    np.testing.assert_array_equal(got, want)
    if split_by != "duration":
        assert got.sum() == n  # nothing dropped


def test_frames_resize_by_coordinates_keeps_counts():
    ev = random_events(4000, seed=3)
    got = events_to_frames(ev, 5, size=(48, 48))
    np.testing.assert_array_equal(got, reference_frames(ev, 5, "number", size=(48, 48)))
    assert got.sum() == 4000


def test_frames_time_mode_with_empty_bins_and_no_events():
    ev = make_events([0, 1, 2, 1000], [0, 1, 2, 3], [0] * 4, [1, 0, 1, 1])
    f = events_to_frames(ev, 10, split_by="time", sensor_size=4)
    assert f[0].sum() == 3 and f[-1].sum() == 1 and f[1:-1].sum() == 0
    empty = np.empty(0, EVENT_DTYPE)
    assert events_to_frames(empty, 4, sensor_size=4).sum() == 0
    assert events_to_frames(empty, 4, split_by="time", sensor_size=4).shape == (4, 2, 4, 4)


def test_frames_variable_count_duration_mode():
    ev = make_events([0, 10, 25, 30], [0] * 4, [0] * 4, [0] * 4)
    f = events_to_frames(ev, None, split_by="duration", duration_us=10, sensor_size=2)
    assert f.shape[0] == 3 and f[:, 0, 0, 0].tolist() == [1, 1, 2]


def test_normalizations():
    ev = random_events(3000, seed=5, size=8)
    f = events_to_frames(ev, 3, sensor_size=8, normalization="max")
    np.testing.assert_allclose(f.max(axis=(2, 3)), 1.0, atol=1e-4)
    f = events_to_frames(ev, 3, sensor_size=8, normalization="sum")
    np.testing.assert_allclose(f.sum(axis=(2, 3)), 1.0, atol=1e-4)
    f = events_to_frames(ev, 3, sensor_size=8, normalization="max_frame")
    np.testing.assert_allclose(f.max(axis=(1, 2, 3)), 1.0, atol=1e-4)
    f = events_to_frames(ev, 3, sensor_size=8, normalization="norm")
    np.testing.assert_allclose(f.mean(axis=(2, 3)), 0.0, atol=1e-4)
    f = events_to_frames(ev, 3, sensor_size=8, normalization="frequency")
    assert f.dtype == np.float32 and np.all(f >= 0) and f.max() > 1  # events per second


def test_frames_bad_arguments():
    ev = random_events(10, size=8)
    with pytest.raises(HyperParameterError, match="split_by"):
        events_to_frames(ev, 2, split_by="space", sensor_size=8)
    with pytest.raises(HyperParameterError, match="T must"):
        events_to_frames(ev, 0, sensor_size=8)
    with pytest.raises(HyperParameterError, match="duration_us"):
        events_to_frames(ev, 2, split_by="duration", sensor_size=8)
    with pytest.raises(HyperParameterError, match="larger than the sensor"):
        events_to_frames(ev, 2, sensor_size=8, size=16)
    with pytest.raises(InputError, match="outside"):
        events_to_frames(ev, 2, sensor_size=4)
    with pytest.raises(HyperParameterError, match="normalization"):
        events_to_frames(ev, 2, sensor_size=8, normalization="softmax")


def test_resize_frames_bilinear():
    f = np.ones((10, 2, 128, 128), np.float32)
    out = resize_frames(f, 48)
    assert isinstance(out, torch.Tensor) and out.shape == (10, 2, 48, 48)
    assert torch.allclose(out, torch.ones_like(out))


# --------------------------------------------------------------------------------------------------
# the HDF5 cache
# --------------------------------------------------------------------------------------------------
def _units(n_files=4, per_file=3, seed=0):
    streams = [random_events(600, seed=seed + k, size=8) for k in range(n_files)]
    units, idx = [], 0
    for k, ev in enumerate(streams):
        samples = [(idx + j, (k + j) % 5, (j * 300_000, (j + 1) * 300_000)) for j in range(per_file)]
        idx += per_file
        units.append(CacheUnit(f"f{k}", (lambda ev=ev: ev), samples))
    return units


def _make(ev, spec):
    s, e = spec
    sel = ev[(ev["t"] >= s) & (ev["t"] < e)]
    return events_to_frames(sel, 4, sensor_size=8)


KEY = {"dataset": "toy", "split": "train", "T": 4, "split_by": "number", "size": [8, 8]}


def test_cache_builds_reads_and_verifies(tmp_path):
    path = tmp_path / "c.h5"
    rep = build_frame_cache(path, KEY, _units(), _make, frame_shape=(4, 2, 8, 8), progress=False)
    assert (rep.n, rep.built, rep.reused, rep.existed) == (12, 12, 0, False)
    assert not (tmp_path / "c.h5.parts").exists() and not (tmp_path / "c.h5.tmp").exists()
    cache = FrameCache(path, KEY)
    units = _units()
    for u in units:
        for idx, label, spec in u.samples:
            frames, lab = cache[idx]
            np.testing.assert_array_equal(frames, _make(u.load(), spec))
            assert lab == label
    assert frames.dtype == np.uint16
    again = build_frame_cache(path, KEY, _units(), _make, frame_shape=(4, 2, 8, 8), progress=False)
    assert again.existed and again.built == 0
    with pytest.raises(CacheError, match="other settings"):
        FrameCache(path, {**KEY, "T": 5})


def test_cache_resumes_after_an_interruption_without_redoing_samples(tmp_path):
    path = tmp_path / "c.h5"

    def boom(idx):
        if idx == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_frame_cache(path, KEY, _units(), _make, frame_shape=(4, 2, 8, 8), progress=False, on_sample=boom)
    assert not path.exists()  # nothing half-done under the final name
    rep = build_frame_cache(path, KEY, _units(), _make, frame_shape=(4, 2, 8, 8), progress=False)
    assert (rep.reused, rep.built) == (5, 7)
    fresh = tmp_path / "fresh.h5"
    build_frame_cache(fresh, KEY, _units(), _make, frame_shape=(4, 2, 8, 8), progress=False)
    a, b = FrameCache(path), FrameCache(fresh)
    for i in range(12):
        np.testing.assert_array_equal(a[i][0], b[i][0])


def test_cache_damage_is_detected(tmp_path):
    import h5py

    path = tmp_path / "c.h5"
    build_frame_cache(path, KEY, _units(), _make, frame_shape=(4, 2, 8, 8), progress=False)
    with h5py.File(path, "r+") as f:
        f["frames"][3, 0, 0, 0, 0] += 1
    cache = FrameCache(path, KEY)
    cache[2]
    with pytest.raises(CacheError, match="sample 3 fails its checksum"):
        cache[3]
    cache.close()
    with h5py.File(path, "r+") as f:
        f.attrs["complete"] = False
    with pytest.raises(CacheError, match="incomplete"):
        FrameCache(path, KEY)
    path.write_bytes(b"not hdf5")
    with pytest.raises(CacheError, match="not a readable"):
        FrameCache(path)
    # a leftover .tmp from an interrupted assembly is ignored and replaced
    (tmp_path / "d.h5.tmp").write_bytes(b"garbage")
    build_frame_cache(tmp_path / "d.h5", KEY, _units(), _make, frame_shape=(4, 2, 8, 8), progress=False)
    assert len(FrameCache(tmp_path / "d.h5", KEY)) == 12


def test_cache_rejects_wrong_shapes_and_indices(tmp_path):
    with pytest.raises(CacheError, match="expected"):
        build_frame_cache(tmp_path / "c.h5", KEY, _units(), _make, frame_shape=(5, 2, 8, 8), progress=False)
    units = _units()
    units[0].samples[0] = (99, 0, (0, 1))
    with pytest.raises(CacheError, match="indices"):
        build_frame_cache(tmp_path / "c.h5", KEY, units, _make, frame_shape=(4, 2, 8, 8), progress=False)


# --------------------------------------------------------------------------------------------------
# a DVS128-Gesture-shaped folder written by the test (random events) through the dataset and the CLI
# --------------------------------------------------------------------------------------------------
def write_gesture_root(root: Path, users=(1, 2, 3), test_users=(3,), per_rec=3):
    folder = root / "DvsGesture"
    folder.mkdir(parents=True)
    names = {"train": [], "test": []}
    for u in users:
        name = f"user{u:02d}_led.aedat"
        ev = random_events(3000, seed=u, t_max=per_rec * 1_000_000)
        rows = [((u + k) % 11 + 1, k * 1_000_000, (k + 1) * 1_000_000) for k in range(per_rec)]
        write_aedat31(folder / name, ev, labels=rows)
        names["test" if u in test_users else "train"].append(name)
    for split, lst in names.items():
        (folder / f"trials_to_{split}.txt").write_text("\n".join(lst) + "\n")
    return folder


def test_gesture_dataset_from_files(tmp_path):
    from snnedu.data import load_dvs128_gesture, make_loaders

    write_gesture_root(tmp_path / "g")
    split = load_dvs128_gesture(tmp_path / "g", T=4, size=32, cache_dir=tmp_path / "cache",
                                offline_fallback=False, progress=False)
    assert (len(split.train), len(split.test)) == (6, 3)
    assert not split.offline_standin and "DVS128 Gesture" in split.source
    x, y = split.train[0]
    assert x.shape == (4, 2, 32, 32) and x.dtype == torch.float32 and y == 1  # csv class 2 -> label 1
    ev = read_aedat31(tmp_path / "g" / "DvsGesture" / "user01_led.aedat")
    assert x.sum() == np.count_nonzero(ev["t"] < 1_000_000)  # every event of [0, 1 s), nothing else
    train_loader, _ = make_loaders(split, batch_size=4)
    xb, yb = next(iter(train_loader))
    assert xb.shape == (4, 4, 2, 32, 32) and yb.shape == (4,)


def test_gesture_missing_data_says_where_to_put_it(tmp_path):
    from snnedu.data import load_dvs128_gesture
    from snnedu.errors import DataError

    with pytest.raises(DataError, match="trials_to_train.txt"):
        load_dvs128_gesture(tmp_path / "nothing", offline_fallback=False, progress=False)


def test_gesture_empty_sample_is_an_error_not_a_short_sample(tmp_path):
    from snnedu.data import load_dvs128_gesture
    from snnedu.errors import DataError

    folder = write_gesture_root(tmp_path / "g")
    csv = folder / "user01_led_labels.csv"
    csv.write_text(csv.read_text() + "5,90000000,91000000\r\n")
    # a window past the recording's end: named with the recording's span (issue #15 item 14)
    with pytest.raises(DataError, match=r"user01_led\.aedat: the labelled window \[90000000, 91000000\) µs "
                                        r"reaches beyond the recording's events"):
        load_dvs128_gesture(tmp_path / "g", T=4, cache_dir=tmp_path / "cache", offline_fallback=False,
                            progress=False)


def test_preprocess_cli_resumes_after_kill(tmp_path):
    write_gesture_root(tmp_path / "g", users=(1, 2, 3, 4), test_users=(4,))
    env = {**os.environ, "TQDM_DISABLE": "1", "SNNEDU_DATA": str(tmp_path / "data")}
    killer = (
        "import os, signal\n"
        "from snnedu.data.dvs import FrameSetting, preprocess\n"
        "def kill(i):\n"
        "    if i == 4: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"preprocess('dvs128-gesture', {str(tmp_path / 'g')!r}, FrameSetting(5), progress=False, "
        "on_sample=kill)\n")
    r = subprocess.run([sys.executable, "-c", killer], env=env, capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    cache_dir = tmp_path / "data" / "frame_cache"
    assert not list(cache_dir.glob("*.h5"))  # no finished-looking cache after the kill
    r = subprocess.run([sys.executable, "-m", "snnedu", "preprocess", "dvs128-gesture", "--root",
                        str(tmp_path / "g"), "--T", "5", "--split-by", "number"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "train: 9 samples" in r.stdout and "built 4 samples, reused 5" in r.stdout
    assert "test: 3 samples" in r.stdout and "built 3 samples, reused 0" in r.stdout
    r = subprocess.run([sys.executable, "-m", "snnedu", "preprocess", "dvs128-gesture", "--root",
                        str(tmp_path / "g"), "--T", "5"], env=env, capture_output=True, text=True)
    assert r.stdout.count("already built") == 2
    bad = subprocess.run([sys.executable, "-m", "snnedu", "preprocess", "cifar10-dvs", "--root",
                          str(tmp_path / "none"), "--T", "5"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "cifar10_<class>_<i>.aedat" in bad.stderr


def test_gesture_release_layout_gives_spikingjelly_counts_without_dropping_remainders(tmp_path):
    # the release's shape: 98 training and 24 test recordings of 12 labelled rows each -> 1,176 / 288
    # samples, as SpikingJelly counts them; old SpikingJelly dropped a CPU-count-dependent remainder
    # of the files
    from snnedu.data.dvs import gesture_units

    folder = tmp_path / "DvsGesture"
    folder.mkdir()
    names = {"train": [], "test": []}
    ev = random_events(24, t_max=12_000)
    rows = [((k % 11) + 1, k * 1000, (k + 1) * 1000) for k in range(12)]
    for i in range(122):
        name = f"user{i // 4 + 1:02d}_{['fluorescent', 'led', 'lab', 'natural'][i % 4]}.aedat"
        write_aedat31(folder / name, ev, labels=rows, durable=False)
        names["train" if i < 98 else "test"].append(name)
    for split, lst in names.items():
        (folder / f"trials_to_{split}.txt").write_text("\n".join(lst) + "\n")
    counts = {s: sum(len(u.samples) for u in gesture_units(folder, s)[0]) for s in ("train", "test")}
    assert counts == {"train": 1176, "test": 288}


def test_truncated_recording_fails_the_dataset_with_file_and_offset(tmp_path):
    from snnedu.data import load_dvs128_gesture

    folder = write_gesture_root(tmp_path / "g")
    rec = folder / "user02_led.aedat"
    rec.write_bytes(rec.read_bytes()[:-7])
    with pytest.raises(AedatError, match=r"user02_led\.aedat: truncated packet at offset \d+"):
        load_dvs128_gesture(tmp_path / "g", T=4, cache_dir=tmp_path / "cache", offline_fallback=False,
                            progress=False)
    assert not list((tmp_path / "cache").glob("*.h5"))  # no cache was finished from a short recording


def test_label_times_are_bounded_to_int64_and_to_the_recording(tmp_path, monkeypatch, capsys):
    # issue #15 item 14: an end time of 1e23 µs was accepted and silently sliced to the recording's end
    from snnedu.__main__ import main
    from snnedu.data.dvs import WINDOW_SLACK_US, FrameSetting, preprocess
    from snnedu.data.standins import write_gesture_standin
    from snnedu.errors import DataError

    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    root = write_gesture_standin(tmp_path / "rec", n_train_users=1, n_test_users=1, lightings=("led",), size=32,
                                 seed=2, progress=False)
    csv = root / "user01_led_labels.csv"
    lines = csv.read_text().splitlines()
    c, s, e = lines[1].split(",")
    csv.write_text("\n".join([lines[0], f"{c},{s},100000000000000000000000"] + lines[2:]) + "\n")
    with pytest.raises(AedatError, match=r"line 2: times must be microseconds in 0\.\.2\^63-1 \(int64\), "
                                         r"got \[\d+, 100000000000000000000000\)"):
        read_gesture_labels(csv)
    csv.write_text("\n".join([lines[0], f"{c},-5,{e}"] + lines[2:]) + "\n")
    with pytest.raises(AedatError, match=r"line 2: times must be microseconds"):
        read_gesture_labels(csv)
    # within int64 but far beyond the recording's last event: a DataError naming the recording
    last = int(read_aedat31(root / "user01_led.aedat")["t"][-1])
    far = last + 1 + WINDOW_SLACK_US + 1
    csv.write_text("\n".join([lines[0], f"{c},{s},{far}"] + lines[2:]) + "\n")
    setting = FrameSetting(4, size=16)
    with pytest.raises(DataError, match=rf"user01_led\.aedat: the labelled window \[{s}, {far}\) µs reaches "
                                        r"beyond the recording's events"):
        preprocess("dvs128-gesture", root, setting, cache_dir=tmp_path / "cache", splits=("train",), progress=False)
    assert main(["preprocess", "dvs128-gesture", "--root", str(root), "--T", "4", "--size", "16", "--cache-dir",
                 str(tmp_path / "cache"), "--split", "train", "--no-progress"]) == 2
    assert "reaches beyond the recording" in capsys.readouterr().err
    # at the edge of the slack it is accepted
    csv.write_text("\n".join([lines[0], f"{c},{s},{far - 1}"] + lines[2:]) + "\n")
    assert preprocess("dvs128-gesture", root, setting, cache_dir=tmp_path / "cache", splits=("train",),
                      progress=False)[0].n == 11
