r"""Export snnedu networks to NIR, and import NIR graphs as snnedu networks.

NIR (the Neuromorphic Intermediate Representation, the ``nir`` package, 1.0.8) is the exchange format
of snnTorch, Norse, SpikingJelly, Sinabs, Spyx and several neuromorphic chips. A NIR graph is a set of
nodes (``Affine``, ``Conv2d``, ``LIF``, ...) joined by edges; a node with several incoming edges sums
them. :func:`export_nir` turns a trained snnedu chain into a ``nir.NIRGraph`` (save it with
``nir.write(path, graph)``), :func:`import_nir` turns a NIR graph (or a ``.nir`` file) back into
snnedu modules that take ``[T, B, ...]``.

``nir`` is imported on first use only, so ``import snnedu`` does not need it; install it with
``pip install nir==1.0.8`` (``make bench-extra`` puts it, with the peers, in ``~/.cache/snnedu/bench-extra``).

**Neurons: discrete snnedu, continuous NIR.** The NIR LIF is

.. math::

    \tau\,\dot v = (v_{leak} - v) + r\,I, \qquad z = [v > v_{threshold}], \qquad
    v \leftarrow v_{reset} \text{ where } z = 1.

One forward-Euler step of length ``dt`` gives :math:`v \leftarrow v + \frac{dt}{\tau}\big((v_{leak} - v)
+ r I\big)`. With snnedu's time constant in steps :math:`\tau_s` (leak :math:`k = 1/\tau_s`) this is
snnedu's update exactly when

- ``IF``: a ``nir.IF`` with ``r = 1 / dt``;
- ``LIF`` with ``decay_input=True`` (Form A): ``tau = tau_s * dt``, ``r = 1``, ``v_leak = v_reset``;
- ``LIF`` with ``decay_input=False`` (Form B, also ``LIF.stbp``, :math:`\lambda = 1 - 1/\tau_s`):
  ``tau = tau_s * dt``, ``r = tau_s``, ``v_leak = v_reset``;
- ``PLIF`` (per layer or per neuron): ``tau = tau_s * dt`` for each neuron, ``r = 1`` or ``tau_s`` as
  above, ``v_leak = v_reset``;
- ``MLF`` / ``PMLF`` / ``PMLF3``: ``K`` Form-B ``LIF`` nodes with thresholds ``V_th + k a``, fed by the
  same edge; the next node sums their spikes.

(Form A: :math:`H = V + k(X - (V - V_{reset}))`, so the input is scaled by :math:`k = dt/\tau`,
i.e. ``r = 1``; Form B: :math:`H = V - k(V - V_{reset}) + X`, the input enters unscaled, so
``r dt / tau = 1``, i.e. ``r = tau_s``; IF: :math:`H = V + X`, ``r dt = 1``.) A learnable threshold is
exported at its current value, per layer or per neuron; NIR has no notion of learnability.

``dt`` is an explicit argument of both functions. Its default, ``1e-4`` s, is the one SpikingJelly's
``import_from_nir`` uses by default and the one snnTorch's importer hard-codes; Norse's ``from_nir``
defaults to ``1e-3``, so pass ``dt=1e-4`` to it. Only the ratios ``tau / dt`` and ``r dt`` matter.

**Firing at equality.** NIR (and Norse, snnTorch) fire at :math:`v > v_{threshold}`; snnedu and
SpikingJelly at :math:`v \ge v_{threshold}`. The two differ only when a potential equals the threshold
exactly in float32, which the round-trip tests rule out for their inputs.

**What NIR cannot express** raises :class:`NIRError` naming the layer: the soft reset
(``v_reset=None``; NIR resets to ``v_reset`` only), max pooling (NIR 1.0.8 has sum and average
pooling only), batch norm with no Linear/Conv in front of it, residual or otherwise non-sequential
models. ``detach_reset`` only changes gradients, so it is ignored (the forward pass is the same), as
are the surrogate gradient and ``record``. Dropout (``nn.Dropout``, :class:`snnedu.SeqDropout`) is the
identity at inference and is left out.

**Batch norm is folded** into the Linear/Conv in front of it, with the running statistics (the
inference-mode network): ``nn.BatchNorm1d/2d`` (bare, in :class:`snnedu.TimeDistributed` or in
:class:`snnedu.PerStepBatchNorm`) and :class:`snnedu.tdBN` (whose scale :math:`\alpha V_{th}` is
folded too). :class:`snnedu.VotingReadout` becomes a ``nir.Linear`` of group means.

**Import** maps ``Affine``, ``Linear``, ``Conv1d``, ``Conv2d``, ``AvgPool2d``, ``SumPool2d``,
``Flatten``, ``IF`` and ``LIF`` to snnedu modules. A ``LIF`` whose ``r`` is 1 becomes Form A, one whose
``r`` equals ``tau / dt`` Form B; per-neuron time constants give a per-neuron :class:`snnedu.PLIF`,
per-neuron thresholds a per-neuron learnable threshold. ``v_leak`` must equal ``v_reset`` (snnedu
leaks towards the reset potential) and ``v_reset`` must be the same for the whole layer. A chain
becomes an ``nn.Sequential``; a graph with fan-in (e.g. an exported MLF) a :class:`NIRGraphModule`.
Recurrent graphs, ``CubaLIF``, ``LI``, ``I``, ``Delay``, ``Threshold`` and ``Scale`` are rejected
with a :class:`NIRError`.

Example::

    >>> from snnedu.nir import export_nir, import_nir
    >>> graph = export_nir(net.eval(), input_shape=(1, 28, 28))       # dt=1e-4 s
    >>> import nir; nir.write("net.nir", graph)
    >>> net2 = import_nir("net.nir")                                  # same spikes as net
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import SnneduError
from .layers import Flatten, PerStepBatchNorm, SeqDropout, TimeDistributed, VotingReadout, tdBN
from .neurons import IF, LIF, MLF, PLIF, BaseNeuron

__all__ = ["export_nir", "import_nir", "NIRError", "NIRGraphModule", "DEFAULT_DT"]

#: The default time step, in seconds (SpikingJelly's default and snnTorch's hard-coded value).
DEFAULT_DT = 1e-4

_RTOL = 1e-6


class NIRError(SnneduError, ValueError):
    """A network (or a NIR graph) has a part that the other side cannot express."""


def _nir():
    try:
        import nir  # noqa: PLC0415 - optional dependency, imported on first use
    except ImportError as e:  # pragma: no cover - exercised only without nir
        raise ImportError("snnedu.nir needs the `nir` package (version 1.0.8): `pip install nir==1.0.8`, "
                          "or `make bench-extra` and append ~/.cache/snnedu/bench-extra to sys.path") from e
    return nir


def _check_dt(dt) -> float:
    if isinstance(dt, bool) or not isinstance(dt, (int, float)) or not math.isfinite(dt) or dt <= 0:
        raise NIRError(f"dt must be a positive number of seconds, got {dt!r}")
    return float(dt)


# ==================================================================================================
# Export
# ==================================================================================================
def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _full(value, shape) -> np.ndarray:
    """``value`` (a float, or a tensor of shape ``()`` or ``shape``) as a float64 array of ``shape``."""
    v = _np(value).astype(np.float64)
    return np.broadcast_to(v, tuple(shape)).copy()


def _layers(model: nn.Module, prefix: str) -> List[Tuple[str, nn.Module]]:
    """The layers of a sequential model in order, as ``(qualified name, module)``."""
    from .models.static import StaticClassifier  # noqa: PLC0415 - avoids an import cycle at load time
    if isinstance(model, StaticClassifier):
        return _layers(model.body, f"{prefix}.body" if prefix else "body")
    if isinstance(model, nn.Sequential):
        out = []
        for name, child in model.named_children():
            out += _layers(child, f"{prefix}.{name}" if prefix else name)
        return out
    if isinstance(model, TimeDistributed):
        return _layers(model.module, prefix or "module")
    if isinstance(model, PerStepBatchNorm):
        return [(prefix or "bn", model.bn)]
    return [(prefix or type(model).__name__, model)]


_STATELESS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool2d, nn.Flatten, Flatten, VotingReadout)
_SKIPPED = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, SeqDropout, nn.Identity)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, tdBN)


def _bn_scale_shift(bn: nn.Module) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(a, b)`` with ``bn(x) = a x + b`` at inference (running statistics)."""
    if bn.running_mean is None or bn.running_var is None:
        raise NIRError("batch norm without running statistics (track_running_stats=False) cannot be folded")
    gamma = torch.ones_like(bn.running_var) if bn.weight is None else bn.weight.detach()
    beta = torch.zeros_like(bn.running_mean) if bn.bias is None else bn.bias.detach()
    if isinstance(bn, tdBN):
        gamma = gamma * (bn.alpha * bn.v_threshold)
    a = gamma / torch.sqrt(bn.running_var + bn.eps)
    return a, beta - a * bn.running_mean


