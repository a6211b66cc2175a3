"""Multi-seed studies: a grid of variants x seeds, run cell by cell, resumable, with provenance.

A study file (YAML) is a base config (the schema of :mod:`snnedu.config`), the fields that vary and
the seeds::

    name: 03_plif                       # the result goes to results/studies/03_plif.json
    title: "PLIF vs LIF at a good and a bad initial tau"
    base:   {data: {...}, model: {...}, train: {...}}      # a config without `name`
    axes:                               # the variants: the product of the axes
      - {"LIF": {model.neuron: {type: LIF, tau: 2.0}}, "PLIF": {model.neuron: {type: PLIF, tau_init: 2.0}}}
    grid: {data.T: [2, 4]}              # shorthand for an axis: labels "T=2", "T=4"
    seeds: [0, 1, 2]                    # every variant is trained with every seed (paired by seed)
    measure: {probe: 512, eval_T: [1, 2], noise_std: [0.2], repeat: true, coverage: false}

Each (variant, seed) is a *cell*. Its key is a hash of its resolved config and of ``measure``, so
editing the study reruns only the cells whose settings changed. After every finished cell the result
file is rewritten atomically; a killed run, rerun, skips the finished cells. ``check_study`` says
whether a stored result still matches its study file (``python -m snnedu study FILE --check``).

What a cell records (``final``): the test accuracy at the **final epoch** (``test_acc``); where the
base config holds out a validation split (``data.val_per_class``), also the epoch with the best
validation accuracy and the test accuracy *at that epoch* (``test_acc_val_selected``). No number is
ever selected on the test set. Per epoch (``curves``): training loss, test (and validation) accuracy,
and, on a fixed probe of test images, each spiking layer's firing rate and its dormant and saturated
fractions (:class:`snnedu.Monitor`), plus learned time constants and thresholds where there are any.
With ``measure.eval_T`` (static images): the accuracy when the trained network runs with each of those
``T`` (``acc_at_T``), and the accuracy of every step's output on its own up to the largest of them
(``acc_step``). Every cell also stores its final test confusion matrix (``confusion``: row = true
class, column = predicted class, counts).
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import platform
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from ._checks import short_repr
from ._io import atomic_write
from .config import ConfigError, read_yaml, validate_config
from .errors import SnneduError

__all__ = ["StudyError", "load_study", "study_cells", "run_study", "check_study", "load_result",
           "cell_values", "summarize", "compare", "markdown_report", "stored_result", "study_file",
           "SELECTION_RULE", "miniature"]

FORMAT = 1
SELECTION_RULE = ("test accuracy at the final epoch (no epoch or run is selected on the test set); "
                  "mean ± standard error over seeds; differences paired by seed with a 95 % t-interval")
_STUDY_FIELDS = {"name", "title", "chapter", "description", "base", "axes", "grid", "seeds", "measure",
                 "compare", "paper"}
_MEASURE = {"probe": 512, "eval_T": [], "noise_std": [], "repeat": False, "coverage": False,
            "threads": 1}


class StudyError(SnneduError, ValueError):
    """A study file is malformed, or a stored result does not match it."""


# -- the study file ------------------------------------------------------------------------------------
def _set_dotted(cfg: dict, dotted: str, value: Any, where: str) -> None:
    parts = dotted.split(".")
    node = cfg
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise StudyError(f"{where}: {short_repr(dotted)} goes through {short_repr(p)}, which is not a section")
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)


def _label_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def load_study(path) -> dict:
    """Read and check a study file; returns ``{name, title, path, sha256, base, axes, seeds, measure}``.

    ``axes`` is a list of ``[(label, {dotted.field: value})]`` lists; the variants are their product."""
    path = Path(path)
    raw = read_yaml(path, StudyError, "study file")  # duplicate keys and aliases refused, size bounded
    data = path.read_bytes()  # for the sha256
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: expected a mapping with name, base, axes/grid and seeds")
    unknown = set(raw) - _STUDY_FIELDS
    if unknown:
        raise StudyError(f"{path}: unknown field(s) {short_repr(sorted(map(str, unknown)))}; "
                         f"allowed: {sorted(_STUDY_FIELDS)}")
    for req in ("name", "base", "seeds"):
        if req not in raw:
            raise StudyError(f"{path}: missing required field {short_repr(req)}")
    name = raw["name"]
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise StudyError(f"{path}: name must be a plain file name, got {short_repr(name)}")
    seeds = raw["seeds"]
    if (not isinstance(seeds, list) or not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds)
            or len(set(seeds)) != len(seeds)):
        raise StudyError(f"{path}: seeds must be a non-empty list of distinct integers, got {short_repr(seeds)}")
    if not isinstance(raw["base"], dict):
        raise StudyError(f"{path}: base must be a config mapping (data, model, train)")
    axes = []
    for i, axis in enumerate(raw.get("axes") or []):
        if not isinstance(axis, dict) or not axis:
            raise StudyError(f"{path}: axes[{i}] must be a mapping label -> {{field: value}}")
        entries = []
        for label, over in axis.items():
            if not isinstance(over, dict):
                raise StudyError(f"{path}: axes[{i}].{label}: expected a mapping of dotted fields to values")
            entries.append((str(label), over))
        axes.append(entries)
    for field, values in (raw.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise StudyError(f"{path}: grid.{field}: expected a non-empty list of values")
        short = str(field).split(".")[-1]
        axes.append([(f"{short}={_label_value(v)}", {field: v}) for v in values])
    measure = dict(_MEASURE)
    for k, v in (raw.get("measure") or {}).items():
        if k not in _MEASURE:
            raise StudyError(f"{path}: measure.{k}: unknown; allowed: {sorted(_MEASURE)}")
        measure[k] = v
    for k in ("eval_T", "noise_std"):
        if not isinstance(measure[k], list):
            raise StudyError(f"{path}: measure.{k}: expected a list")
    if any(isinstance(t, bool) or not isinstance(t, int) or t < 1 for t in measure["eval_T"]):
        raise StudyError(f"{path}: measure.eval_T: expected positive integers")
    if any(isinstance(s, bool) or not isinstance(s, (int, float)) or not s >= 0 for s in measure["noise_std"]):
        raise StudyError(f"{path}: measure.noise_std: expected numbers >= 0")
    for k in ("probe", "threads"):
        if isinstance(measure[k], bool) or not isinstance(measure[k], int) or measure[k] < 1:
            raise StudyError(f"{path}: measure.{k}: expected a positive integer")
    compare_ = raw.get("compare") or []
    if not isinstance(compare_, list) or any(not isinstance(c, dict) or not {"a", "b"} <= set(c)
                                             or set(c) - {"a", "b", "metric", "claim"} for c in compare_):
        raise StudyError(f"{path}: compare: expected a list of {{a: LABEL, b: LABEL, metric: KEY, claim: TEXT}}")
    paper = raw.get("paper") or []
    if not isinstance(paper, list) or any(not isinstance(p, dict) or not {"text", "cite"} <= set(p) for p in paper):
        raise StudyError(f"{path}: paper: expected a list of {{text: ..., cite: BIBKEY}}")
    study = {"name": name, "title": str(raw.get("title", name)), "chapter": raw.get("chapter"),
             "description": raw.get("description", ""), "path": str(path), "compare": compare_, "paper": paper,
             "sha256": hashlib.sha256(data).hexdigest(), "base": raw["base"], "axes": axes, "seeds": seeds,
             "measure": measure}
    labels = variants(study)  # every cell's config must validate now, not halfway through a sweep
    for c in compare_:
        for side in ("a", "b"):
            if c[side] not in labels:
                raise StudyError(f"{path}: compare: {short_repr(c[side])} is not a variant; variants: {labels}")
    return study


def study_cells(study: dict) -> List[dict]:
    """Every cell of the study in order: ``{label, seed, config, key}`` (variant-major, seeds inner)."""
    cells = []
    labels_seen = set()
    for combo in itertools.product(*study["axes"]) if study["axes"] else [()]:
        label = " · ".join(lbl for lbl, _ in combo) or "base"
        if label in labels_seen:
            raise StudyError(f"{study['path']}: two variants are labelled {short_repr(label)}")
        labels_seen.add(label)
        raw = copy.deepcopy(study["base"])
        raw.setdefault("name", study["name"])
        for lbl, over in combo:
            for field, value in over.items():
                _set_dotted(raw, str(field), value, f"{study['path']}: {lbl}")
        for seed in study["seeds"]:
            r = copy.deepcopy(raw)
            r.setdefault("train", {})["seed"] = seed
            try:
                cfg = validate_config(r)
            except ConfigError as e:
                raise StudyError(f"{study['path']}: variant {short_repr(label)}: {e}") from None
            key = hashlib.sha256(json.dumps({"config": _key_config(cfg), "measure": study["measure"]},
                                            sort_keys=True, default=str).encode()).hexdigest()[:16]
            cells.append({"label": label, "seed": seed, "config": cfg, "key": key})
    return cells


# Config fields added to the schema after studies were stored. At these values they build exactly the
# network the schema built before they existed, so they are left out of a cell's key: a stored cell
# stays valid, and any other value changes the key (the cell reruns).
# The later ones among them are also left out of the config a new cell records, so that it reads like the
# stored cells of the same setting (which were written before these fields existed).
_UNRECORDED_FIELDS = {("model", "readout_steps"): None, ("data", "delay"): 0, ("data", "cue"): 1, ("data", "gain"): 1.0}
_LATER_FIELDS = {("model", "norm"): None, ("model", "residual"): True, **_UNRECORDED_FIELDS}


def _key_config(cfg: dict, fields: Optional[dict] = None) -> dict:
    out = copy.deepcopy(cfg)
    for (section, field), neutral in (_LATER_FIELDS if fields is None else fields).items():
        if section in out and field in out[section] and out[section][field] == neutral:
            del out[section][field]
    return out


def variants(study: dict, cells: Optional[List[dict]] = None) -> List[str]:
    """The variant labels in order (from ``cells`` when given, else from the study file)."""
    return list(dict.fromkeys(c["label"] for c in (cells if cells is not None else study_cells(study))))


# -- provenance ----------------------------------------------------------------------------------------
def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str:
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "snnedu"],
                               cwd=here, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("+dirty" if dirty else "")


def provenance() -> dict:
    """Where and with what a cell ran: machine, CPU, cores, torch, Python, snnedu commit."""
    return {"machine": platform.node(), "cpu": _cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "snnedu_commit": _commit(),
            "device": "cpu" if not torch.cuda.is_available() else f"cuda ({torch.cuda.get_device_name(0)})"}


# -- one cell ------------------------------------------------------------------------------------------
def _encoders(model):
    from .encoding import _Encoder

    return [m for m in model.modules() if isinstance(m, _Encoder)]


@torch.no_grad()
def _predictions(model, loader, noise_std: float = 0.0, noise_seed: int = 0) -> tuple:
    from .base import reset
    from .train import predict

    model.eval()
    g = torch.Generator().manual_seed(noise_seed)
    preds, labels = [], []
    for x, y in loader:
        if noise_std:
            x = (x + noise_std * torch.randn(x.shape, generator=g)).clamp(0.0, 1.0)
        reset(model)
        preds.append(predict(model(x)))
        labels.append(y)
    reset(model)
    return torch.cat(preds), torch.cat(labels)


@torch.no_grad()
def _step_accuracies(model, loader) -> List[float]:
    """Accuracy (%) of each step's output ``O[t]`` on its own, ``t = 1..T`` (TET's per-step claim)."""
    from .base import reset

    model.eval()
    correct, n = None, 0
    for x, y in loader:
        reset(model)
        hit = (model(x).argmax(-1) == y.unsqueeze(0)).sum(1).double()   # [T]
        correct = hit if correct is None else correct + hit
        n += len(y)
    reset(model)
    return [round(100.0 * float(c) / n, 4) for c in correct]


def _acc(preds, labels) -> float:
    return 100.0 * float((preds == labels).float().mean())


@torch.no_grad()
def _probe_stats(model, probe_x, coverage: bool) -> dict:
    from .base import reset
    from .decay import LearnableDecay
    from .monitor import Monitor
    from .threshold import LearnableThreshold

    was = model.training
    model.eval()
    reset(model)
    with Monitor(model, coverage=coverage) as mon:
        model(probe_x)
    reset(model)
    model.train(was)
    stats = mon.neuron_stats()
    out = {k: [round(float(r[k]), 6) for r in stats] for k in ("firing_rate", "dormant", "saturated", "dead")}
    if coverage:
        out["coverage"] = [round(float(r.get("coverage", float("nan"))), 6) for r in stats]
    taus = [m for m in model.modules() if isinstance(m, LearnableDecay)]
    if taus:
        # tau = 1 / k (k: the leak per step) in both forms; PMLF's decay lambda = 1 - k gives tau = 1 / (1 - lambda)
        out["tau_mean"] = [float((1.0 / m.k.detach().float()).mean()) for m in taus]
        out["decay_form"] = [m.form for m in taus]
        # every learned value as the decay factor kept per step, lambda = 1 - k (PLIF: 1 - 1/tau)
        out["decay"] = [[round(float(v), 6) for v in m.decay.detach().float().flatten()] for m in taus]
    ths = [m for m in model.modules() if isinstance(m, LearnableThreshold)]
    if ths:
        vals = [m.value().detach().float().flatten() for m in ths]
        out["threshold_mean"] = [float(v.mean()) for v in vals]
        out["threshold_std"] = [float(v.std()) if v.numel() > 1 else 0.0 for v in vals]
        out["threshold_at_floor"] = [int((m.w.detach().flatten() <= m.min_threshold).sum()) for m in ths]
    return out


def run_cell(cfg: dict, measure: dict) -> dict:
    """Train one cell (one variant, one seed) on the CPU and measure it; returns the cell's record.

    Runs with ``measure['threads']`` torch threads and restores the caller's thread count after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(int(measure.get("threads", 1)))
    try:
        return _run_cell(cfg, measure)
    finally:
        torch.set_num_threads(threads)  # the caller's thread count (a notebook's, under SNNEDU_FULL=1)


