"""The seeded weight and input recipe of ``shared/fixtures/backbones/parity_seeded.json``, written out.

Backbone tests import these helpers from here (a uniquely named module: ``conftest`` is a
different module in every test folder, so importing helpers from it depends on collection order).
"""
from __future__ import annotations

import math

import numpy as np
import torch


def recipe_state_dict(keys: dict[str, list[int]], seed: int) -> dict[str, np.ndarray]:
    """Weights for every official key, drawn exactly as the fixture's ``recipe`` says."""
    rng = np.random.default_rng(seed)
    state: dict[str, np.ndarray] = {}
    for key in sorted(keys):  # Python string sort of the official names
        shape = tuple(keys[key])
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("running_mean"):
            value = rng.normal(0.0, 0.1, shape)
        elif key.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 1 and key.endswith("weight"):
            value = rng.uniform(0.5, 1.0, shape)
        elif key.endswith("bias"):
            value = rng.normal(0.0, 0.05, shape)
        else:
            out_channels = shape[2] if len(shape) == 6 else shape[0]
            fan_in = math.prod(shape) / out_channels
            value = rng.normal(0.0, math.sqrt(1.0 / fan_in), shape)
        state[key] = value.astype(np.float32)
    return state


def recipe_input(seed: int, frames: int, size: int = 224) -> torch.Tensor:
    x = np.random.default_rng(seed + 1).uniform(0, 1, (1, 3, frames, size, size))
    return torch.from_numpy(((x - 0.45) / 0.225).astype(np.float32))


def official_tensors(state: dict[str, np.ndarray], prefix_strip: str = "", drop: str = "head.") -> dict:
    """Official numpy weights -> tensors under the model's names (prefix stripped, head dropped)."""
    out = {}
    for key, value in state.items():
        if key.startswith(drop):
            continue
        out[key[len(prefix_strip):] if prefix_strip and key.startswith(prefix_strip) else key] = torch.from_numpy(value)
    return out


def flax_recipe_params(keys: dict[str, list[int]], seed: int) -> dict[str, np.ndarray]:
    """The recipe for Flax parameter trees (keys 'a/b/c', see fixtures/README.md, ViViT):
    LayerNorm ``scale`` uniform(0.5, 1.0); ``bias`` normal(0, 0.05); ``pos_embedding`` and class
    tokens ``cls*`` normal(0, 0.5); kernels normal(0, sqrt(1/fan_in)) with fan_in = numel / out,
    out = the last axis (Dense, Conv, attention ``out``) or the last two (attention
    ``query``/``key``/``value``: heads x head_dim)."""
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for key in sorted(keys):
        shape = tuple(keys[key])
        leaf = key.rsplit("/", 1)[-1]
        if leaf == "scale":
            value = rng.uniform(0.5, 1.0, shape)
        elif leaf == "bias":
            value = rng.normal(0.0, 0.05, shape)
        elif leaf == "pos_embedding" or leaf.startswith("cls"):
            value = rng.normal(0.0, 0.5, shape)
        else:
            per_head = any(key.endswith(f"/{name}/kernel") for name in ("query", "key", "value"))
            out = shape[-2] * shape[-1] if per_head else shape[-1]
            value = rng.normal(0.0, math.sqrt(out / math.prod(shape)), shape)
        params[key] = value.astype(np.float32)
    return params


def zero_centred_input(seed: int, frames: int, size: int) -> torch.Tensor:
    """``default_rng(seed + 1).uniform(0, 1, (1, 3, T, S, S))`` scaled to [-1, 1] (scenic's zero_centering)."""
    x = np.random.default_rng(seed + 1).uniform(0, 1, (1, 3, frames, size, size))
    return torch.from_numpy((x * 2 - 1).astype(np.float32))