class _Affine:
    """A Linear/Conv being built: weights (float64 until the node is made) so that a BN can be folded."""

    def __init__(self, name, module, in_shape, out_shape):
        self.name, self.module, self.in_shape, self.out_shape = name, module, in_shape, out_shape
        self.weight = module.weight.detach().double().clone()
        self.bias = None if module.bias is None else module.bias.detach().double().clone()

    def fold(self, bn_name: str, bn: nn.Module) -> None:
        a, b = (t.double() for t in _bn_scale_shift(bn))
        if a.numel() != self.weight.shape[0]:
            raise NIRError(f"layer {bn_name} ({type(bn).__name__}) has {a.numel()} channels but the layer before it, "
                           f"{self.name}, has {self.weight.shape[0]} outputs")
        shape = (-1,) + (1,) * (self.weight.dim() - 1)
        self.weight = self.weight * a.view(shape)
        self.bias = b if self.bias is None else self.bias * a + b

    def node(self, nir):
        w = self.weight.float().numpy()
        b = None if self.bias is None else self.bias.float().numpy()
        m = self.module
        if isinstance(m, nn.Linear):
            return nir.Linear(weight=w) if b is None else nir.Affine(weight=w, bias=b)
        if m.padding_mode != "zeros":
            raise NIRError(f"layer {self.name} ({type(m).__name__}) uses padding_mode={m.padding_mode!r}; "
                           "NIR has zero padding only")
        b = np.zeros(w.shape[0], dtype=np.float32) if b is None else b
        padding = m.padding if isinstance(m.padding, str) else tuple(m.padding)
        if isinstance(m, nn.Conv1d):
            return nir.Conv1d(input_shape=int(self.in_shape[-1]), weight=w, stride=m.stride[0],
                              padding=padding if isinstance(padding, str) else padding[0],
                              dilation=m.dilation[0], groups=m.groups, bias=b)
        return nir.Conv2d(input_shape=tuple(int(s) for s in self.in_shape[-2:]), weight=w, stride=tuple(m.stride),
                          padding=padding, dilation=tuple(m.dilation), groups=m.groups, bias=b)


