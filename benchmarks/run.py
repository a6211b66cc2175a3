"""snnedu against SpikingJelly, snnTorch and Norse: forward+backward time, peak memory, DVS throughput.

    python -m benchmarks.run [--quick] [--only cpu|memory|dvs|roofline|e2e[,...]] [--nets ch1_cnn,...] [--repeats 5] [--threads 2]
                             [--device cpu|cuda] [--no-memory] [--libs snnedu,spikingjelly,...]

Three groups by default (``--only`` picks some, and adds the other two, ``e2e`` and ``roofline``):

- ``cpu``: multi-step LIF forward+backward alone, ``T=64, B=16, N=4096`` and ``T=16, B=32, N=65536``.
- ``memory``: the Open Neuromorphic setting, ``Linear(N, N)`` + LIF, ``B=16, T=500``,
  ``N = 4096, 8192, 16384`` (on CPU only ``N=4096`` unless ``--on-sizes`` says otherwise: one step of
  the largest takes minutes there).
- ``dvs``: samples/s of a training step of the PLIF DVS128 Gesture network (``T=16``, 128x128,
  ``B=16``; on CPU ``B=--dvs-batch``, default 4, so that it fits next to other work) against the
  same network built from SpikingJelly's layers.
- ``e2e`` (only when named): one training step of each chapter network of :data:`e2e.NETWORKS` at its
  study's setting (chapter 1 CNN, chapter 4 12-layer MLP, chapters 6-7 DS-ResNet-14, chapter 9 PLIF DVS
  net at 128x128) against its twin with SpikingJelly's neurons, and the share of the step spent in
  neurons (see :mod:`benchmarks.e2e`). No peak memory. Its table goes below the others in ``latest.md``.
- ``roofline`` (only when named): LIF, PLIF (per-neuron tau), MLF K=3 and LIF with per-neuron learnable
  thresholds at ``T`` in 1, 2, 4, 8, 16, 64 and ``B*N`` = 1 M and 4 M: forward, backward and
  forward+backward times and their fraction of the copy roofline (:data:`BYTE_MODEL`), against
  ``copy_`` of the same tensor timed in the same case; SpikingJelly's torch backend and the naive loop
  beside the LIF. No peak memory. Its table goes below the others in ``latest.md``.

Every variant of one case is timed in the same process, interleaved round by round (so a change in
the machine's load hits all libraries alike), after one warm-up step; the median of ``--repeats``
is reported. Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` around one step; on CPU each
variant runs again in a fresh subprocess that builds its inputs, runs one warm-up step, resets the
kernel's peak-RSS counter (``/proc/self/clear_refs``) and reports how far ``VmHWM`` rises above
``VmRSS`` during one more step (fallback: the ``ru_maxrss`` growth over the first step). Results: ``benchmarks/results/<date>_<machine>.json`` and ``.md``, and
``latest.md`` (not for ``--quick`` runs, whose files end in ``_quick``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from . import e2e, peers
from .peers import DVSSetting, NotInstalled, Unavailable, Variant

GROUPS = ("cpu", "memory", "dvs")  # the default run
ALL_GROUPS = GROUPS + ("roofline", "e2e")  # these two run only when ``--only`` names them
RESULTS = Path(__file__).resolve().parent / "results"
REFERENCE = ("spikingjelly", "torch")  # ratios are to this variant of the same case
PROBE_TAG = "SNNEDU_BENCH_PROBE "


# -- the cases ---------------------------------------------------------------------------------------
def cases(group: str, args, device: torch.device) -> List[dict]:
    """The parameter dicts of ``group`` (each one case)."""
    q = args.quick
    if group == "cpu":
        sizes = [(4, 2, 64)] if q else [(64, 16, 4096), (16, 32, 65536)]
        return [{"T": T, "B": B, "N": N} for T, B, N in sizes]
    if group == "memory":
        if args.on_sizes:
            ns = [int(n) for n in args.on_sizes.split(",")]
        else:
            ns = [32] if q else ([4096, 8192, 16384] if device.type == "cuda" else [4096])
        T, B = (6, 2) if q else (500, 16)
        return [{"T": T, "B": B, "N": n} for n in ns]
    if group == "roofline":
        ts = [1, 4] if q else list(ROOFLINE_T)
        sizes = [(2, 64)] if q else list(ROOFLINE_BN)
        return [{"neuron": n, "T": T, "B": B, "N": N} for n in peers.ROOFLINE_NEURONS for B, N in sizes
                for T in ts]
    if group == "e2e":
        keys = [k.strip() for k in args.nets.split(",")] if args.nets else list(e2e.NETWORKS)
        return [e2e.setting(k, q) for k in keys]
    if group == "dvs":
        if q:
            s = DVSSetting(T=2, batch=2, size=32, channels=4)
        else:
            batch = args.dvs_batch or (16 if device.type == "cuda" else 4)
            s = DVSSetting(T=16, batch=batch)
        return [dict(s.__dict__)]
    raise ValueError(group)


# -- the roofline group (issue 17) ----------------------------------------------------------------------
ROOFLINE_T = (1, 2, 4, 8, 16, 64)
ROOFLINE_BN = ((64, 16384), (64, 65536))  # B*N = 1 M and 4 M neurons-in-batch
PHASES = ("fwd", "bwd", "fwd+bwd")
#: on CPU the per-step loops (SpikingJelly torch, naive) keep several [T, B, N] tensors per step for their
#: backward: at T=64, B*N=4 M (256 M elements, 1 GiB each) they outgrew 24 GB of RAM, so beyond this size
#: only snnedu's fused path and the copy run
PEER_MAX_ELEMENTS_CPU = 2 ** 26
#: bytes per element of the [T, B, N] float32 sequence that a fused kernel must move at least
BYTES_PER_ELEMENT = {
    "fwd": 8,       # read x, write the output
    "bwd": 12,      # read the output's gradient and x (potentials recomputed), write x's gradient
    "fwd+bwd": 20,  # both
    "copy": 8,      # dst.copy_(x): read x, write dst
}
BYTE_MODEL = ("bytes moved per element of the float32 [T, B, N] sequence, at least: forward 8 (read x, write "
              "the output), backward 12 (read the output's gradient and x, recomputing the potentials, write "
              "x's gradient), forward+backward 20; per-neuron parameters (N values) are left out. Copy "
              "bandwidth = 8 bytes per element / median time of `dst.copy_(x)` on the same tensor in the same "
              "case; fraction of the roofline = (bytes / time) / copy bandwidth")


def roofline_bytes(phase: str, p: dict) -> int:
    """The bytes ``phase`` must move at least on the case ``p`` (see :data:`BYTE_MODEL`)."""
    return BYTES_PER_ELEMENT[phase] * p["T"] * p["B"] * p["N"]


def roofline_fraction(phase: str, p: dict, t: float, copy_t: float) -> float:
    """Achieved bandwidth of ``phase`` (``roofline_bytes / t``) over the copy's (``8 B/element / copy_t``)."""
    return (roofline_bytes(phase, p) / t) / (roofline_bytes("copy", p) / copy_t)


