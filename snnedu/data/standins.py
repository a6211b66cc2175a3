"""Offline stand-ins for the event datasets: generated look-alikes in the real datasets' file layouts.

Without network access (or before a long download) the DVS chapters still need event data in the
layouts of the real datasets, so this module *generates* look-alikes, recorded by the simulated sensor
of :mod:`snnedu.data.dvs_sim`:

- :func:`write_gesture_standin` writes ``root/DvsGesture/`` like the DVS128 Gesture release
  (``userNN_<lighting>.aedat`` AEDAT 3.1 recordings, each with ``_labels.csv``, plus
  ``trials_to_train.txt`` / ``trials_to_test.txt`` and ``gesture_mapping.csv``); the "gestures" are
  bright blobs (hands) moving in 11 class-specific patterns (:func:`gesture_video`) in front of a
  static background. Source name: :data:`GESTURE_STANDIN_SOURCE`.
- :func:`write_cifar10dvs_standin` writes ``root/<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0) like
  CIFAR10-DVS: SynthShapes-10 images (:func:`snnedu.data.cifar10.synthetic_cifar10`) shown on a
  simulated monitor and moved along a small closed loop. Source name: :data:`CIFAR10DVS_STANDIN_SOURCE`.

Neither is the real dataset, and no accuracy measured on them says anything about DVS128 Gesture or
CIFAR10-DVS; they only let the same loading/training code run and learn something offline. Each
writer leaves a marker ``snnedu_standin.json`` (:data:`STANDIN_MARKER`, written last) that names the
source, so the data can never be mistaken for the real thing, and a second call with the same settings
reuses the files. The helpers of that protocol (claiming a folder, reuse, the marker) are shared with
the N-MNIST stand-in (:mod:`snnedu.data.nmnist`).

Everything is plain numpy and deterministic given ``seed``.
"""
from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from .._checks import flags, positive_int, real, short_repr
from .._io import atomic_write_bytes
from ..errors import DataError, HyperParameterError
from .aedat import write_aedat20, write_aedat31
from .cifar10 import SYNTH_CLASSES, synthetic_cifar10
from .dvs_sim import background_noise, simulate_dvs
from .events import make_events
from .frame_cache import build_lock

__all__ = ["gesture_video", "write_gesture_standin", "write_cifar10dvs_standin", "GESTURE_STANDIN_SOURCE",
           "CIFAR10DVS_STANDIN_CLASSES", "CIFAR10DVS_STANDIN_SOURCE", "STANDIN_MARKER"]

GESTURE_STANDIN_SOURCE = ("SimGesture-11 (moving-blob 'gestures' recorded by a simulated DVS, 11 classes, "
                          "DVS128 Gesture file layout; a generated offline stand-in, NOT DVS128 Gesture)")
CIFAR10DVS_STANDIN_CLASSES = tuple(c.replace(" ", "_") for c in SYNTH_CLASSES)
CIFAR10DVS_STANDIN_SOURCE = ("SimDVS-SynthShapes-10 (SynthShapes-10 images moved on a monitor and recorded "
                             "by a simulated DVS, 10 classes, CIFAR10-DVS file layout; a generated offline "
                             "stand-in, NOT CIFAR10-DVS)")
STANDIN_MARKER = "snnedu_standin.json"
_PARTIAL_MARKER = "snnedu_standin.partial"
_FORMAT_VERSION = 1          # bump when the generated data change, so old stand-ins are regenerated
_LIGHTING_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")
# a simulated recording was never started at any wall-clock time: its AEDAT 3.1 '#Start-Time:' line says
# 1970-01-01 00:00:00 (TZ+0000), so that the files stay byte-for-byte the same for the same seed
_STANDIN_START_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)


# --------------------------------------------------------------------------------------------------
# small rendering helpers
# --------------------------------------------------------------------------------------------------
def _as_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise HyperParameterError(f"rng must be a numpy Generator or an integer seed, got {short_repr(rng)}")


