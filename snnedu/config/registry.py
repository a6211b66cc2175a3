"""What a config may name: neuron types, architectures and datasets, each with what the rest needs to know.

- :func:`neuron_types`: every neuron class ``snnedu`` exports (wherever its family is declared, e.g.
  :class:`snnedu.ALIF`), plus ``LIF.stbp``. A new neuron class is a config type as soon as it is exported.
- :data:`ARCHS`: architecture name -> :class:`Arch` (its builder, the data it takes, what it supports).
- :data:`DATASETS`: dataset name -> :class:`Dataset` (classes, static images or event frames, input
  shape, loader).

The schema (:mod:`snnedu.config.schema`) takes its allowed values from here, and :func:`build_model`
builds through these entries, so adding an architecture or a dataset is one entry here.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import torch.nn as nn

from .._checks import flag
from ..errors import ConfigError, SnneduError

__all__ = ["neuron_types", "neuron_factory", "Arch", "ARCHS", "Dataset", "DATASETS", "build_model"]


# -- neurons ---------------------------------------------------------------------------------------
def neuron_types() -> Dict[str, Callable[..., nn.Module]]:
    """Every neuron type a config may name -> its constructor: each neuron class ``snnedu`` exports,
    and ``"LIF.stbp"`` (the STBP form of LIF)."""
    import snnedu  # every neuron class is exported at the top level, wherever its family is declared
    from ..neurons import BaseNeuron

    out = {}
    for name in snnedu.__all__:
        obj = getattr(snnedu, name)
        if isinstance(obj, type) and issubclass(obj, BaseNeuron) and obj is not BaseNeuron:
            out[name] = obj
    out["LIF.stbp"] = snnedu.LIF.stbp
    return out


def neuron_factory(spec: dict) -> Callable[[], nn.Module]:
    """``model.neuron`` (``{type: ..., **keyword arguments}``) -> a function building one neuron."""
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    make = neuron_types()[spec["type"]]
    return lambda: make(**kwargs)


# -- datasets --------------------------------------------------------------------------------------
def _load_mnist(d: dict, seed: int):
    from ..data import load_mnist
    return load_mnist(root=d["root"], offline_fallback=d["offline_fallback"])


def _load_cifar10(d: dict, seed: int):
    from ..data import load_cifar10
    return load_cifar10(root=d["root"], offline_fallback=d["offline_fallback"], augment=d["augment"], seed=seed)


def _event_loader(name: str):
    def load(d: dict, seed: int):
        from .. import data
        loader = getattr(data, name)
        return loader(d["root"], T=d["T"], split_by=d["split_by"], size=d["size"] or 128,
                      normalization=d["normalization"], duration_us=d["duration_us"],
                      offline_fallback=d["offline_fallback"], augment=d["augment"], seed=seed,
                      standin_kwargs=d["standin"])
    return load


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset a config may name.

    Args:
        n_classes (int): number of classes (``model.n_classes`` must equal it).
        events (bool): event frames ``[T, B, 2, H, W]`` (``True``) or static images ``[B, C, H, W]``.
        input_shape (tuple or None): one static image ``(C, H, W)``; ``None`` for event data, whose
            frames are ``(2, size, size)`` with ``data.size``.
        load (callable): ``load(data_section, seed) -> DataSplit``.
        dvs_preset (int or None): the PLIF DVS network's number of conv-pool blocks for this dataset.
    """

    n_classes: int
    events: bool
    input_shape: Optional[Tuple[int, int, int]]
    load: Callable
    dvs_preset: Optional[int] = None

    def __post_init__(self):
        flag("events", self.events)


#: Every dataset a config may name (``data.dataset``), with its metadata.
DATASETS: Dict[str, Dataset] = {
    "mnist": Dataset(10, False, (1, 28, 28), _load_mnist),
    "cifar10": Dataset(10, False, (3, 32, 32), _load_cifar10),
    "dvs128_gesture": Dataset(11, True, None, _event_loader("load_dvs128_gesture"), dvs_preset=5),
    "cifar10_dvs": Dataset(10, True, None, _event_loader("load_cifar10_dvs"), dvs_preset=4),
}


# -- architectures ---------------------------------------------------------------------------------
def _channels(m: dict) -> dict:
    return {} if m["channels"] is None else {"channels": m["channels"]}


def _mlp(cfg, neuron, in_shape):
    from ..models import SpikingMLP
    m = cfg["model"]
    return SpikingMLP(input_shape=in_shape, hidden=tuple(m["hidden"] or (256,)), n_classes=m["n_classes"],
                      neuron=neuron, batch_norm=m["batch_norm"], norm=m["norm"])


def _cnn(cfg, neuron, in_shape):
    from ..models import SpikingCNN
    m = cfg["model"]
    return SpikingCNN(input_shape=in_shape, n_classes=m["n_classes"], neuron=neuron, **_channels(m))


def _resnet(name):
    def build(cfg, neuron, in_shape):
        from .. import models
        m = cfg["model"]
        kw = _channels(m)
        if name == "resnet19" and m["hidden"] is not None:
            kw["hidden"] = m["hidden"]
        return getattr(models, name)(neuron=neuron, v_threshold=m["v_threshold"], in_channels=in_shape[0],
                                     n_classes=m["n_classes"], ds=m["ds"], share_neuron=m["share_neuron"],
                                     input_norm=m["input_norm"], residual=m["residual"], **kw)
    return build