def roofline_variants(p: dict, libs, device: torch.device) -> List[Variant]:
    """``copy_`` of the input, then forward, backward and forward+backward of each library's neuron.

    All share one input tensor (built once); snnedu runs its fused backend only (the last of
    :func:`peers.backends`); SpikingJelly and the naive loop only where the runner has the neuron (LIF).
    """
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(p["T"], p["B"], p["N"], generator=g) * 1.5 + 0.5).to(device).requires_grad_(True)
    dst = torch.empty_like(x, requires_grad=False)
    copy = Variant("torch", "copy_", phase="copy")
    copy.step = lambda: dst.copy_(x.detach())
    out = [copy]
    for lib in libs:
        if lib not in ("snnedu", "naive", "spikingjelly") or (lib != "snnedu" and p["neuron"] != "LIF"):
            continue
        backend = peers.backends(lib, device)[-1] if lib == "snnedu" else peers.backends(lib, device)[0]
        for phase in PHASES:
            v = Variant(lib, backend, activate=peers.activator(lib, backend, device), phase=phase)
            if lib != "snnedu" and device.type == "cpu" and x.numel() > PEER_MAX_ELEMENTS_CPU:
                v.status, v.message = "unavailable", (f"not run: T*B*N = {x.numel() / 2 ** 20:.0f} M elements "
                                                      f"is above {PEER_MAX_ELEMENTS_CPU // 2 ** 20} M (per-step "
                                                      f"loop's memory on CPU)")
                out.append(v)
                continue
            try:
                run = peers.neuron_runner(p["neuron"], lib, p["N"], device)
                v.activate()
            except NotInstalled as e:
                v.status, v.message = "not installed", str(e)
                out.append(v)
                continue
            except Exception as e:  # noqa: BLE001
                v.status, v.message = "unavailable", f"{type(e).__name__}: {e}"
                out.append(v)
                continue
            v.step, v.prepare = _phase_step(phase, run, x)
            out.append(v)
    return out