def _run_cell(cfg: dict, measure: dict) -> dict:
    from .config import build_data, build_model, make_loss, make_optimizer, make_scheduler, materialize_from, spread_subset
    from .data.common import _collate_fn
    from .train import evaluate, fit, seed_everything

    t0 = time.perf_counter()
    t = cfg["train"]
    seed_everything(t["seed"])
    split, train_loader, val_loader, test_loader = build_data(cfg, with_val=True)
    model = materialize_from(cfg, build_model(cfg), test_loader)
    optimizer, loss_fn = make_optimizer(cfg, model), make_loss(cfg)
    scheduler = make_scheduler(cfg, optimizer)
    regularizer = None
    if t["tau_lambda"] > 0:
        from .losses import TauVarianceRegularizer
        regularizer = TauVarianceRegularizer(lam=t["tau_lambda"])
    from torch.utils.data import DataLoader

    probe_ds = spread_subset(split.test, measure["probe"])
    probe_x = next(iter(DataLoader(probe_ds, batch_size=len(probe_ds), collate_fn=_collate_fn(probe_ds))))[0]

    def per_epoch(net, row):
        ev = evaluate(net, test_loader, device="cpu", loss_fn=loss_fn)
        state = torch.random.get_rng_state()
        torch.manual_seed(10_000 + t["seed"])  # Poisson probes draw the same spikes every epoch
        stats = _probe_stats(net, probe_x, measure["coverage"])
        torch.random.set_rng_state(state)
        return {"test_acc": ev["acc"], "test_loss": ev["loss"], **stats}

    epoch0 = {"epoch": 0, **per_epoch(model, {})}
    history = fit(model, train_loader, val_loader, epochs=t["epochs"], optimizer=optimizer, scheduler=scheduler,
                  loss_fn=loss_fn, regularizer=regularizer, device="cpu", amp=False, seed=t["seed"],
                  progress=False, verbose=False, grad_clip=t["grad_clip"], callbacks=[per_epoch])
    rows = [epoch0] + [dict(r) for r in history]
    last = rows[-1]
    final = {"test_acc": last["test_acc"], "test_loss": last["test_loss"], "train_loss": last["train_loss"],
             "train_acc": last["train_acc"], "epochs": len(history)}
    for k in ("firing_rate", "dormant", "saturated", "dead", "coverage", "tau_mean", "decay", "threshold_mean",
              "threshold_std", "threshold_at_floor"):
        if k in last:
            final[k] = last[k]
    if val_loader is not None:
        best = max(rows[1:], key=lambda r: (r["val_acc"], -r["epoch"]))  # earliest best validation epoch
        final.update(val_acc=last["val_acc"], val_selected_epoch=best["epoch"],
                     test_acc_val_selected=best["test_acc"])
    torch.manual_seed(20_000 + t["seed"])
    preds, labels = _predictions(model, test_loader)
    n_cls = int(cfg["model"]["n_classes"])
    # the final epoch's test confusion matrix: row = true class, column = predicted class (counts)
    final["confusion"] = torch.bincount(labels.long() * n_cls + preds.long(), minlength=n_cls * n_cls
                                        ).view(n_cls, n_cls).tolist()
    if measure["repeat"]:
        again, _ = _predictions(model, test_loader)
        final["repeat_agree"] = _acc(preds, again)
    if measure["eval_T"]:
        encs = _encoders(model)
        if not encs:
            raise StudyError("measure.eval_T needs a model with an encoder (static images)")
        saved = [e.T for e in encs]
        final["acc_at_T"] = {}
        for T in measure["eval_T"]:
            for e in encs:
                e.T = T
            torch.manual_seed(20_000 + t["seed"])
            final["acc_at_T"][str(T)] = _acc(*_predictions(model, test_loader))
        for e in encs:  # every step's output alone, up to the largest T (the network is causal)
            e.T = max(measure["eval_T"])
        final["acc_step"] = _step_accuracies(model, test_loader)
        for e, T in zip(encs, saved):
            e.T = T
    if measure["noise_std"]:
        final["acc_at_noise"] = {}
        for s in measure["noise_std"]:
            torch.manual_seed(20_000 + t["seed"])
            final["acc_at_noise"][f"{s:g}"] = _acc(*_predictions(model, test_loader, float(s), 30_000 + t["seed"]))
    curves = {}
    for r in rows:
        for k, v in r.items():
            curves.setdefault(k, []).append(v)
    return {"final": final, "curves": curves, "wall_s": round(time.perf_counter() - t0, 2),
            "data": split.source, "offline_standin": split.offline_standin,
            "n_train": len(split.train), "n_val": len(val_loader.dataset) if val_loader is not None else 0,
            "n_test": len(split.test), "threads": torch.get_num_threads(), **provenance()}


