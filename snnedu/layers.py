r"""Layers for time-first tensors ``[T, B, ...]``.

- :class:`TimeDistributed` applies any stateless module (``nn.Linear``, ``nn.Conv2d``, ``nn.BatchNorm2d``,
  pooling, ...) to every time step at once by folding time into the batch:
  ``[T, B, ...] -> [T*B, ...] -> module -> [T, B, ...]``. A BatchNorm inside it computes statistics
  over T·B together (the book's chapter 6 compares the three ways of normalising over time).
- :class:`Flatten` flattens everything after ``[T, B]``: ``[T, B, C, H, W] -> [T, B, C*H*W]``.
- :class:`VotingReadout` averages groups of output neurons into class scores (the voting layer of
  the PLIF and STL papers): ``[T, B, n_classes * group] -> [T, B, n_classes]``.
- :class:`tdBN` (threshold-dependent batch norm, Zheng et al. 2021) normalises each channel over time,
  batch and space together and scales by :math:`\alpha V_{th}`; ``tdBN1d`` / ``tdBN2d`` check the rank.
- :class:`SeqDropout` drops the same units at every time step (one mask per sample and sequence);
  :class:`PerStepBatchNorm` applies a batch norm separately at every step (the PLIF/STL codes' BN).
- :func:`fold_time` / :func:`unfold_time` are the functional forms.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import flag, positive_int, real, tensor_input
from .errors import InputError

__all__ = ["fold_time", "unfold_time", "TimeDistributed", "Flatten", "LastSteps", "VotingReadout", "tdBN", "tdBN1d",
           "tdBN2d"]


def fold_time(x_seq: torch.Tensor) -> torch.Tensor:
    """``[T, B, ...] -> [T*B, ...]`` (a view when possible)."""
    return x_seq.reshape(x_seq.shape[0] * x_seq.shape[1], *x_seq.shape[2:])


def unfold_time(y: torch.Tensor, T: int) -> torch.Tensor:
    """``[T*B, ...] -> [T, B, ...]``."""
    return y.reshape(T, y.shape[0] // T, *y.shape[1:])


class TimeDistributed(nn.Module):
    """Apply a stateless ``module`` to all ``T`` steps at once.

    Args:
        module (nn.Module): a module without state between calls (``nn.Linear``, ``nn.Conv2d``,
            ``nn.BatchNorm2d``, pooling, ...) that maps ``[N, *in] -> [N, *out]``.

    Shapes: ``[T, B, *in] -> [T, B, *out]``.

    Example::

        >>> fc = TimeDistributed(nn.Linear(784, 100))
        >>> fc(torch.rand(8, 32, 784)).shape      # torch.Size([8, 32, 100])
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input(f"TimeDistributed({type(self.module).__name__})", x_seq, min_dim=3,
                     layout="[T, B, features...]", float_only=False)
        return unfold_time(self.module(fold_time(x_seq)), x_seq.shape[0])


class Flatten(nn.Module):
    """Flatten all dims after ``[T, B]``: ``[T, B, ...] -> [T, B, prod(...)]``."""

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input("Flatten", x_seq, min_dim=2, layout="[T, B, ...]", float_only=False)
        return x_seq.flatten(2)


class LastSteps(nn.Module):
    """Keep the last ``n`` time steps: ``[T, B, ...] -> [n, B, ...]`` (a read-out window).

    Put it after the read-out layer when only the end of the sequence should count, e.g. the cue steps
    of :class:`snnedu.RowEncoder` (the losses then average over those ``n`` steps only).

    Args:
        n (int): number of final steps kept, ``>= 1``; a shorter sequence is an error.
    """

    def __init__(self, n: int):
        super().__init__()
        self.n = positive_int("n (read-out steps)", n)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input("LastSteps", x_seq, min_dim=2, layout="[T, B, ...]", float_only=False)
        if x_seq.shape[0] < self.n:
            raise InputError(f"LastSteps({self.n}) got a sequence of only {x_seq.shape[0]} steps")
        return x_seq[-self.n:]

    def extra_repr(self) -> str:
        return f"n={self.n}"