def _phase_step(phase: str, run, x: torch.Tensor):
    """``(step, prepare)`` timing ``phase`` of ``run`` on ``x`` (loss = sum of the output)."""
    if phase == "fwd":
        def fwd():
            run(x)
        return fwd, None
    if phase == "fwd+bwd":
        def both():
            x.grad = None
            run(x).sum().backward()
        return both, None
    held = {}

    def prepare():
        x.grad = None
        held["loss"] = run(x).sum()

    def bwd():
        held.pop("loss").backward()
    return bwd, prepare


def case_name(group: str, p: dict) -> str:
    if group == "roofline":
        return f"{p['neuron']} T={p['T']} B={p['B']} N={p['N']}"
    if group == "cpu":
        return f"LIF fwd+bwd T={p['T']} B={p['B']} N={p['N']}"
    if group == "memory":
        return f"Linear+LIF fwd+bwd T={p['T']} B={p['B']} N={p['N']}"
    if group == "e2e":
        return e2e.case_name(p)
    s = DVSSetting(**p)
    return (f"PLIF DVS net train step T={s.T} B={s.batch} {s.size}x{s.size} C={s.channels} "
            f"FC {s.fc_in}->{s.hidden}->{10 * s.n_classes}")


def build(group: str, p: dict, library: str, backend: Optional[str], device: torch.device) -> Variant:
    """The :class:`Variant` of one case; ``status`` says why it cannot run when it cannot."""
    v = Variant(library, backend, activate=peers.activator(library, backend, device))
    g = torch.Generator().manual_seed(0)
    try:
        if group in ("cpu", "memory"):
            run = peers.lif_runner(library, device)
            T, B, N = p["T"], p["B"], p["N"]
            if group == "cpu":
                x = (torch.randn(T, B, N, generator=g) * 1.5 + 0.5).to(device).requires_grad_(True)

                def step():
                    x.grad = None
                    run(x).sum().backward()
            else:
                torch.manual_seed(0)
                lin = nn.Linear(N, N).to(device)
                x = torch.randn(T, B, N, generator=g).to(device)

                def step():
                    lin.zero_grad(set_to_none=True)
                    run(lin(x)).sum().backward()
        else:
            s = DVSSetting(**p)
            torch.manual_seed(0)
            net, reset = peers.dvs_net(library, s, device)
            x = torch.rand(s.T, s.batch, 2, s.size, s.size, generator=g).to(device)
            y = torch.randint(0, s.n_classes, (s.batch,), generator=g).to(device)
            step = peers.train_step(net, reset, x, y, s.n_classes)
        try:  # after the library's import: a backend its switch refuses marks the row
            v.activate()
        except NotInstalled:
            raise
        except Exception as e:  # noqa: BLE001
            raise Unavailable(f"{type(e).__name__}: {e}") from None
        v.step = step
    except NotInstalled as e:
        v.status, v.message = "not installed", str(e)
    except Unavailable as e:
        v.status, v.message = "unavailable", str(e)
    return v


def variants_of(group: str, p: dict, libs, device: torch.device) -> List[Variant]:
    if group == "roofline":
        return roofline_variants(p, libs, device)
    if group == "e2e":
        return e2e.variants(p, libs, device)
    out = []
    for lib in libs:
        if group == "dvs" and lib not in ("snnedu", "spikingjelly"):
            continue
        for backend in peers.backends(lib, device):
            out.append(build(group, p, lib, backend, device))
    return out


# -- measuring -------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _try(v: Variant, device: torch.device) -> bool:
    """Run one (warm-up) step; a failure marks the variant unavailable instead of ending the run."""
    try:
        v.activate()
        if v.prepare is not None:
            v.prepare()
        v.step()
        _sync(device)
        return True
    except Exception as e:  # noqa: BLE001 - a peer's backend may fail in any way (no compiler, ...)
        v.status, v.message, v.step = "unavailable", f"{type(e).__name__}: {str(e).splitlines()[0][:200]}", None
        return False


