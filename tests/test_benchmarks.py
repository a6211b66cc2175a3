"""The benchmark harness in its tiny ``--quick`` configuration: it runs and writes well-formed JSON and
Markdown. No timing is asserted here — speed targets live in ``benchmarks/``, never in unit tests.
Peers (SpikingJelly, snnTorch, Norse) are optional: installed or not, every one has its rows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROW_KEYS = {"group", "case", "params", "library", "backend", "version", "status", "message", "note", "time_s",
            "times_s", "ratio_to_sj_torch", "samples_per_s", "peak_memory_bytes", "device", "threads", "torch",
            "date", "machine"}


def _run(tmp_path, *args):
    env = dict(os.environ, TQDM_DISABLE="1")
    r = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--threads", "1", "--out", str(tmp_path),
                        *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    files = sorted(tmp_path.iterdir())
    assert [p.suffix for p in files] == [".json", ".md"] and all(p.stem.endswith("_quick") for p in files)
    assert not (tmp_path / "latest.md").exists()  # a smoke run never replaces the published table
    return json.loads(files[0].read_text()), files[1].read_text()


def test_quick_run_writes_json_and_markdown(tmp_path):
    result, md = _run(tmp_path, "--no-memory")
    meta, rows = result["meta"], result["rows"]
    assert meta["quick"] and meta["threads"] == 1 and meta["groups"] == ["cpu", "memory", "dvs"]
    for key in ("machine", "device", "torch", "date", "repeats", "load_start", "load_end", "versions"):
        assert key in meta
    assert rows and all(set(r) == ROW_KEYS for r in rows)
    assert {r["group"] for r in rows} == {"cpu", "memory", "dvs"}
    libs = {r["library"] for r in rows}
    assert {"snnedu", "naive", "spikingjelly", "snntorch", "norse"} <= libs
    assert {r["library"] for r in rows if r["group"] == "dvs"} == {"snnedu", "spikingjelly"}
    for r in rows:
        assert r["status"] in ("ok", "not installed", "unavailable")
        assert r["threads"] == 1 and r["machine"] == meta["machine"] and r["peak_memory_bytes"] is None
        if r["status"] == "ok":
            assert r["time_s"] > 0 and len(r["times_s"]) == meta["repeats"]
        else:
            assert r["time_s"] is None and r["message"]
        if r["group"] == "dvs" and r["status"] == "ok":
            assert r["samples_per_s"] > 0
    assert all(r["status"] == "ok" for r in rows if r["library"] in ("snnedu", "naive"))
    sj = [r for r in rows if r["library"] == "spikingjelly" and r["backend"] == "torch" and r["status"] == "ok"]
    for r in sj:
        assert r["ratio_to_sj_torch"] == pytest.approx(1.0)
    # the Markdown: the machine line, then one table line per row
    assert meta["machine"] in md and "| case | library (backend) |" in md
    table = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == len(rows) + 1
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.run import markdown
        assert markdown(result) == md  # `--render` rebuilds the same table from the JSON alone
    finally:
        sys.path.remove(str(ROOT))


def test_quick_memory_probe_measures_a_fresh_process(tmp_path):
    result, md = _run(tmp_path, "--only", "cpu", "--libs", "naive", "--repeats", "1")
    (row,) = result["rows"]
    assert row["library"] == "naive" and row["status"] == "ok"
    assert isinstance(row["peak_memory_bytes"], int) and row["peak_memory_bytes"] >= 0
    assert "fresh process" in result["meta"]["memory_method"]


def test_bad_arguments_exit_with_status_2(capsys):
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.run import main
        for args in (["--only", "gpu"], ["--libs", "brian2"], ["--repeats", "0"]):
            with pytest.raises(SystemExit) as e:
                main(args)
            assert e.value.code == 2
    finally:
        sys.path.remove(str(ROOT))


def test_roofline_group_cases_and_byte_model(tmp_path):
    """The roofline case family (issue 17) and its byte model, without timing anything."""
    import argparse
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import run
        from benchmarks.peers import ROOFLINE_NEURONS
    finally:
        sys.path.remove(str(ROOT))
    assert "roofline" not in run.GROUPS and "roofline" in run.ALL_GROUPS  # never in the default run
    cs = run.cases("roofline", argparse.Namespace(quick=False), None)
    assert {c["neuron"] for c in cs} == set(ROOFLINE_NEURONS) == {"LIF", "PLIF", "MLF", "LIF-STL"}
    assert sorted({c["T"] for c in cs}) == [1, 2, 4, 8, 16, 64]
    assert sorted({c["B"] * c["N"] for c in cs}) == [2 ** 20, 2 ** 22]
    assert len(cs) == 4 * 6 * 2 and len({run.case_name("roofline", c) for c in cs}) == len(cs)
    p = {"neuron": "LIF", "T": 4, "B": 64, "N": 16384}
    E = 4 * 64 * 16384
    assert [run.roofline_bytes(ph, p) for ph in ("fwd", "bwd", "fwd+bwd", "copy")] == [8 * E, 12 * E, 20 * E, 8 * E]
    # at copy speed fwd+bwd takes 20/8 of the copy's time: fraction 1; twice that: 0.5
    assert run.roofline_fraction("fwd+bwd", p, 2.5e-3, 1e-3) == pytest.approx(1.0)
    assert run.roofline_fraction("fwd", p, 2e-3, 1e-3) == pytest.approx(0.5)
    # its table goes below the comparison table of latest.md, which a roofline-only run keeps
    (tmp_path / "latest.md").write_text("**Machine:** old\n\n| case | library (backend) |\n")
    meta = {"machine": "m", "device": "CPU", "threads": 2, "torch": "t", "date": "d", "quick": False,
            "repeats": 1, "load_start": 0.0, "load_end": 0.0, "loaded": False,
            "machine_info": {"logical_cpus": 2}}
    rows = [{"group": "roofline", "case": run.case_name("roofline", p), "params": p, "library": lib,
             "backend": be, "phase": ph, "status": "ok", "message": "", "time_s": t, "ratio_to_sj_torch": r,
             "roofline_fraction": run.roofline_fraction(ph, p, t, 1e-3)}
            for lib, be, ph, t, r in (("torch", "copy_", "copy", 1e-3, None), ("snnedu", "cpu", "fwd", 2e-3, 0.5),
                                      ("snnedu", "cpu", "bwd", 3e-3, 0.5), ("snnedu", "cpu", "fwd+bwd", 5e-3, 0.5))]
    latest = run.write_latest(tmp_path, {"meta": meta, "rows": rows}).read_text()
    assert latest.startswith("**Machine:** old") and run.ROOFLINE_MARK in latest
    line = next(line for line in latest.splitlines() if line.startswith("| LIF T=4,"))
    assert "snnedu (cpu)" in line and "| 2 / 3 / 5 | 50 / 50 / 50 % | 0.50 |" in line
    assert len(line.split("|")) == 7          # five columns: narrow enough for the Speed page