class VotingReadout(nn.Module):
    """Voting layer: the mean of each group of ``group`` consecutive neurons is one class score.

    The PLIF, per-neuron-PLIF and STL networks end in a spiking layer of ``n_classes * group``
    neurons (``group = 10``); averaging each group's spikes gives per-step class rates, which are
    trained with :func:`snnedu.rate_mse` (MSE to the one-hot label) and decoded with
    :func:`snnedu.predict`.

    Args:
        n_classes (int): number of classes (at least 2).
        group (int): neurons per class whose mean is the class score (default 10, the papers').

    Shapes: ``[T, B, n_classes * group] -> [T, B, n_classes]``.

    Example::

        >>> vote = VotingReadout(n_classes=10, group=10)
        >>> vote(torch.ones(4, 2, 100)).shape        # torch.Size([4, 2, 10])
    """

    def __init__(self, n_classes: int, group: int = 10):
        super().__init__()
        self.n_classes = positive_int("n_classes", n_classes, minimum=2)
        self.group = positive_int("group", group)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input("VotingReadout", x_seq, min_dim=3, layout="[T, B, n_classes * group]")
        if x_seq.shape[-1] != self.n_classes * self.group:
            raise InputError(f"VotingReadout expects {self.n_classes} x {self.group} = "
                             f"{self.n_classes * self.group} neurons in the last axis, got shape {list(x_seq.shape)}")
        return x_seq.unflatten(-1, (self.n_classes, self.group)).mean(-1)

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, group={self.group}"


class tdBN(nn.Module):  # noqa: N801 - the paper's name
    r"""Threshold-dependent batch normalisation over ``[T, B, C, ...]`` (Zheng et al., AAAI 2021).

    For every channel :math:`c` the statistics are taken over time, batch and space together:

    .. math::

        \mu_c = \mathrm{mean}_{t,b,\ldots}\, x, \qquad \sigma^2_c = \mathrm{var}_{t,b,\ldots}\, x
        \ (\text{biased}), \qquad
        y = \gamma_c\, \frac{\alpha V_{th}\,(x - \mu_c)}{\sqrt{\sigma_c^2 + \epsilon}} + \beta_c

    so the pre-activations of all steps are pushed towards :math:`\mathcal N(0, (\alpha V_{th})^2)`:
    a neuron with threshold :math:`V_{th}` sees inputs on its own scale. :math:`\alpha = 1` everywhere
    except in a standard residual block, where two branches are added before a neuron: each branch's
    last tdBN uses :math:`\alpha = 1/\sqrt 2` so that the sum again has std :math:`\approx V_{th}`.
    :math:`\gamma` starts at 1 and :math:`\beta` at 0. In eval mode the running statistics are used
    (momentum 0.1; the running variance is unbiased, as in ``nn.BatchNorm``). Same forward at init as
    SpikingJelly's re-parameterisation (an ordinary BN whose :math:`\gamma` starts at
    :math:`\alpha V_{th}`), but here :math:`\alpha V_{th}` is a fixed factor and :math:`\gamma` learns
    on the unit scale.

    Args:
        num_features (int): channels ``C`` (dimension 2 of the input).
        v_threshold (float): the threshold :math:`V_{th} > 0` of the neurons that follow (required:
            the paper sets no default).
        alpha (float): :math:`\alpha > 0` (default 1; :math:`1/\sqrt 2` on a residual branch that is
            added to another before a neuron).
        eps (float): :math:`\epsilon > 0` added to the variance (default 1e-5).
        momentum (float): weight of the current batch in the running statistics, in [0, 1]
            (default 0.1).
        affine (bool): learn :math:`\gamma` and :math:`\beta` (default ``True``); ``False`` fixes
            them at 1 and 0.

    Shapes: ``[T, B, C]``, ``[T, B, C, L]`` or ``[T, B, C, H, W]`` -> the same shape.

    Example::

        >>> bn = tdBN(64, v_threshold=0.6)                  # MLF setting
        >>> y = bn(torch.randn(4, 8, 64, 16, 16))           # channel std ~0.6 over (T, B, H, W)
    """

    expected_ranks = (3, 4, 5)

    def __init__(self, num_features: int, v_threshold: float, alpha: float = 1.0, eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = True):
        super().__init__()
        self.num_features = positive_int("num_features", num_features)
        self.v_threshold = real("v_threshold", v_threshold, low=0.0, low_open=True,
                                what="threshold of the neurons after this tdBN")
        self.alpha = real("alpha", alpha, low=0.0, low_open=True)
        self.eps = real("eps", eps, low=0.0, low_open=True)
        self.momentum = real("momentum", momentum, low=0.0, high=1.0)
        self.affine = flag("affine", affine)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        tensor_input(name, x_seq, min_dim=3, layout="[T, B, C, ...]")
        if x_seq.dim() not in self.expected_ranks or x_seq.shape[2] != self.num_features:
            ranks = " or ".join(f"{r}-d" for r in self.expected_ranks)
            raise InputError(f"{name}({self.num_features}) expects a {ranks} input [T, B, C={self.num_features}, ...], "
                             f"got shape {list(x_seq.shape)}")
        scale = self.alpha * self.v_threshold
        weight = scale * self.weight if self.affine else torch.full(
            (self.num_features,), scale, dtype=x_seq.dtype, device=x_seq.device)
        if self.training:
            self.num_batches_tracked += 1
        y = F.batch_norm(fold_time(x_seq), self.running_mean, self.running_var, weight, self.bias,
                         self.training, self.momentum, self.eps)
        return unfold_time(y, x_seq.shape[0])

    def extra_repr(self) -> str:
        return (f"{self.num_features}, v_threshold={self.v_threshold}, alpha={self.alpha:.4g}, eps={self.eps}, "
                f"momentum={self.momentum}, affine={self.affine}")


