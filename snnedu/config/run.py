"""A config turned into a run: data, model preparation, optimizer, scheduler, loss, and training.

:func:`run_config` trains a validated config with :func:`snnedu.fit` (progress bars, a checkpoint every
epoch and automatic resume, TensorBoard logs) and writes ``result.json`` (accuracy, epochs, device,
data used, wall time); :func:`build_data` loads its data through the dataset's entry in
:data:`snnedu.config.registry.DATASETS`.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn

from .._checks import flags
from .._io import atomic_write
from ..base import materialize
from ..errors import ConfigError, SnneduError
from .registry import DATASETS, build_model
from .schema import check_name, one_line

__all__ = ["build_data", "make_optimizer", "make_scheduler", "make_loss", "prepare_model", "materialize_from", "spread_subset", "run_meta", "run_config",
           "RESUMABLE_CHANGES"]


@flags("with_val")
def build_data(cfg: dict, with_val: bool = False):
    """``(DataSplit, train_loader, test_loader)`` of ``cfg['data']`` (prints which data is used).

    With ``with_val=True`` it returns ``(DataSplit, train_loader, val_loader, test_loader)``: where
    ``data.val_per_class`` is set, the last that many training samples of every class are held out
    of training as a validation split (``val_loader`` is None otherwise)."""
    from torch.utils.data import DataLoader

    from ..data import DataSplit, make_loaders, take_per_class
    from ..data.common import _collate_fn, hold_out_per_class

    d = cfg["data"]
    split = DATASETS[d["dataset"]].load(d, cfg["train"]["seed"])
    val = None
    if d["val_per_class"]:
        try:
            train, val = hold_out_per_class(split.train, d["val_per_class"])
        except ValueError as e:
            raise ConfigError(f"data.val_per_class: {e}") from None
        split = DataSplit(train, split.test, split.source, split.offline_standin)
    if d["train_per_class"] or d["test_per_class"] or val is not None:
        train = take_per_class(split.train, d["train_per_class"]) if d["train_per_class"] else split.train
        test = take_per_class(split.test, d["test_per_class"]) if d["test_per_class"] else split.test
        held = f" + {len(val)} validation held out of training" if val is not None else ""
        split = DataSplit(train, test, f"{split.source} (subset: {len(train)} train{held} / {len(test)} test)",
                          split.offline_standin)
    train_loader, test_loader = make_loaders(split, batch_size=d["batch_size"], seed=cfg["train"]["seed"],
                                             test_batch_size=d["test_batch_size"])
    if not with_val:
        return split, train_loader, test_loader
    val_loader = None if val is None else DataLoader(val, batch_size=d["test_batch_size"], shuffle=False,
                                                     collate_fn=_collate_fn(val))
    return split, train_loader, val_loader, test_loader


def _param_groups(cfg: dict, model: nn.Module) -> list:
    """Optimizer groups: the learnable decays at ``train.tau_lr`` and the learnable thresholds at
    ``train.threshold_lr`` where those are set, everything else at ``train.lr``; frozen parameters
    (``requires_grad=False``, e.g. under a learning mode) are left out."""
    from ..decay import decay_parameters
    from ..threshold import threshold_parameters

    t = cfg["train"]
    special = []
    if t["tau_lr"] is not None:
        special.append((t["tau_lr"], list(decay_parameters(model))))
    if t["threshold_lr"] is not None:
        special.append((t["threshold_lr"], list(threshold_parameters(model))))
    taken = {id(p) for _, ps in special for p in ps}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in taken], "lr": t["lr"]}]
    groups += [{"params": [p for p in ps if p.requires_grad], "lr": lr} for lr, ps in special]
    return [g for g in groups if g["params"]]


def prepare_model(cfg: dict, model: nn.Module) -> nn.Module:
    """Apply ``train.learning_mode`` (after :func:`snnedu.materialize`, before the optimizer)."""
    mode = cfg["train"]["learning_mode"]
    if mode is not None:
        from ..threshold import set_learning_mode

        try:
            set_learning_mode(model, mode)
        except SnneduError as e:
            raise ConfigError(f"train.learning_mode: {one_line(e)}") from None
    return model


def make_optimizer(cfg: dict, model: nn.Module):
    """The optimizer of ``cfg['train']`` over ``model``'s parameter groups (learning rates per group)."""
    t = cfg["train"]
    params = _param_groups(cfg, model)
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])
    return torch.optim.Adam(params, lr=t["lr"], weight_decay=t["weight_decay"])