_WATCHDOG = []


def _exit_with_parent(parent: int) -> None:
    """In a worker process: exit as soon as the study's process is gone (killed, or stopped by a
    signal), so that no orphaned worker goes on training for nobody."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if not _WATCHDOG:
        _WATCHDOG.append(threading.Thread(target=watch, daemon=True, name="snnedu-study-watchdog"))
        _WATCHDOG[0].start()


def _run_cell_job(args):
    cfg, measure, parent = args
    _exit_with_parent(parent)
    return run_cell(cfg, measure)


# -- the sweep -----------------------------------------------------------------------------------------
def _result_path(study: dict, out_dir) -> Path:
    return Path(out_dir) / f"{study['name']}.json"


def load_result(path) -> dict:
    """A stored study result (``results/studies/NAME.json``)."""
    path = Path(path)
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"{path}: no stored result; run `python -m snnedu study STUDY.yaml`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StudyError(f"{path}: unreadable study result ({type(e).__name__}); rerun the study") from None
    if not isinstance(res, dict) or res.get("format") != FORMAT or not isinstance(res.get("cells"), dict):
        raise StudyError(f"{path}: not a snnedu study result (format {FORMAT})")
    return res


def _find_up(relative: str, start=None) -> Optional[Path]:
    """``FOLDER/relative`` for the first FOLDER from ``start`` (default: the working directory) upwards."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / relative).is_file():
            return folder / relative
    return None


