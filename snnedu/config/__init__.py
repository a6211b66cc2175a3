"""Experiment configs: one YAML file per paper setting, validated field by field, turned into a run.

A config has four sections (every field, its type and default are in :data:`~snnedu.config.schema.SCHEMA`)::

    name: mlf_dsresnet20_cifar10            # the run's folder under --out
    source: "Feng et al. 2022 (MLF), DS-ResNet-20, CIFAR-10"
    data:   {dataset: cifar10, T: 4, batch_size: 64, encoding: direct}
    model:  {arch: resnet20, channels: [64, 128, 256], ds: true, v_threshold: 0.6,
             neuron: {type: MLF, K: 3, v_threshold: 0.6, a: 1.0, decay: 0.25}}
    train:  {epochs: 110, optimizer: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4,
             scheduler: {type: step, step_size: 40, gamma: 0.1}, loss: ce, seed: 1}

:func:`~snnedu.config.schema.load_config` reads and validates a file; any problem raises
:class:`~snnedu.errors.ConfigError` with one line
naming the field (``model.neuron.type: unknown value 'XLIF'; allowed: ...``).
:func:`~snnedu.config.run.run_config`
trains it with :func:`snnedu.fit` (progress bars, a checkpoint every epoch and automatic resume,
TensorBoard logs) and writes ``result.json`` (accuracy, epochs, device, data used, wall time).

The package has three parts, one job each:

- :mod:`snnedu.config.schema`: the fields, their checks, and the strict YAML reader;
- :mod:`snnedu.config.registry`: the neuron types, architectures and datasets a config may name, each
  with its metadata and builder (the schema's allowed values come from here);
- :mod:`snnedu.config.run`: a validated config turned into data, a model and a training run.

Every public name of the three is importable from ``snnedu.config`` itself.
"""
from ..errors import ConfigError
from .registry import ARCHS, DATASETS, Arch, Dataset, build_model, neuron_factory, neuron_types
from .run import (RESUMABLE_CHANGES, build_data, make_loss, make_optimizer, make_scheduler, materialize_from, prepare_model,
                  run_config, run_meta, spread_subset)
from .schema import (MAX_BATCH, MAX_EPOCHS, MAX_PER_CLASS, MAX_STEPS, MAX_T, MAX_WIDTH, MAX_YAML_BYTES, REQUIRED, SCHEMA,
                     STANDIN, Field, cross_check, load_config, read_yaml, validate_config)

__all__ = ["ConfigError", "SCHEMA", "STANDIN", "Field", "REQUIRED", "load_config", "read_yaml", "validate_config",
           "cross_check", "neuron_types", "neuron_factory", "ARCHS", "Arch", "DATASETS", "Dataset", "build_model",
           "build_data", "make_optimizer", "make_scheduler", "make_loss", "prepare_model", "materialize_from", "spread_subset", "run_meta", "run_config",
           "RESUMABLE_CHANGES", "MAX_YAML_BYTES", "MAX_T", "MAX_BATCH", "MAX_WIDTH", "MAX_EPOCHS", "MAX_PER_CLASS",
           "MAX_STEPS"]
