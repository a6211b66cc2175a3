r"""Reproducible runs: what is bit-identical in snnedu, what is not, and the switch that helps on CUDA.

This docstring is the reference for determinism in snnedu. "Deterministic" below means: the same
program, with the same seed, on the same machine and software (torch, numba / Triton, CUDA / cuDNN
versions) gives bit-identical numbers run after run. Nothing is promised across different
hardware, library versions or thread counts, nor between the CPU and the GPU.

Seeding
-------
:func:`snnedu.seed_everything` (or ``fit(..., seed=...)``) seeds Python, NumPy and torch (CPU and every
CUDA device). A shuffled ``DataLoader`` draws its order from its own ``generator`` when it has one
(``DataLoader(..., shuffle=True, generator=torch.Generator().manual_seed(0))``), otherwise from the
global torch RNG; :func:`snnedu.fit` checkpoints that generator's state so a resumed run continues the
same order. :class:`snnedu.PoissonEncoder` draws from its ``generator`` or the global RNG;
:class:`snnedu.layers.SeqDropout`, per-neuron ``tau_std`` / ``threshold_noise`` initialisation and
weight initialisation draw from the global RNG.

CPU: deterministic
------------------
Seeded CPU runs are bit-identical (``tests/test_determinism.py`` trains twice and compares the weights
with ``torch.equal``), with two conditions:

- **the same number of threads** (``torch.get_num_threads()``): PyTorch's CPU reductions (``sum``,
  ``mean``, batch-norm statistics) and the BLAS / oneDNN kernels behind ``Linear`` and ``Conv2d``
  split their work by thread count, and a different split adds the floating-point numbers in a
  different order. (Intel MKL can pin its own order with ``MKL_CBWR=COMPATIBLE``, at a cost.)
  snnedu keeps the count you set: the first call of a numba kernel starts numba's thread pool, which
  used to reset torch's count as a side effect (a run pinned to 1 thread then computed its first batch
  on 1 thread and the rest on 2, so a resumed run differed from an uninterrupted one); the kernels now
  restore it (``tests/test_interruption.py`` checks both).
- **the same torch build**: kernels differ between versions and CPU instruction sets (AVX2 vs AVX-512).

The numba kernels of :mod:`snnedu.kernels.cpu` (the default multi-step backend on CPU) are
deterministic *and independent of the thread count*: the elements are split into blocks whose size
depends only on ``T`` and ``K`` (never on the threads), each block is computed by one thread from
start to end, no two blocks write the same output, and nothing is reduced across blocks inside the
kernel. The gradients of shared parameters (a per-layer ``tau`` or threshold) are per-element sums
over time computed in the kernel, then summed over the batch by ``torch.sum`` (serial for small
layers, thread-count dependent for large ones like any torch reduction). The backward kernel is
compiled with ``fastmath`` (the compiler may reorder additions), so it matches the reference loop
(:func:`snnedu.functional.neuron_multistep`) to float rounding, not bit for bit; the forward matches
it bit for bit in float32. The reference backend is plain PyTorch and deterministic under the same
conditions as the rest of PyTorch. Random numbers on CPU (``torch.rand`` behind Poisson spikes,
dropout masks) are drawn serially and do not depend on the thread count.

:func:`set_deterministic` changes no CPU result (a test trains with and without it and compares the
weights); it makes PyTorch fill newly allocated memory with NaN
(``torch.utils.deterministic.fill_uninitialized_memory``), which costs a little time.

CUDA: deterministic only with :func:`set_deterministic`, and even then not everything
--------------------------------------------------------------------------------------
- **cuDNN convolutions.** With ``torch.backends.cudnn.benchmark = True`` cuDNN times several
  algorithms at the first call of every shape and keeps the fastest, which can differ run to run;
  several algorithms (notably for the weight gradient) accumulate with atomic additions in an order
  that changes between runs. ``cudnn.benchmark = False`` plus ``cudnn.deterministic = True`` (or
  ``torch.use_deterministic_algorithms(True)``) restricts cuDNN to deterministic algorithms.
- **Atomics in other backward passes.** ``index_add_``, ``scatter_add_``, ``index_put_(accumulate=True)``,
  embedding and some pooling / interpolation / padding backward passes accumulate with atomics on
  CUDA. Under ``torch.use_deterministic_algorithms(True)`` PyTorch switches to deterministic versions
  where it has them and raises ``RuntimeError`` where it does not (``warn_only=True`` turns the error
  into a warning and keeps the nondeterministic kernel). snnedu's models avoid those operations:
  the global average pooling of :class:`snnedu.SpikingResNet` is a mean over ``H, W`` (a reduction),
  not ``nn.AdaptiveAvgPool2d``, whose CUDA backward has no deterministic kernel; the ``MaxPool2d`` /
  ``AvgPool2d`` of the PLIF nets and :class:`snnedu.SpikingCNN` are not among PyTorch's
  nondeterministic operations. The losses compute cross-entropy on ``[B, C]`` logits, which runs in a
  single CUDA block without atomics (PyTorch's list names ``NLLLoss`` on CUDA because the spatial,
  4-d form accumulates with atomics).
- **cuBLAS.** Matrix products are deterministic for a fixed workspace; with several streams
  (e.g. DDP's communication overlap) cuBLAS needs ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (or ``:16:8``)
  to stay so. :func:`set_deterministic` sets it when unset; it takes effect only for cuBLAS handles
  created afterwards, so call it at the start of the program, before the first CUDA matrix product.
- **Reductions.** ``torch.sum`` / ``mean`` on CUDA (used for batch-norm statistics, losses and the
  batch reduction of parameter gradients below) are deterministic for a given shape and device.
- **snnedu's Triton kernels** (:mod:`snnedu.kernels.triton_neuron`, the default multi-step backend on
  CUDA) are deterministic: each program owns a fixed block of ``(level, batch, neuron)`` elements and
  walks the time axis itself; the forward writes each spike and potential once; the backward keeps the
  running gradients in registers, sums the ``K`` levels of a multi-level unit with ``tl.reduce`` inside
  the program (a fixed tree), and writes the gradients of a learnable ``tau`` / decay / threshold *per
  element* (``[K, B*N]``); the sum over the batch is then a ``torch.sum``. There is no ``atomic_add``
  and no autotuning (the block size is a fixed function of ``K`` and the layer size). Their forward
  equals the reference loop bit for bit in float32; their backward matches it to float rounding only.
- **AMP** (``fit(amp=True)``, the default on CUDA): autocast is deterministic, but float16/bfloat16
  results differ from float32 ones, and the float16 ``GradScaler`` skips steps whose gradients
  overflowed, so an AMP run is reproducible only against another AMP run of the same dtype.
- **DDP** (:mod:`snnedu.distributed`): every process draws its own dropout masks (``seed + rank``);
  the gradient all-reduce sums the processes' gradients in an order fixed by NCCL's algorithm (ring
  or tree) and protocol, which NCCL picks from the message size, topology and version: reproducible on
  the same machine and world size in practice (pin ``NCCL_ALGO`` / ``NCCL_PROTO`` to be sure), never
  equal to a single-process run, whose batch-norm statistics and sum order differ.
- **DataLoader workers** (``num_workers > 0``): batches still arrive in order and each worker seeds
  ``random``, NumPy and torch from ``base_seed + worker_id``, where ``base_seed`` comes from the
  loader's ``generator`` (or the global RNG), so random augmentation in workers is reproducible when
  the loader's generator is seeded; per-worker state set elsewhere (a ``worker_init_fn`` that seeds
  from the clock) is not.

Example::

    >>> import snnedu
    >>> snnedu.set_deterministic()            # before any CUDA work
    >>> snnedu.seed_everything(0)
    >>> hist = snnedu.fit(net, loader, epochs=3, seed=0)
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

from ._checks import flags

__all__ = ["set_deterministic", "deterministic", "deterministic_state", "CUBLAS_WORKSPACE"]

#: the ``CUBLAS_WORKSPACE_CONFIG`` value :func:`set_deterministic` sets when the variable is unset
CUBLAS_WORKSPACE = ":4096:8"

_ENV = "CUBLAS_WORKSPACE_CONFIG"
_env_set_by_us = False  # True while CUBLAS_WORKSPACE_CONFIG holds the value this module put there


def deterministic_state() -> dict:
    """The settings :func:`set_deterministic` changes, now: ``{'algorithms', 'warn_only',
    'cudnn_deterministic', 'cudnn_benchmark', 'cublas_workspace'}`` (the last ``None`` when unset)."""
    return {
        "algorithms": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cublas_workspace": os.environ.get(_ENV),
    }


def _apply(state: dict) -> None:
    global _env_set_by_us
    torch.use_deterministic_algorithms(state["algorithms"], warn_only=state["warn_only"])
    torch.backends.cudnn.deterministic = state["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = state["cudnn_benchmark"]
    if state["cublas_workspace"] is None:
        os.environ.pop(_ENV, None)
    else:
        os.environ[_ENV] = state["cublas_workspace"]
    _env_set_by_us = False


@flags("enabled", "warn_only")
def set_deterministic(enabled: bool = True, *, warn_only: bool = False) -> dict:
    """Ask PyTorch for deterministic algorithms everywhere (or stop asking); returns the previous settings.

    ``enabled=True``:

    - ``torch.use_deterministic_algorithms(True, warn_only=warn_only)``: deterministic kernels where
      PyTorch has them; where it has none an operation raises ``RuntimeError`` (``warn_only=True``: warns
      and runs the nondeterministic kernel);
    - ``torch.backends.cudnn.deterministic = True`` and ``torch.backends.cudnn.benchmark = False``;
    - ``CUBLAS_WORKSPACE_CONFIG`` set to ``:4096:8`` if it is unset (a value already there is kept).
      cuBLAS reads it when it creates a handle: call this before the first CUDA matrix product.

    ``enabled=False`` switches the PyTorch flags back to PyTorch's defaults (deterministic algorithms
    off, ``cudnn.deterministic = False``, ``cudnn.benchmark = False``) and removes
    ``CUBLAS_WORKSPACE_CONFIG`` if this function had set it. To return to exactly what was there
    before, use the context manager :func:`deterministic` instead.

    Works without CUDA (the cuDNN / cuBLAS settings are then simply unused). Seeding is separate:
    :func:`snnedu.seed_everything`. What is and is not reproducible: the module docstring of
    :mod:`snnedu.determinism`.

    Example::

        >>> old = snnedu.set_deterministic()            # at the top of a training script
        >>> snnedu.set_deterministic(False)             # back to PyTorch's defaults
    """
    global _env_set_by_us
    previous = deterministic_state()
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=bool(warn_only))
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        if os.environ.get(_ENV) is None:
            os.environ[_ENV] = CUBLAS_WORKSPACE
            _env_set_by_us = True
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
        torch.backends.cudnn.benchmark = False
        if _env_set_by_us and os.environ.get(_ENV) == CUBLAS_WORKSPACE:
            os.environ.pop(_ENV, None)
        _env_set_by_us = False
    return previous


@contextlib.contextmanager
@flags("enabled", "warn_only")
def deterministic(enabled: bool = True, *, warn_only: bool = False) -> Iterator[dict]:
    """``with snnedu.deterministic(): ...`` — :func:`set_deterministic` for a block; every setting it
    changed (including ``CUBLAS_WORKSPACE_CONFIG``) is put back as it was on exit. Yields the
    previous settings."""
    previous = set_deterministic(enabled, warn_only=warn_only)
    try:
        yield previous
    finally:
        _apply(previous)
