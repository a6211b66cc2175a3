r"""The libraries under comparison, each behind one small adapter with the same neuron settings.

Every adapter builds a multi-step LIF layer ``run(x_seq) -> spikes`` (``[T, B, N]`` in, same shape
out) or the PLIF DVS network, for one *library* and one *backend* of it. The common neuron is the
PLIF paper's / SpikingJelly's LIF ("decay_input" form) with ``tau = 2``, threshold 1, hard reset to
0 and the ATan surrogate with ``alpha = 2``:

.. math:: H[t] = V[t-1] + \tfrac{1}{\tau}\,(X[t] - V[t-1]),\quad S[t] = \Theta(H[t] - 1),\quad
          V[t] = H[t]\,(1 - S[t])

How each peer is mapped onto it (the differences that remain are listed in ``NOTES``):

- **SpikingJelly** ``LIFNode(tau=2., decay_input=True, v_threshold=1., v_reset=0.,
  surrogate_function=ATan(2.), step_mode='m')`` — the same equations. On CPU it runs its
  ``torch`` path (its own per-step loop with a hand-written backward); on CUDA the ``torch``,
  ``triton`` and ``cuda`` implementations are selected through SpikingJelly's implementation switch
  (``SJ_LIF_CUDA_IMPLEMENTATION``; SpikingJelly 2.x replaced the old ``cupy`` backend by these).
- **snnTorch** ``Leaky(beta=1 - 1/tau, threshold=1, spike_grad=atan(alpha=2), reset_mechanism='zero',
  reset_delay=False)`` — snnTorch's neuron is :math:`U = \beta U + X`, so the input is scaled by
  ``1/tau`` once (one vectorised multiply before the loop) to give identical dynamics; the reset is
  applied in the same step (``reset_delay=False``), its spike test is ``U > 1`` (strict).
- **Norse** ``LIFBoxCell`` (the LIF without a synaptic current) with ``dt * tau_mem_inv = 1/2``
  (``dt = 1e-3``, ``tau_mem_inv = 500``): its Euler step is exactly the decay-input equation. Norse
  has no ATan surrogate; its ``'super'`` (SuperSpike, :math:`1/(1+|x|)^2`) is used — the same cost.
  Norse cells are driven step by step in a Python loop (Norse's own usage).
- **naive loop** — plain PyTorch: a Python loop over ``T`` with a ``torch.autograd.Function`` for the
  ATan spike; the baseline every library should beat.

Peers are optional: they are imported from the benchmark-only directory ``SNNEDU_BENCH_EXTRA``
(default ``~/.cache/snnedu/bench-extra``, filled from ``requirements-bench.txt``, see the README),
appended to ``sys.path`` by :func:`use_bench_extra` only inside the benchmark runner. A peer that fails
to import becomes a row marked ``not installed``.
"""
from __future__ import annotations

import importlib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

TAU, V_TH, V_RESET, ALPHA = 2.0, 1.0, 0.0, 2.0

LIBRARIES = ("snnedu", "naive", "spikingjelly", "snntorch", "norse")
#: distribution name of each peer (for its version)
DISTRIBUTIONS = {"spikingjelly": "spikingjelly", "snntorch": "snntorch", "norse": "norse"}

NOTES = {
    "snnedu": "",
    "naive": "plain PyTorch per-step loop, autograd.Function ATan spike",
    "spikingjelly": "LIFNode(decay_input=True), ATan(2)",
    "snntorch": "Leaky(beta=1-1/tau, reset 'zero', reset_delay=False), input x/tau, atan(2); spike U>1",
    "norse": "LIFBoxCell, dt*tau_mem_inv=1/2; SuperSpike surrogate (Norse has no ATan)",
}


class NotInstalled(Exception):
    """The peer library cannot be imported."""


class Unavailable(Exception):
    """The library is there but this backend cannot run here (no CUDA, no Triton, ...)."""


# -- the benchmark-only package directory --------------------------------------------------------------
def bench_extra_dir() -> Path:
    return Path(os.environ.get("SNNEDU_BENCH_EXTRA", Path.home() / ".cache" / "snnedu" / "bench-extra"))


