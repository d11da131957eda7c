"""Extra rows of ``bench/backbone_speed.py``, one small module per backbone family.

Contract: every module here (not starting with ``_``) defines ``VARIANTS``, a list of
:class:`Variant`: another implementation of a registered backbone (the official code, an
alternative kernel) timed on the same input in the same process and reported as a ratio
against our default build. Adding a family's rows is adding one file here; no shared line
of the benchmark changes. Every registered backbone gets its own rows without any entry.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class Variant:
    """Args:
        backbone: registry name of the backbone this is compared with.
        label: short name printed in the ``impl`` column (e.g. ``"official"``, ``"grouped"``).
        build: returns the module in eval mode, or raises ``ImportError``/``RuntimeError`` with the
            reason it cannot run here (printed, not fatal). It takes clips shaped like ours,
            (B, 3, T, H, W), normalised the same way.
        dtypes: dtypes to time it in (default float32 only).
        note: one line printed with the ratio (what the variant is).
    """

    backbone: str
    label: str
    build: Callable[[], nn.Module]
    dtypes: tuple[str, ...] = ("float32",)
    note: str = ""
    extra: dict = field(default_factory=dict)


def load_variants() -> list[Variant]:
    """Every ``VARIANTS`` entry of the modules in this folder, in module-name order."""
    variants: list[Variant] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            variants += list(getattr(importlib.import_module(f"{__name__}.{info.name}"), "VARIANTS", []))
    return variants
