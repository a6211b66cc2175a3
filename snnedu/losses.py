r"""Losses and read-outs for time-first network outputs ``[T, B, C]``.

- :func:`rate_cross_entropy`: cross-entropy of the time-averaged output
  :math:`\mathrm{CE}(\frac1T\sum_t O[t], y)` (the "SDT" loss of the TET paper; MLF, tdBN).
- :func:`rate_mse`: MSE between the time-averaged class rates and the one-hot label (the loss of the
  PLIF, per-neuron-PLIF and STL networks, after a :class:`snnedu.VotingReadout`).
- :func:`tet_loss` / :class:`TETLoss`: temporal efficient training (Deng et al., ICLR 2022), the mean of
  per-step cross-entropies plus an MSE pull of every output towards :math:`\phi`.
- :func:`predict`: the class with the largest time-averaged output.
- :func:`joint_decision`: one prediction from several decision signals (our reading of the STL paper's
  joint decision framework, see its docstring).
- :class:`TauVarianceRegularizer`: :math:`\lambda \sum_l \mathrm{Var}(\tau_l)` over the per-neuron PLIF
  layers of a model (TU Delft thesis; ``on='w'`` reproduces the released code, which used
  :math:`\mathrm{Var}(w_l)`).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import real, short_repr
from .errors import HyperParameterError, InputError

__all__ = ["mean_over_time", "rate_cross_entropy", "rate_mse", "tet_loss", "TETLoss", "predict",
           "TauVarianceRegularizer", "joint_decision"]


def mean_over_time(out: torch.Tensor) -> torch.Tensor:
    """``[T, B, C] -> [B, C]`` (a ``[B, C]`` input is returned unchanged)."""
    if out.dim() == 3:
        return out.mean(0)
    if out.dim() == 2:
        return out
    raise InputError(f"expected network output shaped [T, B, C] or [B, C], got {list(out.shape)}")


def _check_target(target, B: int, C: int) -> None:
    """``target`` must be ``[B]`` integer class indices in ``[0, C)``: no label is silently ignored
    (PyTorch's cross-entropy drops ``-100``) or wrapped."""
    if not isinstance(target, torch.Tensor) or target.dim() != 1 or target.shape[0] != B:
        shape = list(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise InputError(f"target must be [B] class indices with B = {B}, got shape {shape}")
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise InputError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.numel():
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= C:
            raise InputError(f"target class indices must be in [0, {C - 1}] ({C} classes), got values from "
                             f"{lo} to {hi}" + (" (-100 is not an 'ignore' label here)" if lo == -100 else ""))


def rate_cross_entropy(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the mean over time: ``out`` ``[T, B, C]`` (or ``[B, C]``), ``target`` ``[B]``
    class indices in ``[0, C)`` (anything else, ``-100`` included, is an :class:`InputError`)."""
    logits = mean_over_time(out)
    _check_target(target, logits.shape[0], logits.shape[-1])
    return F.cross_entropy(logits.float(), target)


def rate_mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""MSE between the rates and the one-hot target: :math:`\mathrm{mean}\big((\frac1T\sum_t O[t] - e_y)^2\big)`.

    ``out``: ``[T, B, C]`` class rates per step (e.g. from :class:`snnedu.VotingReadout`) or ``[B, C]``;
    ``target``: ``[B]`` class indices.
    """
    rates = mean_over_time(out)
    _check_target(target, rates.shape[0], rates.shape[-1])
    return F.mse_loss(rates.float(), F.one_hot(target, rates.shape[-1]).float())


def tet_loss(out: torch.Tensor, target: torch.Tensor, lam: float = 1e-3, phi: float = 1.0) -> torch.Tensor:
    r"""TET loss: :math:`(1-\lambda)\,\frac1T\sum_t \mathrm{CE}(O[t], y) + \lambda\,\mathrm{mean}_{t,b,c}(O[t] - \phi)^2`.

    Every time step gets its own cross-entropy (instead of one through the time average, as in
    :func:`rate_cross_entropy`), and the MSE term keeps the per-step outputs from drifting.
    ``lam = 0`` is pure per-step CE. ``out``: ``[T, B, C]`` per-step outputs (no time average);
    ``target``: ``[B]``. Predict as usual with the time average (:func:`predict`).
    """
    lam = real("lam (TET regulariser weight)", lam, low=0.0, high=1.0)
    phi = real("phi (TET target output)", phi)
    if out.dim() != 3:
        raise InputError(f"tet_loss needs per-step outputs [T, B, C], got shape {list(out.shape)}")
    T, B, C = out.shape
    _check_target(target, B, C)
    out = out.float()
    per_step = F.cross_entropy(out.reshape(T * B, C), target.repeat(T))   # mean over t and b
    if lam == 0.0:
        return per_step
    return (1.0 - lam) * per_step + lam * (out - phi).pow(2).mean()


class TETLoss:
    r""":func:`tet_loss` with its hyper-parameters bound, for ``fit(loss_fn=TETLoss(lam=1e-3))``.

    Args:
        lam (float): weight :math:`\lambda \in [0, 1]` of the MSE term that pulls every output
            towards ``phi`` (default 1e-3; 0 gives the pure per-step cross-entropy).
        phi (float): target value of that MSE term (default 1.0, the firing threshold).

    Example::

        >>> loss_fn = TETLoss(lam=1e-3, phi=1.0)     # the TET repository's DVS setting
        >>> loss = loss_fn(net(x), y)                # net(x): [T, B, C]
    """

    def __init__(self, lam: float = 1e-3, phi: float = 1.0):
        self.lam = real("lam (TET regulariser weight)", lam, low=0.0, high=1.0)
        self.phi = real("phi (TET target output)", phi)

    def __call__(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return tet_loss(out, target, self.lam, self.phi)

    def __repr__(self) -> str:
        return f"TETLoss(lam={self.lam}, phi={self.phi})"


def predict(out: torch.Tensor) -> torch.Tensor:
    """Predicted classes ``[B]`` from ``[T, B, C]`` (or ``[B, C]``) outputs."""
    return mean_over_time(out).argmax(-1)


class TauVarianceRegularizer:
    r"""Penalty :math:`\lambda \sum_l \mathrm{Var}(\tau_l)` over every per-neuron PLIF layer ``l``.

    Args:
        lam (float): weight :math:`\lambda \ge 0` of the penalty (default 0.01; thesis: 0, 0.01,
            0.1).
        on (str): ``'tau'`` (thesis text, default) or ``'w'`` (the released code: variance of the
            raw parameter :math:`w`, where :math:`\tau = 1 + e^{-w}`).

    ``Var`` is the unbiased variance over all of a layer's neurons. Per-layer PLIF layers (one tau)
    contribute nothing.

    Example::

        >>> reg = TauVarianceRegularizer(lam=0.1)
        >>> loss = task_loss + reg(model)
    """

    def __init__(self, lam: float = 0.01, on: str = "tau"):
        self.lam = real("lam (tau regulariser weight)", lam, low=0.0)
        if on not in ("tau", "w"):
            raise HyperParameterError(f"on must be 'tau' or 'w', got {short_repr(on)}")
        self.on = on

    def __call__(self, model: nn.Module) -> torch.Tensor:
        from .decay import LearnableDecay

        terms = []
        for m in model.modules():
            if isinstance(m, LearnableDecay) and m.per_neuron and m.is_materialized and m.w.numel() > 1:
                terms.append((m.tau if self.on == "tau" else m.w).var())
        if not terms:
            return torch.zeros(())
        return self.lam * torch.stack(terms).sum()

    def __repr__(self) -> str:
        return f"TauVarianceRegularizer(lam={self.lam}, on={self.on!r})"


def joint_decision(outputs, weights=None) -> torch.Tensor:
    r"""Combine several decision signals into one prediction: classes ``[B]``.

    Each element of ``outputs`` is a network output ``[T, B, C]`` or ``[B, C]`` (e.g. the same input
    through networks trained in different STL modes, or several read-outs of one network). Each is
    averaged over time, turned into class probabilities with a softmax, and the probabilities are
    averaged with ``weights`` (default equal); the prediction is the arg-max.

    **Our interpretation.** The STL paper (Sun et al., 2023) reports that a "generalized joint decision
    framework" improves accuracy, but its definition is not in the released code and could not be
    checked here; this soft-voting read-out is snnedu's interpretation, not the paper's definition.

    Example::

        >>> pred = joint_decision([net_sl(x), net_stl(x)])     # [B]
    """
    outputs = list(outputs)
    if not outputs:
        raise InputError("joint_decision needs at least one output")
    probs = [mean_over_time(o).float().softmax(-1) for o in outputs]
    shapes = {tuple(p.shape) for p in probs}
    if len(shapes) != 1:
        raise InputError(f"joint_decision: all outputs must give the same [B, C], got {sorted(shapes)}")
    if weights is None:
        weights = [1.0] * len(probs)
    if len(weights) != len(probs) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise HyperParameterError(f"weights must be {len(probs)} non-negative numbers with a positive sum, "
                                  f"got {weights}")
    mix = sum(w * p for w, p in zip(weights, probs)) / sum(weights)
    return mix.argmax(-1)
