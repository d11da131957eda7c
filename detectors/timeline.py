"""Mapping between seconds and the feature grid, through per-clip timestamps.

Feature ``i`` of a video sits at ``timestamps[i]`` seconds (the centre of clip ``i``).
A fractional grid position ``x`` maps to seconds by piecewise-linear interpolation of
the timestamps; outside ``[0, T-1]`` the first/last step extends the line. This is
the only place where grid units and seconds meet: no stride/fps arithmetic elsewhere.
"""
from __future__ import annotations

import numpy as np
import torch


def _edge_steps(timestamps: np.ndarray, default_step: float) -> tuple[float, float]:
    if len(timestamps) < 2:
        return default_step, default_step
    return float(timestamps[1] - timestamps[0]), float(timestamps[-1] - timestamps[-2])


def grid_to_seconds(x, timestamps, default_step: float = 1.0):
    """Fractional grid positions -> seconds. ``x``: array or tensor of any shape; ``timestamps``: (T,)."""
    ts = np.asarray(timestamps.cpu() if torch.is_tensor(timestamps) else timestamps, dtype=np.float64)
    is_tensor = torch.is_tensor(x)
    pos = x.detach().cpu().double().numpy() if is_tensor else np.asarray(x, dtype=np.float64)
    first_step, last_step = _edge_steps(ts, default_step)
    t = np.interp(pos, np.arange(len(ts), dtype=np.float64), ts)
    t = np.where(pos < 0, ts[0] + pos * first_step, t)
    t = np.where(pos > len(ts) - 1, ts[-1] + (pos - (len(ts) - 1)) * last_step, t)
    return torch.from_numpy(t).to(x.device) if is_tensor else t


def seconds_to_grid(t, timestamps, default_step: float = 1.0):
    """Seconds -> fractional grid positions; the inverse of :func:`grid_to_seconds`.

    ``timestamps`` must be strictly increasing (the feature store guarantees it).
    """
    ts = np.asarray(timestamps.cpu() if torch.is_tensor(timestamps) else timestamps, dtype=np.float64)
    is_tensor = torch.is_tensor(t)
    sec = t.detach().cpu().double().numpy() if is_tensor else np.asarray(t, dtype=np.float64)
    first_step, last_step = _edge_steps(ts, default_step)
    x = np.interp(sec, ts, np.arange(len(ts), dtype=np.float64))
    x = np.where(sec < ts[0], (sec - ts[0]) / first_step, x)
    x = np.where(sec > ts[-1], (len(ts) - 1) + (sec - ts[-1]) / last_step, x)
    return torch.from_numpy(x).to(t.device) if is_tensor else x
