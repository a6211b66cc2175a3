r"""Observe a spiking network without changing it: firing rates, dormant, dead and saturated units, gradient
coverage of the surrogate, synaptic operations (SOP) and an energy estimate.

:class:`Monitor` attaches forward hooks to every spiking layer (:class:`snnedu.neurons.BaseNeuron`, multi-step
calls) and every synaptic layer (``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``, also inside
:class:`snnedu.TimeDistributed`) and accumulates over all the batches it sees:

Per spiking layer (``N`` neurons per sample, output ``[T, B, ...]``):

- ``firing_rate`` — spikes per neuron and time step, :math:`\frac{\sum S}{T B N}` (a multi-level unit
  counts a level-3 output as three spikes, so it can exceed 1);
- ``dormant`` — fraction of (sample, neuron) pairs that never fire during the ``T`` steps;
- ``saturated`` — fraction of (sample, neuron) pairs that fire at every step;
- ``dead`` — fraction of neurons that never fired for any sample the monitor saw;
- ``coverage`` (with ``coverage=True``) — fraction of (step, sample, neuron) entries where the
  surrogate derivative is non-zero at some level, i.e. the units that pass a gradient. Meaningful for
  compact surrogates (rectangular, triangle); smooth ones (atan, sigmoid) are non-zero everywhere.

Per synaptic layer: ``sop`` — synaptic operations driven by spikes: every input spike (value ``v``
counts ``v`` times) triggers one accumulate per outgoing connection; ``mac`` — dense
multiply-accumulates for layers whose input is not a spike train (the first layer under direct
encoding). Energy estimate:

.. math:: E = E_{AC}\cdot \mathrm{SOP} + E_{MAC}\cdot \mathrm{MAC},\qquad
          E_{AC} = 0.9\ \mathrm{pJ},\ E_{MAC} = 4.6\ \mathrm{pJ}

the 32-bit floating-point add and multiply-add energies of a 45 nm CMOS process (Horowitz, ISSCC 2014),
the constants most SNN papers use. It counts arithmetic only (no memory traffic, no neuron updates,
BatchNorm folded into the weights), so compare networks with it; do not read it as a chip's power.

Example::

    >>> with Monitor(model, coverage=True) as mon:
    ...     snnedu.evaluate(model, test_loader)
    >>> print(mon.table())
    >>> mon.energy_per_sample()      # joules per test sample
"""
from __future__ import annotations

import math
from typing import Dict, List

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import flag
from .neurons import BaseNeuron

__all__ = ["Monitor", "E_AC", "E_MAC", "synaptic_ops"]

E_AC = 0.9e-12   # J per accumulate (32-bit float add, 45 nm; Horowitz 2014)
E_MAC = 4.6e-12  # J per multiply-accumulate (32-bit float mult 3.7 pJ + add 0.9 pJ)

_SYNAPSES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _is_spike_train(x: torch.Tensor) -> bool:
    """Non-negative integer values only (0/1 spikes, multi-level counts, sums of spike tensors)."""
    return bool(((x >= 0) & (x == torch.round(x))).all())


