import matplotlib.pyplot as plt
import torch

import snnedu
from snnedu import viz


def test_plots_draw_what_they_are_given():
    lif = snnedu.LIF(record=True)
    s = lif(torch.rand(20, 2, 8) * 2)
    ax = viz.raster(s)
    assert len(ax.collections[0].get_offsets()) == int(s[:, 0].sum())
    ax = viz.membrane_trace(lif.v_seq[:, 0, 0], spikes=s[:, 0, 0], v_threshold=1.0)
    assert len(ax.lines) >= 2
    ax = viz.spike_count_histogram(s)
    assert sum(p.get_height() for p in ax.patches) == 16
    ax = viz.plot_surrogate(snnedu.ATan())
    assert ax.lines[0].get_ydata().max() == 1.0
    hist = snnedu.History([{"epoch": 1, "train_acc": 50.0, "val_acc": 40.0}, {"epoch": 2, "train_acc": 60.0, "val_acc": 55.0}])
    ax = viz.plot_history(hist)
    assert len(ax.lines) == 2
    plt.close("all")


def test_public_api():
    from snnedu import IF, LIF, PLIF, PoissonEncoder, DirectEncoder, LatencyEncoder  # noqa: F401
    from snnedu import fit, evaluate, reset, load_mnist, SpikingMLP, SpikingCNN  # noqa: F401
    for name in snnedu.__all__:
        assert hasattr(snnedu, name), name
    for name in snnedu.__all__:
        obj = getattr(snnedu, name)
        if callable(obj) and not isinstance(obj, type(snnedu)):
            assert obj.__doc__, f"{name} has no docstring"
