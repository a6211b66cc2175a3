"""Plots of event streams and event frames (re-exported by :mod:`snnedu.viz`).

- :func:`event_scatter` — events as points in (t, x) or (x, y), ON red / OFF blue;
- :func:`event_rate` — events per millisecond over time, with optional segment boundaries;
- :func:`frame_image` — one frame ``[2, H, W]`` as an RGB image (ON red, OFF blue);
- :func:`frames_grid` — T frames side by side;
- :func:`animate_frames` — a matplotlib animation of the frames (``.to_jshtml()`` in a notebook).
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

__all__ = ["event_scatter", "event_rate", "frame_image", "frames_grid", "animate_frames"]

ON_COLOR, OFF_COLOR = "tab:red", "tab:blue"


def _ax(ax, figsize=(6, 3)):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize)
    return ax


def _np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def event_scatter(events: np.ndarray, ax=None, axes: str = "tx", max_events: int = 20_000, seed: int = 0,
                  size: float = 1.0, title: Optional[str] = None):
    """Scatter of an :data:`~snnedu.data.EVENT_DTYPE` array. ``axes="tx"``: time (ms) against column
    x; ``"xy"``: the sensor plane (y downwards). At most ``max_events`` random events are drawn."""
    ax = _ax(ax)
    ev = events
    if ev.size > max_events:
        ev = ev[np.sort(np.random.default_rng(seed).choice(ev.size, max_events, replace=False))]
    for p, color, name in ((1, ON_COLOR, "ON"), (0, OFF_COLOR, "OFF")):
        e = ev[ev["p"] == p]
        if axes == "tx":
            ax.scatter((e["t"] - (events["t"][0] if events.size else 0)) / 1e3, e["x"], s=size, c=color,
                       label=name, linewidths=0)
        else:
            ax.scatter(e["x"], e["y"], s=size, c=color, label=name, linewidths=0)
    if axes == "tx":
        ax.set_xlabel("time (ms)")
        ax.set_ylabel("x (column)")
    else:
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.invert_yaxis()
        ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=6, fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def event_rate(events: np.ndarray, ax=None, bin_ms: float = 10.0, boundaries_us: Sequence[int] = (),
               label: Optional[str] = None, title: Optional[str] = None):
    """Events per millisecond over time (bins of ``bin_ms``); ``boundaries_us`` are drawn as vertical
    lines (e.g. the segment starts of a frame split)."""
    ax = _ax(ax)
    t0 = events["t"][0] if events.size else 0
    t_ms = (events["t"] - t0) / 1e3
    n_bins = max(1, int(np.ceil((t_ms.max() if events.size else 1) / bin_ms)))
    counts, edges = np.histogram(t_ms, bins=n_bins, range=(0, n_bins * bin_ms))
    ax.plot(edges[:-1], counts / bin_ms, lw=1, label=label)
    for b in boundaries_us:
        ax.axvline((b - t0) / 1e3, color="gray", lw=0.6, ls="--")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("events / ms")
    if title:
        ax.set_title(title)
    return ax


def frame_image(frame, gamma: float = 0.5) -> np.ndarray:
    """A frame ``[2, H, W]`` (channel 0 OFF, 1 ON) as an RGB image ``[H, W, 3]`` in [0, 1]: ON events
    red, OFF events blue, both white-background; ``gamma`` < 1 brightens sparse pixels."""
    f = _np(frame).astype(np.float64)
    if f.ndim != 3 or f.shape[0] != 2:
        raise ValueError(f"a frame is [2, H, W], got shape {list(f.shape)}")
    f = np.abs(f)
    m = f.max()
    f = (f / m) ** gamma if m > 0 else f
    off, on = f[0], f[1]
    rgb = np.ones(off.shape + (3,))
    rgb[..., 0] -= off          # OFF: keep blue
    rgb[..., 1] -= np.maximum(on, off)
    rgb[..., 2] -= on           # ON: keep red
    return rgb.clip(0, 1)


def frames_grid(frames, axes=None, titles: Optional[Sequence[str]] = None, max_frames: int = 10,
                gamma: float = 0.5, suptitle: Optional[str] = None):
    """Frames ``[T, 2, H, W]`` side by side (evenly subsampled to ``max_frames``). Returns the axes."""
    import matplotlib.pyplot as plt

    f = _np(frames)
    idx = np.unique(np.linspace(0, f.shape[0] - 1, min(max_frames, f.shape[0])).round().astype(int))
    if axes is None:
        fig, axes = plt.subplots(1, len(idx), figsize=(1.4 * len(idx), 1.7), squeeze=False)
        axes = axes[0]
        if suptitle:
            fig.suptitle(suptitle, fontsize=9)
    for k, (ax, j) in enumerate(zip(axes, idx)):
        ax.imshow(frame_image(f[j], gamma), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(titles[k] if titles is not None else f"t={j}", fontsize=8)
    return axes


def animate_frames(frames, interval_ms: int = 150, gamma: float = 0.5, figsize=(2.4, 2.4),
                   title: Optional[str] = None):
    """A :class:`matplotlib.animation.FuncAnimation` of frames ``[T, 2, H, W]``; in a notebook show it
    with ``IPython.display.HTML(anim.to_jshtml())``. The figure is closed so it is not shown twice."""
    import matplotlib.pyplot as plt
    from matplotlib import animation

    f = _np(frames)
    fig, ax = plt.subplots(figsize=figsize)
    im = ax.imshow(frame_image(f[0], gamma), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    label = ax.set_title("")

    def update(j):
        im.set_data(frame_image(f[j], gamma))
        label.set_text(f"{title + ': ' if title else ''}frame {j + 1}/{f.shape[0]}")
        return im, label

    anim = animation.FuncAnimation(fig, update, frames=f.shape[0], interval=interval_ms, blit=False)
    plt.close(fig)
    return anim