def stored_result(name: str, start=None) -> dict:
    """The committed result ``results/studies/NAME.json`` of a study, found from ``start`` (default: the
    working directory) or any folder above it: what a chapter reads when run inside the repository.

    Args:
        name: the study's name (its file name without ``.json``).
        start: the folder to search from (default: the current working directory).
    """
    path = _find_up(f"results/studies/{name}.json", start)
    if path is None:
        raise StudyError(f"no stored study {name!r} (results/studies/{name}.json) in {Path(start or Path.cwd())} "
                         "or above: the stored studies live in the snnedu repository; run the chapter from a "
                         "clone (on Colab the first cell clones it), or run the study with "
                         f"python -m snnedu study studies/{name}.yaml")
    return load_result(path)


def study_file(name: str, start=None) -> Path:
    """The study file ``studies/NAME.yaml`` found from ``start`` (default: the working directory) upwards."""
    path = _find_up(f"studies/{name}.yaml", start)
    if path is None:
        raise StudyError(f"no study file studies/{name}.yaml in {Path(start or Path.cwd())} or above: run the "
                         "chapter from a clone of the snnedu repository")
    return path


def _write(path: Path, result: dict) -> None:
    def nan_safe(o):
        return None if isinstance(o, float) and math.isnan(o) else str(o)

    text = json.dumps(result, indent=1, default=nan_safe, allow_nan=False) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def _cell_id(label: str, seed: int) -> str:
    return f"{label} | seed {seed}"