def time_interleaved(variants: List[Variant], repeats: int, device: torch.device) -> Dict[int, List[float]]:
    ok = [v for v in variants if v.status == "ok" and _try(v, device)]
    times: Dict[int, List[float]] = {id(v): [] for v in ok}
    for _ in range(repeats):
        for v in ok:
            v.activate()
            if v.prepare is not None:  # untimed (the forward pass of a timed backward)
                v.prepare()
            gc.collect()
            _sync(device)
            t0 = time.perf_counter()
            v.step()
            _sync(device)
            times[id(v)].append(time.perf_counter() - t0)
    return times


def cuda_peak(v: Variant, device: torch.device) -> Optional[int]:
    v.activate()
    gc.collect()
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    v.step()
    _sync(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def _status_kib(field: str) -> Optional[int]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := current VmRSS
        return _status_kib("VmHWM") is not None
    except OSError:
        return False


def probe(spec: dict) -> dict:
    """In a fresh process: build one variant and measure how far one step raises the resident set.

    With a resettable peak (``/proc/self/clear_refs``): one warm-up step first (lazy imports, JIT
    compilation, optimizer state stay out), then the growth of ``VmHWM`` over ``VmRSS`` during one
    step. Without: the growth of ``ru_maxrss`` over the first step (one-time costs included).
    """
    device = torch.device(spec["device"])
    torch.set_num_threads(spec["threads"])
    v = build(spec["group"], spec["params"], spec["library"], spec["backend"], device)
    if v.status != "ok":
        return {"status": v.status, "message": v.message}
    resettable = _reset_peak_rss()
    if resettable:
        v.activate()
        v.step()
    gc.collect()
    if resettable and _reset_peak_rss():
        method, base = "VmHWM - VmRSS over one step after a warm-up", _status_kib("VmRSS")
    else:
        method, base = "ru_maxrss growth over the first step", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    v.activate()
    v.step()
    peak = _status_kib("VmHWM") if method.startswith("VmHWM") else resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss
    return {"status": "ok", "peak_bytes": max(0, peak - base) * 1024, "method": method}


def cpu_peak(group: str, p: dict, v: Variant, args, device: torch.device) -> dict:
    spec = {"group": group, "params": p, "library": v.library, "backend": v.backend, "device": str(device),
            "threads": args.threads}
    # glibc returns every block above the mmap threshold to the kernel on free(); a fixed, small
    # threshold makes RSS follow the tensors alive (no heap caching between the warm-up and the step)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="65536",
               GLIBC_TUNABLES="glibc.malloc.mmap_threshold=65536:glibc.malloc.trim_threshold=65536")
    try:
        r = subprocess.run([sys.executable, "-m", "benchmarks.run", "--probe", json.dumps(spec)],
                           cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True,
                           text=True, timeout=args.probe_timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "message": f"memory probe timed out after {args.probe_timeout} s"}
    for line in r.stdout.splitlines():
        if line.startswith(PROBE_TAG):
            return json.loads(line[len(PROBE_TAG):])
    tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
    return {"status": "error", "message": f"memory probe failed: {tail[0][:200]}"}


# -- machine ---------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    name = f"{platform.node()} ({cpu_model()}" + (f", {gpu})" if gpu else ")")
    return {"machine": name, "host": platform.node(), "cpu": cpu_model(), "gpu": gpu,
            "device": gpu or f"CPU ({cpu_model()})", "logical_cpus": os.cpu_count()}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "machine"


# -- report ----------------------------------------------------------------------------------------------
def _fmt_bytes(b: Optional[int]) -> str:
    if b is None:
        return "—"
    if b >= 2 ** 30:
        return f"{b / 2 ** 30:.2f} GiB"
    if b >= 2 ** 20:
        return f"{b / 2 ** 20:.1f} MiB"
    return f"{b / 2 ** 10:.0f} KiB"


def _fmt_time(t: Optional[float]) -> str:
    return "—" if t is None else (f"{t:.3f}" if t >= 0.01 else f"{t:.2e}")


ROOFLINE_MARK = "<!-- roofline group: written by `python -m benchmarks.run --only roofline` -->"
E2E_MARK = "<!-- e2e group: written by `python -m benchmarks.run --only e2e` -->"
#: the groups with a table of their own, below the comparison table, in this order, after their marks
SECTIONS = {"e2e": E2E_MARK, "roofline": ROOFLINE_MARK}


