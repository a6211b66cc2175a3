"""What the fused multi-step kernels share: the problem's layout, per-element parameters, surrogates.

A fused kernel computes the same thing as :func:`snnedu.functional.neuron_multistep` (the reference),
for ``K`` levels (``K = 1`` for IF/LIF/PLIF, ``K > 1`` for MLF-family units) in one pass over time:

    x_seq  [T, B, *S]         input current, shared by the K levels
    v0     [K, B, *S]         initial potential (``None``: rest)
    k      None | float | tensor broadcastable to [K, 1, *S]     leak per step (None: IF)
    θ      float | tensor broadcastable to [K, 1, *S]            firing threshold
    ->  spikes [T, (K,) B, *S] (K only when K > 1, like the reference), v_last [(K,) B, *S]

Internally everything is flattened to ``J = B·N`` elements (``N = prod(S)``) and parameters to
``[K, N]``; parameter gradients come back as ``[K, B, N]`` sums over time and are reduced to the
parameter's own shape here (:func:`reduce_grad`).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple, Union

import torch

from ..functional.surrogate import ATan, Rectangular, Sigmoid, Surrogate, Triangle

__all__ = ["SURROGATE_CODES", "surrogate_code", "param_rows", "reduce_grad", "Layout", "layout"]

# kind code, parameter: g'(x) as written in snnedu.functional.surrogate
SURROGATE_CODES = {Rectangular: 0, Sigmoid: 1, ATan: 2, Triangle: 3}


def surrogate_code(surrogate: Surrogate) -> Tuple[int, float]:
    """``(kind, parameter)`` of a built-in surrogate; ``NotImplementedError`` for other classes."""
    kind = SURROGATE_CODES.get(type(surrogate))
    if kind is None:
        raise NotImplementedError(f"no fused kernel for the surrogate {type(surrogate).__name__}; "
                                  "it runs on the reference path")
    value = {0: "a", 1: "alpha", 2: "alpha", 3: "gamma"}[kind]
    return kind, float(getattr(surrogate, value))


class Layout:
    """Shapes of one call: ``T``, ``K`` levels, batch ``B``, sample shape ``S`` and ``N = prod(S)``."""

    def __init__(self, T: int, K: int, B: int, S: Tuple[int, ...]):
        self.T, self.K, self.B, self.S = T, K, B, tuple(S)
        self.N = math.prod(self.S)
        self.J = self.B * self.N

    def spikes_shape(self) -> Tuple[int, ...]:
        return (self.T, self.B, *self.S) if self.K == 1 else (self.T, self.K, self.B, *self.S)

    def state_shape(self) -> Tuple[int, ...]:
        return (self.B, *self.S) if self.K == 1 else (self.K, self.B, *self.S)


def layout(x_seq: torch.Tensor, v0: Optional[torch.Tensor]) -> Layout:
    K = 1 if v0 is None or v0.dim() == x_seq.dim() - 1 else v0.shape[0]
    return Layout(x_seq.shape[0], K, x_seq.shape[1], tuple(x_seq.shape[2:]))


def param_rows(p: Union[None, float, torch.Tensor], lay: Layout, device, dtype=torch.float32) -> torch.Tensor:
    """A parameter (float, or tensor broadcastable to ``[K, 1, *S]``; ``[*S]`` when K = 1) as a
    contiguous ``[K, N]`` tensor, detached."""
    if p is None:
        p = 0.0
    t = torch.as_tensor(p, dtype=dtype, device=device).detach()
    if t.dim() > len(lay.S) + 2 or (t.dim() == len(lay.S) + 2 and t.shape[1] != 1):
        raise ValueError(f"parameter of shape {list(t.shape)} varies over the batch; fused kernels need "
                         f"[K, 1, *S]-broadcastable parameters")
    return torch.broadcast_to(t, (lay.K, 1, *lay.S)).reshape(lay.K, lay.N).contiguous()


def reduce_grad(g: torch.Tensor, p: torch.Tensor, lay: Layout) -> torch.Tensor:
    """Per-element gradient ``[K, B, N]`` (already summed over time) -> the shape of parameter ``p``."""
    full = g.reshape(lay.K, lay.B, *lay.S).sum(1, keepdim=True)          # [K, 1, *S]
    if p.dim() <= len(lay.S):                                            # scalar or [*S] (K = 1 or shared)
        full = full.sum((0, 1))
    return full.sum_to_size(p.shape).to(p.dtype)
