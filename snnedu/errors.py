"""Exceptions raised by snnedu.

Every error that snnedu raises on purpose derives from :class:`SnneduError`, so user code can catch
them all at once, and from the matching built-in (``ValueError``, ``RuntimeError``) so existing
``except ValueError`` blocks keep working.

- :class:`HyperParameterError` — a constructor argument is impossible (``tau < 1``, a non-positive
  threshold, an unknown surrogate name, ...). Raised when the object is built, not later.
- :class:`InputError` — a tensor handed to a layer has the wrong rank, dtype, shape or contains
  NaN/inf.
- :class:`StateError` — a stateful neuron is stepped with an input that does not match its stored
  state (e.g. a different batch size without :func:`snnedu.reset`).
- :class:`DataError` — a dataset cannot be found/loaded and no fallback was allowed.
- :class:`ConfigError` — a config file is unreadable, or a field of it is missing, of the wrong type or
  out of range (:mod:`snnedu.config`).
"""


class SnneduError(Exception):
    """Base class of every error snnedu raises on purpose."""


class HyperParameterError(SnneduError, ValueError):
    """An impossible hyper-parameter (raised at construction time)."""


class InputError(SnneduError, ValueError):
    """A tensor with the wrong rank, shape, dtype, or with NaN/inf values."""


class StateError(SnneduError, RuntimeError):
    """A neuron's stored state does not match the input it is stepped with."""


class DataError(SnneduError, RuntimeError):
    """A dataset could not be found or read, and no offline fallback was allowed."""


class ConfigError(SnneduError, ValueError):
    """A config file is unreadable or a field is missing, of the wrong type or out of range."""