class tdBN1d(tdBN):  # noqa: N801
    r""":class:`tdBN` for ``[T, B, C]`` or ``[T, B, C, L]`` inputs (after Linear / Conv1d).

    Args:
        num_features (int): channels ``C`` (dimension 2 of the input).
        v_threshold (float): the threshold :math:`V_{th} > 0` of the neurons that follow.
        alpha (float): :math:`\alpha > 0` (default 1).
        eps (float): :math:`\epsilon > 0` added to the variance (default 1e-5).
        momentum (float): weight of the current batch in the running statistics (default 0.1).
        affine (bool): learn :math:`\gamma` and :math:`\beta` (default ``True``).
    """

    expected_ranks = (3, 4)


class tdBN2d(tdBN):  # noqa: N801
    r""":class:`tdBN` for ``[T, B, C, H, W]`` inputs (after Conv2d).

    Args:
        num_features (int): channels ``C`` (dimension 2 of the input).
        v_threshold (float): the threshold :math:`V_{th} > 0` of the neurons that follow.
        alpha (float): :math:`\alpha > 0` (default 1).
        eps (float): :math:`\epsilon > 0` added to the variance (default 1e-5).
        momentum (float): weight of the current batch in the running statistics (default 0.1).
        affine (bool): learn :math:`\gamma` and :math:`\beta` (default ``True``).
    """

    expected_ranks = (5,)


# --------------------------------------------------------------------------------------------------
# Stateful dropout and per-step batch norm (what the PLIF paper's code does; Fang et al. 2021)
# --------------------------------------------------------------------------------------------------
from .base import StatefulModule  # noqa: E402  (kept with the classes that need it)
from .errors import HyperParameterError, StateError  # noqa: E402

__all__ += ["SeqDropout", "PerStepBatchNorm"]


