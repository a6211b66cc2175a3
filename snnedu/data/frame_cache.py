"""An HDF5 cache of integrated event frames: written atomically, resumable, verified when read.

Integrating a DVS recording into frames takes far longer than reading the frames back, and the four
papers use four different settings (chapter 8 of the book), so the frames are cached once per setting. A cache
is one HDF5 file (h5py) holding, for ``N`` samples of ``T`` frames::

    frames     [N, T, 2, H, W]   uint16 / uint32 counts, or float32 when normalised
    labels     [N]               int64
    checksums  [N]               uint32 (CRC-32 of each sample's frames and label)
    attrs      key (JSON: dataset, split, T, split_by, size, normalization, duration, source
               fingerprint, reader and cache format versions), n, format version, labels_crc32
               (CRC-32 of the whole labels array), complete = True

How it is built (:func:`build_frame_cache`) so that nothing half-done is ever read and nothing done
is done twice:

1. every finished sample is first written on its own to ``<cache>.parts/<index>.npy`` through a
   temporary file and ``os.replace`` — an interruption (Ctrl-C, a killed job, a full disk) loses at
   most the sample being integrated;
2. a rerun skips the samples whose part file exists and has the right shape (a source recording is
   read again only if one of its samples is missing);
3. when all parts exist they are assembled into ``<cache>.tmp``, which is flushed, checked and only
   then renamed to the final name; the parts are removed afterwards (by the next run, if this one is
   killed before it has finished removing them).

Builders of the same cache in several processes at once (two ``preprocess`` runs, several training
jobs started together) take turns: each holds an exclusive lock on ``<cache>.lock``
(``fcntl.flock``) while it builds, and a process that finds the lock taken prints one line
(``waiting for another process building <file>``), waits, and then reuses the finished cache (or
resumes from the parts of a builder that was killed: the kernel releases a dead process's lock).

:class:`FrameCache` opens a cache only if its format version, key, sizes and ``complete`` flag match
and checks the labels' CRC-32 when it opens and every sample's CRC-32 (frames and label) when it is
read; anything else -- a damaged file that HDF5 or JSON cannot parse included -- is a
:class:`CacheError` that names the file and says how to rebuild it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._checks import flags
from .._io import atomic_write
from ..errors import DataError

__all__ = ["CacheError", "CacheUnit", "BuildReport", "build_frame_cache", "FrameCache", "cache_file_name",
           "FORMAT_VERSION"]

FORMAT_VERSION = 2  # 2: the per-sample checksums cover the label too, labels_crc32


class CacheError(DataError):
    """A frame cache is missing, incomplete, corrupt or was built with other settings."""


@dataclass
class CacheUnit:
    """One source file and the samples cut from it.

    ``load()`` returns whatever ``make(loaded, sample)`` needs (usually the file's events);
    ``samples`` are ``(index, label, sample_spec)`` with ``index`` the sample's position in the cache.
    """

    name: str
    load: Callable[[], object]
    samples: List[Tuple[int, int, object]]


@dataclass
class BuildReport:
    """What :func:`build_frame_cache` did: ``built`` samples integrated now, ``reused`` from an interrupted
    earlier run (0 and 0 when the finished cache already existed: ``existed=True``)."""

    path: Path
    n: int
    built: int = 0
    reused: int = 0
    existed: bool = False


def cache_file_name(key: Dict) -> str:
    """A readable, collision-safe file name for a cache key."""
    size = key.get("size")
    size_s = f"{size[0]}x{size[1]}" if size else "sensor"
    parts = [key["dataset"], key["split"], f"T{key['T']}", key["split_by"], size_s]
    if key.get("normalization"):
        parts.append(str(key["normalization"]))
    if key.get("duration_us"):
        parts.append(f"{key['duration_us']}us")
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return "_".join(parts + [digest]) + ".h5"


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def _part_ok(path: Path, shape: Optional[Tuple[int, ...]]) -> bool:
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    return shape is None or tuple(a.shape) == tuple(shape)


def _storage(frames: np.ndarray) -> np.ndarray:
    if np.issubdtype(frames.dtype, np.floating):
        return frames.astype(np.float32, copy=False)
    if frames.size and frames.min() < 0:
        raise CacheError("negative event counts cannot be cached")
    return frames.astype(np.uint16 if (frames.size == 0 or frames.max() <= 0xFFFF) else np.uint32, copy=False)


@flags("progress", "rebuild")
def build_frame_cache(path, key: Dict, units: Sequence[CacheUnit],
                      make: Callable[[object, object], np.ndarray], *, frame_shape: Tuple[int, ...],
                      progress: bool = True, on_sample: Optional[Callable[[int], None]] = None,
                      rebuild: bool = False) -> BuildReport:
    """Build (or resume, or reuse) the cache at ``path``.

    Args:
        key: JSON-serialisable settings stored in the file and checked when it is opened.
        units: the source files and their samples (indices ``0 .. N-1``, each exactly once).
        make: ``make(loaded, sample_spec) -> frames [T, 2, H, W]`` (counts or float).
        frame_shape: the expected ``(T, 2, H, W)`` of every sample (checked).
        on_sample: called with the sample index after each sample's part file is written.
        rebuild: discard an existing finished cache and its parts first (not when another process was
            building this cache while we waited for it: its fresh cache is reused).
    """
    path = Path(path)
    n = sum(len(u.samples) for u in units)
    indices = sorted(i for u in units for i, _, _ in u.samples)
    if n == 0:
        raise CacheError(f"{path}: no samples to cache (an empty split?)")
    if indices != list(range(n)):
        raise CacheError(f"{path}: sample indices must be 0..{n - 1}, each once")
    path.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(path) as waited:
        return _build_locked(path, key, units, make, frame_shape, progress, on_sample, rebuild and not waited)


@contextlib.contextmanager
def build_lock(path):
    """Hold the exclusive lock of the cache ``path`` (``<cache>.lock``, ``fcntl.flock``) inside the
    block, which gets whether another process held it first. A process that finds it taken prints
    ``snnedu: waiting for another process building <file>`` once and waits. The lock file is removed when the block ends; a killed holder's lock is
    released by the kernel, and its lock file is reused (and removed) by the next builder.

    Args:
        path (str or Path): the cache file (``.h5``) the lock guards.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking (one builder at a time is up to the user)
        yield False
        return
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    fd, waited = _acquire(lock, path, fcntl)
    try:
        yield waited
    finally:
        try:  # removed while still held: a waiter that then gets this file sees it is gone and retries
            os.unlink(lock)
        except FileNotFoundError:
            pass
        os.close(fd)


def _acquire(lock: Path, path: Path, fcntl) -> Tuple[int, bool]:
    told = False
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not told:
                print(f"snnedu: waiting for another process building {path}", file=sys.stderr, flush=True)
                told = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        held = os.fstat(fd)
        try:
            now = os.stat(lock)
        except FileNotFoundError:
            now = None
        if now is not None and (now.st_ino, now.st_dev) == (held.st_ino, held.st_dev):
            return fd, told
        os.close(fd)  # the previous holder removed that file after we opened it: lock the new one


def _build_locked(path: Path, key: Dict, units: Sequence[CacheUnit], make, frame_shape, progress: bool,
                  on_sample, rebuild: bool) -> BuildReport:
    from tqdm import tqdm

    n = sum(len(u.samples) for u in units)
    parts = path.with_name(path.name + ".parts")
    if rebuild:
        for p in (path, parts):
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    if path.exists():
        FrameCache(path, key)  # raises CacheError if it is not the finished cache of this key
        if parts.is_dir():  # a run killed after the rename, before its clean-up finished
            shutil.rmtree(parts, ignore_errors=True)
        return BuildReport(path, n, existed=True)
    parts.mkdir(exist_ok=True)
    key_file = parts / "key.json"
    key_json = json.dumps(key, sort_keys=True)
    if key_file.exists():
        if key_file.read_text() != key_json:
            raise CacheError(f"{parts} holds parts of a cache with other settings; delete that folder")
    else:  # atomically: a kill while writing must not leave an empty key that a rerun would refuse
        atomic_write(key_file, lambda f: f.write(key_json.encode()))

    labels = np.zeros(n, np.int64)
    built = reused = 0
    bar = tqdm(total=n, desc=f"frames -> {path.name}", unit="sample", disable=not progress or None)
    try:
        for unit in units:
            todo = []
            for idx, label, spec in unit.samples:
                labels[idx] = label
                if _part_ok(parts / f"{idx:06d}.npy", frame_shape):
                    reused += 1
                    bar.update(1)
                else:
                    todo.append((idx, spec))
            if not todo:
                continue
            loaded = unit.load()
            for idx, spec in todo:
                frames = np.asarray(make(loaded, spec))
                if tuple(frames.shape) != tuple(frame_shape):
                    raise CacheError(f"{unit.name}: sample {idx} integrated to shape {list(frames.shape)}, "
                                     f"expected {list(frame_shape)}")
                _atomic_save_npy(parts / f"{idx:06d}.npy", _storage(frames))
                built += 1
                bar.update(1)
                if on_sample is not None:
                    on_sample(idx)
    finally:
        bar.close()
    _assemble(path, parts, key_json, labels, frame_shape)
    shutil.rmtree(parts, ignore_errors=True)
    return BuildReport(path, n, built=built, reused=reused)


def _sample_crc(frames: np.ndarray, label) -> int:
    """CRC-32 of one sample: its frames' bytes, then its label as int64 (a flipped label bit is caught)."""
    return zlib.crc32(np.int64(label).tobytes(), zlib.crc32(np.ascontiguousarray(frames).tobytes()))


def _assemble(path: Path, parts: Path, key_json: str, labels: np.ndarray, frame_shape) -> None:
    import h5py

    n = labels.shape[0]
    files = [parts / f"{i:06d}.npy" for i in range(n)]
    dtypes = {np.load(f, mmap_mode="r").dtype for f in files}
    dtype = np.float32 if any(np.issubdtype(d, np.floating) for d in dtypes) else \
        (np.uint32 if np.dtype(np.uint32) in dtypes else np.uint16)
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        tmp.unlink()  # left by an interrupted assembly: never read, just redone
    try:
        with h5py.File(tmp, "w") as f:
            shape = (n, *frame_shape)
            ds = f.create_dataset("frames", shape=shape, dtype=dtype, chunks=_chunks((1, *frame_shape), shape),
                                  compression="lzf")
            crc = np.zeros(n, np.uint32)
            for i, fp in enumerate(files):
                a = np.ascontiguousarray(np.load(fp, allow_pickle=False).astype(dtype, copy=False))
                ds[i] = a
                crc[i] = _sample_crc(a, labels[i])
            f.create_dataset("labels", data=labels)
            f.create_dataset("checksums", data=crc)
            f.attrs["key"] = key_json
            f.attrs["n"] = n
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["labels_crc32"] = zlib.crc32(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
            f.attrs["complete"] = True
            f.flush()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        FrameCache(tmp, json.loads(key_json))  # verify before it gets the final name
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _chunks(chunks: Tuple[int, ...], shape: Tuple[int, ...]) -> Tuple[int, ...]:
    """``chunks`` clamped to the data ``shape`` (HDF5 refuses a chunk larger than the data)."""
    if not all(shape):
        raise CacheError(f"cannot cache an empty array of shape {list(shape)}")
    return tuple(min(c, s) for c, s in zip(chunks, shape))


# what h5py, HDF5's filters and json raise on a damaged file ("filter returned failure", "Error
# iterating over attributes", JSONDecodeError, a missing dataset or attribute, a wrong type)
_READ_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError)
REBUILD_HINT = "delete it (it is rebuilt from the recordings) or rebuild with `python -m snnedu preprocess`"


@contextlib.contextmanager
def _reading(path: Path, what: str = "not a readable snnedu frame cache"):
    """Turn any error of reading ``path`` into a :class:`CacheError` naming the file and the remedy."""
    try:
        yield
    except CacheError:
        raise
    except _READ_ERRORS as e:
        cause = " ".join(str(e).split())[:200] or type(e).__name__
        raise CacheError(f"{path}: {what} ({type(e).__name__}: {cause}); {REBUILD_HINT}") from None


class FrameCache:
    """Read access to a finished cache (see the module docstring); opened lazily per process, so it
    works inside DataLoader workers.

    Args:
        path (str or Path): the ``.h5`` file.
        key (dict or None): the settings it must have been built with (``None``, the default: accept
            any).

    ``cache[i]`` -> ``(frames ndarray [T, 2, H, W], label)``, with the sample's CRC-32 checked.
    """

    def __init__(self, path, key: Optional[Dict] = None):
        self.path = Path(path)
        if not self.path.exists():
            raise CacheError(f"{self.path}: no such frame cache")
        with _reading(self.path):
            self._open(key)
        self._file = None
        self._pid = None

    def _open(self, key: Optional[Dict]) -> None:
        import h5py

        how = REBUILD_HINT
        with h5py.File(self.path, "r") as f:
            attrs = dict(f.attrs)
            shapes = {k: f[k].shape for k in ("frames", "labels", "checksums")}
            self.labels = np.asarray(f["labels"][()], dtype=np.int64)
            self.checksums = np.asarray(f["checksums"][()])
        if attrs.get("format_version") != FORMAT_VERSION or not attrs.get("complete"):
            raise CacheError(f"{self.path}: incomplete or from another snnedu version "
                             f"(format {attrs.get('format_version')}, complete={attrs.get('complete')}); {how}")
        if int(attrs.get("labels_crc32", -1)) != zlib.crc32(np.ascontiguousarray(self.labels, np.int64).tobytes()):
            raise CacheError(f"{self.path}: the labels fail their checksum (the file is damaged); {how}")
        self.key = json.loads(attrs["key"])
        if key is not None and self.key != json.loads(json.dumps(key, sort_keys=True)):
            raise CacheError(f"{self.path}: built with other settings {self.key}, expected {key}; {how}")
        n = int(attrs["n"])
        if not (shapes["frames"][0] == shapes["labels"][0] == shapes["checksums"][0] == n):
            raise CacheError(f"{self.path}: sizes disagree (frames {shapes['frames']}, "
                             f"labels {shapes['labels']}, n={n}); {how}")
        self.frame_shape = tuple(shapes["frames"][1:])

    def __len__(self) -> int:
        return self.labels.shape[0]

    def _h5(self):
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, i: int) -> Tuple[np.ndarray, int]:
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range 0..{len(self) - 1}")
        with _reading(self.path, f"sample {i} cannot be read (the file is damaged)"):
            a = self._h5()["frames"][i]
            if tuple(a.shape) != self.frame_shape:
                raise CacheError(f"{self.path}: sample {i} has shape {list(a.shape)}, expected "
                                 f"{list(self.frame_shape)}; {REBUILD_HINT}")
            if _sample_crc(a, self.labels[i]) != int(self.checksums[i]):
                raise CacheError(f"{self.path}: sample {i} fails its checksum (the file is damaged); "
                                 f"{REBUILD_HINT}")
        return a, int(self.labels[i])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state
