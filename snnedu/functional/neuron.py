r"""Pure tensor functions for integrate-and-fire neurons: charge, fire, reset.

No state, no ``nn.Module``: the module shells in :mod:`snnedu.neurons` keep the membrane potential
and call these. Every neuron family is the same three steps at each time step ``t``:

.. math::

    H[t] &= f(V[t-1], X[t])                 \quad\text{(charge)} \\
    S[t] &= \Theta(H[t] - V_{th})           \quad\text{(fire; surrogate gradient backward)} \\
    V[t] &= \begin{cases} H[t](1 - S[t]) + V_{reset} S[t] & \text{hard reset} \\
                          H[t] - V_{th} S[t] & \text{soft reset (}V_{reset}=\text{None)} \end{cases}

Charge functions, with ``k = 1/tau`` the leak per step (chapter 2 of the book derives both forms):

- IF: :math:`H = V + X`
- LIF, ``decay_input=True`` (Form A, PLIF paper / SpikingJelly): :math:`H = V + k\,(X - (V - V_{reset}))`
- LIF, ``decay_input=False``: :math:`H = V - k\,(V - V_{reset}) + X`. With a hard reset to 0 this is
  exactly the iterative STBP form (Form B) :math:`u[t] = \lambda u[t-1](1 - o[t-1]) + x[t]` with
  decay factor :math:`\lambda = 1 - k`.

``detach_reset=True`` uses ``S.detach()`` in the reset term, so no gradient flows through the reset.
The initial potential is ``V_reset`` (hard reset) or 0 (soft reset).

Shapes: ``x_seq`` is ``[T, B, ...]`` (time first); a single step ``x`` is ``[B, ...]``. ``k`` and
``v_threshold`` are Python floats or tensors broadcastable to ``[B, ...]`` (per-neuron parameters).
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch

from .._checks import flag, flags

Scalar = Union[float, torch.Tensor]

__all__ = ["charge", "fire", "reset_potential", "initial_potential", "neuron_step", "neuron_multistep",
           "state_multistep"]


def charge(v: torch.Tensor, x: torch.Tensor, k: Optional[Scalar] = None,
           v_reset: Optional[float] = 0.0, decay_input: bool = True) -> torch.Tensor:
    """Membrane potential after integrating input ``x`` (``k=None``: IF, no leak)."""
    if decay_input is not True and decay_input is not False:  # per step: the fast test first
        flag("charge(): decay_input", decay_input)
    if k is None:
        return v + x
    vr = 0.0 if v_reset is None else v_reset
    leak = v if vr == 0.0 else v - vr  # skip a no-op subtraction for the common v_reset = 0
    if decay_input:
        return v + k * (x - leak)
    return v - k * leak + x


def fire(h: torch.Tensor, v_threshold: Scalar, surrogate: Callable) -> torch.Tensor:
    """Spikes ``Θ(h - v_threshold)`` (0./1. in ``h``'s dtype) with the surrogate's gradient."""
    return surrogate(h - v_threshold)


def reset_potential(h: torch.Tensor, s: torch.Tensor, v_threshold: Scalar,
                    v_reset: Optional[float] = 0.0, detach_reset: bool = False) -> torch.Tensor:
    """Potential after the spike: hard reset to ``v_reset``, or soft reset (``v_reset=None``)."""
    if detach_reset is not True and detach_reset is not False:
        flag("reset_potential(): detach_reset", detach_reset)
    if detach_reset:
        s = s.detach()
    if v_reset is None:
        return h - v_threshold * s
    if v_reset == 0.0:
        return h * (1.0 - s)
    return h * (1.0 - s) + v_reset * s


def initial_potential(like: torch.Tensor, v_reset: Optional[float] = 0.0) -> torch.Tensor:
    """Resting potential shaped like one time step of the input: ``V_reset`` (hard) or 0 (soft)."""
    return torch.full_like(like, 0.0 if v_reset is None else v_reset)


@flags("decay_input", "detach_reset")
def neuron_step(x: torch.Tensor, v: Optional[torch.Tensor], *, surrogate: Callable,
                k: Optional[Scalar] = None, v_threshold: Scalar = 1.0,
                v_reset: Optional[float] = 0.0, decay_input: bool = True,
                detach_reset: bool = False):
    """One time step. ``x``, ``v``: ``[B, ...]`` (``v=None`` starts from rest).

    Returns ``(spike, v_next, h)``: spikes, the potential after reset, and the potential before reset.
    """
    if v is None:
        v = initial_potential(x, v_reset)
    h = charge(v, x, k, v_reset, decay_input)
    s = fire(h, v_threshold, surrogate)
    return s, reset_potential(h, s, v_threshold, v_reset, detach_reset), h


@flags("record")
def neuron_multistep(x_seq: torch.Tensor, v: Optional[torch.Tensor] = None, *, record: bool = False,
                     **params):
    """Run :func:`neuron_step` over the time axis of ``x_seq`` (``[T, B, ...]``).

    Returns ``(spikes, v_last, trace)`` where ``spikes`` is ``[T, B, ...]``, ``v_last`` the potential
    after the last step, and ``trace`` is ``None`` or (``record=True``) a pair ``(h_seq, v_seq)`` of
    ``[T, B, ...]`` tensors: potential before and after reset at each step.
    """
    spikes, hs, vs = [], [], []
    # unbind, not x_seq[t]: the backward of each index would build a zero tensor of the whole sequence
    for x_t in x_seq.unbind(0):
        s, v, h = neuron_step(x_t, v, **params)
        spikes.append(s)
        if record:
            hs.append(h)
            vs.append(v)
    trace = (torch.stack(hs), torch.stack(vs)) if record else None
    return torch.stack(spikes), v, trace


@flags("record")
def state_multistep(step: Callable, x_seq: torch.Tensor, state=None, *, record: bool = False, **params):
    """The reference multi-step loop of any declared neuron family (:class:`snnedu.family.NeuronFamily`).

    ``step(x_t, state, **params) -> (spikes, new_state, h)`` advances a tuple of state tensors by one
    step (``state=None``: from rest). Returns ``(spikes, last_state, trace)``: spikes ``[T, B, ...]``,
    the state tuple after the last step, and ``None`` or (``record=True``) a tuple ``(h_seq, *state_seqs)``
    of ``[T, B, ...]`` tensors: the potential before reset and every state variable after each step.
    """
    spikes, traces = [], []
    for x_t in x_seq.unbind(0):
        s, state, h = step(x_t, state, **params)
        spikes.append(s)
        if record:
            traces.append((h, *state))
    trace = tuple(torch.stack(seq) for seq in zip(*traces)) if record else None
    return torch.stack(spikes), state, trace
