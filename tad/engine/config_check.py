"""Catching misspelt and mistyped config keys before anything is built.

Contract:

* ``check_cfg_options(cfg, options)`` (before merging ``--cfg-options``): the first part of
  every option key must be a known top-level key (a parameter of mmengine's ``Runner``,
  one of tad's own keys, a key of any config shipped in ``tad.configs``, or a key of the
  loaded config itself); a value replacing a number, a bool, a string, a list or a dict
  must be of the same kind (``max_epochs=abc`` is refused; replacing ``None`` is free).
* ``check_components(cfg, from_options)`` (after merging): every dict with a ``type``
  that names a registered class (model and its parts, datasets, metrics, loops, hooks,
  optimizers...) may only hold keys that class's constructor takes (unless it takes
  ``**kwargs``); dataloader dicts only ``DataLoader`` arguments.

Each problem is one ``TadInputError``: ``unknown config key 'model.embed_dimm' (did you
mean 'model.embed_dim'?)``, naming ``--cfg-options`` when the key came from there, else
the config file.
"""
from __future__ import annotations

import ast
import difflib
import importlib.resources
import inspect
from functools import lru_cache
from typing import Any, Iterable, Mapping

from tad.errors import TadInputError

__all__ = ["check_cfg_options", "check_components", "known_top_level_keys"]

#: tad's own top-level keys (copied into loaders/evaluators/model by load_config, or read by commands)
TAD_TOP_LEVEL_KEYS = frozenset({
    "ann_file", "feature_store", "train_subset", "val_subset", "test_subset", "max_seq_len", "num_classes",
    "classes", "extract", "max_epochs", "warmup_epochs", "find_unused_parameters", "work_dir", "_base_",
})
_LOADER_KEYS = ("train_dataloader", "val_dataloader", "test_dataloader")
_LOADER_EXTRA = frozenset({"dataset", "sampler", "batch_sampler", "collate_fn"})
#: keys a component dict may hold for whoever builds it, not for the class itself
_BUILDER_KEYS = {"optim_wrapper": frozenset({"constructor", "paramwise_cfg"})}


