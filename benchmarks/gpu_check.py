"""The GPU check: one command that proves snnedu's CUDA paths and measures them against SpikingJelly.

    python -m benchmarks.gpu_check [--out DIR] [--only kernels,bench,train,ddp] [--workers 8]
    python -m benchmarks.gpu_check --dry-run        # the rehearsal on CPU (tiny sizes, Triton interpreter)
    make gpu-check                                  # the same with the project's venv and the peers

Four sections, each in processes of its own (a crash, a CUDA fault or a timeout in one is recorded and
the others still run), within about 8 minutes on one H100/H200:

- ``kernels``: every case of :func:`snnedu.kernels._selfcheck.catalogue` (each neuron family, surrogate,
  hard/soft reset, ``detach_reset``, learnable thresholds, fp32/fp16/bf16, awkward shapes) with the
  compiled Triton kernels against the reference loop on the same GPU, split over ``--workers``
  processes (Triton compiles in parallel); plus the known-bad fallback of :mod:`snnedu.kernels` on CUDA.
  The dry run uses ``TRITON_INTERPRET=1`` and also compiles a few kernel variants for sm_90 ahead of
  time (Triton's own compiler and ptxas, no GPU needed), which catches what only the compiler refuses.
- ``bench``: forward+backward at the Open Neuromorphic setting (``Linear(N, N)`` + LIF, B=16, T=500,
  N = 4096/8192/16384) and of the LIF alone, for snnedu (Triton, reference loop) and SpikingJelly 2.0
  (``torch``, ``triton``, ``cuda``), interleaved in one process (:mod:`benchmarks.run`), with
  ``torch.cuda.max_memory_allocated`` per case; the neuron kernels' achieved bandwidth (bytes they
  must move / time from CUDA events) against the measured device-to-device copy bandwidth.
- ``train``: one epoch of ``configs/plif_dvs128_gesture.yaml`` at 128x128, T=16 with AMP on the offline
  gesture stand-in (:func:`snnedu.config.run_config`), then samples/s of AMP training steps of
  snnedu's PLIF DVS net and SpikingJelly's equivalent net, interleaved.
- ``ddp``: two processes under ``torchrun`` with NCCL training a PLIF net with :func:`snnedu.fit`, which
  must end with identical weights (needs 2 GPUs; the dry run rehearses it with gloo on CPU).

Output, all in ``--out`` (default ``benchmarks/results``; the dry run: a new temporary folder, never
``benchmarks/results``): ``<date>_<gpu>.json`` (everything measured, versions, the goals),
``<date>_<gpu>.md`` (the tables) and ``<date>_<gpu>.log`` (every process's output). Scratch files
(data, checkpoints) go to a temporary folder that is removed at the end.
Exit status 0 when every section is ok or skipped, 1 otherwise.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("kernels", "bench", "train", "ddp")
# seconds per section on the GPU (8 minutes in all) and in the dry run
BUDGET = {"kernels": 170, "bench": 170, "train": 100, "ddp": 40}
DRY_BUDGET = {"kernels": 150, "bench": 120, "train": 120, "ddp": 90}
GOALS = {"speed": 0.7, "bandwidth": 0.6, "memory": 0.5}
SKIP_CPU = "skipped on CPU (dry run)"
ON_SIZES, ON_T, ON_B = (4096, 8192, 16384), 500, 16
DRY_SIZES, DRY_T, DRY_B = (40,), 6, 2
SJ_BACKENDS = ("torch", "triton", "cuda")


# ==================================================================================================
# shared by the section processes (these import torch)
# ==================================================================================================
def _version(dist: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _driver() -> Optional[str]:
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
        return r.stdout.strip().splitlines()[0] if r.returncode == 0 and r.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return None


def env_info() -> dict:
    """Device, driver and versions (of torch, triton, snnedu and the peers) of this process."""
    import torch
    from . import peers
    peers.use_bench_extra()
    info = {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "triton": _version("triton"), "snnedu": peers.version("snnedu"),
            "spikingjelly": _version("spikingjelly"), "cupy": None, "numba": _version("numba"),
            "cuda_available": torch.cuda.is_available(), "device_count": torch.cuda.device_count(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "cpu_count": os.cpu_count()}
    for dist in ("cupy-cuda13x", "cupy-cuda12x", "cupy"):
        info["cupy"] = info["cupy"] or _version(dist)
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(device=p.name, capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                    memory_gib=round(p.total_memory / 2 ** 30, 1), driver=_driver())
    else:
        info.update(device=f"CPU ({platform.processor() or platform.machine()})", driver=None)
    return info


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _write(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


# ==================================================================================================
# section: kernels (worker processes)
# ==================================================================================================
def _aot_compile_cases() -> Dict[str, dict]:
    """Kernel variants compiled ahead of time for sm_90 in the dry run: (kernel, pointer dtype, constexprs)."""
    fwd = dict(CHARGE=1, HARD=True, SAVE_H=True, KP=1, BLOCK=256)
    bwd = dict(CHARGE=1, HARD=True, DETACH=False, SG=2, HAS_GS=True, HAS_GV=True, NEED_K=True, NEED_TH=True,
               KP=1, BLOCK=256)
    return {
        "aot-sm90/fwd/decay_input-hard/fp32": dict(kernel="fwd", dtype="fp32", consts=fwd),
        "aot-sm90/fwd/plain-soft-levels/bf16": dict(kernel="fwd", dtype="bf16", consts=dict(
            fwd, CHARGE=2, HARD=False, KP=4, BLOCK=64)),
        "aot-sm90/bwd/decay_input-hard-all-grads/fp32": dict(kernel="bwd", dtype="fp32", consts=bwd),
        "aot-sm90/bwd/IF-soft-detach-sigmoid-levels/fp16": dict(kernel="bwd", dtype="fp16", consts=dict(
            bwd, CHARGE=0, HARD=False, DETACH=True, SG=1, HAS_GS=False, NEED_K=False, KP=4, BLOCK=64)),
        "aot-sm90/alif-fwd/decay_input-hard/fp32": dict(kernel="alif_fwd", dtype="fp32", consts=dict(
            CHARGE=1, HARD=True, SAVE=True, BLOCK=256)),
        "aot-sm90/alif-bwd/plain-soft-sigmoid-all-grads/bf16": dict(kernel="alif_bwd", dtype="bf16", consts=dict(
            CHARGE=2, HARD=False, DETACH=False, SG=1, NEED_K=True, NEED_TH=True, BLOCK=256)),
    }


def _aot_compile(spec: dict) -> dict:
    """Compile one kernel variant for sm_90 with Triton's compiler (no GPU needed)."""
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from snnedu.kernels import alif_triton as AT
    from snnedu.kernels import triton_neuron as TN
    interpret = os.environ.pop("TRITON_INTERPRET", None)
    module = AT if spec["kernel"].startswith("alif") else TN
    old = None
    try:
        raw = {"fwd": TN._fwd_kernel, "bwd": TN._bwd_kernel, "alif_fwd": AT._alif_fwd_kernel,
               "alif_bwd": AT._alif_bwd_kernel}[spec["kernel"]]
        fn = triton.jit(raw, do_not_specialize=["T"])  # wrapped now, with the interpreter switched off
        # the helpers the kernels call (reduction, surrogate, charge, reset), compiled (not interpreted)
        old = TN.set_helpers(vars(module), TN.jit_helpers())
        data = {"x_ptr", "v0_ptr", "a0_ptr", "s_ptr", "vlast_ptr", "alast_ptr", "gs_ptr", "gv_ptr", "ga_ptr",
                "gx_ptr"}
        sig = {}
        for name in inspect.signature(raw).parameters:
            if name in spec["consts"]:
                sig[name] = "constexpr"
            elif name.endswith("_ptr"):
                sig[name] = f"*{spec['dtype']}" if name in data else "*fp32"
            else:
                sig[name] = "fp32" if name in ("v_reset", "sg_p", "beta", "rho") else "i32"
        t0 = time.perf_counter()
        k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=spec["consts"]),
                           target=GPUTarget("cuda", 90, 32), options={"enable_fp_fusion": spec["kernel"].endswith("bwd")})
        ptx = k.asm.get("ptx", "")
        fma = len(re.findall(r"\bfma\.", ptx))
        # the forward kernel rounds like the reference: no fused multiply-add may be left in it
        assert spec["kernel"].endswith("bwd") or fma == 0, f"{fma} fused multiply-adds in the forward kernel's PTX"
        return {"compile_s": round(time.perf_counter() - t0, 2), "cubin_bytes": len(k.asm.get("cubin", b"")),
                "fma_in_ptx": fma}
    finally:
        if old is not None:
            TN.set_helpers(vars(module), old)
        if interpret is not None:
            os.environ["TRITON_INTERPRET"] = interpret


