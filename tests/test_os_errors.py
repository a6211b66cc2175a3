"""Operating-system errors on the command line (issue #15 item 13): a full disk, a directory or an
unreadable file where a file is expected. ``train``, ``check`` and ``preprocess`` used to show a full
traceback (``OSError: ... requested and ... written``, torch's ``inline_container`` RuntimeError) or a
raw ``OSError`` with exit status 1. Now: one line on stderr naming the path and the cause, exit
status 2, and what was written before is intact (every write goes to a temporary and is renamed).

A full disk is simulated by making ``fsync`` (where a real full disk reports delayed allocation
failures) or ``np.save`` raise, only for files under the test's own folder."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from snnedu.__main__ import main
from snnedu._io import atomic_write, describe_os_error
from snnedu.data.standins import write_gesture_standin


def _full_disk_under(monkeypatch, folder: Path, after: int = 0):
    """``os.fsync`` fails with ENOSPC for files under ``folder`` after ``after`` successful calls."""
    real = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.startswith(str(folder)):
            calls["n"] += 1
            if calls["n"] > after:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture()
def gesture(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNEDU_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    return write_gesture_standin(tmp_path / "rec", n_train_users=1, n_test_users=1, lightings=("led",), size=32,
                                 seed=4, progress=False)


def _preprocess(root, cache_dir):
    return main(["preprocess", "dvs128-gesture", "--root", str(root), "--T", "4", "--size", "16",
                 "--cache-dir", str(cache_dir), "--split", "train", "--no-progress"])


def test_preprocess_on_a_full_disk_is_one_line_and_resumes_when_space_is_back(gesture, tmp_path, monkeypatch,
                                                                              capsys):
    cache_dir = tmp_path / "cache"
    with monkeypatch.context() as m:
        _full_disk_under(m, cache_dir, after=4)  # the key file and 3 samples fit, the 4th sample does not
        assert _preprocess(gesture, cache_dir) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("snnedu: ") and line.endswith(".parts/000003.npy: no space left on device"), line
    parts = next(cache_dir.glob("*.parts"))
    assert sorted(p.name for p in parts.iterdir()) == ["000000.npy", "000001.npy", "000002.npy", "key.json"]
    assert _preprocess(gesture, cache_dir) == 0  # space is back: the 3 written samples are kept
    assert "built 8 samples, reused 3 from an interrupted run" in capsys.readouterr().out


def test_a_short_numpy_write_names_the_file_and_the_likely_cause(gesture, tmp_path, monkeypatch, capsys):
    def short(*a, **k):
        raise OSError("262144 requested and 0 written")  # what numpy's tofile raises on a full disk
    monkeypatch.setattr(np, "save", short)
    assert _preprocess(gesture, tmp_path / "cache") == 2
    line = _one_line(capsys.readouterr().err)
    assert ".parts/000000.npy: a short write (262144 requested and 0 written): is the disk full?" in line


def test_a_directory_given_as_a_recording_is_one_line(gesture, tmp_path, capsys):
    rec = gesture / "user01_led.aedat"
    rec.unlink()
    rec.mkdir()
    assert _preprocess(gesture, tmp_path / "cache") == 2
    assert _one_line(capsys.readouterr().err) == f"snnedu: {rec}: is a directory"


def test_check_with_a_directory_is_one_line(tmp_path, capsys):
    assert main(["check", str(tmp_path)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert str(tmp_path) in line and "is a directory" in line


def _small_cfg(tmp_path):
    cfg = {"name": "tiny", "data": {"dataset": "mnist", "T": 2, "batch_size": 32, "train_per_class": 6,
                                    "test_per_class": 3},
           "model": {"arch": "spiking_mlp", "hidden": [16], "neuron": {"type": "LIF", "tau": 2.0}},
           "train": {"epochs": 2, "lr": 1.0e-2, "seed": 0}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_on_a_full_disk_is_one_line_and_keeps_the_earlier_checkpoint(tmp_path, monkeypatch, capsys):
    cfg, out = _small_cfg(tmp_path), tmp_path / "runs"
    args = ["train", str(cfg), "--out", str(out), "--device", "cpu", "--no-progress"]
    assert main(args + ["--epochs", "1"]) == 0
    run = out / "tiny"
    before = {p.name: p.read_bytes() for p in (run / "checkpoint.pt", run / "result.json")}
    capsys.readouterr()
    with monkeypatch.context() as m:
        _full_disk_under(m, run)
        assert main(args) == 2  # epoch 2's checkpoint cannot be written
    line = _one_line(capsys.readouterr().err)
    assert line == f"snnedu: {run / 'checkpoint.pt'}: no space left on device", line
    assert {p.name: p.read_bytes() for p in (run / "checkpoint.pt", run / "result.json")} == before
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]
    assert main(args) == 0  # space is back: resumes after epoch 1
    assert [r["epoch"] for r in json.loads((run / "result.json").read_text())["history"]] == [1, 2]


def test_describe_os_error_and_atomic_write_name_the_path(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as info:
        atomic_write(target, fail)
    assert describe_os_error(info.value) == f"{target}: no space left on device"
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]
    assert describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/x/y")) == "/x/y: permission denied"
    assert describe_os_error(IsADirectoryError(errno.EISDIR, "Is a directory", "/d")) == "/d: is a directory"
