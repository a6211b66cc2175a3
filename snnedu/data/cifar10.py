"""CIFAR-10: the real dataset, or — offline — SynthShapes-10, a generated 10-class 32x32 RGB stand-in.

Order of attempts in :func:`load_cifar10`:

1. the CIFAR-10 python batches already under ``root/cifar-10-batches-py`` (the torchvision layout:
   ``data_batch_1`` .. ``data_batch_5``, ``test_batch``, optionally ``batches.meta``) — read as they
   are (no checksum test, so a copy with fewer images per batch is accepted);
2. torchvision's download into ``root`` (when ``download=True``), then the same reader;
3. if both fail and ``offline_fallback=True``: **SynthShapes-10** (:func:`synthetic_cifar10`), a
   procedurally generated set of coloured shapes and textures. It is *not* CIFAR-10 and no CIFAR-10
   accuracy can be read from it; it only lets CIFAR-shaped code (3x32x32 inputs, 10 classes, the same
   augmentation) run and learn something offline.

It prints exactly one line saying which data it returned, and :attr:`DataSplit.source` repeats it.

Preprocessing (both sources, as in the PLIF / DS-ResNet training scripts):

- training split, when ``augment=True``: zero-padding by 4 pixels then a random 32x32 crop
  (``RandomCrop(32, padding=4)``) and a horizontal flip with probability 1/2
  (``RandomHorizontalFlip``), drawn from a :class:`torch.Generator` seeded by ``seed``;
- both splits, when ``normalize=True``: ``(x - CIFAR10_MEAN) / CIFAR10_STD`` per channel, on images
  scaled to [0, 1]. SynthShapes-10 uses the *same* CIFAR-10 constants (not its own statistics), so a
  model and its preprocessing do not change when the data source does.

Images are stored as ``uint8 [N, 3, 32, 32]`` and turned into float on access.
"""
from __future__ import annotations

import contextlib
import io
import math
import pickle
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import flag, flags, positive_int
from ..errors import DataError
from .common import DataSplit, ImageTensorDataset, data_root, local_or_download

__all__ = ["load_cifar10", "synthetic_cifar10", "CIFAR10Dataset", "CIFAR10_MEAN", "CIFAR10_STD",
           "CIFAR10_CLASSES", "SYNTH_CLASSES", "SYNTH_SOURCE", "OFFLINE_SOURCE"]

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SYNTH_CLASSES = ("disc", "ring", "square", "triangle", "cross", "horizontal stripes", "vertical stripes",
                 "diagonal stripes", "checkerboard", "blob pair")
SYNTH_SOURCE = ("SynthShapes-10 (procedurally generated 32x32 RGB shapes and textures, 10 classes; "
                "a generated offline stand-in, NOT CIFAR-10)")
OFFLINE_SOURCE = SYNTH_SOURCE  # same name as in the MNIST module: the offline stand-in's source string

_BATCH_DIR = "cifar-10-batches-py"
_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_FILE = "test_batch"


