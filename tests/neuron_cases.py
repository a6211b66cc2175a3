"""The neuron configurations every family-wide property test runs: one list, derived from the package.

Every neuron class that ``snnedu`` exports (a :class:`snnedu.BaseNeuron` subclass in ``snnedu.__all__``:
IF, LIF, PLIF, MLF, PMLF, PMLF3, ALIF, and whatever family is added next) gets the generic settings
below, which every neuron accepts (reset kind, surrogate, learned thresholds, ``detach_reset``).
:data:`SPECIFIC` adds the settings only one class has (LIF's Form B and STBP form, PLIF's per-neuron
time constants, ...). A new family therefore goes through every property test that reads
:data:`CASES` without any test being edited; ``test_every_exported_neuron_class_is_covered`` checks it.
"""
from __future__ import annotations

from typing import Callable, Dict

import torch

import snnedu
from snnedu.neurons import BaseNeuron


def neuron_classes() -> Dict[str, type]:
    """Every neuron class ``snnedu`` exports, by name."""
    out = {}
    for name in snnedu.__all__:
        obj = getattr(snnedu, name)
        if isinstance(obj, type) and issubclass(obj, BaseNeuron) and obj is not BaseNeuron:
            out[name] = obj
    return dict(sorted(out.items()))


#: settings every neuron accepts, by suffix ("" is the default constructor)
GENERIC = {
    "": {},
    "-soft-sigmoid": dict(v_reset=None, surrogate="sigmoid"),
    "-threshold-neuron-detach-triangle": dict(learn_threshold="neuron", threshold_noise=0.05, detach_reset=True,
                                              surrogate="triangle"),
    "-threshold-layer-vr": dict(learn_threshold=True, v_reset=-0.2),
}

#: settings of one class only, by case name -> factory
SPECIFIC: Dict[str, Callable[[], BaseNeuron]] = {
    "LIF-formB": lambda: snnedu.LIF(tau=3.0, decay_input=False),
    "LIF.stbp": lambda: snnedu.LIF.stbp(decay=0.5),
    "STL": lambda: snnedu.LIF.stbp(decay=0.5, surrogate="atan", learn_threshold="neuron", threshold_noise=1e-2),
    "PLIF-neuron": lambda: snnedu.PLIF(per_neuron=True, tau_std=0.2, detach_reset=True),
    "PMLF-per-level": lambda: snnedu.PMLF(K=3, per_level=True),
    "MLF-K2": lambda: snnedu.MLF(K=2),
    "ALIF-formB-slow": lambda: snnedu.ALIF(tau=4.0, tau_a=30.0, beta=0.5, decay_input=False),
}


def _cases() -> Dict[str, Callable[[], BaseNeuron]]:
    cases = {}
    for name, cls in neuron_classes().items():
        for suffix, kw in GENERIC.items():
            cases[name + suffix] = lambda cls=cls, kw=kw: cls(**kw)
    cases.update(SPECIFIC)
    return cases


#: case name -> a factory of a fresh module (seed first where its initial values are random)
CASES: Dict[str, Callable[[], BaseNeuron]] = _cases()


def is_lazy(make: Callable[[], BaseNeuron]) -> bool:
    """Whether the module has lazily shaped (per-neuron) parameters: its sample shape is then fixed by
    its first input."""
    return any(isinstance(p, torch.nn.parameter.UninitializedParameter) for p in make().parameters())


def family_factory(name: str) -> Callable[..., BaseNeuron]:
    """``make(**kw)`` for the class ``name`` (its default settings plus ``kw``)."""
    cls = neuron_classes()[name]
    return lambda **kw: cls(**kw)
