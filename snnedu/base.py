"""Stateful-module base and :func:`reset`: how neuron state is kept and cleared.

A spiking layer that keeps state between single time steps (the membrane potential of a neuron,
the mask of a stateful dropout) derives from :class:`StatefulModule` and clears that state in
:meth:`StatefulModule.reset`. Multi-step calls (``layer(x_seq)`` with ``x_seq`` shaped
``[T, B, ...]``) reset automatically at the start, so state never leaks between batches;
single-step use (``layer.step(x_t)``) keeps state until :func:`reset` is called.

Truncated backpropagation through time and online learning (a ``backward()`` at every step, or every
``k`` steps) call :func:`detach_state` after each backward: the state keeps its values but forgets
the graph that produced them, so the next backward stops there instead of failing with "Trying to
backward through the graph a second time".
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

__all__ = ["StatefulModule", "reset", "detach_state", "materialize"]


class StatefulModule(nn.Module):
    """An ``nn.Module`` with per-sequence state. Subclasses implement :meth:`reset` and name their state
    tensors in ``_state_attrs``.

    The state is not part of ``state_dict`` (it is not a parameter or buffer), but it follows the
    module: ``module.to(device / dtype)``, ``.double()``, ``.cuda()`` ... convert it like the
    parameters, so a sequence driven step by step can continue after a move; ``copy.deepcopy``
    copies it detached from the autograd graph (a graph cannot be shared).
    """

    _state_attrs: tuple = ()

    def reset(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def detach_state(self) -> None:
        """Cut the state tensors (``_state_attrs``) from the autograd graph, keeping their values: the
        next step continues the sequence, and a later ``backward()`` stops here (truncated BPTT)."""
        for name in self._state_attrs:
            t = self.__dict__.get(name)
            if isinstance(t, torch.Tensor):
                self.__dict__[name] = t.detach()

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        for name in self._state_attrs:
            t = self.__dict__.get(name)
            if isinstance(t, torch.Tensor):
                self.__dict__[name] = fn(t)
        return out

    def __deepcopy__(self, memo):
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key in self._state_attrs and isinstance(value, torch.Tensor):
                value = value.detach().clone()
            else:
                value = copy.deepcopy(value, memo)
            new.__dict__[key] = value
        return new


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


def detach_state(model: nn.Module) -> nn.Module:
    """Detach the state of every :class:`StatefulModule` inside ``model`` (itself included) from the
    autograd graph, keeping its values: for truncated backpropagation through time and online
    learning, where ``backward()`` runs while a sequence is still being stepped. Returns ``model``.

    Without it, the second ``backward()`` of a sequence fails ("Trying to backward through the graph a
    second time"): the neurons' potential still refers to the graph of the steps before, which the
    first backward has freed. Unlike :func:`reset`, the sequence goes on where it was.

    Args:
        model (nn.Module): the network (or one layer).

    Example::

        >>> for x_t, y_t in zip(x_seq, y_seq):          # online learning: one update per step
        ...     loss = loss_fn(net_step(x_t), y_t)
        ...     opt.zero_grad(); loss.backward(); opt.step()
        ...     snnedu.detach_state(net)               # gradients stop here; the potential goes on
        >>> snnedu.reset(net)                           # the next sequence starts afresh
    """
    for m in model.modules():
        if isinstance(m, StatefulModule):
            m.detach_state()
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