def _sections(result: dict) -> Dict[str, str]:
    """``{"main" or a group of SECTIONS: its markdown}`` for the rows ``result`` has."""
    out = {}
    main = [r for r in result["rows"] if r["group"] not in SECTIONS]
    if main or not result["rows"]:
        out["main"] = _markdown_main(result, main)
    for group, render in (("e2e", markdown_e2e), ("roofline", markdown_roofline)):
        rows = [r for r in result["rows"] if r["group"] == group]
        if rows:
            out[group] = render(result, rows)
    return out


def _join(sections: Dict[str, str]) -> str:
    parts = [sections["main"].rstrip("\n") + "\n"] if sections.get("main", "").strip() else []
    for group, mark in SECTIONS.items():
        if sections.get(group, "").strip():
            parts.append(mark + "\n\n" + sections[group].strip("\n") + "\n")
    return "\n".join(parts)


def _split(text: str) -> Dict[str, str]:
    """The sections of a ``latest.md`` written by :func:`_join` (the inverse)."""
    marks = {mark: group for group, mark in SECTIONS.items()}
    out, group, chunk = {}, "main", []
    for line in text.splitlines(keepends=True):
        if line.strip() in marks:
            out[group] = "".join(chunk)
            group, chunk = marks[line.strip()], []
        else:
            chunk.append(line)
    out[group] = "".join(chunk)
    return {k: v for k, v in out.items() if v.strip()}


def markdown(result: dict) -> str:
    """The tables of ``result``: the comparison table of its cpu/memory/dvs rows, then (when it has any)
    the e2e and roofline tables of those groups' rows, each after its mark (:data:`SECTIONS`)."""
    return _join(_sections(result))


def _machine_line(m: dict) -> str:
    return (f"**Machine:** {m['machine']} · **device:** {m['device']} · **threads:** {m['threads']} · "
            f"**torch** {m['torch']} · **date:** {m['date']}" + (" · **quick smoke run**" if m["quick"] else ""))


def _load_note(m: dict) -> str:
    return (f"Load average (1 min) at start / end: {m['load_start']} / {m['load_end']} on "
            f"{m['machine_info']['logical_cpus']} logical CPUs"
            + (" — other work was running, so times are indicative." if m["loaded"] else "."))


def _ms(t: Optional[float]) -> str:
    return "—" if t is None else (f"{t * 1e3:.3g}" if t < 1 else f"{t * 1e3:.0f}")


def _bn(p: dict) -> str:
    bn = p["B"] * p["N"]
    return (f"{bn / 2 ** 20:.0f} M" if bn >= 2 ** 20 else str(bn)) + f" ({p['B']}×{p['N']})"


def markdown_roofline(result: dict, rows: List[dict]) -> str:
    """One line per (case, library): forward, backward and forward+backward times, their fractions of
    the copy roofline and the forward+backward ratio to SpikingJelly's torch backend."""
    m = result["meta"]
    lines = [
        "## Fused neurons against the copy roofline", "",
        _machine_line(m), "",
        f"Median of {m['repeats']} steps after one warm-up; in each case the copy, and the forward, backward "
        f"and forward+backward of every library, are timed interleaved in the same process (backward: the "
        f"forward pass runs untimed just before). snnedu runs its fused backend. Byte model: {BYTE_MODEL}. "
        f"Ratio = forward+backward time / SpikingJelly `torch` backend's (LIF only: the other neurons are "
        f"snnedu's alone here). " + _load_note(m), "",
        "| case (neuron, T, B×N; copy of the input) | library (backend) | fwd / bwd / fwd+bwd ms "
        "| roofline fwd / bwd / fwd+bwd | ratio to SJ torch |",
        "|---|---|---|---|---|",
    ]
    by_case: Dict[str, List[dict]] = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    for case, rs in by_case.items():
        p = rs[0]["params"]
        copy = next((r for r in rs if r["phase"] == "copy"), None)
        copy_text = "copy —"
        if copy and copy["time_s"]:
            gbs = roofline_bytes("copy", p) / copy["time_s"] / 1e9
            copy_text = f"copy {_ms(copy['time_s'])} ms, {gbs:.1f} GB/s"
        libs = []
        for r in rs:
            if r["phase"] != "copy" and (r["library"], r["backend"]) not in libs:
                libs.append((r["library"], r["backend"]))
        for lib, backend in libs:
            ph = {r["phase"]: r for r in rs if (r["library"], r["backend"]) == (lib, backend)}
            if all(ph[k]["status"] != "ok" for k in ph):
                cells = [next(iter(ph.values()))["status"], "—", "—"]
            else:
                times = " / ".join(_ms(ph[k]["time_s"]) if k in ph else "—" for k in PHASES)
                fractions = " / ".join("—" if k not in ph or ph[k]["roofline_fraction"] is None
                                       else f"{100 * ph[k]['roofline_fraction']:.0f}" for k in PHASES) + " %"
                ratio = ph.get("fwd+bwd", {}).get("ratio_to_sj_torch")
                cells = [times, fractions, "—" if ratio is None else f"{ratio:.2f}"]
            lines.append(f"| {p['neuron']} T={p['T']}, {_bn(p)}; {copy_text} | {lib} ({backend}) | "
                         + " | ".join(cells) + " |")
    lines += ["", "Neurons: " + "; ".join(f"{k}: {v}" for k, v in peers.ROOFLINE_NEURONS.items()) + "."]
    skipped = [r for r in rows if r["status"] != "ok" and r["message"]]
    if skipped:
        lines += [""] + sorted({f"- {r['library']} ({r['backend']}), {r['case']}: {r['status']} — {r['message']}"
                                for r in skipped})
    return "\n".join(lines) + "\n"