def _out_shape(module: nn.Module, in_shape: Tuple[int, ...], name: str) -> Tuple[int, ...]:
    """Per-sample output shape of a stateless layer (one dummy sample through it)."""
    try:
        with torch.no_grad():
            p = next(module.parameters(), None)
            x = torch.zeros((1, *in_shape), dtype=p.dtype if p is not None else torch.float32,
                            device=p.device if p is not None else None)
            if isinstance(module, (Flatten, VotingReadout)):
                return tuple(module(x.unsqueeze(0)).shape[2:])
            return tuple(module(x).shape[1:])
    except (RuntimeError, ValueError) as e:
        raise NIRError(f"layer {name} ({type(module).__name__}) does not accept one sample of shape "
                       f"{list(in_shape)}: {e}") from None


def _neuron_nodes(nir, name: str, m: BaseNeuron, shape, dt: float) -> list:
    """The NIR node(s) of a spiking layer (one, or K for a multi-level unit)."""
    kind = type(m).__name__
    if m.v_reset is None:
        raise NIRError(f"layer {name} ({kind}) uses the soft reset (v_reset=None, V <- H - V_th); NIR resets to "
                       "v_reset only. Rebuild it with a hard reset (e.g. v_reset=0.0) and retrain or fine-tune")
    if m.threshold_param is not None and m.threshold_param.per_neuron and not m.threshold_param.is_materialized:
        raise NIRError(f"layer {name} ({kind}) has per-neuron thresholds that have no shape yet; run one forward "
                       "pass (or net.materialize()) first")
    th = m.v_threshold if m.threshold_param is None else m.threshold_param.value().detach()
    v_reset = _full(m.v_reset, shape)
    if isinstance(m, MLF):
        decay = m.decay
        decay = decay.detach() if isinstance(decay, torch.Tensor) else torch.tensor(decay, dtype=torch.float64)
        decay = decay.double().expand(m.K) if decay.dim() == 0 else decay.double()
        nodes = []
        for level in range(m.K):
            k = 1.0 - float(decay[level])
            if not k > 0:
                raise NIRError(f"layer {name} ({kind}) level {level} has decay 1 (no leak); a NIR LIF needs a "
                               "finite tau")
            tau_s = 1.0 / k
            level_th = _full(th, shape) + level * m.a
            nodes.append(nir.LIF(tau=_full(tau_s * dt, shape), r=_full(tau_s, shape), v_leak=v_reset.copy(),
                                 v_threshold=level_th, v_reset=v_reset.copy()))
        return nodes
    if isinstance(m, IF) or (isinstance(m, LIF) and m.k == 0):
        return [nir.IF(r=_full(1.0 / dt, shape), v_threshold=_full(th, shape), v_reset=v_reset)]
    if isinstance(m, LIF):
        tau_s, decay_input = _full(m.tau, shape), m.decay_input
    elif isinstance(m, PLIF):
        if not m.decay_param.is_materialized:
            raise NIRError(f"layer {name} ({kind}) has per-neuron time constants that have no shape yet; run one "
                           "forward pass (or net.materialize()) first")
        tau_s, decay_input = _full(m.tau.detach().double(), shape), m.decay_input
    else:
        raise NIRError(f"layer {name} ({kind}): no NIR mapping for this neuron")
    r = np.ones_like(tau_s) if decay_input else tau_s.copy()
    return [nir.LIF(tau=tau_s * dt, r=r, v_leak=v_reset.copy(), v_threshold=_full(th, shape), v_reset=v_reset)]


