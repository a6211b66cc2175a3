"""Size and allocation limits, short messages, strict YAML everywhere (issue #15 items 11 and 12).

* ``data.T: 1000000000`` passed ``check`` and then tried to allocate terabytes: every size of a
  config (T, batch sizes, widths, epochs, per-class counts, frame size, the stand-in's arguments) is
  bounded, and the message states the bound.
* The NaN/inf scan of an expanded input (``DirectEncoder``'s zero-copy ``x.expand(T, ...)``) scanned a
  ``T``-times larger boolean mask; now it scans the un-expanded base. Meta tensors skip the scan.
* Hyper-parameters outside the float32 range (``v_reset=-1e300``, ``v_threshold=1e-300``, a huge tau)
  are a ``HyperParameterError``, not an inf or zero inside the layer.
* Messages never print a huge offending value; study files go through the config's strict YAML loader
  (duplicate keys and aliases refused, size bounded).
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

import snnedu
import snnedu._checks as checks
from snnedu.__main__ import main
from snnedu.config import MAX_YAML_BYTES, SCHEMA, ConfigError, load_config, validate_config
from snnedu.errors import HyperParameterError, InputError
from snnedu.study import StudyError, load_study

REPO = Path(__file__).resolve().parents[1]
GESTURE = yaml.safe_load((REPO / "configs" / "plif_dvs128_gesture.yaml").read_text())
MNIST = yaml.safe_load((REPO / "configs" / "plif_mnist.yaml").read_text())

# (section, field, the bound, a value above it)
BOUNDED = [("data", "T", 10_000, 1_000_000_000), ("data", "batch_size", 65_536, 10**7),
           ("data", "test_batch_size", 65_536, 10**7), ("data", "train_per_class", 10**7, 10**12),
           ("data", "test_per_class", 10**7, 10**12), ("data", "val_per_class", 10**7, 10**12),
           ("data", "size", 128, 4096), ("model", "hidden", 1 << 20, 1 << 40), ("model", "channels", 1 << 20, 1 << 40),
           ("train", "epochs", 100_000, 10**9)]


def _with(cfg, section, field, value):
    c = copy.deepcopy(cfg)
    c[section][field] = value
    return c


@pytest.mark.parametrize("section,field,bound,value", BOUNDED)
def test_config_sizes_are_bounded_and_the_message_states_the_bound(section, field, bound, value):
    assert SCHEMA[section][field].high == bound
    base = GESTURE if field == "size" else MNIST
    validate_config(_with(base, section, field, bound if field != "channels" else None))  # the bound itself is fine
    with pytest.raises(ConfigError, match=rf"^{section}\.{field}: must be <= {bound} \(the largest supported\), "
                                          rf"got {value}$"):
        validate_config(_with(base, section, field, value))


def test_list_widths_are_bounded_item_by_item_and_in_length():
    with pytest.raises(ConfigError, match=r"model\.hidden: .*<= 1048576, got \[128, 1099511627776\] "
                                          r"\(bad: 1099511627776\)"):
        validate_config(_with(MNIST, "model", "hidden", [128, 1 << 40]))
    with pytest.raises(ConfigError, match=r"model\.hidden: expected a non-empty list of at most 1000 integers"):
        validate_config(_with(MNIST, "model", "hidden", [8] * 5000))


def test_check_refuses_a_huge_T_in_one_line(tmp_path, capsys):
    p = tmp_path / "big.yaml"
    p.write_text(yaml.safe_dump(_with(MNIST, "data", "T", 1_000_000_000)))
    assert main(["check", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data.T: must be <= 10000" in err


def test_cli_overrides_are_bounded_like_the_config(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(MNIST))
    assert main(["train", str(p), "--epochs", "1000000000", "--out", str(tmp_path / "runs")]) == 2
    assert main(["train", str(p), "--batch-size", "100000000", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "--epochs must be >= 1 and <= 100000" in err and "--batch-size must be >= 1 and <= 65536" in err
    assert not (tmp_path / "runs").exists()


def test_standin_arguments_are_checked():
    ok = _with(GESTURE, "data", "standin", {"n_train_users": 2, "n_test_users": 1, "size": 32, "seed": 3,
                                            "lightings": ["led"], "repeats": 1})
    assert validate_config(ok)["data"]["standin"]["n_train_users"] == 2
    bad = [({"n_train_users": 10**9}, r"data\.standin\.n_train_users: must be <= 1000"),
           ({"n_per_class": 3}, r"data\.standin\.n_per_class: not an argument of the dvs128_gesture stand-in"),
           ({"size": "big"}, r"data\.standin\.size: expected int, got 'big'"),
           ({"size": 8}, r"data\.standin\.size: must be >= 16"),
           ({"lightings": ["a/b"]}, r"data\.standin\.lightings: expected 1 to 16 names"),
           ({"lightings": ["x"] * 100}, r"data\.standin\.lightings: expected 1 to 16 names")]
    for standin, msg in bad:
        with pytest.raises(ConfigError, match=msg):
            validate_config(_with(GESTURE, "data", "standin", standin))
    with pytest.raises(ConfigError, match=r"data\.standin: only for the event datasets"):
        validate_config(_with(MNIST, "data", "standin", {"size": 32}))
    cifar = _with(GESTURE, "data", "dataset", "cifar10_dvs")
    cifar["model"]["n_classes"] = 10
    assert validate_config(_with(cifar, "data", "standin", {"n_per_class": 3}))
    with pytest.raises(ConfigError, match=r"data\.standin\.n_per_class: must be <= 100000"):
        validate_config(_with(cifar, "data", "standin", {"n_per_class": 10**8}))


# --------------------------------------------------------------------------------------------------
# the NaN scan, meta tensors, the float32 range
# --------------------------------------------------------------------------------------------------
def test_the_nan_scan_of_an_expanded_input_scans_only_its_base(monkeypatch):
    scanned = []
    real_isfinite = torch.isfinite
    monkeypatch.setattr(torch, "isfinite", lambda t: scanned.append(t.numel()) or real_isfinite(t))
    T, B, N = 1_000_000, 4, 256  # expanded: 10^9 elements, a 1 GB mask; the base has 1,024
    x = snnedu.DirectEncoder(T)(torch.rand(B, N))
    assert x.shape == (T, B, N) and x.stride()[0] == 0
    checks.tensor_input("LIF", x, min_dim=2, layout="[T, B, ...]")
    assert scanned and max(scanned) == B * N
    bad = torch.rand(B, N)
    bad[1, 2], bad[3, 4] = float("nan"), float("inf")
    with pytest.raises(InputError, match=r"1000000 NaN and 1000000 inf values in a tensor of shape "
                                         r"\[1000000, 4, 256\]"):
        checks.check_finite("LIF", bad.expand(T, B, N))
    assert max(scanned) == B * N
    # a partly expanded input (a broadcast inner dim) is scanned without its copies too
    part = torch.rand(7, 1, 5).expand(7, 300, 5)
    checks.check_finite("x", part)
    assert scanned[-1] == 35
    assert checks.unexpanded(part).shape == (7, 5)


def test_an_expanded_input_through_a_neuron_gives_the_same_spikes():
    x = torch.rand(3, 16) * 2
    expanded = snnedu.DirectEncoder(5)(x)
    assert torch.equal(snnedu.LIF()(expanded), snnedu.LIF()(expanded.contiguous()))


def test_meta_tensors_skip_the_nan_scan():
    x = torch.zeros(4, 3, 5, device="meta")
    checks.check_finite("x", x)
    assert checks.tensor_input("LIF", x, min_dim=2, layout="[T, B, ...]") is x
    for neuron in (snnedu.IF(), snnedu.LIF(), snnedu.PLIF()):
        y = neuron(x)
        assert y.device.type == "meta" and y.shape == x.shape


@pytest.mark.parametrize("make,name", [
    (lambda: snnedu.LIF(v_reset=-1e300), "v_reset"), (lambda: snnedu.IF(v_threshold=1e-300), "v_threshold"),
    (lambda: snnedu.LIF(tau=1e300), "tau"), (lambda: snnedu.PLIF(tau_init=1e39), "tau_init"),
    (lambda: snnedu.MLF(a=1e-40), "a"), (lambda: snnedu.LIF(v_threshold=10**400), "v_threshold"),
])
def test_hyper_parameters_outside_the_float32_range_are_refused(make, name):
    with pytest.raises(HyperParameterError, match=rf"^{name}.* (is outside the float32 range|must be a finite "
                                                  r"number, got an integer with)"):
        make()


def test_hyper_parameters_at_the_edges_of_the_float32_range_still_work():
    lif = snnedu.LIF(v_reset=0.0, v_threshold=3e38, tau=2.0)
    out = lif(torch.ones(2, 1, 3))
    assert torch.isfinite(out).all() and out.sum() == 0
    assert snnedu.IF(v_threshold=1.2e-38)(torch.ones(1, 1, 2)).sum() == 2


# --------------------------------------------------------------------------------------------------
# short messages; strict YAML for study files too
# --------------------------------------------------------------------------------------------------
def test_messages_never_repr_a_huge_value():
    bomb = ["x"] * 9
    for _ in range(9):
        bomb = [bomb] * 9  # 9^10 leaves: its repr would be gigabytes
    long_text = "y" * 10**6
    cases = [lambda: validate_config(_with(MNIST, "data", "dataset", bomb)),
             lambda: validate_config(_with(MNIST, "data", "T", bomb)),
             lambda: validate_config(_with(MNIST, "data", "encoding", long_text)),
             lambda: validate_config({**MNIST, long_text: 1}),
             lambda: validate_config(_with(MNIST, "model", "neuron", {"type": "LIF", "surrogate": long_text})),
             lambda: validate_config(_with(MNIST, "model", "neuron", {"type": "LIF", "tau": bomb})),
             lambda: snnedu.LIF(tau=bomb), lambda: snnedu.LIF(surrogate=long_text),
             lambda: snnedu.DirectEncoder(bomb)]
    for i, case in enumerate(cases):
        with pytest.raises((ConfigError, HyperParameterError)) as info:
            case()
        assert len(str(info.value)) < 400 and "\n" not in str(info.value), (i, str(info.value)[:500])
    assert checks.short_repr(bomb).endswith("...") and len(checks.short_repr(bomb)) == 80


def _study_text(extra: str = "") -> str:
    return ("name: s\nbase:\n  data: {dataset: mnist, T: 2, batch_size: 8}\n"
            "  model: {arch: spiking_mlp, neuron: {type: LIF}}\n  train: {epochs: 1, lr: 0.001}\nseeds: [0]\n"
            + extra)


def test_study_files_refuse_duplicate_keys_aliases_and_huge_files(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(_study_text())
    assert load_study(p)["name"] == "s"
    p.write_text(_study_text("seeds: [1]\n"))
    with pytest.raises(StudyError, match=r"s\.yaml: line 7: duplicate key 'seeds'"):
        load_study(p)
    bomb = "x: &a [z, z, z, z, z, z, z, z, z]\n" + "".join(
        f"{c}: &{c} [*{p_}, *{p_}, *{p_}, *{p_}, *{p_}, *{p_}, *{p_}, *{p_}, *{p_}]\n"
        for p_, c in zip("abcdefgh", "bcdefghi"))
    p.write_text(_study_text(bomb))
    assert p.stat().st_size < 2048
    with pytest.raises(StudyError, match=r"line 8: YAML aliases \(\*name\) are not allowed"):
        load_study(p)
    p.write_text(_study_text("# " + "x" * MAX_YAML_BYTES + "\n"))
    with pytest.raises(StudyError, match="larger than 1 MiB"):
        load_study(p)
    with pytest.raises(StudyError, match="no such study file"):
        load_study(tmp_path / "missing.yaml")
    with pytest.raises(StudyError, match="cannot read the study file .is a directory"):
        load_study(tmp_path)
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config(p)
    assert main(["study", str(p), "--check"]) == 2