def _suggest(key: str, choices: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(key, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def _unknown(where: str, dotted: str, key: str, choices: Iterable[str]) -> TadInputError:
    prefix = dotted[: len(dotted) - len(key)]
    return TadInputError(where, f"unknown config key '{dotted}'{_suggest(key, choices, prefix)}")


@lru_cache(maxsize=1)
def _shipped_config_keys() -> frozenset:
    """Top-level names assigned in any config shipped in tad.configs (read from source, not run)."""
    keys: set[str] = set()
    try:
        root = importlib.resources.files("tad.configs")
    except ModuleNotFoundError:  # pragma: no cover
        return frozenset()

    def walk(folder) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry)
            elif entry.name.endswith(".py"):
                try:
                    tree = ast.parse(entry.read_text())
                except (SyntaxError, UnicodeDecodeError, OSError):
                    continue
                for node in tree.body:
                    targets = node.targets if isinstance(node, ast.Assign) else \
                        [node.target] if isinstance(node, ast.AnnAssign) else []
                    keys.update(t.id for t in targets if isinstance(t, ast.Name))
    walk(root)
    return frozenset(keys)


@lru_cache(maxsize=1)
def _runner_keys() -> frozenset:
    from mmengine.runner import Runner

    names = set(inspect.signature(Runner.__init__).parameters) - {"self"}
    # read by Runner.from_cfg / the Runner from the config itself
    return frozenset(names | {"launcher", "env_cfg", "log_processor", "log_level", "visualizer", "default_scope",
                              "randomness", "experiment_name", "model_wrapper_cfg", "resume", "load_from",
                              "auto_scale_lr", "compile", "cfg", "filename"})


def known_top_level_keys(cfg: Mapping | None = None) -> frozenset:
    """Top-level keys that mean something (see the module docstring)."""
    own = set(cfg.keys()) if cfg is not None else set()
    return frozenset(own) | _runner_keys() | TAD_TOP_LEVEL_KEYS | _shipped_config_keys()


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "a bool (True/False)"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a dict"
    return None


def _lookup(cfg: Mapping, parts: list[str]) -> tuple[bool, Any]:
    node: Any = cfg
    for part in parts:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def check_cfg_options(cfg: Mapping, options: Mapping[str, Any]) -> None:
    """Unknown top-level keys and values of the wrong kind in ``--cfg-options``."""
    known = known_top_level_keys(cfg)
    for dotted, value in options.items():
        top = dotted.split(".")[0]
        if top not in known:
            close = difflib.get_close_matches(top, sorted(known), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}{dotted[len(top):]}'?)" if close else ""
            raise TadInputError("--cfg-options", f"unknown config key '{dotted}'{hint}")
        found, old = _lookup(getattr(cfg, "_cfg_dict", cfg), dotted.split("."))
        old_kind, new_kind = _kind(old), _kind(value)
        if found and old_kind is not None and new_kind is not None and new_kind != old_kind:  # None unsets a key
            if old_kind == "a number" and isinstance(value, str):
                problem = f"must be a number, got {value!r}"
            else:
                problem = f"must be {old_kind} like {old!r}, got {value!r}"
            raise TadInputError("--cfg-options", f"{dotted}: {problem}")


def _registries():
    import tad.registry as reg

    return [reg.MODELS, reg.DATASETS, reg.METRICS, reg.LOOPS, reg.HOOKS, reg.DATA_SAMPLERS, reg.OPTIM_WRAPPERS,
            reg.OPTIMIZERS, reg.PARAM_SCHEDULERS, reg.VISUALIZERS, reg.VISBACKENDS, reg.LOG_PROCESSORS]


def _resolve(type_name: Any):
    if inspect.isclass(type_name):
        return type_name
    if not isinstance(type_name, str):
        return None
    return _resolve_name(type_name)


@lru_cache(maxsize=1024)
def _resolve_name(type_name: str):
    """The registered class (or function) of that name; cached (registry misses try imports)."""
    for registry in _registries():
        try:
            obj = registry.get(type_name)
        except Exception:  # noqa: BLE001  (a registry that cannot import its locations)
            obj = None
        if obj is not None:
            return obj
    return None


@lru_cache(maxsize=1024)
def _accepted(cls) -> frozenset | None:
    """Constructor keyword names, or None when it takes **kwargs (anything goes).

    A class whose ``__init__`` passes ``**kwargs`` on to a tad base class (``STPTDetector`` ->
    ``DenseDetector``) accepts its own names plus the base's: the classes of its MRO are read
    until one takes no ``**kwargs``. Classes outside tad with ``**kwargs`` stay unchecked.
    """
    chain = list(inspect.getmro(cls)) if inspect.isclass(cls) else [cls]
    names: set[str] = set()
    for klass in chain:
        init = klass.__init__ if inspect.isclass(klass) else klass
        if inspect.isclass(klass) and "__init__" not in vars(klass):
            continue  # inherited: read where it is defined
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        names |= {name for name, p in params.items()
                  if name != "self" and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return frozenset(names)
        if not (inspect.isclass(klass) and klass.__module__.startswith("tad.")):
            return None
    return None


@lru_cache(maxsize=1)
def _dataloader_keys() -> frozenset:
    from torch.utils.data import DataLoader

    return frozenset(set(inspect.signature(DataLoader.__init__).parameters) - {"self"} | _LOADER_EXTRA)


def check_components(cfg: Mapping, config_path: str, option_keys: Iterable[str] = ()) -> None:
    """Keys unknown to the component they configure (see the module docstring)."""
    option_keys = list(option_keys)

    def where(dotted: str) -> str:
        return "--cfg-options" if any(k == dotted or dotted.startswith(k + ".") or k.startswith(dotted + ".")
                                      for k in option_keys) else config_path

    def visit(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            cls = _resolve(node.get("type")) if "type" in node else None
            accepted = _accepted(cls) if cls is not None else None
            if accepted is not None:
                accepted = accepted | _BUILDER_KEYS.get(path, frozenset())
                for key in node:
                    if key != "type" and key not in accepted:
                        dotted = f"{path}.{key}" if path else key
                        raise _unknown(where(dotted), dotted, key, accepted)
            for key, value in node.items():
                visit(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                visit(value, f"{path}.{i}")

    for loader_key in _LOADER_KEYS:
        loader = cfg.get(loader_key)
        if isinstance(loader, Mapping):
            allowed = _dataloader_keys()
            for key in loader:
                if key not in allowed:
                    raise _unknown(where(f"{loader_key}.{key}"), f"{loader_key}.{key}", key, allowed)
    for key, value in cfg.items():
        visit(value, str(key))
