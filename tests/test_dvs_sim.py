"""The DVS simulator and the two generated stand-ins (SimGesture-11, SimDVS-SynthShapes-10)."""
import json
import math

import numpy as np
import pytest

from snnedu.data.aedat import read_aedat20, read_aedat31, read_gesture_labels
from snnedu.data.dvs import GESTURE_CLASSES
from snnedu.data.dvs_sim import simulate_dvs
from snnedu.data.standins import (CIFAR10DVS_STANDIN_CLASSES, CIFAR10DVS_STANDIN_SOURCE, GESTURE_STANDIN_SOURCE,
                                  STANDIN_MARKER, _gesture_recording, gesture_video, write_cifar10dvs_standin,
                                  write_gesture_standin)
from snnedu.data.events import EVENT_DTYPE
from snnedu.errors import DataError, HyperParameterError, InputError

C = 0.15
EPS = 1e-3


def _step_video(k_steps, shape=(2, 5, 6), pixel=(2, 3), base=0.2):
    """Two frames; one pixel's log(eps + I) changes by k_steps * C between them."""
    v = np.full(shape, base)
    v[1][pixel] = math.exp(math.log(EPS + base) + k_steps * C) - EPS
    return v


# --------------------------------------------------------------------------------------------------
# simulate_dvs
# --------------------------------------------------------------------------------------------------
def test_static_video_gives_no_events_without_noise():
    v = np.random.default_rng(0).uniform(0, 1, (10, 16, 16))
    v[:] = v[0]
    ev = simulate_dvs(v, np.arange(10) * 10_000, noise_rate_hz=0)
    assert ev.dtype == EVENT_DTYPE and ev.size == 0


def test_static_video_gives_only_noise_events():
    v = np.full((5, 32, 32), 0.5)
    ts = np.arange(5) * 250_000                                   # 1 s recording
    ev = simulate_dvs(v, ts, noise_rate_hz=5.0, seed=1)
    mean = 5.0 * 32 * 32 * 1.0                                    # Poisson mean 5120
    assert abs(ev.size - mean) < 5 * math.sqrt(mean)
    assert ev["t"].min() >= 0 and ev["t"].max() <= ts[-1]
    assert 0.4 < ev["p"].mean() < 0.6                            # random polarity
    assert np.all(np.diff(ev["t"]) >= 0)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_brightening_by_k_thresholds_gives_k_on_events(k):
    ev = simulate_dvs(_step_video(k), [1_000, 11_000], contrast_threshold=C, refractory_us=0,
                      noise_rate_hz=0, eps=EPS)
    assert ev.size == k
    assert np.all(ev["p"] == 1) and np.all(ev["x"] == 3) and np.all(ev["y"] == 2)
    assert np.all(np.diff(ev["t"]) > 0) and ev["t"][0] > 1_000 and ev["t"][-1] <= 11_000
    # linear interpolation in log intensity: level j is crossed at t0 + j/k of the interval
    np.testing.assert_array_equal(ev["t"], 1_000 + np.rint(10_000 * np.arange(1, k + 1) / k).astype(np.int64))


def test_pixels_with_different_counts_in_one_interval():
    base = 0.3
    v = np.full((2, 3, 4), base)
    ks = {(0, 0): 1, (0, 3): 4, (1, 2): -3, (2, 1): 6}
    for (r, c), k in ks.items():
        v[1, r, c] = math.exp(math.log(EPS + base) + k * C) - EPS
    ev = simulate_dvs(v, [0, 60_000], contrast_threshold=C, refractory_us=0, noise_rate_hz=0, eps=EPS)
    counts = np.zeros((3, 4), int)
    np.add.at(counts, (ev["y"], ev["x"]), 1)
    expected = np.zeros((3, 4), int)
    for (r, c), k in ks.items():
        expected[r, c] = abs(k)
    np.testing.assert_array_equal(counts, expected)
    assert np.all(ev["p"][ev["x"] == 2] == 0) and np.all(ev["p"][ev["x"] != 2] == 1)
    assert np.all(np.diff(ev["t"]) >= 0)


