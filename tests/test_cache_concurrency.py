"""Concurrent builders of one frame cache (issue #15 item 9): two ``preprocess`` runs on one cache
folder used to share ``<cache>.h5.tmp`` and ``.parts`` and fail (FileNotFoundError, an h5py lock
error, "not a readable snnedu frame cache"). Now a builder holds ``<cache>.lock``; the other says it is
waiting, then reuses the finished cache.

Every step is triggered by an event, never by elapsed time: the first builder (a child script) reports
on its stdout that it holds the lock and is parked, and waits for a line on its stdin; the second (the
real CLI) reports on its stderr that it is waiting; only then is the first released (or killed). So the
two really overlap whatever the machine's load."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from snnedu.data.dvs import FrameSetting, preprocess
from snnedu.data.standins import write_gesture_standin

REPO = Path(__file__).resolve().parents[1]
T, SIZE = 4, 16

# the first builder: preprocess with a hook that parks once, inside the lock, after the sample given
PARKED_BUILDER = textwrap.dedent("""
    import sys
    from snnedu.data.dvs import FrameSetting, preprocess
    root, cache_dir, park_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    def on_sample(i):
        if i == park_at:
            print("parked", flush=True)
            sys.stdin.readline()
    r = preprocess("dvs128-gesture", root, FrameSetting(%d, size=%d), cache_dir=cache_dir, splits=("train",),
                   progress=False, on_sample=on_sample)[0]
    print("done", r.path, r.built, r.reused, r.existed, flush=True)
""" % (T, SIZE))


@pytest.fixture()
def gesture(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    return write_gesture_standin(tmp_path / "rec", n_train_users=1, n_test_users=1, lightings=("led",), size=32,
                                 seed=5, progress=False)  # 1 training recording of 11 samples


def _env(tmp_path):
    return {**os.environ, "SNNEDU_DATA": str(tmp_path / "data"), "TQDM_DISABLE": "1",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _start_parked(tmp_path, root, cache_dir, park_at):
    script = tmp_path / "parked_builder.py"
    script.write_text(PARKED_BUILDER)
    first = subprocess.Popen([sys.executable, str(script), str(root), str(cache_dir), str(park_at)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(tmp_path))
    assert first.stdout.readline().strip() == "parked", first.stderr.read()
    return first


def _start_cli(tmp_path, root, cache_dir):
    return subprocess.Popen([sys.executable, "-m", "snnedu", "preprocess", "dvs128-gesture", "--root", str(root),
                             "--T", str(T), "--size", str(SIZE), "--cache-dir", str(cache_dir), "--split", "train",
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path))


def _wait_for_waiting_line(second) -> str:
    seen = []
    for line in second.stderr:  # blocks until the CLI reports that it waits for the lock
        if "waiting for another process building" in line:
            return line
        seen.append(line)
    raise AssertionError("the second builder never waited: " + "".join(seen))


def _contents(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {"frames": f["frames"][()], "labels": f["labels"][()], "checksums": f["checksums"][()],
                "attrs": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}}


def _assert_same(a: dict, b: dict) -> None:
    for k in ("frames", "labels", "checksums"):
        assert np.array_equal(a[k], b[k]), k
    assert a["attrs"] == b["attrs"]


def test_two_concurrent_builders_of_one_cache_both_succeed_with_the_same_cache(gesture, tmp_path):
    ref = preprocess("dvs128-gesture", gesture, FrameSetting(T, size=SIZE), cache_dir=tmp_path / "ref",
                     splits=("train",), progress=False)[0]
    reference = _contents(ref.path)
    trials = []
    # trial 1: the second builder arrives while the first is half-way through integrating;
    # trial 2: while the first is about to assemble (after its last sample)
    for park_at in (3, 10):
        cache_dir = tmp_path / f"cache{park_at}"
        first = _start_parked(tmp_path, gesture, cache_dir, park_at)
        second = _start_cli(tmp_path, gesture, cache_dir)
        line = _wait_for_waiting_line(second)
        first.stdin.write("go\n")
        first.stdin.flush()
        out1, err1 = first.communicate()
        out2, err2 = second.communicate()
        assert first.returncode == 0, err1
        assert second.returncode == 0, err2
        done = out1.strip().splitlines()[-1].split()
        assert done[0] == "done" and done[2:] == ["11", "0", "False"]  # the first built all 11 samples
        assert "(already built)" in out2 and done[1] in out2  # the second reused the first's cache
        assert line.strip().endswith(Path(done[1]).name)
        assert "Traceback" not in err1 + err2
        _assert_same(_contents(Path(done[1])), reference)
        assert sorted(os.listdir(cache_dir)) == [ref.path.name]  # no .lock, .tmp or .parts left
        trials.append(park_at)
    assert trials == [3, 10]


def test_a_waiting_builder_takes_over_when_the_holder_is_killed(gesture, tmp_path):
    ref = preprocess("dvs128-gesture", gesture, FrameSetting(T, size=SIZE), cache_dir=tmp_path / "ref",
                     splits=("train",), progress=False)[0]
    cache_dir = tmp_path / "cache"
    first = _start_parked(tmp_path, gesture, cache_dir, 4)  # 5 samples written, then parked holding the lock
    second = _start_cli(tmp_path, gesture, cache_dir)
    _wait_for_waiting_line(second)
    first.send_signal(signal.SIGKILL)  # the kernel releases a dead process's lock
    first.wait()
    first.stdout.close(), first.stderr.close(), first.stdin.close()
    out2, err2 = second.communicate()
    assert second.returncode == 0, err2
    assert "built 6 samples, reused 5 from an interrupted run" in out2  # resumed from the killed one's parts
    _assert_same(_contents(cache_dir / ref.path.name), _contents(ref.path))
    assert sorted(os.listdir(cache_dir)) == [ref.path.name]


def test_the_lock_file_is_removed_and_reused_safely(tmp_path):
    from snnedu.data.frame_cache import build_lock

    target = tmp_path / "c.h5"
    with build_lock(target) as waited:
        assert not waited and (tmp_path / "c.h5.lock").exists()
    assert not (tmp_path / "c.h5.lock").exists()
    # a lock file left by a killed holder (no process holds it) is taken at once, then removed
    (tmp_path / "c.h5.lock").write_text("")
    with build_lock(target) as waited:
        assert not waited
    assert os.listdir(tmp_path) == []


# the stand-in writer, parked inside its lock before it writes its first recording
PARKED_STANDIN = textwrap.dedent("""
    import sys
    from snnedu.data import standins
    real = standins._gesture_recording
    def parked(*a, **k):
        if not getattr(parked, "done", False):
            parked.done = True
            print("parked", flush=True)
            sys.stdin.readline()
        return real(*a, **k)
    standins._gesture_recording = parked
    standins.write_gesture_standin(sys.argv[1], n_train_users=1, n_test_users=1, lightings=("led",), size=16,
                                   seed=3, progress=False)