# --------------------------------------------------------------------------------------------------
# the dataset: compact uint8 storage, augmentation + normalisation on access
# --------------------------------------------------------------------------------------------------
class CIFAR10Dataset(ImageTensorDataset):
    """``uint8 [N, 3, 32, 32]`` images returned as float ``[3, 32, 32]`` after optional augmentation.

    Args:
        images (torch.Tensor): ``uint8 [N, 3, H, W]`` images.
        labels (torch.Tensor): ``[N]`` integer classes.
        augment (bool): keyword only; random crop (zero padding ``pad``) + horizontal flip on every
            access (default ``False``).
        normalize (bool): keyword only; subtract ``mean`` and divide by ``std`` per channel (after
            scaling to [0, 1]); otherwise values stay in [0, 1] (default ``True``).
        mean (sequence of float): keyword only; per-channel mean for ``normalize`` (default: the
            CIFAR-10 training-set means 0.4914, 0.4822, 0.4465).
        std (sequence of float): keyword only; per-channel std for ``normalize`` (default: 0.2023,
            0.1994, 0.2010, the values the PLIF and MLF codes use).
        pad (int): keyword only; zero padding of the random crop, in pixels (default 4).
        seed (int): keyword only; seeds the augmentation generator (default 0). In the main process
            the draws follow the order of the accesses, so the same sequence of indices gives the
            same images; in a DataLoader worker the generator is seeded from ``seed`` and the
            worker's own seed (which a seeded loader makes reproducible), so workers do not repeat
            each other's draws.
        classes (sequence of str): keyword only; class names (``dataset.classes``; default the ten
            CIFAR-10 names).

    Example::

        >>> ds = CIFAR10Dataset(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.arange(4))
        >>> x, y = ds[0]                 # x: float [3, 32, 32], y: int64 scalar
        >>> ds.augment = False           # switch the augmentation off (e.g. for a visual check)
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, augment: bool = False,
                 normalize: bool = True, mean: Sequence[float] = CIFAR10_MEAN,
                 std: Sequence[float] = CIFAR10_STD, pad: int = 4, seed: int = 0,
                 classes: Sequence[str] = CIFAR10_CLASSES):
        super().__init__(images, labels)
        self.augment = flag("augment", augment)
        self.normalize = flag("normalize", normalize)
        c = images.shape[1]
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(c, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(c, 1, 1)
        self.pad = int(pad)
        self.seed = int(seed)
        self.classes = tuple(classes)
        self._gen = torch.Generator().manual_seed(self.seed)
        self._worker_gen = None  # (worker seed, generator) inside a DataLoader worker

    def reseed(self, seed: Optional[int] = None) -> None:
        """Restart the augmentation draws (from ``seed``, default the constructor's)."""
        if seed is not None:
            self.seed = int(seed)
        self._gen = torch.Generator().manual_seed(self.seed)
        self._worker_gen = None

    def _generator(self) -> torch.Generator:
        info = torch.utils.data.get_worker_info()
        if info is None:
            return self._gen
        if self._worker_gen is None or self._worker_gen[0] != info.seed:
            mixed = int(np.random.SeedSequence([self.seed, info.seed % 2**63]).generate_state(1)[0])
            self._worker_gen = (info.seed, torch.Generator().manual_seed(mixed))
        return self._worker_gen[1]

    def __getitem__(self, i):
        img = self.images[i]
        if self.augment:
            g = self._generator()
            p = self.pad
            h, w = img.shape[-2:]
            draws = torch.randint(0, 2 * p + 1, (2,), generator=g)
            flip = bool(torch.rand((), generator=g) < 0.5)
            dy, dx = int(draws[0]), int(draws[1])
            img = F.pad(img, (p, p, p, p))[:, dy:dy + h, dx:dx + w]
            if flip:
                img = img.flip(-1)
        x = img.float().div_(255.0)
        if self.normalize:
            x = x.sub_(self.mean).div_(self.std)
        return x, self.targets[i]


# --------------------------------------------------------------------------------------------------
# real CIFAR-10
# --------------------------------------------------------------------------------------------------
def _read_batch(path: Path):
    # The CIFAR-10 "python version" is a set of pickled dicts; only load files you trust.
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = entry["labels"] if "labels" in entry else entry["fine_labels"]
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.as_tensor(labels, dtype=torch.long)


def _read_local_cifar10(root: Path):
    """Images/labels/classes from ``root/cifar-10-batches-py`` (raises when a batch is missing)."""
    folder = root / _BATCH_DIR
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {_BATCH_DIR}")
    missing = [n for n in _TRAIN_FILES + (_TEST_FILE,) if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{_BATCH_DIR} lacks {', '.join(missing)}")
    parts = [_read_batch(folder / n) for n in _TRAIN_FILES]
    train = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    test = _read_batch(folder / _TEST_FILE)
    classes = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        with open(folder / "batches.meta", "rb") as f:
            classes = tuple(pickle.load(f, encoding="latin1")["label_names"])
    return train, test, classes


def _download_cifar10(root: Path):
    from torchvision.datasets import CIFAR10

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        CIFAR10(str(root), train=True, download=True)
    return _read_local_cifar10(root)


def _first_balanced(labels: torch.Tensor, n: Optional[int]) -> Optional[torch.Tensor]:
    """Indices of the first ``n`` samples in dataset order, as balanced over the classes as possible."""
    if n is None or n >= labels.numel():
        return None
    classes = torch.unique(labels)
    k = classes.numel()
    idx = []
    for j, c in enumerate(classes):
        want = n // k + (1 if j < n % k else 0)
        idx.append(torch.nonzero(labels == c).flatten()[:want])
    return torch.cat(idx).sort().values


# --------------------------------------------------------------------------------------------------
# SynthShapes-10: the generated stand-in
# --------------------------------------------------------------------------------------------------
_SYNTH_CACHE: dict = {}
_SYNTH_CACHE_MAX = 4


def _split_seed(seed: int, split: int) -> int:
    return int(np.random.SeedSequence([int(seed) % 2**63, split]).generate_state(1)[0])


def _render_synthshapes(n: int, seed: int, size: int = 32):
    """Draw ``n`` SynthShapes-10 images: ``uint8 [n, 3, size, size]`` and balanced ``int64 [n]`` labels.

    Every image: a random background colour with a smooth random shading, one object of the class
    drawn in a random foreground colour (far from the background colour, but carrying no class
    information), at a random position, size and rotation/phase, with anti-aliased edges, plus pixel
    noise. Textures (stripes, checkerboard) fill a soft-edged disc. Stripe orientations are kept at
    least 30 degrees apart between the stripe classes (horizontal: wave vector 90±15°, vertical:
    0±15°, diagonal: ±45±15°), and every class is closed under a horizontal flip, so the
    training augmentation never turns one class into another.
    """
    g = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.rand(*s, generator=g)  # noqa: E731
    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=g)]

    # per-image parameters (all drawn for every image, so the stream does not depend on the labels)
    half = size / 2
    cx, cy = (rand(n) - 0.5) * 0.375 * size, (rand(n) - 0.5) * 0.375 * size   # centre within ±6 px
    radius = size * (0.19 + 0.15 * rand(n))                                   # 6 .. 11 px
    theta = 2 * math.pi * rand(n)
    shape_a, shape_b = rand(n), rand(n)                                       # class-specific knobs
    period = 4.0 + 3.0 * rand(n)                                              # texture period, px
    phase1, phase2 = 2 * math.pi * rand(n), 2 * math.pi * rand(n)
    tilt = (rand(n) - 0.5) * math.radians(30)                                 # ±15° on stripes
    diag_sign = torch.where(rand(n) < 0.5, -1.0, 1.0)
    fg = rand(n, 3)
    cand = rand(n, 4, 3)                                                      # background: farthest of 4
    far = (cand - fg[:, None]).norm(dim=-1).argmax(dim=1)
    bg = cand[torch.arange(n), far]
    # smooth shading: 4x4 random values per channel, bilinearly upsampled (as two small matrix products)
    up = F.interpolate(torch.eye(4).unsqueeze(0), size=size, mode="linear", align_corners=False)[0]  # [4, size]
    shading = torch.einsum("iy,ncij,jx->ncyx", up, torch.randn(n, 3, 4, 4, generator=g), up)
    noise = torch.randn(n, 3, size, size, generator=g)

    coords = torch.arange(size, dtype=torch.float32) + 0.5 - half
    mask = torch.empty(n, size, size)         # foreground weight in [0, 1]

    for cls in range(10):                     # each class is drawn only on its own images
        m = torch.nonzero(labels == cls).flatten()
        k = m.numel()
        if k == 0:
            continue
        col = lambda v: v[m].view(k, 1, 1)  # noqa: E731 - a per-image parameter, broadcastable
        X = coords.view(1, 1, size) - col(cx)                                # pixels, centred on object
        Y = coords.view(1, size, 1) - col(cy)
        R, P, a, b = col(radius), col(period), col(shape_a), col(shape_b)
        c, s = col(theta).cos(), col(theta).sin()
        U, V = (c * X + s * Y) / R, (-s * X + c * Y) / R                     # rotated, in object radii
        r = torch.sqrt(U ** 2 + V ** 2)
        window = None                                                        # soft disc around textures
        if cls == 0:                                                         # disc
            sdf = (1.0 - r) * R
        elif cls == 1:                                                       # ring (outer radius 1)
            t = 0.18 + 0.12 * a
            sdf = (t - (r - (1.0 - t)).abs()) * R
        elif cls == 2:                                                       # square
            sdf = (0.8 - torch.maximum(U.abs(), V.abs())) * R
        elif cls == 3:                                                       # triangle, circumradius 1
            sdf = torch.stack([0.5 - (U * math.cos(j * 2 * math.pi / 3) + V * math.sin(j * 2 * math.pi / 3))
                               for j in range(3)]).amin(dim=0) * R
        elif cls == 4:                                                       # cross
            w = 0.22 + 0.13 * a
            sdf = torch.maximum(torch.minimum(1.0 - U.abs(), w - V.abs()),
                                torch.minimum(w - U.abs(), 1.0 - V.abs())) * R
        elif cls in (5, 6, 7):                                               # stripes
            angle = col(tilt) + {5: math.pi / 2, 6: 0.0, 7: math.pi / 4}[cls]
            if cls == 7:
                angle = angle * col(diag_sign)
            proj = X * angle.cos() + Y * angle.sin()
            sdf = torch.sin(2 * math.pi * proj / P + col(phase1)) * P / (2 * math.pi)
            window = torch.sigmoid(2.0 * (1.1 - r) * R)
        elif cls == 8:                                                       # checkerboard
            cell = 0.75 * P
            sdf = (torch.sin(math.pi * U * R / cell + col(phase1))
                   * torch.sin(math.pi * V * R / cell + col(phase2))) * cell / math.pi
            window = torch.sigmoid(2.0 * (1.1 - r) * R)
        else:                                                                # blob pair
            rho, d = 0.30 + 0.12 * a, 0.55 + 0.12 * b
            sdf = (rho - torch.minimum(torch.sqrt((U - d) ** 2 + V ** 2),
                                       torch.sqrt((U + d) ** 2 + V ** 2))) * R
        mk = torch.sigmoid(2.0 * sdf)                                        # anti-aliased edge, ~1 px
        mask[m] = mk if window is None else mk * window

    mask = mask.unsqueeze(1)                                                 # [n, 1, H, W]
    img = torch.lerp(bg.view(n, 3, 1, 1), fg.view(n, 3, 1, 1), mask)
    img = img.add_(shading, alpha=0.10).add_(noise, alpha=0.05)
    images = img.clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return images, labels


