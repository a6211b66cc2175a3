r"""The networks of the PLIF paper (Fang et al., ICCV 2021), with any neuron (``neuron=``).

Notation of the paper: ``cCk3s1`` = 3x3 conv with ``C`` channels, stride 1, padding 1, no bias;
``BN`` = batch norm; ``PLIF`` = the spiking layer; ``MP2`` / ``AP2`` = 2x2 max / average pooling;
``DP`` = stateful dropout (one mask per sample for all steps, :class:`snnedu.layers.SeqDropout`);
``FCn`` = bias-free linear layer with ``n`` outputs; ``AP10`` = the voting layer
(:class:`snnedu.VotingReadout`): the mean of each group of 10 output neurons is one class rate.

- :class:`PLIFStaticNet` — MNIST / Fashion-MNIST and CIFAR-10. The first ``conv-BN`` sees the analog
  image once; its output is repeated at every one of the ``T`` steps, and the first spiking layer is
  the (learnable) encoder ("direct" encoding).
- :class:`PLIFDVSNet` — the generic neuromorphic net ``{cC-BN-PLIF-MP2} x N -> DP -> FC -> PLIF -> DP ->
  FC(10 classes) -> PLIF -> AP10`` with presets :meth:`PLIFDVSNet.dvs128_gesture`,
  :meth:`PLIFDVSNet.cifar10_dvs`, :meth:`PLIFDVSNet.nmnist`.

Both output per-step class rates ``[T, B, n_classes]``: train with :func:`snnedu.rate_mse` (MSE of
the mean rate to the one-hot label) and decode with :func:`snnedu.predict`.

Batch norm: ``bn='per_step'`` (default, what the paper's single-step code does: one
``BatchNorm2d`` applied separately at each step, :class:`snnedu.layers.PerStepBatchNorm`) or
``bn='time'`` (statistics over T·B, ``TimeDistributed(BatchNorm2d)``, faster).

Per-neuron time constants (Pazderka's TU Delft thesis, 2024): pass
``neuron=lambda: PLIF(per_neuron=True, tau_std=0.1, detach_reset=True)``. The shapes of the ``w``
are then inferred from the first input, so **create the optimizer after one forward pass** (or call
``net.materialize()``, which runs one small dummy step without touching the batch-norm statistics).
"""
from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .._checks import positive_int, real, tensor_input
from ..base import materialize
from ..errors import HyperParameterError, InputError
from ..layers import Flatten, PerStepBatchNorm, SeqDropout, TimeDistributed, VotingReadout
from ..neurons import PLIF

__all__ = ["PLIFStaticNet", "PLIFDVSNet"]

#: The paper's neuron: PLIF with tau_0 = 2 (w_0 = 0), V_th = 1, hard reset to 0, ATan(2), detached reset.
default_plif = functools.partial(PLIF, tau_init=2.0, detach_reset=True)

_BN_CHOICES = ("per_step", "time")
_POOL_CHOICES = ("max", "avg")


def _choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise HyperParameterError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def _td_bn(c: int, bn: str) -> nn.Module:
    return PerStepBatchNorm(nn.BatchNorm2d(c)) if bn == "per_step" else TimeDistributed(nn.BatchNorm2d(c))


def _td_pool(pool: str) -> nn.Module:
    return TimeDistributed(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))


def _fc(n_in: int, n_out: int) -> nn.Module:
    return TimeDistributed(nn.Linear(n_in, n_out, bias=False))


class _LazyMixin:
    """``materialize()``: one dummy forward so that lazily shaped (per-neuron) parameters get their shape."""

    def _dummy_input(self) -> torch.Tensor:  # pragma: no cover - overridden
        raise NotImplementedError

    def materialize(self) -> "nn.Module":
        """Give every lazily shaped parameter its shape (run before creating the optimizer).

        Runs one step on a zero input in eval mode (batch-norm running statistics are not updated),
        then restores the training flags. Returns the network.
        """
        ref = next((p for p in self.parameters() if not isinstance(p, nn.UninitializedParameter)), None)
        x = self._dummy_input()
        if ref is not None:
            x = x.to(device=ref.device, dtype=ref.dtype)
        return materialize(self, x)


