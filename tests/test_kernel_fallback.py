"""A Triton kernel known to be wrong on CUDA falls back to the reference, with a warning.

``snnedu.kernels.TRITON_KNOWN_BAD`` lists (family, dtype) combinations whose kernel is wrong; under the
``"auto"`` backend a CUDA input of such a family and dtype takes the reference loop. There is no GPU
here, so the selection is checked on a stand-in for a CUDA tensor (its dtype and device are all the
selection reads); ``benchmarks/gpu_check.py`` checks the same on a real GPU.
"""
import types
import warnings

import pytest
import torch

import snnedu
from snnedu import kernels


def _cuda_like(dtype=torch.float32):
    return types.SimpleNamespace(dtype=dtype, is_cuda=True, device=torch.device("cuda"))


@pytest.fixture
def cuda_triton(monkeypatch):
    """Pretend Triton and a CUDA device are there, with an empty list of known-bad kernels."""
    monkeypatch.setattr(kernels, "_triton_ok", lambda: True)
    monkeypatch.setattr(kernels, "TRITON_KNOWN_BAD", {})
    monkeypatch.setattr(kernels, "_warned", set())
    with kernels.use_backend("auto"):
        yield kernels.TRITON_KNOWN_BAD


def test_nothing_is_known_bad_in_the_release():
    assert kernels.TRITON_KNOWN_BAD == {}


def test_auto_takes_triton_when_nothing_is_known(cuda_triton):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernels.chosen_backend(_cuda_like(), snnedu.ATan(), name="PLIF") == "triton"


def test_known_bad_family_and_dtype_falls_back_with_one_warning(cuda_triton):
    cuda_triton[("PLIF", torch.bfloat16)] = "gradients of tau off by 10% on sm_90"
    with pytest.warns(RuntimeWarning, match=r"PLIF in torch.bfloat16 \(gradients of tau"):
        assert kernels.chosen_backend(_cuda_like(torch.bfloat16), snnedu.ATan(), name="PLIF") == "reference"
    with warnings.catch_warnings():  # once per combination
        warnings.simplefilter("error")
        assert kernels.chosen_backend(_cuda_like(torch.bfloat16), snnedu.ATan(), name="PLIF") == "reference"
        # other dtypes and other families keep the kernel
        assert kernels.chosen_backend(_cuda_like(torch.float32), snnedu.ATan(), name="PLIF") == "triton"
        assert kernels.chosen_backend(_cuda_like(torch.bfloat16), snnedu.ATan(), name="LIF") == "triton"


@pytest.mark.parametrize("key", [("MLF", None), ("*", torch.float16), ("*", None)])
def test_wildcards(cuda_triton, key):
    cuda_triton[key] = "wrong"
    with pytest.warns(RuntimeWarning):
        assert kernels.chosen_backend(_cuda_like(torch.float16), snnedu.ATan(), name="MLF") == "reference"
    assert kernels.triton_known_bad("MLF", torch.float16) == "wrong"


def test_forced_triton_still_runs_the_kernel(cuda_triton):
    cuda_triton[("*", None)] = "wrong"
    with kernels.use_backend("triton"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernels.chosen_backend(_cuda_like(), snnedu.ATan(), name="LIF") == "triton"


def test_cpu_tensors_are_unaffected(cuda_triton):
    cuda_triton[("*", None)] = "wrong"
    x = torch.randn(3, 2, 4)
    expected = "cpu" if kernels.cpu.available() else "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kernels.chosen_backend(x, snnedu.ATan(), name="LIF") == expected


def test_multistep_passes_the_family(monkeypatch):
    """The neuron modules' class name is the family looked up."""
    seen = []
    real = kernels.chosen_backend

    def spy(x_seq, surrogate, record=False, name="neuron", family=snnedu.family.CORE):
        seen.append(name)
        return real(x_seq, surrogate, record, name, family)
    monkeypatch.setattr(kernels, "chosen_backend", spy)
    snnedu.PLIF()(torch.randn(4, 2, 3))
    snnedu.PMLF3(K=3)(torch.randn(4, 2, 3))
    assert seen == ["PLIF", "PMLF3"]