def synthetic_cifar10(n_train: int = 5000, n_test: int = 1000, seed: int = 0):
    """The raw SynthShapes-10 tensors: ``(train_images, train_labels, test_images, test_labels)``.

    Images are ``uint8 [N, 3, 32, 32]``, labels ``int64 [N]`` with classes :data:`SYNTH_CLASSES`,
    balanced (counts differ by at most one when ``N`` is not a multiple of 10) and shuffled. The
    train and test sets are drawn from independent streams derived from ``seed``, so the training
    images do not change with ``n_test``. Deterministic given the arguments; the last few results
    are kept in memory (the tensors are shared, do not modify them in place).

    Example::

        >>> xtr, ytr, xte, yte = synthetic_cifar10(1000, 200, seed=0)
        >>> xtr.shape, xtr.dtype          # (torch.Size([1000, 3, 32, 32]), torch.uint8)
        >>> torch.bincount(ytr).tolist()  # [100, 100, ..., 100]
    """
    n_train = positive_int("n_train", n_train)
    n_test = positive_int("n_test", n_test)
    key = (int(seed), n_train, n_test)
    if key not in _SYNTH_CACHE:
        if len(_SYNTH_CACHE) >= _SYNTH_CACHE_MAX:
            _SYNTH_CACHE.pop(next(iter(_SYNTH_CACHE)))
        xtr, ytr = _render_synthshapes(n_train, _split_seed(seed, 0))
        xte, yte = _render_synthshapes(n_test, _split_seed(seed, 1))
        _SYNTH_CACHE[key] = (xtr, ytr, xte, yte)
    return _SYNTH_CACHE[key]


