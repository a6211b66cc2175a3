"""Training and evaluation loops: CUDA when present, AMP on CUDA, progress bars, checkpoints, resume.

:func:`fit` trains any model mapping an input batch to outputs ``[T, B, C]`` (or ``[B, C]``) and
returns a :class:`History` (one dict per epoch). With ``checkpoint=PATH`` it writes, after every
epoch, everything needed to continue — model, optimizer, scheduler, AMP scaler, history and the RNG
states (torch, CUDA, Python, NumPy, the loader's shuffling generator) — atomically (a temporary file
renamed into place, so a crash never leaves a half-written checkpoint). Calling :func:`fit` again with
the same ``checkpoint`` resumes after the last finished epoch; on CPU a seeded run that is interrupted
and resumed ends with the same weights as an uninterrupted one.

Checkpoints are loaded with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import glob
import io
import os
import random
import time
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from . import distributed as _dist
from ._checks import short_repr
from ._io import atomic_write
from .base import reset
from .errors import SnneduError
from .losses import predict, rate_cross_entropy

__all__ = ["seed_everything", "default_device", "History", "evaluate", "fit", "save_checkpoint",
           "load_checkpoint", "check_resumable", "state_checksum", "TrainingError", "CheckpointMismatch"]


class TrainingError(SnneduError, RuntimeError):
    """Training cannot go on (non-finite loss, an unusable checkpoint)."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _bars_disabled(progress: bool) -> bool:
    """True when progress bars are off: ``progress=False`` or ``TQDM_DISABLE`` set (tests, CI logs).

    tqdm reads ``TQDM_DISABLE`` only for arguments not passed explicitly, so an explicit
    ``disable=False`` would override it; honour the variable here instead.
    """
    env = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return not progress or env not in ("", "0", "false", "no")


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class History(list):
    """A list of per-epoch dicts (``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``,
    ``time_s``, ``lr``) with a column accessor: ``history['val_acc']`` -> list of floats."""

    def __getitem__(self, key):
        if isinstance(key, str):
            return [row.get(key) for row in self]
        return super().__getitem__(key)

    def best(self, key: str = "val_acc") -> dict:
        """The epoch row with the largest ``key``."""
        return max(self, key=lambda r: r.get(key, float("-inf")))


def _autocast(device: torch.device, amp: bool):
    if amp and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


@torch.no_grad()
def evaluate(model: nn.Module, loader, device=None, loss_fn: Callable = rate_cross_entropy,
             amp: Optional[bool] = None, progress: bool = False) -> dict:
    """Mean loss and accuracy (%) of ``model`` over ``loader``: ``{'loss', 'acc', 'n'}``."""
    from ._checks import flag

    amp, progress = flag("evaluate(): amp", amp, allow_none=True), flag("evaluate(): progress", progress)
    if device is None:  # the model's device; a model without parameters or buffers runs on the CPU
        device = next(iter(list(model.parameters()) + list(model.buffers())), torch.zeros(())).device
    device = torch.device(device)
    amp = device.type == "cuda" if amp is None else amp
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for i, batch in enumerate(tqdm(loader, desc="eval", leave=False, disable=_bars_disabled(progress))):
        x, y = _unpack(batch, "evaluate(): loader", i)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        reset(model)
        with _autocast(device, amp):
            out = model(x)
        loss_sum += float(loss_fn(out.float(), y)) * y.shape[0]
        correct += int((predict(out) == y).sum())
        total += y.shape[0]
    reset(model)
    model.train(was_training)
    if _dist.is_distributed() and isinstance(getattr(loader, "sampler", None), DistributedSampler):
        loss_sum, correct, total = _dist.all_reduce_sum([loss_sum, correct, total])  # each rank saw a share
    if total == 0:
        raise TrainingError("evaluate() got an empty loader")
    return {"loss": loss_sum / total, "acc": 100.0 * correct / total, "n": total}


# -- checkpoints -------------------------------------------------------------------------------------
def _rng_state(loader) -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    gen = getattr(loader, "generator", None)
    if gen is not None:
        state["loader"] = gen.get_state()
    return state


