"""tonic datasets -- or any source of structured event arrays -> snnedu's frames and frame cache.

`tonic <https://tonic.readthedocs.io>`_ (pinned in ``requirements.txt``) reads many event datasets
(N-MNIST, DVS Gesture, CIFAR10-DVS, POKER-DVS, ...) and hands out each sample as ``(events, target)``:
``events`` is a numpy *structured* array with fields ``x, y, t, p`` (in a dataset-specific order and
with dataset-specific dtypes), and the dataset's ``sensor_size`` is ``(W, H, P)`` -- width first, then
height, then the number of polarities.

:func:`from_tonic` takes such a dataset (or any indexable source of ``(events, label)`` pairs laid out
the same way) and

1. converts every sample's events to snnedu's :data:`~snnedu.data.EVENT_DTYPE`
   (:func:`to_snnedu_events`: fields by name, coordinates and polarities checked, sorted by ``t``),
2. integrates them into frames ``[T, 2, H, W]`` with :class:`~snnedu.data.FrameSetting`, i.e.
   :func:`~snnedu.data.events_to_frames` (same split modes, normalisations and coordinate scaling as
   DVS128 Gesture and CIFAR10-DVS; see its docstring for how the frames differ from tonic's own
   ``ToFrame``), and
3. with ``cache_dir`` set, stores all frames once in an HDF5 frame cache
   (:mod:`snnedu.data.frame_cache`), keyed by the frame setting and a fingerprint of the source, so a
   second run reads the frames back instead of integrating them again.

The items are those of :class:`~snnedu.data.DVSFrameDataset`: ``(float32 tensor [T, 2, H, W], label)``,
batched time first by :func:`~snnedu.data.time_first_collate` (``[T, B, 2, H, W]``).

DVS128 Gesture and CIFAR10-DVS keep snnedu's own AEDAT readers (:mod:`snnedu.data.aedat`); N-MNIST
goes through tonic (:func:`snnedu.data.load_nmnist`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .._checks import flags, short_repr
from ..errors import DataError, HyperParameterError, InputError
from .dvs import DVSFrameDataset, FrameSetting, _fingerprint, _nonempty, time_first_collate
from .events import make_events
from .frame_cache import FORMAT_VERSION, CacheUnit, FrameCache, build_frame_cache, cache_file_name

__all__ = ["from_tonic", "to_snnedu_events", "TonicFrameDataset", "sensor_hw", "ADAPTER_VERSION"]

ADAPTER_VERSION = 1  # enters the cache key: bump when the conversion of events changes
_FIELDS = ("t", "x", "y", "p")
_TRANSFORM_ATTRS = ("transform", "target_transform", "transforms")


# --------------------------------------------------------------------------------------------------
# events and labels
# --------------------------------------------------------------------------------------------------
def to_snnedu_events(events, sensor_size: Tuple[int, int], *, where: str = "events") -> np.ndarray:
    """Convert one sample's events from tonic's layout to snnedu's :data:`~snnedu.data.EVENT_DTYPE`.

    Args:
        events (numpy structured array): ``[N]`` events with the fields ``t`` (time stamps in µs,
            integer-valued), ``x`` (column, ``0 .. W-1``), ``y`` (row, ``0 .. H-1``) and ``p``
            (polarity: 0/1, ``bool``, or -1/+1, where -1 becomes 0 = OFF and +1 becomes 1 = ON), in
            any field order and with any numeric dtypes; other fields are ignored.
        sensor_size (tuple of int): ``(H, W)`` of the sensor in pixels, snnedu's (rows, columns) order
            (tonic's ``sensor_size`` is ``(W, H, P)``: see :func:`sensor_hw`).
        where (str): names the sample in error messages (default ``"events"``).

    Returns:
        a new ``[N]`` array of :data:`~snnedu.data.EVENT_DTYPE` sorted by ``t`` (stable: events with the
        same time stamp keep their order).

    Raises :class:`~snnedu.InputError` for anything but a 1-d structured array with the four fields
    (missing fields are named), non-numeric fields, NaN or infinite or non-integer time stamps,
    coordinates outside the sensor and other polarities; :class:`~snnedu.DataError` for a sample
    without events.
    """
    h, w = sensor_size
    if isinstance(events, torch.Tensor) or not isinstance(events, np.ndarray) or events.dtype.names is None:
        got = (f"a {type(events).__name__}" if not isinstance(events, np.ndarray)
               else f"a plain array of dtype {events.dtype} and shape {list(events.shape)}")
        raise InputError(f"{where}: expected a numpy structured array with fields t, x, y, p (tonic's "
                         f"layout), got {got}; a tonic transform that makes frames or tensors (ToFrame, "
                         "ToSparseTensor, ...) must not be set on a dataset given to from_tonic")
    names = events.dtype.names
    missing = [f for f in _FIELDS if f not in names]
    if missing:
        hint = (" (tonic's audio datasets such as SHD have no y: they are not images and have no frames "
                "[T, 2, H, W])" if missing == ["y"] else "")
        raise InputError(f"{where}: the events have no field(s) {missing}; fields found: {list(names)}, "
                         f"needed: t, x, y, p{hint}")
    if events.ndim != 1:
        raise InputError(f"{where}: expected a 1-d array of events, got shape {list(events.shape)}")
    if events.size == 0:
        raise DataError(f"{where}: no events in this sample (an empty recording?)")
    cols = {}
    for f in _FIELDS:
        c = np.asarray(events[f])
        if c.dtype.kind not in "biuf":
            raise InputError(f"{where}: field {f!r} must be numeric, got dtype {c.dtype}")
        cols[f] = c
    t = cols["t"]
    if t.dtype.kind == "f" and not np.isfinite(t).all():
        raise InputError(f"{where}: {int(np.isnan(t).sum())} NaN and {int(np.isinf(t).sum())} infinite time "
                         f"stamps among {t.size} events")
    for f, n, axis in (("x", w, "column"), ("y", h, "row")):
        c = cols[f]
        if c.dtype.kind == "f" and not np.isfinite(c).all():
            raise InputError(f"{where}: {f} ({axis}) holds NaN or infinite values")
        lo, hi = c.min(), c.max()
        if lo < 0 or hi >= n:
            raise InputError(f"{where}: {f} ({axis}) must lie in 0..{n - 1} on the {w}x{h} sensor (W x H), "
                             f"got values in [{lo}, {hi}]; a transform that moves or scales coordinates "
                             "(e.g. tonic's Downsample) needs sensor_size=(W, H, P) of its output")
    p = cols["p"]
    if p.dtype.kind in "if" and p.min() < 0:
        values = np.unique(p)
        if not set(values.tolist()) <= {-1, 1}:
            raise InputError(f"{where}: polarity p must be 0/1 or -1/+1, got values {short_repr(values.tolist())}")
        p = p > 0
    try:
        return make_events(t, cols["x"], cols["y"], p)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None


def _label(target, where: str) -> int:
    """A class index from ``target`` (int, numpy integer, or a 1-element integer array / tensor)."""
    t = target
    if isinstance(t, torch.Tensor) and t.numel() == 1 and not t.is_floating_point() and t.dtype != torch.bool:
        t = t.item()
    elif isinstance(t, np.ndarray) and t.size == 1 and t.dtype.kind in "iu":
        t = t.item()
    if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)) or t < 0:
        raise InputError(f"{where}: the label must be a non-negative integer class index, got {short_repr(target)} "
                         f"({type(target).__name__}); give the dataset a target_transform that maps its targets "
                         "to class indices")
    return int(t)


def _read(source, i: int, where: str):
    """``(events, label)`` of sample ``i`` of ``source``, checked."""
    item = source[i]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise InputError(f"{where}: a sample must be an (events, label) pair, got {short_repr(item)}")
    return item[0], _label(item[1], where)


def sensor_hw(dataset, sensor_size=None) -> Tuple[int, int]:
    """The sensor's ``(H, W)`` from ``sensor_size`` if given, else from ``dataset.sensor_size``.

    Args:
        dataset (object): a tonic dataset (its ``sensor_size`` attribute is read) or any other source.
        sensor_size (tuple of int or None): ``(W, H)`` or ``(W, H, P)`` in **tonic's order** (width
            first) with ``P`` in {1, 2}; overrides the dataset's own (default ``None``).

    Returns:
        ``(H, W)`` in snnedu's (rows, columns) order.

    Raises :class:`~snnedu.HyperParameterError` when neither gives a valid size.
    """
    given = sensor_size if sensor_size is not None else getattr(dataset, "sensor_size", None)
    where = "sensor_size" if sensor_size is not None else f"{type(dataset).__name__}.sensor_size"
    if given is None:
        raise HyperParameterError(f"{type(dataset).__name__} has no sensor_size (tonic's (W, H, P)); "
                                  "pass sensor_size=(W, H, P) to from_tonic")
    ok = isinstance(given, (tuple, list, np.ndarray)) and len(given) in (2, 3) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v > 0 for v in given)
    if not ok or int(given[0]) > 1 << 16 or int(given[1]) > 1 << 16:
        raise HyperParameterError(f"{where} must be (W, H) or (W, H, P) of positive ints (W, H <= 65536), "
                                  f"got {short_repr(given)}")
    if len(given) == 3 and int(given[2]) not in (1, 2):
        raise HyperParameterError(f"{where}: P = {int(given[2])} polarities; snnedu's frames have 2 channels "
                                  "(OFF, ON), so P must be 1 or 2")
    return int(given[1]), int(given[0])


def _sample_frames(source, i: int, setting: FrameSetting, where: str) -> Tuple[np.ndarray, int]:
    events, label = _read(source, i, where)
    ev = to_snnedu_events(events, setting.sensor, where=where)
    return setting.frames(_nonempty(ev, where)), label


# --------------------------------------------------------------------------------------------------
# the lazy dataset
# --------------------------------------------------------------------------------------------------
class TonicFrameDataset(Dataset):
    """Frames integrated on every access: ``ds[i] -> (float32 tensor [T, 2, H, W], label)``.

    What :func:`from_tonic` returns without ``cache_dir``; the items, ``collate_fn`` and attributes are
    those of :class:`~snnedu.data.DVSFrameDataset`.

    Args:
        source (object): an indexable source of ``(events, label)`` pairs with ``len()``: a tonic
            dataset or a list (see :func:`from_tonic`).
        setting (FrameSetting): how events become frames; its ``sensor`` must be the source's
            ``(H, W)``.
        classes (sequence of str or None): class names in label order; ``None`` (default): the
            source's ``classes`` attribute, else ``"0" .. "K-1"`` for labels ``0 .. K-1``.
        name (str): names the data in ``source`` and in error messages (default ``"events"``).
        transform (callable or None): applied to each ``float32 [T, 2, H, W]`` frame tensor, e.g.
            :class:`~snnedu.data.DVSAugment` (default ``None``).

    Attributes: ``targets`` (``[N]`` int64 labels; read from the source's ``targets`` when it has them
    and no target transform, otherwise by reading every sample once, on first use), ``classes``,
    ``source`` (one line), ``setting``, ``transform``.
    """

    collate_fn = staticmethod(time_first_collate)

    def __init__(self, source, setting: FrameSetting, classes: Optional[Sequence[str]] = None,
                 name: str = "events", transform=None):
        self.data = _check_source(source)
        self.setting = setting
        self.name = name
        self.transform = transform
        self._classes = tuple(classes) if classes is not None else None
        self._targets: Optional[torch.Tensor] = None
        self.source = f"{name}, {_split_name(source)}: {len(source)} samples, {setting.describe()} (integrated on access)"

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        n = len(self.data)
        i = int(i)
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range 0..{n - 1}")
        i %= n
        frames, label = _sample_frames(self.data, i, self.setting, f"{self.name}[{i}]")
        x = torch.from_numpy(np.asarray(frames, dtype=np.float32))
        if self.transform is not None:
            x = self.transform(x)
        return x, label

    @property
    def targets(self) -> torch.Tensor:
        if self._targets is None:
            self._targets = torch.as_tensor(_labels(self.data, self.name), dtype=torch.long)
        return self._targets

    @property
    def classes(self) -> Tuple[str, ...]:
        if self._classes is None:
            self._classes = _classes(self.data, None, self.targets.tolist())
        return self._classes


def _check_source(source):
    if isinstance(source, (np.ndarray, torch.Tensor, str, bytes)) or not (
            hasattr(source, "__len__") and hasattr(source, "__getitem__")):
        raise InputError(f"from_tonic needs a tonic dataset or another indexable source of (events, label) "
                         f"pairs with len(), got {type(source).__name__}")
    if len(source) == 0:
        raise DataError(f"from_tonic: the source {type(source).__name__} has no samples")
    return source


def _split_name(source) -> str:
    train = getattr(source, "train", None)
    return ("train" if train else "test") if isinstance(train, (bool, np.bool_)) else "all"


def _has_target_transform(source) -> bool:
    return any(getattr(source, a, None) is not None for a in ("target_transform", "transforms"))


def _labels(source, name: str) -> List[int]:
    """Every sample's label: the source's ``targets`` when it has them (and no target transform that
    would change them), else read from the samples."""
    n = len(source)
    targets = getattr(source, "targets", None)
    if targets is not None and not _has_target_transform(source):
        try:
            if len(targets) == n:
                return [_label(targets[i], f"{name}.targets[{i}]") for i in range(n)]
        except TypeError:
            pass
    return [_read(source, i, f"{name}[{i}]")[1] for i in range(n)]


def _classes(source, classes, labels: Sequence[int]) -> Tuple[str, ...]:
    k = max(labels) + 1 if len(labels) else 0
    names = classes if classes is not None else getattr(source, "classes", None)
    if names is None:
        return tuple(str(c) for c in range(k))
    if isinstance(names, str) or not all(isinstance(c, str) for c in names):
        raise HyperParameterError(f"classes must be a sequence of class names (str), got {short_repr(names)}")
    if len(names) < k:
        raise DataError(f"labels reach {k - 1}, but only {len(names)} class names are given: {short_repr(list(names))}")
    return tuple(names)


# --------------------------------------------------------------------------------------------------
# the cache key: a fingerprint of the source
# --------------------------------------------------------------------------------------------------
def _source_files(source) -> Optional[List[Path]]:
    """The files behind a file-based tonic dataset (``source.data``: one existing path per sample)."""
    data = getattr(source, "data", None)
    if not isinstance(data, (list, tuple)) or len(data) != len(source) or not data:
        return None
    if not all(isinstance(d, (str, os.PathLike)) for d in data):
        return None
    paths = [Path(d) for d in data]
    return paths if all(p.is_file() for p in paths) else None


def _settings(source) -> Dict:
    """The source's class and its plain settings (``train``, ``first_saccade_only``, ...) and transforms,
    for the cache key; a transform without a stable ``repr`` is refused (the key would differ every run)."""
    out = {"class": f"{type(source).__module__}.{type(source).__qualname__}"}
    for k, v in sorted(getattr(source, "__dict__", {}).items()):
        if k.startswith("_") or k in ("data", "targets", "location_on_system"):
            continue
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif k in _TRANSFORM_ATTRS or callable(v):
            r = repr(v)
            if re.search(r" at 0x[0-9a-fA-F]+", r):
                raise HyperParameterError(f"cannot key a frame cache on {type(source).__name__}.{k} = {short_repr(r)}: "
                                          "its repr changes from run to run; pass source_id='...' naming the data "
                                          "and the transform, or cache_dir=None")
            out[k] = r
    return out


def _fingerprint_source(source, name: str, sensor: Tuple[int, int], source_id) -> Tuple[str, Optional[List[int]]]:
    """``(fingerprint, labels or None)``: from ``source_id``, else the files behind the dataset (their
    SHA-256, remembered, as for the DVS recordings), else the content of every sample (converted events
    and label; the labels are returned then, since they were read anyway)."""
    if source_id is not None:
        if not isinstance(source_id, str) or not source_id.strip():
            raise HyperParameterError(f"source_id must be a non-empty str, got {short_repr(source_id)}")
        return "id:" + hashlib.sha1(source_id.encode()).hexdigest()[:16], None
    settings = json.dumps(_settings(source), sort_keys=True, default=str)
    files = _source_files(source)
    if files is not None:
        base = Path(os.path.commonpath([str(f.parent) for f in files]))
        digest = hashlib.sha1((settings + _fingerprint(files, base)).encode()).hexdigest()[:16]
        return "files:" + digest, None
    h = hashlib.sha1(settings.encode())
    labels = []
    for i in range(len(source)):
        where = f"{name}[{i}]"
        events, label = _read(source, i, where)
        h.update(to_snnedu_events(events, sensor, where=where).tobytes())
        h.update(np.int64(label).tobytes())
        labels.append(label)
    return "content:" + h.hexdigest()[:16], labels


def _slug(name: str) -> str:
    return (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "tonic")[:40]


# --------------------------------------------------------------------------------------------------
# from_tonic
# --------------------------------------------------------------------------------------------------
@flags("progress", "rebuild")
def from_tonic(dataset, *, T: int, split_by: str = "number", size=None, normalization: Optional[str] = None,
               duration_us: Optional[int] = None, sensor_size=None, classes: Optional[Sequence[str]] = None,
               cache_dir=None, name: Optional[str] = None, source_id: Optional[str] = None, transform=None,
               progress: bool = False, rebuild: bool = False):
    """Frames ``[T, 2, H, W]`` of a tonic dataset, or of any indexable source of ``(events, label)``.

    Example::

        >>> import tonic
        >>> nmnist = tonic.datasets.NMNIST("data", train=False)          # files present or downloaded
        >>> test = from_tonic(nmnist, T=10, split_by="number", cache_dir="data/frame_cache")
        >>> x, y = test[0]                                               # x: float32 [10, 2, 34, 34]

    Args:
        dataset (object): a tonic dataset (e.g. ``tonic.datasets.NMNIST(...)``) without a transform
            that makes frames, or anything with ``len()`` whose ``[i]`` is ``(events, label)``:
            ``events`` a numpy structured array with fields ``t`` (µs), ``x``, ``y``, ``p``
            (:func:`to_snnedu_events`), ``label`` a non-negative integer class index.
        T (int): number of frames per sample.
        split_by (str): ``"number"`` (default: equal event counts), ``"time"`` (equal time spans) or
            ``"duration"`` (windows of ``duration_us`` from the first event); see
            :func:`~snnedu.data.events_to_frames`.
        size (int or tuple of int or None): output frame size ``H`` (square) or ``(H, W)``, at most the
            sensor; events' coordinates are scaled (integer counts stay integers). ``None`` (default)
            keeps the sensor size.
        normalization (str or None): per-frame normalisation, one of
            ``snnedu.data.frames.NORMALIZATIONS``; ``None`` (default) keeps raw event counts.
        duration_us (int or None): window length in µs for ``split_by="duration"`` (default ``None``).
        sensor_size (tuple of int or None): ``(W, H, P)`` or ``(W, H)`` in **tonic's order** (width
            first); default ``None``: the dataset's ``sensor_size`` attribute. Needed for sources
            without one, and after a transform that changes coordinates.
        classes (sequence of str or None): class names in label order; default ``None``: the dataset's
            ``classes``, else ``"0" .. "K-1"``.
        cache_dir (str or Path or None): folder of the HDF5 frame cache. ``None`` (default): no cache,
            frames are integrated on every access (:class:`TonicFrameDataset`). With a folder, all
            frames are integrated once into ``cache_dir/<name>_<split>_T..._<digest>.h5`` (resumable,
            verified, shared safely between processes: :mod:`snnedu.data.frame_cache`) and read back
            from there (:class:`~snnedu.data.DVSFrameDataset`). The cache key holds the frame setting
            and a fingerprint of the source: ``source_id`` if given, else the SHA-256 of the files
            behind a file-based tonic dataset (its ``data`` list) with its settings and transforms'
            ``repr``, else the content of every sample (read once per call). A cache stores one pass
            over the data: random transforms on the dataset are frozen into it.
        name (str or None): names the data in ``source``, error messages and the cache file; default
            ``None``: ``"tonic-<class name>"``.
        source_id (str or None): a string you vouch identifies the source's content and transforms;
            used as its fingerprint instead of reading files or samples (default ``None``).
        transform (callable or None): applied to each ``float32 [T, 2, H, W]`` frame tensor after
            integration, e.g. :class:`~snnedu.data.DVSAugment` (default ``None``).
        progress (bool): a progress bar while the cache is built (default ``False``).
        rebuild (bool): discard an existing cache of this key and build it again (default ``False``).

    Returns:
        a dataset whose items are ``(float32 tensor [T, 2, H', W'], int label)`` (channel 0 OFF,
        channel 1 ON), with ``targets``, ``classes``, ``source`` (one line) and ``collate_fn =
        time_first_collate``, so :func:`~snnedu.data.make_loaders` gives ``[T, B, 2, H', W']`` batches.

    Raises:
        InputError: a source that is not indexable, a sample that is not ``(events, label)``, events
            that are not a structured array with ``t, x, y, p``, NaN / infinite / non-integer times,
            coordinates outside the sensor, other polarities, a label that is not a class index.
        DataError: an empty source, or a sample without events.
        HyperParameterError: impossible frame settings or sensor size.
    """
    source = _check_source(dataset)
    name = name if name is not None else f"tonic-{type(dataset).__name__}"
    if not isinstance(name, str) or not name.strip():
        raise HyperParameterError(f"name must be a non-empty str, got {short_repr(name)}")
    setting = FrameSetting(T, split_by, size, normalization, duration_us, sensor_size=sensor_hw(dataset, sensor_size))
    if classes is not None and (isinstance(classes, str) or not all(isinstance(c, str) for c in classes)):
        raise HyperParameterError(f"classes must be a sequence of class names (str), got {short_repr(classes)}")
    if cache_dir is None:
        return TonicFrameDataset(source, setting, classes, name, transform)

    split = _split_name(source)
    fingerprint, labels = _fingerprint_source(source, name, setting.sensor, source_id)
    if labels is None:
        labels = _labels(source, name)
    class_names = _classes(source, classes, labels)
    key = {"dataset": _slug(name), "split": split, **setting.key(), "source": fingerprint,
           "adapter": ADAPTER_VERSION, "cache_format": FORMAT_VERSION}
    path = Path(cache_dir) / cache_file_name(key)

    def make(i, _spec):
        where = f"{name}[{i}]"
        frames, label = _sample_frames(source, i, setting, where)
        if label != labels[i]:
            raise DataError(f"{where}: the sample's label {label} differs from its target {labels[i]} "
                            "(a random target transform?)")
        return frames

    units = [CacheUnit(f"{name}[{i}]", (lambda i=i: i), [(i, labels[i], None)]) for i in range(len(source))]
    build_frame_cache(path, key, units, make, frame_shape=setting.frame_shape, progress=progress, rebuild=rebuild)
    cache = FrameCache(path, key)
    line = f"{name}, {split}: {len(cache)} samples, {setting.describe()}"
    return DVSFrameDataset(cache, class_names, line, transform)

