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


def _bench_modules():
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import e2e, peers, run
    finally:
        sys.path.remove(str(ROOT))
    peers.use_bench_extra()
    return e2e, peers, run


@pytest.mark.parametrize("make", [
    lambda snnedu: snnedu.LIF(tau=2.0),
    lambda snnedu: snnedu.LIF(tau=3.0, decay_input=False, v_threshold=0.8, surrogate="sigmoid", detach_reset=True),
    lambda snnedu: snnedu.PLIF(tau_init=2.0, detach_reset=True),
    lambda snnedu: snnedu.MLF(K=3, v_threshold=0.6, a=1.0, decay=0.25),
], ids=["LIF", "LIF-sigmoid", "PLIF", "MLF"])
def test_e2e_spikingjelly_twins_compute_the_same_neuron(make):
    """The e2e group's claim that only the implementation differs: each SpikingJelly twin gives snnedu's
    spikes and input gradients on the same input."""
    import torch
    import snnedu
    e2e, peers, _ = _bench_modules()
    try:
        sjf = peers._import("spikingjelly", "spikingjelly.activation_based.functional")
    except peers.NotInstalled as e:  # `make test` installs the peers; a bare pytest may not have them
        pytest.skip(str(e))
    ours = make(snnedu)
    twin = e2e.sj_neuron(ours)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(8, 4, 256, generator=g) * 1.5 + 0.6).requires_grad_(True)
    out = ours(x)
    (gx,) = torch.autograd.grad((out * torch.linspace(0, 1, 256)).sum(), x)
    sjf.reset_net(twin)
    out_sj = twin(x)
    (gx_sj,) = torch.autograd.grad((out_sj * torch.linspace(0, 1, 256)).sum(), x)
    assert out.sum() > 100 and (out == out_sj).float().mean() > 0.999   # spikes (a last-ulp flip allowed)
    close = torch.isclose(gx, gx_sj, rtol=1e-4, atol=1e-5).float().mean()
    assert close > 0.99


def test_e2e_twin_swap_keeps_layers_and_sharing():
    import torch.nn as nn
    import snnedu
    e2e, _, _ = _bench_modules()
    shared = snnedu.LIF()
    net = nn.Sequential(snnedu.TimeDistributed(nn.Linear(4, 4)), shared, nn.Sequential(shared, snnedu.MLF(K=2)))
    bare = e2e.swap_neurons(net, lambda m: nn.Identity())
    assert isinstance(bare[1], nn.Identity) and bare[1] is bare[2][0] and isinstance(bare[2][1], nn.Identity)
    assert isinstance(net[1], snnedu.LIF)                        # the original is untouched (a deep copy)
    assert bare[0].module.weight is not net[0].module.weight and (bare[0].module.weight == net[0].module.weight).all()
    with pytest.raises(Exception, match="no twin here"):
        e2e.sj_neuron(snnedu.LIF(learn_threshold="neuron"))
    assert e2e.neuron_share(4.0, 1.0) == pytest.approx(0.75) and e2e.neuron_share(None, 1.0) is None


def test_e2e_group_quick_run(tmp_path):
    """Chapter networks end to end: every variant of a case shares its weights, the no-neuron row gives the
    share of the step in neurons, and the table has its own section of latest.md."""
    result, md = _run(tmp_path, "--only", "e2e", "--nets", "ch1_cnn,ch4_mlp12", "--libs", "snnedu,spikingjelly",
                      "--repeats", "1")
    e2e, _, run = _bench_modules()
    rows = result["rows"]
    assert {r["group"] for r in rows} == {"e2e"} and len({r["case"] for r in rows}) == 2
    for case in {r["case"] for r in rows}:
        rs = [r for r in rows if r["case"] == case]
        assert [(r["library"], r["backend"]) for r in rs] == [("snnedu", "reference"), ("snnedu", "cpu"),
                                                            ("spikingjelly", "torch"), ("torch", "nn.Identity")]
        bare = rs[-1]
        assert bare["phase"] == "no neurons" and bare["status"] == "ok" and bare["neuron_share"] is None
        for r in rs[:-1]:
            if r["status"] == "ok":
                assert r["neuron_share"] == pytest.approx(1 - bare["time_s"] / r["time_s"])
                assert r["samples_per_s"] == pytest.approx(r["params"]["batch"] / r["time_s"])
        assert all(r["status"] == "ok" for r in rs if r["library"] == "snnedu")
    assert run.E2E_MARK in md and "| network, step | variant |" in md
    assert md.count("no neurons (nn.Identity)") == 2 and run.markdown(result) == md
    # latest.md keeps the other sections, in a fixed order, whatever group a run wrote
    latest = tmp_path / "latest.md"
    latest.write_text("**Machine:** old\n\n| case |\n\n" + run.ROOFLINE_MARK + "\n\nold roofline\n")
    text = run.write_latest(tmp_path, result).read_text()
    assert text.startswith("**Machine:** old") and text.index(run.E2E_MARK) < text.index(run.ROOFLINE_MARK)
    assert "old roofline" in text and text.count("| network, step |") == 1
    parts = {k: v.strip() for k, v in run._split(text).items()}
    assert set(parts) == {"main", "e2e", "roofline"} and parts["roofline"] == "old roofline"
    assert parts["main"] == "**Machine:** old\n\n| case |" and parts["e2e"] == md.split(run.E2E_MARK)[1].strip()
