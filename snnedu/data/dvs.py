"""DVS128 Gesture and CIFAR10-DVS: original recordings -> cached frames -> ``[T, B, 2, H, W]`` batches.

Both loaders return a :class:`~snnedu.data.DataSplit` of :class:`DVSFrameDataset` whose items are
``(frames float32 [T, 2, H, W], label)``; batch them with :func:`time_first_collate` (what
:func:`snnedu.data.make_loaders` does for these datasets) to get the ``[T, B, 2, H, W]`` input of
the spiking networks. Frames are integrated once per setting and cached in HDF5
(:mod:`snnedu.data.frame_cache`).

**DVS128 Gesture** (Amir et al. 2017): IBM's release must be downloaded by hand (a licence form), from
https://research.ibm.com/interactive/dvsgesture/ — unpack ``DvsGesture.tar.gz`` so that
``ROOT/DvsGesture/trials_to_train.txt`` exists. Each ``userXX_<lighting>.aedat`` (AEDAT 3.1) has a
``_labels.csv`` of ``(class, start, end)`` rows; each row is one sample ``[start, end)``. Users
1–23 train, 24–29 test (the release's ``trials_to_*.txt``): 1,176 train / 288 test samples, as
SpikingJelly and snnTorch count them — nothing is dropped.

**CIFAR10-DVS** (Li et al. 2017): ``ROOT/<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0), 1,000 per
class; downloadable from figshare (``download=True``). There is no official split; snnedu's is fixed
and stated with every number: **per class, the files sorted by their number, the first 90 %
(0–899) train, the last 10 % (900–999) test** — the PLIF code's split.

Offline, without the recordings, ``offline_fallback=True`` generates a *simulated* stand-in in the
same file formats (:mod:`snnedu.data.standins`), so the same readers, splitter, frame integration and
cache run; the loader says so in one line and ``DataSplit.source`` repeats it.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import flags, short_repr
from ..errors import DataError, HyperParameterError
from .aedat import READER_VERSION, read_aedat20, read_aedat31, read_gesture_labels, labels_csv_path
from .cifar10 import CIFAR10_CLASSES
from .common import DataSplit, data_root
from .events import slice_time
from .frame_cache import FORMAT_VERSION, BuildReport, CacheUnit, FrameCache, build_frame_cache, cache_file_name
from .frames import NORMALIZATIONS, SPLIT_MODES, as_size, events_to_frames
from .standins import STANDIN_MARKER

__all__ = ["DVSFrameDataset", "DVSAugment", "time_first_collate", "load_dvs128_gesture", "load_cifar10_dvs",
           "GESTURE_CLASSES", "find_gesture_root", "gesture_units", "cifar10_dvs_files", "cifar10_dvs_split",
           "preprocess", "FrameSetting", "STANDIN_MARKER", "DATASET_NAMES"]

# the 11 classes of DVS128 Gesture, in the order of the release's labels (1..11 in the files)
GESTURE_CLASSES = ("hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
                   "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
                   "arm_roll", "air_drums", "air_guitar", "other_gestures")
GESTURE_SAMPLES = {"train": 1176, "test": 288}  # SpikingJelly's count of the full release
CIFAR10_DVS_URLS = {  # figshare "CIFAR10-DVS" (file id, md5), the archive per class
    "airplane": ("7712788", "0afd5c4bf9ae06af762a77b180354fdd"),
    "automobile": ("7712791", "8438dfeba3bc970c94962d995b1b9bdd"),
    "bird": ("7712794", "a9c207c91c55b9dc2002dc21c684d785"),
    "cat": ("7712812", "52c63c677c2b15fa5146a8daf4d56687"),
    "deer": ("7712815", "b6bf21f6c04d21ba4e23fc3e36c8a4a3"),
    "dog": ("7712818", "f379ebdf6703d16e0a690782e62639c3"),
    "frog": ("7712842", "cad6ed91214b1c7388a5f6ee56d08803"),
    "horse": ("7712851", "e7cbbf77bec584ffbf913f00e682782a"),
    "ship": ("7712836", "41c7bd7d6b251be82557c6cce9a7d5c9"),
    "truck": ("7712839", "89f3922fd147d9aeff89e76a2b0b70a7"),
}
CIFAR10_DVS_TRAIN_FRACTION = 0.9
DATASET_NAMES = ("dvs128-gesture", "cifar10-dvs")
SENSOR = 128


# --------------------------------------------------------------------------------------------------
# frame settings and the dataset over a cache
# --------------------------------------------------------------------------------------------------
class FrameSetting:
    """How recordings become frames (see :func:`snnedu.data.events_to_frames`). Checked when built.

    Args:
        T (int): number of frames per sample (positive).
        split_by (str): ``'number'`` (default: equal event counts), ``'time'`` (equal time spans) or
            ``'duration'`` (fixed windows of ``duration_us`` from the first event).
        size (int or tuple of int or None): output frame size ``H`` (square) or ``(H, W)``, at most
            the 128x128 sensor; ``None`` (default) keeps the sensor size.
        normalization (str or None): per-frame normalisation, one of
            ``snnedu.data.frames.NORMALIZATIONS``; ``None`` (default) keeps raw event counts.
        duration_us (int or None): window length in microseconds, required for
            ``split_by='duration'`` (default ``None``).
        sensor_size (int or tuple of int or None): the sensor ``H`` (square) or ``(H, W)`` in pixels,
            snnedu's (rows, columns) order; ``None`` (default) is the 128x128 DVS128 of DVS128 Gesture
            and CIFAR10-DVS (e.g. ``34`` for N-MNIST). It enters :meth:`key` only when it is not 128x128,
            so the caches of the two 128x128 datasets keep their keys.
    """

    def __init__(self, T: int, split_by: str = "number", size=None, normalization: Optional[str] = None,
                 duration_us: Optional[int] = None, sensor_size=None):
        if not isinstance(T, (int, np.integer)) or isinstance(T, bool) or T < 1:
            raise HyperParameterError(f"T must be a positive int, got {short_repr(T)}")
        if split_by not in SPLIT_MODES:
            raise HyperParameterError(f"split_by must be one of {SPLIT_MODES}, got {short_repr(split_by)}")
        if normalization not in NORMALIZATIONS:
            raise HyperParameterError(f"normalization must be one of {NORMALIZATIONS}, got {short_repr(normalization)}")
        if split_by == "duration" and (duration_us is None or duration_us <= 0):
            raise HyperParameterError("split_by='duration' needs duration_us > 0")
        self.T, self.split_by, self.normalization = int(T), split_by, normalization
        self.sensor = as_size(sensor_size, "sensor_size") if sensor_size is not None else (SENSOR, SENSOR)
        self.size = as_size(size) if size is not None else self.sensor
        if self.size[0] > self.sensor[0] or self.size[1] > self.sensor[1]:
            raise HyperParameterError(f"size must be at most the {self.sensor[0]}x{self.sensor[1]} sensor, "
                                      f"got {self.size}")
        self.duration_us = int(duration_us) if duration_us is not None else None

    def frames(self, events: np.ndarray) -> np.ndarray:
        return events_to_frames(events, self.T, split_by=self.split_by, sensor_size=self.sensor, size=self.size,
                                normalization=self.normalization, duration_us=self.duration_us)

    @property
    def frame_shape(self) -> Tuple[int, int, int, int]:
        return (self.T, 2, *self.size)

    def key(self) -> Dict:
        key = {"T": self.T, "split_by": self.split_by, "size": list(self.size),
               "normalization": self.normalization, "duration_us": self.duration_us}
        if self.sensor != (SENSOR, SENSOR):
            key["sensor_size"] = list(self.sensor)
        return key

    def describe(self) -> str:
        extra = f", {self.duration_us} µs windows" if self.duration_us else ""
        norm = self.normalization or "raw counts"
        return f"T={self.T} split by {self.split_by}{extra}, {self.size[0]}x{self.size[1]}, {norm}"


def time_first_collate(batch):
    """``[(frames [T, 2, H, W], label), ...]`` -> ``(x [T, B, 2, H, W], y [B])``."""
    xs, ys = zip(*batch)
    return torch.stack(xs, dim=1), torch.as_tensor(ys, dtype=torch.long)


class DVSFrameDataset(Dataset):
    """Cached frames as a dataset: ``ds[i] -> (float32 [T, 2, H, W], label)``.

    Args:
        cache (FrameCache): the opened frame cache (:class:`~snnedu.data.frame_cache.FrameCache`).
        classes (sequence of str): class names, in label order.
        source (str): one line saying which data, which split and which frame setting.
        transform (callable or None): applied to each ``float32 [T, 2, H, W]`` frame tensor, e.g.
            :class:`DVSAugment` (default ``None``).

    Attributes: ``classes``, ``targets`` (``[N]`` labels), ``source`` and ``cache``, as given.
    """

    def __init__(self, cache: FrameCache, classes: Sequence[str], source: str, transform=None):
        self.cache = cache
        self.classes = tuple(classes)
        self.targets = torch.as_tensor(cache.labels, dtype=torch.long)
        self.source = source
        self.transform = transform

    collate_fn = staticmethod(time_first_collate)

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, i):
        a, label = self.cache[i]
        x = torch.from_numpy(np.asarray(a, dtype=np.float32))
        if self.transform is not None:
            x = self.transform(x)
        return x, label


class DVSAugment:
    """TET's augmentation of event frames ``[T, 2, H, W]``: a horizontal flip with probability
    ``flip_p`` and a circular shift by ``(dy, dx)`` drawn uniformly from ``[-roll, roll]²`` — the
    same draw for all T frames of a sample. Seeded; draws follow the order of the calls.

    Args:
        flip_p (float): probability of the horizontal flip, in [0, 1] (default 0.5).
        roll (int): largest shift in pixels along each axis, ``>= 0`` (default 5; 0 disables it).
        seed (int): seed of the augmentation's own random generator (default 0).
    """

    def __init__(self, flip_p: float = 0.5, roll: int = 5, seed: int = 0):
        if not 0.0 <= flip_p <= 1.0 or roll < 0:
            raise HyperParameterError(f"need 0 <= flip_p <= 1 and roll >= 0, got {flip_p}, {roll}")
        self.flip_p, self.roll = float(flip_p), int(roll)
        self.gen = torch.Generator().manual_seed(int(seed))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if torch.rand((), generator=self.gen) < self.flip_p:
            x = x.flip(-1)
        if self.roll:
            dy, dx = torch.randint(-self.roll, self.roll + 1, (2,), generator=self.gen).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
        return x


def _fingerprint(files: Sequence[Path], base: Path) -> str:
    """A digest of the source files' names, sizes and contents (SHA-256 of each file, remembered
    by size and modification time in ``$SNNEDU_DATA/source_hashes.json`` so a file is hashed once):
    editing a recording or a labels csv, even without changing its size, gives a new cache key."""
    memo = _HashMemo(data_root() / "source_hashes.json")
    h = hashlib.sha1()
    for f in files:
        h.update(f"{f.relative_to(base).as_posix()}:{f.stat().st_size}:{memo.sha256(f)};".encode())
    memo.save()
    return h.hexdigest()[:16]


class _HashMemo:
    """SHA-256 of files, remembered per absolute path with the ``(size, mtime_ns, inode)`` they had;
    a file whose stat differs is hashed again. The memo is only a speed-up: unreadable or damaged, it
    is ignored (and rewritten)."""

    def __init__(self, path: Path):
        self.path, self.changed = path, False
        try:
            self.entries = json.loads(path.read_text())
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError):
            self.entries = {}

    def sha256(self, f: Path) -> str:
        st = f.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        key = str(f.resolve())
        got = self.entries.get(key)
        if isinstance(got, list) and len(got) == 2 and got[0] == stamp and isinstance(got[1], str):
            return got[1]
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        self.entries[key] = [stamp, h.hexdigest()]
        self.changed = True
        return h.hexdigest()

    def save(self) -> None:
        if not self.changed:
            return
        from .._io import atomic_write

        text = json.dumps(self.entries, sort_keys=True)
        try:  # unique temporary per process: concurrent savers never share one
            atomic_write(self.path, lambda fh: fh.write(text.encode()), durable=False)
        except OSError:
            pass


def _standin_info(folder: Path) -> Optional[Dict]:
    marker = folder / STANDIN_MARKER
    return json.loads(marker.read_text()) if marker.exists() else None


def _nonempty(events: np.ndarray, where: str) -> np.ndarray:
    if events.size == 0:
        raise DataError(f"{where}: no events in this sample (a truncated or mislabelled recording?)")
    return events


# --------------------------------------------------------------------------------------------------
# DVS128 Gesture
# --------------------------------------------------------------------------------------------------
def find_gesture_root(root) -> Optional[Path]:
    """The folder holding ``trials_to_train.txt``: ``root/DvsGesture`` or ``root`` itself."""
    root = Path(root)
    for cand in (root / "DvsGesture", root):
        if (cand / "trials_to_train.txt").exists() and (cand / "trials_to_test.txt").exists():
            return cand
    return None


def _trials(folder: Path, split: str) -> List[Path]:
    lines = (folder / f"trials_to_{split}.txt").read_text().split()
    return [folder / name for name in lines if name.endswith(".aedat")]


def gesture_units(folder: Path, split: str) -> Tuple[List[CacheUnit], List[Path]]:
    """Cache units of one split: one per recording, one sample per row of its label csv."""
    units, files, idx = [], [], 0
    for rec in _trials(folder, split):
        if not rec.exists():
            raise DataError(f"{rec}: listed in trials_to_{split}.txt but missing")
        rows = read_gesture_labels(labels_csv_path(rec))
        samples = [(idx + k, label, (s, e)) for k, (label, s, e) in enumerate(rows)]
        idx += len(rows)
        units.append(CacheUnit(rec.name, (lambda r=rec: (r, read_aedat31(r, sensor_size=SENSOR))), samples))
        files += [rec, labels_csv_path(rec)]
    return units, files


WINDOW_SLACK_US = 1_000_000  # how far a labelled window may reach beyond its recording's events


def _make_frames(setting: FrameSetting):
    """``make(loaded, spec)`` of the cache builder: ``loaded = (file, events)``; ``spec`` is the sample's
    ``(start_us, end_us)`` window, or ``None`` for the whole recording."""
    def make(loaded, spec):
        f, events = loaded
        where = str(f)
        if spec is not None:
            _check_window(events, spec, where)
            events = slice_time(events, *spec)
            where += f" [{spec[0]}, {spec[1]}) µs"
        return setting.frames(_nonempty(events, where))
    return make


def _check_window(events: np.ndarray, spec: Tuple[int, int], where: str) -> None:
    """A labelled window must lie within its recording, give or take :data:`WINDOW_SLACK_US` (a label
    csv with an end time of 10^23 µs, or in another time base, is an error, not a silent slice)."""
    if events.size == 0:
        return  # _nonempty says so
    t0, t1 = int(events["t"][0]), int(events["t"][-1])
    start, end = spec
    if start < t0 - WINDOW_SLACK_US or end > t1 + 1 + WINDOW_SLACK_US:
        raise DataError(f"{where}: the labelled window [{start}, {end}) µs reaches beyond the recording's events "
                        f"[{t0}, {t1}] µs by more than {WINDOW_SLACK_US // 1000} ms (a wrong labels csv?)")


# --------------------------------------------------------------------------------------------------
# CIFAR10-DVS
# --------------------------------------------------------------------------------------------------
_NUM = re.compile(r"(\d+)\.aedat$")


def cifar10_dvs_files(root: Path, classes: Sequence[str]) -> List[List[Path]]:
    """Per class, its ``.aedat`` files sorted by their number (``cifar10_cat_12.aedat`` -> 12)."""
    out = []
    for c in classes:
        files = list((root / c).glob("*.aedat"))
        if not files:
            raise DataError(f"{root / c}: no .aedat files (expected {root}/<class>/cifar10_<class>_<i>.aedat)")
        bad = [f.name for f in files if not _NUM.search(f.name)]
        if bad:
            raise DataError(f"{root / c}: file names without a number: {bad[:3]}")
        out.append(sorted(files, key=lambda f: int(_NUM.search(f.name).group(1))))
    return out


def cifar10_dvs_split(files_per_class: List[List[Path]], split: str) -> List[Tuple[Path, int]]:
    """snnedu's fixed 9:1 split: per class the first ``ceil(0.9·n)`` files (by number) train, the rest test."""
    out = []
    for label, files in enumerate(files_per_class):
        k = math.ceil(CIFAR10_DVS_TRAIN_FRACTION * len(files))
        out += [(f, label) for f in (files[:k] if split == "train" else files[k:])]
    return out


