"""Experiment configs: one YAML file per paper setting, validated field by field, turned into a run.

A config has four sections (every field, its type and default are in :data:`SCHEMA`)::

    name: mlf_dsresnet20_cifar10            # the run's folder under --out
    source: "Feng et al. 2022 (MLF), DS-ResNet-20, CIFAR-10"
    data:   {dataset: cifar10, T: 4, batch_size: 64, encoding: direct}
    model:  {arch: resnet20, channels: [64, 128, 256], ds: true, v_threshold: 0.6,
             neuron: {type: MLF, K: 3, v_threshold: 0.6, a: 1.0, decay: 0.25}}
    train:  {epochs: 110, optimizer: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4,
             scheduler: {type: step, step_size: 40, gamma: 0.1}, loss: ce, seed: 1}

:func:`load_config` reads and validates a file; any problem raises :class:`ConfigError` with one line
naming the field (``model.neuron.type: unknown value 'XLIF'; allowed: ...``). :func:`run_config`
trains it with :func:`snnedu.fit` (progress bars, a checkpoint every epoch and automatic resume,
TensorBoard logs) and writes ``result.json`` (accuracy, epochs, device, data used, wall time).
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn as nn

from ._checks import flags, short_repr
from ._io import atomic_write
from .base import materialize
from .errors import SnneduError

__all__ = ["ConfigError", "SCHEMA", "NEURONS", "load_config", "read_yaml", "validate_config", "build_model",
           "build_data", "run_config"]


class ConfigError(SnneduError, ValueError):
    """A config file is unreadable or a field is missing, of the wrong type or out of range."""


REQUIRED = object()


class F:
    """One field: expected type(s), default (``REQUIRED`` if none), allowed values, a range check
    (``low``; ``high``, the largest allowed value, bounds sizes before anything is allocated)."""

    def __init__(self, types, default=REQUIRED, choices=None, low=None, low_open=False, doc="", high=None):
        self.types = types if isinstance(types, tuple) else (types,)
        self.default, self.choices, self.low, self.low_open, self.doc = default, choices, low, low_open, doc
        self.high = high
        # a list-valued field (channels, hidden) holds ints, each checked against ``low`` and ``high``


# generous bounds of the sizes a config may ask for: beyond them a run would try to allocate
# terabytes (data.T: 1000000000 passed `check` and then failed deep inside)
MAX_T = 10_000
MAX_BATCH = 65_536
MAX_WIDTH = 1 << 20
MAX_EPOCHS = 100_000
MAX_PER_CLASS = 10_000_000
MAX_STEPS = 10_000_000


NEURONS = {"IF", "LIF", "LIF.stbp", "PLIF", "MLF", "PMLF", "PMLF3", "ALIF"}
ARCHS = {"spiking_mlp", "spiking_cnn", "resnet14", "resnet19", "resnet20", "plif_static", "plif_dvs",
         "probe_linear", "probe_cnn"}  # the probes: non-spiking references on summed event frames
DVS_DATASETS = {"dvs128_gesture", "cifar10_dvs"}
DATASETS = {"mnist", "cifar10"} | DVS_DATASETS
N_CLASSES = {"mnist": 10, "cifar10": 10, "dvs128_gesture": 11, "cifar10_dvs": 10}

SCHEMA = {
    "name": F(str),
    "source": F(str, "", doc="the paper setting this config reproduces"),
    "data": {
        "dataset": F(str, choices=DATASETS),
        "root": F((str, type(None)), None),
        "T": F(int, low=1, high=MAX_T),
        "batch_size": F(int, low=1, high=MAX_BATCH),
        "test_batch_size": F(int, 256, low=1, high=MAX_BATCH),
        "encoding": F(str, "direct", choices={"direct", "poisson", "rows"},
                      doc="rows: one image row per step, then delay empty steps and cue steps (mnist only)"),
        "delay": F(int, 0, low=0, high=MAX_T, doc="encoding rows: empty steps between the last row and the cue"),
        "cue": F(int, 1, low=1, high=MAX_T, doc="encoding rows: steps of the cue channel"),
        "gain": F((int, float), 1.0, low=0.0, low_open=True, doc="encoding rows: scale of the pixels and the cue"),
        "augment": F(bool, True),
        "train_per_class": F((int, type(None)), None, low=1, high=MAX_PER_CLASS),
        "test_per_class": F((int, type(None)), None, low=1, high=MAX_PER_CLASS),
        "val_per_class": F((int, type(None)), None, low=1, high=MAX_PER_CLASS,
                           doc="hold out this many training samples per class as a validation split"),
        "offline_fallback": F(bool, True),
        # event data only (dvs128_gesture, cifar10_dvs): how recordings become T frames (chapter 8)
        "split_by": F(str, "number", choices={"number", "time", "duration"}),
        "size": F((int, type(None)), None, low=1, high=128, doc="frame height = width (default: the 128x128 sensor)"),
        "normalization": F((str, type(None)), None,
                           choices={None, "frequency", "max", "max_frame", "norm", "sum"}),
        "duration_us": F((int, type(None)), None, low=1, high=2**62),
        "standin": F((dict, type(None)), None, doc="keyword arguments of the offline stand-in generator"),
    },
    "model": {
        "arch": F(str, choices=ARCHS),
        "neuron": {"type": F(str, choices=NEURONS), "*": "neuron keyword arguments"},
        "v_threshold": F((int, float), 1.0, low=0.0, low_open=True),
        "channels": F((list, int, type(None)), None, low=1, high=MAX_WIDTH),
        "hidden": F((list, int, type(None)), None, low=1, high=MAX_WIDTH),
        "ds": F(bool, True),
        "batch_norm": F(bool, False, doc="spiking_mlp: BatchNorm1d (over T*B) between each Linear and its neuron"),
        "norm": F((str, type(None)), None, choices={None, "bn", "tdbn", "bn_step"},
                  doc="spiking_mlp: the normalisation before each neuron (bn = batch_norm: true; tdbn; bn_step)"),
        "residual": F(bool, True, doc="resnets: False drops every shortcut (the plain net of the same depth)"),
        "share_neuron": F(bool, False),
        "n_classes": F(int, 10, low=2, high=MAX_WIDTH),
        "input_norm": F(bool, False, doc="non-affine tdBN on the input frames (MLF's DVS ResNets)"),
        "n_down": F((int, type(None)), None, low=1, high=32, doc="plif_dvs, probe_cnn: conv-pool blocks (default: the preset's; probe_cnn 3)"),
        "readout_steps": F((int, type(None)), None, low=1, high=MAX_T,
                           doc="read out only the last this many steps (encoding rows: the cue steps)"),
    },
    "train": {
        "epochs": F(int, low=1, high=MAX_EPOCHS),
        "optimizer": F(str, "adam", choices={"adam", "sgd"}),
        "lr": F((int, float), low=0.0, low_open=True),
        "tau_lr": F((int, float, type(None)), None, low=0.0, low_open=True,
                    doc="learning rate of the learnable decays (PLIF tau, PMLF decay); default: lr"),
        "threshold_lr": F((int, float, type(None)), None, low=0.0, low_open=True,
                          doc="learning rate of the learnable thresholds (STL); default: lr"),
        "learning_mode": F((str, type(None)), None, choices={None, "SL", "TL", "STL"},
                           doc="STL's modes: train synapses only, thresholds only, or both"),
        "momentum": F((int, float), 0.9, low=0.0),
        "weight_decay": F((int, float), 0.0, low=0.0),
        "scheduler": {"type": F(str, "none", choices={"none", "step", "cosine"}),
                      "step_size": F(int, 30, low=1, high=MAX_STEPS), "gamma": F((int, float), 0.1, low=0.0),
                      "T_max": F((int, type(None)), None, low=1, high=MAX_STEPS)},
        "loss": F(str, "ce", choices={"ce", "tet", "mse"}),
        "tet_lambda": F((int, float), 1e-3, low=0.0),
        "tet_phi": F((int, float), 1.0),
        "tau_lambda": F((int, float), 0.0, low=0.0),
        "seed": F(int, 0),
        "amp": F((bool, type(None)), None),
        "grad_clip": F((int, float, type(None)), None, low=0.0, low_open=True,
                       doc="the largest gradient norm (> 0); null: no clipping"),
    },
}


# data.standin: the keyword arguments each offline stand-in generator takes (snnedu.data.dvs_sim),
# bounded so that a config cannot ask for a stand-in of millions of recordings
STANDIN = {
    "dvs128_gesture": {"n_train_users": F(int, low=1, high=1000), "n_test_users": F(int, low=0, high=1000),
                       "lightings": F((list, str)), "repeats": F(int, low=1, high=100),
                       "size": F(int, low=16, high=128), "seed": F(int, low=0), "root": F(str),
                       "progress": F(bool)},
    "cifar10_dvs": {"n_per_class": F(int, low=1, high=100_000), "size": F(int, low=16, high=128),
                    "seed": F(int, low=0), "root": F(str), "progress": F(bool)},
}


def _check_standin(d: dict) -> None:
    """``data.standin``: only the stand-in generator's own keyword arguments, with sane types and sizes."""
    given = d["standin"]
    if given is None:
        return
    if d["dataset"] not in STANDIN:
        raise ConfigError(f"data.standin: only for the event datasets ({', '.join(sorted(STANDIN))}); "
                          f"{d['dataset']} has no stand-in arguments")
    spec = STANDIN[d["dataset"]]
    for k in given:
        if k not in spec:
            shown = k if isinstance(k, str) and re.fullmatch(r"[A-Za-z_]\w{0,63}", k) else short_repr(k)
            raise ConfigError(f"data.standin.{shown}: not an argument of the {d['dataset']} stand-in; "
                              f"allowed: {', '.join(sorted(spec))}")
    _validate(given, {k: spec[k] for k in given}, "data.standin.")  # only what is given: the rest defaults
    names = given.get("lightings")
    names = [names] if isinstance(names, str) else names
    if names is not None and (not 1 <= len(names) <= 16 or not all(
            isinstance(n, str) and re.fullmatch(r"\w{1,32}", n) for n in names)):
        raise ConfigError(f"data.standin.lightings: expected 1 to 16 names of at most 32 letters, digits or '_', "
                          f"got {short_repr(given['lightings'])}")