def run_study(path, out_dir="results/studies", *, jobs: int = 1, progress: bool = True,
              only: Optional[Sequence[str]] = None) -> dict:
    """Run every unfinished cell of the study file ``path``; returns the result dict.

    Args:
        path: the study YAML file.
        out_dir: folder of the result file ``NAME.json`` (created if needed).
        jobs: cells trained at the same time, each in its own process (``measure.threads`` threads each).
        progress: one progress bar over the cells (also silenced by ``TQDM_DISABLE=1``).
        only: run only the variants with these labels (the others stay as they are).

    Finished cells whose key still matches are reused; cells of variants no longer in the file are
    dropped. The file is rewritten after every cell, so a killed run loses at most the cells in flight.
    """
    from tqdm.auto import tqdm

    from .train import _bars_disabled

    study = load_study(path)
    cells = study_cells(study)
    out = _result_path(study, out_dir)
    old = {}
    if out.exists():
        try:
            old = load_result(out)["cells"]
        except StudyError:
            old = {}  # unreadable: every cell is redone
    keep = {_cell_id(c["label"], c["seed"]): c for c in cells}
    stored = {cid: rec for cid, rec in old.items() if cid in keep and rec.get("key") == keep[cid]["key"]}
    todo = [c for c in cells if _cell_id(c["label"], c["seed"]) not in stored
            and (only is None or c["label"] in only)]
    result = {"format": FORMAT, "name": study["name"], "title": study["title"], "chapter": study["chapter"],
              "description": study["description"], "compare": study["compare"], "paper": study["paper"], "study_file": Path(study["path"]).as_posix(),
              "study_sha256": study["sha256"], "variants": variants(study, cells), "seeds": study["seeds"],
              "measure": study["measure"], "selection_rule": SELECTION_RULE, "cells": stored, "complete": False}

    def finish():
        result["complete"] = all(_cell_id(c["label"], c["seed"]) in result["cells"] for c in cells)
        ordered = {}
        for c in cells:
            cid = _cell_id(c["label"], c["seed"])
            if cid in result["cells"]:
                ordered[cid] = result["cells"][cid]
        result["cells"] = ordered
        walls = [r["wall_s"] for r in ordered.values()]
        result["wall_s_total"] = round(sum(walls), 1)
        _write(out, result)

    finish()
    kill_after = int(os.environ.get("SNNEDU_STUDY_TEST_KILL_AFTER", "0") or 0)  # tests: SIGKILL after N cells
    done = 0
    bar = tqdm(total=len(todo), desc=f"study {study['name']}", unit="cell", disable=_bars_disabled(progress))

    def record(cell, rec):
        nonlocal done
        rec = {"label": cell["label"], "seed": cell["seed"], "key": cell["key"],
               "config": _key_config(cell["config"], _UNRECORDED_FIELDS), **rec,
               "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        result["cells"][_cell_id(cell["label"], cell["seed"])] = rec
        finish()
        done += 1
        bar.update(1)
        bar.set_postfix_str(f"{cell['label']} seed {cell['seed']}: {rec['final']['test_acc']:.1f}%")
        if kill_after and done >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        if jobs <= 1 or len(todo) <= 1:
            for cell in todo:
                record(cell, run_cell(cell["config"], study["measure"]))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_run_cell_job, (c["config"], study["measure"], os.getpid())): c for c in todo}
                for fut in as_completed(futures):
                    record(futures[fut], fut.result())
    finally:
        bar.close()
    result["ran"], result["reused"] = done, len(stored)
    return result