def _find_cifar10_dvs_root(root: Path) -> Optional[Path]:
    for cand in (root, root / "CIFAR10DVS", root / "cifar10-dvs"):
        info = _standin_info(cand)
        classes = info["classes"] if info else CIFAR10_CLASSES
        if all(any((cand / c).glob("*.aedat")) for c in classes):
            return cand
    return None


def _download_cifar10_dvs(root: Path, progress: bool) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    for cls, (file_id, md5) in CIFAR10_DVS_URLS.items():
        if not any((root / cls).glob("*.aedat")):
            download_and_extract_archive(f"https://ndownloader.figshare.com/files/{file_id}", str(root),
                                         filename=f"{cls}.zip", md5=md5, remove_finished=True)


# --------------------------------------------------------------------------------------------------
# the loaders
# --------------------------------------------------------------------------------------------------
def _resolve(dataset: str, root, download: bool, offline_fallback: bool, standin_kwargs: Optional[Dict],
             progress: bool) -> Tuple[Path, Optional[Dict]]:
    """The folder with the recordings (real, or the generated stand-in) and its stand-in marker."""
    base = Path(root) if root is not None else data_root() / ("DVS128Gesture" if dataset == "dvs128-gesture"
                                                              else "CIFAR10DVS")
    find = find_gesture_root if dataset == "dvs128-gesture" else _find_cifar10_dvs_root
    found = find(base)
    reason = f"no recordings under {base}"
    if found is None and download and dataset == "cifar10-dvs":
        try:
            _download_cifar10_dvs(base, progress)
            found = find(base)
        except Exception as e:  # noqa: BLE001
            reason += f"; download from figshare failed ({type(e).__name__}: offline?)"
    if found is not None:
        return found, _standin_info(found)
    where = ("DVS128 Gesture must be downloaded by hand from https://research.ibm.com/interactive/dvsgesture/ "
             f"and unpacked so that {base}/DvsGesture/trials_to_train.txt exists"
             if dataset == "dvs128-gesture" else
             f"put the CIFAR10-DVS release (figshare 4724671: airplane.zip ... truck.zip, unzipped) under {base} "
             f"as {base}/<class>/cifar10_<class>_<i>.aedat, or pass download=True when online")
    if not offline_fallback:
        raise DataError(f"{dataset}: {reason}. {where}.")
    from . import standins

    kw = dict(standin_kwargs or {})
    kw.setdefault("progress", progress)
    if "root" in kw:
        sroot = Path(kw.pop("root"))
    else:
        # one folder per stand-in setting: two runs asking for different stand-ins (a study and a test, say)
        # never regenerate one folder under each other's feet while the other reads it
        settings = json.dumps({k: v for k, v in sorted(kw.items()) if k != "progress"}, sort_keys=True, default=str)
        sroot = data_root() / f"{dataset}-standin-{hashlib.sha256(settings.encode()).hexdigest()[:10]}"
    if dataset == "dvs128-gesture":
        folder = Path(standins.write_gesture_standin(sroot, **kw))
        folder = find_gesture_root(folder) or folder
    else:
        folder = Path(standins.write_cifar10dvs_standin(sroot, **kw))
    print(f"snnedu: {reason}; using the simulated offline stand-in at {folder}")
    return folder, _standin_info(folder)


