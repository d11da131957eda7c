"""Shipped mmengine configs, installed as the package data ``tad.configs``.

Layout: ``<method>/<dataset>_<features>.py`` (e.g. ``stpt/activitynet13_tsp.py``) over
``_base_/datasets/<dataset>/<features>.py``, ``_base_/models/``, ``_base_/schedules/``,
``_base_/evaluators/<dataset>.py`` (the tIoU protocol of a dataset).

:func:`find_config` resolves a config by name: its short name (``thumos14_i3d`` or
``thumos14_i3d.py``, unique across methods), its path in the package
(``stpt/thumos14_i3d``), or an old name (:data:`OLD_NAMES`). In a source checkout the
test and bench configs (``tests/configs/``, ``bench/configs/``) resolve by name too;
they are not shipped.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["OLD_NAMES", "DEV_FOLDERS", "find_config", "shipped_configs", "evaluator_config"]

#: names configs had before the <method>/<dataset>_<features> layout -> their path now
OLD_NAMES = {
    "thumos14_stpt_i3d": "stpt/thumos14_i3d",
    "thumos14_stpt_tada2d": "stpt/thumos14_tada2d",
    "thumos14_stpt_slowfast": "stpt/thumos14_slowfast",
    "demo_stpt": "stpt/demo_tiny3d",
    "demo_stpt_causal": "stpt/demo_tiny3d_causal",
}
#: folders of a source checkout whose configs resolve by name (tests and benchmarks)
DEV_FOLDERS = ("tests/configs", "bench/configs")


def _root() -> Path:
    return Path(str(resources.files("tad.configs")))


def shipped_configs() -> dict[str, Path]:
    """Every shipped top-level config: path in the package without ``.py`` -> file."""
    root = _root()
    out = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] == "_base_" or path.name.startswith("_"):
            continue
        out[rel.with_suffix("").as_posix()] = path
    return out


def _dev_configs() -> dict[str, Path]:
    repo = Path(__file__).resolve().parents[1]
    if not (repo / "pyproject.toml").is_file():
        return {}
    out = {}
    for folder in DEV_FOLDERS:
        for path in sorted((repo / folder).glob("*.py")):
            if not path.name.startswith("_"):
                out.setdefault(path.stem, path)
    return out


def find_config(name: str) -> Path | None:
    """The config called ``name`` (see the module docstring), or None. Raises ValueError when a
    short name matches configs of several methods."""
    stem = name[:-3] if name.endswith(".py") else name
    if stem.startswith("configs/"):  # a path into a source checkout, e.g. configs/thumos14_stpt_i3d.py
        stem = stem[len("configs/"):]
    stem = OLD_NAMES.get(stem, stem)
    shipped = shipped_configs()
    if stem in shipped:
        return shipped[stem]
    if "/" not in stem:
        matches = [path for key, path in shipped.items() if key.rsplit("/", 1)[-1] == stem]
        if len(matches) > 1:
            names = ", ".join(sorted(p.relative_to(_root()).as_posix() for p in matches))
            raise ValueError(f"config name is ambiguous ({names}): give the method folder too")
        if matches:
            return matches[0]
        old_top_level = _root() / f"{stem}.py"  # bench configs still at the top of the package
        if old_top_level.is_file():
            return old_top_level
        return _dev_configs().get(stem)
    return None


def evaluator_config(dataset: str) -> Path | None:
    """``_base_/evaluators/<dataset>.py``: the tIoU protocol of a dataset, or None."""
    path = _root() / "_base_" / "evaluators" / f"{dataset}.py"
    return path if path.is_file() else None