def miniature(name: str, out_dir, *, only: Optional[Sequence[str]] = None, seeds: Sequence[int] = (0,),
              overrides: Optional[Dict[str, Any]] = None, progress: bool = False) -> dict:
    """A small live version of the stored study ``name``: same variants and measurements, less of everything.

    Chapters show the committed study and run this under their test (nbval) so that the code path that
    produced the evidence is exercised on every run. The study file is copied to ``out_dir`` as
    ``NAME-mini.yaml`` with ``overrides`` (dotted fields, e.g. ``{"train.epochs": 1,
    "data.train_per_class": 100}``) applied to its base, the given ``seeds``, and its comparisons kept
    only where both sides are run; then it is run (resumably) into ``out_dir``.

    Args:
        name: the study's name (``studies/NAME.yaml``, found upwards from the working directory).
        out_dir: folder for the miniature's study file and result (e.g. a temporary folder).
        only: the variant labels to run (default: all).
        seeds: the seeds to run (default ``(0,)``).
        overrides: dotted config fields set in the base of every variant.
        progress: show a progress bar over the cells (default ``False``).

    Returns the result dict (as :func:`run_study`), whose ``title`` says it is a miniature.
    """
    import yaml

    src = study_file(name)
    study = load_study(src)                      # checks the original first
    raw = read_yaml(src, StudyError, "study file")
    for field, value in (overrides or {}).items():
        _set_dotted(raw["base"], str(field), value, f"{name}: overrides")
    labels = variants(study)
    keep = list(labels if only is None else only)
    missing = [v for v in keep if v not in labels]
    if missing:
        raise StudyError(f"{name}: no variant(s) {missing}; variants: {labels}")
    raw["name"] = f"{study['name']}-mini"
    raw["title"] = f"{study['title']} (miniature: {', '.join(f'{k}={v}' for k, v in (overrides or {}).items())})"
    raw["seeds"] = [int(s) for s in seeds]
    raw["compare"] = [c for c in raw.get("compare") or [] if c["a"] in keep and c["b"] in keep]
    raw.pop("paper", None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{raw['name']}.yaml"
    text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True).encode("utf-8")
    atomic_write(path, lambda f: f.write(text), durable=False)
    result = run_study(path, out_dir, progress=progress, only=keep)
    result["variants"] = [v for v in result["variants"] if v in keep]
    result["cells"] = {cid: c for cid, c in result["cells"].items() if c["label"] in keep}
    result["complete"] = len(result["cells"]) == len(keep) * len(raw["seeds"])   # of the variants it runs
    return result