def _probe_linear(cfg, neuron, in_shape):
    from ..models import LinearProbe
    if isinstance(cfg["model"]["channels"], list):
        raise ConfigError("model.channels: probe_cnn takes one int (conv width)")
    return LinearProbe(in_channels=2, input_size=in_shape[-1], n_classes=cfg["model"]["n_classes"])


def _probe_cnn(cfg, neuron, in_shape):
    from ..models import FrameCNN
    m = cfg["model"]
    if isinstance(m["channels"], list):
        raise ConfigError("model.channels: probe_cnn takes one int (conv width)")
    return FrameCNN(in_channels=2, input_size=in_shape[-1], n_classes=m["n_classes"], channels=m["channels"] or 16,
                    n_down=m["n_down"] or 3)


def _plif_dvs(cfg, neuron, in_shape):  # the PLIF paper's event-frame network; frames come in as [T, B, 2, H, W]
    from ..models import PLIFDVSNet
    m = cfg["model"]
    if isinstance(m["hidden"], list) or isinstance(m["channels"], list):
        raise ConfigError("model.hidden / model.channels: plif_dvs takes one int each (FC width, conv channels)")
    preset = DATASETS[cfg["data"]["dataset"]].dvs_preset
    return PLIFDVSNet(in_channels=2, input_size=in_shape[-1], n_down=m["n_down"] or preset, n_classes=m["n_classes"],
                      neuron=neuron, fc_hidden=m["hidden"], **_channels(m))


def _plif_static(cfg, neuron, in_shape):  # the PLIF paper's static network takes the static batch itself
    from ..models import PLIFStaticNet
    m = cfg["model"]
    if isinstance(m["hidden"], list):
        raise ConfigError("model.hidden: plif_static takes one FC width (int), e.g. 2048")
    return PLIFStaticNet(dataset=cfg["data"]["dataset"], T=cfg["data"]["T"], n_classes=m["n_classes"], neuron=neuron,
                         fc_hidden=m["hidden"] or 2048, **_channels(m))


@dataclasses.dataclass(frozen=True)
class Arch:
    """An architecture a config may name.

    Args:
        build (callable): ``build(cfg, neuron_factory, input_shape) -> nn.Module``, the network.
        takes (str): the data it takes: ``"static"`` images, ``"events"`` (frames) or ``"both"``.
        sequence (bool): it is a network over ``[T, B, ...]`` that :func:`build_model` puts behind the
            encoder (static images) and in front of a read-out window (``model.readout_steps``);
            ``False``: it takes the data as they come and is returned as it is.
        resnet (bool): a residual network (``model.residual`` applies).
    """

    build: Callable
    takes: str
    sequence: bool = True
    resnet: bool = False

    def __post_init__(self):
        flag("sequence", self.sequence)
        flag("resnet", self.resnet)
        if self.takes not in ("static", "events", "both"):
            raise ValueError(f"Arch.takes must be 'static', 'events' or 'both', got {self.takes!r}")


#: Every architecture a config may name (``model.arch``). The probes are non-spiking references on
#: summed event frames.
ARCHS: Dict[str, Arch] = {
    "spiking_mlp": Arch(_mlp, "static"),
    "spiking_cnn": Arch(_cnn, "static"),
    "resnet14": Arch(_resnet("resnet14"), "both", resnet=True),
    "resnet19": Arch(_resnet("resnet19"), "both", resnet=True),
    "resnet20": Arch(_resnet("resnet20"), "both", resnet=True),
    "plif_static": Arch(_plif_static, "static", sequence=False),
    "plif_dvs": Arch(_plif_dvs, "events", sequence=False),
    "probe_linear": Arch(_probe_linear, "events", sequence=False),
    "probe_cnn": Arch(_probe_cnn, "events", sequence=False),
}


def build_model(cfg: dict) -> nn.Module:
    """The network of ``cfg['model']``, with the encoder in front where the data are static images."""
    from ..encoding import DirectEncoder, PoissonEncoder, RowEncoder
    from ..layers import LastSteps
    from .schema import cross_check

    m, d = cfg["model"], cfg["data"]
    cross_check(cfg)
    dataset, arch = DATASETS[d["dataset"]], ARCHS[m["arch"]]
    size = d["size"] or 128
    in_shape = (2, size, size) if dataset.events else dataset.input_shape
    if d["encoding"] == "rows":
        in_shape = (in_shape[2] + 1,)  # one row of pixels and the cue channel per step
    try:
        net = arch.build(cfg, neuron_factory(m["neuron"]), in_shape)
    except ConfigError:
        raise
    except SnneduError as e:
        raise ConfigError(f"model: {e}") from None
    if not arch.sequence:
        return net
    tail = [] if m["readout_steps"] is None else [LastSteps(m["readout_steps"])]
    if dataset.events:
        return nn.Sequential(net, *tail) if tail else net  # event frames are already a sequence of T inputs
    if d["encoding"] == "rows":
        encoder = RowEncoder(delay=d["delay"], cue=d["cue"], gain=d["gain"])
    else:
        encoder = (DirectEncoder if d["encoding"] == "direct" else PoissonEncoder)(d["T"])
    return nn.Sequential(encoder, net, *tail)