def _validate(raw: Any, schema: dict, where: str) -> dict:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where.rstrip('.') or 'config'}: expected a mapping of fields, got {type(raw).__name__}")
    out = {}
    free = "*" in schema
    for key in raw:
        if key not in schema and not free:
            allowed = ", ".join(sorted(k for k in schema if k != "*"))
            shown = key if isinstance(key, str) and re.fullmatch(r"[A-Za-z_]\w{0,63}", key) else short_repr(key)
            raise ConfigError(f"{where}{shown}: unknown field; allowed here: {allowed}")
    for key, spec in schema.items():
        if key == "*":
            continue
        path = f"{where}{key}"
        if isinstance(spec, dict):
            out[key] = _validate(raw.get(key, {}), spec, path + ".")
            continue
        if key not in raw:
            if spec.default is REQUIRED:
                raise ConfigError(f"{path}: missing required field")
            out[key] = spec.default
            continue
        value = raw[key]
        if isinstance(value, bool) and bool not in spec.types:
            ok = False
        elif isinstance(value, int) and not isinstance(value, bool) and float in spec.types:
            try:
                ok, value = True, float(value)
            except OverflowError:
                raise ConfigError(f"{path}: must be a finite number, got an integer with "
                                  f"{value.bit_length()} bits") from None
        else:
            ok = isinstance(value, spec.types)
        if not ok:
            names = " or ".join(t.__name__ for t in spec.types).replace("NoneType", "null")
            raise ConfigError(f"{path}: expected {names}, got {short_repr(value)} ({type(value).__name__})")
        if spec.choices is not None and value not in spec.choices:
            raise ConfigError(f"{path}: unknown value {short_repr(value)}; allowed: "
                              f"{', '.join(sorted(map(str, spec.choices)))}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}: must be a finite number, got {value!r}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            raise ConfigError(f"{path}: integer too large ({value.bit_length()} bits; at most 63)")
        if isinstance(value, list) and spec.low is not None:
            _check_int_list(path, value, spec)
        if spec.low is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < spec.low or (spec.low_open and value == spec.low):
                raise ConfigError(f"{path}: must be {'>' if spec.low_open else '>='} {spec.low:g}, got {value!r}")
        if spec.high is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and value > spec.high:
            raise ConfigError(f"{path}: must be <= {spec.high} (the largest supported), got {value!r}")
        out[key] = value
    if free:
        out.update({k: v for k, v in raw.items() if k not in schema})
    return out


def _check_int_list(path: str, value: list, spec: F) -> None:
    """A list-valued field (``channels``, ``hidden``): a short non-empty list of ints within the bounds."""
    hi = f" and <= {spec.high}" if spec.high is not None else ""
    if not value or len(value) > 1000:
        raise ConfigError(f"{path}: expected a non-empty list of at most 1000 integers >= {spec.low:g}{hi}, "
                          f"got {short_repr(value)}")
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int)
           or (spec.low is not None and v < spec.low) or (spec.high is not None and v > spec.high)]
    if bad:
        raise ConfigError(f"{path}: expected a non-empty list of integers >= {spec.low:g}{hi}, "
                          f"got {short_repr(value)} (bad: {short_repr(bad[0])})")


