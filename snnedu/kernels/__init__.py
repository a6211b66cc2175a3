"""Fused multi-step neuron kernels and the switch that picks one.

Every neuron module's multi-step ``forward`` calls :func:`multistep`, which runs one of

- ``"reference"`` — :func:`snnedu.functional.neuron_multistep`, the per-step PyTorch loop (always
  available; the definition the others are tested against; the only one with ``record=True``);
- ``"cpu"`` — :mod:`snnedu.kernels.cpu`, a compiled loop over time with a hand-written backward
  (numba), for CPU tensors;
- ``"triton"`` — :mod:`snnedu.kernels.triton_neuron`, fused forward/backward GPU kernels, for CUDA
  tensors.

``"auto"`` (the default) takes ``"triton"`` for CUDA tensors and ``"cpu"`` for CPU tensors when they
are available, else the reference. The fused kernels compute in float32 (float16/bfloat16 inputs are
upcast), so **float64 input always takes the reference** under ``"auto"``: float64 is honoured end to
end (spikes exactly at the threshold, float64 gradients for ``gradcheck``), at the reference's speed;
a forced ``"cpu"``/``"triton"`` backend refuses float64 input. A Triton kernel found wrong on CUDA for
one neuron family and dtype is listed in :data:`TRITON_KNOWN_BAD` until it is fixed: ``"auto"`` then
runs the reference for that family and dtype, with a warning. Force one with :func:`set_backend`, the context manager
:func:`use_backend`, or the environment variable ``SNNEDU_BACKEND``. A forced backend that cannot run
a given call (e.g. ``"cpu"`` on a CUDA tensor) raises a clear error instead of silently switching.

``torch.compile`` works on the ``"cpu"`` and ``"triton"`` paths, whose kernels are registered as
PyTorch operators (:mod:`snnedu.kernels.cpu`, :mod:`snnedu.kernels.triton_neuron`).
A declared family's registered fast path (:mod:`snnedu.family`, e.g. ALIF's :mod:`snnedu.kernels.alif_cpu`)
runs eagerly inside a compiled network (one graph break), with eager's values.

Both fused backends read one plan per call, :class:`snnedu.kernels.common.MultistepSpec`.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from typing import Optional

import torch

from .._checks import check_finite, flag, short_repr
from ..errors import HyperParameterError
from ..family import CORE, NeuronFamily, fast_path
from ..functional.neuron import neuron_multistep, state_multistep
from . import cpu
from .common import fused_surrogate

__all__ = ["set_backend", "get_backend", "use_backend", "multistep", "BACKENDS", "chosen_backend",
           "TRITON_KNOWN_BAD", "triton_known_bad"]

BACKENDS = ("auto", "reference", "cpu", "triton")
_backend = os.environ.get("SNNEDU_BACKEND", "auto")
if _backend not in BACKENDS:
    raise HyperParameterError(f"SNNEDU_BACKEND must be one of {BACKENDS}, got {short_repr(_backend)}")


def set_backend(name: str) -> None:
    """Choose the multi-step backend for every neuron: one of :data:`BACKENDS`."""
    global _backend
    if name not in BACKENDS:
        raise HyperParameterError(f"backend must be one of {BACKENDS}, got {short_repr(name)}")
    _backend = name


def get_backend() -> str:
    """The backend setting (``"auto"`` unless changed)."""
    return _backend


@contextlib.contextmanager
def use_backend(name: str):
    """``with use_backend("reference"): ...`` — a backend for a block of code."""
    old = _backend
    set_backend(name)
    try:
        yield
    finally:
        set_backend(old)


#: The Triton kernels known to compute wrong results on CUDA, a dict mapping ``(family, dtype)`` to the
#: reason, with ``family`` a neuron class name (what :func:`multistep` gets as ``name``, e.g. ``"PLIF"``)
#: or ``"*"`` for every family, and ``dtype`` a torch dtype or ``None`` for every dtype. Under ``"auto"``
#: such a call runs the reference instead, with a ``RuntimeWarning`` (once per combination); a forced
#: ``"triton"`` backend still runs the kernel (that is how it is checked). Empty while no kernel is known
#: to be wrong.
TRITON_KNOWN_BAD: dict = {}
_warned: set = set()


def triton_known_bad(family: str, dtype: torch.dtype) -> Optional[str]:
    """Why the Triton kernel is not used for ``family`` and ``dtype`` (``None``: nothing known)."""
    for key in ((family, dtype), (family, None), ("*", dtype), ("*", None)):
        if key in TRITON_KNOWN_BAD:
            return TRITON_KNOWN_BAD[key]
    return None


def _triton():
    from . import triton_neuron
    return triton_neuron


@torch.compiler.assume_constant_result   # torch.compile takes it as a constant (it reads the environment)
def _triton_ok() -> bool:
    try:
        return _triton().available()
    except Exception:  # noqa: BLE001 - triton missing or broken: the reference runs instead
        return False


def chosen_backend(x_seq: torch.Tensor, surrogate, record: bool = False, name: str = "neuron",
                   family: NeuronFamily = CORE) -> str:
    """The backend :func:`multistep` would use for this input (``"auto"`` resolved); ``name`` is the
    neuron family, looked up in :data:`TRITON_KNOWN_BAD`; ``family`` the declaration
    (:mod:`snnedu.family`): a family other than the core runs a backend only where it registered a
    fast path for it."""
    record = flag("record", record)
    fusable = fused_surrogate(surrogate) is not None and not record
    if _backend == "reference":
        return "reference"
    float64 = x_seq.dtype == torch.float64  # the fused kernels compute in float32
    if _backend == "auto":
        if not fusable or float64:
            return "reference"
        if x_seq.is_cuda and _has_path(family, "triton") and _triton_ok():
            bad = triton_known_bad(name, x_seq.dtype)
            if bad is None:
                return "triton"
            if (name, x_seq.dtype) not in _warned:
                _warned.add((name, x_seq.dtype))
                warnings.warn(f"snnedu: the Triton kernel is known to be wrong for {name} in {x_seq.dtype} "
                              f"({bad}); using the reference loop instead (slower)", RuntimeWarning, stacklevel=3)
            return "reference"
        if x_seq.device.type == "cpu" and _has_path(family, "cpu") and cpu.available():
            return "cpu"
        return "reference"
    if not _has_path(family, _backend):
        raise HyperParameterError(f"the neuron family {family.name!r} has no {short_repr(_backend)} fast path; "
                                  "it runs on the 'reference' backend (what 'auto' picks for it)")
    if record:
        raise HyperParameterError(f"record=True needs the reference backend (backend is {short_repr(_backend)})")
    if not fusable:
        raise HyperParameterError(f"the {short_repr(_backend)} backend has no kernel for {type(surrogate).__name__}")
    if float64:
        raise HyperParameterError(f"the {short_repr(_backend)} backend computes in float32; float64 input needs the "
                                  "'reference' backend (what 'auto' picks for it)")
    if _backend == "cpu" and (x_seq.device.type != "cpu" or not cpu.available()):
        raise HyperParameterError("the 'cpu' backend needs CPU tensors and numba")
    if _backend == "triton" and not _triton_ok():
        raise HyperParameterError("the 'triton' backend needs triton and a CUDA device (or TRITON_INTERPRET=1)")
    return _backend


def _has_path(family: NeuronFamily, backend: str) -> bool:
    return family is CORE or fast_path(family, backend) is not None


def multistep(x_seq: torch.Tensor, v0: Optional[torch.Tensor] = None, *, record: bool = False,
              name: str = "neuron", family: NeuronFamily = CORE, **params):
    """Run a multi-step neuron like :func:`snnedu.functional.neuron_multistep` (same arguments and
    results: ``(spikes, v_last, trace)``) on the backend :func:`chosen_backend` picks. For a declared
    family other than the core (``family``, :mod:`snnedu.family`), ``v0`` and ``v_last`` are state tuples
    and the reference is :func:`snnedu.functional.state_multistep`. A NaN/inf input
    raises :class:`snnedu.errors.InputError` naming ``name`` (unless input checks are off); the CPU
    kernel finds them as it reads its input, the Triton operator scans it first, inside the operator
    (so a compiled network checks too), and the reference scans it before its loop."""
    which = chosen_backend(x_seq, params["surrogate"], record, name, family)
    if which == "reference" or family is not CORE:   # the core's fused operators check their input themselves
        check_finite(name, x_seq)
    if family is not CORE:  # a declared family: its registered fast path, or the generic reference loop
        if which == "reference":
            return state_multistep(family.step, x_seq, v0, record=record, **params)
        # a registered fast path runs eagerly under torch.compile (one graph break), unless it is itself an
        # operator that the compiler can see (as the core's CPU kernel is)
        spikes, state = torch.compiler.disable(fast_path(family, which))(x_seq, v0, **params)
        return spikes, state, None
    if which == "reference":
        return neuron_multistep(x_seq, v0, record=record, **params)
    if which == "cpu":
        spikes, v_last = cpu.cpu_multistep(x_seq, v0, name=name, **params)
    else:
        spikes, v_last = _triton().triton_multistep(x_seq, v0, name=name, **params)
    return spikes, v_last, None
