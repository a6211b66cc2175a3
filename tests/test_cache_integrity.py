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
from snnedu.data.dvs_sim import write_gesture_standin


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