def _child_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator per (seed, keys): samples do not depend on the order of generation."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2 ** 63, *map(int, keys)]))


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` linear interpolation weights (pixel centres aligned, edges clamped)."""
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    f = pos - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1 - f)
    np.add.at(m, (np.arange(n_out), i1), f)
    return m


def _smooth_texture(size: int, rng: np.random.Generator, cells: int = 8) -> np.ndarray:
    """A smooth random field ``[size, size]`` with values of unit scale (bilinear upsampled noise)."""
    u = _interp_matrix(cells, size)
    return u @ rng.standard_normal((cells, cells)) @ u.T


# --------------------------------------------------------------------------------------------------
# gestures
# --------------------------------------------------------------------------------------------------
def _gesture_paths(label: int, u: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Blob centres ``[F, B, 2]`` (x column, y row, in pixels) of gesture ``label`` at times ``u`` in [0, 1].

    The subject faces the sensor, so their *right* hand appears in the image's *left* half.
    "Clockwise" means clockwise as seen by the sensor (in the image, rows growing downwards).
    """
    s = size / 128.0
    spd = rng.uniform(0.8, 1.25)                         # speed factor
    amp = rng.uniform(0.8, 1.2)                          # amplitude factor
    ph = rng.uniform(0, 2 * np.pi)                       # phase
    off = rng.uniform(-6, 6, size=2) * s                 # position offset
    xr, xl, yc = 0.32 * size + off[0], 0.68 * size + off[0], 0.48 * size + off[1]
    xm = 0.5 * size + off[0]
    two_pi_u = 2 * np.pi * u
    if label == 0:                                        # hand clap: two hands meet and separate
        f = 2.5 * spd
        sep = amp * 22 * s * (0.6 + 0.4 * np.cos(two_pi_u * f + ph))
        y = np.full_like(u, yc + 8 * s)
        pos = [(xm - sep, y), (xm + sep, y)]
    elif label in (1, 2):                                 # hand wave, right (image left) / left
        f = 2.5 * spd
        x0 = xr if label == 1 else xl
        a = amp * 16 * s
        pos = [(x0 + a * np.sin(two_pi_u * f + ph), yc - 14 * s + 3 * s * np.cos(2 * (two_pi_u * f + ph)))]
    elif label in (3, 4, 5, 6):                           # arm circles: right (3, 4) / left (5, 6), cw / ccw
        rev = 1.6 * spd
        x0 = xr if label in (3, 4) else xl
        direction = 1.0 if label in (3, 5) else -1.0       # angle growing with y down = clockwise on screen
        r = amp * 24 * s
        th = ph + direction * two_pi_u * rev
        pos = [(x0 + r * np.cos(th), yc + r * np.sin(th))]
    elif label == 7:                                      # arm roll: two hands circle around each other
        rev = 2.5 * spd
        direction = 1.0 if rng.random() < 0.5 else -1.0
        r = amp * 10 * s
        th = ph + direction * two_pi_u * rev
        y0 = yc + 8 * s
        pos = [(xm + r * np.cos(th), y0 + r * np.sin(th)), (xm - r * np.cos(th), y0 - r * np.sin(th))]
    elif label == 8:                                      # air drums: two hands bounce, alternating
        f = 2.5 * spd
        a = amp * 12 * s
        y0 = yc + 10 * s
        pos = [(xm - 20 * s, y0 + a * np.abs(np.sin(two_pi_u * f / 2 + ph)) * 2 - a),
               (xm + 20 * s, y0 + a * np.abs(np.cos(two_pi_u * f / 2 + ph)) * 2 - a)]
    elif label == 9:                                      # air guitar: diagonal strumming, still fretting hand
        f = 3.0 * spd
        a = amp * 13 * s
        ang = np.deg2rad(rng.uniform(35, 55))
        ssn = a * np.sin(two_pi_u * f + ph)
        x0, y0 = xm + 6 * s, yc + 14 * s
        pos = [(x0 + ssn * np.cos(ang), y0 - ssn * np.sin(ang)),
               (xm - 30 * s + 2 * s * np.sin(two_pi_u + ph), yc - 4 * s)]
    elif label == 10:                                     # other: a random walk (smoothed random velocity)
        n = u.size
        vel = rng.standard_normal((n + 8, 2))
        kernel = np.hanning(9)
        vel = np.stack([np.convolve(vel[:, c], kernel / kernel.sum(), mode="valid")[:n] for c in range(2)], 1)
        step = vel / (np.sqrt((vel ** 2).sum(1, keepdims=True)).mean() + 1e-9) * amp * 2.8 * s * spd
        step *= 48.0 / max(n, 1)                          # same distance whatever the frame count
        path = np.cumsum(step, 0)
        path -= path.mean(0)
        lim = 0.3 * size
        path = np.clip(path, -lim, lim)
        pos = [(xm + path[:, 0], yc + path[:, 1])]
    else:
        raise HyperParameterError(f"gesture label must be an integer in 0..10, got {short_repr(label)}")
    return np.stack([np.stack([np.broadcast_to(x, u.shape), np.broadcast_to(y, u.shape)], -1)
                     for x, y in pos], 1)


def gesture_video(label: int, *, size: int = 128, n_frames: int = 48, duration_us: int = 1_200_000,
                  rng=None) -> Tuple[np.ndarray, np.ndarray]:
    """Render one stand-in gesture: a grey video of bright blobs ("hands") moving in front of a scene.

    Args:
        label: 0..10, the class in :data:`snnedu.data.dvs.GESTURE_CLASSES` order. The patterns: 0 two blobs
            approaching and separating (clap); 1/2 one blob swinging horizontally in the image's left
            / right half (the subject faces the sensor, so the right hand is on the image's left);
            3/4 one blob circling clockwise / counter-clockwise (as seen by the sensor) in the left
            half, 5/6 the same in the right half; 7 two blobs circling around each other (roll);
            8 two blobs bouncing vertically in alternation (drums); 9 one blob swinging diagonally
            and one nearly still (guitar); 10 one blob on a random walk (other).
        size: the square frame's side in pixels (the patterns scale with it).
        n_frames: ``>= 2`` frames, evenly spaced over ``[0, duration_us]``.
        duration_us: the gesture's length in µs.
        rng: a ``numpy.random.Generator`` or an integer seed (default 0). Every sample draws its
            own speed, phase, amplitude, position offset, blob size and brightness, and background.

    Returns:
        ``(video, timestamps)``: ``float32 [n_frames, size, size]`` intensities in [0, 1] and
        ``int64 [n_frames]`` times in µs starting at 0. Feed them to :func:`~snnedu.data.dvs_sim.simulate_dvs`.
    """
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) <= 10:
        raise HyperParameterError(f"gesture label must be an integer in 0..10, got {short_repr(label)}")
    size = positive_int("size", size, minimum=16)
    n_frames = positive_int("n_frames", n_frames, minimum=2)
    if isinstance(duration_us, np.integer):
        duration_us = int(duration_us)
    duration_us = positive_int("duration_us", duration_us, minimum=n_frames - 1)
    rng = _as_rng(rng)
    s = size / 128.0
    # the scene: a dark, slightly textured static background
    bg_level = rng.uniform(0.15, 0.28)
    bg = (bg_level * (1 + 0.12 * _smooth_texture(size, rng))).astype(np.float32)
    hand = rng.uniform(0.4, 0.6)
    radius = rng.uniform(4.5, 7.0) * s
    u = np.linspace(0.0, 1.0, n_frames)
    centres = _gesture_paths(int(label), u, size, rng).astype(np.float32)      # [F, B, 2]

    coords = np.arange(size, dtype=np.float32) + 0.5
    mask = np.zeros((n_frames, size, size), np.float32)
    for b in range(centres.shape[1]):
        dx2 = (coords[None, :] - centres[:, b, 0:1]) ** 2                        # [F, W]
        dy2 = (coords[None, :] - centres[:, b, 1:2]) ** 2                        # [F, H]
        dist = np.sqrt(dy2[:, :, None] + dx2[:, None, :])
        np.maximum(mask, np.clip(radius + 0.5 - dist, 0.0, 1.0), out=mask)      # ~1 px anti-aliased edge
    video = bg[None] + (np.float32(hand) - bg[None]) * mask
    np.clip(video, 0.0, 1.0, out=video)
    timestamps = np.rint(np.linspace(0, duration_us, n_frames)).astype(np.int64)
    return video, timestamps


# --------------------------------------------------------------------------------------------------
# stand-in writing: markers, reuse, atomicity
# --------------------------------------------------------------------------------------------------
def _bars_off(progress: bool) -> bool:
    """True when progress bars are off: ``progress=False`` or ``TQDM_DISABLE`` set."""
    env = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return not progress or env not in ("", "0", "false", "no")


def _read_marker(folder: Path) -> Optional[dict]:
    try:
        return json.loads((folder / STANDIN_MARKER).read_text())
    except (OSError, ValueError):
        return None


def _reusable(folder: Path, wanted: Dict, files: Sequence[Path]) -> Optional[dict]:
    """The marker, when ``folder`` holds a complete stand-in generated with the settings ``wanted``."""
    if (folder / _PARTIAL_MARKER).exists():
        return None
    marker = _read_marker(folder)
    if marker is None or any(marker.get(k) != v for k, v in wanted.items()):
        return None
    if not all(f.is_file() for f in files):
        return None
    return marker


def _reuse(folder: Path, wanted: Dict, files: Sequence[Path], what: str) -> bool:
    """True (after saying so in one line) when ``folder`` already holds this complete stand-in."""
    marker = _reusable(folder, wanted, files)
    if marker is None:
        return False
    print(f"snnedu data: reusing {wanted['source']}: {what}, {marker.get('n_events', 0):,} events "
          f"(seed {wanted['seed']}) in {folder}")
    return True


def _start_writing(folder: Path, source: str, own_files: Sequence[Path], data_suffix: str = ".aedat") -> None:
    """Claim ``folder`` for a (re)generation: refuse foreign data (a marker of another source, or
    ``*data_suffix`` files without our marker), mark it partial, drop our old files."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = _read_marker(folder)
    ours = (folder / _PARTIAL_MARKER).exists() or (marker is not None and marker.get("source") == source)
    if not ours and (folder / STANDIN_MARKER).exists():
        raise DataError(f"{folder} holds a {STANDIN_MARKER} of another data set "
                        f"({(marker or {}).get('source', 'unreadable')}); choose another root")
    if not ours and any(folder.rglob("*" + data_suffix)):
        raise DataError(f"{folder} already holds {data_suffix} files that snnedu did not generate (the real "
                        f"dataset?); refusing to write a stand-in over them — choose another root")
    atomic_write_bytes(folder / _PARTIAL_MARKER, json.dumps({"source": source}).encode())
    (folder / STANDIN_MARKER).unlink(missing_ok=True)
    for f in own_files:
        f.unlink(missing_ok=True)


def _write_standin(folder: Path, wanted: Dict, files: Sequence[Path], what: str,
                  own_files: Callable[[], Sequence[Path]], write: Callable[[], Dict],
                  data_suffix: str = ".aedat") -> Path:
    """The protocol every stand-in writer follows: reuse a complete stand-in with the settings ``wanted``;
    otherwise, holding the folder's build lock (and reusing what another process finished meanwhile),
    claim the folder (:func:`_start_writing`, which deletes ``own_files()``), run ``write()`` and finish
    with the marker: ``wanted`` plus the fields ``write()`` returns (at least ``n_events``).

    Args:
        folder: the stand-in's root.
        wanted: the settings that make a stand-in reusable (``source`` and ``seed`` among them).
        files: every data file of a complete stand-in.
        what: one phrase for the printed line, e.g. ``"40 recordings (10 classes x 4)"``.
        own_files: the files of an earlier (partial) generation, found when the lock is held.
        write: writes the data files; returns the marker's further fields.
        data_suffix: suffix of the data set's files (foreign ones make the writer refuse the folder).
    """
    if _reuse(folder, wanted, files, what):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(folder) as waited:  # two processes asking for one stand-in take turns
        if waited and _reuse(folder, wanted, files, what):
            return folder
        start = time.perf_counter()
        _start_writing(folder, wanted["source"], own_files(), data_suffix)
        _finish_writing(folder, {**wanted, **write()}, what, start)
    return folder


def _finish_writing(folder: Path, marker: Dict, what: str, start: float) -> None:
    """Write the marker (last: it makes the stand-in complete) and say in one line what was generated;
    ``start`` is the generation's ``time.perf_counter()``."""
    atomic_write_bytes(folder / STANDIN_MARKER, (json.dumps(marker, indent=1) + "\n").encode())
    (folder / _PARTIAL_MARKER).unlink(missing_ok=True)
    print(f"snnedu data: generated {marker['source']}: {what}, {marker['n_events']:,} events (seed {marker['seed']}) "
          f"in {time.perf_counter() - start:.1f} s -> {folder}")


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise HyperParameterError(f"seed must be a non-negative integer, got {short_repr(seed)}")
    return int(seed)


def _check_size(size) -> int:
    size = positive_int("size", size, minimum=16)
    if size > 128:
        raise HyperParameterError(f"size must be <= 128 (the files hold a 128x128 DVS128 sensor), got {size}")
    return size


# --------------------------------------------------------------------------------------------------
# DVS128 Gesture stand-in
# --------------------------------------------------------------------------------------------------
def _gesture_recording(user: int, lighting_index: int, *, repeats: int, size: int, seed: int):
    """Events and label rows ``(class 1..11, start_us, end_us)`` of one stand-in recording."""
    rng = _child_rng(seed, 1, user, lighting_index)
    # per recording ("sensor biases and lighting"): threshold and background activity
    C = rng.uniform(0.17, 0.22)
    noise = rng.uniform(0.03, 0.1)
    order = np.concatenate([rng.permutation(11) for _ in range(repeats)])
    t = int(rng.integers(50_000, 200_000))            # recordings do not start at t = 0
    t_start = t
    chunks, rows = [], []
    for label in order:
        duration = int(rng.integers(1_000_000, 1_500_001))
        n_frames = int(round(duration / 25_000)) + 1  # one frame per ~25 ms
        video, ts = gesture_video(int(label), size=size, n_frames=n_frames, duration_us=duration, rng=rng)
        ev = simulate_dvs(video, ts + t, contrast_threshold=C, refractory_us=1000, noise_rate_hz=0.0,
                          seed=0)
        chunks.append(ev)
        rows.append((int(label) + 1, t, t + duration))
        t += duration + int(rng.integers(100_000, 300_001))
    nt, nx, ny, npol = background_noise((size, size), t_start, t, noise, rng)
    chunks.append(make_events(nt, nx, ny, npol))
    events = np.concatenate(chunks)
    events = events[np.argsort(events["t"], kind="stable")]
    return events, rows


@flags("progress")
def write_gesture_standin(root, *, n_train_users: int = 4, n_test_users: int = 2,
                          lightings: Sequence[str] = ("fluorescent", "led"), repeats: int = 1,
                          size: int = 128, seed: int = 0, progress: bool = True) -> Path:
    """Write SimGesture-11, a generated stand-in in the layout of the DVS128 Gesture release.

    Creates ``root/DvsGesture/`` with one AEDAT 3.1 recording per (user, lighting),
    ``user{NN:02d}_{lighting}.aedat`` (users numbered from 01, the ``n_train_users`` training users
    first), each holding all 11 gestures ``repeats`` times in random order (1.0–1.5 s each, gaps of
    0.1–0.3 s) with its ``_labels.csv`` (``class 1..11, startTime_usec, endTime_usec``);
    ``trials_to_train.txt`` / ``trials_to_test.txt`` (the recording file names, one a line);
    ``gesture_mapping.csv``; and last the marker ``snnedu_standin.json`` naming
    :data:`GESTURE_STANDIN_SOURCE`, the classes, the generator, the seed and the settings.

    Each recording draws its own contrast threshold (0.17–0.22) and background activity
    (0.03–0.1 Hz per pixel) — the "lighting" names only label the files. Deterministic given the
    arguments, byte for byte: the recordings' ``#Start-Time:`` header line is the Unix epoch. If the
    folder already holds a complete stand-in made with the same settings it is
    reused; a half-written one (interrupted run) or one with other settings is regenerated; a folder
    with foreign ``.aedat`` files (e.g. the real dataset) raises :class:`snnedu.errors.DataError`.
    Prints one line saying what was generated (or reused) and where.

    Args:
        root: the data folder; the stand-in goes to ``root/DvsGesture``.
        n_train_users, n_test_users: how many users (recording sessions) per split (``>= 1``, ``>= 0``).
        lightings: lighting-condition names (letters, digits, ``_``), one recording per user each.
        repeats: how many times each gesture appears in a recording.
        size: sensor side used by the simulation (16..128; the files always describe a 128x128 sensor).
        seed: the generator's seed. progress: a tqdm bar (also silenced by ``TQDM_DISABLE=1``).

    Returns:
        the path ``root/DvsGesture``.
    """
    n_train_users = positive_int("n_train_users", n_train_users)
    n_test_users = positive_int("n_test_users", n_test_users, minimum=0)
    repeats = positive_int("repeats", repeats)
    size = _check_size(size)
    seed = _check_seed(seed)
    if isinstance(lightings, str):
        lightings = (lightings,)
    lightings = tuple(lightings)
    if not lightings or len(set(lightings)) != len(lightings) or not all(
            isinstance(lt, str) and _LIGHTING_RE.match(lt) for lt in lightings):
        raise HyperParameterError(f"lightings must be distinct non-empty names of letters, digits and '_', "
                                  f"got {short_repr(lightings)}")
    folder = Path(root) / "DvsGesture"
    n_users = n_train_users + n_test_users
    names = {u: [f"user{u:02d}_{lt}.aedat" for lt in lightings] for u in range(1, n_users + 1)}
    train = [n for u in range(1, n_train_users + 1) for n in names[u]]
    test = [n for u in range(n_train_users + 1, n_users + 1) for n in names[u]]
    recordings = train + test
    files = ([folder / n for n in recordings] + [folder / (n[:-6] + "_labels.csv") for n in recordings]
             + [folder / "trials_to_train.txt", folder / "trials_to_test.txt", folder / "gesture_mapping.csv"])
    from .dvs import GESTURE_CLASSES  # the real dataset's classes, which the stand-in imitates

    wanted = {"source": GESTURE_STANDIN_SOURCE, "classes": list(GESTURE_CLASSES),
              "generator": "snnedu.data.standins.write_gesture_standin", "seed": seed,
              "n_train_users": n_train_users, "n_test_users": n_test_users, "lightings": list(lightings),
              "repeats": repeats, "size": size, "format_version": _FORMAT_VERSION}
    what = (f"{len(recordings)} recordings ({n_train_users} train / {n_test_users} test users x "
            f"{len(lightings)} lightings), {len(recordings) * 11 * repeats} gestures")

    def own():
        return [f for pat in ("user*.aedat", "user*_labels.csv") for f in folder.glob(pat)] if folder.is_dir() else []

    def write():
        n_events = 0
        with tqdm(total=len(recordings), desc="SimGesture-11 stand-in", unit="rec", leave=False,
                  disable=_bars_off(progress)) as bar:
            for u in range(1, n_users + 1):
                for li, name in enumerate(names[u]):
                    events, rows = _gesture_recording(u, li, repeats=repeats, size=size, seed=seed)
                    write_aedat31(folder / name, events, labels=rows, start_time=_STANDIN_START_TIME,
                                  durable=False)
                    n_events += events.size
                    bar.update(1)
        atomic_write_bytes(folder / "trials_to_train.txt", "".join(n + "\n" for n in train).encode())
        atomic_write_bytes(folder / "trials_to_test.txt", "".join(n + "\n" for n in test).encode())
        mapping = "action,label\n" + "".join(f"{c},{i + 1}\n" for i, c in enumerate(GESTURE_CLASSES))
        atomic_write_bytes(folder / "gesture_mapping.csv", mapping.encode())
        return {"n_recordings": len(recordings), "n_gestures": len(recordings) * 11 * repeats,
                "n_events": int(n_events)}
    return _write_standin(folder, wanted, files, what, own, write)


# --------------------------------------------------------------------------------------------------
# CIFAR10-DVS stand-in
# --------------------------------------------------------------------------------------------------
def _monitor_video(image: np.ndarray, rng: np.random.Generator, *, size: int, n_frames: int,
                   duration_us: int) -> Tuple[np.ndarray, np.ndarray]:
    """A ``uint8 [3, h, w]`` image shown on a grey monitor, moving along a small closed loop.

    Returns ``float32 [n_frames, size, size]`` intensities and ``int64 [n_frames]`` times (µs from 0).
    The image is converted to grey, lightly blurred ([1 2 1]/4, against SynthShapes' pixel noise),
    contrast-stretched (1st..99th percentile, gain at most 4) to the monitor's range 0.1..0.9, shown
    ``100 * size / 128`` pixels wide (within ±2 px of the centre) on a grey surround, and translated along a circle of radius 2.5..4 px (scaled with
    ``size / 128``) traversed once, starting and ending at the centre position, with bilinear
    resampling so sub-pixel motion is smooth.
    """
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]).astype(np.float64) / 255.0
    g = np.pad(grey, 1, mode="edge")                   # a light [1 2 1]/4 blur against the pixel noise
    g = 0.25 * g[:-2] + 0.5 * g[1:-1] + 0.25 * g[2:]
    grey = 0.25 * g[:, :-2] + 0.5 * g[:, 1:-1] + 0.25 * g[:, 2:]
    lo, hi = np.percentile(grey, [1, 99])
    grey = 0.1 + 0.8 * np.clip((grey - lo) / max(hi - lo, 0.25), 0.0, 1.0)   # contrast stretched (gain <= 4)
    ih, iw = grey.shape
    s = size / 128.0
    disp = 100.0 * s                                   # displayed width in sensor pixels
    left = (size - disp) / 2 + rng.uniform(-2, 2) * s
    top = (size - disp) / 2 + rng.uniform(-2, 2) * s
    monitor = rng.uniform(0.4, 0.5)
    radius = rng.uniform(2.5, 4.0) * s
    phase = rng.uniform(0, 2 * np.pi)
    direction = 1.0 if rng.random() < 0.5 else -1.0
    u = np.linspace(0.0, 1.0, n_frames)
    ang = phase + direction * 2 * np.pi * u
    dx = radius * (np.cos(ang) - np.cos(phase))
    dy = radius * (np.sin(ang) - np.sin(phase))

    pix = np.arange(size, dtype=np.float64)

    def axis(lo: np.ndarray, n_src: int):               # lo: [F] image start along this axis
        # bilinear weights [F, size, n_src] (edges clamped) and the pixel's coverage by the image [F, size]
        src = np.clip((pix[None, :] + 0.5 - lo[:, None]) * n_src / disp - 0.5, 0, n_src - 1)
        i0 = np.floor(src).astype(int)
        f = (src - i0)[..., None]
        i1 = np.minimum(i0 + 1, n_src - 1)
        k = np.arange(n_src)
        w = (k == i0[..., None]) * (1 - f) + (k == i1[..., None]) * f
        cover = np.clip(np.minimum(pix[None, :] + 1, (lo + disp)[:, None]) - np.maximum(pix[None, :], lo[:, None]),
                        0.0, 1.0)
        return w, cover

    wy, cy = axis(top + dy, ih)
    wx, cx = axis(left + dx, iw)
    shown = (wy @ grey) @ wx.transpose(0, 2, 1)             # [F, size, size]
    cover = cy[:, :, None] * cx[:, None, :]
    video = (cover * shown + (1 - cover) * monitor).astype(np.float32)
    timestamps = np.rint(np.linspace(0, duration_us, n_frames)).astype(np.int64)
    return video, timestamps


@flags("progress")
def write_cifar10dvs_standin(root, *, n_per_class: int = 40, size: int = 128, seed: int = 0,
                             progress: bool = True) -> Path:
    """Write SimDVS-SynthShapes-10, a generated stand-in in the layout of CIFAR10-DVS.

    For every class of SynthShapes-10 (:data:`snnedu.data.cifar10.SYNTH_CLASSES`) ``n_per_class``
    images are shown on a simulated grey monitor (upsampled 32 -> ~100 px), moved once around a small
    circle (radius 2.5–4 px) in 0.25–0.35 s (24–36 frames), and recorded with :func:`~snnedu.data.dvs_sim.simulate_dvs`
    (contrast threshold 0.18–0.25, background activity 0.05–0.15 Hz per pixel). The events go to
    ``root/<class>/cifar10_<class>_<i>.aedat`` (AEDAT 2.0, ``i`` from 0), where ``<class>`` are
    :data:`CIFAR10DVS_STANDIN_CLASSES` (``"horizontal_stripes"``, ...). The marker
    ``root/snnedu_standin.json`` (written last) names :data:`CIFAR10DVS_STANDIN_SOURCE`, the classes
    in label order, the generator, the seed and the settings. Reuse, regeneration, refusal of
    foreign data and the one printed line work as in :func:`write_gesture_standin`.

    Args:
        root: the dataset folder (the class folders go directly inside it).
        n_per_class: recordings per class.
        size: sensor side used by the simulation (16..128; the files describe a 128x128 sensor).
        seed: seeds the images and the recordings. progress: a tqdm bar (also off with ``TQDM_DISABLE=1``).

    Returns:
        the path ``root``.
    """
    n_per_class = positive_int("n_per_class", n_per_class)
    size = _check_size(size)
    seed = _check_seed(seed)
    folder = Path(root)
    classes = CIFAR10DVS_STANDIN_CLASSES
    files = [folder / c / f"cifar10_{c}_{i}.aedat" for c in classes for i in range(n_per_class)]
    wanted = {"source": CIFAR10DVS_STANDIN_SOURCE, "classes": list(classes),
              "generator": "snnedu.data.standins.write_cifar10dvs_standin", "seed": seed,
              "n_per_class": n_per_class, "size": size, "format_version": _FORMAT_VERSION}
    what = f"{len(files)} recordings ({len(classes)} classes x {n_per_class})"

    def own():
        return [f for c in classes if (folder / c).is_dir() for f in (folder / c).glob(f"cifar10_{c}_*.aedat")]

    def write():
        images, labels, _, _ = synthetic_cifar10(10 * n_per_class, 10, seed)
        images, labels = images.numpy(), labels.numpy()
        n_events = 0
        with tqdm(total=len(files), desc="SimDVS-SynthShapes-10 stand-in", unit="file", leave=False,
                  disable=_bars_off(progress)) as bar:
            for c, name in enumerate(classes):
                (folder / name).mkdir(parents=True, exist_ok=True)
                for i, k in enumerate(np.flatnonzero(labels == c)[:n_per_class]):
                    rng = _child_rng(seed, 2, c, i)
                    n_frames = int(rng.integers(24, 37))
                    duration = int(rng.integers(250_000, 350_001))
                    video, ts = _monitor_video(images[k], rng, size=size, n_frames=n_frames, duration_us=duration)
                    ev = simulate_dvs(video, ts, contrast_threshold=rng.uniform(0.18, 0.25), refractory_us=1000,
                                      noise_rate_hz=rng.uniform(0.05, 0.15), seed=int(rng.integers(2 ** 31)))
                    write_aedat20(folder / name / f"cifar10_{name}_{i}.aedat", ev, durable=False)
                    n_events += ev.size
                    bar.update(1)
        return {"n_recordings": len(files), "n_events": int(n_events)}
    return _write_standin(folder, wanted, files, what, own, write)