def _fallback_case(device) -> dict:
    """On CUDA: a (family, dtype) listed as known bad makes "auto" run the reference, with a warning."""
    import warnings

    import torch

    import snnedu
    from snnedu import kernels
    x = torch.randn(8, 4, 33, device=device) + 0.5
    m = snnedu.LIF(tau=2.0)
    with kernels.use_backend("reference"):
        ref = m(x)
    assert kernels.chosen_backend(x, m.surrogate, name="LIF") == "triton", "auto does not pick triton on CUDA"
    old = dict(kernels.TRITON_KNOWN_BAD)
    kernels.TRITON_KNOWN_BAD[("LIF", torch.float32)] = "gpu check: pretend it is wrong"
    kernels._warned.discard(("LIF", torch.float32))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert kernels.chosen_backend(x, m.surrogate, name="LIF") == "reference"
            out = m(x)
        assert any("known to be wrong" in str(w.message) for w in caught), "no warning"
        assert torch.equal(out, ref), "the fallback differs from the reference"
    finally:
        kernels.TRITON_KNOWN_BAD.clear()
        kernels.TRITON_KNOWN_BAD.update(old)
    return {"elements": x.numel()}


def kernel_worker(args) -> int:
    """Run kernel cases (``--names`` file, or share ``--index`` of ``--count``), one JSON line per case."""
    import torch

    from snnedu.kernels import _selfcheck as SC
    from snnedu.kernels import triton_neuron as TN
    out = open(args.result, "a", buffering=1)

    def emit(**row):
        out.write(json.dumps(row, default=str) + "\n")

    dry = args.dry_run
    device = torch.device("cpu" if dry else "cuda")
    emit(env=env_info(), tolerances=SC.tolerance_text())
    if not TN.available() or (not dry and not torch.cuda.is_available()):
        emit(fatal="no CUDA device (run the rehearsal with --dry-run)" if not dry else
             "the Triton interpreter is not available")
        return 3
    cases = SC.catalogue(quick=dry)
    extra = ["fallback/known-bad-takes-the-reference"] + (list(_aot_compile_cases()) if dry else [])
    if args.names:
        names = json.loads(Path(args.names).read_text())
    else:
        names = (list(cases) + extra)[args.index::args.count]
    emit(plan=names)
    crash_at = os.environ.get("SNNEDU_GPU_CHECK_CRASH_AT")  # rehearses a worker dying inside a case
    for name in names:
        emit(start=name)
        if name == crash_at:
            os._exit(70)
        t0 = time.perf_counter()
        row = {"case": name}
        try:
            if name.startswith("aot-sm90/"):
                row["report"] = _aot_compile(_aot_compile_cases()[name])
            elif name.startswith("fallback/"):
                if dry:
                    row.update(status="skipped", message=SKIP_CPU + ": auto picks Triton for CUDA tensors only")
                else:
                    row["report"] = _fallback_case(device)
            else:
                row["report"] = SC.run_case(name, device, cases=cases)
            _sync(device)  # an asynchronous CUDA error surfaces in its own case
            row.setdefault("status", "ok")
        except AssertionError as e:
            row.update(status="failed", message=str(e).strip()[:2000])
        except Exception as e:  # noqa: BLE001 - recorded; a CUDA fault ends this worker (its context is gone)
            row.update(status="error", message=_one_line(e))
            if device.type == "cuda" and ("CUDA" in str(e) or "cuda" in type(e).__name__.lower()):
                row["time_s"] = round(time.perf_counter() - t0, 3)
                emit(**row)
                return 4
        row["time_s"] = round(time.perf_counter() - t0, 3)
        emit(**row)
    return 0


def _read_jsonl(path: Path) -> List[dict]:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


