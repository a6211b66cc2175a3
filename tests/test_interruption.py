"""Nothing is lost when a run is killed (issue #7): SIGKILL at random points, then resume.

* DVS preprocessing (frame cache) killed several times -- while reading a recording, between samples,
  half-way through writing a sample, half-way through assembling the HDF5 file, between the rename
  and the clean-up, half-way through the clean-up -- then finished: the caches equal an uninterrupted
  build bit for bit, nothing temporary is left, and no finished-looking ``.h5`` is ever incomplete.
* Training killed mid-epoch (at random batches) and inside a checkpoint write, then rerun: the final
  weights, optimizer state and history equal those of an uninterrupted run exactly.
* Checkpoints are written through a temporary file and a rename and read with ``weights_only=True``:
  pickled code is refused without running, a truncated file is a :class:`TrainingError`.

Kills are triggered by events, never by elapsed time (issue #15): a child reports what it does to an
events file and, at the randomly drawn point, reports that it has *parked* and waits; the test reads
that and sends SIGKILL. Where a kill lands is therefore the same on a quiet and on a loaded machine.

The children are forked from one fresh "zygote" interpreter that has imported torch and snnedu once
(paying the import once, not once per kill); each child runs a script file from the top, so a rerun
only knows what is on disk. The kill counts go to ``_build/reliability/interruption_counts.json``.
"""
from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import snnedu
import snnedu.train as train_mod
from snnedu._io import atomic_write
from snnedu.data.frame_cache import FrameCache
from snnedu.train import TrainingError, load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
COUNTS_FILE = REPO / "_build" / "reliability" / "interruption_counts.json"
WAIT_LIMIT_S = 900.0  # only a hang guard: a child that runs longer has hung (nothing is timed)


def _record_counts(name: str, figures: dict) -> None:
    try:
        allc = json.loads(COUNTS_FILE.read_text())
    except (OSError, ValueError):
        allc = {}
    allc[name] = figures
    atomic_write(COUNTS_FILE, lambda f: f.write((json.dumps(allc, indent=1, sort_keys=True) + "\n").encode()),
                 durable=False)
    print(f"\ninterruption counts [{name}]: {json.dumps(figures, sort_keys=True)}")


# --------------------------------------------------------------------------------------------------
# the zygote: one fresh interpreter with torch + snnedu imported; forks a child per run
# --------------------------------------------------------------------------------------------------
ZYGOTE = textwrap.dedent("""
    import json, os, runpy, sys, traceback
    import torch, h5py, snnedu, snnedu.train, snnedu.data.dvs   # imported once, inherited by the children
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])        # its lazy imports (torch._dynamo) too;
    # nothing here may start a thread pool (OpenMP, numba): a forked child could not use it
    print("ready", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(log, 1)
                os.dup2(log, 2)
                sys.argv = [req["script"], *req["args"]]
                runpy.run_path(req["script"], run_name="__main__")
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"status": os.waitstatus_to_exitcode(status)}), flush=True)
""")