def make_scheduler(cfg: dict, optimizer):
    """The learning-rate scheduler of ``train.scheduler`` (``None`` for ``type: none``)."""
    s = cfg["train"]["scheduler"]
    if s["type"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s["step_size"], gamma=s["gamma"])
    if s["type"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=s["T_max"] or cfg["train"]["epochs"])
    return None


def make_loss(cfg: dict):
    """The loss function of ``train.loss`` (rate cross-entropy, rate MSE or TET)."""
    from ..losses import TETLoss, rate_cross_entropy, rate_mse

    t = cfg["train"]
    if t["loss"] == "tet":
        return TETLoss(lam=t["tet_lambda"], phi=t["tet_phi"])
    return rate_mse if t["loss"] == "mse" else rate_cross_entropy


class _Limited:
    """The first ``n`` batches of a loader (a short epoch for smoke tests); keeps ``generator``."""

    def __init__(self, loader, n: int):
        self.loader, self.n = loader, n
        self.generator = getattr(loader, "generator", None)
        self.sampler = getattr(loader, "sampler", None)  # fit calls sampler.set_epoch (distributed runs)

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i >= self.n:
                return
            yield batch

    def __len__(self):
        return min(self.n, len(self.loader))


def _spread_subset(loader, n_batches: int):
    """A loader over ``n_batches`` test batches whose samples are spread evenly over the whole test set.

    Smoke runs (``max_batches``) evaluate on a few batches; the first few of a class-sorted test set
    (the MNIST subset, the DVS stand-ins) would all be one class and give 0 % or 100 %. Evenly spaced
    indices cover every class in proportion."""
    from torch.utils.data import DataLoader

    return DataLoader(spread_subset(loader.dataset, n_batches * loader.batch_size), batch_size=loader.batch_size,
                      shuffle=False, collate_fn=loader.collate_fn, num_workers=loader.num_workers)


def spread_subset(ds, n: int):
    """``n`` samples of ``ds`` at evenly spaced indices (every class of a class-sorted set, in proportion)."""
    from torch.utils.data import Subset

    idx = torch.linspace(0, len(ds) - 1, min(n, len(ds))).round().long().unique().tolist()
    return Subset(ds, idx)


def materialize_from(cfg: dict, model: nn.Module, loader) -> nn.Module:
    """Give lazily shaped parameters their shape from two samples of ``loader``'s first batch (event
    frames are ``[T, B, ...]``, images ``[B, ...]``), then apply :func:`prepare_model`."""
    x0 = next(iter(loader))[0]
    example = x0[:, :2] if DATASETS[cfg["data"]["dataset"]].events else x0[:2]
    materialize(model, example)  # before the optimizer (and DDP)
    return prepare_model(cfg, model)


