"""Stateful-module base and :func:`reset`: how neuron state is kept and cleared.

A spiking layer that keeps state between single time steps (the membrane potential of a neuron,
the mask of a stateful dropout) derives from :class:`StatefulModule` and clears that state in
:meth:`StatefulModule.reset`. Multi-step calls (``layer(x_seq)`` with ``x_seq`` shaped
``[T, B, ...]``) reset automatically at the start, so state never leaks between batches;
single-step use (``layer.step(x_t)``) keeps state until :func:`reset` is called.
"""
from __future__ import annotations

import torch.nn as nn

__all__ = ["StatefulModule", "reset"]


class StatefulModule(nn.Module):
    """An ``nn.Module`` with per-sequence state. Subclasses implement :meth:`reset`."""

    def reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def reset(model: nn.Module) -> nn.Module:
    """Reset the state of every :class:`StatefulModule` inside ``model`` (itself included).

    Call it between independent sequences when you drive a network step by step. Returns ``model``.

    Example::

        >>> net = nn.Sequential(nn.Linear(4, 3), snnedu.LIF())
        >>> for x_t in x_seq: out = net[1].step(net[0](x_t))
        >>> snnedu.reset(net)   # ready for the next sample
    """
    for m in model.modules():
        if isinstance(m, StatefulModule):
            m.reset()
    return model