class PLIFStaticNet(_LazyMixin, nn.Module):
    r"""The PLIF paper's network for static images (MNIST, Fashion-MNIST, CIFAR-10).

    The brackets mark the part applied once to the image; the rest runs for ``T`` steps:

    - MNIST / Fashion-MNIST (1x28x28, paper: ``T=8``, ``channels=128``)::

        [c128k3s1-BN] -> PLIF-MP2-c128k3s1-BN-PLIF-MP2-DP-FC2048-PLIF-DP-FC100-PLIF-AP10

      (the FC input is ``128*7*7``).
    - CIFAR-10 (3x32x32, paper: ``T=8``, ``channels=256``)::

        [c256k3s1-BN] -> PLIF-{c256k3s1-BN-PLIF}x2-MP2-{c256k3s1-BN-PLIF}x3-MP2-DP-FC2048-PLIF-FC100-PLIF-AP10

      (the FC input is ``256*8*8``; only one dropout).

    ``FC100`` is ``10 * n_classes`` neurons, averaged in groups of 10 by the voting layer.

    Args:
        dataset (str): ``'mnist'`` (default), ``'fashion_mnist'`` (same net) or ``'cifar10'``.
        T (int): number of time steps the encoder output is repeated for (default and paper: 8).
        channels (int or None): conv width (``None``, the default: 128 for MNIST, 256 for CIFAR-10;
            e.g. 16 for a quick run).
        fc_hidden (int): width of the hidden FC layer (default and paper: 2048).
        n_classes (int): classes (default 10); the last spiking layer has ``10 * n_classes`` neurons.
        neuron (callable): factory of the spiking layers (default:
            ``PLIF(tau_init=2.0, detach_reset=True)``).
        pool (str): ``'max'`` (default, paper) or ``'avg'``.
        bn (str): ``'per_step'`` (default, paper) or ``'time'`` (see the module docstring). The
            encoder's BN sees the static batch once, so it is an ordinary ``BatchNorm2d`` either way.
        p (float): dropout probability of the :class:`SeqDropout` layers (default and paper: 0.5).

    Shapes: the static batch ``[B, C, H, W]`` (not encoded: the net repeats it itself) ->
    ``[T, B, n_classes]`` class rates per step. ``forward(x, T=...)`` overrides ``T`` for one call.

    Example::

        >>> net = PLIFStaticNet("mnist", T=8, channels=16, fc_hidden=128)
        >>> out = net(torch.rand(4, 1, 28, 28))                 # [8, 4, 10]
        >>> loss = snnedu.rate_mse(out, y); pred = snnedu.predict(out)
    """

    _SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
    _ALIASES = {"fmnist": "fashion_mnist", "fashion-mnist": "fashion_mnist", "cifar-10": "cifar10"}

    def __init__(self, dataset: str = "mnist", T: int = 8, channels: Optional[int] = None, fc_hidden: int = 2048,
                 n_classes: int = 10, neuron: Callable[[], nn.Module] = default_plif, pool: str = "max",
                 bn: str = "per_step", p: float = 0.5):
        super().__init__()
        key = self._ALIASES.get(str(dataset).lower(), str(dataset).lower())
        if key not in self._SHAPES:
            raise HyperParameterError(f"dataset must be 'mnist', 'fashion_mnist' or 'cifar10', got {dataset!r}")
        self.dataset = key
        self.T = positive_int("T", T)
        self.input_shape = self._SHAPES[key]
        cifar = key == "cifar10"
        c = positive_int("channels", channels if channels is not None else (256 if cifar else 128))
        fc_hidden = positive_int("fc_hidden", fc_hidden)
        self.n_classes = positive_int("n_classes", n_classes, minimum=2)
        pool = _choice("pool", pool, _POOL_CHOICES)
        self.bn = _choice("bn", bn, _BN_CHOICES)
        p = real("p", p, low=0.0, high=1.0, high_open=True, what="dropout probability")
        self.channels, self.fc_hidden = c, fc_hidden

        c_in, h, w = self.input_shape
        # applied once to the static image [B, C, H, W]
        self.encoder = nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))

        def conv_bn_neuron():
            return [TimeDistributed(nn.Conv2d(c, c, 3, padding=1, bias=False)), _td_bn(c, bn), neuron()]

        layers = [neuron()]
        if cifar:
            for _ in range(2):
                layers += conv_bn_neuron()
            layers.append(_td_pool(pool))
            for _ in range(3):
                layers += conv_bn_neuron()
            layers.append(_td_pool(pool))
        else:
            layers.append(_td_pool(pool))
            layers += conv_bn_neuron()
            layers.append(_td_pool(pool))
        self.features = nn.Sequential(*layers)
        n_flat = c * (h // 4) * (w // 4)
        head = [Flatten(), SeqDropout(p), _fc(n_flat, fc_hidden), neuron()]
        if not cifar:
            head.append(SeqDropout(p))
        head += [_fc(fc_hidden, 10 * self.n_classes), neuron(), VotingReadout(self.n_classes, 10)]
        self.classifier = nn.Sequential(*head)

    def _dummy_input(self) -> torch.Tensor:
        return torch.zeros(1, *self.input_shape)

    @torch.no_grad()
    def materialize(self) -> "PLIFStaticNet":
        T, self.T = self.T, 1
        try:
            return super().materialize()
        finally:
            self.T = T

    materialize.__doc__ = _LazyMixin.materialize.__doc__

    def forward(self, x: torch.Tensor, T: Optional[int] = None) -> torch.Tensor:
        name = type(self).__name__
        layout = f"[B, {', '.join(map(str, self.input_shape))}]"
        tensor_input(name, x, min_dim=1, layout=layout)
        if tuple(x.shape[1:]) != self.input_shape:
            hint = ""
            if x.dim() == 5 and tuple(x.shape[2:]) == self.input_shape:
                hint = (" — this looks like an encoded sequence [T, B, ...]; PLIFStaticNet takes the static "
                        "image batch and repeats its first conv-BN output over T itself")
            raise InputError(f"{name}({self.dataset!r}) expects a static image batch shaped {layout}, "
                             f"got {list(x.shape)}{hint}")
        T = self.T if T is None else positive_int("T", T)
        enc = self.encoder(x)                               # [B, C, H, W], computed once
        x_seq = enc.unsqueeze(0).expand(T, *enc.shape)     # the same analog input at every step
        return self.classifier(self.features(x_seq))

    def extra_repr(self) -> str:
        return (f"dataset={self.dataset!r}, T={self.T}, channels={self.channels}, fc_hidden={self.fc_hidden}, "
                f"n_classes={self.n_classes}, bn={self.bn!r}")


def _pair(name: str, value) -> Tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise HyperParameterError(f"{name} must be an int or a pair (H, W), got {value!r}")
    return positive_int(f"{name} height", value[0]), positive_int(f"{name} width", value[1])


class PLIFDVSNet(_LazyMixin, nn.Module):
    r"""The PLIF paper's network for event frames (N-MNIST, CIFAR10-DVS, DVS128 Gesture)::

        {cCk3s1-BN-PLIF-MP2} x n_down -> DP -> FC(C*h*w/4) -> PLIF -> DP -> FC(10*classes) -> PLIF -> AP10

    with ``h, w = H >> n_down, W >> n_down`` (each 2x2 pooling floors, as in PyTorch and the paper's
    code: N-MNIST's 34x34 becomes 17x17 then 8x8). The paper's settings (the presets):

    ======================  ===  ======  =======  ===================  =======  ==
    preset                  C    n_down  input    FC                   classes  T
    ======================  ===  ======  =======  ===================  =======  ==
    :meth:`nmnist`          128  2       34x34    8192 -> 2048 -> 100  10       10
    :meth:`cifar10_dvs`     128  4       128x128  8192 -> 2048 -> 100  10       20
    :meth:`dvs128_gesture`  128  5       128x128  2048 -> 512 -> 110   11       20
    ======================  ===  ======  =======  ===================  =======  ==

    The per-neuron-PLIF network of the TU Delft thesis is ``dvs128_gesture(neuron=lambda:
    PLIF(per_neuron=True, tau_std=0.1, detach_reset=True))``: its ``w`` take the shapes
    ``(128,128,128), (128,64,64), (128,32,32), (128,16,16), (128,8,8), (512,), (110,)`` at the first
    forward pass — create the optimizer after it (or after :meth:`materialize`).

    Args:
        in_channels (int): input channels (default 2: ON/OFF polarity frames).
        input_size (int or tuple of int): frame size, ``H`` (square) or ``(H, W)`` (default 128).
        channels (int): conv width ``C`` (default 128).
        n_down (int): number of conv blocks, each halving the resolution (default 5).
        n_classes (int): classes (default 11); the last spiking layer has ``10 * n_classes`` neurons.
        fc_hidden (int or None): hidden FC width (``None``, the default: ``C*h*w // 4``, the paper's).
        neuron (callable): factory of the spiking layers (default:
            ``PLIF(tau_init=2.0, detach_reset=True)``).
        pool (str): ``'max'`` (default, paper) or ``'avg'``.
        bn (str): ``'per_step'`` (default, paper) or ``'time'`` (see the module docstring).
        p (float): dropout probability of the :class:`SeqDropout` layers (default and paper: 0.5).

    Shapes: ``[T, B, in_channels, H, W]`` frames (raw event counts in the paper) -> ``[T, B, n_classes]``.

    Example::

        >>> net = PLIFDVSNet.dvs128_gesture(channels=8, input_size=64)
        >>> out = net(torch.rand(20, 2, 2, 64, 64))            # [20, 2, 11]
        >>> loss = snnedu.rate_mse(out, y)
    """

    def __init__(self, in_channels: int = 2, input_size: Union[int, Sequence[int]] = 128, channels: int = 128,
                 n_down: int = 5, n_classes: int = 11, fc_hidden: Optional[int] = None,
                 neuron: Callable[[], nn.Module] = default_plif, pool: str = "max", bn: str = "per_step",
                 p: float = 0.5):
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.input_size = _pair("input_size", input_size)
        c = self.channels = positive_int("channels", channels)
        self.n_down = positive_int("n_down", n_down)
        self.n_classes = positive_int("n_classes", n_classes, minimum=2)
        pool = _choice("pool", pool, _POOL_CHOICES)
        self.bn = _choice("bn", bn, _BN_CHOICES)
        p = real("p", p, low=0.0, high=1.0, high_open=True, what="dropout probability")
        H, W = self.input_size
        h, w = H >> self.n_down, W >> self.n_down
        if h == 0 or w == 0:
            raise HyperParameterError(f"input_size {H}x{W} is too small for n_down={self.n_down} halvings "
                                      f"(needs at least {2 ** self.n_down}x{2 ** self.n_down}); lower n_down")
        self.fc_in = c * h * w
        if fc_hidden is None:
            fc_hidden = self.fc_in // 4
            if fc_hidden == 0:
                raise HyperParameterError(f"the default fc_hidden = C*h*w // 4 = {c}*{h}*{w} // 4 is 0; "
                                          "pass fc_hidden or use more channels / a larger input")
        self.fc_hidden = positive_int("fc_hidden", fc_hidden)

        layers, c_prev = [], self.in_channels
        for _ in range(self.n_down):
            layers += [TimeDistributed(nn.Conv2d(c_prev, c, 3, padding=1, bias=False)), _td_bn(c, bn), neuron(),
                       _td_pool(pool)]
            c_prev = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            Flatten(), SeqDropout(p), _fc(self.fc_in, self.fc_hidden), neuron(),
            SeqDropout(p), _fc(self.fc_hidden, 10 * self.n_classes), neuron(),
            VotingReadout(self.n_classes, 10))

    # -- presets (the paper's settings); every argument can be overridden ------------------------------------
    @classmethod
    def dvs128_gesture(cls, **overrides) -> "PLIFDVSNet":
        """DVS128 Gesture: C=128, 5 blocks, 128x128 -> 4x4, FC 2048 -> 512 -> 110, 11 classes (paper: T=20)."""
        return cls(**{**dict(input_size=128, channels=128, n_down=5, n_classes=11), **overrides})

    @classmethod
    def cifar10_dvs(cls, **overrides) -> "PLIFDVSNet":
        """CIFAR10-DVS: C=128, 4 blocks, 128x128 -> 8x8, FC 8192 -> 2048 -> 100, 10 classes (paper: T=20).

        SpikingJelly's later re-implementation uses FC 512; this is the original code's 2048.
        """
        return cls(**{**dict(input_size=128, channels=128, n_down=4, n_classes=10), **overrides})

    @classmethod
    def nmnist(cls, **overrides) -> "PLIFDVSNet":
        """N-MNIST: C=128, 2 blocks, 34x34 -> 8x8, FC 8192 -> 2048 -> 100, 10 classes (paper: T=10)."""
        return cls(**{**dict(input_size=34, channels=128, n_down=2, n_classes=10), **overrides})

    def _dummy_input(self) -> torch.Tensor:
        return torch.zeros(1, 1, self.in_channels, *self.input_size)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        name = type(self).__name__
        layout = f"[T, B, {self.in_channels}, {self.input_size[0]}, {self.input_size[1]}]"
        tensor_input(name, x_seq, min_dim=5, layout=layout)
        if x_seq.dim() != 5 or tuple(x_seq.shape[2:]) != (self.in_channels, *self.input_size):
            raise InputError(f"{name} expects event frames shaped {layout}, got {list(x_seq.shape)}")
        return self.classifier(self.features(x_seq))

    def extra_repr(self) -> str:
        H, W = self.input_size
        return (f"in_channels={self.in_channels}, input_size={H}x{W}, channels={self.channels}, "
                f"n_down={self.n_down}, fc={self.fc_in}->{self.fc_hidden}->{10 * self.n_classes}, "
                f"n_classes={self.n_classes}, bn={self.bn!r}")