def test_all_gesture_classes_give_a_modest_number_of_events():
    for label in range(11):
        v, ts = gesture_video(label, rng=label)
        n = simulate_dvs(v, ts, contrast_threshold=0.2, noise_rate_hz=0).size
        assert 2_000 < n < 60_000, (GESTURE_CLASSES[label], n)


def test_darkening_gives_off_events_and_subthreshold_gives_none():
    ev = simulate_dvs(_step_video(-2, base=0.6), [0, 10_000], contrast_threshold=C, refractory_us=0,
                      noise_rate_hz=0, eps=EPS)
    assert ev.size == 2 and np.all(ev["p"] == 0)
    ev = simulate_dvs(_step_video(0.9), [0, 10_000], contrast_threshold=C, noise_rate_hz=0, eps=EPS)
    assert ev.size == 0


def test_reference_carries_over_between_frames():
    # +2.5 C then +0.5 C more: 2 events, then 1 (the reference had moved by exactly 2 C)
    base = 0.2
    levels = math.log(EPS + base) + np.array([0.0, 2.5, 3.0]) * C
    v = np.full((3, 4, 4), base)
    v[:, 1, 1] = np.exp(levels) - EPS
    ev = simulate_dvs(v, [0, 10_000, 20_000], contrast_threshold=C, refractory_us=0, noise_rate_hz=0, eps=EPS)
    assert ev.size == 3
    assert np.sum(ev["t"] <= 10_000) == 2 and np.sum(ev["t"] > 10_000) == 1


def test_refractory_period_drops_close_events():
    v = _step_video(10)                                            # 10 events 100 µs apart
    ts = [0, 1_000]
    all_ev = simulate_dvs(v, ts, contrast_threshold=C, refractory_us=0, noise_rate_hz=0, eps=EPS)
    assert all_ev.size == 10
    ev = simulate_dvs(v, ts, contrast_threshold=C, refractory_us=450, noise_rate_hz=0, eps=EPS)
    np.testing.assert_array_equal(ev["t"], [100, 600])            # 200..500 and 700..1000 fall within 450 µs
    # the reference still moved by 10 C: going back down gives 10 OFF events (minus refractory drops)
    v3 = np.concatenate([v, v[:1]])
    ev3 = simulate_dvs(v3, [0, 1_000, 101_000], contrast_threshold=C, refractory_us=0, noise_rate_hz=0, eps=EPS)
    assert np.sum(ev3["p"] == 0) == 10


def test_output_sorted_in_range_and_deterministic():
    rng = np.random.default_rng(0)
    v = rng.uniform(0, 1, (6, 20, 30))
    ts = np.cumsum(rng.integers(1_000, 5_000, 6))
    a = simulate_dvs(v, ts, noise_rate_hz=20, seed=3)
    b = simulate_dvs(v, ts, noise_rate_hz=20, seed=3)
    c = simulate_dvs(v, ts, noise_rate_hz=20, seed=4)
    assert a.dtype == EVENT_DTYPE and a.size > 100
    assert np.all(np.diff(a["t"]) >= 0)
    assert a["x"].max() < 30 and a["y"].max() < 20 and set(np.unique(a["p"])) <= {0, 1}
    assert a["t"].min() >= ts[0] and a["t"].max() <= ts[-1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kwargs", [dict(contrast_threshold=0), dict(contrast_threshold=-0.1),
                                    dict(refractory_us=-1), dict(noise_rate_hz=-1), dict(eps=0),
                                    dict(contrast_threshold=float("nan")), dict(seed=1.5)])
def test_impossible_hyper_parameters_raise(kwargs):
    with pytest.raises(HyperParameterError):
        simulate_dvs(np.zeros((2, 4, 4)), [0, 1], **kwargs)


@pytest.mark.parametrize("video, ts", [
    (np.zeros((4, 4)), [0, 1, 2, 3]),                     # rank 2
    (np.zeros((2, 3, 4, 4)), [0, 1]),                     # rank 4 (RGB)
    (np.full((2, 4, 4), np.nan), [0, 1]),                 # NaN
    (np.full((2, 4, 4), 1.5), [0, 1]),                    # outside [0, 1]
    (np.zeros((2, 4, 4)), [1, 1]),                        # not increasing
    (np.zeros((2, 4, 4)), [0, 1, 2]),                     # wrong length
    (np.zeros((0, 4, 4)), []),                            # empty
])
def test_bad_arrays_raise_input_error(video, ts):
    with pytest.raises(InputError):
        simulate_dvs(video, ts)


