"""The non-spiking reference models of chapters 8-9 (``snnedu.models.probe``) and their config archs."""
from __future__ import annotations

import pytest
import torch

import snnedu
from snnedu.config import ConfigError, build_model, validate_config
from snnedu.errors import InputError
from snnedu.models import FrameCNN, LinearProbe, summed_frames


def test_summed_frames_sums_over_time_and_scales_each_sample_to_mean_one():
    x = torch.zeros(3, 2, 2, 4, 4)
    x[0, 0, 1, 0, 0] = 2.0
    x[2, 0, 1, 0, 0] = 2.0          # sample 0: 4 events on one pixel
    x[:, 1] = 1.0                   # sample 1: one event per pixel and step
    s = summed_frames(x)
    assert s.shape == (2, 2, 4, 4)
    assert s[0, 1, 0, 0] == 32.0 and s[0].sum() == 32.0       # 32 pixels, all the mass on one
    assert torch.allclose(s[1], torch.ones(2, 4, 4))
    assert torch.equal(summed_frames(torch.zeros(2, 1, 2, 4, 4)), torch.zeros(1, 2, 4, 4))  # no events: zeros


def test_summed_frames_ignores_the_count_scale_but_not_the_time_order_is_discarded():
    x = torch.rand(4, 3, 2, 8, 8)
    assert torch.allclose(summed_frames(3 * x), summed_frames(x), atol=1e-6)
    assert torch.allclose(summed_frames(x.flip(0)), summed_frames(x), atol=1e-6)   # order is gone on purpose


@pytest.mark.parametrize("bad", [torch.rand(2, 2, 8, 8), torch.rand(2, 1, 2, 2, 8, 8),
                                 torch.full((2, 1, 2, 8, 8), float("nan"))])
def test_summed_frames_rejects_wrong_shapes_and_nan(bad):
    with pytest.raises(InputError):
        summed_frames(bad)


def test_probe_models_output_one_step_of_logits_and_learn():
    torch.manual_seed(0)
    x = torch.rand(5, 8, 2, 16, 16)
    for net in (LinearProbe(2, 16, 11), FrameCNN(2, 16, 11, channels=4, n_down=2)):
        assert net(x).shape == (1, 8, 11)
        y = torch.arange(8) % 11
        opt = torch.optim.Adam(net.parameters(), lr=0.05)
        first = None
        for _ in range(30):
            loss = snnedu.rate_cross_entropy(net(x), y)
            first = float(loss.detach()) if first is None else first
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert float(loss) < 0.5 * first
    with pytest.raises(InputError, match="too small"):
        FrameCNN(2, 8, 10, n_down=4)


def _cfg(arch, dataset="dvs128_gesture"):
    return validate_config({"name": "t", "data": {"dataset": dataset, "T": 4, "batch_size": 2, "size": 16},
                        "model": {"arch": arch, "n_classes": 11 if dataset == "dvs128_gesture" else 10,
                                  "n_down": 2, "channels": 4, "neuron": {"type": "LIF"}},
                        "train": {"epochs": 1, "lr": 1e-3}})


def test_the_config_builds_the_probes_and_refuses_them_on_static_images():
    assert isinstance(build_model(_cfg("probe_linear")), LinearProbe)
    cnn = build_model(_cfg("probe_cnn"))
    assert isinstance(cnn, FrameCNN) and cnn(torch.rand(4, 2, 2, 16, 16)).shape == (1, 2, 11)
    with pytest.raises(ConfigError, match="takes event frames"):
        cfg = _cfg("probe_cnn", "mnist")
        cfg["data"]["size"] = None
        build_model(cfg)
