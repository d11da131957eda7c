"""Refusing outputs that would overwrite one of a command's inputs.

Contract: ``refuse_output_over_inputs(outputs, inputs)`` raises ``TadInputError`` with one
line (``OUT: --flag is one of the inputs (--other); refusing to overwrite it``) when any
output path resolves to the same file as any input path. Paths are compared after
``os.path.realpath`` (links, ``./`` and ``..`` count) and, where both exist, by
``os.path.samefile`` (hard links count). ``None`` entries are ignored. Every command that
writes a file calls this before it writes anything.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping, Union

from tad.errors import TadInputError

__all__ = ["refuse_output_over_inputs", "same_file"]

PathLike = Union[str, "os.PathLike[str]"]


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (resolved paths, or samefile where both exist)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _flatten(paths: PathLike | Iterable[PathLike] | None) -> list[PathLike]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return [p for p in paths if p is not None]


def refuse_output_over_inputs(outputs: Mapping[str, PathLike | None],
                              inputs: Mapping[str, PathLike | Iterable[PathLike] | None]) -> None:
    """Raise ``TadInputError`` if an output (flag -> path) is one of the inputs (flag -> path(s))."""
    for out_flag, out_path in outputs.items():
        if out_path is None:
            continue
        for in_flag, in_paths in inputs.items():
            for in_path in _flatten(in_paths):
                if same_file(out_path, in_path):
                    raise TadInputError(
                        out_path, f"{out_flag} is one of the inputs ({in_flag}); refusing to overwrite it")
