"""Stateful-module base and :func:`reset`: how neuron state is kept and cleared.

A spiking layer that keeps state between single time steps (the membrane potential of a neuron,
the mask of a stateful dropout) derives from :class:`StatefulModule` and clears that state in
:meth:`StatefulModule.reset`. Multi-step calls (``layer(x_seq)`` with ``x_seq`` shaped
``[T, B, ...]``) reset automatically at the start, so state never leaks between batches;
single-step use (``layer.step(x_t)``) keeps state until :func:`reset` is called.
"""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["StatefulModule", "reset", "materialize"]


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


@torch.no_grad()
def materialize(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """Run ``model(example)`` once so that lazily shaped (per-neuron) parameters get their shape.

    Runs in eval mode without gradients, so batch-norm running statistics are not updated, then
    restores every submodule's training flag and resets the state. Call it before creating the
    optimizer. Returns ``model``.

    Example::

        >>> net = SpikingMLP(neuron=lambda: PLIF(per_neuron=True))
        >>> materialize(net, torch.zeros(1, 1, 1, 28, 28))
        >>> opt = torch.optim.Adam(net.parameters())
    """
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        model(example)
    finally:
        for m, flag in flags.items():
            m.training = flag
        reset(model)
    return model