class SeqDropout(StatefulModule):
    r"""Dropout whose mask is drawn once per sequence and reused at every time step.

    Ordinary ``nn.Dropout`` applied to ``[T, B, ...]`` (or inside :class:`TimeDistributed`) would
    silence a different set of neurons at each step, which a spiking layer partly averages away.
    Here every sample gets one element-wise Bernoulli mask :math:`m` (shaped like one step
    ``[B, ...]``), and

    .. math:: y[t] = x[t] \odot \frac{m}{1 - p}, \qquad m_i \sim \mathrm{Bernoulli}(1 - p),
              \text{ the same } m \text{ for all } t,

    so a dropped neuron is silent for the whole sequence (the stateful dropout of the PLIF paper's
    code). In eval mode it is the identity.

    - multi-step ``drop(x_seq)``: draws a fresh mask for this call (nothing is kept afterwards, like
      the neurons' multi-step path).
    - single-step ``drop.step(x_t)``: draws the mask at the first step and keeps it in ``self.mask``
      until :func:`snnedu.reset`; with the same random state both paths give the same numbers.

    Args:
        p (float): probability of dropping a neuron, ``0 <= p < 1`` (default and paper: 0.5).

    Shapes: ``[T, B, ...] -> [T, B, ...]``; ``step``: ``[B, ...] -> [B, ...]``.

    Example::

        >>> drop = SeqDropout(p=0.5)
        >>> y = drop(torch.ones(8, 4, 100))          # values 0 or 2, constant along T
        >>> bool((y == y[0]).all())                  # True
    """

    _state_attrs = ("mask",)

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = real("p", p, low=0.0, high=1.0, high_open=True,
                      what="dropout probability; p = 1 would drop every neuron")
        self.mask: torch.Tensor | None = None

    def _draw(self, x_t: torch.Tensor) -> torch.Tensor:
        # F.dropout of a tensor of ones: Bernoulli(1 - p) entries already scaled by 1 / (1 - p)
        return F.dropout(torch.ones_like(x_t), self.p, training=True)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input("SeqDropout", x_seq, min_dim=2, layout="[T, B, ...]")
        self.reset()
        if not self.training or self.p == 0.0:
            return x_seq
        return x_seq * self._draw(x_seq[0])

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One step ``[B, ...]``; the mask drawn at the first step is reused until :func:`snnedu.reset`."""
        tensor_input("SeqDropout.step", x, min_dim=1, layout="[B, ...]")
        if not self.training or self.p == 0.0:
            return x
        if self.mask is None:
            self.mask = self._draw(x)
        elif self.mask.shape != x.shape:
            raise StateError(f"SeqDropout.step got input of shape {list(x.shape)} but its mask has shape "
                             f"{list(self.mask.shape)}; call snnedu.reset(model) before a new sequence or batch")
        return x * self.mask

    def reset(self) -> None:
        """Forget the mask: the next sequence gets a new one."""
        self.mask = None

    def extra_repr(self) -> str:
        return f"p={self.p}"


class PerStepBatchNorm(nn.Module):
    r"""Apply one ``nn.BatchNorm`` separately at every time step (the PLIF paper's code).

    For each ``t`` the statistics are those of the step alone (over the batch and space of
    ``x[t]``), the affine :math:`\gamma, \beta` are shared by all steps, and in training the running
    statistics are updated ``T`` times per batch — what a single-step network (the PLIF paper's code,
    STL-SNN) does when it calls its ``BatchNorm2d`` once per step. Compare
    ``TimeDistributed(nn.BatchNorm2d(C))`` (statistics over T·B together) and :class:`tdBN` (over
    T·B, scaled by :math:`\alpha V_{th}`); chapter 6 of the book compares the three. When all steps
    are equal the three agree in training mode; they differ as soon as the steps differ (e.g. event
    frames, or spikes after the first layer).

    Args:
        bn (nn.Module): an ``nn.BatchNorm1d`` / ``2d`` / ``3d`` (or any ``_BatchNorm``) for one step
            ``[B, C, ...]``; its affine parameters are shared by all steps.

    Shapes: ``[T, B, C, ...] -> [T, B, C, ...]``; ``step``: ``[B, C, ...] -> [B, C, ...]``.

    Example::

        >>> bn = PerStepBatchNorm(nn.BatchNorm2d(64))
        >>> y = bn(torch.randn(8, 16, 64, 10, 10))     # each y[t] has channel mean 0, var 1
    """

    def __init__(self, bn: nn.Module):
        super().__init__()
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
            raise HyperParameterError(f"PerStepBatchNorm wraps a batch-norm module such as nn.BatchNorm2d(C), "
                                      f"got {type(bn).__name__}")
        self.bn = bn

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        tensor_input(f"PerStepBatchNorm({type(self.bn).__name__})", x_seq, min_dim=3, layout="[T, B, C, ...]")
        return torch.stack([self.bn(x_t) for x_t in x_seq.unbind(0)])

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One step ``[B, C, ...]``: the wrapped batch norm itself."""
        return self.bn(x)
