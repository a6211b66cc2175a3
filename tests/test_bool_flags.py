"""Every boolean parameter of the public API refuses non-bool values (issue #15 item 6).

``detach_reset="False"``, ``record="no"``, ``decay_input="False"`` and ``PLIF(per_neuron="no")`` all
used to become True (a non-empty string is truthy), and a quoted ``"false"`` in a YAML config reached
that path. The list of boolean parameters is found by introspection (every public callable of every
snnedu module, each parameter with a bool default or annotation), so a new one without a check fails
here until it is added to ``CALLS``.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import yaml

import snnedu
from snnedu.errors import HyperParameterError

# result records that snnedu fills in, not settings a user passes
EXCLUDED = {("snnedu.data.common.DataSplit", "offline_standin"), ("snnedu.data.frame_cache.BuildReport", "existed"),
            ("snnedu.distributed.DistInfo", "distributed")}
SKIP_MODULES = {"snnedu.study", "snnedu.stats", "snnedu.__main__"}


def _public_bool_parameters() -> set:
    found = set()
    names = ["snnedu"] + [m.name for m in pkgutil.walk_packages(snnedu.__path__, "snnedu.")]
    for mod_name in names:
        if mod_name in SKIP_MODULES or mod_name.rsplit(".", 1)[-1].startswith("_"):
            continue
        mod = importlib.import_module(mod_name)
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name, None)
            targets = []
            if inspect.isclass(obj):
                targets.append((f"{obj.__module__}.{obj.__qualname__}", obj.__init__))
                targets += [(f"{obj.__module__}.{obj.__qualname__}.{a}", getattr(obj, a)) for a, v in vars(obj).items()
                            if isinstance(v, (staticmethod, classmethod)) and not a.startswith("_")]
            elif callable(obj):
                targets.append((f"{obj.__module__}.{getattr(obj, '__qualname__', name)}", obj))
            for qual, fn in targets:
                try:
                    params = inspect.signature(fn).parameters.values()
                except (TypeError, ValueError):
                    continue
                for p in params:
                    if isinstance(p.default, bool) or p.annotation in (bool, "bool"):
                        found.add((qual, p.name))
    return found - EXCLUDED


def _x():
    return torch.rand(3, 2, 4)


def _neuron():
    return snnedu.LIF()


def _call(fn, *args, **fixed):
    return lambda **bad: fn(*args, **fixed, **bad)


def _alif_step():
    from snnedu.alif import alif_step
    return alif_step


def _ALIF_PARAMS(sg):  # noqa: N802 - a constant's spirit, built per call
    return dict(surrogate=sg, k=0.5, v_threshold=1.0, beta=0.1, rho=0.9)


def _spec_fields():
    from snnedu.kernels import common as kcommon
    return dict(layout=kcommon.Layout(1, 1, 1, (1,)), charge=kcommon.Charge.IF, hard_reset=True, v_reset=0.0,
                detach_reset=False, surrogate=kcommon.SurrogateKind.ATAN, surrogate_param=2.0)


def _calls():
    from snnedu.kernels import alif_cpu, alif_triton
    from snnedu.kernels import common as kcommon
    _SPEC_FIELDS = _spec_fields()  # noqa: N806
    from snnedu import config, determinism, distributed, functional, kernels, layers, monitor, viz
    from snnedu.data import aedat, cifar10, common, dvs, events, frame_cache, mnist, nmnist, standins, tonic_adapter
    from snnedu.decay import LearnableDecay
    from snnedu.kernels import cpu
    from snnedu.kernels import triton_neuron
    from snnedu.models import resnet, static
    from snnedu.neuron_param import NeuronParameter
    from snnedu.threshold import LearnableThreshold

    sg = functional.surrogate.ATan() if hasattr(functional, "surrogate") else None
    return {
        "snnedu._checks.set_input_checks": _call(snnedu.set_input_checks),
        "snnedu.config.run.build_data": _call(config.build_data, {}),
        "snnedu.config.run.run_config": _call(config.run_config, {}),
        "snnedu.config.schema.Field": _call(config.Field, int),
        "snnedu.config.registry.Arch": lambda **bad: config.Arch(**{"build": None, "takes": "static", **bad}),
        "snnedu.config.registry.Dataset": lambda **bad: config.Dataset(**{"n_classes": 10, "events": False,
                                                                         "input_shape": None, "load": None, **bad}),
        "snnedu.data.aedat.read_aedat20": _call(aedat.read_aedat20, "unused"),
        "snnedu.data.aedat.read_aedat31": _call(aedat.read_aedat31, "unused"),
        "snnedu.data.aedat.write_aedat20": _call(aedat.write_aedat20, "unused", None),
        "snnedu.data.aedat.write_aedat31": _call(aedat.write_aedat31, "unused", None),
        "snnedu.data.aedat.write_gesture_labels": _call(aedat.write_gesture_labels, "unused", []),
        "snnedu.data.cifar10.CIFAR10Dataset": _call(cifar10.CIFAR10Dataset, torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
                                                    torch.zeros(2, dtype=torch.long)),
        "snnedu.data.cifar10.load_cifar10": _call(cifar10.load_cifar10),
        "snnedu.data.common.local_or_download": _call(common.local_or_download, Path("unused"), None, None),
        "snnedu.data.dvs.load_cifar10_dvs": _call(dvs.load_cifar10_dvs),
        "snnedu.data.dvs.load_dvs128_gesture": _call(dvs.load_dvs128_gesture),
        "snnedu.data.dvs.preprocess": _call(dvs.preprocess, "dvs128-gesture", "unused", None),
        "snnedu.data.standins.write_cifar10dvs_standin": _call(standins.write_cifar10dvs_standin, "unused"),
        "snnedu.data.standins.write_gesture_standin": _call(standins.write_gesture_standin, "unused"),
        "snnedu.data.events.make_events": _call(events.make_events, [0], [0], [0], [0]),
        "snnedu.data.frame_cache.build_frame_cache": _call(frame_cache.build_frame_cache, "unused", {}, [], None,
                                                           frame_shape=(1, 2, 1, 1)),
        "snnedu.data.mnist.load_mnist": _call(mnist.load_mnist),
        "snnedu.data.nmnist.load_nmnist": _call(nmnist.load_nmnist),
        "snnedu.data.nmnist.write_nmnist_standin": _call(nmnist.write_nmnist_standin, "unused"),
        "snnedu.data.tonic_adapter.from_tonic": _call(tonic_adapter.from_tonic, [], T=1),
        "snnedu.decay.LearnableDecay": _call(LearnableDecay),
        "snnedu.determinism.deterministic": _call(determinism.deterministic),
        "snnedu.determinism.set_deterministic": _call(determinism.set_deterministic),
        "snnedu.distributed.distributed_loader": _call(distributed.distributed_loader, [], 1),
        "snnedu.distributed.wrap_ddp": _call(distributed.wrap_ddp, nn.Linear(1, 1)),
        "snnedu.functional.neuron.charge": _call(functional.charge, torch.zeros(2), torch.zeros(2), 0.5),
        "snnedu.functional.neuron.neuron_multistep": _call(functional.neuron_multistep, _x(), surrogate=sg),
        "snnedu.functional.neuron.state_multistep": _call(functional.state_multistep, _alif_step(), _x(),
                                                          **_ALIF_PARAMS(sg)),
        "snnedu.alif.alif_step": _call(_alif_step(), _x()[0], None, **_ALIF_PARAMS(sg)),
        "snnedu.alif.ALIF": _call(snnedu.ALIF),
        "snnedu.functional.neuron.neuron_step": _call(functional.neuron_step, torch.zeros(2), None, surrogate=sg),
        "snnedu.functional.neuron.reset_potential": _call(functional.reset_potential, torch.zeros(2),
                                                          torch.zeros(2), 1.0),
        "snnedu.kernels.chosen_backend": _call(kernels.chosen_backend, _x(), sg),
        "snnedu.kernels.multistep": _call(kernels.multistep, _x(), surrogate=sg),
        "snnedu.kernels.cpu.cpu_multistep": _call(cpu.cpu_multistep, _x(), surrogate=sg),
        "snnedu.kernels.common.MultistepSpec": lambda **bad: kcommon.MultistepSpec(**{**_SPEC_FIELDS, **bad}),
        "snnedu.kernels.common.MultistepSpec.of_operator": lambda **bad: kcommon.MultistepSpec.of_operator(**{
            "x": torch.zeros(1, 1, 1), "v0": torch.zeros(1, 1, 1), "vr": 0.0, "charge": 1, "hard": True,
            "detach": False, "sg_kind": 2, "sg_p": 2.0, **bad}),
        "snnedu.kernels.common.MultistepSpec.build": _call(kcommon.MultistepSpec.build, _x(), None, surrogate=sg),
        "snnedu.kernels.alif_cpu.alif_cpu_multistep": _call(alif_cpu.alif_cpu_multistep, _x(), **_ALIF_PARAMS(sg)),
        "snnedu.kernels.alif_triton.alif_triton_multistep": _call(alif_triton.alif_triton_multistep, _x(),
                                                                  **_ALIF_PARAMS(sg)),
        "snnedu.kernels.triton_neuron.triton_multistep": _call(triton_neuron.triton_multistep, _x(), surrogate=sg),
        "snnedu.layers.tdBN": _call(layers.tdBN, 4, 1.0),
        "snnedu.layers.tdBN1d": _call(layers.tdBN1d, 4, 1.0),
        "snnedu.layers.tdBN2d": _call(layers.tdBN2d, 4, 1.0),
        "snnedu.models.resnet.SpikingBasicBlock": _call(resnet.SpikingBasicBlock, 4, 4, neuron=_neuron,
                                                        v_threshold=1.0),
        "snnedu.models.resnet.SpikingResNet": _call(resnet.SpikingResNet, (1,), (4,), neuron=_neuron, v_threshold=1.0),
        "snnedu.models.resnet.resnet19": _call(resnet.resnet19, neuron=_neuron),
        "snnedu.models.static.SpikingMLP": _call(static.SpikingMLP, input_shape=(4,), hidden=(4,), n_classes=2),
        "snnedu.monitor.Monitor": _call(monitor.Monitor, nn.Linear(1, 1)),
        "snnedu.neuron_param.NeuronParameter": _call(NeuronParameter),
        "snnedu.neurons.BaseNeuron": _call(snnedu.neurons.BaseNeuron),
        "snnedu.neurons.IF": _call(snnedu.IF),
        "snnedu.neurons.LIF": _call(snnedu.LIF),
        "snnedu.neurons.LIF.stbp": _call(snnedu.LIF.stbp),
        "snnedu.neurons.MLF": _call(snnedu.MLF),
        "snnedu.neurons.PLIF": _call(snnedu.PLIF),
        "snnedu.neurons.PMLF": _call(snnedu.PMLF),
        "snnedu.neurons.PMLF3": _call(snnedu.PMLF3),
        "snnedu.threshold.LearnableThreshold": _call(LearnableThreshold),
        "snnedu.train.evaluate": _call(snnedu.evaluate, nn.Linear(1, 1), [(torch.zeros(1, 1), torch.zeros(1).long())]),
        "snnedu.train.fit": _call(snnedu.fit, nn.Linear(1, 1), [(torch.zeros(1, 1), torch.zeros(1).long())],
                                  device="cpu"),
        "snnedu.viz.plot_surrogate": _call(viz.plot_surrogate, "atan"),
        "snnedu.viz.study_bars": _call(viz.study_bars, {"cells": {}}, [], [], []),
    }


PARAMS = sorted(_public_bool_parameters())


def test_every_public_boolean_parameter_is_listed_here():
    calls = _calls()
    assert len(PARAMS) >= 90
    unlisted = sorted({q for q, _ in PARAMS} - set(calls))
    assert not unlisted, f"boolean parameters of {unlisted} have no entry in CALLS"


@pytest.mark.parametrize("qual, name", PARAMS, ids=[f"{q.replace('snnedu.', '')}:{n}" for q, n in PARAMS])
def test_boolean_parameter_rejects_strings_and_numbers(qual, name):
    call = _calls()[qual]
    for bad in ("False", "no", "", 1, 0, 2.0, None if name != "amp" else "true"):
        with pytest.raises(HyperParameterError, match=name):
            call(**{name: bad})


def test_a_quoted_false_in_a_config_is_refused(tmp_path):
    base = {"name": "t", "data": {"dataset": "mnist", "T": 2, "batch_size": 8},
            "model": {"arch": "spiking_mlp", "neuron": {"type": "LIF", "detach_reset": "false"}},
            "train": {"epochs": 1, "lr": 0.01}}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(base))
    with pytest.raises(snnedu.config.ConfigError, match=r"model.neuron: .*detach_reset must be True or False"):
        snnedu.config.load_config(p)
    base["model"]["neuron"] = {"type": "LIF"}
    for section, field in (("data", "augment"), ("data", "offline_fallback"), ("model", "ds"),
                           ("model", "batch_norm"), ("train", "amp")):
        cfg = yaml.safe_load(yaml.safe_dump(base))
        cfg[section][field] = "false"
        p.write_text(yaml.safe_dump(cfg))
        with pytest.raises(snnedu.config.ConfigError, match=rf"{section}.{field}: expected bool"):
            snnedu.config.load_config(p)
    # the neuron still accepts real booleans and numpy booleans
    import numpy as np
    assert snnedu.LIF(detach_reset=np.bool_(True)).detach_reset is True
    assert snnedu.PLIF(per_neuron=False, decay_input=False, record=True).record is True