def run_kernels(ctx: "Context") -> dict:
    """Orchestrate the kernel workers: start them in parallel; after a crash, rerun what was left."""
    workers = ctx.workers
    deadline = time.monotonic() + ctx.budget["kernels"]
    jobs = []
    for i in range(workers):
        res = ctx.scratch / f"kernels-{i}.jsonl"
        jobs.append((res, ["--kernel-worker", "--index", str(i), "--count", str(workers), "--result", str(res)]))
    dry = ["--dry-run"] if ctx.dry else []
    results: Dict[str, dict] = {}
    env, tolerances, fatal, attempt, planned = None, None, [], 0, set()
    while jobs and time.monotonic() < deadline:
        procs = [(res, ctx.start(["-m", "benchmarks.gpu_check", *a, *dry], f"kernels worker {res.stem}"))
                 for res, a in jobs]
        next_jobs = []
        for res, p in procs:
            rc = ctx.wait(p, deadline)
            rows = _read_jsonl(res)
            plan, started = [], None
            for r in rows:
                env = env or r.get("env")
                tolerances = tolerances or r.get("tolerances")
                if "fatal" in r:
                    fatal.append(r["fatal"])
                plan = r.get("plan", plan)
                started = r.get("start", started)
                if "case" in r:
                    results[r["case"]] = r
            planned.update(plan)
            if rc != 0 and not plan:
                fatal.append(f"{res.stem} ended before its first case ("
                             f"{'timed out' if rc is None else f'status {rc}'}): {ctx.last_line(p)}")
            crashed = started if started is not None and started not in results else None
            if crashed is not None:
                why = "timed out" if rc is None else f"worker ended with status {rc}"
                results[crashed] = {"case": crashed, "status": "error", "message": f"{why} during this case "
                                    f"(see the log)", "time_s": None}
            left = [n for n in plan if n not in results]
            if left and rc is not None:  # crashed or CUDA fault: the rest in a fresh process
                attempt += 1
                nres = ctx.scratch / f"kernels-retry{attempt}.jsonl"
                names = ctx.scratch / f"kernels-retry{attempt}.json"
                names.write_text(json.dumps(left))
                planned.update(left)
                next_jobs.append((nres, ["--kernel-worker", "--names", str(names), "--result", str(nres)]))
            elif left:
                for n in left:
                    results[n] = {"case": n, "status": "error", "message": "not run: the kernel section ran out "
                                  "of time", "time_s": None}
        jobs = next_jobs if attempt <= 3 * workers else []
    for n in planned - set(results):  # reruns that found no time (or too many crashes) left
        results[n] = {"case": n, "status": "error", "message": "not run: no time left after a crashed worker",
                      "time_s": None}
    rows = sorted(results.values(), key=lambda r: r["case"])
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "error", "skipped")}
    bad = [r for r in rows if r["status"] in ("failed", "error")]
    from_ = "Triton interpreter on CPU" if ctx.dry else "compiled Triton kernels on CUDA"
    summary = (f"{counts['ok']}/{len(rows)} cases passed ({from_}); {counts['failed']} failed, "
               f"{counts['error']} errors, {counts['skipped']} skipped")
    status = "error" if fatal or not rows else ("failed" if bad else "ok")
    if fatal:
        summary = f"{fatal[0]}; " + summary
    return {"status": status, "summary": summary, "env": env, "counts": counts, "tolerances": tolerances,
            "cases": rows,
            "failures": [f"{r['case']}: {r.get('message', '')[:300]}" for r in bad],
            "workers": workers, "retries": attempt}


# ==================================================================================================
# section: bench
# ==================================================================================================
def _variants(group: str, p: dict, device) -> list:
    """snnedu (triton, reference) and SpikingJelly (torch, triton, cuda) for one case of benchmarks.run."""
    from . import run as R
    from .peers import Variant
    out = []
    for lib, backends in (("snnedu", ("triton", "reference")), ("spikingjelly", SJ_BACKENDS)):
        for b in backends:
            if device.type == "cpu" and (lib, b) in (("spikingjelly", "triton"), ("spikingjelly", "cuda")):
                out.append(Variant(lib, b, status="skipped", message=SKIP_CPU))
            else:
                out.append(R.build(group, p, lib, b, device))
    return out


def kernel_bytes(T: int, M: int, itemsize: int, levels: int = 1, need_x_backward: bool = False) -> dict:
    """Bytes the fused LIF kernels must move for ``T`` steps of ``M`` elements (fp32 potentials saved):
    forward reads x and writes spikes and h (fp32); backward reads grad_spikes and h and writes grad_x
    (and reads x again when the leak's gradient needs it); plus the initial / last potentials."""
    state = levels * M
    fwd = T * M * itemsize + T * state * (itemsize + 4) + state * 2 * itemsize
    bwd = T * state * (itemsize + 4) + T * M * itemsize * (2 if need_x_backward else 1) + state * (itemsize + 4)
    return {"fwd": fwd, "bwd": bwd}


def _timer(device):
    """``(start, stop)``: seconds between them, from CUDA events on CUDA (perf_counter on CPU)."""
    import torch
    if device.type == "cuda":
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def stop():
            b.record()
            b.synchronize()
            return a.elapsed_time(b) / 1e3
        return a.record, stop
    t = {}

    def start():
        t["0"] = time.perf_counter()
    return start, lambda: time.perf_counter() - t["0"]


