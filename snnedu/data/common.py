"""Shared pieces of the data loaders: the returned split, a compact image dataset, helpers."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from .._checks import flags, positive_int

__all__ = ["DataSplit", "ImageTensorDataset", "data_root", "make_loaders", "take_per_class", "local_or_download"]


def data_root(root: Optional[str] = None) -> Path:
    """Where datasets live: ``root``, else ``$SNNEDU_DATA``, else ``~/.cache/snnedu/data``."""
    return Path(root or os.environ.get("SNNEDU_DATA") or Path.home() / ".cache" / "snnedu" / "data")


class ImageTensorDataset(Dataset):
    """Images kept as ``uint8`` ``[N, C, H, W]`` (compact), returned as float ``[C, H, W]`` in [0, 1].

    Args:
        images (torch.Tensor): ``uint8 [N, C, H, W]`` images.
        labels (torch.Tensor): ``[N]`` integer class labels (stored as ``int64`` in ``targets``).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {images.dtype} {list(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must be [N] with N = {images.shape[0]}, got {list(labels.shape)}")
        self.images = images
        self.targets = labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.images[i].float().div_(255.0), self.targets[i]


@dataclass
class DataSplit:
    """A train/test pair and where it came from.

    Args:
        train (Dataset): the training set.
        test (Dataset): the test set.
        source (str): a one-line, human-readable description that results must quote (e.g. "MNIST
            (torchvision, 60,000 train / 10,000 test)" or the offline subset's name).
        offline_standin (bool): ``True`` when the data is an offline stand-in rather than the real
            dataset (default ``False``).
    """

    train: Dataset
    test: Dataset
    source: str
    offline_standin: bool = False

    def __repr__(self) -> str:
        return f"DataSplit(train={len(self.train)}, test={len(self.test)}, source={self.source!r})"


def _targets(ds) -> torch.Tensor:
    if isinstance(ds, Subset):
        return torch.as_tensor(_targets(ds.dataset))[torch.as_tensor(ds.indices)]
    return torch.as_tensor(ds.targets)


def take_per_class(ds, n_per_class: int) -> Subset:
    """The first ``n_per_class`` samples of every class, in dataset order (deterministic)."""
    n_per_class = positive_int("n_per_class", n_per_class)
    y = _targets(ds)
    idx = torch.cat([torch.nonzero(y == c).flatten()[:n_per_class] for c in torch.unique(y)])
    return Subset(ds, idx.sort().values.tolist())


def hold_out_per_class(ds, n_per_class: int) -> Tuple[Subset, Subset]:
    """``(rest, held_out)``: the *last* ``n_per_class`` samples of every class are held out (e.g. as a
    validation split taken from the training data), the rest keep their dataset order."""
    n_per_class = positive_int("n_per_class", n_per_class)
    y = _targets(ds)
    held = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        if len(idx) <= n_per_class:
            raise ValueError(f"class {int(c)} has {len(idx)} samples; cannot hold out {n_per_class} and keep "
                             "any for training")
        held.append(idx[-n_per_class:])
    held_idx = torch.cat(held).sort().values
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[held_idx] = False
    return Subset(ds, torch.nonzero(keep).flatten().tolist()), Subset(ds, held_idx.tolist())


def _collate_fn(ds):
    """The dataset's own ``collate_fn`` (e.g. time-first batches of event frames), else the default."""
    while isinstance(ds, Subset):
        ds = ds.dataset
    return getattr(ds, "collate_fn", None)


def make_loaders(split: DataSplit, batch_size: int = 64, seed: int = 0, test_batch_size: int = 256,
                 num_workers: int = 0):
    """``(train_loader, test_loader)``; the training order is shuffled by a generator seeded with ``seed``.

    A dataset with a ``collate_fn`` attribute batches with it: event-frame datasets give
    ``[T, B, 2, H, W]`` batches (time first), image datasets ``[B, C, H, W]``."""
    g = torch.Generator().manual_seed(seed)
    train = DataLoader(split.train, batch_size=batch_size, shuffle=True, generator=g, num_workers=num_workers,
                       drop_last=False, collate_fn=_collate_fn(split.train))
    test = DataLoader(split.test, batch_size=test_batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=_collate_fn(split.test))
    return train, test


def _new_dirs_cleanup(root: Path):
    """Remove folders a failed download created (torchvision leaves empty folders behind)."""
    existed = {p for p in root.rglob("*")} if root.exists() else set()
    root_existed = root.exists()

    def cleanup():
        if not root.exists():
            return
        for p in sorted(root.rglob("*"), key=lambda q: len(q.parts), reverse=True):
            if p not in existed and p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        if not root_existed and not any(root.iterdir()):
            root.rmdir()
    return cleanup


@flags("download")
def local_or_download(root: Path, read_local: Callable[[Path], Any], fetch: Callable[[Path], Any],
                      download: bool) -> Tuple[Optional[Any], str, str]:
    """The first two attempts of every loader: a local copy, then (``download=True``) a download.

    Returns ``(data, how, reason)``: ``data`` is what ``read_local(root)`` or ``fetch(root)`` returned
    (``None`` when both failed), ``how`` says which one worked ("torchvision files under" /
    "downloaded by torchvision to"), and ``reason`` says why not, for the one line a fallback prints.
    Folders a failed download created are removed again.
    """
    try:
        return read_local(root), "torchvision files under", ""
    except Exception as local_err:  # noqa: BLE001 - any failure means "not available locally"
        why = local_err if isinstance(local_err, FileNotFoundError) else type(local_err).__name__
        reason = f"no local copy ({why})"
    if download:
        cleanup = _new_dirs_cleanup(root)
        try:
            return fetch(root), "downloaded by torchvision to", ""
        except Exception as dl_err:  # noqa: BLE001
            cleanup()
            reason += f"; download failed ({type(dl_err).__name__}: offline?)"
    return None, "", reason