def use_bench_extra() -> Optional[str]:
    """Append the peers' directory to ``sys.path`` (after everything else, so it shadows nothing)."""
    d = bench_extra_dir()
    if d.is_dir() and str(d) not in sys.path:
        sys.path.append(str(d))
    return str(d) if d.is_dir() else None


def _import(library: str, module: str):
    try:
        return importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - any import failure means "not installed" for a peer
        raise NotInstalled(f"{library}: {type(e).__name__}: {e}") from None


def version(library: str) -> Optional[str]:
    if library == "snnedu":
        import snnedu
        return snnedu.__version__
    if library == "naive":
        return None
    if library == "torch":  # the copy_ of the roofline group
        return torch.__version__
    try:
        from importlib.metadata import PackageNotFoundError, version as dist_version
        return dist_version(DISTRIBUTIONS[library])
    except (ImportError, PackageNotFoundError):
        return None


# -- backends --------------------------------------------------------------------------------------------
def _snnedu_kernels():
    try:
        kernels = importlib.import_module("snnedu.kernels")
    except ImportError:
        return None
    return kernels if callable(getattr(kernels, "set_backend", None)) else None


def backends(library: str, device: torch.device) -> List[Optional[str]]:
    """The backends of ``library`` measured on ``device`` (``None``: the library's only/default one)."""
    cuda = device.type == "cuda"
    if library == "snnedu":
        if _snnedu_kernels() is None:
            return [None]  # no backend switch: whatever the neuron modules use
        return ["reference", "triton" if cuda else "cpu"]
    if library == "spikingjelly":
        return ["torch", "triton", "cuda"] if cuda else ["torch"]
    return [None]


def backend_label(library: str, backend: Optional[str]) -> str:
    if backend is not None:
        return backend
    return {"snnedu": "default", "naive": "loop", "snntorch": "loop", "norse": "loop"}.get(library, "default")


def _sj_force(namespace: str, name: str) -> None:
    """Select SpikingJelly's CUDA implementation of one neuron op (its env-var switch, at run time)."""
    sel = _import("spikingjelly", f"spikingjelly._ops.{namespace}")._selection
    sel._requested = name
    sel._selections.clear()
    sel._compiled_selections.clear()


def activator(library: str, backend: Optional[str], device: torch.device) -> Callable[[], None]:
    """A function that makes ``backend`` the active one (called before every timed step, since the
    variants of one case are timed interleaved)."""
    if library == "snnedu" and backend is not None:
        kernels = _snnedu_kernels()

        def act():
            kernels.set_backend(backend)
        return act
    if library == "spikingjelly" and device.type == "cuda":
        def act():
            for ns in ("lif", "plif"):
                _sj_force(ns, backend)
        return act
    return lambda: None


def current_backend() -> Optional[str]:
    kernels = _snnedu_kernels()
    get = getattr(kernels, "get_backend", None)
    return get() if callable(get) else None


def restore_backend(name: Optional[str]) -> None:
    """Put snnedu's backend switch back to ``name`` (what :func:`current_backend` said before)."""
    kernels = _snnedu_kernels()
    if kernels is not None and name is not None:
        kernels.set_backend(name)


# -- multi-step LIF of each library ----------------------------------------------------------------------
class _ATanSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        return grad * (a / 2) / (1 + (math.pi / 2 * a * x) ** 2), None


def naive_lif(x_seq: torch.Tensor, tau: float = TAU) -> torch.Tensor:
    v = torch.zeros_like(x_seq[0])
    out = []
    for x in x_seq:
        h = v + (x - (v - V_RESET)) / tau
        s = _ATanSpike.apply(h - V_TH, ALPHA)
        v = h * (1 - s) + V_RESET * s
        out.append(s)
    return torch.stack(out)