def validate_config(raw: Any) -> dict:
    """Check every field of a parsed config and fill in the defaults (raises :class:`ConfigError`)."""
    cfg = _validate(raw, SCHEMA, "")
    _check_name(cfg["name"])
    _check_standin(cfg["data"])
    _cross_check(cfg)
    try:  # the neuron's own hyper-parameters are checked by the neuron itself
        _neuron_factory(cfg["model"]["neuron"])()
    except TypeError as e:
        m = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if m:
            raise ConfigError(f"model.neuron.{m.group(1)}: not a parameter of {cfg['model']['neuron']['type']}") from None
        raise ConfigError(f"model.neuron: {_one_line(e)}") from None
    except (SnneduError, ValueError, OverflowError) as e:
        raise ConfigError(f"model.neuron: {_one_line(e)}") from None
    return cfg


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def _check_name(name) -> str:
    """``name`` becomes the run's folder under ``--out``: one plain path component, so that no run
    writes outside its output folder (``../x``, ``/abs``, ``a/b`` are refused)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        shown = short_repr(name, 60)
        raise ConfigError(f"name: must be a plain folder name (letters, digits, '.', '_', '-', '+'; at most 128 "
                          f"characters; no '/', no '..'), got {shown}")
    return name


def _one_line(e: Exception, n: int = 300) -> str:
    text = " ".join(str(e).split())
    text = text if len(text) <= n else text[: n - 3] + "..."
    return text or type(e).__name__


def load_config(path) -> dict:
    """Read a YAML (or JSON) config file (:func:`read_yaml`) and validate it."""
    return validate_config(read_yaml(path))


MAX_YAML_BYTES = 1 << 20  # configs and study files are a few KB; with aliases refused, this bounds the parse


def read_yaml(path, error: type = ConfigError, what: str = "config file"):
    """Parse a YAML (or JSON) file strictly: duplicate keys and aliases are refused, and the file may
    hold at most ``MAX_YAML_BYTES`` (1 MiB), so the parsed value is as small as the file.
    The one loader of configs and study files.

    Args:
        path (str or Path): the file.
        error (type): the exception class raised, with one line naming the file, for any problem
            (default :class:`ConfigError`).
        what (str): what the file is, for the messages (default ``"config file"``).
    """
    import yaml

    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_YAML_BYTES + 1)
        if len(data) > MAX_YAML_BYTES:
            raise _YamlRefused(f"larger than {MAX_YAML_BYTES >> 20} MiB; a {what} is a few KB")
        return yaml.load(data.decode("utf-8"), Loader=_strict_loader())
    except _YamlRefused as e:
        raise error(f"{path}: {e}") from None
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot read the {what} ({(e.strerror or str(e)).lower()})") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not a text file (byte {e.start} is not UTF-8)") from None
    except yaml.YAMLError as e:
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise error(f"{path}: not valid YAML ({first.strip()[:200]})") from None
    except RecursionError:
        raise error(f"{path}: not valid YAML (nested too deeply)") from None


class _YamlRefused(Exception):
    """A YAML feature a config may not use (duplicate keys, aliases)."""


_LOADER = None


def _strict_loader():
    """``yaml.SafeLoader`` that refuses duplicate keys (PyYAML silently keeps the last) and aliases
    (``*name``, ``<<: *name``): a 1 KB file of nested aliases expands to gigabytes, and configs are
    short enough to write out."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class StrictLoader(yaml.SafeLoader):
            def compose_node(self, parent, index):
                if self.check_event(yaml.AliasEvent):
                    mark = self.peek_event().start_mark
                    raise _YamlRefused(f"line {mark.line + 1}: YAML aliases (*name) are not allowed here; "
                                       "write the value out")
                return super().compose_node(parent, index)

            def construct_mapping(self, node, deep=False):
                seen = set()
                for key_node, _ in node.value:
                    key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
                    if key in seen:
                        raise _YamlRefused(f"line {key_node.start_mark.line + 1}: duplicate key "
                                           f"{str(key)[:40]!r} (YAML would silently keep the last one)")
                    seen.add(key)
                return super().construct_mapping(node, deep=deep)

        _LOADER = StrictLoader
    return _LOADER


