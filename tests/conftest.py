import matplotlib

matplotlib.use("Agg")  # unit tests only; notebooks run in their own kernel with inline figures

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