def copy_bandwidth(device, nbytes: int, repeats: int = 10) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written."""
    import torch
    a = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    _sync(device)
    start, stop = _timer(device)
    start()
    for _ in range(repeats):
        b.copy_(a)
    t = stop() / repeats
    return 2 * a.numel() * 4 / t


def kernel_bandwidth(T: int, B: int, N: int, device, repeats: int) -> dict:
    """Forward and backward kernel times of the LIF of the benchmark (fp32) from CUDA events, and the
    bandwidth they achieve (:func:`kernel_bytes` / time)."""
    import torch

    import snnedu.functional as SF
    from snnedu.kernels.triton_neuron import triton_multistep
    p = dict(surrogate=SF.ATan(2.0), k=0.5, v_threshold=1.0, v_reset=0.0, decay_input=True, detach_reset=False)
    x = (torch.randn(T, B, N, device=device) * 1.5 + 0.5).requires_grad_()
    gs = torch.ones(T, B, N, device=device)
    fwd, bwd = [], []
    for i in range(repeats + 1):  # the first is a warm-up (compilation)
        start, stop = _timer(device)
        start()
        s, v = triton_multistep(x, None, **p)
        tf = stop()
        start, stop = _timer(device)
        start()
        torch.autograd.grad(s, x, gs)
        tb = stop()
        if i:
            fwd.append(tf)
            bwd.append(tb)
        del s, v
    nb = kernel_bytes(T, B * N, 4)
    tf, tb = statistics.median(fwd), statistics.median(bwd)
    return {"T": T, "B": B, "N": N, "fwd_s": tf, "bwd_s": tb, "fwd_bytes": nb["fwd"], "bwd_bytes": nb["bwd"],
            "fwd_Bps": nb["fwd"] / tf, "bwd_Bps": nb["bwd"] / tb, "fwd_times_s": fwd, "bwd_times_s": bwd}


def section_bench(args) -> dict:
    import gc

    import torch

    from . import peers
    from . import run as R
    peers.use_bench_extra()
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        return {"status": "error", "summary": "no CUDA device (run the rehearsal with --dry-run)"}
    device = torch.device("cpu" if dry else "cuda")
    torch.manual_seed(0)
    sizes, T, B = (DRY_SIZES, DRY_T, DRY_B) if dry else (ON_SIZES, ON_T, ON_B)
    repeats = 2 if dry else 5
    rows, prev = [], peers.current_backend()
    try:
        for group, label in (("memory", "Linear+LIF"), ("cpu", "LIF alone")):
            for n in sizes:
                p = {"T": T, "B": B, "N": n}
                variants = _variants(group, p, device)
                times = R.time_interleaved(variants, repeats, device)
                for v in variants:
                    t = statistics.median(times[id(v)]) if id(v) in times else None
                    peak = R.cuda_peak(v, device) if (t is not None and device.type == "cuda") else None
                    rows.append({"case": label, "T": T, "B": B, "N": n, "library": v.library, "backend": v.backend,
                                 "version": peers.version(v.library), "status": v.status, "message": v.message,
                                 "time_s": t, "times_s": times.get(id(v)), "peak_bytes": peak})
                    print(f"  {label} N={n} | {v.label}: {v.status} {'' if t is None else f'{t:.4f} s'}"
                          f" | peak {peak}", flush=True)
                del variants
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    finally:
        peers.restore_backend(prev)
    copy_bytes = (64 if dry else 2048) * 2 ** 20
    copy_bps = copy_bandwidth(device, copy_bytes)
    bw = []
    for n in sizes:
        r = kernel_bandwidth(T, B, n, device, 2 if dry else 10)
        r.update(fwd_fraction=r["fwd_Bps"] / copy_bps, bwd_fraction=r["bwd_Bps"] / copy_bps)
        bw.append(r)
        print(f"  kernel bandwidth N={n}: fwd {r['fwd_Bps'] / 1e9:.1f} GB/s, bwd {r['bwd_Bps'] / 1e9:.1f} GB/s, "
              f"copy {copy_bps / 1e9:.1f} GB/s", flush=True)
    cupy = {"importable": False, "note": "SpikingJelly 2.x has no CuPy backend (its cuda and triton backends "
                                         "replaced it); its `cuda` backend needs a source build of its native ops"}
    try:
        import cupy  # noqa: F401
        cupy["importable"], cupy["version"] = True, getattr(cupy, "__version__", None)
    except Exception as e:  # noqa: BLE001
        cupy["error"] = _one_line(e)
    ok = [r for r in rows if r["status"] == "ok"]
    must = [r for r in rows if r["library"] == "snnedu"]
    status = "ok" if all(r["status"] == "ok" for r in must) else "error"
    summary = (f"{len(ok)}/{len(rows)} variants measured" + (" (tiny sizes, CPU: not a measurement)" if dry else "")
               + ("" if status == "ok" else "; an snnedu variant did not run"))
    return {"status": status, "summary": summary, "rows": rows, "bandwidth": bw, "copy_Bps": copy_bps,
            "copy_bytes": copy_bytes, "cupy": cupy, "repeats": repeats,
            "method": ("median of interleaved rounds after one warm-up (benchmarks.run.time_interleaved); peak = "
                       "torch.cuda.max_memory_allocated over one step minus what was allocated before; kernel "
                       "bandwidth = bytes the kernels must move / CUDA-event time; copy = 2 x bytes / time of "
                       "a device-to-device copy")}


# ==================================================================================================
# section: train
# ==================================================================================================
CONFIG = ROOT / "configs" / "plif_dvs128_gesture.yaml"


def train_config(dry: bool, scratch: Path) -> dict:
    """The chapter config at 128x128, T=16 with AMP, one epoch (the dry run: a tiny stand-in at 32x32)."""
    import yaml

    from snnedu.config import validate_config
    raw = yaml.safe_load(CONFIG.read_text())
    raw["name"] = "gpu_check_" + raw["name"]
    raw["data"].update(T=16, size=128)
    raw["train"].update(amp=True, epochs=1)
    standin = {"root": str(scratch / "standin")}
    if dry:
        raw["data"].update(T=2, size=16, batch_size=4, test_batch_size=8)
        raw["model"].update(channels=4, n_down=2)
        standin.update(n_train_users=1, n_test_users=1, lightings=["led"], size=16)
    raw["data"]["standin"] = standin
    return validate_config(raw)


def _amp_step(net, reset, x, y, n_classes: int, device):
    """One AMP training step (as snnedu.fit takes it: bf16 autocast where supported, a GradScaler)."""
    import torch
    import torch.nn.functional as F
    amp = device.type == "cuda"
    dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    target = F.one_hot(y, n_classes).float()
    net.train()

    def step():
        reset()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            out = net(x)
        loss = F.mse_loss(out.float().mean(0), target)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return step


def section_train(args) -> dict:
    import torch

    from snnedu.config import build_data, run_config
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        return {"status": "error", "summary": "no CUDA device (run the rehearsal with --dry-run)"}
    device = torch.device("cpu" if dry else "cuda")
    scratch = Path(args.scratch)
    out = {"config": str(CONFIG.relative_to(ROOT))}
    errors = []
    # 1. the chapter config through run_config (data stand-in, AMP, checkpoint, logs), one epoch
    try:
        cfg = train_config(dry, scratch)
        t0 = time.perf_counter()
        # two epochs on the GPU: the first one includes compiling the kernels; the second is reported
        res = run_config(cfg, out_dir=scratch / "runs", epochs=1 if dry else 2, max_batches=2 if dry else None,
                         device=device, progress=False, resume=False)
        wall = time.perf_counter() - t0
        split, train_loader, _ = build_data(cfg)
        n_train = min(len(split.train), 2 * cfg["data"]["batch_size"]) if dry else len(split.train)
        h = res["history"][-1]
        out["epoch"] = {"setting": f"T={cfg['data']['T']} {cfg['data']['size']}x{cfg['data']['size']} "
                                   f"B={cfg['data']['batch_size']} AMP={res['amp']}",
                        "train_samples": n_train, "test_samples": res["test_samples"], "epoch_time_s": h["time_s"],
                        "samples_per_s": n_train / h["time_s"], "wall_s_with_data": wall, "amp": res["amp"],
                        "device": res["device"], "data": res["data"], "train_loss": h["train_loss"],
                        "val_acc": h.get("val_acc"),
                        "epoch": h["epoch"], "epoch_times_s": [r["time_s"] for r in res["history"]],
                        "note": "the last epoch (the first includes compiling the kernels); its time includes "
                                "the test pass; samples/s counts the training samples"}
        print(f"  one epoch: {n_train} samples in {h['time_s']:.2f} s (AMP={res['amp']})", flush=True)
    except Exception as e:  # noqa: BLE001
        errors.append(f"run_config: {_one_line(e)}")
        out["epoch"] = {"error": _one_line(e)}
    # 2. AMP training steps of snnedu's PLIF DVS net and SpikingJelly's equivalent net, interleaved
    from . import peers
    from . import run as R
    from .peers import DVSSetting, NotInstalled, Variant
    peers.use_bench_extra()
    s = DVSSetting(T=2, batch=2, size=16, channels=4, n_down=2) if dry else DVSSetting(T=16, batch=16)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(s.T, s.batch, 2, s.size, s.size, generator=g).to(device)
    y = torch.randint(0, s.n_classes, (s.batch,), generator=g).to(device)
    variants = []
    for lib, backends in (("snnedu", (None,)), ("spikingjelly", SJ_BACKENDS)):
        for b in backends:
            v = Variant(lib, b, activate=peers.activator(lib, b, device))
            if device.type == "cpu" and lib == "spikingjelly" and b != "torch":
                v.status, v.message = "skipped", SKIP_CPU
            else:
                try:
                    torch.manual_seed(0)
                    net, reset = peers.dvs_net(lib, s, device)
                    v.step = _amp_step(net, reset, x, y, s.n_classes, device)
                except NotInstalled as e:
                    v.status, v.message = "not installed", str(e)
                except Exception as e:  # noqa: BLE001
                    v.status, v.message = "unavailable", _one_line(e)
            variants.append(v)
    prev = peers.current_backend()
    try:
        times = R.time_interleaved(variants, 2 if dry else 5, device)
    finally:
        peers.restore_backend(prev)
    steps = []
    for v in variants:
        t = statistics.median(times[id(v)]) if id(v) in times else None
        steps.append({"library": v.library, "backend": peers.backend_label(v.library, v.backend),
                      "version": peers.version(v.library), "status": v.status, "message": v.message, "time_s": t,
                      "samples_per_s": s.batch / t if t else None})
        print(f"  AMP train step | {v.label}: {v.status} {'' if t is None else f'{s.batch / t:.1f} samples/s'}",
              flush=True)
    out["steps"] = {"setting": f"PLIF DVS net T={s.T} B={s.batch} {s.size}x{s.size} C={s.channels}, AMP "
                               f"{'on' if device.type == 'cuda' else 'off (CPU)'}", "rows": steps}
    if not any(r["status"] == "ok" for r in steps if r["library"] == "snnedu"):
        errors.append("snnedu's AMP train step did not run: " + steps[0]["message"])
    ep = out["epoch"]
    summary = (f"one epoch: {ep['samples_per_s']:.1f} samples/s ({ep['setting']})" if "samples_per_s" in ep
               else f"one epoch failed: {ep['error']}")
    sj = [r for r in steps if r["library"] == "spikingjelly" and r["status"] == "ok"]
    sn = [r for r in steps if r["library"] == "snnedu" and r["status"] == "ok"]
    if sn:
        summary += f"; AMP steps: snnedu {sn[0]['samples_per_s']:.1f} samples/s"
        summary += (", SpikingJelly " + ", ".join(f"{r['backend']} {r['samples_per_s']:.1f}" for r in sj)) if sj \
            else ", SpikingJelly's net not measured (" + (steps[1]["status"] if len(steps) > 1 else "absent") + ")"
    out.update(status="error" if errors else "ok", summary=summary + ("; " + "; ".join(errors) if errors else ""))
    return out


# ==================================================================================================
# section: ddp
# ==================================================================================================
DDP_WORLD = 2


def ddp_worker(args) -> int:
    """One rank under torchrun: a PLIF MLP trained by snnedu.fit in DistributedDataParallel; writes
    ``rank<r>.json`` with a hash of its final weights."""
    import hashlib

    import torch
    from torch.utils.data import TensorDataset

    import snnedu
    from snnedu import distributed as D
    from snnedu import kernels
    info = D.init_distributed(device="cpu" if args.dry_run else None)
    assert info.distributed and info.world_size == DDP_WORLD, info
    torch.manual_seed(7)
    net = torch.nn.Sequential(snnedu.DirectEncoder(4), snnedu.SpikingMLP(
        input_shape=(1, 8, 8), hidden=(64,), n_classes=3, neuron=lambda: snnedu.PLIF(per_neuron=True, tau_std=0.1)))
    snnedu.materialize(net, torch.zeros(1, 1, 8, 8))
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    model = D.wrap_ddp(net, info.device)
    g = torch.Generator().manual_seed(123)
    data = TensorDataset(torch.rand(48, 1, 8, 8, generator=g), torch.randint(0, 3, (48,), generator=g))
    loader = D.distributed_loader(data, batch_size=8, seed=0)
    hist = snnedu.fit(model, loader, epochs=1, lr=0.05, seed=0, device=info.device, progress=False,
                      amp=info.device.type == "cuda", loss_fn=snnedu.rate_cross_entropy)
    state = D.unwrap(model).state_dict()
    digest = hashlib.sha256()
    for k in sorted(state):
        digest.update(k.encode() + state[k].detach().cpu().contiguous().numpy().tobytes())
    changed = [k for k in state if state[k].is_floating_point() and not torch.equal(state[k].cpu(), before[k].cpu())]
    probe = torch.zeros(2, 1, 4, device=info.device)
    _write(Path(args.ddp_worker) / f"rank{info.rank}.json", {
        "hash": digest.hexdigest(), "changed": len(changed), "backend": info.backend, "device": str(info.device),
        "kernel_backend": kernels.chosen_backend(probe, snnedu.ATan(), name="PLIF"),
        "train_loss": hist[-1]["train_loss"]})
    D.cleanup()
    return 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gpu_count(sections: dict) -> int:
    for s in sections.values():
        if (s.get("env") or {}).get("device_count") is not None:
            return int(s["env"]["device_count"])
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        return sum(line.startswith("GPU ") for line in r.stdout.splitlines())
    except (OSError, subprocess.TimeoutExpired):
        return 0


def run_ddp(ctx: "Context", sections: dict) -> dict:
    """Two ranks under torchrun (NCCL on 2 GPUs; the dry run: gloo on CPU) must end with equal weights."""
    n = 0 if ctx.dry else _gpu_count(sections)
    if not ctx.dry and n < DDP_WORLD:
        return {"status": "skipped", "gpus": n, "summary": f"{n} GPU{'s' if n != 1 else ''} on this machine: "
                f"the {DDP_WORLD}-process NCCL test needs {DDP_WORLD} or more"}
    out = ctx.scratch / "ddp"
    out.mkdir(parents=True, exist_ok=True)
    extra = {"OMP_NUM_THREADS": "1"}
    if ctx.dry:
        extra.update(GLOO_SOCKET_IFNAME="lo", SNNEDU_BACKEND="triton")  # the kernels, as on a GPU
    p = ctx.start(["-m", "torch.distributed.run", f"--nproc_per_node={DDP_WORLD}", "--nnodes=1",
                   "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "benchmarks.gpu_check",
                   "--ddp-worker", str(out)] + (["--dry-run"] if ctx.dry else []), "ddp", extra)
    rc = ctx.wait(p, time.monotonic() + ctx.budget["ddp"])
    ranks = [json.loads(f.read_text()) for f in sorted(out.glob("rank*.json"))]
    if rc != 0 or len(ranks) != DDP_WORLD:
        why = f"timed out after {ctx.budget['ddp']} s" if rc is None else f"torchrun ended with status {rc}"
        return {"status": "error", "summary": f"{why}: {ctx.last_line(p)}", "ranks": ranks}
    what = (f"{DDP_WORLD} processes, {ranks[0]['backend']} on {ranks[0]['device']} / {ranks[1]['device']}, "
            f"neuron kernels: {ranks[0]['kernel_backend']}")
    note = " (gloo on CPU: a rehearsal of the NCCL test)" if ctx.dry else ""
    if len({r["hash"] for r in ranks}) != 1:
        return {"status": "failed", "summary": f"{what}: the weights differ between the ranks", "ranks": ranks}
    if not ranks[0]["changed"]:
        return {"status": "failed", "summary": f"{what}: the weights did not change", "ranks": ranks}
    return {"status": "ok", "summary": f"{what}: identical weights after one epoch{note}", "ranks": ranks}


# ==================================================================================================
# the orchestrator (imports no torch: it starts the section processes and writes the report)
# ==================================================================================================
class Context:
    """What the sections share: mode, scratch folder, the log, the time budget, the environment."""

    def __init__(self, dry: bool, scratch: Path, log: Path, budget: dict, workers: int):
        self.dry, self.scratch, self.log, self.budget, self.workers = dry, scratch, log, budget, workers
        self.env = dict(os.environ, TQDM_DISABLE="1", PYTHONUNBUFFERED="1", SNNEDU_DATA=str(scratch / "data"),
                        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        self.env.pop("SNNEDU_BACKEND", None)
        if dry:
            # the Triton interpreter runs the kernels on CPU tensors; set before any triton import
            self.env.update(TRITON_INTERPRET="1", NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
        self._logs: Dict[int, Path] = {}

    def start(self, argv: List[str], label: str, extra_env: Optional[dict] = None) -> subprocess.Popen:
        path = self.scratch / f"log-{re.sub(r'[^A-Za-z0-9.-]+', '-', label)}-{len(self._logs)}.txt"
        f = open(path, "w")
        p = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=dict(self.env, **(extra_env or {})),
                             stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        f.close()
        self._logs[p.pid] = path
        with open(self.log, "a") as log:
            log.write(f"\n===== {label}: {' '.join(argv)}\n")
        return p

    def wait(self, p: subprocess.Popen, deadline: float) -> Optional[int]:
        """The exit status, or None after killing the process (and its children) at the deadline."""
        try:
            rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, 9)
            except ProcessLookupError:
                pass
            p.wait()
            rc = None
        with open(self.log, "a") as log:
            log.write(f"----- process {p.pid} ({'killed at its deadline' if rc is None else f'status {rc}'}):\n")
            log.write(self._logs[p.pid].read_text(errors="replace"))
        return rc

    def last_line(self, p: subprocess.Popen) -> str:
        lines = [x for x in self._logs[p.pid].read_text(errors="replace").splitlines() if x.strip()]
        return lines[-1][:300] if lines else ""


def run_section(ctx: Context, name: str, sections: dict) -> dict:
    if name == "kernels":
        return run_kernels(ctx)
    if name == "ddp":
        return run_ddp(ctx, sections)
    res = ctx.scratch / f"{name}.json"
    extra = {"SNNEDU_BACKEND": "triton"} if ctx.dry and name == "train" else None  # the kernels, as on a GPU
    p = ctx.start(["-m", "benchmarks.gpu_check", "--section", name, "--result", str(res), "--scratch",
                   str(ctx.scratch), "--timeout", str(max(10, ctx.budget[name] - 10))]
                  + (["--dry-run"] if ctx.dry else []), name, extra)
    rc = ctx.wait(p, time.monotonic() + ctx.budget[name])
    if res.exists():
        return json.loads(res.read_text())
    why = f"timed out after {ctx.budget[name]} s" if rc is None else f"its process ended with status {rc}"
    return {"status": "error", "summary": f"{why}: {ctx.last_line(p)}"}


def section_main(args) -> int:
    """``--section NAME``: run one section in this process and write its JSON (errors included)."""
    fn = {"bench": section_bench, "train": section_train}[args.section]
    t0 = time.perf_counter()
    try:
        out = fn(args)
    except Exception as e:  # noqa: BLE001 - recorded in the report, the other sections go on
        import traceback
        traceback.print_exc()
        out = {"status": "error", "summary": _one_line(e)}
    try:
        out.setdefault("env", env_info())
    except Exception as e:  # noqa: BLE001
        out.setdefault("env_error", _one_line(e))
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    _write(Path(args.result), out)
    return 0


# -- goals and report --------------------------------------------------------------------------------------
def _ok_rows(rows, case, n, library):
    return [r for r in rows if r["case"] == case and r["N"] == n and r["library"] == library and r["status"] == "ok"]


def goals(bench: dict, dry: bool) -> List[dict]:
    """The three goals, each met / not met / not measured, with the value per N."""
    out = []
    defs = [("speed", "snnedu Triton fwd+bwd time / SpikingJelly's fastest backend (Linear+LIF, B=16, T=500)",
             f"<= {GOALS['speed']}"),
            ("bandwidth", "neuron kernels' achieved bandwidth / measured copy bandwidth (worse of fwd and bwd)",
             f">= {GOALS['bandwidth']:.0%}"),
            ("memory", "snnedu Triton peak memory / SpikingJelly's lowest (Linear+LIF step)",
             f"<= {GOALS['memory']}")]
    rows = bench.get("rows") or []
    for key, what, target in defs:
        g = {"goal": key, "what": what, "target": target, "values": {}, "status": "not measured", "note": ""}
        out.append(g)
        if dry:
            g["note"] = "dry run on CPU: tiny sizes and the Triton interpreter measure nothing"
            continue
        if bench.get("status") not in ("ok",) and not rows:
            g["note"] = f"the bench section did not run ({bench.get('summary', '')})"
            continue
        if key == "bandwidth":
            g["values"] = {str(b["N"]): round(min(b["fwd_fraction"], b["bwd_fraction"]), 3)
                           for b in bench.get("bandwidth", [])}
        else:
            for n in sorted({r["N"] for r in rows}):
                sn = _ok_rows(rows, "Linear+LIF", n, "snnedu")
                sn = [r for r in sn if r["backend"] == "triton"]
                sj = _ok_rows(rows, "Linear+LIF", n, "spikingjelly")
                field = "time_s" if key == "speed" else "peak_bytes"
                sj = [r[field] for r in sj if r[field]]
                if sn and sj and sn[0][field]:
                    g["values"][str(n)] = round(sn[0][field] / min(sj), 3)
            if not g["values"]:
                g["note"] = "SpikingJelly did not run (not installed, or every backend unavailable)"
        if g["values"]:
            vals = list(g["values"].values())
            worst = min(vals) if key == "bandwidth" else max(vals)
            g["worst"] = worst
            ok = worst >= GOALS[key] if key == "bandwidth" else worst <= GOALS[key]
            g["status"] = "met" if ok else "not met"
    return out


def _fmt_s(t) -> str:
    return "—" if t is None else (f"{t:.4f}" if t >= 1e-3 else f"{t:.2e}")


def _fmt_b(b) -> str:
    return "—" if b is None else (f"{b / 2 ** 30:.2f} GiB" if b >= 2 ** 30 else f"{b / 2 ** 20:.1f} MiB")


def markdown(result: dict) -> str:
    m, env, secs = result["meta"], result["env"] or {}, result["sections"]
    L = [f"# GPU check — {env.get('device', '?')}" + (" (dry run on CPU: a rehearsal, not a measurement)"
                                                     if m["dry_run"] else ""), "",
         f"**Date:** {m['date']} · **device:** {env.get('device')} (compute {env.get('capability', '—')}, "
         f"{env.get('sms', '—')} SMs, {env.get('memory_gib', '—')} GiB) · "
         f"**driver:** {env.get('driver') or '—'} · "
         f"**torch** {env.get('torch')} (CUDA {env.get('torch_cuda')}) · **triton** {env.get('triton')} · "
         f"**SpikingJelly** {env.get('spikingjelly') or 'not installed'} · **CuPy** {env.get('cupy') or '—'} · "
         f"**Python** {env.get('python')} · **host** {env.get('host')} · wall {m['wall_s']:.0f} s", "",
         "## Sections", "", "| section | status | summary |", "|---|---|---|"]
    for name in SECTIONS:
        s = secs.get(name)
        if s is not None:
            L.append(f"| {name} | {s['status']} | {s.get('summary', '')} |")
    L += ["", "## Goals", "", "| goal | target | per N | worst | status |", "|---|---|---|---|---|"]
    for g in result["goals"]:
        vals = ", ".join(f"{n}: {v}" for n, v in g["values"].items()) or "—"
        L.append(f"| {g['what']} | {g['target']} | {vals} | {g.get('worst', '—')} | {g['status']}"
                 + (f" ({g['note']})" if g["note"] else "") + " |")
    k = secs.get("kernels") or {}
    if k.get("tolerances"):
        L += ["", "## Kernels against the reference", "", k.get("summary", ""), "", "Tolerances:", ""]
        L += [f"- {d}: {t}" for d, t in k["tolerances"].items()]
    if k.get("failures"):
        L += ["", "Failures:", ""] + [f"- `{f}`" for f in k["failures"][:60]]
    b = secs.get("bench") or {}
    if b.get("rows"):
        L += ["", "## Forward + backward", "",
              "| case | N | library (backend) | time (s) | / SJ fastest | peak memory |", "|---|---|---|---|---|---|"]
        for r in b["rows"]:
            sj = [x["time_s"] for x in _ok_rows(b["rows"], r["case"], r["N"], "spikingjelly")]
            ratio = f"{r['time_s'] / min(sj):.2f}" if sj and r["time_s"] else "—"
            cells = ([_fmt_s(r["time_s"]), ratio, _fmt_b(r["peak_bytes"])] if r["status"] == "ok"
                     else [f"{r['status']}: {r['message'][:120]}", "—", "—"])
            L.append(f"| {r['case']} T={r['T']} B={r['B']} | {r['N']} | {r['library']} ({r['backend']}) | "
                     + " | ".join(cells) + " |")
    if b.get("bandwidth"):
        L += ["", f"## Neuron kernel bandwidth (copy: {b['copy_Bps'] / 1e9:.0f} GB/s read+write)", "",
              "| T, B, N | fwd time | fwd GB/s | fwd / copy | bwd time | bwd GB/s | bwd / copy |",
              "|---|---|---|---|---|---|---|"]
        for r in b["bandwidth"]:
            L.append(f"| {r['T']}, {r['B']}, {r['N']} | {_fmt_s(r['fwd_s'])} | {r['fwd_Bps'] / 1e9:.1f} | "
                     f"{r['fwd_fraction']:.0%} | {_fmt_s(r['bwd_s'])} | {r['bwd_Bps'] / 1e9:.1f} | "
                     f"{r['bwd_fraction']:.0%} |")
    if b.get("method"):
        L += ["", f"Method: {b['method']}. {b.get('cupy', {}).get('note', '')}."]
    t = secs.get("train") or {}
    if t.get("epoch") or t.get("steps"):
        L += ["", "## Training", ""]
        ep = t.get("epoch") or {}
        if "samples_per_s" in ep:
            L.append(f"- `{t.get('config')}`, one epoch ({ep['setting']}, {ep['device']}): {ep['train_samples']} "
                     f"training samples in {ep['epoch_time_s']:.2f} s = **{ep['samples_per_s']:.1f} samples/s** "
                     f"(the epoch includes the test pass); data: {ep['data']}")
        elif ep:
            L.append(f"- one epoch: {ep.get('error')}")
        st = t.get("steps") or {}
        for r in st.get("rows", []):
            v = f"{r['samples_per_s']:.1f} samples/s" if r["samples_per_s"] else f"{r['status']}: {r['message'][:120]}"
            L.append(f"- {st['setting']}: {r['library']} ({r['backend']}): {v}")
    d = secs.get("ddp") or {}
    if d:
        L += ["", "## DDP", "", f"{d['status']}: {d.get('summary', '')}"]
    return "\n".join(L) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "device"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="rehearse on CPU: tiny sizes, the Triton interpreter")
    ap.add_argument("--out", help="output folder (default benchmarks/results; dry run: a new temporary folder)")
    ap.add_argument("--only", default=",".join(SECTIONS), help="comma list of sections: " + ", ".join(SECTIONS))
    ap.add_argument("--workers", type=int, help="kernel-test processes (default 8 on a GPU, 1 in the dry run)")
    ap.add_argument("--keep-scratch", action="store_true", help="keep the scratch folder (data, checkpoints)")
    # internal: one section, one kernel worker, one DDP rank
    for flag in ("--section", "--result", "--scratch", "--names", "--ddp-worker"):
        ap.add_argument(flag, help=argparse.SUPPRESS)
    ap.add_argument("--kernel-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, default=60, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.kernel_worker:
        return kernel_worker(args)
    if args.ddp_worker:
        return ddp_worker(args)
    if args.section:
        return section_main(args)

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    if not only or any(s not in SECTIONS for s in only):
        ap.error(f"--only: choose from {', '.join(SECTIONS)}")
    workers = args.workers or (1 if args.dry_run else min(8, os.cpu_count() or 1))
    if workers < 1:
        ap.error("--workers must be >= 1")
    if args.out is None:
        out = Path(tempfile.mkdtemp(prefix="snnedu-gpu-check-dry-")) if args.dry_run else RESULTS
    else:
        out = Path(args.out)
    if args.dry_run and _inside(out, RESULTS):
        ap.error("--dry-run never writes into benchmarks/results (its numbers are no measurement); "
                 "choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="snnedu-gpu-check-scratch-"))
    now = _dt.datetime.now()
    log = scratch / "main.log"
    log.write_text(f"snnedu GPU check{' (dry run)' if args.dry_run else ''}, {now:%Y-%m-%d %H:%M:%S}\n")
    ctx = Context(args.dry_run, scratch, log, DRY_BUDGET if args.dry_run else BUDGET, workers)
    print(f"snnedu GPU check{' — DRY RUN on CPU (Triton interpreter, tiny sizes)' if args.dry_run else ''}: "
          f"sections {', '.join(only)}; output in {out}", flush=True)
    t_start = time.perf_counter()
    sections: Dict[str, dict] = {}

    def one(name):
        t0 = time.perf_counter()
        try:
            s = run_section(ctx, name, sections)
        except Exception as e:  # noqa: BLE001 - the orchestrator itself must reach the report
            s = {"status": "error", "summary": f"orchestrator: {_one_line(e)}"}
        s.setdefault("wall_s", round(time.perf_counter() - t0, 2))
        print(f"[{name}] {s['status']}: {s.get('summary', '')} ({time.perf_counter() - t0:.0f} s)", flush=True)
        return s

    todo = [name for name in SECTIONS if name in only]
    if args.dry_run:  # nothing is timed in the rehearsal: the sections run side by side
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(len(todo)) as pool:
            done = dict(zip(todo, pool.map(one, todo)))
        sections.update((name, done[name]) for name in todo)
    else:  # on the GPU one after the other, so that no measurement disturbs another
        for name in todo:
            sections[name] = one(name)
    env = next((s["env"] for s in sections.values() if s.get("env")), None) or {}
    device = env.get("device") or "unknown device"
    stem = f"{now:%Y-%m-%d}_" + ("dry-run-cpu" if args.dry_run else _slug(device))
    result = {"meta": {"date": now.strftime("%Y-%m-%d %H:%M"), "dry_run": args.dry_run, "sections_run": only,
                       "wall_s": round(time.perf_counter() - t_start, 1), "command": " ".join(sys.argv),
                       "workers": workers, "budget_s": ctx.budget},
              "env": env, "goals": goals(sections.get("bench") or {}, args.dry_run), "sections": sections}
    _write(out / f"{stem}.json", result)
    (out / f"{stem}.md").write_text(markdown(result))
    shutil.copyfile(log, out / f"{stem}.log")
    if not args.keep_scratch:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\nSummary" + (" (dry run: nothing here is a measurement)" if args.dry_run else "") + ":")
    for name, s in sections.items():
        print(f"  {name:8s} {s['status']:8s} {s.get('summary', '')}")
    for g in result["goals"]:
        vals = ", ".join(f"N={n}: {v}" for n, v in g["values"].items())
        print(f"  goal {g['goal']:9s} {g['target']:7s} {g['status']}" + (f" ({vals})" if vals else "")
              + (f" — {g['note']}" if g["note"] else ""))
    print(f"wrote {out / stem}.json, .md, .log" + (f"; scratch kept in {scratch}" if args.keep_scratch else ""))
    return 0 if all(s["status"] in ("ok", "skipped") for s in sections.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