# -- building blocks ---------------------------------------------------------------------------------
def _neuron_factory(spec: dict):
    import snnedu  # every neuron class is exported at the top level, wherever its family is declared

    kwargs = {k: v for k, v in spec.items() if k != "type"}
    kind = spec["type"]
    if kind == "LIF.stbp":
        return lambda: snnedu.LIF.stbp(**kwargs)
    cls = getattr(snnedu, kind)
    return lambda: cls(**kwargs)


def _cross_check(cfg: dict) -> None:
    """Checks that involve two fields (the dataset decides the classes and which archs fit)."""
    m, d = cfg["model"], cfg["data"]
    dvs, arch = d["dataset"] in DVS_DATASETS, m["arch"]
    if m["n_classes"] != N_CLASSES[d["dataset"]]:
        raise ConfigError(f"model.n_classes: {d['dataset']} has {N_CLASSES[d['dataset']]} classes, "
                          f"got {m['n_classes']}")
    if dvs and arch in ("spiking_mlp", "spiking_cnn", "plif_static"):
        raise ConfigError(f"model.arch: {arch!r} takes static images; for {d['dataset']} use plif_dvs or a resnet")
    if m["norm"] is not None and arch != "spiking_mlp":
        raise ConfigError(f"model.norm: only for spiking_mlp (the other archs fix their own normalisation), "
                          f"got arch {arch!r}")
    if m["batch_norm"] and m["norm"] not in (None, "bn"):
        raise ConfigError(f"model.batch_norm: true is model.norm: bn; got both it and norm {m['norm']!r}")
    if not m["residual"] and not arch.startswith("resnet"):
        raise ConfigError(f"model.residual: only for the resnets, got arch {arch!r}")
    if m["batch_norm"] and arch != "spiking_mlp":
        raise ConfigError(f"model.batch_norm: only for spiking_mlp (the other archs fix their own normalisation), "
                          f"got arch {arch!r}")
    if not dvs and arch in ("plif_dvs", "probe_linear", "probe_cnn"):
        raise ConfigError(f"model.arch: {arch!r} takes event frames; data.dataset is {d['dataset']!r}")
    if not dvs and any(d[k] is not None for k in ("size", "normalization", "duration_us")):
        raise ConfigError("data.size / data.normalization / data.duration_us: only for event data")
    if d["encoding"] == "rows":
        if d["dataset"] != "mnist" or arch != "spiking_mlp":
            raise ConfigError(f"data.encoding: rows takes mnist and arch spiking_mlp, got {d['dataset']!r} and {arch!r}")
        if d["T"] != 28 + d["delay"] + d["cue"]:
            raise ConfigError(f"data.T: with encoding rows, T is 28 rows + delay + cue = {28 + d['delay'] + d['cue']}, "
                              f"got {d['T']}")
    elif (d["delay"], d["cue"], d["gain"]) != (0, 1, 1.0):
        raise ConfigError("data.delay / data.cue / data.gain: only for data.encoding: rows")
    if m["readout_steps"] is not None and arch not in ("spiking_mlp", "spiking_cnn") and not arch.startswith("resnet"):
        raise ConfigError(f"model.readout_steps: only for spiking_mlp, spiking_cnn and the resnets, got arch {arch!r}")
    if m["readout_steps"] is not None and m["readout_steps"] > d["T"]:
        raise ConfigError(f"model.readout_steps ({m['readout_steps']}) exceeds data.T ({d['T']})")
    if d["split_by"] == "duration" and d["duration_us"] is None:
        raise ConfigError("data.duration_us: required with data.split_by: duration")