class Zygote:
    """Starts script runs as forked children of one pre-imported interpreter; we kill them by pid."""

    def __init__(self, workdir: Path):
        env = {**os.environ, "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "SNNEDU_DATA": str(workdir / "snnedu_data"), "PYTHONPATH": str(REPO)}
        self.err = open(workdir / "zygote.err", "wb")
        self.proc = subprocess.Popen([sys.executable, "-u", "-c", ZYGOTE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.err, env=env, cwd=workdir)
        self._buf = b""
        line = self._readline(WAIT_LIMIT_S)
        assert line == "ready", f"zygote did not start: {line!r} {(workdir / 'zygote.err').read_text()}"

    def _readline(self, timeout: float):
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("the zygote died")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode().strip()

    def start(self, script: Path, args, log: Path) -> int:
        req = {"script": str(script), "args": [str(a) for a in args], "log": str(log)}
        self.proc.stdin.write((json.dumps(req) + "\n").encode())
        self.proc.stdin.flush()
        return json.loads(self._readline(WAIT_LIMIT_S))["pid"]

    def status(self, timeout: float):
        """The child's exit code (``-9`` when SIGKILLed), or None while it still runs."""
        line = self._readline(timeout)
        return None if line is None else json.loads(line)["status"]

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            self.err.close()


@pytest.fixture(scope="module")
def zygote(tmp_path_factory):
    z = Zygote(tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


def _run(zyg: Zygote, script: Path, args, log: Path, events: Path = None, kill_when=None):
    """Run ``script`` in a child; ``kill_when(events_bytes) -> bool`` is polled every ~2 ms and the child
    gets SIGKILL the first time it says True (a decision on what the child reported, never on the time
    it took). Returns ``(exit code, kill sent, events, seconds it ran)``."""
    if events is not None:
        events.write_bytes(b"")
    pid = zyg.start(script, args, log)
    t0 = time.monotonic()
    sent = False
    while True:
        code = zyg.status(0.002)
        if code is not None:
            break
        elapsed = time.monotonic() - t0
        if elapsed > WAIT_LIMIT_S:
            os.kill(pid, signal.SIGKILL)
            zyg.status(WAIT_LIMIT_S)
            pytest.fail(f"{script.name} hung for {elapsed:.0f} s; log:\n{log.read_text()[-3000:]}")
        if not sent and kill_when is not None:
            ev = events.read_bytes() if events is not None else b""
            if kill_when(ev):
                os.kill(pid, signal.SIGKILL)  # our own child, by pid (running a moment ago)
                sent = True
    ev = events.read_bytes() if events is not None else b""
    return code, sent, ev, time.monotonic() - t0


# --------------------------------------------------------------------------------------------------
# 1. DVS preprocessing killed at random points
# --------------------------------------------------------------------------------------------------
PREPROCESS_SCRIPT = textwrap.dedent("""
    # events: L = a recording is being read, s = a sample's part file written, w = half-way through
    #         writing a part file, A = assembly starts, a = half-way through the assembly (after n
    #         samples), R = assembled and renamed, K = half-way through the clean-up, D = done,
    #         P = parked: the child stops right after the event before it and waits to be killed.
    # The test kills a child only when it reads P, so where a kill lands never depends on timing.
    import os, shutil, signal, sys
    from pathlib import Path
    import snnedu.data.dvs as dvs
    import snnedu.data.frame_cache as fc
    from snnedu.data.dvs import FrameSetting, preprocess

    root, cache_dir, events, mode, n = sys.argv[1:6]
    n = int(n)
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    emit = lambda c: os.write(fd, c)
    count = {}

    def park(c):  # report the event, then wait for the test's SIGKILL
        emit(c + b"P")
        while True:
            signal.pause()

    def nth(c):  # True at the n-th occurrence of event c in this run
        count[c] = count.get(c, 0) + 1
        return count[c] == n

    real_assemble = fc._assemble
    def assemble(*a, **k):
        emit(b"A")
        real_assemble(*a, **k)
        if mode == "after-rename":
            park(b"R")
        emit(b"R")
    fc._assemble = assemble

    if mode == "reading":  # inside the read of the n-th recording of this run
        real_read = dvs.read_aedat31
        def read(*a, **k):
            if nth(b"L"):
                park(b"L")
            return real_read(*a, **k)
        dvs.read_aedat31 = read

    if mode == "mid-part":  # half-way through writing the n-th part file of this run
        real_save = fc._atomic_save_npy
        def save(path, array):
            if not nth(b"w"):
                return real_save(path, array)
            import io
            buf = io.BytesIO()
            fc.np.save(buf, array, allow_pickle=False)
            def half(f):
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                park(b"w")
            fc.atomic_write(path, half)
        fc._atomic_save_npy = save

    if mode == "assembly":  # half-way through writing the HDF5 file (after n samples)
        import types, zlib
        def crc32(data, *a):
            if nth(b"a"):
                park(b"a")
            return zlib.crc32(data, *a)
        fc.zlib = types.SimpleNamespace(crc32=crc32)

    if mode == "cleanup":  # after the rename, half-way through removing the parts folder
        real_rmtree = shutil.rmtree
        def rmtree(p, *a, **k):
            p = Path(p)
            if p.name.endswith(".parts"):
                for f in sorted(p.iterdir())[:n]:
                    f.unlink()
                park(b"K")
            return real_rmtree(p, *a, **k)
        shutil.rmtree = rmtree

    def on_sample(i):
        emit(b"s")
        if mode == "samples" and nth(b"s"):
            park(b"s")

    preprocess("dvs128-gesture", root, FrameSetting(16, size=64), cache_dir=cache_dir, progress=False,
               on_sample=on_sample)
    emit(b"D")
""")

PHASES = {"L": "reading", "s": "samples", "w": "samples (mid-write)", "a": "assembly",
          "R": "after rename", "K": "clean-up"}


def _h5_content(path: Path) -> dict:
    with h5py.File(path, "r") as f:
        return {"attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()},
                **{k: f[k][()] for k in ("frames", "labels", "checksums")}}


def _check_finished_caches(cache_dir: Path, ref: dict) -> list:
    """Every ``.h5`` under its final name must be a complete, verified copy of the reference."""
    problems = []
    for p in sorted(cache_dir.glob("*.h5")):
        if p.name not in ref:
            problems.append(f"{p.name}: unexpected finished-looking file")
            continue
        want = ref[p.name]
        try:
            cache = FrameCache(p, json.loads(want["attrs"]["key"]))
            for i in range(len(want["labels"])):
                frames, label = cache[i]  # checks the sample's CRC-32
                if not np.array_equal(frames, want["frames"][i]) or label != want["labels"][i]:
                    problems.append(f"{p.name}: sample {i} differs from the uninterrupted build")
            cache.close()
            if len(cache) != len(want["labels"]):
                problems.append(f"{p.name}: {len(cache)} samples, expected {len(want['labels'])}")
        except Exception as e:  # noqa: BLE001 -- any failure to read it is a finding
            problems.append(f"{p.name}: {type(e).__name__}: {e}")
    return problems


def test_preprocessing_killed_at_random_points_resumes_to_the_identical_cache(tmp_path, zygote):
    from snnedu.data.standins import write_gesture_standin

    rng = random.Random(20240607)
    root = write_gesture_standin(tmp_path / "rec", n_train_users=3, n_test_users=1, lightings=("led", "lab"),
                                 size=32, seed=3, progress=False).parent  # 8 recordings, 66 + 22 samples
    script = tmp_path / "preprocess_child.py"
    script.write_text(PREPROCESS_SCRIPT)
    events, log = tmp_path / "events", tmp_path / "child.log"
    per_file, split_sizes = 11, (66, 22)

    def go(cache_dir, mode="plain", n=0):
        code, sent, ev, _ = _run(zygote, script, [root, cache_dir, events, mode, n], log, events,
                                 lambda ev: ev.endswith(b"P"))  # parked: kill it there
        return code, sent, ev

    # an uninterrupted reference build in its own folder
    ref_dir = tmp_path / "reference"
    code, _, ev = go(ref_dir)
    assert code == 0 and ev.endswith(b"D"), log.read_text()[-3000:]
    ev = ev.decode()
    assert ev.count("s") == 88 and ev.count("A") == 2 and ev.count("R") == 2 and "P" not in ev
    ref = {p.name: _h5_content(p) for p in sorted(ref_dir.glob("*.h5"))}
    assert len(ref) == 2 and sorted(os.listdir(ref_dir)) == sorted(ref)  # train + test, nothing else

    # the interrupted build: each restart resumes from what the killed one left on disk. Every kill is
    # triggered by an event the child reports (it parks right after it), so each lands in the phase it
    # was aimed at whatever the machine's load; the random draws pick where inside each phase.
    cache_dir = tmp_path / "cache"
    plan = ["reading", "samples", "mid-part", "assembly", "after-rename",  # the train split
            "reading", "samples", "cleanup"]                               # the test split
    parts_done, caches_done = 0, 0  # what is durable on disk, as told by the children's events
    rounds, violations, temporaries_seen = [], [], set()
    for kind in plan:
        split_left = split_sizes[0] - parts_done if caches_done == 0 else sum(split_sizes) - parts_done
        n = {"reading": lambda: rng.randint(1, max(1, -(-split_left // per_file))),
             "samples": lambda: rng.randint(1, max(1, min(25, split_left))),
             "mid-part": lambda: rng.randint(1, max(1, min(10, split_left))),
             "assembly": lambda: rng.randint(1, 20),
             "after-rename": lambda: 0,
             "cleanup": lambda: rng.randint(0, 20)}[kind]()
        code, sent, ev = go(cache_dir, kind, n)
        landed = code == -signal.SIGKILL
        assert landed or code == 0, f"round {kind}: exit {code}\n{log.read_text()[-3000:]}"
        evs = ev.decode()
        phase = PHASES.get(evs[-2:-1], "?") if evs.endswith("P") else "finished"
        parts_done += ev.count(b"s")
        caches_done += ev.count(b"R")
        rounds.append({"kind": kind, "n": n, "landed": landed, "phase": phase if landed else "finished"})
        violations += [f"after round {len(rounds)} ({kind}, {phase}): {p}"
                       for p in _check_finished_caches(cache_dir, ref)]
        temporaries_seen.update(p.name for p in cache_dir.rglob("*") if ".tmp" in p.name)
    code, _, ev = go(cache_dir)  # let it finish
    assert code == 0 and ev.endswith(b"D"), log.read_text()[-3000:]

    landed = [r for r in rounds if r["landed"]]
    figures = {"kills_attempted": len(rounds), "kills_landed": len(landed),
               "runs_survived_kill": len(rounds) - len(landed),
               "landed_by_phase": {ph: sum(r["phase"] == ph for r in landed)
                                   for ph in sorted({r["phase"] for r in landed})},
               "rounds": rounds, "temporary_files_seen_between_kills": len(temporaries_seen)}
    _record_counts("preprocessing", figures)

    assert not violations, violations  # never a finished-looking cache that is incomplete or wrong
    assert sorted(os.listdir(cache_dir)) == sorted(ref)  # no .tmp, no .parts folder, no stray file
    for name, want in ref.items():
        got = _h5_content(cache_dir / name)
        assert got["attrs"] == want["attrs"]  # key, n, format version, complete
        for k in ("frames", "labels", "checksums"):
            assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), (name, k)
    assert _check_finished_caches(cache_dir, ref) == []  # opens with its key; every CRC-32 verifies
    # every kill interrupted real work, in the phase it was aimed at
    assert all(r["landed"] for r in rounds), rounds
    assert [r["phase"] for r in rounds] == [
        "reading", "samples", "samples (mid-write)", "assembly", "after rename", "reading", "samples",
        "clean-up"], rounds
    assert temporaries_seen  # the mid-write and mid-assembly kills did leave temporaries, later removed


# --------------------------------------------------------------------------------------------------
# 2. training killed mid-epoch (and inside a checkpoint write), resumed bit-identically
# --------------------------------------------------------------------------------------------------
TRAIN_SCRIPT = textwrap.dedent("""
    # events: b = a training batch is about to be trained on, c = half-way through writing a
    #         checkpoint, P = parked: the child stops right after the event before it and waits for the
    #         test's SIGKILL (so where a kill lands never depends on timing)
    import io, json, os, signal, sys
    import torch
    torch.set_num_threads(1)
    import torch.nn as nn
    from torch.utils.data import DataLoader
    import snnedu

    ckpt, out, mode, events, n = sys.argv[1:6]
    n = int(n)
    EPOCHS, N = 5, 320
    fd = os.open(events, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def park(c):
        os.write(fd, c + b"P")
        while True:
            signal.pause()

    if mode == "in-save":  # park half-way through writing the first checkpoint of this run
        import snnedu.train
        real_write = snnedu.train.atomic_write  # save_checkpoint serialises, then writes the bytes through it
        def atomic_write(path, write, **k):
            def half(f):
                buf = io.BytesIO()
                write(buf)
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                f.flush()
                park(b"c")
            return real_write(path, half, **k)
        snnedu.train.atomic_write = atomic_write

    class Reporting:
        # the training loader, reporting each batch; parks at the n-th batch of this run (mode "batch")
        def __init__(self, loader):
            self.loader, self.seen = loader, 0
        def __getattr__(self, name):  # generator, sampler, ...: the loader's
            return getattr(self.loader, name)
        def __len__(self):
            return len(self.loader)
        def __iter__(self):
            for batch in self.loader:
                self.seen += 1
                if mode == "batch" and self.seen == n:
                    park(b"b")
                os.write(fd, b"b")
                yield batch

    sys.path.insert(0, TESTS_DIR)
    from test_train import _task as task  # the learnable 3-class toy problem of the training tests

    train = DataLoader(task(0, N), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(1))
    val = DataLoader(task(1, 128), batch_size=64)
    torch.manual_seed(5)
    # Poisson input and dropout draw from the global RNG every batch; BatchNorm has running buffers;
    # PLIF learns tau; StepLR changes the learning rate each epoch: all of it must resume exactly
    net = nn.Sequential(snnedu.PoissonEncoder(8),
                        snnedu.SpikingMLP(input_shape=(12,), hidden=(64,), n_classes=3,
                                          neuron=lambda: snnedu.PLIF(), batch_norm=True),
                        nn.Dropout(0.2))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.7)
    hist = snnedu.fit(net, Reporting(train), val, epochs=EPOCHS, optimizer=opt, scheduler=sched,
                      checkpoint=ckpt, seed=3, device="cpu", progress=False, verbose=True)
    torch.save(net.state_dict(), out)
    with open(out + ".json", "w") as f:
        json.dump(list(hist), f)
""")

EPOCHS, BATCHES = 5, 10  # epochs of the training child, batches per epoch


def test_training_killed_mid_epoch_resumes_to_identical_weights(tmp_path, zygote):
    rng = random.Random(1234)
    script = tmp_path / "train_child.py"
    script.write_text(TRAIN_SCRIPT.replace("TESTS_DIR", repr(str(Path(__file__).resolve().parent))))
    log, events = tmp_path / "train.log", tmp_path / "events"
    parked = lambda ev: ev.endswith(b"P")  # the child reports where it is; killed there

    ref_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    ref_dir.mkdir()
    run_dir.mkdir()
    code, _, ev, _ = _run(zygote, script, [ref_dir / "ckpt.pt", ref_dir / "final.pt", "plain", events, 0], log,
                          events)
    assert code == 0, log.read_text()[-3000:]
    assert ev.count(b"b") == EPOCHS * BATCHES and b"P" not in ev
    ref_hist = json.loads((ref_dir / "final.pt.json").read_text())

    ckpt = run_dir / "ckpt.pt"
    rounds = []

    def one_round(kind, mode, n=0):
        before = load_checkpoint(ckpt)["epoch"] if ckpt.exists() else 0
        code, _, ev, _ = _run(zygote, script, [ckpt, run_dir / "final.pt", mode, events, n], log, events,
                              parked)
        landed = code == -signal.SIGKILL
        assert landed or code == 0, f"round {kind}: exit {code}\n{log.read_text()[-3000:]}"
        # what is under the final name is always a whole, loadable checkpoint, never older than before
        after = load_checkpoint(ckpt)["epoch"] if ckpt.exists() else 0
        assert after >= before
        where = None
        if landed:
            where = "checkpoint write" if ev.endswith(b"cP") else \
                f"epoch {before + (n - 1) // BATCHES + 1}, batch {(n - 1) % BATCHES + 1}"
        rounds.append({"kind": kind, "n": n, "landed": landed, "where": where,
                       "checkpoint_epoch_before": before, "checkpoint_epoch_after": after,
                       "temporaries_left": sorted(p.name for p in run_dir.glob("*.tmp*"))})
        return before, after

    # mid-epoch: the n-th batch of this run lies inside epoch 2 (or 3), after >= 1 finished epoch
    one_round("mid-epoch", "batch", rng.randint(BATCHES + 1, 2 * BATCHES + rng.randint(0, BATCHES)))
    one_round("mid-epoch", "batch", rng.randint(BATCHES + 1, 2 * BATCHES))
    before, after = one_round("in-checkpoint-write", "in-save")
    assert after == before and rounds[-1]["temporaries_left"], rounds[-1]  # the half file kept its temp name
    # a random batch of what is left of the training, counted from the resume
    one_round("random-batch", "batch", rng.randint(1, (EPOCHS - after) * BATCHES))
    code, *_ = _run(zygote, script, [ckpt, run_dir / "final.pt", "plain", events, 0], log, events)  # to the end
    assert code == 0, log.read_text()[-3000:]

    landed = [r for r in rounds if r["landed"]]
    _record_counts("training", {"kills_attempted": len(rounds), "kills_landed": len(landed),
                                "runs_survived_kill": len(rounds) - len(landed), "rounds": rounds})

    want = torch.load(ref_dir / "final.pt", weights_only=True)
    got = torch.load(run_dir / "final.pt", weights_only=True)
    assert list(got) == list(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    hist = json.loads((run_dir / "final.pt.json").read_text())
    assert [r["epoch"] for r in hist] == list(range(1, EPOCHS + 1))
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert [r[key] for r in hist] == [r[key] for r in ref_hist], key
    a, b = load_checkpoint(ref_dir / "ckpt.pt"), load_checkpoint(ckpt)
    for (pa, sa), (pb, sb) in zip(a["optimizer"]["state"].items(), b["optimizer"]["state"].items()):
        assert pa == pb and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["scheduler"] == b["scheduler"]
    assert sorted(p.name for p in run_dir.iterdir()) == ["ckpt.pt", "final.pt", "final.pt.json"]  # no temps
    assert all(r["landed"] for r in rounds), rounds  # each kill landed where it was aimed
    assert [r["checkpoint_epoch_after"] > r["checkpoint_epoch_before"] for r in rounds[:2]] == [True, True]


THREADS_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    import snnedu
    out, n = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(n)
    bn, x = torch.nn.BatchNorm1d(16), torch.randn(256, 16)
    before = bn(x)
    snnedu.LIF()(torch.rand(4, 2, 8, requires_grad=True)).sum().backward()  # the first neuron in this process
    after = bn(x)
    with open(out, "w") as f:
        json.dump({"threads": torch.get_num_threads(), "same": bool(torch.equal(before, after))}, f)
""")


def test_first_neuron_forward_keeps_the_torch_thread_count(tmp_path, zygote):
    # found by the training test above: numba's OpenMP pool, launched by the first CPU-kernel call,
    # raised torch.set_num_threads(1) to NUMBA_NUM_THREADS, so a resumed process (whose first batch ran
    # on 1 thread) summed batch-norm statistics differently from an uninterrupted one
    script = tmp_path / "threads.py"
    script.write_text(THREADS_SCRIPT)
    for n in (1, 2):
        out = tmp_path / f"out{n}.json"
        code, *_ = _run(zygote, script, [out, n], tmp_path / "threads.log")
        assert code == 0, (tmp_path / "threads.log").read_text()[-3000:]
        assert json.loads(out.read_text()) == {"threads": n, "same": True}


# --------------------------------------------------------------------------------------------------
# 3. checkpoints: temporary file + rename; weights_only; truncated files
# --------------------------------------------------------------------------------------------------
def _small_run(ckpt, epochs=2):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 6, generator=g), torch.randint(0, 2, (64,), generator=g)
    torch.manual_seed(0)
    net = nn.Sequential(snnedu.DirectEncoder(2), snnedu.SpikingMLP(input_shape=(6,), hidden=(8,), n_classes=2))
    snnedu.fit(net, DataLoader(TensorDataset(x, y), batch_size=16), None, epochs=epochs, seed=0,
               device="cpu", progress=False, verbose=False, checkpoint=ckpt)
    return net


def test_checkpoints_are_written_to_a_temporary_and_renamed(tmp_path, monkeypatch):
    ckpt = tmp_path / "c.pt"
    real_replace = os.replace
    renames = []

    def spy(src, dst):
        src, dst = Path(src), Path(dst)
        if dst == ckpt:  # at the rename the temporary already holds the whole checkpoint
            renames.append((src, load_checkpoint(src)["epoch"], ckpt.exists()))
        return real_replace(src, dst)

    monkeypatch.setattr(train_mod.os, "replace", spy)
    _small_run(ckpt, epochs=3)
    assert [e for _, e, _ in renames] == [1, 2, 3]
    assert all(src.parent == ckpt.parent and src != ckpt for src, _, _ in renames)
    assert [existed for _, _, existed in renames] == [False, True, True]
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]

    # a write that dies half-way (disk full) leaves the previous checkpoint untouched and no temporary
    good = ckpt.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(ckpt, epoch=99, model={})
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]

    # a temporary left by a writer that was killed is cleared by the next successful write
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"c.pt.tmp{dead.pid}"
    stale.write_bytes(b"PK\x03\x04 half")
    mine = tmp_path / "c.pt.tmpnotapid"  # not ours to judge: kept
    mine.write_bytes(b"x")
    save_checkpoint(ckpt, **load_checkpoint(ckpt))
    assert sorted(os.listdir(tmp_path)) == ["c.pt", "c.pt.tmpnotapid"]


class _RunsCode:
    """Unpickling this runs ``os.mkdir(marker)``: the classic pickle payload."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_load_checkpoint_refuses_pickled_code_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.pt"
    net = _small_run(tmp_path / "ok.pt", epochs=1)
    state = load_checkpoint(tmp_path / "ok.pt")
    torch.save({**state, "history": [{"epoch": 1, "payload": _RunsCode(marker)}]}, evil)
    # the payload is live: an unsafe load would run it
    torch.load(evil, weights_only=False)
    assert marker.is_dir()
    marker.rmdir()

    with pytest.raises(TrainingError, match="cannot read checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train = DataLoader(TensorDataset(torch.rand(16, 6), torch.randint(0, 2, (16,))), batch_size=8)
    with pytest.raises(TrainingError, match="cannot read checkpoint"):
        snnedu.fit(net, train, None, epochs=2, device="cpu", progress=False, verbose=False, checkpoint=evil)
    assert not marker.exists()
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # untouched


def test_truncated_checkpoints_are_a_training_error(tmp_path):
    ckpt = tmp_path / "c.pt"
    _small_run(ckpt, epochs=1)
    raw = ckpt.read_bytes()
    cuts = sorted({0, 1, 64, len(raw) // 3, len(raw) // 2, len(raw) - 22, len(raw) - 1})
    for cut in cuts:
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(raw[:cut])
        with pytest.raises(TrainingError, match=f"cannot read checkpoint .*cut{cut}"):
            load_checkpoint(bad)
    assert load_checkpoint(ckpt)["epoch"] == 1  # the whole file still loads


def test_checkpoint_bit_flips_are_detected(tmp_path):
    # issue #15 item 8: a flipped bit in a tensor's bytes used to load, and training resumed from
    # altered weights. Now the checkpoint carries a SHA-256 of its content, verified on load.
    ckpt = tmp_path / "c.pt"
    _small_run(ckpt, epochs=1)
    raw = ckpt.read_bytes()
    want = load_checkpoint(ckpt)
    want_sum = snnedu.train.state_checksum(want)
    rng = random.Random(8)
    bad = tmp_path / "flipped.pt"
    detected = unchanged = 0
    for _ in range(300):
        pos = rng.randrange(len(raw))
        flipped = bytearray(raw)
        flipped[pos] ^= 1 << rng.randrange(8)
        bad.write_bytes(bytes(flipped))
        try:
            got = load_checkpoint(bad)
        except TrainingError:
            detected += 1
            continue
        # a flip that loads must have changed nothing of the content (zip metadata the reader ignores)
        assert snnedu.train.state_checksum(got) == want_sum, pos
        unchanged += 1
    # the bytes of the weights themselves: every flip there is caught
    weights_at = raw.find(want["model"][next(iter(want["model"]))].numpy().tobytes()[:16])
    assert weights_at > 0
    for bit in range(0, 64, 7):
        flipped = bytearray(raw)
        flipped[weights_at + bit // 8] ^= 1 << (bit % 8)
        bad.write_bytes(bytes(flipped))
        with pytest.raises(TrainingError, match="fails its checksum"):
            load_checkpoint(bad)
    net = _small_run(tmp_path / "other.pt", epochs=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    train = DataLoader(TensorDataset(torch.rand(16, 6), torch.randint(0, 2, (16,))), batch_size=8)
    with pytest.raises(TrainingError, match="fails its checksum"):
        snnedu.fit(net, train, None, epochs=2, device="cpu", progress=False, verbose=False, checkpoint=bad)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # untouched
    _record_counts("checkpoint_bit_flips", {"flips": 300, "detected": detected, "loaded_unchanged": unchanged,
                                            "loaded_altered": 0, "weight_byte_flips_detected": 10})
