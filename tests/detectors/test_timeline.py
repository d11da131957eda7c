import numpy as np
import torch

from tad.detectors.timeline import grid_to_seconds, seconds_to_grid


def test_uniform_grid_matches_i3d_convention():
    # 16-frame clips every 4 frames at 30 fps: clip i centred at (4 i + 8) / 30 s.
    ts = (4 * np.arange(10) + 8) / 30.0
    assert np.allclose(grid_to_seconds(np.array([0.0, 2.5, 9.0]), ts), [8 / 30, 18 / 30, 44 / 30])
    assert np.allclose(seconds_to_grid(np.array([8 / 30, 18 / 30]), ts), [0.0, 2.5])


def test_extrapolates_with_edge_steps_and_round_trips_on_irregular_timestamps():
    ts = np.array([0.5, 0.6, 0.8, 1.4, 1.5])  # variable frame rate: irregular steps
    x = np.array([-2.0, 0.0, 0.5, 2.25, 4.0, 6.0])
    t = grid_to_seconds(x, ts)
    assert np.allclose(t, [0.3, 0.5, 0.55, 0.95, 1.5, 1.7])
    assert np.allclose(seconds_to_grid(t, ts), x)


def test_tensors_keep_type_and_single_clip_uses_default_step():
    ts = np.array([2.0])
    out = grid_to_seconds(torch.tensor([[0.0, 1.0]]), ts, default_step=0.25)
    assert torch.is_tensor(out) and out.shape == (1, 2)
    assert torch.allclose(out, torch.tensor([[2.0, 2.25]], dtype=torch.float64))
    assert np.allclose(seconds_to_grid(np.array([1.5]), ts, default_step=0.25), [-2.0])