def check_study(path, out_dir="results/studies") -> List[str]:
    """Problems that make the stored result of study file ``path`` stale (empty list: up to date)."""
    study = load_study(path)
    out = _result_path(study, out_dir)
    try:
        res = load_result(out)
    except StudyError as e:
        return [str(e)]
    problems = []
    cells = study_cells(study)
    missing = [c for c in cells if _cell_id(c["label"], c["seed"]) not in res["cells"]]
    changed = [c for c in cells if _cell_id(c["label"], c["seed"]) in res["cells"]
               and res["cells"][_cell_id(c["label"], c["seed"])].get("key") != c["key"]]
    if missing:
        problems.append(f"{out}: {len(missing)} of {len(cells)} cells not run yet "
                        f"(e.g. {missing[0]['label']!r} seed {missing[0]['seed']})")
    if changed:
        problems.append(f"{out}: {len(changed)} cells were run with other settings than {path} now asks for "
                        f"(e.g. {changed[0]['label']!r} seed {changed[0]['seed']})")
    if res.get("study_sha256") != study["sha256"]:
        problems.append(f"{out}: {path} changed since the result was written (sha256 differs)")
    if problems:
        problems.append(f"rerun: python -m snnedu study {path}")
    return problems


# -- reading a result ----------------------------------------------------------------------------------
def _get(rec: dict, metric: str):
    """``rec['final']`` followed along a dotted path; keys that contain dots themselves (the noise level
    ``0.3`` in ``acc_at_noise.0.3``) are matched whole."""
    node, parts = rec["final"], metric.split(".")
    i = 0
    while i < len(parts):
        if isinstance(node, list):
            node, i = node[int(parts[i])], i + 1
            continue
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                node, i = node[key], j
                break
        else:
            raise KeyError(f"no {metric!r} in the cell's final record (keys: {sorted(node)})")
    return node


def cell_values(result: dict, label: str, metric: str = "test_acc") -> Dict[int, float]:
    """``{seed: value}`` of one variant; ``metric`` is a key of the cells' ``final`` record, dotted for
    nested ones (``acc_at_T.1``, ``firing_rate.0``)."""
    out = {}
    for rec in result["cells"].values():
        if rec["label"] == label:
            out[rec["seed"]] = float(_get(rec, metric))
    if not out:
        raise StudyError(f"study {result.get('name')!r} has no variant {label!r}; it has {result.get('variants')}")
    return out