# --------------------------------------------------------------------------------------------------
# the loader
# --------------------------------------------------------------------------------------------------
@flags("augment", "download", "normalize", "offline_fallback", "verbose")
def load_cifar10(root: Optional[str] = None, download: bool = True, offline_fallback: bool = True,
                 verbose: bool = True, augment: bool = True, normalize: bool = True,
                 n_train: Optional[int] = None, n_test: Optional[int] = None, seed: int = 0) -> DataSplit:
    """Load CIFAR-10 as a :class:`DataSplit` of float ``[3, 32, 32]`` images and int labels.

    Args:
        root: data folder (default ``$SNNEDU_DATA`` or ``~/.cache/snnedu/data``); a local copy in the
            torchvision layout (``root/cifar-10-batches-py/data_batch_1..5, test_batch``) is used
            without any download.
        download: try torchvision's download when no local copy exists.
        offline_fallback: when real CIFAR-10 cannot be had, return SynthShapes-10 (a generated
            stand-in, ``offline_standin=True``) instead of raising :class:`snnedu.errors.DataError`.
        verbose: print the one line that says which data is used.
        augment: random crop (padding 4) + horizontal flip on the training split only.
        normalize: per-channel ``(x - CIFAR10_MEAN) / CIFAR10_STD`` on both splits (also for the
            stand-in); otherwise values in [0, 1].
        n_train, n_test: sizes. Real data: the first ``n`` images in file order, balanced over the
            classes (default all: 50,000 / 10,000). Stand-in: how many to generate (default
            5,000 / 1,000).
        seed: seeds the augmentation draws and the stand-in's generator.

    Returns:
        a :class:`DataSplit` whose ``train``/``test`` are :class:`CIFAR10Dataset` (``.images`` uint8
        ``[N, 3, 32, 32]``, ``.targets`` int64 ``[N]``, ``.classes``); ``source`` names the data.

    Example::

        >>> data = load_cifar10()        # prints e.g. "snnedu data: real CIFAR-10 unavailable ... SynthShapes-10 ..."
        >>> x, y = data.train[0]         # x: float [3, 32, 32], normalised; y: int64 scalar
        >>> train_loader, test_loader = make_loaders(data, batch_size=64)
    """
    if n_train is not None:
        n_train = positive_int("n_train", n_train)
    if n_test is not None:
        n_test = positive_int("n_test", n_test)
    root = data_root(root)
    loaded, how, reason = local_or_download(root, _read_local_cifar10, _download_cifar10, download)

    def make(train, test, classes):
        common = dict(normalize=normalize, seed=seed, classes=classes)
        return (CIFAR10Dataset(*train, augment=augment, **common),
                CIFAR10Dataset(*test, augment=False, **common))

    if loaded is not None:
        (xtr, ytr), (xte, yte), classes = loaded
        itr, ite = _first_balanced(ytr, n_train), _first_balanced(yte, n_test)
        if itr is not None:
            xtr, ytr = xtr[itr], ytr[itr]
        if ite is not None:
            xte, yte = xte[ite], yte[ite]
        train, test = make((xtr, ytr), (xte, yte), classes)
        split = DataSplit(train, test, source=f"CIFAR-10 ({how} {root}; "
                                              f"{len(train):,} train / {len(test):,} test)")
        if verbose:
            print(f"snnedu data: {split.source}")
        return split

    if not offline_fallback:
        raise DataError(f"CIFAR-10 is not available under {root}: {reason}. Put the CIFAR-10 python batches "
                        f"(data_batch_1 .. data_batch_5, test_batch, batches.meta from cifar-10-python.tar.gz) "
                        f"in {root / _BATCH_DIR}/ or allow offline_fallback=True")
    n_train = 5000 if n_train is None else n_train
    n_test = 1000 if n_test is None else n_test
    xtr, ytr, xte, yte = synthetic_cifar10(n_train, n_test, seed)
    train, test = make((xtr, ytr), (xte, yte), SYNTH_CLASSES)
    split = DataSplit(train, test, source=f"{SYNTH_SOURCE}; {n_train:,} train / {n_test:,} test, seed {seed}",
                      offline_standin=True)
    if verbose:
        print(f"snnedu data: real CIFAR-10 unavailable ({reason}) -> using {split.source}")
    return split
