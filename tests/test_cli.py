"""Experiment configs and `python -m snnedu train`: every config runs a short epoch on CPU, resume,
TensorBoard logs, result JSON, and one clear error line for a bad config."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import snnedu
from snnedu.__main__ import main
from snnedu.config import ConfigError, load_config, validate_config

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


def test_configs_exist_and_validate():
    assert len(CONFIGS) >= 6
    names = [load_config(p)["name"] for p in CONFIGS]
    assert len(set(names)) == len(names)
    assert main(["check", *map(str, CONFIGS)]) == 0


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_trains_one_short_epoch_on_cpu(path, tmp_path, capsys):
    code = main(["train", str(path), "--epochs", "1", "--max-batches", "1", "--batch-size", "2",
                 "--device", "cpu", "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    name = load_config(path)["name"]
    result = json.loads((tmp_path / name / "result.json").read_text())
    assert result["epochs"] == 1 and result["device"] == "cpu" and 0.0 <= result["final_test_acc"] <= 100.0
    assert result["data"] and isinstance(result["offline_standin"], bool)
    assert (tmp_path / name / "checkpoint.pt").exists()
    assert list((tmp_path / name / "tb").glob("events.out.tfevents.*"))
    assert '"best_test_acc"' in capsys.readouterr().out


def _small_cfg(tmp_path, **over):
    cfg = {"name": "tiny", "data": {"dataset": "mnist", "T": 2, "batch_size": 32, "train_per_class": 6,
                                    "test_per_class": 3},
           "model": {"arch": "spiking_mlp", "hidden": [16], "neuron": {"type": "LIF", "tau": 2.0}},
           "train": {"epochs": 2, "lr": 1.0e-2, "seed": 0}}
    for dotted, value in over.items():
        node = cfg
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_resume_after_interruption_and_result_history(tmp_path):
    path = _small_cfg(tmp_path)
    out = tmp_path / "runs"
    assert main(["train", str(path), "--epochs", "1", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    first = json.loads((out / "tiny" / "result.json").read_text())
    assert [r["epoch"] for r in first["history"]] == [1]
    assert main(["train", str(path), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    second = json.loads((out / "tiny" / "result.json").read_text())
    assert [r["epoch"] for r in second["history"]] == [1, 2]
    assert second["history"][0] == first["history"][0]  # epoch 1 came from the checkpoint, not retrained
    assert "subset: 60 train / 30 test" in second["data"]


@pytest.mark.parametrize("over, field", [
    ({"model__neuron__type": "XLIF"}, "model.neuron.type: unknown value 'XLIF'; allowed:"),
    ({"train__lr": None}, "train.lr: missing required field"),
    ({"data__T": "four"}, "data.T: expected int, got 'four'"),
    ({"train__epochs": 0}, "train.epochs: must be >= 1, got 0"),
    ({"train__lr": 0.0}, "train.lr: must be > 0, got 0.0"),
    ({"model__layers": 3}, "model.layers: unknown field"),
    ({"model__neuron__tau": 0.5}, "model.neuron: tau must be finite and in [1.0, inf]"),
    ({"model__neuron__colour": "red"}, "model.neuron.colour: not a parameter of LIF"),
])
def test_bad_config_is_one_clear_line_naming_the_field(tmp_path, capsys, over, field):
    path = _small_cfg(tmp_path, **over)
    assert main(["train", str(path), "--out", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"snnedu: config error in {path}: ") and field in err[0], err


def test_unreadable_configs(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="expected a mapping"):
        validate_config(["not", "a", "mapping"])


def test_module_entry_point_runs(tmp_path):
    path = _small_cfg(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "snnedu", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0 and "ok (tiny)" in proc.stdout


def test_help_lists_commands_with_examples():
    r = subprocess.run([sys.executable, "-m", "snnedu", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("train", "check", "preprocess", "benchmark", "examples:", "torchrun"):
        assert word in r.stdout


def test_resume_with_an_edited_config_is_refused_naming_the_fields(tmp_path, capsys):
    # issue #15 item 1: a resume used to run epoch 2 with the old learning rate, mix two losses in the
    # history and claim the new config in result.json; optimizer: sgd crashed with KeyError: 'momentum'
    out = tmp_path / "runs"
    args = ["--out", str(out), "--device", "cpu", "--no-progress"]
    path = _small_cfg(tmp_path)
    assert main(["train", str(path), "--epochs", "1", *args]) == 0
    ckpt, result = out / "tiny" / "checkpoint.pt", out / "tiny" / "result.json"
    before = (ckpt.read_bytes(), result.read_bytes())
    capsys.readouterr()
    edits = [({"train__lr": 5e-2, "data__T": 3, "model__neuron__tau": 3.0, "train__loss": "mse"},
              ["train.lr (0.01 -> 0.05)", "data.T (2 -> 3)", "model.neuron.tau (2.0 -> 3.0)",
               "train.loss ('ce' -> 'mse')"]),
             ({"train__optimizer": "sgd"}, ["train.optimizer ('adam' -> 'sgd')"]),
             ({"data__batch_size": 16}, ["data.batch_size (32 -> 16)"]),
             ({"model__hidden": [8, 8]}, ["model.hidden ([16] -> [8, 8])"])]
    for over, fields in edits:
        path = _small_cfg(tmp_path, **over)
        assert main(["train", str(path), "--epochs", "2", *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "was written with other settings" in err[0] and "--force" in err[0], err
        for f in fields:
            assert f in err[0], (f, err)
        assert (ckpt.read_bytes(), result.read_bytes()) == before  # nothing touched
    # max_batches is part of what produced the checkpoint too
    path = _small_cfg(tmp_path)
    assert main(["train", str(path), "--epochs", "2", "--max-batches", "1", *args]) == 2
    assert "max_batches (None -> 1)" in capsys.readouterr().err
    # the same config (only epochs changed) resumes
    assert main(["train", str(path), "--epochs", "2", *args]) == 0
    assert [r["epoch"] for r in json.loads(result.read_text())["history"]] == [1, 2]
    # --force starts the edited config afresh: every epoch of the history is the new config's
    path = _small_cfg(tmp_path, train__optimizer="sgd", train__lr=5e-2)
    assert main(["train", str(path), "--epochs", "1", "--force", *args]) == 0
    res = json.loads(result.read_text())
    assert [r["epoch"] for r in res["history"]] == [1] and res["config"]["train"]["optimizer"] == "sgd"
    assert res["history"][0]["lr"] == 5e-2
    assert main(["train", str(path), "--epochs", "2", *args]) == 0  # and then resumes as usual
    assert [r["lr"] for r in json.loads(result.read_text())["history"]] == [5e-2, 5e-2]


def test_grad_clip_in_a_config_must_be_positive_or_null(tmp_path):
    # issue #15 item 2: grad_clip: 0 validated and then trained nothing (constant loss, exit 0)
    for bad in (0, 0.0, -1):
        with pytest.raises(ConfigError, match=r"train.grad_clip: must be > 0"):
            load_config(_small_cfg(tmp_path, train__grad_clip=bad))
    assert load_config(_small_cfg(tmp_path, train__grad_clip=1.0))["train"]["grad_clip"] == 1.0
    assert load_config(_small_cfg(tmp_path))["train"]["grad_clip"] is None


def test_a_run_name_cannot_escape_the_output_folder(tmp_path, capsys):
    # issue #15 item 7: name: ../escaped_run wrote outside --out; an absolute name printed a doubled path
    out = tmp_path / "deep" / "runs"
    for bad in ("../escaped_run", "..", str(tmp_path / "abs_run"), "a/b", "a\\b", ".hidden", "", "x" * 129,
                "na\nme"):
        path = _small_cfg(tmp_path, name=bad)
        assert main(["train", str(path), "--out", str(out), "--device", "cpu", "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "name: must be a plain folder name" in err[0], (bad, err)
        with pytest.raises(ConfigError, match="name: must be a plain folder name"):
            snnedu.config.run_config({"name": bad}, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml"]  # nothing written anywhere
    for good in ("01_encoding", "plif_mnist", "run-2.b+c"):
        assert load_config(_small_cfg(tmp_path, name=good))["name"] == good


def test_duplicate_keys_and_aliases_in_a_config_are_refused(tmp_path):
    # issue #15 items 14 and 12: duplicate keys silently kept the last value; a 1 KB file of nested
    # aliases expanded until check raised MemoryError
    p = tmp_path / "c.yaml"
    p.write_text("name: a\nname: b\n")
    with pytest.raises(ConfigError, match=r"line 2: duplicate key 'name'"):
        load_config(p)
    p.write_text("name: a\ntrain:\n  lr: 0.1\n  epochs: 1\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"line 5: duplicate key 'lr'"):
        load_config(p)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p_}, *{p_}, *{p_}, *{p_}, *{p_}, *{p_}, *{p_}, *{p_}, *{p_}]\n"
        for p_, c in zip("abcdefgh", "bcdefghi"))
    p.write_text("name: t\n" + bomb)
    assert len(p.read_bytes()) < 1024
    with pytest.raises(ConfigError, match=r"line 3: YAML aliases \(\*name\) are not allowed"):
        load_config(p)
    p.write_text("base: &b {T: 2}\ndata:\n  <<: *b\n")
    with pytest.raises(ConfigError, match="YAML aliases"):
        load_config(p)
    assert main(["check", str(p)]) == 2
    for path in CONFIGS:  # the committed configs still load
        load_config(path)


def test_the_allowed_values_of_a_config_come_from_the_registries():
    """snnedu.config is schema, registry and run: the neuron types are every exported neuron class (a
    new family is a config type as soon as it is exported), the architectures and datasets are the
    registry's entries, and each dataset's metadata decides the cross-field checks."""
    from snnedu import config
    from snnedu.config import registry, run, schema

    neuron_choices = config.SCHEMA["model"]["neuron"]["type"].choices
    exported = {n for n in snnedu.__all__ if isinstance(getattr(snnedu, n), type)
                and issubclass(getattr(snnedu, n), snnedu.BaseNeuron) and n != "BaseNeuron"}
    assert set(neuron_choices) == exported | {"LIF.stbp"} and {"ALIF", "PMLF3"} <= exported
    assert "XLIF" not in neuron_choices and 3 not in neuron_choices
    assert config.SCHEMA["model"]["arch"].choices == set(config.ARCHS)
    assert config.SCHEMA["data"]["dataset"].choices == set(config.DATASETS)
    assert set(config.STANDIN) == {n for n, d in config.DATASETS.items() if d.events}
    for name in ("SCHEMA", "validate_config", "read_yaml"):
        assert getattr(config, name) is getattr(schema, name)
    assert config.build_model is registry.build_model and config.run_config is run.run_config
    base = {"name": "x", "data": {"dataset": "dvs128_gesture", "T": 4, "batch_size": 2},
            "model": {"arch": "plif_dvs", "neuron": {"type": "ALIF", "tau_a": 10.0}, "n_classes": 11},
            "train": {"epochs": 1, "lr": 0.1}}
    assert validate_config(base)["model"]["neuron"]["type"] == "ALIF"
    with pytest.raises(ConfigError, match="dvs128_gesture has 11 classes"):
        validate_config({**base, "model": {**base["model"], "n_classes": 10}})
    with pytest.raises(ConfigError, match="takes event frames"):
        validate_config({**base, "data": {**base["data"], "dataset": "mnist"}, "model": {**base["model"], "n_classes": 10}})
    with pytest.raises(ConfigError, match="not a parameter of ALIF"):
        validate_config({**base, "model": {**base["model"], "neuron": {"type": "ALIF", "K": 3}}})