def summarize(result: dict, metric: str = "test_acc") -> Dict[str, dict]:
    """Per variant: ``{mean, se, sd, n, values}`` of ``metric`` over the seeds."""
    from .stats import mean_se

    out = {}
    for label in result["variants"]:
        vals = cell_values(result, label, metric)
        out[label] = {**mean_se(list(vals.values())), "values": vals}
    return out


def compare(result: dict, a: str, b: str, metric: str = "test_acc", confidence: float = 0.95) -> dict:
    """Paired difference ``a - b`` of ``metric`` over the seeds both variants have."""
    from .stats import paired_difference

    va, vb = cell_values(result, a, metric), cell_values(result, b, metric)
    seeds = sorted(set(va) & set(vb))
    out = paired_difference([va[s] for s in seeds], [vb[s] for s in seeds], confidence)
    out["seeds"] = seeds
    return out


def _num(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


def markdown_report(result: dict, metric: str = "test_acc", heading: Optional[str] = None,
                    paper: bool = True) -> str:
    """The study as Markdown: per variant mean ± s.e. over seeds, then the study's comparisons as
    paired differences with their 95 % intervals, then data, seeds, epochs, machine and wall time.

    Args:
        result: a study result (:func:`load_result`).
        metric: the ``final`` key tabulated per variant (default: final-epoch test accuracy).
        heading: a Markdown heading put first.
        paper: add the study's ``paper`` lines (with MyST ``{cite:p}`` roles, for the book).

    The tables have three narrow columns so that they fit a book's content column."""
    from .stats import paired_difference

    lines = []
    if heading:
        lines += [heading, ""]
    summ = summarize(result, metric)
    recs = list(result["cells"].values())
    first = recs[0]
    lines += [f"| variant | test accuracy % (mean ± s.e.) | per seed |", "|---|---|---|"]
    for label, s in summ.items():
        per = ", ".join(_num(v) for _, v in sorted(s["values"].items()))
        se = _num(s["se"], 2) if s["n"] > 1 else "— (one seed)"
        lines.append(f"| {label} | {_num(s['mean'], 2)} ± {se} | {per} |")
    comps = result.get("compare") or []
    if comps:
        lines += ["", "| comparison (paired by seed) | difference, points [95 % interval] | seeds won |",
                  "|---|---|---|"]
        for c in comps:
            m = c.get("metric", metric)
            what = f"{c['a']} − {c['b']}" + ("" if m == metric else f" ({m})")
            va, vb = cell_values(result, c["a"], m), cell_values(result, c["b"], m)
            seeds = sorted(set(va) & set(vb))
            if len(seeds) < 2:  # a miniature's single seed: the difference, but no interval
                diff = " ".join(f"{va[k] - vb[k]:+.2f}" for k in seeds) or "—"
                lines.append(f"| {what} | {diff} (no interval: {len(seeds)} seed) | — |")
                continue
            d = compare(result, c["a"], c["b"], m)
            lo, hi = d["ci"]
            lines.append(f"| {what} | {d['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] | {d['wins']} of {d['n']} |")
    n_seeds = len(result["seeds"])
    epochs = first["config"]["train"]["epochs"]
    machines = sorted({f"{r['cpu']} ({r['cores']} cores)" for r in recs})
    commits = sorted({r["snnedu_commit"][:12] for r in recs})
    lines += ["", f"Data: {first['data']}; {first['n_train']:,} training, {first['n_val']:,} validation, "
                  f"{first['n_test']:,} test images. {len(result['variants'])} variants × {n_seeds} seeds "
                  f"({', '.join(map(str, result['seeds']))}), {epochs} epochs each. "
                  f"Selection rule: {result['selection_rule']}. "
                  f"Machine: {'; '.join(machines)}, torch {first['torch']}, snnedu {', '.join(commits)}; "
                  f"{result.get('wall_s_total', 0) / 60:.0f} min of training in all. "
                  f"Study file `{result['study_file']}` (sha256 {result['study_sha256'][:12]})."]
    for p in (result.get("paper") or []) if paper else []:
        lines += ["", f"The paper's number (not snnedu's): {p['text']} {{cite:p}}`{p['cite']}`."]
    return "\n".join(lines) + "\n"
