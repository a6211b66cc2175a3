r"""Statistics for multi-seed studies: mean ± standard error, and paired differences with a t-interval.

Every comparison in the book is made between variants trained with the *same* seeds (same initial
weights, same data order), so the natural test is on the per-seed differences ``d_i = a_i - b_i``:

.. math::

    \bar d = \frac{1}{n}\sum_i d_i, \qquad
    \mathrm{se}(\bar d) = \frac{s_d}{\sqrt{n}}, \qquad
    \bar d \pm t_{0.975,\,n-1}\,\mathrm{se}(\bar d)

where :math:`s_d` is the sample standard deviation (``n - 1`` in the denominator) and
:math:`t_{0.975, n-1}` the Student-t quantile. With 3 seeds the quantile is 4.30, so only large,
consistent differences exclude 0; that is the honest price of 3 seeds.

Pure Python (no SciPy): the t quantile comes from the regularised incomplete beta function.

Example::

    >>> from snnedu.stats import mean_se, paired_difference
    >>> mean_se([90.1, 91.0, 90.4])            # {'mean': 90.5, 'se': 0.26..., 'n': 3}
    >>> paired_difference([91, 92, 90], [89, 91, 88])['ci95']   # (0.23..., 3.10...)
"""
from __future__ import annotations

import math
from typing import Dict, Sequence

__all__ = ["mean_se", "paired_difference", "t_quantile", "fmt_mean_se", "fmt_difference"]


def _values(name: str, values: Sequence[float]) -> list:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a sequence of numbers, got {values!r:.80}") from None
    if any(not math.isfinite(v) for v in out):
        raise ValueError(f"{name}: contains NaN or infinity: {out!r:.80}")
    return out


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: float) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (e.g. ``t_quantile(0.975, 2)`` = 4.303)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p must be in (0, 1), got {p!r}")
    if not df > 0:
        raise ValueError(f"t_quantile: df must be > 0, got {df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while _t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):  # bisection to machine precision
        mid = 0.5 * (lo + hi)
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def mean_se(values: Sequence[float]) -> Dict[str, float]:
    """Mean and standard error of the mean (sample std / sqrt(n)) of per-seed values.

    Args:
        values: one number per seed (e.g. final test accuracies in %).

    Returns ``{"mean", "se", "sd", "n"}``; ``se`` and ``sd`` are NaN for a single value."""
    v = _values("mean_se", values)
    n = len(v)
    if n == 0:
        raise ValueError("mean_se: no values")
    mean = sum(v) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else float("nan")
    return {"mean": mean, "se": sd / math.sqrt(n) if n > 1 else float("nan"), "sd": sd, "n": n}


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Dict[str, object]:
    """The mean of the per-seed differences ``a_i - b_i``, its standard error and a t-interval.

    Args:
        a: one value per seed for the first variant.
        b: the second variant's values, in the same seed order as ``a``.
        confidence: coverage of the two-sided interval (0.95 gives the 95 % interval).

    Returns ``{"mean", "se", "n", "t", "ci95"/"ci": (low, high), "excludes_zero", "wins"}``, where
    ``wins`` counts the seeds with ``a_i > b_i``. Needs at least 2 pairs."""
    a, b = _values("paired_difference a", a), _values("paired_difference b", b)
    if len(a) != len(b):
        raise ValueError(f"paired_difference: a has {len(a)} values and b has {len(b)}; pair them by seed")
    if len(a) < 2:
        raise ValueError("paired_difference: needs at least 2 paired values for an interval")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"paired_difference: confidence must be in (0, 1), got {confidence!r}")
    d = [x - y for x, y in zip(a, b)]
    s = mean_se(d)
    t = t_quantile(0.5 + confidence / 2.0, len(d) - 1)
    ci = (s["mean"] - t * s["se"], s["mean"] + t * s["se"])
    out = {"mean": s["mean"], "se": s["se"], "n": len(d), "t": t, "ci": ci,
           "excludes_zero": bool(ci[0] > 0 or ci[1] < 0), "wins": sum(x > 0 for x in d), "diffs": d}
    if abs(confidence - 0.95) < 1e-12:
        out["ci95"] = ci
    return out


def fmt_mean_se(values: Sequence[float], digits: int = 1) -> str:
    """``"90.5 ± 0.3"`` (mean ± standard error) of per-seed values."""
    s = mean_se(values)
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['se']:.{digits}f}"


def fmt_difference(a: Sequence[float], b: Sequence[float], digits: int = 1) -> str:
    """``"+1.9 [+0.2, +3.1]"``: the paired mean difference ``a - b`` and its 95 % interval."""
    p = paired_difference(a, b)
    lo, hi = p["ci"]
    return f"{p['mean']:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"
