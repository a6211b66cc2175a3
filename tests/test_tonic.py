"""tonic interoperability (issue #16 item 3): snnedu's frames against ``tonic.transforms.ToFrame``,
:func:`snnedu.data.from_tonic` and N-MNIST (the tonic reader, and the offline stand-in SimN-MNIST).

**The definitional difference, measured here on tonic 1.7.** ``ToFrame(sensor_size, n_event_bins=T)``
and ``ToFrame(sensor_size, n_time_bins=T)`` agree with ``events_to_frames(..., split_by="number")``
and ``split_by="time"`` on every frame but the last. tonic drops the events of the final partial bin,
snnedu keeps them in its last frame (as SpikingJelly does), so that every event is counted:

- by number tonic's bins hold ``N // T`` events and the last ``N mod T`` events are dropped;
- by time tonic's bins are ``dt = (t_last - t_0) // T`` long and end at ``t_0 + T dt``: the events at
  or after that instant are dropped -- the event(s) with the last time stamp when the span is a
  multiple of T, and also those of the final ``(t_last - t_0) mod T`` µs otherwise.

No download happens anywhere in this file: the tonic dataset is a small class built here, and N-MNIST
is the generated stand-in in tonic's layout, read by tonic's own NMNIST reader.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import snnedu.data as D
from snnedu.data import EVENT_DTYPE, FrameSetting, events_to_frames, from_tonic, make_events
from snnedu.data.nmnist import (NMNIST_CLASSES, NMNIST_STANDIN_SOURCE, saccade_offsets, write_nmnist_bin,
                                write_nmnist_standin)
from snnedu.data.tonic_adapter import TonicFrameDataset, sensor_hw, to_snnedu_events
from snnedu.errors import DataError, HyperParameterError, InputError

import tonic  # noqa: E402 - pinned in requirements.txt: a missing tonic must fail here, not skip
from tonic.transforms import ToFrame  # noqa: E402

TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])  # N-MNIST's, field order xytp


def tonic_events(t, x, y, p, dtype=TONIC_DTYPE) -> np.ndarray:
    ev = np.zeros(len(t), dtype)
    for f, c in zip("txyp", (t, x, y, p)):
        ev[f] = c
    return ev


def random_recording(rng, n, w, h, span):
    t = np.sort(rng.integers(0, span + 1, n))
    return tonic_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


def snnedu_frames(ev, T, split_by, w, h):
    return events_to_frames(make_events(ev["t"], ev["x"], ev["y"], ev["p"]), T, split_by=split_by, sensor_size=(h, w))


# --------------------------------------------------------------------------------------------------
# frames against tonic.transforms.ToFrame
# --------------------------------------------------------------------------------------------------
W, H = 20, 15  # not square: a swapped axis would show


@pytest.mark.parametrize("n, T", [(1000, 7), (1001, 10), (999, 4), (50, 50), (10_000, 20)])
def test_by_number_tonic_drops_the_last_n_mod_t_events(n, T):
    ev = random_recording(np.random.default_rng(n + T), n, W, H, span=10 ** 6)
    ours = snnedu_frames(ev, T, "number", W, H)
    theirs = ToFrame(sensor_size=(W, H, 2), n_event_bins=T)(ev.copy())
    assert theirs.shape == ours.shape == (T, 2, H, W)
    assert np.array_equal(ours[:-1], theirs[:-1])                 # every frame but the last agrees
    missing = ours[-1].astype(np.int64) - theirs[-1]
    assert missing.min() >= 0 and missing.sum() == n % T          # tonic lacks exactly N mod T events
    tail = ev[n - n % T:]                                          # ... and they are the last ones
    expect = np.zeros((2, H, W), np.int64)
    np.add.at(expect, (tail["p"], tail["y"], tail["x"]), 1)
    assert np.array_equal(missing, expect)
    assert ours.sum() == n and theirs.sum() == n - n % T


@pytest.mark.parametrize("seed", range(6))
def test_by_time_tonic_drops_the_events_from_t0_plus_t_dt_on(seed):
    rng = np.random.default_rng(seed)
    n, T = int(rng.integers(200, 3000)), int(rng.integers(2, 16))
    ev = random_recording(rng, n, W, H, span=int(rng.integers(10 ** 4, 10 ** 6)))
    ours = snnedu_frames(ev, T, "time", W, H)
    theirs = ToFrame(sensor_size=(W, H, 2), n_time_bins=T)(ev.copy())
    assert theirs.shape == ours.shape
    assert np.array_equal(ours[:-1], theirs[:-1])
    t = ev["t"]
    dt = (t[-1] - t[0]) // T
    dropped = ev[t >= t[0] + T * dt]
    missing = ours[-1].astype(np.int64) - theirs[-1]
    expect = np.zeros((2, H, W), np.int64)
    np.add.at(expect, (dropped["p"], dropped["y"], dropped["x"]), 1)
    assert np.array_equal(missing, expect) and dropped.size >= 1
    assert ours.sum() == n


def test_by_time_a_span_that_is_a_multiple_of_t_loses_only_the_last_event():
    T = 8
    t = np.concatenate([[0], np.sort(np.random.default_rng(1).integers(1, 8000, 500)), [8000]])  # span 8000 = 1000 T
    ev = tonic_events(t, t % W, t % H, t % 2)
    ours = snnedu_frames(ev, T, "time", W, H)
    theirs = ToFrame(sensor_size=(W, H, 2), n_time_bins=T)(ev.copy())
    assert np.array_equal(ours[:-1], theirs[:-1])
    diff = ours - theirs
    assert diff.sum() == 1 and diff[-1, 0, 8000 % H, 8000 % W] == 1   # the event at t = 8000 µs, p = 0


def test_by_time_a_short_span_can_lose_half_the_recording():
    ev = tonic_events(np.arange(20), np.zeros(20), np.zeros(20), np.zeros(20))  # t = 0..19, T = 10: dt = 1
    ours = snnedu_frames(ev, 10, "time", 4, 3)
    theirs = ToFrame(sensor_size=(4, 3, 2), n_time_bins=10)(ev.copy())
    assert theirs.sum(axis=(1, 2, 3)).tolist() == [1] * 10             # tonic: t = 10..19 are gone
    assert ours.sum(axis=(1, 2, 3)).tolist() == [1] * 9 + [11]         # snnedu: the last frame takes them


def test_more_frames_than_events():
    ev = tonic_events([0, 5, 9], [1, 2, 3], [0, 1, 2], [0, 1, 1])
    assert ToFrame(sensor_size=(4, 3, 2), n_event_bins=5)(ev.copy()).sum() == 0
    ours = snnedu_frames(ev, 5, "number", 4, 3)
    assert ours[:-1].sum() == 0 and ours[-1].sum() == 3


def test_the_frames_docstring_states_the_difference():
    doc = " ".join(events_to_frames.__doc__.split())
    for phrase in ("tonic", "n_event_bins=T", "n_time_bins=T", "first ``T - 1`` frames", "``N mod T``",
                   "t_0 + T·dt", "last time stamp", "SpikingJelly", "int16"):
        assert phrase in doc, phrase


# --------------------------------------------------------------------------------------------------
# from_tonic on a tonic-like dataset built here
# --------------------------------------------------------------------------------------------------
class FakeTonic:
    """Looks like a tonic dataset: ``sensor_size (W, H, P)``, ``classes``, ``targets``, ``transform``,
    ``[i] -> (structured events, target)``; counts its reads."""

    sensor_size = (W, H, 2)
    classes = ["a", "b", "c"]

    def __init__(self, n=9, seed=0, train=True):
        rng = np.random.default_rng(seed)
        self.samples = [random_recording(rng, int(rng.integers(40, 400)), W, H, 50_000) for _ in range(n)]
        self.targets = [i % 3 for i in range(n)]
        self.train = train
        self.transform = None
        self.target_transform = None
        self._reads = 0

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        self._reads += 1
        return self.samples[i].copy(), self.targets[i]


def test_from_tonic_without_cache_integrates_on_access():
    src = FakeTonic()
    ds = from_tonic(src, T=5, split_by="time")
    assert isinstance(ds, TonicFrameDataset) and len(ds) == 9
    x, y = ds[4]
    assert x.dtype == torch.float32 and x.shape == (5, 2, H, W) and y == 1
    ev = src.samples[4]
    ref = events_to_frames(make_events(ev["t"], ev["x"], ev["y"], ev["p"]), 5, split_by="time", sensor_size=(H, W))
    assert np.array_equal(x.numpy(), ref)
    assert ds.targets.tolist() == src.targets and ds.classes == ("a", "b", "c")
    assert "tonic-FakeTonic, train: 9 samples" in ds.source
    xb, yb = ds.collate_fn([ds[0], ds[1]])
    assert xb.shape == (5, 2, 2, H, W) and yb.tolist() == [0, 1]


def test_from_tonic_size_and_normalization_follow_events_to_frames():
    src = FakeTonic(n=3)
    x, _ = from_tonic(src, T=4, size=(5, 10), normalization="max")[2]
    ev = to_snnedu_events(src.samples[2], (H, W))
    ref = events_to_frames(ev, 4, sensor_size=(H, W), size=(5, 10), normalization="max")
    assert x.shape == (4, 2, 5, 10) and np.allclose(x.numpy(), ref)


def test_from_tonic_builds_and_reuses_a_frame_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    src = FakeTonic()
    lazy = from_tonic(src, T=6)
    cached = from_tonic(src, T=6, cache_dir=tmp_path / "cache")
    assert isinstance(cached, D.DVSFrameDataset) and len(cached) == 9
    for i in range(9):
        a, la = lazy[i]
        b, lb = cached[i]
        assert la == lb and torch.equal(a, b)
    files = sorted(p.name for p in (tmp_path / "cache").glob("*.h5"))
    assert len(files) == 1 and files[0].startswith("tonic-FakeTonic_train_T6_number_")
    # a second call with the same content reuses the cache: no new file
    from_tonic(FakeTonic(), T=6, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").glob("*.h5")) == files
    # other content -> another key -> another cache
    changed = FakeTonic()
    changed.samples[3]["x"][0] = (changed.samples[3]["x"][0] + 1) % W
    from_tonic(changed, T=6, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.h5"))) == 2


def test_from_tonic_with_source_id_reads_nothing_for_a_built_cache(tmp_path):
    first = FakeTonic()
    from_tonic(first, T=3, cache_dir=tmp_path, source_id="fake v1")
    assert first._reads == 9                                 # integrated once, nothing read for the key
    again = FakeTonic()
    ds = from_tonic(again, T=3, cache_dir=tmp_path, source_id="fake v1")
    assert again._reads == 0 and len(ds) == 9 and ds.targets.tolist() == again.targets


def test_from_tonic_over_a_plain_list_of_pairs(tmp_path):
    rng = np.random.default_rng(3)
    pairs = [(random_recording(rng, 100, 8, 6, 1000), k % 2) for k in range(4)]
    ds = from_tonic(pairs, T=2, sensor_size=(8, 6))
    assert ds[0][0].shape == (2, 2, 6, 8) and ds.classes == ("0", "1")
    cached = from_tonic(pairs, T=2, sensor_size=(8, 6), cache_dir=tmp_path, name="my events")
    assert torch.equal(cached[3][0], ds[3][0]) and cached.source.startswith("my events, all: 4 samples")
    with pytest.raises(HyperParameterError, match="sensor_size"):
        from_tonic(pairs, T=2)                              # a list has no sensor_size


def test_sensor_size_is_tonics_w_h_p_order():
    assert sensor_hw(FakeTonic()) == (H, W)
    assert sensor_hw(None, (34, 20, 2)) == (20, 34) and sensor_hw(None, (7, 5)) == (5, 7)
    for bad in ((34, 34, 3), (0, 4), (4,), "34x34", (4.0, 4.0)):
        with pytest.raises(HyperParameterError):
            sensor_hw(None, bad)


def test_field_order_dtypes_and_polarity_forms_are_converted():
    t = [5, 1, 3, 3]
    a = to_snnedu_events(tonic_events(t, [0, 1, 2, 3], [3, 2, 1, 0], [1, 0, 1, 0]), (4, 4))
    b = to_snnedu_events(tonic_events(t, [0, 1, 2, 3], [3, 2, 1, 0], [True, False, True, False],
                                      np.dtype([("p", bool), ("t", "<f8"), ("y", "<i2"), ("x", "<u1")])), (4, 4))
    c = to_snnedu_events(tonic_events(t, [0, 1, 2, 3], [3, 2, 1, 0], [1, -1, 1, -1],
                                      np.dtype([("t", "<i8"), ("x", "<i4"), ("y", "<i4"), ("p", "<i1")])), (4, 4))
    assert a.dtype == EVENT_DTYPE and a["t"].tolist() == [1, 3, 3, 5]   # sorted, stable for equal t
    assert a["x"].tolist() == [1, 2, 3, 0] and a["p"].tolist() == [0, 1, 0, 1]
    assert np.array_equal(a, b) and np.array_equal(a, c)


# --------------------------------------------------------------------------------------------------
# bad input: clear errors
# --------------------------------------------------------------------------------------------------
class ListSource(list):
    sensor_size = (W, H, 2)


def _one(events, label=0):
    return ListSource([(events, label)])


GOOD = tonic_events([0, 10, 20], [1, 2, 3], [1, 2, 3], [0, 1, 0])


@pytest.mark.parametrize("events, err, match", [
    (np.zeros(3, np.dtype([("x", int), ("t", int), ("p", int)])), InputError, r"no field\(s\) \['y'\].*SHD"),
    (np.zeros(3, np.dtype([("ts", int), ("x", int), ("y", int), ("pol", int)])), InputError, r"\['t', 'p'\]"),
    (np.zeros((3, 4)), InputError, "structured array"),
    (torch.zeros(3, 4), InputError, "Tensor"),
    ([(0, 1, 1, 0)], InputError, "list"),
    (np.zeros((2, 2, H, W)), InputError, "ToFrame"),
    (GOOD[:0], DataError, "no events"),
    (tonic_events([0, 1], [0, W], [0, 0], [0, 1]), InputError, rf"x \(column\) must lie in 0..{W - 1}"),
    (tonic_events([0, 1], [0, 0], [-1, 0], [0, 1]), InputError, r"y \(row\) must lie in 0..14"),
    (tonic_events([0.0, np.nan, 2.0], [0, 0, 0], [0, 0, 0], [0, 1, 0],
                  np.dtype([("x", int), ("y", int), ("t", float), ("p", int)])), InputError, "1 NaN"),
    (tonic_events([0.0, 0.5], [0, 0], [0, 0], [0, 1],
                  np.dtype([("x", int), ("y", int), ("t", float), ("p", int)])), InputError, "integers"),
    (tonic_events([0, 1], [0, 0], [0, 0], [0, 2]), InputError, "polarity"),
    (tonic_events([0, 1, 2], [0, 0, 0], [0, 0, 0], [-1, 0, 1]), InputError, "polarity"),
    (np.array([(b"a", 0, 0, 0)], np.dtype([("t", "S1"), ("x", int), ("y", int), ("p", int)])), InputError,
     "numeric"),
])
def test_bad_events_are_refused_clearly(events, err, match):
    ds = from_tonic(_one(events), T=2)
    with pytest.raises(err, match=match) as e:
        ds[0]
    assert "tonic-ListSource[0]" in str(e.value)                       # names the sample


@pytest.mark.parametrize("label", [1.5, "3", -1, True, None, np.array([1, 2])])
def test_bad_labels_are_refused(label):
    with pytest.raises(InputError, match="label must be a non-negative integer"):
        from_tonic(_one(GOOD, label), T=2)[0]


def test_integer_like_labels_are_accepted():
    for label in (np.int64(2), torch.tensor(2), np.array(2)):
        assert from_tonic(_one(GOOD, label), T=2)[0][1] == 2


def test_bad_sources_and_samples():
    with pytest.raises(InputError, match="indexable"):
        from_tonic(42, T=2)
    with pytest.raises(InputError, match="indexable"):
        from_tonic(GOOD, T=2)                                # an events array is not a dataset
    with pytest.raises(DataError, match="no samples"):
        from_tonic(ListSource(), T=2)
    with pytest.raises(InputError, match=r"\(events, label\) pair"):
        from_tonic(ListSource([GOOD]), T=2)[0]
    with pytest.raises(HyperParameterError, match="T must be"):
        from_tonic(_one(GOOD), T=0)
    with pytest.raises(HyperParameterError, match="size must be at most the 15x20 sensor"):
        from_tonic(_one(GOOD), T=2, size=32)
    with pytest.raises(HyperParameterError, match="classes"):
        from_tonic(_one(GOOD), T=2, classes="abc")


def test_a_bad_sample_stops_the_cache_build_and_names_it(tmp_path):
    src = FakeTonic(n=4)
    src.samples[2] = src.samples[2][:0]
    with pytest.raises(DataError, match=r"tonic-FakeTonic\[2\]: no events"):
        from_tonic(src, T=2, cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.h5"))


def test_a_transform_without_a_stable_repr_cannot_key_a_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    src = FakeTonic(n=2)
    src.transform = lambda ev: ev
    with pytest.raises(HyperParameterError, match="source_id"):
        from_tonic(src, T=2, cache_dir=tmp_path)
    assert len(from_tonic(src, T=2, cache_dir=tmp_path, source_id="identity transform")) == 2


def test_frame_setting_sensor_size_keeps_the_128_keys():
    assert FrameSetting(4, size=16).key() == {"T": 4, "split_by": "number", "size": [16, 16], "normalization": None,
                                              "duration_us": None}
    s = FrameSetting(4, sensor_size=34)
    assert s.size == (34, 34) and s.key()["sensor_size"] == [34, 34] and s.frame_shape == (4, 2, 34, 34)
    with pytest.raises(HyperParameterError, match="34x34 sensor"):
        FrameSetting(4, size=40, sensor_size=34)


# --------------------------------------------------------------------------------------------------
# N-MNIST: the stand-in, read by tonic's reader
# --------------------------------------------------------------------------------------------------
def test_saccades_follow_nmnists_path():
    dx, dy = saccade_offsets([0, 52_500, 105_000, 210_000, 315_000, 400_000])
    assert np.allclose(dx, [0, 1.75, 3.5, 7, 0, 0]) and np.allclose(dy, [0, 3.5, 7, 0, 0, 0])


def test_nmnist_bin_round_trip_through_tonics_reader(tmp_path):
    from tonic.io import read_mnist_file

    ev = make_events([0, 70_000, 300_000, (1 << 23) - 1], [0, 33, 5, 255], [0, 33, 239, 241], [1, 0, 1, 0])
    write_nmnist_bin(tmp_path / "a.bin", ev)
    back = read_mnist_file(str(tmp_path / "a.bin"), dtype=TONIC_DTYPE)
    for f in "txyp":
        assert back[f].tolist() == ev[f].tolist(), f
    with pytest.raises(InputError, match="2\\*\\*23"):
        write_nmnist_bin(tmp_path / "b.bin", make_events([1 << 23], [0], [0], [0]))
    with pytest.raises(InputError, match="y != 240"):
        write_nmnist_bin(tmp_path / "b.bin", make_events([0], [0], [240], [0]))


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    root = tmp_path_factory.mktemp("nmnist")
    folder = write_nmnist_standin(root / "a", n_train_per_class=2, n_test_per_class=1, seed=0, progress=False)
    return root, folder


def test_standin_layout_marker_and_reader(standin):
    root, folder = standin
    assert folder == root / "a" / "NMNIST"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.bin"))[:3] == \
        ["Test/0/00000.bin", "Test/1/00000.bin", "Test/2/00000.bin"]
    assert len(list(folder.glob("Train/*/*.bin"))) == 20 and len(list(folder.glob("Test/*/*.bin"))) == 10
    marker = json.loads((folder / "snnedu_standin.json").read_text())
    assert marker["source"] == NMNIST_STANDIN_SOURCE and "NOT N-MNIST" in marker["source"]
    assert marker["seed"] == 0 and marker["n_train_per_class"] == 2 and marker["classes"] == list(NMNIST_CLASSES)
    assert list(NMNIST_CLASSES) == list(tonic.datasets.NMNIST.classes)
    from snnedu.data._tonic_nmnist import NMNIST

    ds = NMNIST(str(root / "a"), train=True)                  # tonic's reader, no download
    assert len(ds) == 20 and ds.targets == [d for d in range(10) for _ in range(2)]
    for i in (0, 7, 19):
        ev, label = ds[i]
        assert label == ds.targets[i] and 1000 < ev.size < 20_000
        assert ev["x"].max() < 34 and ev["y"].max() < 34 and set(np.unique(ev["p"])) == {0, 1}
        assert 0 <= ev["t"].min() < 10_000 and 280_000 < ev["t"].max() <= 340_000   # three saccades, ~315 ms
        assert np.all(np.diff(ev["t"]) >= 0)


def test_standin_is_deterministic_and_reused(standin, capsys):
    root, folder = standin
    files = sorted(folder.rglob("*.bin"))
    stamps = [f.stat().st_mtime_ns for f in files]
    capsys.readouterr()
    assert write_nmnist_standin(root / "a", n_train_per_class=2, n_test_per_class=1, seed=0, progress=False) == folder
    assert "reusing SimN-MNIST" in capsys.readouterr().out
    assert [f.stat().st_mtime_ns for f in files] == stamps               # nothing rewritten
    other = write_nmnist_standin(root / "b", n_train_per_class=2, n_test_per_class=1, seed=0, progress=False)
    assert all(f.read_bytes() == (other / f.relative_to(folder)).read_bytes() for f in files)
    seeded = write_nmnist_standin(root / "c", n_train_per_class=1, n_test_per_class=1, seed=1, progress=False)
    assert (seeded / "Train/3/00000.bin").read_bytes() != (folder / "Train/3/00000.bin").read_bytes()


def test_standin_refuses_foreign_files(tmp_path):
    (tmp_path / "NMNIST" / "Train" / "0").mkdir(parents=True)
    (tmp_path / "NMNIST" / "Train" / "0" / "00002.bin").write_bytes(b"\0" * 5)
    with pytest.raises(DataError, match="did not generate"):
        write_nmnist_standin(tmp_path, n_train_per_class=1, n_test_per_class=1, progress=False)
    with pytest.raises(HyperParameterError, match="n_test_per_class"):
        write_nmnist_standin(tmp_path / "x", n_test_per_class=101)


def test_load_nmnist_offline_without_fallback_says_where_the_files_go(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    with pytest.raises(DataError) as e:
        D.load_nmnist(tmp_path / "empty", offline_fallback=False, progress=False)
    msg = str(e.value)
    assert f"{tmp_path / 'empty' / 'NMNIST' / 'Train'}/<digit>/*.bin" in msg and "download=True" in msg
    assert not (tmp_path / "data" / "nmnist-standin").exists()          # nothing generated


def test_load_nmnist_falls_back_to_the_standin(standin, tmp_path, monkeypatch, capsys):
    root, folder = standin
    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    split = D.load_nmnist(tmp_path / "empty", T=4, split_by="time", progress=False,
                          standin_kwargs={"root": root / "a", "n_train_per_class": 2, "n_test_per_class": 1})
    out = capsys.readouterr().out
    assert "using the simulated offline stand-in" in out and "NOT N-MNIST" in out
    assert split.offline_standin and "NOT N-MNIST" in split.source and "NOT N-MNIST" in split.train.source
    assert (len(split.train), len(split.test)) == (20, 10)
    assert split.train.targets.tolist() == [d for d in range(10) for _ in range(2)]
    assert split.test.classes == NMNIST_CLASSES
    x, y = split.train[5]
    assert x.shape == (4, 2, 34, 34) and x.dtype == torch.float32 and y == 2
    from snnedu.data._tonic_nmnist import NMNIST
    ev, _ = NMNIST(str(root / "a"), train=True)[5]
    assert np.array_equal(x.numpy(), events_to_frames(to_snnedu_events(ev, (34, 34)), 4, split_by="time",
                                                      sensor_size=34))
    assert len(list((tmp_path / "data" / "frame_cache").glob("SimN-MNIST_*.h5"))) == 2
    xb, yb = next(iter(D.make_loaders(split, batch_size=8)[0]))
    assert xb.shape == (4, 8, 2, 34, 34) and yb.shape == (8,)
    # root pointing at the stand-in itself: read as the stand-in, never as N-MNIST
    again = D.load_nmnist(root / "a", T=4, split_by="time", progress=False, offline_fallback=False)
    assert again.offline_standin and torch.equal(again.train[5][0], x)


def test_load_nmnist_download_failure_is_reported_and_cleaned_up(tmp_path, monkeypatch):
    import urllib.error

    def offline(self):
        (tmp_path / "root" / "NMNIST").mkdir(parents=True, exist_ok=True)   # what a failed download leaves
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tonic.dataset.Dataset, "download", offline)
    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    with pytest.raises(DataError, match=r"download failed \(URLError: offline\?\)"):
        D.load_nmnist(tmp_path / "root", download=True, offline_fallback=False, progress=False)
    assert not (tmp_path / "root").exists()                               # the empty folders are removed
