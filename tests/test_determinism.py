"""Seeded runs are bit-identical on CPU; :func:`snnedu.set_deterministic` sets and restores its flags.

What is and is not deterministic (CPU, CUDA, threads, Triton, AMP, DDP, workers) is documented in
:mod:`snnedu.determinism`; these tests hold the CPU claims and the static ones about the kernels.
Thread counts: the fit runs use one thread (PyTorch's CPU reductions and BLAS/oneDNN kernels may add
in another order with another thread count, so a 1-thread and a 2-thread run are not compared); the
numba kernels are compared across thread counts because their results must not depend on them.
"""
import inspect
import os

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

import snnedu
from snnedu import IF, LIF, MLF, PLIF, PMLF, PMLF3
from snnedu import determinism as D
from snnedu.kernels import use_backend

from neuron_cases import CASES

FAMILIES = CASES   # every exported neuron family, in several settings (tests/neuron_cases.py)


@pytest.fixture
def threads():
    """Set the thread count for a test (restored afterwards)."""
    n = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(n)


def _forward_backward(make, x, seed=0):
    torch.manual_seed(seed)            # same initial values (tau_std, threshold_noise) every time
    neuron = make()
    x = x.clone().requires_grad_()
    out = neuron(x)
    (out * torch.linspace(0.5, 1.5, out.shape[-1])).sum().backward()
    return [out.detach(), x.grad] + [p.grad for p in neuron.parameters()]


def _equal(a, b):
    return len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b))


# -- the multi-step backends -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["cpu", "reference"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_backend_is_deterministic_run_to_run(family, backend):
    x = torch.rand(6, 4, 1500, generator=torch.Generator().manual_seed(1)) * 2   # 6000 elements: 6 blocks
    with use_backend(backend):
        first = _forward_backward(FAMILIES[family], x)
        assert _equal(first, _forward_backward(FAMILIES[family], x))
    assert len(first) >= 2 and first[1].abs().sum() > 0      # a gradient was computed at all


@pytest.mark.parametrize("family", list(CASES))
def test_cpu_kernel_results_do_not_depend_on_the_thread_count(family, threads):
    """Fixed blocks of 1024 elements, one thread each, no reduction across blocks in the kernel."""
    x = torch.rand(5, 4, 1500, generator=torch.Generator().manual_seed(2)) * 2
    with use_backend("cpu"):
        threads(1)
        one = _forward_backward(FAMILIES[family], x)
        threads(2)
        two = _forward_backward(FAMILIES[family], x)
    # spikes and input gradients are per element; parameter gradients are then summed by torch.sum,
    # which is serial below its grain size (32768 elements), as here
    assert _equal(one, two)


def test_triton_kernels_have_no_atomics_and_no_autotuning():
    """What makes the CUDA kernels deterministic (module docstring of snnedu.determinism) stays true."""
    from snnedu.kernels import triton_neuron
    src = inspect.getsource(triton_neuron)
    assert "atomic" not in src and "autotune" not in src
    # the only in-kernel reduction is over the K levels (axis 0) of one program's block
    assert src.count("tl.reduce(") == 2 and src.count(", 0, _add_combine)") == 2


