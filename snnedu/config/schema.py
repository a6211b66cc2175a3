"""The schema of a config: every field, its type, default, allowed values and range, and the checks.

:data:`SCHEMA` lists the fields (a nested dict of :class:`Field`); the allowed neuron types,
architectures and datasets come from :mod:`snnedu.config.registry`. :func:`validate_config` checks a
parsed file field by field and then the checks that involve two fields (:func:`cross_check`);
:func:`read_yaml` is the one strict reader of configs and study files. Every problem raises
:class:`snnedu.errors.ConfigError` with one line naming the field.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable

from .._checks import flag, short_repr
from ..errors import ConfigError, SnneduError
from .registry import ARCHS, DATASETS, neuron_factory, neuron_types

__all__ = ["Field", "REQUIRED", "SCHEMA", "STANDIN", "validate_config", "cross_check", "load_config", "read_yaml",
           "MAX_YAML_BYTES", "MAX_T", "MAX_BATCH", "MAX_WIDTH", "MAX_EPOCHS", "MAX_PER_CLASS", "MAX_STEPS"]

#: Marks a field without a default (a config must give it).
REQUIRED = object()


class Field:
    """One field of a config.

    Args:
        types (type or tuple of types): the accepted Python types (``type(None)`` for ``null``).
        default: the value of an absent field (:data:`REQUIRED`: it must be given).
        choices (set or None): the allowed values, or ``None`` for any.
        low (float or None): the smallest allowed value (of each item, for a list of ints).
        low_open (bool): ``low`` itself is excluded.
        doc (str): what the field means, where its name does not say it.
        high (float or None): the largest allowed value; it bounds sizes before anything is allocated.
    """

    def __init__(self, types, default=REQUIRED, choices=None, low=None, low_open=False, doc="", high=None):
        self.types = types if isinstance(types, tuple) else (types,)
        self.default, self.choices, self.low, self.doc = default, choices, low, doc
        self.low_open = flag("low_open", low_open)
        self.high = high


class RegistryChoices:
    """Allowed values read from a registry when they are needed (so a class exported later counts).

    Args:
        names (callable): returns the allowed names.
    """

    def __init__(self, names: Callable):
        self.names = names

    def __contains__(self, value) -> bool:
        return isinstance(value, str) and value in self.names()

    def __iter__(self):
        return iter(sorted(self.names()))

    def __len__(self) -> int:
        return len(self.names())


# generous bounds of the sizes a config may ask for: beyond them a run would try to allocate
# terabytes (data.T: 1000000000 passed `check` and then failed deep inside)
MAX_T = 10_000
MAX_BATCH = 65_536
MAX_WIDTH = 1 << 20
MAX_EPOCHS = 100_000
MAX_PER_CLASS = 10_000_000
MAX_STEPS = 10_000_000


SCHEMA = {
    "name": Field(str),
    "source": Field(str, "", doc="the paper setting this config reproduces"),
    "data": {
        "dataset": Field(str, choices=set(DATASETS)),
        "root": Field((str, type(None)), None),
        "T": Field(int, low=1, high=MAX_T),
        "batch_size": Field(int, low=1, high=MAX_BATCH),
        "test_batch_size": Field(int, 256, low=1, high=MAX_BATCH),
        "encoding": Field(str, "direct", choices={"direct", "poisson", "rows"},
                      doc="rows: one image row per step, then delay empty steps and cue steps (mnist only)"),
        "delay": Field(int, 0, low=0, high=MAX_T, doc="encoding rows: empty steps between the last row and the cue"),
        "cue": Field(int, 1, low=1, high=MAX_T, doc="encoding rows: steps of the cue channel"),
        "gain": Field((int, float), 1.0, low=0.0, low_open=True, doc="encoding rows: scale of the pixels and the cue"),
        "augment": Field(bool, True),
        "train_per_class": Field((int, type(None)), None, low=1, high=MAX_PER_CLASS),
        "test_per_class": Field((int, type(None)), None, low=1, high=MAX_PER_CLASS),
        "val_per_class": Field((int, type(None)), None, low=1, high=MAX_PER_CLASS,
                           doc="hold out this many training samples per class as a validation split"),
        "offline_fallback": Field(bool, True),
        # event data only (dvs128_gesture, cifar10_dvs): how recordings become T frames (chapter 8)
        "split_by": Field(str, "number", choices={"number", "time", "duration"}),
        "size": Field((int, type(None)), None, low=1, high=128, doc="frame height = width (default: the 128x128 sensor)"),
        "normalization": Field((str, type(None)), None,
                           choices={None, "frequency", "max", "max_frame", "norm", "sum"}),
        "duration_us": Field((int, type(None)), None, low=1, high=2**62),
        "standin": Field((dict, type(None)), None, doc="keyword arguments of the offline stand-in generator"),
    },
    "model": {
        "arch": Field(str, choices=set(ARCHS)),
        "neuron": {"type": Field(str, choices=RegistryChoices(neuron_types)), "*": "neuron keyword arguments"},
        "v_threshold": Field((int, float), 1.0, low=0.0, low_open=True),
        "channels": Field((list, int, type(None)), None, low=1, high=MAX_WIDTH),
        "hidden": Field((list, int, type(None)), None, low=1, high=MAX_WIDTH),
        "ds": Field(bool, True),
        "batch_norm": Field(bool, False, doc="spiking_mlp: BatchNorm1d (over T*B) between each Linear and its neuron"),
        "norm": Field((str, type(None)), None, choices={None, "bn", "tdbn", "bn_step"},
                  doc="spiking_mlp: the normalisation before each neuron (bn = batch_norm: true; tdbn; bn_step)"),
        "residual": Field(bool, True, doc="resnets: False drops every shortcut (the plain net of the same depth)"),
        "share_neuron": Field(bool, False),
        "n_classes": Field(int, 10, low=2, high=MAX_WIDTH),
        "input_norm": Field(bool, False, doc="non-affine tdBN on the input frames (MLF's DVS ResNets)"),
        "n_down": Field((int, type(None)), None, low=1, high=32, doc="plif_dvs, probe_cnn: conv-pool blocks (default: the preset's; probe_cnn 3)"),
        "readout_steps": Field((int, type(None)), None, low=1, high=MAX_T,
                           doc="read out only the last this many steps (encoding rows: the cue steps)"),
    },
    "train": {
        "epochs": Field(int, low=1, high=MAX_EPOCHS),
        "optimizer": Field(str, "adam", choices={"adam", "sgd"}),
        "lr": Field((int, float), low=0.0, low_open=True),
        "tau_lr": Field((int, float, type(None)), None, low=0.0, low_open=True,
                    doc="learning rate of the learnable decays (PLIF tau, PMLF decay); default: lr"),
        "threshold_lr": Field((int, float, type(None)), None, low=0.0, low_open=True,
                          doc="learning rate of the learnable thresholds (STL); default: lr"),
        "learning_mode": Field((str, type(None)), None, choices={None, "SL", "TL", "STL"},
                           doc="STL's modes: train synapses only, thresholds only, or both"),
        "momentum": Field((int, float), 0.9, low=0.0),
        "weight_decay": Field((int, float), 0.0, low=0.0),
        "scheduler": {"type": Field(str, "none", choices={"none", "step", "cosine"}),
                      "step_size": Field(int, 30, low=1, high=MAX_STEPS), "gamma": Field((int, float), 0.1, low=0.0),
                      "T_max": Field((int, type(None)), None, low=1, high=MAX_STEPS)},
        "loss": Field(str, "ce", choices={"ce", "tet", "mse"}),
        "tet_lambda": Field((int, float), 1e-3, low=0.0),
        "tet_phi": Field((int, float), 1.0),
        "tau_lambda": Field((int, float), 0.0, low=0.0),
        "seed": Field(int, 0),
        "amp": Field((bool, type(None)), None),
        "grad_clip": Field((int, float, type(None)), None, low=0.0, low_open=True,
                       doc="the largest gradient norm (> 0); null: no clipping"),
    },
}


# data.standin: the keyword arguments each offline stand-in generator takes (snnedu.data.standins),
# bounded so that a config cannot ask for a stand-in of millions of recordings
STANDIN = {
    "dvs128_gesture": {"n_train_users": Field(int, low=1, high=1000), "n_test_users": Field(int, low=0, high=1000),
                       "lightings": Field((list, str)), "repeats": Field(int, low=1, high=100),
                       "size": Field(int, low=16, high=128), "seed": Field(int, low=0), "root": Field(str),
                       "progress": Field(bool)},
    "cifar10_dvs": {"n_per_class": Field(int, low=1, high=100_000), "size": Field(int, low=16, high=128),
                    "seed": Field(int, low=0), "root": Field(str), "progress": Field(bool)},
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
    check_fields(given, {k: spec[k] for k in given}, "data.standin.")  # only what is given: the rest defaults
    names = given.get("lightings")
    names = [names] if isinstance(names, str) else names
    if names is not None and (not 1 <= len(names) <= 16 or not all(
            isinstance(n, str) and re.fullmatch(r"\w{1,32}", n) for n in names)):
        raise ConfigError(f"data.standin.lightings: expected 1 to 16 names of at most 32 letters, digits or '_', "
                          f"got {short_repr(given['lightings'])}")


def check_fields(raw: Any, schema: dict, where: str) -> dict:
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
            out[key] = check_fields(raw.get(key, {}), spec, path + ".")
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


def _check_int_list(path: str, value: list, spec: Field) -> None:
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
    """Check every field of a parsed config and fill in the defaults (raises :class:`~snnedu.errors.ConfigError`)."""
    cfg = check_fields(raw, SCHEMA, "")
    check_name(cfg["name"])
    _check_standin(cfg["data"])
    cross_check(cfg)
    try:  # the neuron's own hyper-parameters are checked by the neuron itself
        neuron_factory(cfg["model"]["neuron"])()
    except TypeError as e:
        m = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if m:
            raise ConfigError(f"model.neuron.{m.group(1)}: not a parameter of {cfg['model']['neuron']['type']}") from None
        raise ConfigError(f"model.neuron: {one_line(e)}") from None
    except (SnneduError, ValueError, OverflowError) as e:
        raise ConfigError(f"model.neuron: {one_line(e)}") from None
    return cfg


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


def check_name(name) -> str:
    """``name`` becomes the run's folder under ``--out``: one plain path component, so that no run
    writes outside its output folder (``../x``, ``/abs``, ``a/b`` are refused)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
        shown = short_repr(name, 60)
        raise ConfigError(f"name: must be a plain folder name (letters, digits, '.', '_', '-', '+'; at most 128 "
                          f"characters; no '/', no '..'), got {shown}")
    return name