def build_model(cfg: dict) -> nn.Module:
    """The network of ``cfg['model']``, with the encoder in front where the data are static images."""
    from . import models
    from .encoding import DirectEncoder, PoissonEncoder, RowEncoder
    from .layers import LastSteps

    m, d = cfg["model"], cfg["data"]
    neuron = _neuron_factory(m["neuron"])
    dvs = d["dataset"] in DVS_DATASETS
    _cross_check(cfg)
    size = d["size"] or 128
    in_shape = (2, size, size) if dvs else {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}[d["dataset"]]
    if d["encoding"] == "rows":
        in_shape = (in_shape[2] + 1,)  # one row of pixels and the cue channel per step
    arch = m["arch"]
    kw = {}
    if m["channels"] is not None:
        kw["channels"] = m["channels"]
    if arch == "spiking_mlp":
        net = models.SpikingMLP(input_shape=in_shape, hidden=tuple(m["hidden"] or (256,)), n_classes=m["n_classes"],
                                neuron=neuron, batch_norm=m["batch_norm"], norm=m["norm"])
    elif arch == "spiking_cnn":
        net = models.SpikingCNN(input_shape=in_shape, n_classes=m["n_classes"], neuron=neuron, **kw)
    elif arch in ("resnet14", "resnet19", "resnet20"):
        if arch == "resnet19" and m["hidden"] is not None:
            kw["hidden"] = m["hidden"]
        net = getattr(models, arch)(neuron=neuron, v_threshold=m["v_threshold"], in_channels=in_shape[0],
                                    n_classes=m["n_classes"], ds=m["ds"], share_neuron=m["share_neuron"],
                                    input_norm=m["input_norm"], residual=m["residual"], **kw)
    elif arch in ("probe_linear", "probe_cnn"):  # non-spiking references on the summed frames (no neuron used)
        if isinstance(m["channels"], list):
            raise ConfigError("model.channels: probe_cnn takes one int (conv width)")
        if arch == "probe_linear":
            return models.LinearProbe(in_channels=2, input_size=size, n_classes=m["n_classes"])
        try:
            return models.FrameCNN(in_channels=2, input_size=size, n_classes=m["n_classes"],
                                   channels=m["channels"] or 16, n_down=m["n_down"] or 3)
        except SnneduError as e:
            raise ConfigError(f"model: {e}") from None
    elif arch == "plif_dvs":  # the PLIF paper's event-frame network; frames come in as [T, B, 2, H, W]
        if isinstance(m["hidden"], list) or isinstance(m["channels"], list):
            raise ConfigError("model.hidden / model.channels: plif_dvs takes one int each (FC width, conv channels)")
        preset = {"dvs128_gesture": 5, "cifar10_dvs": 4}[d["dataset"]]
        try:
            return models.PLIFDVSNet(in_channels=2, input_size=size, n_down=m["n_down"] or preset,
                                     n_classes=m["n_classes"], neuron=neuron, fc_hidden=m["hidden"], **kw)
        except SnneduError as e:
            raise ConfigError(f"model: {e}") from None
    else:  # arch == "plif_static": the PLIF paper's static network takes the static batch itself
        if isinstance(m["hidden"], list):
            raise ConfigError("model.hidden: plif_static takes one FC width (int), e.g. 2048")
        return models.PLIFStaticNet(dataset=d["dataset"], T=d["T"], n_classes=m["n_classes"], neuron=neuron,
                                    fc_hidden=m["hidden"] or 2048, **kw)
    tail = [] if m["readout_steps"] is None else [LastSteps(m["readout_steps"])]
    if dvs:
        return nn.Sequential(net, *tail) if tail else net  # event frames are already a sequence of T inputs
    if d["encoding"] == "rows":
        encoder = RowEncoder(delay=d["delay"], cue=d["cue"], gain=d["gain"])
    else:
        encoder = (DirectEncoder if d["encoding"] == "direct" else PoissonEncoder)(d["T"])
    return nn.Sequential(encoder, net, *tail)