def export_nir(model: nn.Module, *, dt: float = DEFAULT_DT, input_shape: Optional[Sequence[int]] = None):
    r"""Export a sequential snnedu network to a ``nir.NIRGraph``.

    Args:
        model (nn.Module): an ``nn.Sequential`` chain (nested ones are walked) of ``nn.Linear``,
            ``nn.Conv1d``/``nn.Conv2d``, ``nn.AvgPool2d``, :class:`snnedu.Flatten`, batch norms (folded),
            dropout (left out), :class:`snnedu.VotingReadout` and snnedu neurons, each stateless layer
            bare or in :class:`snnedu.TimeDistributed`; or a :class:`snnedu.SpikingMLP` /
            :class:`snnedu.SpikingCNN`. The inference-mode network is exported (running statistics).
        dt (float): time step in seconds (default ``1e-4``, :data:`DEFAULT_DT`); see the module
            docstring for how ``tau``, ``r`` and ``dt`` relate.
        input_shape (sequence of int or None): shape of one time step of one sample, e.g.
            ``(1, 28, 28)``; ``None`` takes the model's ``input_shape`` attribute, or the
            ``in_features`` of a leading Linear.

    Returns the graph ``input -> ... -> output``; node names are the layers' qualified names with
    ``.`` replaced by ``_`` (a multi-level unit gives ``name_level0``, ``name_level1``, ...).

    Raises :class:`NIRError` naming the layer for what NIR cannot express (see the module docstring).

    Example::

        >>> g = export_nir(SpikingMLP(hidden=(64,)).eval(), input_shape=(1, 28, 28))
        >>> sorted(type(n).__name__ for n in g.nodes.values())
    """
    nir = _nir()
    dt = _check_dt(dt)
    layers = _layers(model, "")
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
    if input_shape is None:
        first = next((m for _, m in layers if not isinstance(m, _SKIPPED)), None)
        if isinstance(first, nn.Linear):
            input_shape = (first.in_features,)
        else:
            raise NIRError("export_nir needs input_shape, the shape of one time step of one sample, e.g. (1, 28, 28)")
    shape = tuple(int(s) for s in input_shape)
    in_shape = shape

    # 1) layers -> pending items (affine layers stay open so that a following BN can be folded in)
    items: list = []   # ("affine", _Affine) | ("node", name, nir node, out_shape) | ("neuron", name, [nodes], shape)
    for name, m in layers:
        kind = type(m).__name__
        if isinstance(m, _SKIPPED):
            continue
        if isinstance(m, _BN):
            if not items or items[-1][0] != "affine":
                raise NIRError(f"layer {name} ({kind}) is a batch norm with no Linear/Conv right before it; NIR has "
                               "no batch norm, and it can only be folded into a preceding Linear/Conv")
            items[-1][1].fold(name, m)
            continue
        if isinstance(m, BaseNeuron):
            items.append(("neuron", name, _neuron_nodes(nir, name, m, shape, dt), shape))
            continue
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)):
            raise NIRError(f"layer {name} ({kind}): NIR 1.0.8 has no max pooling (only AvgPool2d and SumPool2d); "
                           "use nn.AvgPool2d")
        if not isinstance(m, _STATELESS):
            what = "a module with submodules whose forward is not a plain chain" if any(True for _ in m.children()) \
                else "a layer with no NIR mapping"
            raise NIRError(f"layer {name} ({kind}) is {what}; export_nir handles nn.Sequential chains of "
                           "Linear/Conv/AvgPool2d/Flatten/batch norm/dropout/VotingReadout and snnedu neurons")
        out = _out_shape(m, shape, name)
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            items.append(("affine", _Affine(name, m, shape, out)))
        elif isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or m.divisor_override is not None or (np.any(m.padding) and not m.count_include_pad):
                raise NIRError(f"layer {name} (AvgPool2d): ceil_mode, divisor_override and count_include_pad=False "
                               "with padding have no NIR equivalent")
            pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
            stride = m.kernel_size if m.stride is None else m.stride
            items.append(("node", name, nir.AvgPool2d(kernel_size=np.array(pair(m.kernel_size)),
                                                       stride=np.array(pair(stride)),
                                                       padding=np.array(pair(m.padding))), out))
        elif isinstance(m, Flatten):
            items.append(("node", name, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1),
                          out))
        elif isinstance(m, nn.Flatten):   # inside TimeDistributed: dims count the batch; NIR's do not
            start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim
            end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
            items.append(("node", name, nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start,
                                                    end_dim=end), out))
        elif isinstance(m, VotingReadout):
            w = np.kron(np.eye(m.n_classes), np.full((1, m.group), 1.0 / m.group)).astype(np.float32)
            items.append(("node", name, nir.Linear(weight=w), out))
        shape = out

    # 2) pending items -> NIR nodes and edges (a multi-level unit fans out and back in)
    nodes: Dict[str, object] = OrderedDict(input=nir.Input(input_type={"input": np.array(in_shape)}))
    edges: List[Tuple[str, str]] = []
    prev = ["input"]
    for item in items:
        if item[0] == "affine":
            names, new = [item[1].name], [item[1].node(nir)]
        elif item[0] == "node":
            names, new = [item[1]], [item[2]]
        else:
            names = [item[1]] if len(item[2]) == 1 else [f"{item[1]}_level{k}" for k in range(len(item[2]))]
            new = item[2]
        keys = []
        for n, node in zip(names, new):
            key = n.replace(".", "_")
            while key in nodes or key in ("input", "output"):
                key += "_"
            nodes[key] = node
            keys.append(key)
        edges += [(p, k) for p in prev for k in keys]
        prev = keys
    if len(prev) > 1:   # a multi-level unit last: nirtorch-based importers do not sum at the Output node
        key = f"{items[-1][1].replace('.', '_')}_sum"
        nodes[key] = nir.Linear(weight=np.eye(int(np.prod(shape)), dtype=np.float32))
        if len(shape) != 1:
            raise NIRError(f"layer {items[-1][1]} ({type(layers[-1][1]).__name__}) is a multi-level unit at the end "
                           "of the network with a multi-dimensional output; put a Flatten before it")
        edges += [(p, key) for p in prev]
        prev = [key]
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges += [(p, "output") for p in prev]
    return nir.NIRGraph(nodes=dict(nodes), edges=edges)


