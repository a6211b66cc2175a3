"""The GPU check's rehearsal: ``python -m benchmarks.gpu_check --dry-run`` runs end to end on CPU.

The dry run is the same script as the GPU run (every section in its own processes, the report, the
summary) at tiny sizes with the Triton interpreter. Here it must finish with every section ok or
skipped, write its JSON / Markdown / log into the folder given and nothing into benchmarks/results.
No number is checked: on CPU nothing is a measurement.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="triton is not installed: the kernel section cannot be rehearsed")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("kernels", "bench", "train", "ddp")


def _snapshot(folder: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} if folder.is_dir() else {}


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    before = _snapshot(RESULTS)
    env = dict(os.environ, TQDM_DISABLE="1")
    r = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--out", str(out)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=600)
    return r, out, before


def test_dry_run_passes_and_prints_the_summary(dry_run):
    r, out, _ = dry_run
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert "DRY RUN" in r.stdout and "Summary (dry run" in r.stdout
    for name in SECTIONS:
        assert f"[{name}] " in r.stdout
    for goal in ("speed", "bandwidth", "memory"):
        assert f"goal {goal}" in r.stdout


def test_dry_run_writes_json_markdown_and_log(dry_run):
    r, out, _ = dry_run
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 3, files
    stems = {Path(f).stem for f in files}
    assert len(stems) == 1 and next(iter(stems)).endswith("_dry-run-cpu")
    assert sorted(Path(f).suffix for f in files) == [".json", ".log", ".md"]
    result = json.loads(next(out.glob("*.json")).read_text())
    meta, env, sections = result["meta"], result["env"], result["sections"]
    assert meta["dry_run"] is True and meta["wall_s"] > 0
    for key in ("device", "driver", "torch", "triton", "spikingjelly", "python"):
        assert key in env
    assert set(sections) == set(SECTIONS)
    for name, s in sections.items():
        assert s["status"] in ("ok", "skipped"), (name, s)
        assert s["summary"]
    # kernels: cases of every kind, each passed or skipped on CPU (the CUDA-only fallback check)
    cases = sections["kernels"]["cases"]
    assert all(c["status"] in ("ok", "skipped") for c in cases), [c for c in cases if c["status"] != "ok"]
    kinds = {c["case"].split("/")[0] for c in cases}
    assert {"module", "direct", "levels", "shape", "aot-sm90", "fallback"} <= kinds
    assert {c["case"].rsplit("/", 1)[-1] for c in cases if c["case"].startswith("module/")} == {"fp32", "fp16", "bf16"}
    skipped = [c for c in cases if c["status"] == "skipped"]
    assert skipped and all("skipped on CPU (dry run)" in c["message"] for c in skipped)
    assert set(sections["kernels"]["tolerances"]) >= {"fp32", "fp16", "bf16"}
    # bench: snnedu's variants ran; SpikingJelly's GPU backends are skipped on CPU
    rows = sections["bench"]["rows"]
    assert {r["case"] for r in rows} == {"Linear+LIF", "LIF alone"}
    assert all(r["status"] == "ok" and r["time_s"] > 0 for r in rows if r["library"] == "snnedu")
    for r in rows:
        if r["library"] == "spikingjelly" and r["backend"] in ("triton", "cuda"):
            assert r["status"] == "skipped" and "skipped on CPU (dry run)" in r["message"]
        assert r["status"] in ("ok", "skipped", "not installed", "unavailable")
    assert sections["bench"]["bandwidth"] and sections["bench"]["copy_Bps"] > 0
    # train: one epoch through run_config and the interleaved train steps
    train = sections["train"]
    assert train["epoch"]["samples_per_s"] > 0 and train["epoch"]["train_samples"] > 0
    assert any(s["library"] == "snnedu" and s["status"] == "ok" for s in train["steps"]["rows"])
    # ddp: rehearsed with gloo on CPU, both ranks on the Triton kernels (interpreted)
    assert sections["ddp"]["status"] == "ok" and "gloo" in sections["ddp"]["summary"]
    assert all(rank["kernel_backend"] == "triton" for rank in sections["ddp"]["ranks"])
    # the goals are there, and not measured in a dry run
    assert [g["goal"] for g in result["goals"]] == ["speed", "bandwidth", "memory"]
    assert all(g["status"] == "not measured" for g in result["goals"])
    md = next(out.glob("*.md")).read_text()
    assert "dry run on CPU" in md and "## Goals" in md and "## Forward + backward" in md


def test_dry_run_writes_nothing_into_benchmarks_results(dry_run):
    _, _, before = dry_run
    assert _snapshot(RESULTS) == before


def test_dry_run_refuses_benchmarks_results_as_output():
    r = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--out", str(RESULTS)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "never writes into benchmarks/results" in r.stderr
