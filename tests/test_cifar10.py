import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn

import snnedu
from snnedu.data import load_cifar10, make_loaders, synthetic_cifar10
from snnedu.data import cifar10
from snnedu.data.cifar10 import CIFAR10_MEAN, CIFAR10_STD, SYNTH_CLASSES, SYNTH_SOURCE

LOW = min((0 - m) / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD))    # normalised value of a 0 pixel
HIGH = max((1 - m) / s for m, s in zip(CIFAR10_MEAN, CIFAR10_STD))   # ... and of a 255 pixel


def _no_empty_dirs(root):
    return not root.exists() or not any(p.is_dir() and not any(p.iterdir()) for p in root.rglob("*"))


def _stack(ds, n=None):
    n = len(ds) if n is None else n
    xs, ys = zip(*(ds[i] for i in range(n)))
    return torch.stack(xs), torch.stack(ys)


def test_offline_fallback_is_the_named_generated_standin(tmp_path, capsys):
    root = tmp_path / "data"
    data = load_cifar10(root=root, download=True)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    line = out[0]
    assert "real CIFAR-10 unavailable" in line and "SynthShapes-10" in line
    assert "generated" in line and "NOT CIFAR-10" in line
    assert data.offline_standin and data.source.startswith(SYNTH_SOURCE) and data.source in line
    assert len(data.train) == 5000 and len(data.test) == 1000
    assert data.train.classes == SYNTH_CLASSES
    # the failed download left no empty folders behind (root did not exist before, so it must be gone)
    assert not root.exists()