""")
SECOND_STANDIN = ("import sys; from snnedu.data import standins; standins.write_gesture_standin(sys.argv[1], "
                  "n_train_users=1, n_test_users=1, lightings=('led',), size=16, seed=3, progress=False)")


def test_two_processes_asking_for_one_stand_in_take_turns(tmp_path):
    """Two study workers used to generate the same stand-in at once, each deleting the other's files."""
    root = tmp_path / "standin"
    script = tmp_path / "parked_standin.py"
    script.write_text(PARKED_STANDIN)
    first = subprocess.Popen([sys.executable, str(script), str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    assert first.stdout.readline().strip() == "parked", first.stderr.read()
    second = subprocess.Popen([sys.executable, "-c", SECOND_STANDIN, str(root)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    line = _wait_for_waiting_line(second)
    assert line.strip().endswith("DvsGesture")
    first.stdin.write("go\n")
    first.stdin.flush()
    out1, err1 = first.communicate()
    out2, err2 = second.communicate()
    assert first.returncode == 0 and second.returncode == 0, err1 + err2
    assert "generated SimGesture-11" in out1 and "reusing SimGesture-11" in out2   # built once, then reused
    fresh = write_gesture_standin(tmp_path / "fresh", n_train_users=1, n_test_users=1, lightings=("led",), size=16,
                                  seed=3, progress=False)
    for f in sorted(fresh.iterdir()):
        assert (root / "DvsGesture" / f.name).read_bytes() == f.read_bytes(), f.name
    assert sorted(os.listdir(root)) == ["DvsGesture"]          # no lock file left behind


def test_different_stand_in_settings_get_different_default_folders(tmp_path, monkeypatch):
    """A study and a test asking for different stand-ins used to share one default folder, so each
    regenerated it under the other's feet (a study once died on 'listed in trials_to_train.txt but missing')."""
    from snnedu.data import load_dvs128_gesture

    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    small = dict(n_train_users=1, n_test_users=1, lightings=["led"], size=16, progress=False)
    a = load_dvs128_gesture(None, T=2, size=16, progress=False, standin_kwargs=small)
    b = load_dvs128_gesture(None, T=2, size=16, progress=False, standin_kwargs={**small, "seed": 1})
    folders = sorted(p.name for p in (tmp_path / "data").iterdir() if p.name.startswith("dvs128-gesture-standin"))
    assert len(folders) == 2                                   # one folder per setting
    assert len(a.train) == len(b.train) == 11
    again = load_dvs128_gesture(None, T=2, size=16, progress=False, standin_kwargs=small)   # reused, not rebuilt
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if p.name.startswith("dvs128-gesture-standin")) \
        == folders and len(again.train) == 11
