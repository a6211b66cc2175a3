"""Data-parallel training on several GPUs (or CPU processes) with ``DistributedDataParallel``.

Launch one process per GPU with ``torchrun``; every helper here is a no-op in a plain
single-process run, so the same script runs both ways::

    torchrun --nproc_per_node=4 train.py          # or: torchrun --nproc_per_node=4 -m snnedu train CONFIG

    info = snnedu.distributed.init_distributed()  # nccl on CUDA, gloo on CPU; picks this rank's device
    net = snnedu.SpikingMLP(neuron=lambda: snnedu.PLIF(per_neuron=True))
    snnedu.materialize(net.to(info.device), example)   # lazily shaped parameters: BEFORE wrapping
    net = snnedu.distributed.wrap_ddp(net, info.device)
    loader = snnedu.distributed.distributed_loader(train_set, batch_size=64, seed=0)
    snnedu.fit(net, loader, val_loader, epochs=10, device=info.device)  # rank 0 prints and checkpoints
    snnedu.distributed.cleanup()

Spiking networks under DDP. A neuron keeps its membrane potential as a plain attribute during one
multi-step forward (it is not a buffer), so DDP neither broadcasts nor synchronises it; multi-step
calls start from rest, and :func:`snnedu.reset` works on the wrapped model too. Gradients are
averaged over ranks in ``backward`` as for any network; batch-norm statistics stay per process
(pass ``sync_bn=True`` to :func:`wrap_ddp` for ``SyncBatchNorm``). Per-neuron parameters that get
their shape at the first forward (``PLIF(per_neuron=True)``, ``learn_threshold='neuron'``) must be
materialised with :func:`snnedu.materialize` before :func:`wrap_ddp` — DDP registers its gradient
hooks on the parameters that exist when it is built, and refuses uninitialised ones.

``batch_size`` is per process: the effective batch is ``world_size * batch_size``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler

from ._checks import flags
from .errors import SnneduError

__all__ = ["DistInfo", "init_distributed", "is_distributed", "rank", "world_size", "is_main_process",
           "wrap_ddp", "unwrap", "distributed_loader", "all_reduce_sum", "barrier", "cleanup"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank``, ``world_size``, ``local_rank`` (its GPU on the node),
    ``device``, ``backend`` (``None`` when not distributed) and ``distributed``."""
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: Optional[str]
    distributed: bool


def _launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def is_distributed() -> bool:
    """True when a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 and in a plain single-process run: the process that prints and saves."""
    return rank() == 0


def init_distributed(backend: Optional[str] = None, device=None) -> DistInfo:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``).

    ``backend`` defaults to ``nccl`` when CUDA is available and ``gloo`` otherwise. On CUDA the
    process uses GPU ``LOCAL_RANK`` (and makes it the current device). ``device`` forces a device
    type (``'cpu'`` trains with gloo on CPU even where GPUs exist). Not launched by torchrun: nothing
    is initialised and the default device of a single process is returned. Calling it again returns
    the same answer.
    """
    want = torch.device(device) if device is not None else None
    use_cuda = torch.cuda.is_available() if want is None else want.type == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if not _launched_by_torchrun():
        dev = want or torch.device("cuda" if use_cuda else "cpu")
        return DistInfo(0, 1, 0, dev, None, False)
    if use_cuda:
        dev = torch.device("cuda", local_rank if want is None or want.index is None else want.index)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        backend = backend or ("nccl" if use_cuda else "gloo")
        dist.init_process_group(backend=backend, init_method="env://")
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend(), True)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` (or ``DataParallel``) wrapper, else ``model``."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


@flags("sync_bn")
def wrap_ddp(model: nn.Module, device=None, *, sync_bn: bool = False, **ddp_kwargs) -> nn.Module:
    """Move ``model`` to ``device`` and wrap it in ``DistributedDataParallel``.

    Returns ``model`` (moved) unchanged when no multi-process group is initialised, so single-process
    runs need no special case. Raises :class:`snnedu.SnneduError` when a parameter is still lazily
    shaped: call :func:`snnedu.materialize` (with one example batch) first. ``ddp_kwargs`` go to
    ``DistributedDataParallel`` (e.g. ``find_unused_parameters=True``).
    """
    lazy = [n for n, p in model.named_parameters() if isinstance(p, nn.parameter.UninitializedParameter)]
    if lazy:
        raise SnneduError(f"wrap_ddp: parameters {', '.join(lazy[:3])}{' ...' if len(lazy) > 3 else ''} have "
                          "no shape yet; call snnedu.materialize(model, example_batch) before wrapping, so that "
                          "every process registers the same parameters with DDP")
    if device is not None:
        model = model.to(device)
    if not is_distributed():
        return model
    if sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    if dev.type == "cuda":
        ddp_kwargs.setdefault("device_ids", [dev.index if dev.index is not None else torch.cuda.current_device()])
    return nn.parallel.DistributedDataParallel(model, **ddp_kwargs)


@flags("drop_last", "shuffle")
def distributed_loader(dataset, batch_size: int, seed: int = 0, *, shuffle: bool = True, drop_last: bool = False,
                       num_workers: int = 0, collate_fn=None, **loader_kwargs) -> DataLoader:
    """A ``DataLoader`` that gives this process its share of ``dataset`` (``DistributedSampler``).

    Every process sees a different ``1/world_size`` of the samples each epoch, in an order drawn from
    ``seed`` and the epoch: call ``loader.sampler.set_epoch(epoch)`` at the start of every epoch
    (:func:`snnedu.fit` does). Without ``drop_last`` the sampler repeats a few samples so that every
    process gets the same number. A dataset with a ``collate_fn`` attribute (event frames, time-first
    batches) is batched with it. Works unchanged in a single process (world size 1).
    """
    if collate_fn is None:
        from .data.common import _collate_fn
        collate_fn = _collate_fn(dataset)
    sampler = DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=shuffle, seed=seed,
                                 drop_last=drop_last)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      collate_fn=collate_fn, drop_last=drop_last, **loader_kwargs)


def all_reduce_sum(values, device=None) -> list:
    """Sum a list of numbers over all processes (returned as floats; unchanged when not distributed)."""
    if not is_distributed():
        return [float(v) for v in values]
    dev = device
    if dev is None:
        dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier() -> None:
    """Wait for every process (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group (no-op when none was initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