def markdown_e2e(result: dict, rows: List[dict]) -> str:
    """One line per (network, variant): training-step time, samples/s, ratio to the SpikingJelly twin and
    the share of the step spent in neurons (:mod:`benchmarks.e2e`)."""
    m = result["meta"]
    lines = [
        "## Chapter networks end to end: one training step", "",
        _machine_line(m), "",
        f"Median of {m['repeats']} training steps (forward, loss, backward, Adam) after one warm-up, the variants "
        f"of a network timed interleaved in the same process. The SpikingJelly twin is the same network object "
        f"with each snnedu neuron replaced by SpikingJelly's multi-step neuron of the same equations (torch "
        f"backend; an MLF unit is K `LIFNode`s summed), so only the neurons differ. The *no neurons* row is the "
        f"network with `nn.Identity` for every neuron: share in neurons = 1 − its time / the row's time. "
        f"Ratio = time / the SpikingJelly twin's. " + _load_note(m), "",
        "| network, step | variant | step ms | samples/s | ratio to SJ twin | share in neurons |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        label = "no neurons (nn.Identity)" if r.get("phase") else f"{r['library']} ({r['backend']})"
        if r["status"] != "ok":
            cells = [r["status"], "—", "—", "—"]
        else:
            ratio, share = r.get("ratio_to_sj_torch"), r.get("neuron_share")
            cells = [_ms(r["time_s"]), f"{r['samples_per_s']:.3g}" if r.get("samples_per_s") else "—",
                     "—" if ratio is None else f"{ratio:.2f}", "—" if share is None else f"{100 * share:.0f} %"]
        lines.append(f"| {r['case']} | {label} | " + " | ".join(cells) + " |")
    skipped = [r for r in rows if r["status"] != "ok" and r["message"]]
    if skipped:
        lines += [""] + sorted({f"- {r['library']} ({r['backend']}), {r['case']}: {r['status']} — {r['message']}"
                                for r in skipped})
    return "\n".join(lines) + "\n"


def write_latest(out: Path, result: dict) -> Path:
    """``latest.md``: the new tables replace the old ones of the same kind and the others stay (a run of
    the roofline group alone keeps the comparison and e2e tables, a default run keeps the other two)."""
    latest = out / "latest.md"
    sections = _split(latest.read_text()) if latest.exists() else {}
    sections.update(_sections(result))
    latest.write_text(_join(sections))
    return latest


def _markdown_main(result: dict, rows: List[dict]) -> str:
    m = result["meta"]
    lines = [
        f"**Machine:** {m['machine']} · **device:** {m['device']} · **threads:** {m['threads']} · "
        f"**torch** {m['torch']} · **date:** {m['date']}" + (" · **quick smoke run**" if m["quick"] else ""),
        "",
        f"Median of {m['repeats']} forward+backward steps (training steps for the DVS net) after one warm-up; "
        f"all libraries timed in the same process, interleaved. Ratio = time / SpikingJelly `torch` backend "
        f"(below 1: faster). Peak memory: {m['memory_method']}. Load average (1 min) at start / end: "
        f"{m['load_start']} / {m['load_end']} on {m['machine_info']['logical_cpus']} logical CPUs"
        + (" — other work was running, so times are indicative." if m["loaded"] else "."),
        "",
        "| case | library (backend) | version | time (s) | ratio to SJ torch | samples/s | peak memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["status"] == "ok":
            ratio = "—" if r["ratio_to_sj_torch"] is None else f"{r['ratio_to_sj_torch']:.2f}"
            sps = "—" if r.get("samples_per_s") is None else f"{r['samples_per_s']:.3g}"
            cells = [_fmt_time(r["time_s"]), ratio, sps, _fmt_bytes(r["peak_memory_bytes"])]
        else:
            cells = [r["status"], "—", "—", "—"]
        lines.append(f"| {r['case']} | {r['library']} ({r['backend']}) | {r['version'] or '—'} | "
                     + " | ".join(cells) + " |")
    notes = sorted({(r["library"], r["note"]) for r in rows if r["note"]})
    if notes:
        lines += ["", "Neuron mapping: " + "; ".join(f"{lib}: {n}" for lib, n in notes) + "."]
    skipped = [r for r in rows if r["status"] != "ok" and r["message"]]
    if skipped:
        lines += [""] + [f"- {r['library']} ({r['backend']}), {r['case']}: {r['status']} — {r['message']}"
                         for r in skipped]
    return "\n".join(lines) + "\n"


def _load() -> Optional[float]:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test of the harness (seconds)")
    ap.add_argument("--only", default=",".join(GROUPS),
                    help="comma list of groups: cpu, memory, dvs (the default), roofline, e2e")
    ap.add_argument("--repeats", type=int, help="timed steps per variant (default 5; --quick: 2)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--libs", default=",".join(peers.LIBRARIES), help="comma list of libraries to measure")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    ap.add_argument("--on-sizes", help="N of the Open Neuromorphic group, e.g. 4096,8192,16384")
    ap.add_argument("--nets", help=f"networks of the e2e group (default all: {', '.join(e2e.NETWORKS)})")
    ap.add_argument("--dvs-batch", type=int, help="batch of the DVS group (default 16 on CUDA, 4 on CPU)")
    ap.add_argument("--out", default=str(RESULTS), help="results folder (default benchmarks/results)")
    ap.add_argument("--render", metavar="JSON", help="only rewrite the .md (and latest.md) of a results .json")
    ap.add_argument("--probe-timeout", type=int, default=1800, help=argparse.SUPPRESS)
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    # The same thread budget for everyone: numba (snnedu's CPU kernels) sizes its pool when first
    # imported, and a pool larger than torch's slows torch's own OpenMP work down several times.
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    peers.use_bench_extra()

    if args.probe:  # internal: one memory measurement in this fresh process
        print(PROBE_TAG + json.dumps(probe(json.loads(args.probe))), flush=True)
        return 0
    if args.render:  # the table again from stored numbers (after a change of the layout)
        src = Path(args.render)
        result = json.loads(src.read_text())
        md = markdown(result)
        src.with_suffix(".md").write_text(md)
        if not result["meta"]["quick"]:
            write_latest(src.parent, result)
        print(f"wrote {src.with_suffix('.md')}")
        return 0

    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    libs = [l.strip() for l in args.libs.split(",") if l.strip()]
    for name, given, allowed in (("--only", groups, ALL_GROUPS), ("--libs", libs, peers.LIBRARIES)):
        bad = [x for x in given if x not in allowed]
        if bad or not given:
            ap.error(f"{name}: unknown {bad or 'empty'}; allowed: {', '.join(allowed)}")
    unknown = [k for k in (args.nets or "").split(",") if k.strip() and k.strip() not in e2e.NETWORKS]
    if unknown:
        ap.error(f"--nets: unknown {unknown}; allowed: {', '.join(e2e.NETWORKS)}")
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if repeats < 1 or args.threads < 1:
        ap.error("--repeats and --threads must be >= 1")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    info = machine_info(device)
    now = _dt.datetime.now()
    meta = {"machine": info["machine"], "device": info["device"], "threads": args.threads,
            "torch": torch.__version__, "date": now.strftime("%Y-%m-%d %H:%M"), "quick": args.quick,
            "repeats": repeats, "groups": groups, "python": platform.python_version(),
            "memory_method": ("not measured" if args.no_memory else
                              "torch.cuda.max_memory_allocated over one step, minus what was allocated before"
                              if device.type == "cuda" else
                              "growth of the peak RSS (VmHWM) over one step after a warm-up, in a fresh process"),
            "load_start": _load(), "machine_info": info, "bench_extra": str(peers.bench_extra_dir()),
            "versions": {lib: peers.version(lib) for lib in peers.LIBRARIES if lib != "naive"}}
    print(f"snnedu benchmarks on {info['machine']}, {info['device']}, {args.threads} threads, "
          f"torch {torch.__version__}", flush=True)

    rows, snnedu_backend = [], peers.current_backend()
    try:
        for group in groups:
            for p in cases(group, args, device):
                name = case_name(group, p)
                variants = variants_of(group, p, libs, device)
                times = time_interleaved(variants, repeats, device)
                def med(v):
                    return statistics.median(times[id(v)]) if id(v) in times else None

                refs = {v.phase: med(v) for v in variants if (v.library, v.backend) == REFERENCE}
                copy_t = next((med(v) for v in variants if v.phase == "copy"), None)
                bare_t = next((med(v) for v in variants if v.phase == "no neurons"), None)
                for v in variants:
                    t, ref = med(v), refs.get(v.phase)
                    row = {"group": group, "case": name, "params": p, "library": v.library,
                           "backend": peers.backend_label(v.library, v.backend), "version": peers.version(v.library),
                           "status": v.status, "message": v.message, "note": peers.NOTES.get(v.library, ""),
                           "time_s": t, "times_s": times.get(id(v)), "ratio_to_sj_torch": (t / ref if t and ref else None),
                           "samples_per_s": (p["batch"] / t if group in ("dvs", "e2e") and t else None),
                           "peak_memory_bytes": None, "device": info["device"], "threads": args.threads,
                           "torch": torch.__version__, "date": meta["date"], "machine": info["machine"]}
                    if group == "roofline":
                        row.update(phase=v.phase, bytes=roofline_bytes(v.phase, p), copy_time_s=copy_t,
                                   roofline_fraction=(roofline_fraction(v.phase, p, t, copy_t)
                                                      if t and copy_t else None))
                        if v.phase == "copy":
                            row["ratio_to_sj_torch"] = None
                    elif group == "e2e":
                        row.update(phase=v.phase, bare_time_s=bare_t,
                                   neuron_share=None if v.phase else e2e.neuron_share(t, bare_t))
                        if v.phase:
                            row["ratio_to_sj_torch"] = None
                    elif v.status == "ok" and not args.no_memory:
                        if device.type == "cuda":
                            row["peak_memory_bytes"] = cuda_peak(v, device)
                        else:
                            pr = cpu_peak(group, p, v, args, device)
                            row["peak_memory_bytes"] = pr.get("peak_bytes")
                            if pr["status"] != "ok":
                                row["message"] = pr.get("message", "")
                    rows.append(row)
                    shown = "—" if t is None else f"{t:.4f} s"
                    mem = _fmt_bytes(row["peak_memory_bytes"])
                    label = v.label + (f" {v.phase}" if v.phase else "")
                    if row.get("roofline_fraction") is not None:
                        shown += f" ({100 * row['roofline_fraction']:.0f} % of copy)"
                    if row.get("neuron_share") is not None:
                        shown += f" ({100 * row['neuron_share']:.0f} % in neurons)"
                    print(f"  {name} | {label}: {shown if v.status == 'ok' else v.status} | peak {mem}",
                          flush=True)
                del variants
                gc.collect()
    finally:
        peers.restore_backend(snnedu_backend)

    meta["load_end"] = _load()
    meta["loaded"] = meta["load_start"] is not None and meta["load_start"] > 0.5  # busy before we started
    result = {"meta": meta, "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # a run of other groups than the default ones names them, so it never overwrites that day's default run
    only = "" if set(groups) == set(GROUPS) else "_" + "-".join(groups)
    stem = f"{now.strftime('%Y-%m-%d')}_{_slug(info['host'])}-{device.type}{only}" + ("_quick" if args.quick else "")
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    md = markdown(result)
    (out / f"{stem}.md").write_text(md)
    written = [out / f"{stem}.json", out / f"{stem}.md"]
    if not args.quick:
        written.append(write_latest(out, result))
    print("wrote " + ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