def _dataset_name(dataset: str, info: Optional[Dict]) -> str:
    if info:
        return info["source"]
    if dataset == "dvs128-gesture":
        return "DVS128 Gesture (IBM release; users 1-23 train, 24-29 test)"
    return "CIFAR10-DVS (figshare release; snnedu 9:1 per-class split: files 0-899 train, 900-999 test)"


def _split_dataset(dataset: str, folder: Path, info: Optional[Dict], split: str, setting: FrameSetting,
                   cache_dir: Optional[Path], progress: bool, rebuild: bool,
                   on_sample=None) -> Tuple[DVSFrameDataset, BuildReport]:
    if dataset == "dvs128-gesture":
        classes = tuple(info["classes"]) if info else GESTURE_CLASSES
        units, files = gesture_units(folder, split)
        if not any(u.samples for u in units):
            raise DataError(f"{folder}: the {split} split of DVS128 Gesture is empty (trials_to_{split}.txt lists "
                            "no recording with a labelled gesture)")
    else:
        classes = tuple(info["classes"]) if info else CIFAR10_CLASSES
        per_class = cifar10_dvs_files(folder, classes)
        pairs = cifar10_dvs_split(per_class, split)
        if not pairs:
            fewest = min(len(f) for f in per_class)
            raise DataError(f"{folder}: the {split} split of CIFAR10-DVS is empty: snnedu's 9:1 split gives a class "
                            f"of n files ceil(0.9 n) train and the rest test, and a class here has only {fewest} "
                            "file(s); at least 10 per class are needed (the release has 1,000)")
        files = [f for f, _ in pairs]
        units = [CacheUnit(f.name, (lambda f=f: (f, read_aedat20(f))), [(i, label, None)])
                 for i, (f, label) in enumerate(pairs)]
    key = {"dataset": dataset, "split": split, **setting.key(), "source": _fingerprint(files, folder),
           "standin": bool(info), "reader": READER_VERSION, "cache_format": FORMAT_VERSION}
    cache_dir = Path(cache_dir) if cache_dir is not None else data_root() / "frame_cache"
    path = cache_dir / cache_file_name(key)
    report = build_frame_cache(path, key, units, _make_frames(setting), frame_shape=setting.frame_shape,
                               progress=progress, on_sample=on_sample, rebuild=rebuild)
    cache = FrameCache(path, key)
    source = f"{_dataset_name(dataset, info)}, {split}: {len(cache)} samples, {setting.describe()}"
    return DVSFrameDataset(cache, classes, source), report