def _set_rng_state(state: dict, loader) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    name, key, *rest = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    gen = getattr(loader, "generator", None)
    if gen is not None and "loader" in state:
        gen.set_state(state["loader"])


def _digest(obj, h) -> None:
    """Feed a canonical description of ``obj`` (tensors by dtype, shape and bytes; containers in a
    fixed order; plain values by type and repr) into the hash ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}:".encode())
        if t.numel():
            h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}{{".encode())
        for k in sorted(obj, key=lambda k: (type(k).__name__, repr(k))):
            _digest(k, h)
            _digest(obj[k], h)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__[0]}{len(obj)}[".encode())
        for v in obj:
            _digest(v, h)
        h.update(b"]")
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def state_checksum(state: dict) -> str:
    """The SHA-256 of a checkpoint's content (every key but ``checksum``), as stored by
    :func:`save_checkpoint` and verified by :func:`load_checkpoint`."""
    import hashlib

    h = hashlib.sha256()
    _digest({k: v for k, v in state.items() if k != "checksum"}, h)
    return "sha256:" + h.hexdigest()


def save_checkpoint(path, **state) -> None:
    """``torch.save(state)`` to ``path`` atomically (write ``path.tmp<pid>``, fsync, rename), with a
    ``checksum`` of the content that :func:`load_checkpoint` verifies.

    A write that fails removes its temporary file; temporaries left by writers that were killed (their
    process is gone) are removed after the next successful write."""
    path = Path(path)
    state = {k: v for k, v in state.items() if k != "checksum"}
    state["checksum"] = state_checksum(state)
    buf = io.BytesIO()  # serialised in memory: a failing disk write is then a plain OSError naming the file,
    torch.save(state, buf)  # not torch's "inline_container ... file write failed" RuntimeError
    atomic_write(path, lambda f: f.write(buf.getbuffer()), tmp=path.with_name(path.name + f".tmp{os.getpid()}"))
    _remove_stale_temporaries(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, it is someone else's
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    prefix = path.name + ".tmp"
    for f in path.parent.glob(glob.escape(prefix) + "*"):
        pid = f.name[len(prefix):]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            f.unlink(missing_ok=True)


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True`` and verify its
    checksum; returns the state without the ``checksum`` key.

    Raises :class:`TrainingError` when the file cannot be read, is not a checkpoint dict or fails its
    checksum (a flipped bit: the file is damaged). Checkpoints written before checksums existed (no
    ``checksum`` key) load unverified."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise TrainingError(f"cannot read checkpoint {path}: {type(e).__name__}: {_short(e)}") from e
    if not isinstance(state, dict):
        raise TrainingError(f"cannot read checkpoint {path}: it holds a {type(state).__name__}, not a checkpoint dict")
    stored = state.pop("checksum", None)
    if stored is not None:
        try:
            ok = stored == state_checksum(state)
        except Exception:  # noqa: BLE001 -- a damaged value that cannot even be hashed
            ok = False
        if not ok:
            raise TrainingError(f"checkpoint {path} fails its checksum (the file is damaged); delete it to "
                                "start afresh, or restore a copy")
    return state


def _short(e: Exception, n: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= n else text[:n] + " ..."


class CheckpointMismatch(TrainingError):
    """A checkpoint was written by a run with other settings (``changes`` lists them) and is not
    resumed."""

    def __init__(self, message: str, changes: Sequence[str] = ()):
        super().__init__(message)
        self.changes = list(changes)


def _flat(d, prefix: str = "") -> dict:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                out.update(_flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
    return out


def meta_changes(old: Optional[dict], new: Optional[dict]) -> list:
    """The fields (dotted paths) whose values differ between two run descriptions, as
    ``"train.lr (0.001 -> 0.01)"`` strings."""
    a, b = _flat(old or {}), _flat(new or {})
    changes = []
    for k in list(a) + [k for k in b if k not in a]:
        if a.get(k, "<absent>") != b.get(k, "<absent>"):
            changes.append(f"{k} ({short_repr(a.get(k, '<absent>'), 40)} -> {short_repr(b.get(k, '<absent>'), 40)})")
    return changes


def check_resumable(path, meta: Optional[dict], state: Optional[dict] = None) -> Optional[dict]:
    """Raise :class:`CheckpointMismatch` when the checkpoint at ``path`` was written with another
    ``meta`` than the given one (``meta=None``: no check). Returns the loaded state (or None when
    there is no checkpoint)."""
    if state is None:
        if not Path(path).exists():
            return None
        state = load_checkpoint(path)
    if meta is None:
        return state
    how = ("to start this run afresh pass resume=False (`--force` on the command line; the checkpoint is "
           "replaced), or give it another name or output folder")
    if "meta" not in state:
        raise CheckpointMismatch(f"checkpoint {path} records no run settings (written by an older snnedu or "
                                 f"by hand), so resuming it with these cannot be checked; {how}", ["<unknown>"])
    changes = meta_changes(state["meta"], meta)
    if changes:
        shown = ", ".join(changes[:8]) + (f" and {len(changes) - 8} more" if len(changes) > 8 else "")
        raise CheckpointMismatch(f"checkpoint {path} was written with other settings: {shown}; {how}", changes)
    return state


# -- training ----------------------------------------------------------------------------------------
def fit(model: nn.Module, train_loader, val_loader=None, *, epochs: int = 1,
        optimizer: Optional[torch.optim.Optimizer] = None, lr: float = 1e-3, scheduler=None,
        loss_fn: Callable = rate_cross_entropy, regularizer: Optional[Callable[[nn.Module], torch.Tensor]] = None,
        device=None, amp: Optional[bool] = None, checkpoint=None, resume: bool = True,
        seed: Optional[int] = None, progress: bool = True, verbose: bool = True,
        grad_clip: Optional[float] = None,
        callbacks: Sequence[Callable[[nn.Module, dict], Optional[dict]]] = (),
        meta: Optional[dict] = None) -> History:
    """Train ``model`` for ``epochs`` epochs and return the :class:`History`.

    Args:
        train_loader / val_loader: iterables of ``(x, y)`` batches; ``model(x)`` returns ``[T, B, C]``.
        optimizer: defaults to ``Adam(model.parameters(), lr)``. ``scheduler`` is stepped once per epoch.
        loss_fn: ``loss_fn(out, y)``; default :func:`snnedu.rate_cross_entropy`.
        regularizer: optional ``regularizer(model) -> scalar`` added to the loss (e.g.
            :class:`snnedu.TauVarianceRegularizer`).
        device: default CUDA when available, else CPU. ``amp``: mixed precision, default on for CUDA.
        checkpoint: file path; written after each epoch, resumed from when ``resume`` and it exists.
            Resuming restores everything from the checkpoint, the optimizer's learning rates included.
            A checkpoint whose optimizer is of another kind is a :class:`TrainingError`.
        seed: seeds everything before training (ignored when resuming: the saved RNG state is restored).
        progress: tqdm bars per epoch (also silenced by ``TQDM_DISABLE=1``); verbose: one line per epoch.
        callbacks: functions ``cb(model, row)`` called after every epoch (after validation); a dict
            they return is merged into that epoch's history row, e.g. the mean learned tau or the
            firing rate, so it is checkpointed and resumed with the rest. Keep the values plain
            Python numbers or lists.
        meta: a plain description of what produces this run (:func:`snnedu.config.run.run_config` passes
            the config). It is stored with every checkpoint, and a resume from a checkpoint written
            with other ``meta`` stops with :class:`CheckpointMismatch` naming the fields that differ
            (start afresh with ``resume=False``). ``None`` (default): not recorded, not checked.

    Distributed (``torchrun``, see :mod:`snnedu.distributed`): pass the model wrapped by
    :func:`snnedu.distributed.wrap_ddp` and a loader from :func:`snnedu.distributed.distributed_loader`.
    Every process trains on its share (the sampler's ``set_epoch`` is called each epoch); the epoch's
    loss and accuracy are summed over all processes; only rank 0 prints, shows bars and writes the
    checkpoint (the unwrapped model's state dict, loadable without DDP); ``device`` defaults to the
    device the model is on, and ``seed`` is offset by the rank (different dropout masks per process).

    Example::

        >>> hist = fit(net, train_loader, test_loader, epochs=3, lr=1e-3, checkpoint="runs/mlp.pt")
        >>> hist['val_acc']
    """
    epochs, grad_clip, resume, progress, verbose, amp = _check_fit_args(
        epochs, lr, grad_clip, resume, progress, verbose, amp, train_loader, val_loader, callbacks)
    ddp, main = _dist.is_distributed(), _dist.is_main_process()
    if device is None and ddp:
        device = next(model.parameters()).device  # each process's own GPU, chosen by init_distributed
    device = torch.device(device) if device is not None else default_device()
    if amp and device.type != "cuda":
        warnings.warn(f"fit(amp=True) on {device.type}: mixed precision is used on CUDA only, this run trains "
                      "in full precision", stacklevel=2)
    amp = device.type == "cuda" if amp is None else amp
    verbose, progress = verbose and main, progress and main
    if seed is not None:
        seed_everything(seed + _dist.rank())
    model.to(device)
    core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda"
                                  and not torch.cuda.is_bf16_supported())
    history, start = History(), 0

    if checkpoint is not None and resume and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location=device)
        check_resumable(checkpoint, meta, state)
        missing = [k for k in ("epoch", "model", "optimizer", "history") if k not in state]
        if missing:
            raise TrainingError(f"checkpoint {checkpoint} lacks {', '.join(missing)} (not written by snnedu.fit); "
                                "resume=False starts afresh")
        _check_optimizer_kind(checkpoint, state, optimizer)
        try:
            core.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise TrainingError(f"checkpoint {checkpoint} does not match this model/optimizer: {_short(e)}") from e
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        history = History(state["history"])
        start = int(state["epoch"])
        if "rng" in state:
            _set_rng_state(state["rng"], train_loader)
        elif main:
            print(f"snnedu: warning: checkpoint {checkpoint} holds no RNG state; the resumed run continues "
                  "from fresh random numbers (not bit-identical to an uninterrupted one)")
        if verbose:
            print(f"snnedu: resumed from {checkpoint} after epoch {start}/{epochs}")

    for epoch in range(start, epochs):
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):  # DistributedSampler: a new shuffle every epoch
            sampler.set_epoch(epoch)
        model.train()
        t0 = time.perf_counter()
        n, correct, loss_sum = 0, 0, 0.0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                   disable=_bars_disabled(progress))
        for i, batch in enumerate(bar):
            x, y = _unpack(batch, "train_loader", i)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            reset(model)
            with _autocast(device, amp):
                out = model(x)
                loss = loss_fn(out.float(), y)
                if regularizer is not None:
                    loss = loss + regularizer(model)
            finite = bool(torch.isfinite(loss))
            if ddp:  # all processes stop together, or the others would wait forever in backward
                finite = _dist.all_reduce_sum([0.0 if finite else 1.0])[0] == 0
            if not finite:
                raise TrainingError(f"loss became {float(loss.detach())} at epoch {epoch + 1}, batch {i + 1}; "
                                    "lower the learning rate or check the input. The last checkpoint "
                                    "(if any) is untouched.")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if grad_clip is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
            bs = y.shape[0]
            n += bs
            loss_sum += float(loss.detach()) * bs
            correct += int((predict(out.detach()) == y).sum())
            bar.set_postfix(loss=f"{loss_sum / n:.4f}", acc=f"{100 * correct / n:.1f}%")
        reset(model)
        if ddp:
            n, correct, loss_sum = _dist.all_reduce_sum([n, correct, loss_sum])
        if n == 0:
            raise TrainingError(f"fit(): train_loader gave no samples in epoch {epoch + 1} (an empty dataset, "
                                "or a subset/filter that left nothing); nothing was trained"
                                + (" and the checkpoint is untouched" if checkpoint is not None else ""))
        if scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_acc": 100.0 * correct / n,
               "lr": optimizer.param_groups[0]["lr"]}
        if val_loader is not None:
            ev = evaluate(model, val_loader, device=device, loss_fn=loss_fn, amp=amp)
            row.update(val_loss=ev["loss"], val_acc=ev["acc"])
        for cb in callbacks:
            extra = cb(model, row)
            if extra:
                row.update(extra)
        row["time_s"] = time.perf_counter() - t0
        history.append(row)
        if verbose:
            msg = f"epoch {epoch + 1}/{epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}%"
            if val_loader is not None:
                msg += f" | val loss {row['val_loss']:.4f} acc {row['val_acc']:.2f}%"
            print(msg)
        if checkpoint is not None and main:
            save_checkpoint(checkpoint, epoch=epoch + 1, model=core.state_dict(),
                            optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict() if scheduler is not None else None,
                            scaler=scaler.state_dict() if scaler.is_enabled() else None,
                            history=list(history), rng=_rng_state(train_loader),
                            optimizer_class=type(optimizer).__name__,
                            **({"meta": meta} if meta is not None else {}))
    return history


def _check_fit_args(epochs, lr, grad_clip, resume, progress, verbose, amp, train_loader, val_loader, callbacks):
    """The arguments of :func:`fit` that are not checked by anything it calls: a bad one would train
    nothing, train the wrong way (``grad_clip=-1`` is gradient ascent) or be silently read as True."""
    from ._checks import flag, positive_int, real

    epochs = positive_int("fit(): epochs", epochs)
    real("fit(): lr", lr, low=0.0, low_open=True)
    grad_clip = real("fit(): grad_clip (the largest gradient norm; None: no clipping)", grad_clip, low=0.0,
                     low_open=True, allow_none=True)
    resume, progress, verbose = (flag(f"fit(): {k}", v) for k, v in
                                 (("resume", resume), ("progress", progress), ("verbose", verbose)))
    amp = flag("fit(): amp", amp, allow_none=True)
    for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
        if loader is None and name == "val_loader":
            continue
        if not hasattr(loader, "__iter__"):
            raise TrainingError(f"fit(): {name} must be an iterable of (x, y) batches, got {type(loader).__name__}")
        try:
            empty = len(loader) == 0
        except TypeError:  # an iterable without a length: found out while training
            empty = False
        if empty:
            raise TrainingError(f"fit(): {name} is empty (no batches); nothing would be trained or measured")
    if callable(callbacks) or not all(callable(cb) for cb in callbacks):
        raise TrainingError("fit(): callbacks must be a list of functions cb(model, row)")
    return epochs, grad_clip, resume, progress, verbose, amp


def _unpack(batch, name: str, i: int):
    """A batch must be an ``(x, y)`` pair (a list or tuple of two); anything else is a clear error
    instead of "too many values to unpack"."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch
    what = f"a {type(batch).__name__} of {len(batch)}" if isinstance(batch, (tuple, list)) else \
        f"a {type(batch).__name__}"
    raise TrainingError(f"{name} batch {i + 1} is {what}; expected (x, y) pairs. Wrap the loader to drop "
                        "extra fields, e.g. ((x, y) for x, y, *_ in loader)")


def _check_optimizer_kind(checkpoint, state: dict, optimizer) -> None:
    """A checkpoint of an Adam run loaded into SGD would fail later with ``KeyError: 'momentum'``
    (or silently keep Adam's hyper-parameters): refuse it here."""
    saved = state.get("optimizer_class")
    if saved is not None and saved != type(optimizer).__name__:
        raise TrainingError(f"checkpoint {checkpoint} was written with optimizer {saved}, this run uses "
                            f"{type(optimizer).__name__}; resume=False starts afresh")
    try:
        groups = state["optimizer"]["param_groups"]
        old_keys = {k for g in groups for k in g if k != "params"}
    except (TypeError, KeyError):
        raise TrainingError(f"checkpoint {checkpoint}: its optimizer state is not an optimizer state_dict") from None
    lacking = sorted({k for g in optimizer.param_groups for k in g if k not in ("params", "initial_lr")} - old_keys)
    if lacking:  # what this optimizer's step reads and the loaded groups would not have
        raise TrainingError(f"checkpoint {checkpoint} holds the state of another kind of optimizer (its "
                            f"parameter groups lack {', '.join(lacking)}); resume=False starts afresh")
