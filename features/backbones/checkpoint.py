"""Load official backbone checkpoints strictly, with one clear error when they do not fit.

Accepted files:
- PyTorch ``.pyth`` / ``.pth`` / ``.pt``: a dict with ``model_state`` (TAdaConv,
  SlowFast), ``state_dict``, ``model_state_dict`` (GSF) or ``model``, or a bare state dict. ``module.`` (DDP) and
  ``backbone.`` prefixes are stripped, classifier head keys (``head.*``) are ignored. A model
  that loads a second official layout renames its keys in ``convert_checkpoint_keys``.
  While it does, a ``checkpoint_key_display`` callable on the model names keys in errors the
  way that file does.
- SlowFast Caffe2 ``.pkl``: ``{"blobs": {name: ndarray}}`` pickled under Python 2
  (read with latin1 encoding); blob names are converted by the model's
  ``caffe2_key`` rule (the official converter's mapping).

PyTorch files that hold only tensors and plain containers (torchvision, TSP, kylemin/S3D
releases) load with ``torch.load(weights_only=True)``. Others are *trusted* input: files
holding numpy arrays or config objects (TAdaConv/SlowFast ``.pyth``) and Caffe2 ``.pkl`` are
unpickled with ``torch.load(weights_only=False)`` / ``pickle``, which can run code stored in
the file, and this is said once on stderr; only pass files you trust.
"""
from __future__ import annotations

import hashlib
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tad.errors import TadInputError