def _load(dataset: str, root, T, split_by, size, normalization, duration_us, cache_dir, download,
          offline_fallback, augment, seed, progress, standin_kwargs, rebuild) -> DataSplit:
    setting = FrameSetting(T, split_by, size, normalization, duration_us)
    folder, info = _resolve(dataset, root, download, offline_fallback, standin_kwargs, progress)
    train, _ = _split_dataset(dataset, folder, info, "train", setting, cache_dir, progress, rebuild)
    test, _ = _split_dataset(dataset, folder, info, "test", setting, cache_dir, progress, rebuild)
    if augment:
        # a mirror image turns a right-hand gesture into a left-hand one: gestures are only rolled
        train.transform = DVSAugment(flip_p=0.0 if dataset == "dvs128-gesture" else 0.5, seed=seed)
    name = _dataset_name(dataset, info)
    if dataset == "dvs128-gesture" and not info and (len(train), len(test)) != tuple(GESTURE_SAMPLES.values()):
        print(f"snnedu: note: {len(train)}/{len(test)} samples, the full release gives "
              f"{GESTURE_SAMPLES['train']}/{GESTURE_SAMPLES['test']} (an incomplete copy?)")
    source = f"{name} ({len(train)} train / {len(test)} test; {setting.describe()})"
    print(f"snnedu: {dataset}: {source}")
    return DataSplit(train, test, source, offline_standin=bool(info))