def one_line(e: Exception, n: int = 300) -> str:
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
            (default :class:`~snnedu.errors.ConfigError`).
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


def cross_check(cfg: dict) -> None:
    """Checks that involve two fields (the dataset decides the classes and which archs fit)."""
    m, d = cfg["model"], cfg["data"]
    dataset, arch, spec = DATASETS[d["dataset"]], m["arch"], ARCHS[m["arch"]]
    dvs = dataset.events
    if m["n_classes"] != dataset.n_classes:
        raise ConfigError(f"model.n_classes: {d['dataset']} has {dataset.n_classes} classes, "
                          f"got {m['n_classes']}")
    if dvs and spec.takes == "static":
        raise ConfigError(f"model.arch: {arch!r} takes static images; for {d['dataset']} use plif_dvs or a resnet")
    if m["norm"] is not None and arch != "spiking_mlp":
        raise ConfigError(f"model.norm: only for spiking_mlp (the other archs fix their own normalisation), "
                          f"got arch {arch!r}")
    if m["batch_norm"] and m["norm"] not in (None, "bn"):
        raise ConfigError(f"model.batch_norm: true is model.norm: bn; got both it and norm {m['norm']!r}")
    if not m["residual"] and not spec.resnet:
        raise ConfigError(f"model.residual: only for the resnets, got arch {arch!r}")
    if m["batch_norm"] and arch != "spiking_mlp":
        raise ConfigError(f"model.batch_norm: only for spiking_mlp (the other archs fix their own normalisation), "
                          f"got arch {arch!r}")
    if not dvs and spec.takes == "events":
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
    if m["readout_steps"] is not None and not spec.sequence:
        raise ConfigError(f"model.readout_steps: only for spiking_mlp, spiking_cnn and the resnets, got arch {arch!r}")
    if m["readout_steps"] is not None and m["readout_steps"] > d["T"]:
        raise ConfigError(f"model.readout_steps ({m['readout_steps']}) exceeds data.T ({d['T']})")
    if d["split_by"] == "duration" and d["duration_us"] is None:
        raise ConfigError("data.duration_us: required with data.split_by: duration")
