"""snnedu — the library of the runnable textbook of directly-trained spiking neural networks.

Tensors are time-first everywhere: ``[T, B, ...]`` (``T`` time steps, ``B`` batch).

>>> from snnedu import LIF, PoissonEncoder, SpikingMLP, fit
"""
from . import functional, monitor, viz
from ._checks import set_input_checks
from .base import StatefulModule, detach_state, materialize, reset
from .data import (DataSplit, load_cifar10, load_cifar10_dvs, load_dvs128_gesture, load_mnist, make_loaders,
                   synthetic_cifar10, take_per_class)
from .decay import FixedLeak, LearnableDecay, decay_parameters
from .determinism import deterministic, set_deterministic
from .encoding import (DirectEncoder, LatencyEncoder, PoissonEncoder, RowEncoder, direct_encode, latency_encode,
                       poisson_encode, row_encode)
from .errors import DataError, HyperParameterError, InputError, SnneduError, StateError
from .functional.surrogate import ATan, Rectangular, Sigmoid, SmoothSpike, Surrogate, Triangle, get_surrogate
from .layers import (Flatten, LastSteps, PerStepBatchNorm, SeqDropout, TimeDistributed, VotingReadout, fold_time, tdBN,
                     tdBN1d, tdBN2d, unfold_time)
from .losses import (TauVarianceRegularizer, TETLoss, joint_decision, mean_over_time, predict,
                     rate_cross_entropy, rate_mse, tet_loss)
from .models import (PLIFDVSNet, PLIFStaticNet, SpikingBasicBlock, SpikingCNN, SpikingMLP, SpikingResNet,
                     resnet14, resnet19, resnet20)
from .monitor import Monitor
from .neurons import IF, LIF, MLF, PLIF, PMLF, PMLF3, BaseNeuron
from .alif import ALIF  # noqa: E402 - after .neurons: it builds on BaseNeuron
from .family import FAMILIES, NeuronFamily, register_family, register_fast_path
from .threshold import (LearnableThreshold, set_learning_mode, synapse_parameters,
                        threshold_parameters)
from .train import History, TrainingError, default_device, evaluate, fit, seed_everything

__version__ = "0.1.0"

__all__ = [
    "functional", "viz", "set_input_checks", "DataSplit", "StatefulModule", "reset", "load_mnist", "make_loaders",
    "take_per_class", "FixedLeak", "LearnableDecay", "DirectEncoder", "LatencyEncoder", "PoissonEncoder",
    "direct_encode", "latency_encode", "poisson_encode", "DataError", "HyperParameterError",
    "InputError", "SnneduError", "StateError", "TrainingError", "ATan", "Rectangular", "Sigmoid",
    "Surrogate", "Triangle", "get_surrogate", "Flatten", "TimeDistributed", "fold_time", "unfold_time",
    "TauVarianceRegularizer", "mean_over_time", "predict", "rate_cross_entropy", "SpikingCNN",
    "SpikingMLP", "IF", "LIF", "PLIF", "BaseNeuron", "History", "default_device", "evaluate", "fit",
    "seed_everything", "monitor", "Monitor", "MLF", "PMLF", "PMLF3", "LearnableThreshold",
    "set_learning_mode", "synapse_parameters", "threshold_parameters", "joint_decision",
    "decay_parameters", "VotingReadout", "rate_mse", "tdBN", "tdBN1d", "tdBN2d", "tet_loss", "TETLoss",
    "SpikingBasicBlock", "SpikingResNet", "resnet14", "resnet19", "resnet20", "SeqDropout", "PerStepBatchNorm",
    "PLIFStaticNet", "PLIFDVSNet", "load_cifar10", "synthetic_cifar10", "materialize", "load_dvs128_gesture",
    "load_cifar10_dvs",
    "set_deterministic", "deterministic", "detach_state", "ALIF", "NeuronFamily", "FAMILIES",
    "register_family", "register_fast_path", "SmoothSpike", "RowEncoder", "row_encode", "LastSteps",
]