@flags("augment", "offline_fallback", "progress", "rebuild")
def load_dvs128_gesture(root=None, *, T: int = 20, split_by: str = "number", size=None,
                        normalization: Optional[str] = None, duration_us: Optional[int] = None,
                        cache_dir=None, offline_fallback: bool = True, augment: bool = False, seed: int = 0,
                        progress: bool = True, standin_kwargs: Optional[Dict] = None,
                        rebuild: bool = False) -> DataSplit:
    """DVS128 Gesture as frames ``[T, 2, H, W]`` (11 classes). Defaults: the PLIF paper's T = 20 frames
    split by number, raw counts, 128x128. ``size=32`` with ``split_by="duration", T=40,
    duration_us=30_000`` is the MLF setting (first 1.2 s). See the module docstring for ``root``.
    ``augment=True`` rolls the training frames by up to 5 pixels; it never mirrors them, since a mirror
    image of a right-hand wave is a left-hand wave with the wrong label."""
    return _load("dvs128-gesture", root, T, split_by, size, normalization, duration_us, cache_dir, False,
                 offline_fallback, augment, seed, progress, standin_kwargs, rebuild)


@flags("augment", "download", "offline_fallback", "progress", "rebuild")
def load_cifar10_dvs(root=None, *, T: int = 10, split_by: str = "number", size=48,
                     normalization: Optional[str] = None, duration_us: Optional[int] = None, cache_dir=None,
                     download: bool = False, offline_fallback: bool = True, augment: bool = False, seed: int = 0,
                     progress: bool = True, standin_kwargs: Optional[Dict] = None,
                     rebuild: bool = False) -> DataSplit:
    """CIFAR10-DVS as frames ``[T, 2, H, W]`` with snnedu's fixed 9:1 per-class split. Defaults: TET's
    T = 10 split by number at 48x48 (counts; TET max-normalises, ``normalization="max_frame"``).
    The PLIF paper: ``T=20, size=128``. ``augment=True``: :class:`DVSAugment` on the training split."""
    return _load("cifar10-dvs", root, T, split_by, size, normalization, duration_us, cache_dir, download,
                 offline_fallback, augment, seed, progress, standin_kwargs, rebuild)


@flags("progress", "rebuild")
def preprocess(dataset: str, root, setting: FrameSetting, *, cache_dir=None, splits=("train", "test"),
               progress: bool = True, rebuild: bool = False, on_sample=None) -> List[BuildReport]:
    """Build the frame caches of ``dataset`` ("dvs128-gesture" or "cifar10-dvs") from the recordings
    under ``root`` (no fallback: ``root`` must hold them). Returns one report per split."""
    if dataset not in DATASET_NAMES:
        raise HyperParameterError(f"dataset must be one of {DATASET_NAMES}, got {short_repr(dataset)}")
    folder, info = _resolve(dataset, root, False, False, None, progress)
    return [_split_dataset(dataset, folder, info, s, setting, cache_dir, progress, rebuild, on_sample)[1]
            for s in splits]
