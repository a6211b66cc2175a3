"""DistributedDataParallel training: two CPU processes (gloo) under torchrun end with identical weights.

The test launches this very file with ``python -m torch.distributed.run --nproc_per_node=2``; run as a
script it is the worker (``_worker``): a tiny SpikingMLP with per-neuron PLIF (lazily shaped
parameters, materialised before wrapping) trained for 3 steps by :func:`snnedu.fit` on random data.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

import snnedu
from snnedu import distributed as D

STEPS, BATCH, WORLD = 3, 4, 2


def _data(n: int) -> TensorDataset:
    g = torch.Generator().manual_seed(123)
    return TensorDataset(torch.rand(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g))


def _net() -> nn.Module:
    torch.manual_seed(7)  # the same initial weights in every process (DDP also broadcasts rank 0's)
    return nn.Sequential(snnedu.DirectEncoder(3),
                         snnedu.SpikingMLP(input_shape=(1, 6, 6), hidden=(16,), n_classes=3,
                                           neuron=lambda: snnedu.PLIF(per_neuron=True, tau_std=0.1)))


def _worker(out: Path) -> None:
    info = D.init_distributed()
    assert info.distributed and info.backend == "gloo" and info.world_size == WORLD
    net = _net()
    snnedu.materialize(net, torch.zeros(1, 1, 6, 6))  # per-neuron tau gets its shape before DDP
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    model = D.wrap_ddp(net, info.device)
    assert isinstance(model, nn.parallel.DistributedDataParallel)
    loader = D.distributed_loader(_data(WORLD * STEPS * BATCH), batch_size=BATCH, seed=0)
    assert len(loader) == STEPS
    hist = snnedu.fit(model, loader, epochs=1, lr=0.05, seed=0, device="cpu", progress=False,
                      checkpoint=out / "ckpt.pt", loss_fn=snnedu.rate_cross_entropy)
    snnedu.reset(model)  # reset reaches the neurons inside the wrapper
    torch.save({"initial": initial, "final": D.unwrap(model).state_dict(), "history": list(hist),
                "indices": list(iter(loader.sampler))}, out / f"rank{info.rank}.pt")
    D.cleanup()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", TQDM_DISABLE="1",
               PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={WORLD}", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", str(Path(__file__).resolve()),
           str(tmp_path)]
    r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{i}.pt", weights_only=False) for i in range(WORLD)]
    a, b = ranks[0]["final"], ranks[1]["final"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between the ranks"
    trained = [k for k in a if a[k].is_floating_point() and not torch.equal(a[k], ranks[0]["initial"][k])]
    assert any("decay_param" in k for k in trained) and any("weight" in k for k in trained), trained
    # each process trained on its own half of the data; the logged epoch is the sum over both
    assert set(ranks[0]["indices"]).isdisjoint(ranks[1]["indices"])
    h0, h1 = ([{k: v for k, v in row.items() if k != "time_s"} for row in r["history"]] for r in ranks)
    assert h0 == h1
    # only rank 0 wrote the checkpoint, and it loads into the plain (unwrapped) network
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt", "rank0.pt", "rank1.pt"]
    net = _net()
    snnedu.materialize(net, torch.zeros(1, 1, 6, 6))
    net.load_state_dict(snnedu.train.load_checkpoint(tmp_path / "ckpt.pt")["model"])
    assert all(torch.equal(net.state_dict()[k], a[k]) for k in a)
    assert r.stdout.count("epoch 1/1") == 1  # one progress line, from rank 0


def test_single_process_helpers_are_no_ops(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    info = D.init_distributed(device="cpu")
    assert (info.distributed, info.rank, info.world_size, info.backend) == (False, 0, 1, None)
    assert D.is_main_process() and not D.is_distributed() and D.world_size() == 1
    net = nn.Linear(3, 2)
    assert D.wrap_ddp(net, "cpu") is net and D.unwrap(net) is net
    loader = D.distributed_loader(_data(10), batch_size=4, seed=1)
    assert sorted(i for i in loader.sampler) == list(range(10)) and len(loader) == 3
    assert D.all_reduce_sum([1, 2.5]) == [1.0, 2.5]
    D.barrier()
    D.cleanup()


def test_wrap_ddp_refuses_lazily_shaped_parameters():
    net = snnedu.SpikingMLP(input_shape=(1, 6, 6), hidden=(8,), n_classes=3,
                            neuron=lambda: snnedu.PLIF(per_neuron=True))
    with pytest.raises(snnedu.SnneduError, match="materialize"):
        D.wrap_ddp(net)


if __name__ == "__main__":  # the worker, launched by torchrun from the first test
    _worker(Path(sys.argv[1]))