def lif_runner(library: str, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """``run(x_seq) -> spikes`` of ``library``'s LIF with the common settings (state reset per call)."""
    if library == "snnedu":
        import snnedu
        return snnedu.LIF(tau=TAU, decay_input=True, v_threshold=V_TH, v_reset=V_RESET, surrogate="atan").to(device)
    if library == "naive":
        return naive_lif
    if library == "spikingjelly":
        neuron = _import(library, "spikingjelly.activation_based.neuron")
        surrogate = _import(library, "spikingjelly.activation_based.surrogate")
        sjf = _import(library, "spikingjelly.activation_based.functional")
        lif = neuron.LIFNode(tau=TAU, decay_input=True, v_threshold=V_TH, v_reset=V_RESET,
                             surrogate_function=surrogate.ATan(alpha=ALPHA), detach_reset=False,
                             step_mode="m").to(device)

        def run(x_seq):
            sjf.reset_net(lif)
            return lif(x_seq)
        return run
    if library == "snntorch":
        snn = _import(library, "snntorch")
        surrogate = _import(library, "snntorch.surrogate")
        lif = snn.Leaky(beta=1.0 - 1.0 / TAU, threshold=V_TH, spike_grad=surrogate.atan(alpha=ALPHA),
                        reset_mechanism="zero", reset_delay=False).to(device)

        def run(x_seq):
            lif.reset_mem()
            x_seq = x_seq * (1.0 / TAU)  # snnTorch charges U = beta*U + X: scale X for the same dynamics
            out = []
            for x in x_seq:
                spk, _ = lif(x)
                out.append(spk)
            return torch.stack(out)
        return run
    if library == "norse":
        nt = _import(library, "norse.torch")
        dt = 1e-3
        p = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(1.0 / (TAU * dt), device=device),
                                v_leak=torch.tensor(V_RESET, device=device),
                                v_th=torch.tensor(V_TH, device=device),
                                v_reset=torch.tensor(V_RESET, device=device), method="super",
                                alpha=torch.tensor(ALPHA, device=device))
        cell = nt.LIFBoxCell(p, dt=dt)

        def run(x_seq):
            state, out = None, []
            for x in x_seq:
                z, state = cell(x, state)
                out.append(z)
            return torch.stack(out)
        return run
    raise ValueError(f"unknown library {library!r}")


#: the neurons of the ``roofline`` group (issue 17): ``name -> what snnedu builds``
ROOFLINE_NEURONS = {
    "LIF": "LIF(tau=2), ATan(2)",
    "PLIF": "PLIF(tau_init=2, per_neuron=True): one tau per neuron, ATan(2)",
    "MLF": "MLF(K=3, v_threshold=0.6, a=1, decay=0.25): three levels, rectangular surrogate",
    "LIF-STL": "LIF(tau=2, learn_threshold='neuron'): one learnable threshold per neuron, ATan(2)",
}


