"""Event and frame plots."""
import numpy as np
import pytest

from snnedu.data import make_events
from snnedu.viz import animate_frames, event_rate, event_scatter, frame_image, frames_grid


def test_frame_image_colours():
    f = np.zeros((2, 2, 3))
    f[1, 0, 0] = 4  # ON
    f[0, 1, 2] = 4  # OFF
    rgb = frame_image(f, gamma=1.0)
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0])
    np.testing.assert_allclose(rgb[1, 2], [0, 0, 1])
    np.testing.assert_allclose(rgb[0, 1], [1, 1, 1])  # no events: white
    with pytest.raises(ValueError, match=r"\[2, H, W\]"):
        frame_image(np.zeros((3, 4, 4)))


def test_event_plots_and_animation():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    ev = make_events(np.sort(rng.integers(0, 50_000, 500)), rng.integers(0, 16, 500), rng.integers(0, 16, 500),
                     rng.integers(0, 2, 500))
    ax = event_scatter(ev, max_events=100)
    assert sum(len(c.get_offsets()) for c in ax.collections) == 100
    ax = event_rate(ev, bin_ms=5, boundaries_us=[10_000, 20_000])
    assert len(ax.lines) == 3
    axes = frames_grid(np.ones((20, 2, 8, 8)), max_frames=5)
    assert len(axes) == 5
    anim = animate_frames(np.ones((4, 2, 8, 8)))
    html = anim.to_jshtml()
    assert html.count("frame") > 4
    plt.close("all")