def test_shapes_dtype_balance_and_normalised_range():
    data = load_cifar10(root="/nonexistent/snnedu-cifar", download=False, verbose=False,
                        n_train=1000, n_test=200, augment=False)
    assert torch.bincount(data.train.targets).tolist() == [100] * 10
    assert torch.bincount(data.test.targets).tolist() == [20] * 10
    assert data.train.images.dtype == torch.uint8 and data.train.images.shape == (1000, 3, 32, 32)
    x, y = data.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    xs, _ = _stack(data.train, 300)
    assert LOW - 1e-4 <= xs.min() and xs.max() <= HIGH + 1e-4
    assert xs.min() < -1 and xs.max() > 1              # really normalised, not left in [0, 1]
    # normalisation is exactly (x/255 - mean) / std of the stored uint8 image
    raw = data.train.images[0].float() / 255
    ref = (raw - torch.tensor(CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(CIFAR10_STD).view(3, 1, 1)
    assert torch.allclose(x, ref, atol=1e-5)
    plain = load_cifar10(root="/nonexistent/snnedu-cifar", download=False, verbose=False,
                         n_train=1000, n_test=200, augment=False, normalize=False)
    xp, _ = plain.train[0]
    assert 0 <= xp.min() and xp.max() <= 1 and torch.equal(xp, raw)
    # odd sizes stay as balanced as possible
    xtr, ytr, _, _ = synthetic_cifar10(23, 10, seed=4)
    assert len(ytr) == 23 and set(torch.bincount(ytr, minlength=10).tolist()) == {2, 3}


def test_generation_is_deterministic():
    # (speed is a benchmark matter, never a unit-test assertion: no timing here)
    a = synthetic_cifar10(600, 100, seed=11)
    b = synthetic_cifar10(600, 100, seed=11)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    cifar10._SYNTH_CACHE.clear()                                   # regenerate, not just the cache
    c = synthetic_cifar10(600, 100, seed=11)
    assert all(torch.equal(u, v) for u, v in zip(a, c))
    d = synthetic_cifar10(600, 100, seed=12)
    assert not torch.equal(a[0], d[0]) and not torch.equal(a[2], d[2])
    # train and test are different draws; the train set does not depend on n_test
    assert not torch.equal(a[0][:100], a[2])
    e = synthetic_cifar10(600, 50, seed=11)
    assert torch.equal(a[0], e[0]) and torch.equal(a[1], e[1])


def test_augmentation_only_on_train_and_reproducible():
    kw = dict(root="/nonexistent/snnedu-cifar", download=False, verbose=False, n_train=200, n_test=50, seed=3)
    data = load_cifar10(**kw)
    # test split: no augmentation, every access identical
    assert torch.equal(data.test[5][0], data.test[5][0])
    # train split: the same stored image comes back cropped/flipped differently on later accesses
    first = [data.train[i][0] for i in range(20)]
    second = [data.train[i][0] for i in range(20)]
    assert sum(not torch.equal(u, v) for u, v in zip(first, second)) >= 10
    # ... each a shifted and possibly mirrored copy of the un-augmented image (zero padding shows up
    # as the normalised value of a black pixel)
    plain = load_cifar10(**{**kw, "augment": False})
    black = (-torch.tensor(CIFAR10_MEAN) / torch.tensor(CIFAR10_STD)).view(3, 1, 1)
    for i in range(5):
        padded = black.expand(3, 40, 40).clone()
        padded[:, 4:36, 4:36] = plain.train[i][0]
        crops = [padded[:, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        crops += [c.flip(-1) for c in crops]
        assert any(torch.allclose(first[i], c, atol=1e-5) for c in crops)
    assert any(not torch.allclose(f, plain.train[i][0]) for i, f in enumerate(first))
    # a fresh load with the same seed replays the same augmented sequence; another seed does not
    again = load_cifar10(**kw)
    assert all(torch.equal(u, again.train[i][0]) for i, u in enumerate(first))
    other = load_cifar10(**{**kw, "seed": 4})
    assert not torch.equal(other.train.images, data.train.images)
    # seeded loaders give the same augmented batches twice, in the main process and with workers
    for workers in (0, 2):
        b1 = next(iter(make_loaders(load_cifar10(**kw), batch_size=16, seed=1, num_workers=workers)[0]))[0]
        b2 = next(iter(make_loaders(load_cifar10(**kw), batch_size=16, seed=1, num_workers=workers)[0]))[0]
        assert torch.equal(b1, b2)


def test_no_fallback_raises_with_where_to_put_files(tmp_path):
    with pytest.raises(snnedu.DataError, match="cifar-10-batches-py"):
        load_cifar10(root=tmp_path, download=False, offline_fallback=False)
    with pytest.raises(snnedu.DataError, match="data_batch_1"):
        load_cifar10(root=tmp_path / "x", download=True, offline_fallback=False, verbose=False)
    assert _no_empty_dirs(tmp_path) and not (tmp_path / "x").exists()


def _write_fake_cifar(folder, n_per_batch=6, n_test=8):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else n_per_batch
        entry = {"batch_label": name, "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, n).tolist(), "filenames": [f"{name}_{i}.png" for i in range(n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
        batches[name] = entry
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": n_per_batch, "num_vis": 3072}, f, protocol=2)
    return batches


def test_local_copy_in_torchvision_layout_is_used(tmp_path, capsys):
    batches = _write_fake_cifar(tmp_path / "cifar-10-batches-py")
    data = load_cifar10(root=tmp_path, download=False, augment=False, normalize=False)
    assert "torchvision files under" in capsys.readouterr().out
    assert not data.offline_standin and data.source.startswith("CIFAR-10 (")
    assert len(data.train) == 30 and len(data.test) == 8
    assert data.train.classes[0] == "airplane"
    # pixel layout: each row of 3072 bytes is R plane, G plane, B plane, each 32x32 row-major
    row = batches["data_batch_2"]["data"][1]
    x, y = data.train[6 + 1]
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(row.reshape(3, 32, 32)))
    assert int(y) == batches["data_batch_2"]["labels"][1]
    x_test, _ = data.test[0]
    assert torch.equal((x_test * 255).round().to(torch.uint8),
                       torch.from_numpy(batches["test_batch"]["data"][0].reshape(3, 32, 32)))
    # a missing batch means "no local copy"
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(snnedu.DataError, match="data_batch_3"):
        load_cifar10(root=tmp_path, download=False, offline_fallback=False)


def _tiny_cnn():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 32),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def _accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_standin_is_learnable_by_shape_but_not_by_colour():
    data = load_cifar10(root="/nonexistent/snnedu-cifar", download=False, verbose=False,
                        n_train=1000, n_test=500, augment=False, seed=0)
    xtr, ytr = _stack(data.train)
    xte, yte = _stack(data.test)
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    cnn = _tiny_cnn()
    opt = torch.optim.Adam(cnn.parameters(), lr=3e-3)
    for _ in range(150):
        i = torch.randint(0, len(xtr), (64,), generator=g)
        loss = nn.functional.cross_entropy(cnn(xtr[i]), ytr[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    cnn_acc = _accuracy(cnn, xte, yte)
    # a linear probe on the mean colour of the image: the colours carry (almost) no class information
    ftr, fte = xtr.mean((2, 3)), xte.mean((2, 3))
    probe = nn.Linear(3, 10)
    opt = torch.optim.Adam(probe.parameters(), lr=0.05)
    for _ in range(300):
        loss = nn.functional.cross_entropy(probe(ftr), ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    colour_acc = _accuracy(probe, fte, yte)
    assert cnn_acc > 0.40, cnn_acc          # measured ~0.66-0.72 across data/init seeds
    assert colour_acc < 0.20, colour_acc    # measured ~0.09-0.13 (chance 0.10)