@flags("with_val")
def build_data(cfg: dict, with_val: bool = False):
    """``(DataSplit, train_loader, test_loader)`` of ``cfg['data']`` (prints which data is used).

    With ``with_val=True`` it returns ``(DataSplit, train_loader, val_loader, test_loader)``: where
    ``data.val_per_class`` is set, the last that many training samples of every class are held out
    of training as a validation split (``val_loader`` is None otherwise)."""
    from torch.utils.data import DataLoader

    from .data import DataSplit, load_mnist, make_loaders, take_per_class
    from .data.common import _collate_fn, hold_out_per_class

    d = cfg["data"]
    if d["dataset"] in DVS_DATASETS:
        from .data import load_cifar10_dvs, load_dvs128_gesture

        loader = load_dvs128_gesture if d["dataset"] == "dvs128_gesture" else load_cifar10_dvs
        split = loader(d["root"], T=d["T"], split_by=d["split_by"], size=d["size"] or 128,
                       normalization=d["normalization"], duration_us=d["duration_us"],
                       offline_fallback=d["offline_fallback"], augment=d["augment"], seed=cfg["train"]["seed"],
                       standin_kwargs=d["standin"])
    elif d["dataset"] == "mnist":
        split = load_mnist(root=d["root"], offline_fallback=d["offline_fallback"])
    else:
        from .data import load_cifar10

        split = load_cifar10(root=d["root"], offline_fallback=d["offline_fallback"], augment=d["augment"],
                             seed=cfg["train"]["seed"])
    val = None
    if d["val_per_class"]:
        try:
            train, val = hold_out_per_class(split.train, d["val_per_class"])
        except ValueError as e:
            raise ConfigError(f"data.val_per_class: {e}") from None
        split = DataSplit(train, split.test, split.source, split.offline_standin)
    if d["train_per_class"] or d["test_per_class"] or val is not None:
        train = take_per_class(split.train, d["train_per_class"]) if d["train_per_class"] else split.train
        test = take_per_class(split.test, d["test_per_class"]) if d["test_per_class"] else split.test
        held = f" + {len(val)} validation held out of training" if val is not None else ""
        split = DataSplit(train, test, f"{split.source} (subset: {len(train)} train{held} / {len(test)} test)",
                          split.offline_standin)
    train_loader, test_loader = make_loaders(split, batch_size=d["batch_size"], seed=cfg["train"]["seed"],
                                             test_batch_size=d["test_batch_size"])
    if not with_val:
        return split, train_loader, test_loader
    val_loader = None if val is None else DataLoader(val, batch_size=d["test_batch_size"], shuffle=False,
                                                     collate_fn=_collate_fn(val))
    return split, train_loader, val_loader, test_loader


def _param_groups(cfg: dict, model: nn.Module) -> list:
    """Optimizer groups: the learnable decays at ``train.tau_lr`` and the learnable thresholds at
    ``train.threshold_lr`` where those are set, everything else at ``train.lr``; frozen parameters
    (``requires_grad=False``, e.g. under a learning mode) are left out."""
    from .decay import decay_parameters
    from .threshold import threshold_parameters

    t = cfg["train"]
    special = []
    if t["tau_lr"] is not None:
        special.append((t["tau_lr"], list(decay_parameters(model))))
    if t["threshold_lr"] is not None:
        special.append((t["threshold_lr"], list(threshold_parameters(model))))
    taken = {id(p) for _, ps in special for p in ps}
    groups = [{"params": [p for p in model.parameters() if p.requires_grad and id(p) not in taken], "lr": t["lr"]}]
    groups += [{"params": [p for p in ps if p.requires_grad], "lr": lr} for lr, ps in special]
    return [g for g in groups if g["params"]]


