r"""End-to-end training steps of the book's chapter networks, against twins with SpikingJelly's neurons.

The ``e2e`` group of :mod:`benchmarks.run` times one training step (forward, loss, backward, Adam) of
each network in :data:`NETWORKS`, built with snnedu's models at the setting its chapter's study uses,
in three variants that share every weight:

- **snnedu** — the network as the chapter builds it, on snnedu's fused CPU backend (``cpu``) or its
  reference loop (``reference``);
- **spikingjelly** (``torch``) — the *twin*: the same network object with every snnedu neuron replaced by
  SpikingJelly's multi-step neuron of the same equations (:func:`sj_neuron`). Only the neurons differ:
  convolutions, batch norms, pooling and read-out are the same modules, so the difference between the
  two is the difference between the neurons' implementations inside a real step;
- **torch** (``no neurons``) — the same network with every neuron replaced by ``nn.Identity``. Its time
  is what the rest of the step costs, so ``1 - t(no neurons) / t(library)`` is the **share of the step
  spent in the neurons** of that library (the layers after an identity see real values instead of
  spikes; on the CPU dense kernels cost the same for both).

Every convolution and linear layer already folds time into the batch (:class:`snnedu.TimeDistributed`:
``[T, B, ...] -> [T*B, ...]``), SpikingJelly's ``SeqToANNContainer`` way. Inputs are random tensors of
the chapter's shapes (direct-encoded images in ``[0, 1]``, event counts for the DVS net): the timing of
dense CPU kernels does not depend on the values.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import peers
from .peers import NotInstalled, Variant


@dataclass(frozen=True)
class Network:
    """One chapter network at its study's setting.

    Args:
        title: the table's name of the network (chapter, architecture, neuron).
        build: factory of the snnedu network (called with the default seed set).
        input_shape: one time step of one sample, e.g. ``(1, 28, 28)``.
        T: time steps.
        batch: batch size of the chapter's study.
        n_classes: classes of the read-out.
        loss: ``'ce'`` (:func:`snnedu.rate_cross_entropy`) or ``'mse'`` (:func:`snnedu.rate_mse`, the
            PLIF paper's).
        events: the input is event counts (non-negative integers) rather than a direct-encoded image.
    """

    title: str
    build: Callable[[], nn.Module]
    input_shape: Tuple[int, ...]
    T: int
    batch: int
    n_classes: int = 10
    loss: str = "ce"
    events: bool = False


def _ch1_cnn() -> nn.Module:
    import snnedu
    return snnedu.SpikingCNN(input_shape=(1, 28, 28), channels=16, hidden=128,
                             neuron=lambda: snnedu.LIF(tau=2.0))


def _ch4_mlp() -> nn.Module:
    import snnedu
    return snnedu.SpikingMLP(input_shape=(1, 28, 28), hidden=(64,) * 12, batch_norm=True,
                             neuron=lambda: snnedu.MLF(K=3, v_threshold=0.6, a=1.0, decay=0.25))


def _ch7_resnet14() -> nn.Module:
    import snnedu
    return snnedu.resnet14(neuron=lambda: snnedu.MLF(K=3, v_threshold=0.6, a=1.0, decay=0.25), v_threshold=0.6,
                           channels=(8, 16, 32), in_channels=1, n_classes=10)


def _dvs_plif() -> nn.Module:
    import snnedu
    return snnedu.PLIFDVSNet.dvs128_gesture(input_size=128, channels=128, n_down=5, n_classes=11, bn="time")


#: the chapter networks of the ``e2e`` group: key -> :class:`Network`
NETWORKS: Dict[str, Network] = {
    "ch1_cnn": Network("ch. 1 SpikingCNN (16 ch, FC 128), LIF", _ch1_cnn, (1, 28, 28), T=4, batch=64),
    "ch4_mlp12": Network("ch. 4 SpikingMLP 12x64 + BN, MLF K=3", _ch4_mlp, (1, 28, 28), T=4, batch=64),
    "ch7_resnet14": Network("ch. 6-7 DS-ResNet-14 (8, 16, 32), MLF K=3", _ch7_resnet14, (1, 28, 28), T=4,
                            batch=64),
    "dvs_plif": Network("ch. 9 PLIF DVS128 Gesture net (128x128, C=128), PLIF", _dvs_plif, (2, 128, 128), T=16,
                        batch=4, n_classes=11, loss="mse", events=True),
}

#: smaller settings of the same networks for ``--quick`` (a smoke test of the harness)
QUICK = {"ch1_cnn": dict(T=2, batch=4), "ch4_mlp12": dict(T=2, batch=4), "ch7_resnet14": dict(T=2, batch=4),
         "dvs_plif": dict(T=2, batch=1)}


# -- SpikingJelly twins of snnedu's neurons --------------------------------------------------------------
def _sj_surrogate(surrogate_mod, s):
    """SpikingJelly's surrogate of snnedu surrogate ``s`` (same shape of derivative)."""
    import snnedu.functional.surrogate as SF
    if isinstance(s, SF.ATan):
        return surrogate_mod.ATan(alpha=s.alpha)
    if isinstance(s, SF.Sigmoid):
        return surrogate_mod.Sigmoid(alpha=s.alpha)
    if isinstance(s, SF.Rectangular):
        return surrogate_mod.Rect(alpha=1.0 / s.a)  # SpikingJelly's Rect: height alpha on |x| < 0.5 / alpha
    raise NotInstalled(f"spikingjelly: no twin here for the surrogate {type(s).__name__}")


class SJMultiLevel(nn.Module):
    """An MLF unit from SpikingJelly neurons: ``K`` multi-step ``LIFNode`` s on the same input, one per
    level (threshold ``V_th + (k-1) a``), whose spikes are summed; SpikingJelly has no multi-level neuron.

    Args:
        levels: the ``K`` SpikingJelly neurons.
    """

    def __init__(self, levels: List[nn.Module]):
        super().__init__()
        self.levels = nn.ModuleList(levels)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        out = self.levels[0](x_seq)
        for level in self.levels[1:]:
            out = out + level(x_seq)
        return out


def sj_neuron(m: nn.Module) -> nn.Module:
    """The SpikingJelly multi-step neuron (torch backend) with the equations of snnedu neuron ``m``.

    - ``LIF`` -> ``LIFNode(tau, decay_input)``; ``PLIF`` (per layer) -> ``ParametricLIFNode(init_tau)``;
    - ``MLF`` -> :class:`SJMultiLevel` of ``K`` ``LIFNode(tau = 1 / (1 - decay), decay_input=False)``:
      with ``v_reset = 0`` SpikingJelly's ``H = V - V / tau + X`` is MLF's ``u = decay * u + x``.

    Threshold, reset, surrogate and ``detach_reset`` are carried over. Other neurons raise
    :class:`benchmarks.peers.NotInstalled` (no twin in this benchmark).
    """
    import snnedu
    neuron = peers._import("spikingjelly", "spikingjelly.activation_based.neuron")
    surrogate = peers._import("spikingjelly", "spikingjelly.activation_based.surrogate")
    common = dict(v_reset=m.v_reset, detach_reset=m.detach_reset, step_mode="m",
                  surrogate_function=_sj_surrogate(surrogate, m.surrogate))
    if m.threshold_param is not None:
        raise NotInstalled("spikingjelly: no twin here for a learnable threshold")
    if type(m) is snnedu.LIF:
        return neuron.LIFNode(tau=m.tau, decay_input=m.decay_input, v_threshold=m.v_threshold, **common)
    if type(m) is snnedu.PLIF and not m.per_neuron:
        return neuron.ParametricLIFNode(init_tau=float(m.tau.detach()), decay_input=m.decay_input, v_threshold=m.v_threshold,
                                        **common)
    if type(m) is snnedu.MLF:
        if m.v_reset is None:
            raise NotInstalled("spikingjelly: no twin here for a soft-reset MLF")
        tau = 1.0 / (1.0 - float(m.decay))
        return SJMultiLevel([neuron.LIFNode(tau=tau, decay_input=False, v_threshold=m.v_threshold + k * m.a,
                                            **common) for k in range(m.K)])
    raise NotInstalled(f"spikingjelly: no twin here for {type(m).__name__}")


def swap_neurons(net: nn.Module, make: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """A deep copy of ``net`` with every snnedu neuron ``m`` replaced by ``make(m)``; a neuron module used
    at several places (``share_neuron``) is replaced by one shared module."""
    import snnedu
    net = copy.deepcopy(net)
    made: Dict[int, nn.Module] = {}

    def visit(parent: nn.Module) -> None:
        for name, child in list(parent.named_children()):
            if isinstance(child, snnedu.BaseNeuron):
                if id(child) not in made:
                    made[id(child)] = make(child)
                setattr(parent, name, made[id(child)])
            else:
                visit(child)
    visit(net)
    return net


# -- the variants of one case ----------------------------------------------------------------------------
def setting(key: str, quick: bool) -> dict:
    """The parameter dict of the case of network ``key`` (``quick``: the smoke-test sizes)."""
    n = NETWORKS[key]
    p = {"net": key, "T": n.T, "batch": n.batch}
    if quick:
        p.update(QUICK[key])
    return p


def case_name(p: dict) -> str:
    n = NETWORKS[p["net"]]
    shape = "x".join(map(str, n.input_shape))
    return f"{n.title}, train step T={p['T']} B={p['batch']} input {shape}"


def _inputs(n: Network, p: dict, device: torch.device):
    g = torch.Generator().manual_seed(0)
    shape = (p["T"], p["batch"], *n.input_shape)
    if n.events:
        x = torch.poisson(torch.full(shape, 0.3), generator=g)
    else:
        x = torch.rand(shape[1:], generator=g).expand(shape).contiguous()  # direct encoding: one image, T times
    y = torch.randint(0, n.n_classes, (p["batch"],), generator=g)
    return x.to(device), y.to(device)


def train_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, n: Network,
               reset: Callable[[], None] = lambda: None) -> Callable[[], None]:
    """One training step of ``net``: forward, the chapter's loss, backward, Adam (lr 1e-3)."""
    import snnedu
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    target = F.one_hot(y, n.n_classes).to(x.dtype)

    def step():
        reset()
        opt.zero_grad(set_to_none=True)
        out = net(x)
        loss = snnedu.rate_cross_entropy(out, y) if n.loss == "ce" else F.mse_loss(out.mean(0), target)
        loss.backward()
        opt.step()
    return step


def variants(p: dict, libs, device: torch.device) -> List[Variant]:
    """snnedu (each backend), the SpikingJelly twin and the network without neurons, for case ``p``."""
    n = NETWORKS[p["net"]]
    torch.manual_seed(0)
    base = n.build().to(device)
    x, y = _inputs(n, p, device)
    with torch.no_grad():  # materialise lazy layers before copying (the same weights in every variant)
        base(x[:, :1])
    out: List[Variant] = []
    for lib in libs:
        if lib not in ("snnedu", "spikingjelly"):
            continue
        for backend in peers.backends(lib, device):
            v = Variant(lib, backend, activate=peers.activator(lib, backend, device))
            try:
                if lib == "snnedu":
                    v.step = train_step(copy.deepcopy(base), x, y, n)
                else:
                    twin = swap_neurons(base, sj_neuron).to(device)
                    sjf = peers._import(lib, "spikingjelly.activation_based.functional")
                    v.step = train_step(twin, x, y, n, reset=lambda twin=twin: sjf.reset_net(twin))
            except NotInstalled as e:
                v.status, v.message = "not installed", str(e)
            except Exception as e:  # noqa: BLE001 - a peer's constructor may fail in any way
                v.status, v.message = "unavailable", f"{type(e).__name__}: {e}"
            out.append(v)
    bare = Variant("torch", "nn.Identity", phase="no neurons")
    bare.step = train_step(swap_neurons(base, lambda m: nn.Identity()), x, y, n)
    out.append(bare)
    return out


def neuron_share(t: Optional[float], t_bare: Optional[float]) -> Optional[float]:
    """Share of a step of time ``t`` spent in the neurons, given the step without neurons ``t_bare``."""
    if not t or not t_bare:
        return None
    return 1.0 - t_bare / t
