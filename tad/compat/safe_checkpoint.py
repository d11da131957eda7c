"""Loading detector checkpoints without running code from them.

Contract: ``load_checkpoint(path, map_location, trusted=False)`` reads a ``.pth`` with
``torch.load(weights_only=True)``; the only non-tensor types it accepts are the few an
mmengine checkpoint's ``meta``/``message_hub`` hold (numpy arrays, scalars and dtypes,
mmengine's ``HistoryBuffer`` and its statistic methods, looked up by a restricted
``getattr`` that returns nothing else). A file that needs anything more is refused with
``TadInputError(path, "... pass --trust-checkpoint ...")``; a payload hidden in the
pickle never runs. ``trusted=True`` (``--trust-checkpoint``) reads it as a pickle.

The loader mmengine uses for local paths (``load_from=``, ``--resume``) is
``load_local_checkpoint``: files inside a directory registered with ``trust_directory``
(the run's own work dir when resuming) are trusted, every other file is loaded safely.
"""
from __future__ import annotations

import os
import os.path as osp
import pickle
from pathlib import Path

import torch

from tad.errors import TadInputError

__all__ = ["load_checkpoint", "load_local_checkpoint", "safe_globals", "trust_directory", "TRUST_HINT"]

TRUST_HINT = "if you trust this file, pass --trust-checkpoint"
_trusted_dirs: set[str] = set()


def _numpy_globals() -> list:
    import numpy as np

    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        multiarray = np.core.multiarray
    found = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [obj for obj in vars(dtypes).values() if isinstance(obj, type) and issubclass(obj, np.dtype)]
    return found


def _history_buffer_getattr():
    """A ``getattr`` that only looks up HistoryBuffer statistics (pickled as bound methods)."""
    from mmengine.logging.history_buffer import HistoryBuffer

    def restricted_getattr(obj, name):
        if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and isinstance(name, str) and not name.startswith("_") \
                and callable(getattr(HistoryBuffer, name, None)):
            return getattr(obj, name)
        raise pickle.UnpicklingError(f"getattr({type(obj).__name__}, {name!r}) is not allowed")

    return HistoryBuffer, restricted_getattr


def safe_globals() -> list:
    """What ``torch.load(weights_only=True)`` may rebuild besides tensors (see the module docstring)."""
    history_buffer, restricted_getattr = _history_buffer_getattr()
    return [*_numpy_globals(), history_buffer, (restricted_getattr, "builtins.getattr")]


def _one_line(exc: BaseException) -> str:
    text = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in text:  # torch's message names the refused global on one of its lines
        if "GLOBAL" in line or "Unsupported" in line:
            return line[:200]
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def load_checkpoint(path: str | os.PathLike, map_location=None, trusted: bool = False):
    """Read a detector checkpoint; weights only unless ``trusted`` (see the module docstring)."""
    if trusted:
        return torch.load(path, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "GLOBAL" in str(exc) or "not allowed" in str(exc):
            raise TadInputError(path, f"holds objects a weights-only load refuses ({_one_line(exc)}); "
                                      f"{TRUST_HINT}") from None
        raise


def trust_directory(directory: str | os.PathLike) -> None:
    """Checkpoints inside ``directory`` (a run's own work dir) load as trusted pickles."""
    _trusted_dirs.add(osp.realpath(directory))


def _is_trusted(filename: str) -> bool:
    real = osp.realpath(filename)
    return any(Path(real).is_relative_to(d) for d in _trusted_dirs)


def load_local_checkpoint(filename: str, map_location=None):
    """mmengine's loader for local paths: trusted inside ``trust_directory`` folders, safe elsewhere."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"{filename} can not be found.")
    return load_checkpoint(filename, map_location=map_location, trusted=_is_trusted(filename))