def prepare_model(cfg: dict, model: nn.Module) -> nn.Module:
    """Apply ``train.learning_mode`` (after :func:`snnedu.materialize`, before the optimizer)."""
    mode = cfg["train"]["learning_mode"]
    if mode is not None:
        from .threshold import set_learning_mode

        try:
            set_learning_mode(model, mode)
        except SnneduError as e:
            raise ConfigError(f"train.learning_mode: {_one_line(e)}") from None
    return model


def _optimizer(cfg: dict, model: nn.Module):
    t = cfg["train"]
    params = _param_groups(cfg, model)
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])
    return torch.optim.Adam(params, lr=t["lr"], weight_decay=t["weight_decay"])


def _scheduler(cfg: dict, optimizer):
    s = cfg["train"]["scheduler"]
    if s["type"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=s["step_size"], gamma=s["gamma"])
    if s["type"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=s["T_max"] or cfg["train"]["epochs"])
    return None


def _loss(cfg: dict):
    from .losses import TETLoss, rate_cross_entropy, rate_mse

    t = cfg["train"]
    if t["loss"] == "tet":
        return TETLoss(lam=t["tet_lambda"], phi=t["tet_phi"])
    return rate_mse if t["loss"] == "mse" else rate_cross_entropy


class _Limited:
    """The first ``n`` batches of a loader (a short epoch for smoke tests); keeps ``generator``."""

    def __init__(self, loader, n: int):
        self.loader, self.n = loader, n
        self.generator = getattr(loader, "generator", None)
        self.sampler = getattr(loader, "sampler", None)  # fit calls sampler.set_epoch (distributed runs)

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i >= self.n:
                return
            yield batch

    def __len__(self):
        return min(self.n, len(self.loader))


def _spread_subset(loader, n_batches: int):
    """A loader over ``n_batches`` test batches whose samples are spread evenly over the whole test set.

    Smoke runs (``max_batches``) evaluate on a few batches; the first few of a class-sorted test set
    (the MNIST subset, the DVS stand-ins) would all be one class and give 0 % or 100 %. Evenly spaced
    indices cover every class in proportion."""
    from torch.utils.data import DataLoader

    return DataLoader(spread_subset(loader.dataset, n_batches * loader.batch_size), batch_size=loader.batch_size,
                      shuffle=False, collate_fn=loader.collate_fn, num_workers=loader.num_workers)


def spread_subset(ds, n: int):
    """``n`` samples of ``ds`` at evenly spaced indices (every class of a class-sorted set, in proportion)."""
    from torch.utils.data import Subset

    idx = torch.linspace(0, len(ds) - 1, min(n, len(ds))).round().long().unique().tolist()
    return Subset(ds, idx)


def materialize_from(cfg: dict, model: nn.Module, loader) -> nn.Module:
    """Give lazily shaped parameters their shape from two samples of ``loader``'s first batch (event
    frames are ``[T, B, ...]``, images ``[B, ...]``), then apply :func:`prepare_model`."""
    x0 = next(iter(loader))[0]
    example = x0[:, :2] if cfg["data"]["dataset"] in DVS_DATASETS else x0[:2]
    materialize(model, example)  # before the optimizer (and DDP)
    return prepare_model(cfg, model)