def test_triton_kernels_are_deterministic_in_the_interpreter(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    from snnedu.kernels import triton_neuron
    if not triton_neuron.available():
        pytest.skip("this Triton build has no interpreter")
    x = torch.rand(3, 2, 5, generator=torch.Generator().manual_seed(3)) * 2
    with use_backend("triton"):
        for family in ("PLIF", "PMLF3"):
            assert _equal(_forward_backward(FAMILIES[family], x), _forward_backward(FAMILIES[family], x))


# -- encoding and training ----------------------------------------------------------------------------------
def test_poisson_encoding_follows_the_seed_and_not_the_thread_count(threads):
    x = torch.rand(16, 1, 64, 64, generator=torch.Generator().manual_seed(4))   # 64k pixels x T = 8

    def enc(seed, **kw):
        torch.manual_seed(seed)
        return snnedu.poisson_encode(x, 8, **kw)
    threads(1)
    a = enc(0)
    threads(2)
    assert torch.equal(a, enc(0)) and not torch.equal(a, enc(1))
    # a private generator: reproducible from its own seed, untouched by draws from the global RNG
    g = snnedu.PoissonEncoder(8, generator=torch.Generator().manual_seed(5))
    first = g(x)
    torch.rand(1000)
    again = snnedu.PoissonEncoder(8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, again(x)) and not torch.equal(first, g(x))
    assert not torch.equal(first, snnedu.PoissonEncoder(8, generator=torch.Generator().manual_seed(6))(x))


def _data(seed, n=96):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    x = torch.rand(n, 1, 8, 8, generator=g) * 0.5
    for c in range(3):
        x[y == c, 0, 2 * c:2 * c + 3] += 0.5
    return TensorDataset(x, y)


def _fit(seed, backend="auto"):
    """2 epochs of a Poisson-encoded PLIF CNN (learnable tau, batch norm, max pooling) on shuffled data."""
    torch.manual_seed(100)                                   # the same initial weights every time
    net = nn.Sequential(snnedu.PoissonEncoder(4), snnedu.SpikingCNN(
        (1, 8, 8), channels=4, hidden=12, n_classes=3, neuron=lambda: PLIF(learn_threshold=True)))
    train = DataLoader(_data(0), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(7))
    val = DataLoader(_data(1, 48), batch_size=24)
    with use_backend(backend):
        hist = snnedu.fit(net, train, val, epochs=2, lr=0.02, seed=seed, progress=False, verbose=False,
                          device="cpu")
    rows = [{k: v for k, v in row.items() if k != "time_s"} for row in hist]
    return {k: v.clone() for k, v in net.state_dict().items()}, rows


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("backend", ["cpu", "reference"])
def test_seeded_fit_is_bit_identical(backend, threads):
    threads(1)
    w1, h1 = _fit(0, backend)
    w2, h2 = _fit(0, backend)
    assert _same_weights(w1, w2) and h1 == h2
    assert len(h1) == 2 and h1[0]["train_loss"] != h1[1]["train_loss"]   # it did train
    if backend == "cpu":
        w3, h3 = _fit(1, backend)                  # another seed: other Poisson spikes, other weights
        assert not _same_weights(w1, w3) and h1 != h3


# -- set_deterministic ----------------------------------------------------------------------------------------
@pytest.fixture
def restore_flags(monkeypatch):
    """Snapshot the global flags and put them back, whatever a test does."""
    state = D.deterministic_state()
    yield monkeypatch
    D._apply(state)


def test_set_deterministic_sets_and_clears_the_flags(restore_flags):
    restore_flags.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.backends.cudnn.benchmark = True
    previous = snnedu.set_deterministic()
    assert previous["cudnn_benchmark"] is True and previous["cublas_workspace"] is None
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    snnedu.set_deterministic(warn_only=True)
    assert torch.is_deterministic_algorithms_warn_only_enabled()
    snnedu.set_deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ            # it had set it: it removes it
    restore_flags.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")       # a user's value is never touched
    snnedu.set_deterministic()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    snnedu.set_deterministic(False)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_deterministic_block_restores_everything(restore_flags):
    restore_flags.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    torch.backends.cudnn.benchmark = True
    before = D.deterministic_state()
    with snnedu.deterministic(warn_only=True) as previous:
        assert previous == before
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
    assert D.deterministic_state() == before
    with pytest.raises(RuntimeError, match="inside"):
        with snnedu.deterministic():
            raise RuntimeError("inside")
    assert D.deterministic_state() == before
    assert "set_deterministic" in snnedu.__all__ and snnedu.set_deterministic is D.set_deterministic


def test_training_in_deterministic_mode_equals_normal_mode(restore_flags, threads):
    """On CPU the mode changes no result. Under it PyTorch fills new memory (torch.empty) with NaN,
    so equal finite results also show that no kernel reads memory it did not write."""
    threads(1)
    w_plain, h_plain = _fit(0)
    with snnedu.deterministic():
        assert torch.utils.deterministic.fill_uninitialized_memory
        w_det, h_det = _fit(0)
        net = snnedu.resnet14(neuron=MLF, channels=(4, 4, 8), in_channels=2, n_classes=3)
        net(torch.rand(2, 2, 2, 8, 8)).sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters())
    assert _same_weights(w_plain, w_det) and h_plain == h_det
    assert all(torch.isfinite(v).all() for v in w_det.values() if v.is_floating_point())


_NO_DETERMINISTIC_CUDA_BACKWARD = (nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d, nn.AvgPool3d,
                                   nn.FractionalMaxPool2d, nn.MaxUnpool2d, nn.ReflectionPad2d, nn.Upsample,
                                   nn.EmbeddingBag, nn.CTCLoss, nn.MaxPool3d)


@pytest.mark.parametrize("make", [
    lambda: snnedu.resnet20(neuron=MLF), lambda: snnedu.resnet19(neuron=LIF),
    lambda: snnedu.PLIFDVSNet.dvs128_gesture(channels=8, input_size=64), lambda: snnedu.PLIFStaticNet("cifar10"),
    lambda: snnedu.SpikingCNN(), lambda: snnedu.SpikingMLP(batch_norm=True)])
def test_models_avoid_layers_without_a_deterministic_cuda_backward(make):
    bad = [type(m).__name__ for m in make().modules() if isinstance(m, _NO_DETERMINISTIC_CUDA_BACKWARD)]
    assert bad == []


def test_resnet_global_pool_equals_adaptive_average_pooling():
    net = snnedu.SpikingResNet((1,), (4,), neuron=IF, v_threshold=1.0, in_channels=2)
    h = torch.rand(3, 2, 4, 5, 7)
    ref = nn.AdaptiveAvgPool2d(1)(h.flatten(0, 1)).reshape(3, 2, 4)
    torch.testing.assert_close(net.pool(h), ref, rtol=1e-6, atol=1e-7)