# ==================================================================================================
# Import
# ==================================================================================================
class _SumPool2d(nn.Module):
    """Sum pooling (``nir.SumPool2d``): average pooling times the window area."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, count_include_pad=True) * (
            self.kernel_size[0] * self.kernel_size[1])


class NIRGraphModule(nn.Module):
    """snnedu modules wired as in a feed-forward NIR graph with fan-in (inputs of a node are summed).

    Args:
        layers (dict): ``{name: module}`` in an order where every node comes after its inputs; each
            module maps ``[T, B, ...] -> [T, B, ...]``.
        inputs (dict): ``{name: [names of its input nodes]}``; ``'input'`` is the graph input.
        outputs (sequence of str): the nodes summed into the graph output.

    Shapes: ``[T, B, *input] -> [T, B, *output]``.
    """

    def __init__(self, layers: Dict[str, nn.Module], inputs: Dict[str, List[str]], outputs: Sequence[str]):
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.inputs = {k: list(v) for k, v in inputs.items()}
        self.outputs = list(outputs)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        values = {"input": x_seq}
        for name, layer in self.layers.items():
            values[name] = layer(sum(values[p] for p in self.inputs[name]))
        return sum(values[p] for p in self.outputs)


def _uniform(a: np.ndarray) -> Optional[float]:
    a = np.asarray(a, dtype=np.float64)
    return float(a.flat[0]) if a.size and np.all(a == a.flat[0]) else None


def _close(a, b) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=_RTOL, atol=0))


def _set_thresholds(neuron: BaseNeuron, th: np.ndarray, shape) -> None:
    neuron._prepare(tuple(shape))
    with torch.no_grad():
        neuron.threshold_param.w.copy_(torch.as_tensor(np.broadcast_to(th, tuple(shape)), dtype=torch.float32))


def _import_neuron(name: str, node, dt: float) -> nn.Module:
    kind = type(node).__name__
    th = np.asarray(node.v_threshold, dtype=np.float64)
    shape = th.shape
    v_reset = _uniform(node.v_reset)
    if v_reset is None:
        raise NIRError(f"node {name} ({kind}) has a different v_reset per neuron; snnedu has one per layer")
    th_u = _uniform(th)
    th_opts = {} if th_u is not None else {"learn_threshold": "neuron"}
    th0 = th_u if th_u is not None else float(th.mean())
    if th0 <= v_reset:
        raise NIRError(f"node {name} ({kind}) has v_threshold {th0} <= v_reset {v_reset}")
    if kind == "IF":
        if not _close(np.asarray(node.r) * dt, 1.0):
            raise NIRError(f"node {name} (IF) has r = {np.mean(node.r):g}, but snnedu's IF (V <- V + X) needs "
                           f"r = 1/dt = {1 / dt:g} for dt = {dt:g}; pass the exporter's dt")
        neuron = IF(v_threshold=th0, v_reset=v_reset, **th_opts)
    else:
        if not _close(node.v_leak, v_reset):
            raise NIRError(f"node {name} (LIF) has v_leak != v_reset; snnedu's LIF leaks towards v_reset")
        tau = np.asarray(node.tau, dtype=np.float64) / dt
        r = np.asarray(node.r, dtype=np.float64)
        if _close(r, 1.0):
            decay_input = True
        elif _close(r, tau):
            decay_input = False
        else:
            raise NIRError(f"node {name} (LIF) has r that is neither 1 (snnedu's Form A, decay_input=True) nor "
                           f"tau/dt (Form B, decay_input=False) for dt = {dt:g}; pass the exporter's dt")
        tau_u = _uniform(tau)
        if np.any(tau < 1.0 - _RTOL) or not np.all(np.isfinite(tau)):
            raise NIRError(f"node {name} (LIF) has tau/dt = {tau.min():g} for dt = {dt:g}; snnedu needs tau/dt >= 1 "
                           "(a leak of at most one per step); pass the exporter's dt")
        if tau_u is not None:
            neuron = LIF(tau=max(tau_u, 1.0), decay_input=decay_input, v_threshold=th0, v_reset=v_reset, **th_opts)
        else:
            if np.any(tau <= 1.0):
                raise NIRError(f"node {name} (LIF) has per-neuron tau/dt down to {tau.min():g}; a per-neuron PLIF "
                               "needs tau/dt > 1")
            neuron = PLIF(tau_init=float(tau.mean()) if tau.mean() > 1 else 2.0, shape=tuple(tau.shape),
                          decay_input=decay_input, v_threshold=th0, v_reset=v_reset, **th_opts)
            with torch.no_grad():
                neuron.decay_param.w.copy_(torch.as_tensor(-np.log(tau - 1.0), dtype=torch.float32))
    if th_opts:
        _set_thresholds(neuron, th, shape)
    return neuron


def _import_node(name: str, node, dt: float) -> Optional[nn.Module]:
    nir = _nir()
    kind = type(node).__name__
    if isinstance(node, (nir.Input, nir.Output)):
        return None
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
        bias = getattr(node, "bias", None)
        lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if bias is not None:
                lin.bias.copy_(torch.as_tensor(np.asarray(bias), dtype=torch.float32))
        return TimeDistributed(lin)
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
        conv_cls = nn.Conv1d if isinstance(node, nir.Conv1d) else nn.Conv2d

        def arg(v):
            return v if isinstance(v, str) else (int(v) if np.ndim(v) == 0 else tuple(int(x) for x in np.asarray(v)))
        groups = int(np.asarray(node.groups))
        conv = conv_cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=arg(node.stride),
                        padding=arg(node.padding), dilation=arg(node.dilation), groups=groups, bias=True)
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(torch.as_tensor(np.asarray(node.bias), dtype=torch.float32))
        return TimeDistributed(conv)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        pair = lambda v: tuple(int(x) for x in np.broadcast_to(np.asarray(v), (2,)))  # noqa: E731
        k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)
        pool = nn.AvgPool2d(k, s, p) if isinstance(node, nir.AvgPool2d) else _SumPool2d(k, s, p)
        return TimeDistributed(pool)
    if isinstance(node, nir.Flatten):
        start, end = int(node.start_dim), int(node.end_dim)
        if start == 0 and end == -1:
            return Flatten()
        return TimeDistributed(nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end))
    if isinstance(node, (nir.IF, nir.LIF)):
        return _import_neuron(name, node, dt)
    if isinstance(node, nir.NIRGraph):
        raise NIRError(f"node {name} is a sub-graph (e.g. a recurrent layer); snnedu imports feed-forward graphs only")
    raise NIRError(f"node {name} ({kind}) has no snnedu equivalent; import_nir maps Affine, Linear, Conv1d, Conv2d, "
                   "AvgPool2d, SumPool2d, Flatten, IF and LIF")


def import_nir(graph, *, dt: float = DEFAULT_DT) -> nn.Module:
    r"""Build snnedu modules from a NIR graph (or the path of a ``.nir`` file written by ``nir.write``).

    Args:
        graph (nir.NIRGraph or str or os.PathLike): the graph, or a file to read it from.
        dt (float): the time step in seconds the graph was exported with (default ``1e-4``,
            :data:`DEFAULT_DT`, as snnTorch and SpikingJelly export); it turns NIR's ``tau`` and ``r``
            into snnedu's per-step values (see the module docstring).

    Returns an ``nn.Sequential`` (for a chain; its children are named after the NIR nodes) or a
    :class:`NIRGraphModule` (for a graph with fan-in), mapping ``[T, B, *input] -> [T, B, *output]``.
    Every neuron has a hard reset; a learnable threshold or tau is only used to hold per-neuron values.

    Raises :class:`NIRError` naming the node for what snnedu cannot express.

    Example::

        >>> net = import_nir("net.nir")                   # or import_nir(nir_graph, dt=1e-3)
        >>> spikes = net(torch.rand(8, 2, 1, 28, 28))     # [T, B, ...]
    """
    nir = _nir()
    dt = _check_dt(dt)
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(graph)
    preds: Dict[str, List[str]] = {n: [] for n in graph.nodes}
    for src, dst in graph.edges:
        if src not in graph.nodes or dst not in graph.nodes:
            raise NIRError(f"edge ({src!r}, {dst!r}) names a node that is not in the graph")
        preds[dst].append(src)
    # topological order (Kahn); what is left over lies on a cycle
    order, done = [], set()
    pending = list(graph.nodes)
    while pending:
        ready = [n for n in pending if all(p in done for p in preds[n])]
        if not ready:
            raise NIRError(f"the graph is recurrent (a cycle through {', '.join(sorted(pending))}); snnedu imports "
                           "feed-forward graphs only")
        for n in ready:
            order.append(n)
            done.add(n)
        pending = [n for n in pending if n not in done]

    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRError(f"import_nir needs one Input and one Output node, got {len(inputs)} and {len(outputs)}")
    modules: Dict[str, nn.Module] = OrderedDict()
    alias: Dict[str, str] = {inputs[0]: "input"}   # NIR name -> module key
    wiring: Dict[str, List[str]] = {}
    for n in order:
        node = graph.nodes[n]
        if n in inputs:
            continue
        srcs = [alias[p] if p in alias else p for p in preds[n]]
        if n in outputs:
            out_srcs = srcs
            continue
        module = _import_node(n, node, dt)
        key = n.replace(".", "_")
        modules[key] = module
        alias[n] = key
        wiring[key] = srcs
    # a chain input -> a -> b -> ... -> output becomes an nn.Sequential
    keys = list(modules)
    chain = ["input"] + keys
    if all(wiring[k] == [chain[i]] for i, k in enumerate(keys)) and out_srcs == [chain[-1]]:
        return nn.Sequential(modules)
    return NIRGraphModule(modules, wiring, out_srcs)