def _tensorboard(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:  # pragma: no cover - tensorboard is in requirements.txt
        raise SnneduError("TensorBoard logging needs the 'tensorboard' package: pip install tensorboard") from e
    writer = SummaryWriter(str(log_dir))

    def log(model, row):
        for k, v in row.items():
            if isinstance(v, (int, float)) and k != "epoch":
                writer.add_scalar(k, v, row["epoch"])
        writer.flush()
    return writer, log


RESUMABLE_CHANGES = ("train.epochs", "source")  # config fields a resumed run may change


def run_meta(cfg: dict, max_batches: Optional[int] = None) -> dict:
    """What a run's checkpoint records about the settings that produced it: the config (less
    :data:`RESUMABLE_CHANGES`) and ``max_batches``, as plain JSON values."""
    c = json.loads(json.dumps(cfg, sort_keys=True, default=str))
    c.pop("source", None)
    c.get("train", {}).pop("epochs", None)
    return {"config": c, "max_batches": max_batches}


@flags("progress", "resume")
def run_config(cfg: dict, out_dir="runs", *, epochs: Optional[int] = None, max_batches: Optional[int] = None,
               device=None, progress: bool = True, resume: bool = True) -> dict:
    """Train ``cfg``; write ``OUT/NAME/{checkpoint.pt, tb/, result.json}`` and return the result dict.

    ``epochs`` overrides ``train.epochs`` and ``max_batches`` cuts every epoch short (smoke tests).
    A rerun with the same ``out_dir`` resumes after the last finished epoch. The checkpoint records
    the config that produced it (and ``max_batches``): a rerun with a config that differs in anything
    but ``train.epochs`` and ``source`` stops with :class:`snnedu.train.CheckpointMismatch` naming the
    fields, before any data is loaded; ``resume=False`` (``--force``) starts that config afresh.

    Under ``torchrun --nproc_per_node=N -m snnedu train CONFIG`` every process trains its share of
    the training set (``data.batch_size`` per process) on its own GPU (gloo on CPU) with
    DistributedDataParallel; rank 0 prepares the data first, and alone writes the checkpoint, the
    TensorBoard logs and ``result.json``.
    """
    import torch.distributed as dist

    from . import distributed as D
    from .train import check_resumable, default_device, fit, seed_everything

    run_dir = Path(out_dir) / _check_name(cfg["name"])  # never outside out_dir
    t = cfg["train"]
    n_epochs = epochs or t["epochs"]
    meta = run_meta(cfg, max_batches)
    if resume:  # refuse a checkpoint of another config before loading any data
        check_resumable(run_dir / "checkpoint.pt", meta)
    owns_group = not (dist.is_available() and dist.is_initialized())
    info = D.init_distributed(device=device)  # nothing happens unless launched by torchrun
    owns_group = owns_group and info.distributed
    main = D.is_main_process()
    run_dir.mkdir(parents=True, exist_ok=True)
    if info.distributed:
        device = info.device
    device = torch.device(device) if device is not None else default_device()
    seed_everything(t["seed"])
    if not main:
        D.barrier()  # rank 0 downloads / builds the frame cache first
    split, train_loader, test_loader = build_data(cfg)
    if main:
        D.barrier()
    if info.distributed:
        train_loader = D.distributed_loader(split.train, cfg["data"]["batch_size"], seed=t["seed"])
    if max_batches:
        train_loader, test_loader = _Limited(train_loader, max_batches), _spread_subset(test_loader, max_batches)
    model = build_model(cfg)
    materialize_from(cfg, model, test_loader)  # lazily shaped parameters; the learning mode
    model = D.wrap_ddp(model, device)  # unchanged outside torchrun
    optimizer = _optimizer(cfg, model)
    scheduler = _scheduler(cfg, optimizer)
    regularizer = None
    if t["tau_lambda"] > 0:
        from .losses import TauVarianceRegularizer
        regularizer = TauVarianceRegularizer(lam=t["tau_lambda"])
    writer, tb_log = _tensorboard(run_dir / "tb") if main else (None, None)
    start = time.perf_counter()
    try:
        history = fit(model, train_loader, test_loader, epochs=n_epochs, optimizer=optimizer, scheduler=scheduler,
                      loss_fn=_loss(cfg), regularizer=regularizer, device=device, amp=t["amp"],
                      checkpoint=run_dir / "checkpoint.pt", resume=resume, seed=t["seed"], progress=progress,
                      grad_clip=t["grad_clip"], callbacks=[tb_log] if main else [], meta=meta)
    finally:
        if writer is not None:
            writer.close()
        if owns_group:
            D.cleanup()
    wall = time.perf_counter() - start
    best = history.best("val_acc")
    result = {
        "name": cfg["name"], "source": cfg["source"],
        "final_test_acc": history[-1]["val_acc"], "best_test_acc": best["val_acc"], "best_epoch": best["epoch"],
        "epochs": len(history), "epochs_configured": t["epochs"], "max_batches_per_epoch": max_batches,
        "test_samples": len(test_loader.dataset) if hasattr(test_loader, "dataset") else None,
        "device": str(device) if device.type != "cuda" else f"cuda ({torch.cuda.get_device_name(device)})",
        "amp": bool(device.type == "cuda" and t["amp"] is not False),  # what ran: mixed precision is CUDA-only
        "data": split.source, "offline_standin": split.offline_standin,
        "wall_time_s_this_run": round(wall, 2), "machine": platform.node(), "torch": torch.__version__,
        "processes": info.world_size,
        "history": list(history), "config": cfg,
    }
    if not main:
        return result
    text = json.dumps(result, indent=2, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
    atomic_write(run_dir / "result.json", lambda f: f.write(text.encode()), durable=False,
                 tmp=run_dir / f"result.json.tmp{os.getpid()}")
    return result