def _tensorboard(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # pragma: no cover - tensorboard is in requirements.txt
        raise SnneduError("TensorBoard logging needs the 'tensorboard' package: pip install tensorboard") from e
    writer = SummaryWriter(str(log_dir))

    def log(model, row):
        for k, v in row.items():
            if isinstance(v, (int, float)) and k != "epoch":
                writer.add_scalar(k, v, row["epoch"])
        writer.flush()
    return writer, log


RESUMABLE_CHANGES = ("train.epochs", "source")  # config fields a resumed run may change


def run_meta(cfg: dict, max_batches: Optional[int] = None) -> dict:
    """What a run's checkpoint records about the settings that produced it: the config (less
    :data:`RESUMABLE_CHANGES`) and ``max_batches``, as plain JSON values."""
    c = json.loads(json.dumps(cfg, sort_keys=True, default=str))
    c.pop("source", None)
    c.get("train", {}).pop("epochs", None)
    return {"config": c, "max_batches": max_batches}


@flags("progress", "resume")
def run_config(cfg: dict, out_dir="runs", *, epochs: Optional[int] = None, max_batches: Optional[int] = None,
               device=None, progress: bool = True, resume: bool = True) -> dict:
    """Train ``cfg``; write ``OUT/NAME/{checkpoint.pt, tb/, result.json}`` and return the result dict.

    ``epochs`` overrides ``train.epochs`` and ``max_batches`` cuts every epoch short (smoke tests).
    A rerun with the same ``out_dir`` resumes after the last finished epoch. The checkpoint records
    the config that produced it (and ``max_batches``): a rerun with a config that differs in anything
    but ``train.epochs`` and ``source`` stops with :class:`snnedu.train.CheckpointMismatch` naming the
    fields, before any data is loaded; ``resume=False`` (``--force``) starts that config afresh.

    Under ``torchrun --nproc_per_node=N -m snnedu train CONFIG`` every process trains its share of
    the training set (``data.batch_size`` per process) on its own GPU (gloo on CPU) with
    DistributedDataParallel; rank 0 prepares the data first, and alone writes the checkpoint, the
    TensorBoard logs and ``result.json``.
    """
    import torch.distributed as dist

    from .. import distributed as D
    from ..train import check_resumable, default_device, fit, seed_everything

    run_dir = Path(out_dir) / check_name(cfg["name"])  # never outside out_dir
    t = cfg["train"]
    n_epochs = epochs or t["epochs"]
    meta = run_meta(cfg, max_batches)
    if resume:  # refuse a checkpoint of another config before loading any data
        check_resumable(run_dir / "checkpoint.pt", meta)
    owns_group = not (dist.is_available() and dist.is_initialized())
    info = D.init_distributed(device=device)  # nothing happens unless launched by torchrun
    owns_group = owns_group and info.distributed
    main = D.is_main_process()
    run_dir.mkdir(parents=True, exist_ok=True)
    if info.distributed:
        device = info.device
    device = torch.device(device) if device is not None else default_device()
    seed_everything(t["seed"])
    if not main:
        D.barrier()  # rank 0 downloads / builds the frame cache first
    split, train_loader, test_loader = build_data(cfg)
    if main:
        D.barrier()
    if info.distributed:
        train_loader = D.distributed_loader(split.train, cfg["data"]["batch_size"], seed=t["seed"])
    if max_batches:
        train_loader, test_loader = _Limited(train_loader, max_batches), _spread_subset(test_loader, max_batches)
    model = build_model(cfg)
    materialize_from(cfg, model, test_loader)  # lazily shaped parameters; the learning mode
    model = D.wrap_ddp(model, device)  # unchanged outside torchrun
    optimizer = make_optimizer(cfg, model)
    scheduler = make_scheduler(cfg, optimizer)
    regularizer = None
    if t["tau_lambda"] > 0:
        from ..losses import TauVarianceRegularizer
        regularizer = TauVarianceRegularizer(lam=t["tau_lambda"])
    writer, tb_log = _tensorboard(run_dir / "tb") if main else (None, None)
    start = time.perf_counter()
    try:
        history = fit(model, train_loader, test_loader, epochs=n_epochs, optimizer=optimizer, scheduler=scheduler,
                      loss_fn=make_loss(cfg), regularizer=regularizer, device=device, amp=t["amp"],
                      checkpoint=run_dir / "checkpoint.pt", resume=resume, seed=t["seed"], progress=progress,
                      grad_clip=t["grad_clip"], callbacks=[tb_log] if main else [], meta=meta)
    finally:
        if writer is not None:
            writer.close()
        if owns_group:
            D.cleanup()
    wall = time.perf_counter() - start
    best = history.best("val_acc")
    result = {
        "name": cfg["name"], "source": cfg["source"],
        "final_test_acc": history[-1]["val_acc"], "best_test_acc": best["val_acc"], "best_epoch": best["epoch"],
        "epochs": len(history), "epochs_configured": t["epochs"], "max_batches_per_epoch": max_batches,
        "test_samples": len(test_loader.dataset) if hasattr(test_loader, "dataset") else None,
        "device": str(device) if device.type != "cuda" else f"cuda ({torch.cuda.get_device_name(device)})",
        "amp": bool(device.type == "cuda" and t["amp"] is not False),  # what ran: mixed precision is CUDA-only
        "data": split.source, "offline_standin": split.offline_standin,
        "wall_time_s_this_run": round(wall, 2), "machine": platform.node(), "torch": torch.__version__,
        "processes": info.world_size,
        "history": list(history), "config": cfg,
    }
    if not main:
        return result
    text = json.dumps(result, indent=2, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
    atomic_write(run_dir / "result.json", lambda f: f.write(text.encode()), durable=False,
                 tmp=run_dir / f"result.json.tmp{os.getpid()}")
    return result
