"""Plots: spike rasters, membrane traces, spike-count histograms, surrogate shapes, training curves
(and, from :mod:`snnedu.viz_events`, event streams and event frames).

Every function takes an optional matplotlib ``ax`` and returns it, so plots compose into subplots.
Tensors may live on any device and require grad; they are detached and moved to the CPU here.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from ._checks import flags
from .viz_events import animate_frames, event_rate, event_scatter, frame_image, frames_grid

__all__ = ["raster", "membrane_trace", "spike_count_histogram", "plot_surrogate", "plot_history",
           "layer_bars", "tau_histogram", "threshold_histogram", "learned_values",
           "study_curves", "study_bars", "study_layers", "event_scatter", "event_rate", "frame_image", "frames_grid", "animate_frames"]


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3))
    return ax


def _np(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _as_time_by_neuron(spikes, sample: int) -> np.ndarray:
    s = _np(spikes)
    if s.ndim == 1:
        return s[:, None]
    if s.ndim == 2:
        return s
    return s[:, sample].reshape(s.shape[0], -1)


def raster(spikes, ax=None, sample: int = 0, max_neurons: Optional[int] = None, title: Optional[str] = None,
           marker_size: float = 4.0, color: str = "black"):
    """Raster plot of ``spikes``: ``[T, N]``, or ``[T, B, ...]`` (sample ``sample``, flattened).

    One dot per spike at (time step, neuron index). Multi-level spikes (values > 1) get bigger dots.
    """
    ax = _ax(ax)
    s = _as_time_by_neuron(spikes, sample)
    if max_neurons is not None:
        s = s[:, :max_neurons]
    t, n = np.nonzero(s)
    ax.scatter(t, n, s=marker_size * np.maximum(s[t, n], 1), marker="|" if s.max() <= 1 else "o", c=color)
    ax.set_xlim(-0.5, s.shape[0] - 0.5)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel("time step t")
    ax.set_ylabel("neuron")
    if title:
        ax.set_title(title)
    return ax


def membrane_trace(v, spikes=None, v_threshold: Optional[float] = None, ax=None, label: Optional[str] = None,
                   title: Optional[str] = None, color: Optional[str] = None):
    """Membrane potential over time. ``v``: ``[T]`` (or ``[T, k]`` for ``k`` traces).

    ``spikes`` (same shape) marks the firing steps; ``v_threshold`` draws the threshold line.
    """
    ax = _ax(ax)
    v = _np(v)
    steps = np.arange(v.shape[0])
    lines = ax.plot(steps, v, drawstyle="steps-mid" if v.shape[0] < 30 else "default", label=label, color=color)
    if spikes is not None:
        s = _np(spikes).reshape(v.shape)
        vv = v.reshape(v.shape[0], -1)
        for j, line in enumerate(lines):
            idx = np.nonzero(s.reshape(v.shape[0], -1)[:, j])[0]
            ax.plot(idx, vv[idx, j], "v", color=line.get_color(), markersize=6)
    if v_threshold is not None:
        ax.axhline(v_threshold, ls="--", color="gray", lw=1, label="$V_{th}$")
    ax.set_xlabel("time step t")
    ax.set_ylabel("membrane potential")
    if title:
        ax.set_title(title)
    return ax


def spike_count_histogram(spikes, ax=None, bins: Optional[int] = None, title: Optional[str] = None,
                          label: Optional[str] = None, alpha: float = 0.7):
    """Histogram of spike counts per neuron over the time axis. ``spikes``: ``[T, ...]`` (all neurons)."""
    ax = _ax(ax)
    s = _np(spikes)
    counts = s.sum(0).reshape(-1)
    T = s.shape[0]
    ax.hist(counts, bins=bins or min(T + 1, 50), range=(-0.5, counts.max() + 0.5), alpha=alpha, label=label)
    ax.set_xlabel(f"spikes per neuron over T = {T}")
    ax.set_ylabel("neurons")
    if title:
        ax.set_title(title)
    return ax


@flags("derivative")
def plot_surrogate(surrogate, ax=None, x_range: Sequence[float] = (-2.0, 2.0), derivative: bool = True,
                   label: Optional[str] = None):
    """Plot a surrogate's derivative ``g'(x)`` (default) or its primitive ``g(x)`` over ``x = H - V_th``."""
    ax = _ax(ax)
    x = torch.linspace(float(x_range[0]), float(x_range[1]), 801)
    y = surrogate.grad(x) if derivative else surrogate.primitive(x)
    ax.plot(x.numpy(), y.numpy(), label=label or repr(surrogate))
    ax.set_xlabel("$x = H - V_{th}$")
    ax.set_ylabel("$g'(x)$" if derivative else "$g(x)$")
    return ax


def plot_history(history, keys: Iterable[str] = ("train_acc", "val_acc"), ax=None, label: str = "",
                 title: Optional[str] = None):
    """Curves of the given :class:`snnedu.train.History` columns against the epoch."""
    ax = _ax(ax)
    epochs = [r["epoch"] for r in history]
    for k in keys:
        vals = [r.get(k) for r in history]
        if any(v is not None for v in vals):
            ax.plot(epochs, vals, marker="o", label=f"{label} {k}".strip())
    ax.set_xlabel("epoch")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def layer_bars(stats: Sequence[dict], key: str = "firing_rate", ax=None, label: Optional[str] = None,
               offset: float = 0.0, width: float = 0.8, title: Optional[str] = None):
    """Bar chart of one per-layer statistic from :meth:`snnedu.monitor.Monitor.neuron_stats`.

    Several models side by side: call once per model with ``width=0.4`` and ``offset=-0.2`` / ``0.2``.
    """
    ax = _ax(ax)
    x = np.arange(len(stats))
    ax.bar(x + offset, [r[key] for r in stats], width=width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{i + 1}" for i in range(len(stats))])
    ax.set_xlabel("spiking layer")
    ax.set_ylabel(key.replace("_", " "))
    if title:
        ax.set_title(title)
    if label:
        ax.legend()
    return ax


def learned_values(model, kind: str = "tau") -> list:
    """``[(layer name, 1-D numpy array, per_neuron), ...]`` of the learned time constants
    (``kind='tau'``), decay factors (``'decay'``) or thresholds (``'threshold'``) of every layer of
    ``model`` that has them; ``per_neuron`` is False for one value per layer (or per level)."""
    from .decay import LearnableDecay
    from .threshold import LearnableThreshold

    cls = LearnableThreshold if kind == "threshold" else LearnableDecay
    out = []
    for name, m in model.named_modules():
        if isinstance(m, cls) and m.is_materialized:
            v = m.value() if kind == "threshold" else getattr(m, kind)
            out.append((name.rsplit(".", 1)[0] or name, _np(v).reshape(-1), m.per_neuron))
    return out


def _value_histogram(values: list, ax, xlabel: str, bins: int, title: Optional[str]):
    ax = _ax(ax)
    colors = [f"C{i % 10}" for i in range(len(values))]
    for (name, v, per_neuron), c in zip(values, colors):
        if not per_neuron:  # one value per layer (or per level): vertical lines
            for k, val in enumerate(v):
                level = f" level {k + 1}" if v.size > 1 else ""
                ax.axvline(float(val), color=c, lw=2, ls=("-", "--", ":", "-.")[k % 4],
                           label=f"{name}{level} ({val:.3g})")
        else:
            ax.hist(v, bins=bins, alpha=0.55, color=c, label=f"{name} (n={v.size})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("neurons")
    if title:
        ax.set_title(title)
    if values:
        ax.legend(fontsize=8)
    return ax


def tau_histogram(model, ax=None, bins: int = 40, title: Optional[str] = None, kind: str = "tau"):
    """Histogram of the learned membrane time constants per layer (per-layer values as lines).

    ``kind='decay'`` plots the decay factors :math:`\\lambda` instead (PMLF, PMLF3).
    """
    return _value_histogram(learned_values(model, kind), ax, "tau (steps)" if kind == "tau" else "decay",
                            bins, title)


def threshold_histogram(model, ax=None, bins: int = 40, title: Optional[str] = None):
    """Histogram of the learned firing thresholds per layer (per-layer thresholds as lines)."""
    return _value_histogram(learned_values(model, "threshold"), ax, "threshold $V_{th}$", bins, title)


def study_curves(result: dict, curve: str = "test_acc", variants: Optional[Sequence[str]] = None, ax=None,
                 layer: Optional[int] = None, labels: Optional[Sequence[str]] = None, colors=None,
                 title: Optional[str] = None):
    """Per-epoch curves of a stored study (:mod:`snnedu.study`): the mean over seeds, with a band of
    ± one standard error, one line per variant. Epoch 0 is the network before training.

    Args:
        result: a study result (:func:`snnedu.study.load_result`).
        curve: a per-epoch key of the cells' ``curves`` (``test_acc``, ``val_acc``, ``train_loss``,
            ``firing_rate``, ``dormant``, ``tau_mean``, ``threshold_mean`` ...).
        variants: the variant labels to draw (default: all).
        ax: matplotlib axes (default: a new figure).
        layer: for per-layer curves (lists per epoch), the layer index; default: the mean over layers.
        labels: legend labels (default: the variant labels).
        colors: line colours, one per variant (default: matplotlib's cycle).
        title: axes title.
    """
    from matplotlib.ticker import MaxNLocator

    ax = _ax(ax)
    variants = list(variants or result["variants"])
    for i, v in enumerate(variants):
        rows = [r["curves"][curve] for r in result["cells"].values() if r["label"] == v and curve in r["curves"]]
        if not rows:
            raise KeyError(f"no curve {curve!r} for variant {v!r}")
        epochs = [r["curves"]["epoch"] for r in result["cells"].values() if r["label"] == v][0]
        vals = []
        for row in rows:
            pts = []
            for x in row:
                if isinstance(x, list):
                    x = x[layer] if layer is not None else float(np.mean(x))
                pts.append(np.nan if x is None else float(x))
            vals.append(pts)
        a = np.asarray(vals, dtype=float)  # [seeds, epochs]
        # a key the untrained network has no value for (train_loss at epoch 0) starts at epoch 1: a
        # shorter curve covers the last epochs
        x = np.asarray(epochs[len(epochs) - a.shape[1]:])
        _band(ax, x, a, labels[i] if labels else v, None if colors is None else colors[i])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(curve.replace("_", " "))
    if title:
        ax.set_title(title)
    return ax


def _final_values(result: dict, variant: str, key: str) -> np.ndarray:
    """``[seeds, ...]`` array of one variant's final ``key`` (dotted for nested records)."""
    from .study import _get

    rows = [_get(r, key) for r in result["cells"].values() if r["label"] == variant]
    if not rows:
        raise KeyError(f"study {result.get('name')!r} has no variant {variant!r}")
    return np.asarray(rows, dtype=float)


def _mean_se(a: np.ndarray):
    """Mean and standard error over seeds (axis 0), ignoring missing (NaN) values."""
    mean = np.nanmean(a, 0)
    se = np.nanstd(a, 0, ddof=1) / np.sqrt(a.shape[0]) if a.shape[0] > 1 else np.zeros_like(mean)
    return mean, se


def _band(ax, x: np.ndarray, a: np.ndarray, label: str, color=None) -> None:
    """One line of ``a`` ([seeds, points]) against ``x``: the mean, with a band of ± one standard error."""
    mean, se = _mean_se(a)
    ok = ~np.isnan(mean)
    line, = ax.plot(x[ok], mean[ok], marker="o", ms=3, label=label, **({} if color is None else {"color": color}))
    ax.fill_between(x[ok], (mean - se)[ok], (mean + se)[ok], alpha=0.2, color=line.get_color())


def study_bars(result: dict, grid: Sequence[Sequence[Optional[str]]], group_labels: Sequence[str],
               series_labels: Sequence[str], metric: str = "test_acc", ax=None, colors=None,
               title: Optional[str] = None, seeds: bool = True):
    """Grouped bars of a stored study's final values: mean over seeds, ± one standard error, and each
    seed as a dot.

    Args:
        result: a study result (:func:`snnedu.study.load_result`).
        grid: ``grid[g][s]`` is the variant label drawn as series ``s`` of group ``g`` (``None``: no bar).
        group_labels: one x-axis label per group.
        series_labels: one legend label per series.
        metric: a key of the cells' ``final`` record, dotted for nested ones (default ``test_acc``).
        ax: matplotlib axes (default: a new figure).
        colors: one colour per series (default: matplotlib's cycle).
        title: axes title.
        seeds: draw every seed's value as a dot (default ``True``).
    """
    from ._checks import flag

    seeds = flag("seeds", seeds)
    ax = _ax(ax)
    n_s = len(series_labels)
    width = 0.8 / n_s
    for s, name in enumerate(series_labels):
        color = colors[s] if colors is not None else f"C{s}"
        xs, means, ses = [], [], []
        for g, row in enumerate(grid):
            if row[s] is None:
                continue
            a = _final_values(result, row[s], metric)
            m, e = _mean_se(a)
            x = g + (s - (n_s - 1) / 2) * width
            xs.append(x), means.append(float(m)), ses.append(float(e))
            if seeds:
                ax.plot(np.full(len(a), x), a, "o", ms=3, color="black", alpha=0.6, zorder=3)
        ax.bar(xs, means, width=width * 0.95, yerr=ses, capsize=3, color=color, label=name)
    ax.set_xticks(range(len(group_labels)), labels=list(group_labels))
    ax.set_ylabel(metric.replace("_", " "))
    if title:
        ax.set_title(title)
    return ax


def study_layers(result: dict, key: str, variants: Sequence[str], ax=None, labels: Optional[Sequence[str]] = None,
                 colors=None, title: Optional[str] = None, layers: Optional[dict] = None):
    """A per-layer final quantity of a stored study against the layer's depth (1 = first spiking layer):
    mean over seeds with a band of ± one standard error, one line per variant.

    Args:
        result: a study result (:func:`snnedu.study.load_result`).
        key: a per-layer key of the cells' ``final`` record (``firing_rate``, ``dormant``, ``coverage`` ...).
        variants: the variant labels to draw.
        ax: matplotlib axes (default: a new figure).
        labels: legend labels (default: the variant labels).
        colors: line colours, one per variant (default: matplotlib's cycle).
        title: axes title.
        layers: ``{variant: [layer indices]}`` to draw only those layers of a variant, in that order
            (e.g. a DS-ResNet's main path without its shortcut neurons); default: every layer.
    """
    from matplotlib.ticker import MaxNLocator

    ax = _ax(ax)
    for i, v in enumerate(variants):
        a = _final_values(result, v, key)
        if layers and v in layers:
            a = a[:, list(layers[v])]
        _band(ax, np.arange(1, a.shape[1] + 1), a, labels[i] if labels else v, None if colors is None else colors[i])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("spiking layer (1 = first)")
    ax.set_ylabel(key.replace("_", " "))
    if title:
        ax.set_title(title)
    return ax