# --------------------------------------------------------------------------------------------------
# gesture videos
# --------------------------------------------------------------------------------------------------
def _centroids(ev, n_bins):
    edges = np.linspace(ev["t"][0], ev["t"][-1] + 1, n_bins + 1)
    idx = np.searchsorted(ev["t"], edges)
    return np.array([(ev["x"][a:b].mean(), ev["y"][a:b].mean()) for a, b in zip(idx[:-1], idx[1:]) if b > a])


def _signed_area(path):
    x, y = path[:, 0] - path[:, 0].mean(), path[:, 1] - path[:, 1].mean()
    return 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1])    # > 0: clockwise on screen (rows grow downwards)


def test_gesture_video_shapes_and_determinism():
    assert len(GESTURE_CLASSES) == 11 and GESTURE_CLASSES[0] == "hand_clapping"
    v, ts = gesture_video(0, size=64, n_frames=10, duration_us=500_000, rng=1)
    assert v.shape == (10, 64, 64) and v.dtype == np.float32 and 0 <= v.min() and v.max() <= 1
    assert ts.dtype == np.int64 and ts[0] == 0 and ts[-1] == 500_000
    v2, _ = gesture_video(0, size=64, n_frames=10, duration_us=500_000, rng=1)
    np.testing.assert_array_equal(v, v2)
    for bad in (-1, 11, 2.0, True):
        with pytest.raises(HyperParameterError):
            gesture_video(bad)
    with pytest.raises(HyperParameterError):
        gesture_video(0, n_frames=1)


def test_gesture_classes_differ_in_motion():
    for seed in range(3):
        ev = {}
        for label in (1, 2, 3, 4):
            v, ts = gesture_video(label, rng=seed)
            ev[label] = simulate_dvs(v, ts, contrast_threshold=0.2, noise_rate_hz=0)
            assert 3_000 < ev[label].size < 60_000
        # right-hand wave happens in the image's left half, left-hand wave in the right half
        assert ev[1]["x"].mean() < 64 < ev[2]["x"].mean()
        # right arm clockwise vs counter-clockwise: the event centroid turns the opposite way
        assert _signed_area(_centroids(ev[3], 40)) > 100
        assert _signed_area(_centroids(ev[4], 40)) < -100


# --------------------------------------------------------------------------------------------------
# the stand-in writers
# --------------------------------------------------------------------------------------------------
def test_gesture_standin_layout_readback_and_reuse(tmp_path, capsys):
    kw = dict(n_train_users=1, n_test_users=1, lightings=("led",), seed=5, progress=False)
    folder = write_gesture_standin(tmp_path, **kw)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "generated" in out[0] and "NOT DVS128 Gesture" in out[0]
    assert folder == tmp_path / "DvsGesture"
    assert (folder / "trials_to_train.txt").read_text().split() == ["user01_led.aedat"]
    assert (folder / "trials_to_test.txt").read_text().split() == ["user02_led.aedat"]
    marker = json.loads((folder / STANDIN_MARKER).read_text())
    assert marker["source"] == GESTURE_STANDIN_SOURCE and marker["classes"] == list(GESTURE_CLASSES)
    assert marker["generator"] == "snnedu.data.standins.write_gesture_standin" and marker["seed"] == 5
    total = 0
    for user in (1, 2):
        ev = read_aedat31(folder / f"user{user:02d}_led.aedat")
        rows = read_gesture_labels(folder / f"user{user:02d}_led_labels.csv")
        assert len(rows) == 11 and sorted(r[0] for r in rows) == list(range(11))
        assert all(1_000_000 <= e - s <= 1_500_000 for _, s, e in rows)
        assert all(rows[i][2] < rows[i + 1][1] for i in range(10))          # one after another, with gaps
        simulated, _ = _gesture_recording(user, 0, repeats=1, size=128, seed=5)
        np.testing.assert_array_equal(ev, simulated)                       # same events as simulated
        total += ev.size
    assert marker["n_events"] == total

    mtime = (folder / "user01_led.aedat").stat().st_mtime_ns
    write_gesture_standin(tmp_path, **kw)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "reusing" in out[0]
    assert (folder / "user01_led.aedat").stat().st_mtime_ns == mtime

    # other settings: regenerated, and the files of the old settings are gone
    write_gesture_standin(tmp_path, **{**kw, "n_test_users": 0, "repeats": 2})
    assert "generated" in capsys.readouterr().out
    assert not (folder / "user02_led.aedat").exists()
    assert len(read_gesture_labels(folder / "user01_led_labels.csv")) == 22
    assert (folder / "trials_to_test.txt").read_text() == ""


