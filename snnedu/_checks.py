"""Small validation helpers shared by the modules (clear errors at the boundary, not deep inside)."""
from __future__ import annotations

import math
import reprlib
from numbers import Real

import torch

from .errors import HyperParameterError, InputError

# Set to False (``snnedu.set_input_checks(False)``) to skip the NaN/inf scan of every input on hot
# paths; the scan is one reduction per call but forces a host-device sync on CUDA.
_CHECK_FINITE = True


def set_input_checks(enabled: bool) -> None:
    """Turn the NaN/inf scan of layer inputs on (default) or off (a little faster on CUDA)."""
    global _CHECK_FINITE
    _CHECK_FINITE = flag("enabled", enabled)


def flag(name: str, value, *, allow_none: bool = False):
    """Validate a boolean parameter: ``True``/``False`` (or a NumPy bool), never a string or number
    that Python would call truthy (``"False"``, ``"no"`` and ``2`` are all true)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy" and type(value).__name__ in ("bool", "bool_"):
        return bool(value)
    extra = " or None" if allow_none else ""
    hint = " (a quoted string; write true or false without quotes in YAML)" if isinstance(value, str) else ""
    raise HyperParameterError(f"{name} must be True or False{extra}, got {short_repr(value)} "
                              f"({type(value).__name__}){hint}")


def flags(*names: str, optional: tuple = ()):
    """Decorator: check that the named parameters of a function are booleans (:func:`flag`) on every
    call, positional or keyword; ``optional`` names may also be ``None``. The checked names must be
    parameters of the function (caught when it is decorated)."""
    import functools
    import inspect

    def deco(fn):
        params = list(inspect.signature(fn).parameters.values())
        pos = {p.name: i for i, p in enumerate(params)
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)}
        known = {p.name for p in params}
        missing = [n for n in (*names, *optional) if n not in known]
        if missing:
            raise TypeError(f"{fn.__qualname__} has no parameter {missing}")
        checks = [(n, pos.get(n), n in optional) for n in (*names, *optional)]
        label = fn.__qualname__.replace(".__init__", "")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for n, i, opt in checks:
                if n in kwargs:
                    flag(f"{label}(): {n}", kwargs[n], allow_none=opt)
                elif i is not None and i < len(args):
                    flag(f"{label}(): {n}", args[i], allow_none=opt)
            return fn(*args, **kwargs)
        return wrapper
    return deco


def short_repr(value, n: int = 80) -> str:
    """``repr(value)`` cut to ``n`` characters (``...`` marks the cut), for error messages: a huge
    offending value (a long list, a deeply nested or self-sharing structure) must not make the message
    itself huge. Built with :mod:`reprlib`, which looks at a few items per level only, so even a value
    that would print as gigabytes is cheap.

    Args:
        value: the value to show.
        n: the most characters of the result (default 80).
    """
    r = _REPR.repr(value)
    return r if len(r) <= n else r[: n - 3] + "..."


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 4, 100, 100
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 12

# the float32 range: hyper-parameters become float32 tensors, where a larger value is inf and a
# smaller non-zero one is 0 (v_threshold=1e-300 would be a zero threshold)
_F32_MAX = float(torch.finfo(torch.float32).max)
_F32_TINY = float(torch.finfo(torch.float32).tiny)


def real(name: str, value, *, low=None, high=None, low_open=False, high_open=False,
         allow_none=False, what: str | None = None) -> float | None:
    """Validate a real scalar hyper-parameter and return it as ``float``.

    ``low``/``high`` bound the allowed interval; ``*_open`` make the bound exclusive. The message names
    the parameter, the value and the allowed interval.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise HyperParameterError(f"{name} must be a real number, got {short_repr(value)} ({type(value).__name__})")
    try:
        value = float(value)
    except OverflowError:
        raise HyperParameterError(f"{name} must be a finite number, got an integer with "
                                  f"{int(value).bit_length()} bits") from None
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    bad = math.isnan(value) or math.isinf(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        extra = f" ({what})" if what else ""
        raise HyperParameterError(f"{name} must be finite and in {interval}{extra}, got {value!r}")
    if abs(value) > _F32_MAX or 0 < abs(value) < _F32_TINY:
        raise HyperParameterError(f"{name} is outside the float32 range the layers compute in (magnitude at most "
                                  f"{_F32_MAX:.3g}; if not 0, at least {_F32_TINY:.3g}), got {value!r}")
    return value


def positive_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Validate an integer hyper-parameter (e.g. ``T``, ``K``) that must be ``>= minimum`` (and
    ``<= maximum`` when given)."""
    if (isinstance(value, bool) or not isinstance(value, int) or value < minimum
            or (maximum is not None and value > maximum)):
        allowed = f">= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
        raise HyperParameterError(f"{name} must be an integer {allowed}, got {short_repr(value)}")
    return value


def tensor_input(name: str, x, *, min_dim: int, layout: str, float_only: bool = True,
                 finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a floating tensor of rank >= ``min_dim`` without NaN/inf.

    ``layout`` is the expected layout, written like ``"[T, B, ...]"``, and appears in the message; a
    time-first layout (``"[T, ..."``) also rejects an empty time axis ``T = 0``.
    ``finite=False`` leaves the NaN/inf scan to the caller (a fused kernel does it on the fly).
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{name} expects a torch.Tensor shaped {layout}, got {type(x).__name__}")
    time_first = layout.startswith("[T")
    if x.dim() < min_dim:
        hint = (" (time first). Multi-step layers take the whole sequence [T, B, ...]; "
                "to feed a static batch [B, ...], encode it first (e.g. snnedu.DirectEncoder(T)) "
                "or use the neuron's .step() for one time step." if time_first else ".")
        raise InputError(f"{name} expects a tensor shaped {layout} (at least {min_dim} dims), "
                         f"got shape {list(x.shape)}{hint}")
    if float_only and not x.is_floating_point():
        raise InputError(f"{name} expects a floating-point tensor, got dtype {x.dtype}; "
                         "convert with x.float()")
    if time_first and min_dim >= 1 and x.shape[0] == 0:
        # an empty batch (B = 0) is fine: the output is empty too; an empty time axis is not
        raise InputError(f"{name} got an empty time dimension (T = 0) in shape {list(x.shape)}")
    if finite:
        check_finite(name, x)
    return x


def checks_enabled() -> bool:
    """Whether the NaN/inf scan of layer inputs is on (see :func:`set_input_checks`)."""
    return _CHECK_FINITE


def check_finite(name: str, x: torch.Tensor, known_bad: bool = False) -> None:
    """Raise :class:`InputError` if ``x`` contains NaN or inf (skipped when checks are disabled, and
    for tensors without data: device ``'meta'``).
    ``known_bad=True``: the caller already found a non-finite value; only count them for the message.

    An expanded input (``x.expand(T, *x.shape)``, what :class:`snnedu.DirectEncoder` returns) is
    scanned through its un-expanded base: the scan costs memory of the data, not of ``T`` copies."""
    if not (_CHECK_FINITE and x.is_floating_point() and x.numel()) or x.device.type == "meta":
        return
    base = unexpanded(x)
    if known_bad or not bool(torch.isfinite(base).all()):
        factor = x.numel() // base.numel()
        n_nan = int(torch.isnan(base).sum()) * factor
        n_inf = int(torch.isinf(base).sum()) * factor
        raise InputError(f"{name} got non-finite input: {n_nan} NaN and {n_inf} inf values "
                         f"in a tensor of shape {list(x.shape)}")


def unexpanded(x: torch.Tensor) -> torch.Tensor:
    """A view of ``x`` without its broadcast dimensions (stride 0, size > 1): the same values once.

    Args:
        x: any tensor.
    """
    if 0 not in x.stride():
        return x
    return x[tuple(0 if (st == 0 and n > 1) else slice(None) for n, st in zip(x.shape, x.stride()))]