def neuron_runner(neuron: str, library: str, N: int,
                  device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """``run(x_seq) -> output`` of one neuron of :data:`ROOFLINE_NEURONS` (state reset per call).

    Only the LIF exists in every library (:func:`lif_runner`); the other neurons are snnedu's alone:
    for them any other library raises :class:`NotInstalled`.
    """
    if neuron == "LIF":
        return lif_runner(library, device)
    if library != "snnedu":
        raise NotInstalled(f"{library}: no {neuron} in this benchmark")
    import snnedu
    if neuron == "PLIF":
        m = snnedu.PLIF(tau_init=TAU, per_neuron=True, shape=(N,), v_threshold=V_TH, v_reset=V_RESET,
                        surrogate="atan")
    elif neuron == "MLF":
        m = snnedu.MLF(K=3)
    elif neuron == "LIF-STL":
        m = snnedu.LIF(tau=TAU, v_threshold=V_TH, v_reset=V_RESET, surrogate="atan", learn_threshold="neuron")
    else:
        raise ValueError(f"unknown neuron {neuron!r}")
    m = m.to(device)

    def run(x_seq):
        m.reset()
        return m(x_seq)
    return run


# -- the PLIF DVS network --------------------------------------------------------------------------------
@dataclass
class DVSSetting:
    T: int = 16
    batch: int = 16
    size: int = 128
    channels: int = 128
    n_down: int = 5
    n_classes: int = 11
    fc_hidden: Optional[int] = None  # default C*h*w // 4 (2048 -> 512 at the full size)

    @property
    def fc_in(self) -> int:
        h = self.size >> self.n_down
        return self.channels * h * h

    @property
    def hidden(self) -> int:
        return self.fc_hidden or max(1, self.fc_in // 4)


def dvs_net(library: str, s: DVSSetting, device: torch.device):
    """``(net, reset)``: the PLIF paper's DVS128 Gesture network of ``library``.

    snnedu: :meth:`snnedu.PLIFDVSNet.dvs128_gesture` with ``bn='time'`` (batch-norm statistics over
    T·B, what SpikingJelly's multi-step ``layer.BatchNorm2d`` computes). SpikingJelly: the same layers
    from its ``layer`` and ``neuron`` modules — ``{Conv3x3(no bias)-BN-PLIF-MaxPool2}`` x ``n_down``,
    Flatten, Dropout(0.5), Linear(fc_in, hidden, no bias), PLIF, Dropout(0.5), Linear(hidden,
    10*classes, no bias), PLIF, VotingLayer(10). PLIF: ``tau_0 = 2``, threshold 1, hard reset to 0,
    ATan(2), detached reset, one ``tau`` per layer.
    """
    if library == "snnedu":
        import snnedu
        net = snnedu.PLIFDVSNet.dvs128_gesture(input_size=s.size, channels=s.channels, n_down=s.n_down,
                                               n_classes=s.n_classes, fc_hidden=s.hidden, bn="time")
        return net.to(device), lambda: None
    if library == "spikingjelly":
        layer = _import(library, "spikingjelly.activation_based.layer")
        neuron = _import(library, "spikingjelly.activation_based.neuron")
        surrogate = _import(library, "spikingjelly.activation_based.surrogate")
        sjf = _import(library, "spikingjelly.activation_based.functional")

        def plif():
            return neuron.ParametricLIFNode(init_tau=TAU, decay_input=True, v_threshold=V_TH, v_reset=V_RESET,
                                            surrogate_function=surrogate.ATan(alpha=ALPHA), detach_reset=True,
                                            step_mode="m")
        layers, c_in = [], 2
        for _ in range(s.n_down):
            layers += [layer.Conv2d(c_in, s.channels, kernel_size=3, padding=1, bias=False),
                       layer.BatchNorm2d(s.channels), plif(), layer.MaxPool2d(2, 2)]
            c_in = s.channels
        layers += [layer.Flatten(), layer.Dropout(0.5), layer.Linear(s.fc_in, s.hidden, bias=False), plif(),
                   layer.Dropout(0.5), layer.Linear(s.hidden, 10 * s.n_classes, bias=False), plif(),
                   layer.VotingLayer(10)]
        net = nn.Sequential(*layers)
        sjf.set_step_mode(net, "m")
        net = net.to(device)
        return net, lambda: sjf.reset_net(net)
    raise NotInstalled(f"{library}: no PLIF DVS network in this benchmark")


def train_step(net: nn.Module, reset: Callable[[], None], x: torch.Tensor, y: torch.Tensor,
               n_classes: int) -> Callable[[], None]:
    """One training step (forward, MSE of the mean rate to the one-hot label, backward, Adam)."""
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    target = F.one_hot(y, n_classes).to(x.dtype)

    def step():
        reset()
        opt.zero_grad(set_to_none=True)
        out = net(x)
        F.mse_loss(out.mean(0), target).backward()
        opt.step()
    return step


@dataclass
class Variant:
    """One (library, backend) of one case: ``step()`` runs one timed unit of work."""
    library: str
    backend: Optional[str]
    step: Optional[Callable[[], None]] = None
    activate: Callable[[], None] = field(default=lambda: None)
    status: str = "ok"
    message: str = ""
    #: untimed work run just before each timed ``step`` (e.g. the forward pass whose backward is timed)
    prepare: Optional[Callable[[], None]] = None
    #: what ``step`` times, in the ``roofline`` group: ``fwd``, ``bwd``, ``fwd+bwd`` or ``copy``
    phase: Optional[str] = None

    @property
    def label(self) -> str:
        return f"{self.library} ({backend_label(self.library, self.backend)})"