def synaptic_ops(layer: nn.Module, x: torch.Tensor) -> float:
    """Accumulates triggered by input ``x`` in ``layer``: each unit of input value at each position
    times the number of outgoing connections of that position (exact at padded borders)."""
    x = x.detach().float()
    if isinstance(layer, nn.Linear):
        return float(x.sum()) * layer.out_features
    conv = F.conv1d if isinstance(layer, nn.Conv1d) else F.conv2d
    g = layer.groups
    ones = torch.ones(g, layer.in_channels // g, *layer.kernel_size, device=x.device)
    if layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        # same-size convolutions etc.: fall back to input-count x fan-out (ignores borders)
        fan_out = layer.out_channels // g * math.prod(layer.kernel_size)
        return float(x.sum()) * fan_out / math.prod(layer.stride)
    recv = conv(x, ones, stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=g)
    return float(recv.sum()) * (layer.out_channels // g)


def _dense_macs(layer: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    if isinstance(layer, nn.Linear):
        return float(x.numel() // layer.in_features) * layer.in_features * layer.out_features
    per_out = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
    return float(y.numel()) * per_out


class Monitor:
    """Forward hooks that accumulate spiking statistics and operation counts (see the module docs).

    Args:
        model (nn.Module): any network built from snnedu neurons and torch layers.
        coverage (bool): also measure surrogate-gradient coverage (turns ``record`` on in the neurons
            while attached; restored on :meth:`detach`); default ``False``.

    Use as a context manager (hooks removed on exit, also when the block raises) or call
    :meth:`attach` / :meth:`detach` (alias :meth:`close`).
    Only multi-step calls (``neuron(x_seq)``) are observed, not ``neuron.step``.
    """

    def __init__(self, model: nn.Module, coverage: bool = False):
        self.model = model
        self.coverage = flag("coverage", coverage)
        self.neuron_names = {m: n or type(m).__name__ for n, m in model.named_modules() if isinstance(m, BaseNeuron)}
        # a layer wrapped in TimeDistributed is named after its wrapper ("fc1", not "fc1.module")
        self.synapse_names = {m: (n[:-len(".module")] if n.endswith(".module") else n) or type(m).__name__
                              for n, m in model.named_modules() if isinstance(m, _SYNAPSES)}
        self._handles: list = []
        self._saved_record: Dict[nn.Module, bool] = {}
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------------
    def reset(self) -> "Monitor":
        """Forget everything accumulated so far."""
        self._neuron: Dict[nn.Module, dict] = {}
        self._synapse: Dict[nn.Module, dict] = {}
        return self

    def attach(self) -> "Monitor":
        if self._handles:
            return self
        for m in self.neuron_names:
            self._handles.append(m.register_forward_hook(self._neuron_hook))
            if self.coverage:
                self._saved_record[m] = m.record
                m.record = True
        for m in self.synapse_names:
            self._handles.append(m.register_forward_hook(self._synapse_hook))
        return self

    def detach(self) -> "Monitor":
        for h in self._handles:
            h.remove()
        self._handles = []
        for m, rec in self._saved_record.items():
            m.record = rec
            if not rec:
                m.h_seq = m.v_seq = None
        self._saved_record = {}
        return self

    def close(self) -> "Monitor":
        """Same as :meth:`detach`: remove every hook (the statistics stay readable). Safe to call twice."""
        return self.detach()

    def __enter__(self) -> "Monitor":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    # -- hooks -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def _neuron_hook(self, module, inputs, out) -> None:
        s = out.detach().float()
        T, B = s.shape[0], s.shape[1]
        flat = s.reshape(T, B, -1)
        n = flat.shape[2]
        st = self._neuron.get(module)
        if st is None:
            st = self._neuron[module] = {"spikes": 0.0, "slots": 0, "pairs": 0, "silent": 0, "saturated": 0,
                                         "samples": 0, "T": T, "fired": torch.zeros(n, dtype=torch.bool,
                                                                                    device=s.device),
                                         "covered": 0, "entries": 0, "neurons": n}
        fired_steps = (flat > 0).sum(0)                     # [B, N]
        st["spikes"] += float(flat.sum())
        st["slots"] += flat.numel()
        st["pairs"] += B * n
        st["silent"] += int((fired_steps == 0).sum())
        st["saturated"] += int((fired_steps == T).sum())
        st["samples"] += B
        st["fired"] |= (fired_steps > 0).any(0)
        if self.coverage and module.h_seq is not None:
            h = module.h_seq.float()
            sample_ndim = out.dim() - 2
            th = module.threshold(sample_ndim, like=h)
            if isinstance(th, torch.Tensor):
                th = th.detach()
            passes = module.surrogate.grad(h - th) > 0      # [T, (K,) B, ...]
            if module.levels > 1:
                passes = passes.any(1)
            st["covered"] += int(passes.sum())
            st["entries"] += passes.numel()

    @torch.no_grad()
    def _synapse_hook(self, module, inputs, out) -> None:
        x = inputs[0]
        st = self._synapse.setdefault(module, {"sop": 0.0, "mac": 0.0, "calls": 0})
        st["calls"] += 1
        if _is_spike_train(x):
            st["sop"] += synaptic_ops(module, x)
        else:
            st["mac"] += _dense_macs(module, x, out)

    # -- results ---------------------------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Samples seen (counted at the first spiking layer)."""
        return max((st["samples"] for st in self._neuron.values()), default=0)

    def neuron_stats(self) -> List[dict]:
        """One dict per spiking layer, in model order: ``layer``, ``type``, ``neurons``, ``firing_rate``,
        ``dormant``, ``saturated``, ``dead`` and (``coverage=True``) ``coverage``; fractions in [0, 1]."""
        rows = []
        for m, name in self.neuron_names.items():
            st = self._neuron.get(m)
            if st is None:
                continue
            row = {"layer": name, "type": type(m).__name__, "neurons": st["neurons"],
                   "firing_rate": st["spikes"] / st["slots"], "dormant": st["silent"] / st["pairs"],
                   "saturated": st["saturated"] / st["pairs"], "dead": 1.0 - float(st["fired"].float().mean())}
            if self.coverage and st["entries"]:
                row["coverage"] = st["covered"] / st["entries"]
            rows.append(row)
        return rows

    def synapse_stats(self) -> List[dict]:
        """One dict per synaptic layer: ``layer``, ``type``, ``sop`` and ``mac`` per sample."""
        n = max(self.n_samples, 1)
        return [{"layer": name, "type": type(m).__name__, "sop": self._synapse[m]["sop"] / n,
                 "mac": self._synapse[m]["mac"] / n}
                for m, name in self.synapse_names.items() if m in self._synapse]

    def sop_per_sample(self) -> float:
        return sum(r["sop"] for r in self.synapse_stats())

    def mac_per_sample(self) -> float:
        return sum(r["mac"] for r in self.synapse_stats())

    def energy_per_sample(self, e_ac: float = E_AC, e_mac: float = E_MAC) -> float:
        """Estimated joules per sample: ``e_ac * SOP + e_mac * MAC`` (defaults: 0.9 pJ, 4.6 pJ)."""
        return e_ac * self.sop_per_sample() + e_mac * self.mac_per_sample()

    def mean(self, key: str = "firing_rate") -> float:
        """Neuron-weighted mean of a per-layer statistic over all spiking layers."""
        rows = self.neuron_stats()
        total = sum(r["neurons"] for r in rows)
        if not total:
            return float("nan")
        return sum(r[key] * r["neurons"] for r in rows) / total

    def table(self) -> str:
        """A plain-text table of :meth:`neuron_stats` and the operation counts per sample."""
        rows = self.neuron_stats()
        cov = self.coverage and any("coverage" in r for r in rows)
        head = f"{'layer':28s} {'type':6s} {'neurons':>8s} {'rate':>7s} {'dormant':>8s} {'saturated':>9s} {'dead':>6s}"
        lines = [head + (f" {'coverage':>8s}" if cov else "")]
        for r in rows:
            line = (f"{r['layer'][:28]:28s} {r['type'][:6]:6s} {r['neurons']:8d} {r['firing_rate']:7.4f} "
                    f"{r['dormant']:8.3f} {r['saturated']:9.3f} {r['dead']:6.3f}")
            lines.append(line + (f" {r.get('coverage', float('nan')):8.3f}" if cov else ""))
        lines.append(f"per sample: {self.sop_per_sample():,.0f} SOP, {self.mac_per_sample():,.0f} MAC, "
                     f"~{self.energy_per_sample() * 1e6:.3f} uJ (0.9 pJ/AC, 4.6 pJ/MAC, 45 nm)")
        return "\n".join(lines)