#: Wrapper keys under which training frameworks keep the weights, tried in order.
STATE_DICT_KEYS = ("model_state", "state_dict", "model_state_dict", "model", "module")
#: Prefixes that wrap the backbone's own names (DDP, detector/recogniser wrappers).
WRAPPER_PREFIXES = ("module.", "backbone.")
#: Caffe2 blobs that are optimiser state, not weights (as the official converter skips them).
CAFFE2_NON_WEIGHT = ("momentum", "lr", "model_iter")
_LIST_FIRST = 5


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (checkpoints are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


_TRUST_NOTED: set[str] = set()


def _note_trusted(path: Path, why: str) -> None:
    """Say once per file and process that it was unpickled as trusted code."""
    key = str(path.resolve())
    if key not in _TRUST_NOTED:
        _TRUST_NOTED.add(key)
        print(f"{path}: {why}; unpickled as TRUSTED code (only use checkpoints you trust)", file=sys.stderr)


def read_checkpoint(path: str | Path) -> object:
    """Read a checkpoint file (see the module docstring). TadInputError if unreadable.

    PyTorch files are first read with ``weights_only=True`` (tensors and plain containers
    only: safe); files that hold other objects (configs, numpy arrays) and Caffe2 ``.pkl`` files
    are unpickled as trusted code, which is said once on stderr.
    """
    path = Path(path)
    if not path.is_file():
        raise TadInputError(path, "checkpoint file not found")
    try:
        if path.suffix == ".pkl":
            with open(path, "rb") as handle:
                obj = pickle.load(handle, encoding="latin1")
            _note_trusted(path, "Caffe2 .pkl checkpoint (a pickle)")
            return obj
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # holds objects beyond tensors: needs the full unpickler
            obj = torch.load(path, map_location="cpu", weights_only=False)
            _note_trusted(path, "checkpoint holds Python objects beyond tensors")
            return obj
    except Exception as exc:  # truncated, not a checkpoint, wrong format
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TadInputError(path, f"cannot read checkpoint ({type(exc).__name__}: {problem[:200]}); "
                                  "is the file complete and a PyTorch/Caffe2 checkpoint?") from None


def extract_state_dict(obj: object, model: nn.Module, path: str | Path) -> dict[str, object]:
    """The raw name -> array mapping inside a loaded checkpoint, in the model's naming."""
    if isinstance(obj, Mapping) and "blobs" in obj and isinstance(obj["blobs"], Mapping):
        return convert_caffe2_blobs(obj["blobs"], model, path)
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TadInputError(path, f"checkpoint holds a {type(obj).__name__}, expected a dict of weights")
    for key in STATE_DICT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and _looks_like_weights(inner):
            obj = inner
            break
    if not _looks_like_weights(obj):
        raise TadInputError(path, f"no weights found in checkpoint (top-level keys: {_preview(list(obj))})")
    return dict(obj)


def _looks_like_weights(mapping: Mapping) -> bool:
    return any(isinstance(v, (torch.Tensor, np.ndarray)) for v in mapping.values())


def convert_caffe2_blobs(blobs: Mapping, model: nn.Module, path: str | Path) -> dict[str, object]:
    """Rename Caffe2 blobs to the model's keys with its ``caffe2_key`` rule."""
    to_key = getattr(model, "caffe2_key", None)
    if to_key is None:
        raise TadInputError(path, f"Caffe2 .pkl checkpoints are not supported for {type(model).__name__}")
    state: dict[str, object] = {}
    unknown = []
    for name, value in blobs.items():
        key = to_key(name)
        if key is None:
            if not any(tag in name for tag in CAFFE2_NON_WEIGHT):
                unknown.append(name)
            continue
        state[key] = value
    if unknown:  # reported by the key check below as unexpected keys
        state.update({f"<caffe2>{name}": blobs[name] for name in unknown})
    return state


def normalise_keys(state: dict[str, object], model: nn.Module) -> dict[str, object]:
    """Strip wrapper prefixes (``module.``, ``backbone.``; repeatedly, in any nesting) that
    the model's own keys do not use, then drop classifier head keys."""
    own = list(model.state_dict())
    prefixes = [p for p in WRAPPER_PREFIXES if not any(k.startswith(p) for k in own)]
    changed = True
    while changed:
        changed = False
        renamed = {}
        for key, value in state.items():
            for prefix in prefixes:
                if key.startswith(prefix):
                    key, changed = key[len(prefix):], True
                    break
            renamed[key] = value
        state = renamed
    ignore = tuple(getattr(model, "checkpoint_ignore_prefixes", ("head.",)))
    return {k: v for k, v in state.items() if not k.startswith(ignore)}


def _to_tensor(value: object) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    return torch.from_numpy(np.ascontiguousarray(value))


def _preview(names: list[str]) -> str:
    shown = ", ".join(names[:_LIST_FIRST])
    return shown + (f", ... (+{len(names) - _LIST_FIRST} more)" if len(names) > _LIST_FIRST else "")


def match_state_dict(state: dict[str, object], model: nn.Module, path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors keyed and shaped exactly like ``model.state_dict()``, else one TadInputError
    listing missing / unexpected keys (first few, with counts) and shape mismatches."""
    expected = model.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if isinstance(value, (torch.Tensor, np.ndarray)):
            tensors[key] = _to_tensor(value)
    # BN bookkeeping absent from Caffe2 and old PyTorch files: not a weight, fill it.
    for key, ref in expected.items():
        if key.endswith("num_batches_tracked") and key not in tensors:
            tensors[key] = torch.zeros_like(ref)
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    mismatched = []
    for key, ref in expected.items():
        if key in tensors and tuple(tensors[key].shape) != tuple(ref.shape):
            value = tensors[key]
            if value.numel() == ref.numel() and value.squeeze().shape == ref.squeeze().shape:
                tensors[key] = value.reshape(ref.shape)  # Caffe2 2D/3D blobs with dropped unit dims
            else:
                mismatched.append((key, f"{tuple(value.shape)} vs model {tuple(ref.shape)}"))
    if missing or unexpected or mismatched:
        show = getattr(model, "checkpoint_key_display", None) or str  # name keys as the file's layout does
        missing, unexpected = [show(k) for k in missing], [show(k) for k in unexpected]
        mismatched = [f"{show(k)} {shapes}" for k, shapes in mismatched]
        parts = [f"does not fit backbone {getattr(model, 'registry_name', type(model).__name__)}"]
        if missing:
            parts.append(f"{len(missing)} missing keys: {_preview(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys: {_preview(unexpected)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatches: {_preview(mismatched)}")
        weights = [k for k in expected if not k.endswith("num_batches_tracked")]
        if not any(k in tensors for k in weights):
            parts.append("no key matches: is this a checkpoint of another model?")
        raise TadInputError(path, "; ".join(parts))
    return {k: tensors[k].to(dtype=expected[k].dtype) for k in expected}


def load_backbone_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a trusted official checkpoint into ``model`` strictly; returns the model.

    Raises TadInputError (one line naming the file) when the file is unreadable or its
    keys/shapes do not fit the model. The file is unpickled with
    ``torch.load(weights_only=False)``: only pass checkpoints you trust.
    """
    raw = read_checkpoint(path)
    state = normalise_keys(extract_state_dict(raw, model, path), model)
    convert = getattr(model, "convert_checkpoint_keys", None)  # a second released layout of the same weights
    if convert is not None:
        state = convert(state)
    model.load_state_dict(match_state_dict(state, model, path), strict=True)
    return model