def test_standin_interrupted_is_regenerated_and_foreign_data_is_refused(tmp_path, capsys):
    kw = dict(n_train_users=1, n_test_users=0, lightings=("lab",), progress=False)
    folder = write_gesture_standin(tmp_path, **kw)
    (folder / STANDIN_MARKER).unlink()                       # as if the run had died before the marker
    (folder / "snnedu_standin.partial").write_text("{}")
    write_gesture_standin(tmp_path, **kw)
    assert "generated" in capsys.readouterr().out.splitlines()[-1]
    assert (folder / STANDIN_MARKER).exists() and not (folder / "snnedu_standin.partial").exists()

    real = tmp_path / "real" / "DvsGesture"
    real.mkdir(parents=True)
    (real / "user01_fluorescent.aedat").write_bytes(b"#!AER-DAT3.1\r\n")
    with pytest.raises(DataError):
        write_gesture_standin(tmp_path / "real", **kw)
    assert (real / "user01_fluorescent.aedat").read_bytes() == b"#!AER-DAT3.1\r\n"


def test_standin_writers_reject_impossible_settings(tmp_path):
    for kw in (dict(n_train_users=0), dict(repeats=0), dict(size=256), dict(lightings=()),
               dict(lightings=("a/b",)), dict(lightings=("led", "led")), dict(seed=-1)):
        with pytest.raises(HyperParameterError):
            write_gesture_standin(tmp_path, progress=False, **kw)
    for kw in (dict(n_per_class=0), dict(size=8)):
        with pytest.raises(HyperParameterError):
            write_cifar10dvs_standin(tmp_path, progress=False, **kw)


def test_cifar10dvs_standin_layout_readback_and_reuse(tmp_path, capsys):
    root = tmp_path / "CIFAR10DVS"
    folder = write_cifar10dvs_standin(root, n_per_class=2, seed=1, progress=False)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "generated" in out[0] and "NOT CIFAR10-DVS" in out[0]
    assert folder == root
    assert "horizontal_stripes" in CIFAR10DVS_STANDIN_CLASSES and len(CIFAR10DVS_STANDIN_CLASSES) == 10
    marker = json.loads((root / STANDIN_MARKER).read_text())
    assert marker["source"] == CIFAR10DVS_STANDIN_SOURCE
    assert marker["classes"] == list(CIFAR10DVS_STANDIN_CLASSES)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(CIFAR10DVS_STANDIN_CLASSES)
    total = 0
    for c in CIFAR10DVS_STANDIN_CLASSES:
        assert sorted(p.name for p in (root / c).iterdir()) == [f"cifar10_{c}_{i}.aedat" for i in range(2)]
        for i in range(2):
            ev = read_aedat20(root / c / f"cifar10_{c}_{i}.aedat")
            assert ev.size > 1_000 and np.all(np.diff(ev["t"]) >= 0) and ev["t"][-1] <= 400_000
            total += ev.size
    assert marker["n_events"] == total
    write_cifar10dvs_standin(root, n_per_class=2, seed=1, progress=False)
    assert "reusing" in capsys.readouterr().out
    write_cifar10dvs_standin(root, n_per_class=1, seed=1, progress=False)      # fewer: old extras removed
    assert "generated" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "disc").iterdir()) == ["cifar10_disc_0.aedat"]
