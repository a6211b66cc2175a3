"""Frame-cache integrity (issue #15 item 4): labels are checksummed, and the cache key holds the source
files' contents and the reader's version, so an edited recording or labels csv, or a cache built by an
older reader, is never reused."""
from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

import snnedu.data.dvs as dvs
from snnedu.data import CacheError, FrameCache
from snnedu.data.dvs import FrameSetting, preprocess
from snnedu.data.standins import write_gesture_standin


@pytest.fixture()
def gesture(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    return write_gesture_standin(tmp_path / "rec", n_train_users=1, n_test_users=1, lightings=("led",), size=32,
                                 seed=3, progress=False)  # 2 recordings, 11 samples each


def _build(root, cache_dir):
    return preprocess("dvs128-gesture", root, FrameSetting(4, size=16), cache_dir=cache_dir, splits=("train",),
                      progress=False)[0]


def test_a_flipped_label_bit_is_detected(gesture, tmp_path):
    report = _build(gesture, tmp_path / "cache")
    cache = FrameCache(report.path)
    labels = cache.labels.copy()
    cache.close()
    with h5py.File(report.path, "r+") as f:
        f["labels"][2] = labels[2] ^ 2  # label 2 -> 0 in the words: one bit
    with pytest.raises(CacheError, match="the labels fail their checksum"):
        FrameCache(report.path)
    # even with the whole-array checksum rewritten to match, the sample's own checksum catches it
    with h5py.File(report.path, "r+") as f:
        import zlib
        f.attrs["labels_crc32"] = zlib.crc32(f["labels"][()].astype(np.int64).tobytes())
    cache = FrameCache(report.path)
    cache[1]
    with pytest.raises(CacheError, match="sample 2 fails its checksum"):
        cache[2]
    cache.close()


def _same_size_edit(path, old: bytes, new: bytes):
    raw = path.read_bytes()
    assert len(old) == len(new) and raw.count(old) >= 1
    path.write_bytes(raw.replace(old, new, 1))


def test_editing_a_source_file_without_changing_its_size_rebuilds_the_cache(gesture, tmp_path):
    cache_dir = tmp_path / "cache"
    first = _build(gesture, cache_dir)
    assert not first.existed and _build(gesture, cache_dir).existed  # unchanged sources: reused
    st = os.stat(first.path)
    # a labels csv row edited, same size: the label of the first gesture 8 -> 9
    csv = gesture / "user01_led_labels.csv"
    size = csv.stat().st_size
    _same_size_edit(csv, b"\n8,", b"\n9,")
    assert csv.stat().st_size == size
    second = _build(gesture, cache_dir)
    assert second.path != first.path and not second.existed and second.built == 11
    assert FrameCache(second.path).labels[0] == 8  # 0-based class 8 = csv class 9
    # an .aedat event's polarity flipped (AEDAT 3.1: bit 1 of the last event's first byte), same size
    aedat = gesture / "user01_led.aedat"
    raw = aedat.read_bytes()
    pos = len(raw) - 8
    aedat.write_bytes(raw[:pos] + bytes([raw[pos] ^ 0x02]) + raw[pos + 1:])
    third = _build(gesture, cache_dir)
    assert third.path not in (first.path, second.path) and not third.existed
    # touching a file without changing it keeps the key (it is hashed again, to the same digest)
    os.utime(aedat, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _build(gesture, cache_dir).path == third.path
    memo = json.loads((tmp_path / "data" / "source_hashes.json").read_text())
    assert str(aedat.resolve()) in memo


def test_a_cache_built_by_another_reader_version_is_not_reused(gesture, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    now = _build(gesture, cache_dir)
    assert FrameCache(now.path).key["reader"] == dvs.READER_VERSION
    monkeypatch.setattr(dvs, "READER_VERSION", dvs.READER_VERSION - 1)  # as an older snnedu keyed it
    older = _build(gesture, cache_dir)
    assert older.path != now.path and not older.existed


# --------------------------------------------------------------------------------------------------
# issue #15 item 10: a damaged cache is a CacheError naming the file and the remedy, never a raw
# h5py / HDF5-filter / JSON error; tiny splits are a clear error, not an HDF5 chunk error
# --------------------------------------------------------------------------------------------------
FLIPS = 500


def _small_cache(path):
    from snnedu.data.frame_cache import CacheUnit, build_frame_cache

    key = {"dataset": "flips", "split": "train", "T": 2, "size": [4, 4]}
    units = [CacheUnit("u", lambda: None, [(i, i % 3, i) for i in range(6)])]
    build_frame_cache(path, key, units, lambda _, s: np.random.default_rng(s).integers(0, 5, (2, 2, 4, 4)),
                      frame_shape=(2, 2, 4, 4), progress=False)
    return key


def test_random_bit_flips_in_a_cache_give_correct_reads_or_a_cache_error(tmp_path):
    import random

    key = _small_cache(tmp_path / "c.h5")
    good = FrameCache(tmp_path / "c.h5", key)
    ref = [good[i] for i in range(len(good))]
    good.close()
    raw = (tmp_path / "c.h5").read_bytes()
    outcomes = {"same": 0, "CacheError": 0}
    for seed in range(FLIPS):  # deterministic: the same flips on every run
        r = random.Random(seed)
        pos, bit = r.randrange(len(raw)), r.randrange(8)
        damaged = bytearray(raw)
        damaged[pos] ^= 1 << bit
        path = tmp_path / f"flip{seed}.h5"
        path.write_bytes(bytes(damaged))
        try:
            cache = FrameCache(path, key)
            got = [cache[i] for i in range(len(cache))]
            cache.close()
        except CacheError as e:  # anything else (OSError, KeyError, JSONDecodeError ...) fails the test
            msg = str(e)
            assert str(path) in msg and ("rebuil" in msg or "python -m snnedu preprocess" in msg), msg
            assert "\n" not in msg
            outcomes["CacheError"] += 1
        else:
            assert len(got) == len(ref), (seed, pos, bit)
            for (a, la), (b, lb) in zip(got, ref):  # a read that succeeds is the original data
                assert la == lb and a.dtype == b.dtype and np.array_equal(a, b), (seed, pos, bit)
            outcomes["same"] += 1
        path.unlink()
    print(f"\n{FLIPS} bit flips of a {len(raw)}-byte cache: {outcomes}")
    assert outcomes["CacheError"] > 0 and sum(outcomes.values()) == FLIPS


def test_unreadable_metadata_is_a_cache_error(tmp_path):
    key = _small_cache(tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5", "r+") as f:
        f.attrs["key"] = "{not json"
    with pytest.raises(CacheError, match=r"c\.h5: not a readable snnedu frame cache \(JSONDecodeError.*rebuil"):
        FrameCache(tmp_path / "c.h5", key)
    _small_cache(tmp_path / "d.h5")
    with h5py.File(tmp_path / "d.h5", "r+") as f:
        del f["checksums"]
    with pytest.raises(CacheError, match=r"d\.h5: not a readable snnedu frame cache \(KeyError"):
        FrameCache(tmp_path / "d.h5")


def test_a_cifar10_dvs_copy_with_few_files_per_class_builds_or_says_the_split_is_empty(tmp_path, monkeypatch):
    from snnedu.data.standins import write_cifar10dvs_standin
    from snnedu.data.frame_cache import CacheUnit, build_frame_cache
    from snnedu.errors import DataError

    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    root = write_cifar10dvs_standin(tmp_path / "c10", n_per_class=2, size=16, seed=1, progress=False)
    setting = FrameSetting(2, size=8)
    train = preprocess("cifar10-dvs", root, setting, cache_dir=tmp_path / "cache", splits=("train",),
                       progress=False)[0]
    assert train.n == 20 and len(FrameCache(train.path)) == 20  # 2 per class, all train
    with pytest.raises(DataError, match="test split of CIFAR10-DVS is empty.*only 2 file.*at least 10"):
        preprocess("cifar10-dvs", root, setting, cache_dir=tmp_path / "cache", splits=("test",), progress=False)
    with pytest.raises(CacheError, match="no samples to cache"):
        build_frame_cache(tmp_path / "e.h5", {}, [CacheUnit("u", lambda: None, [])], lambda *_: None,
                          frame_shape=(2, 2, 8, 8), progress=False)
    # one sample of one frame of 1x1 pixel: every chunk dimension fits the data
    one = build_frame_cache(tmp_path / "one.h5", {"k": 1}, [CacheUnit("u", lambda: None, [(0, 0, None)])],
                            lambda *_: np.ones((1, 2, 1, 1)), frame_shape=(1, 2, 1, 1), progress=False)
    assert FrameCache(one.path)[0][0].shape == (1, 2, 1, 1)
