"""Read Flax checkpoints (``flax.training.checkpoints.save_checkpoint`` msgpack files) with
``msgpack`` + numpy only: no JAX or Flax at run time.

Contract: ``read_flax_checkpoint(path)`` returns the saved state as nested dicts whose leaves
are numpy arrays / Python scalars, exactly as ``flax.serialization.msgpack_restore`` would;
``flax_params(state, path)`` finds the parameter tree inside a scenic train state;
``flatten_tree`` joins the nested keys with ``/``. Every problem is one ``TadInputError``
naming the file.

The format (``flax.serialization``): one msgpack map (lists were saved as maps with keys
'0', '1', ...). Arrays are msgpack extension type 1 whose payload is itself msgpack of
``(shape, dtype name, C-order bytes)``; numpy scalars are type 3 with the same payload;
complex numbers type 2 (``(real, imag)``). Arrays over ~1 GiB are split into a map
``{'__msgpack_chunked_array__': True, 'shape': {'0': d0, ...}, 'chunks': {'0': flat part, ...}}``.
``bfloat16`` arrays (no numpy dtype) are widened to float32 exactly.

Scenic train states: ``{'params': ...}`` (optax; scenic's current ``TrainState``) or
``{'optimizer': {'target': ...}}`` (flax.optim, 2021 releases), where a ``target`` holding
``params`` is a pre-Linen tree whose submodule numbering is converted as Flax's
``convert_pre_linen`` does (``Dense_3`` -> per-class counters).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tad.errors import TadInputError

EXT_NDARRAY, EXT_COMPLEX, EXT_NPSCALAR = 1, 2, 3
CHUNKED = "__msgpack_chunked_array__"
_CHECKPOINT_STEP = re.compile(r"^checkpoint_(\d+)$")


def _decode_array(payload: bytes) -> np.ndarray:
    import msgpack

    shape, dtype_name, buffer = msgpack.unpackb(payload, raw=True)
    name = dtype_name.decode() if isinstance(dtype_name, bytes) else dtype_name
    if name == "bfloat16":  # the high 16 bits of a float32
        bits = np.frombuffer(buffer, dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(buffer, dtype=np.dtype(name)).reshape(shape).copy()


def _ext_hook(code: int, payload: bytes) -> object:
    import msgpack

    if code == EXT_NDARRAY:
        return _decode_array(payload)
    if code == EXT_NPSCALAR:
        return _decode_array(payload)[()]
    if code == EXT_COMPLEX:
        real, imag = msgpack.unpackb(payload)
        return complex(real, imag)
    return msgpack.ExtType(code, payload)


def _unchunk(tree: object) -> object:
    if not isinstance(tree, dict):
        return tree
    if tree.get(CHUNKED) is True:
        chunks, shape = tree["chunks"], tree["shape"]  # both saved as {'0': ..., '1': ...}
        flat = np.concatenate([chunks[str(i)] for i in range(len(chunks))])
        if isinstance(shape, dict):
            shape = [shape[str(i)] for i in range(len(shape))]
        return flat.reshape(tuple(shape))
    return {key: _unchunk(value) for key, value in tree.items()}


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A checkpoint file, or in a scenic checkpoint directory the ``checkpoint_<step>`` file
    with the highest step (or a file named ``checkpoint``)."""
    path = Path(path)
    if path.is_dir():
        steps = sorted((int(m.group(1)), p) for p in path.iterdir() if (m := _CHECKPOINT_STEP.match(p.name)))
        if steps:
            return steps[-1][1]
        if (path / "checkpoint").is_file():
            return path / "checkpoint"
        raise TadInputError(path, "directory holds no Flax checkpoint file ('checkpoint' or 'checkpoint_<step>')")
    if not path.is_file():
        raise TadInputError(path, "checkpoint file not found")
    return path


def read_flax_checkpoint(path: str | Path) -> dict:
    """The state saved in a Flax msgpack checkpoint file (or directory, see
    ``resolve_checkpoint_path``) as nested dicts of numpy arrays."""
    import msgpack

    path = resolve_checkpoint_path(path)
    try:
        state = msgpack.unpackb(path.read_bytes(), ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except Exception as exc:  # not msgpack, truncated, corrupt payload
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TadInputError(path, f"not a Flax msgpack checkpoint ({type(exc).__name__}: {problem[:160]}); "
                                  "is the file complete and a flax checkpoints.save_checkpoint file?") from None
    if not isinstance(state, dict):
        raise TadInputError(path, f"not a Flax msgpack checkpoint: it holds a {type(state).__name__}, "
                                  "expected a map of parameters")
    return _unchunk(state)


def convert_pre_linen(tree: object) -> object:
    """Pre-Linen submodule names (numbered across classes, ``Dense_3``) renumbered per class
    in natural order (``Dense_0``), recursively, as Flax's ``convert_pre_linen``."""
    if not isinstance(tree, dict):
        return tree
    def natural(name: str) -> list:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    counts: dict[str, int] = {}
    renamed = {}
    for name in sorted(tree, key=natural):
        match = re.match(r"^(.*)_(\d+)$", name)
        new = name
        if match:
            prefix = match.group(1)
            new = f"{prefix}_{counts.get(prefix, 0)}"
            counts[prefix] = counts.get(prefix, 0) + 1
        renamed[new] = convert_pre_linen(tree[name])
    return renamed


def flax_params(state: dict, path: str | Path) -> dict:
    """The parameter tree inside a scenic/Flax train state (see the module docstring)."""
    if isinstance(state.get("params"), dict):
        params = state["params"]
    elif isinstance(state.get("optimizer"), dict) and isinstance(state["optimizer"].get("target"), dict):
        params = state["optimizer"]["target"]
        if isinstance(params.get("params"), dict):  # pre-Linen flax.optim state
            params = convert_pre_linen(params["params"])
    else:
        params = state
    while set(params) == {"params"} and isinstance(params["params"], dict):  # a {'params': ...} variables dict
        params = params["params"]
    if not any(isinstance(v, np.ndarray) for v in flatten_tree(params).values()):
        raise TadInputError(path, f"no parameter arrays in the checkpoint (top-level keys: {', '.join(map(str, state))})")
    return params


def flatten_tree(tree: dict, prefix: str = "") -> dict[str, object]:
    """{'a': {'b': x}} -> {'a/b': x}."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_tree(value, name + "/"))
        else:
            flat[name] = value
    return flat
