r"""Neuron families as declarations, and the registry of their fast paths.

A neuron *family* is what makes IF, LIF or an adaptive LIF different from each other: which state
variables a neuron keeps between time steps, and one pure function that advances them by one step.
Everything else (validation of the input, the multi-step loop, single-step use with state kept between
calls, recording traces, resetting, monitoring) is shared and comes from :class:`snnedu.BaseNeuron`
for free. A new family is therefore a declaration:

.. code-block:: python

    MY_FAMILY = NeuronFamily(
        name="ALIF",                 # the registry key
        state=("v", "a"),            # state variables, the membrane potential first
        step=alif_step,              # step(x_t, state, **params) -> (spikes, new_state, h)
        doc="adaptive-threshold LIF (Bellec et al. 2018)",
    )
    register_family(MY_FAMILY)

plus a thin module (a :class:`snnedu.BaseNeuron` subclass that sets ``family = MY_FAMILY`` and says
which parameters the step takes). The **step contract**:

- ``x_t`` is one time step ``[B, ...]`` (or ``[K, B, ...]``-broadcastable for multi-level units);
- ``state`` is ``None`` (start from rest) or a tuple with one tensor per name in ``state``;
- it returns ``(spikes, new_state, h)``: the spikes (0./1. in ``x_t``'s dtype, with a surrogate
  gradient), the new state tuple, and ``h``, the potential before reset (for plots and checks).

The reference multi-step path (:func:`snnedu.functional.state_multistep`) just calls ``step`` in a
loop; it is always available, so a declared family runs everywhere at once. A *fast path* (a fused
CPU or GPU kernel computing the same values) is registered per family and backend with
:func:`register_fast_path`; :func:`snnedu.kernels.multistep` uses it when the backend switch picks that
backend, and the reference otherwise. The shared core of IF, LIF, PLIF and the MLF units is the family
:data:`CORE`, whose fast paths are the kernels of :mod:`snnedu.kernels`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Tuple

from .errors import HyperParameterError
from .functional.neuron import neuron_step

__all__ = ["NeuronFamily", "register_family", "register_fast_path", "fast_path", "FAMILIES", "CORE"]


@dataclasses.dataclass(frozen=True)
class NeuronFamily:
    """The declaration of a neuron family.

    Args:
        name (str): registry key, e.g. ``"ALIF"``.
        state (tuple of str): names of the state variables kept between steps, the membrane
            potential ``"v"`` first. A module keeps each one as an attribute of that name in
            single-step use, and, with ``record=True``, its trace as ``<name>_seq`` (``[T, B, ...]``).
        step (callable): ``step(x_t, state, **params) -> (spikes, new_state, h)``, a pure function of
            tensors (see the module docstring); ``state=None`` starts from rest.
        doc (str): one line saying what the family is, for listings.
    """

    name: str
    state: Tuple[str, ...]
    step: Callable
    doc: str = ""

    def __post_init__(self):
        if not self.state or self.state[0] != "v":
            raise HyperParameterError(f"family {self.name!r}: the first state variable must be 'v', "
                                      f"got {self.state!r}")
        if len(set(self.state)) != len(self.state) or "h" in self.state:
            raise HyperParameterError(f"family {self.name!r}: state names must be distinct and not 'h' "
                                      f"(the potential before reset), got {self.state!r}")


# Every declared family by name (the registry the config and the tests read); documented in book/api.
FAMILIES: Dict[str, NeuronFamily] = {}
_FAST: Dict[Tuple[str, str], Callable] = {}


def register_family(family: NeuronFamily) -> NeuronFamily:
    """Add ``family`` to :data:`FAMILIES` (a second family of the same name is refused)."""
    if not isinstance(family, NeuronFamily):
        raise HyperParameterError(f"register_family takes a NeuronFamily, got {type(family).__name__}")
    old = FAMILIES.get(family.name)
    if old is not None and old is not family:
        raise HyperParameterError(f"a neuron family named {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def register_fast_path(family: NeuronFamily, backend: str, fn: Callable) -> None:
    """Register ``fn`` as the ``backend`` (``"cpu"`` or ``"triton"``) fast path of ``family``.

    ``fn(x_seq, state0, **params) -> (spikes, last_state)`` must compute what the reference loop
    computes (spikes exactly, gradients within float rounding); it is used only when the backend
    switch (:func:`snnedu.kernels.chosen_backend`) picks ``backend``."""
    if backend not in ("cpu", "triton"):
        raise HyperParameterError(f"a fast path is for backend 'cpu' or 'triton', got {backend!r}")
    register_family(family)
    _FAST[(family.name, backend)] = fn


def fast_path(family: NeuronFamily, backend: str) -> Optional[Callable]:
    """The registered fast path of ``family`` on ``backend``, or ``None`` (the reference runs)."""
    return _FAST.get((family.name, backend))


def _core_step(x_t, state, **params):
    s, v, h = neuron_step(x_t, None if state is None else state[0], **params)
    return s, (v,), h


#: The shared charge / fire / reset core of IF, LIF, PLIF, MLF, PMLF and PMLF3 (one state variable,
#: ``v``; see :mod:`snnedu.functional.neuron`). Its fast paths are the fused kernels of
#: :mod:`snnedu.kernels` (CPU: numba; CUDA: Triton), selected there directly.
CORE = register_family(NeuronFamily("core", ("v",), _core_step,
                                    "integrate-and-fire core: IF, LIF, PLIF, MLF, PMLF, PMLF3"))
