import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import snnedu
from snnedu.train import TrainingError, load_checkpoint


def _task(seed=0, n=256):
    """A small learnable 3-class problem: class = which third of the features is bright."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.rand(n, 12, generator=g) * 0.3
    for c in range(3):
        x[y == c, 4 * c:4 * c + 4] += 0.6
    return TensorDataset(x, y)


def _loaders(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (DataLoader(_task(0), batch_size=32, shuffle=True, generator=g),
            DataLoader(_task(1, 96), batch_size=64))


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(snnedu.DirectEncoder(4),
                         snnedu.SpikingMLP(input_shape=(12,), hidden=(24,), n_classes=3))


def test_fit_learns_and_reports_history(capsys):
    train, test = _loaders()
    hist = snnedu.fit(_net(), train, test, epochs=4, lr=2e-2, seed=0, progress=False, device="cpu")
    assert len(hist) == 4 and hist["epoch"] == [1, 2, 3, 4]
    assert hist[-1]["val_acc"] > 90.0  # chance is 33 %
    assert hist.best("val_acc")["val_acc"] == max(hist["val_acc"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[0].startswith("epoch 1/4: train loss")
    ev = snnedu.evaluate(_net(), test, device="cpu")  # untrained: near chance
    assert set(ev) == {"loss", "acc", "n"} and ev["n"] == 96 and ev["acc"] < 60


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    train, test = _loaders()
    full = _net()
    snnedu.fit(full, train, test, epochs=3, lr=1e-2, seed=0, progress=False, verbose=False, device="cpu")

    ckpt = tmp_path / "run" / "ckpt.pt"
    train, test = _loaders()
    part = _net()
    snnedu.fit(part, train, test, epochs=1, lr=1e-2, seed=0, progress=False, verbose=False,
               device="cpu", checkpoint=ckpt)  # "killed" after epoch 1
    assert load_checkpoint(ckpt)["epoch"] == 1
    train, test = _loaders()
    resumed = _net(seed=123)  # a different init: everything must come from the checkpoint
    hist = snnedu.fit(resumed, train, test, epochs=3, lr=1e-2, seed=0, progress=False, verbose=False,
                      device="cpu", checkpoint=ckpt)
    assert hist["epoch"] == [1, 2, 3]
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert not list(ckpt.parent.glob("*.tmp*"))  # atomic writes leave no temporaries
    # a finished run resumes to a no-op
    again = snnedu.fit(_net(), train, test, epochs=3, lr=1e-2, progress=False, verbose=False,
                       device="cpu", checkpoint=ckpt)
    assert again["epoch"] == [1, 2, 3]


def test_checkpoint_loads_with_weights_only(tmp_path):
    train, test = _loaders()
    ckpt = tmp_path / "c.pt"
    snnedu.fit(_net(), train, None, epochs=1, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert {"epoch", "model", "optimizer", "history", "rng"} <= set(state)


def test_non_finite_loss_stops_without_touching_the_checkpoint(tmp_path):
    train, test = _loaders()
    ckpt = tmp_path / "c.pt"
    net = _net()
    snnedu.fit(net, train, None, epochs=1, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    before = ckpt.read_bytes()

    def nan_loss(out, y):
        return snnedu.rate_cross_entropy(out, y) * float("nan")

    with pytest.raises(TrainingError, match="loss became nan at epoch 2, batch 1"):
        snnedu.fit(net, train, None, epochs=2, loss_fn=nan_loss, progress=False, verbose=False,
                   device="cpu", checkpoint=ckpt)
    assert ckpt.read_bytes() == before


def test_mismatched_or_corrupt_checkpoint_is_a_clear_error(tmp_path):
    train, _ = _loaders()
    ckpt = tmp_path / "c.pt"
    snnedu.fit(_net(), train, None, epochs=1, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    other = nn.Sequential(snnedu.DirectEncoder(4), snnedu.SpikingMLP(input_shape=(12,), hidden=(5,), n_classes=3))
    with pytest.raises(TrainingError, match="does not match this model"):
        snnedu.fit(other, train, None, epochs=2, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(TrainingError, match="cannot read checkpoint"):
        snnedu.fit(_net(), train, None, epochs=2, progress=False, verbose=False, device="cpu", checkpoint=bad)


def test_regularizer_is_added_to_the_loss():
    train, _ = _loaders()
    net = nn.Sequential(snnedu.DirectEncoder(4), snnedu.SpikingMLP(
        input_shape=(12,), hidden=(24,), n_classes=3,
        neuron=lambda: snnedu.PLIF(per_neuron=True, shape=(24,), tau_std=0.5)))
    hist = snnedu.fit(net, train, None, epochs=1, regularizer=snnedu.TauVarianceRegularizer(10.0),
                      seed=0, progress=False, verbose=False, device="cpu")
    plain = snnedu.fit(net, train, None, epochs=1, seed=0, progress=False, verbose=False, device="cpu")
    assert hist[0]["train_loss"] > plain[0]["train_loss"]


def test_evaluate_rejects_empty_loader():
    with pytest.raises(TrainingError, match="empty loader"):
        snnedu.evaluate(_net(), [], device="cpu")


def test_tqdm_disable_variable_silences_bars_even_with_progress_true(monkeypatch, capsys):
    train, _ = _loaders()
    monkeypatch.setenv("TQDM_DISABLE", "1")
    snnedu.fit(_net(), train, None, epochs=1, progress=True, verbose=False, device="cpu")
    assert "epoch 1/1" not in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "0")
    snnedu.fit(_net(), train, None, epochs=1, progress=True, verbose=False, device="cpu")
    assert "epoch 1/1" in capsys.readouterr().err  # the bar is drawn on stderr


def test_resume_with_another_kind_of_optimizer_is_a_clear_error(tmp_path):
    # issue #15 item 1: Adam's state loaded into SGD failed later with KeyError: 'momentum'
    train, test = _loaders()
    ckpt = tmp_path / "c.pt"
    snnedu.fit(_net(), train, None, epochs=1, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    net = _net()
    with pytest.raises(TrainingError, match="optimizer Adam, this run uses SGD"):
        snnedu.fit(net, train, None, epochs=2, optimizer=torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
                   progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    # a checkpoint that does not name its optimizer class: told by the settings SGD's step needs
    state = load_checkpoint(ckpt)
    del state["optimizer_class"]
    snnedu.train.save_checkpoint(ckpt, **state)
    with pytest.raises(TrainingError, match="another kind of optimizer .*momentum"):
        snnedu.fit(net, train, None, epochs=2, optimizer=torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9),
                   progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    # meta: a checkpoint written with other settings is refused, naming them
    ckpt2 = tmp_path / "m.pt"
    snnedu.fit(_net(), train, None, epochs=1, progress=False, verbose=False, device="cpu", checkpoint=ckpt2,
               meta={"lr": 1e-3, "loss": "ce"})
    with pytest.raises(snnedu.train.CheckpointMismatch, match=r"lr \(0.001 -> 0.01\), loss \('ce' -> 'mse'\)"):
        snnedu.fit(_net(), train, None, epochs=2, progress=False, verbose=False, device="cpu", checkpoint=ckpt2,
                   meta={"lr": 1e-2, "loss": "mse"})
    hist = snnedu.fit(_net(), train, None, epochs=2, progress=False, verbose=False, device="cpu",
                      checkpoint=ckpt2, meta={"lr": 1e-3, "loss": "ce"})
    assert hist["epoch"] == [1, 2]


def test_checkpoint_without_rng_or_model_is_handled(tmp_path, capsys):
    # issue #15 item 14: a checkpoint without 'rng' gave a KeyError
    train, test = _loaders()
    ckpt = tmp_path / "c.pt"
    snnedu.fit(_net(), train, None, epochs=1, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    state = load_checkpoint(ckpt)
    del state["rng"]
    snnedu.train.save_checkpoint(ckpt, **state)
    hist = snnedu.fit(_net(), train, None, epochs=2, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    assert hist["epoch"] == [1, 2]
    assert "holds no RNG state" in capsys.readouterr().out
    del state["model"]
    snnedu.train.save_checkpoint(ckpt, **state)
    with pytest.raises(TrainingError, match="lacks model"):
        snnedu.fit(_net(), train, None, epochs=3, progress=False, verbose=False, device="cpu", checkpoint=ckpt)


def test_grad_clip_must_be_positive_or_none(tmp_path):
    # issue #15 item 2: grad_clip=0 trained nothing (constant loss), grad_clip=-1 was gradient ascent
    train, _ = _loaders()
    for bad in (0, 0.0, -1, -1e-9, float("nan"), float("inf"), "1", True):
        with pytest.raises(snnedu.HyperParameterError, match="grad_clip"):
            snnedu.fit(_net(), train, None, epochs=1, grad_clip=bad, progress=False, verbose=False, device="cpu")
    hist = snnedu.fit(_net(), train, None, epochs=2, grad_clip=0.5, lr=2e-2, seed=0, progress=False,
                      verbose=False, device="cpu")
    assert hist[1]["train_loss"] < hist[0]["train_loss"]  # it descends


def test_fit_refuses_what_would_train_nothing_or_silently_otherwise(tmp_path):
    # issue #15 item 5
    train, _ = _loaders()
    ckpt = tmp_path / "c.pt"
    for empty in ([], DataLoader(TensorDataset(torch.zeros(0, 12), torch.zeros(0, dtype=torch.long)), batch_size=4)):
        with pytest.raises(TrainingError, match="train_loader is empty"):
            snnedu.fit(_net(), empty, None, epochs=2, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    with pytest.raises(TrainingError, match="val_loader is empty"):
        snnedu.fit(_net(), train, [], epochs=1, progress=False, verbose=False, device="cpu")
    # an iterable without a length that yields nothing: found out after the epoch, before the checkpoint
    with pytest.raises(TrainingError, match="gave no samples in epoch 1"):
        snnedu.fit(_net(), iter([]), None, epochs=1, progress=False, verbose=False, device="cpu", checkpoint=ckpt)
    assert not ckpt.exists()
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(snnedu.HyperParameterError, match="epochs"):
            snnedu.fit(_net(), train, None, epochs=bad, progress=False, verbose=False, device="cpu")
    for bad in (0.0, -1e-3, float("nan")):
        with pytest.raises(snnedu.HyperParameterError, match="lr"):
            snnedu.fit(_net(), train, None, epochs=1, lr=bad, progress=False, verbose=False, device="cpu")
    # amp=True on CPU is said, not silently ignored; result.json's "amp" says what ran
    with pytest.warns(UserWarning, match="mixed precision is used on CUDA only"):
        snnedu.fit(_net(), train, None, epochs=1, amp=True, progress=False, verbose=False, device="cpu")
    # label -100 (PyTorch's "ignore") and labels >= C are errors, not silently dropped or wrapped
    for label in (-100, -1, 3):
        x = torch.rand(8, 12)
        y = torch.tensor([0, 1, 2, 0, 1, 2, 0, label])
        with pytest.raises(snnedu.InputError, match=r"class indices must be in \[0, 2\]"):
            snnedu.fit(_net(), [(x, y)], None, epochs=1, progress=False, verbose=False, device="cpu")
        for loss in (snnedu.rate_mse, snnedu.TETLoss()):
            with pytest.raises(snnedu.InputError, match="class indices"):
                loss(torch.rand(4, 8, 3), y)
    with pytest.raises(snnedu.InputError, match="integer class indices"):
        snnedu.rate_cross_entropy(torch.rand(4, 8, 3), torch.zeros(8))


def test_fit_and_evaluate_edge_cases_are_clear_errors():
    # issue #15 item 14: a loader of 3-tuples ("too many values to unpack"); evaluate on a model
    # without parameters (StopIteration)
    x, y = torch.rand(8, 12), torch.randint(0, 3, (8,))
    with pytest.raises(TrainingError, match=r"train_loader batch 1 is a tuple of 3; expected \(x, y\)"):
        snnedu.fit(_net(), [(x, y, y)], None, epochs=1, progress=False, verbose=False, device="cpu")
    with pytest.raises(TrainingError, match=r"loader batch 1 is a tuple of 3"):
        snnedu.evaluate(_net(), [(x, y, y)], device="cpu")
    no_params = nn.Sequential(snnedu.DirectEncoder(2), snnedu.IF())  # [B, 3] -> [2, B, 3] spikes
    ev = snnedu.evaluate(no_params, [(torch.rand(4, 3), torch.tensor([0, 1, 2, 0]))])
    assert ev["n"] == 4 and 0 <= ev["acc"] <= 100
