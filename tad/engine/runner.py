"""Building mmengine's Runner from a tad config (contract C6).

``load_config`` reads a config (a path, or the bare name of a config shipped in
``tad.configs``), merges ``--cfg-options`` and lets every dataloader's dataset and every
evaluator fill the keys it leaves unset (``None``) from the config's top level: the engine
calls their class's ``fill_config(entry, cfg, split)`` and knows no dataset key (for
``FeatureDataset``/``DetectionMAP``: ``ann_file``, ``feature_store``, ``max_seq_len`` and
``<split>_subset``); ``num_classes`` and ``max_seq_len`` also go into the model. Overriding a
path is therefore one option:
``--cfg-options ann_file=data/thumos14.json feature_store=feats.h5``.

``build_runner`` applies the command-line choices (work dir, resume, seed, AMP,
device, launcher), checks the inputs early with one-line errors (each dataset class's
``check_config``), and returns the Runner. ``find_best_checkpoint`` picks the best checkpoint of a run.
"""
from __future__ import annotations

import copy
import glob
import itertools
import os
import sys
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Mapping

import torch

import tad.datasets  # noqa: F401  (dataset + collate registrations)
import tad.registry  # noqa: F401  (registries of scope 'tad' + mmengine fixes)
from tad.compat import apply_mmengine_fixes
from tad.engine.config_check import check_cfg_options, check_components
from tad.errors import TadInputError

apply_mmengine_fixes()

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402
from mmengine.registry import OPTIM_WRAPPERS  # noqa: E402

__all__ = ["load_config", "build_runner", "find_best_checkpoint", "find_resume_checkpoint",
           "parse_cfg_options", "resolve_config_path", "input_error_from_worker", "select_device", "CPUAutocastOptimWrapper"]

#: the Runner's loader / evaluator entries and the split each serves. Which keys a dataset
#: or metric takes from the top level is theirs to say (their ``fill_config``/``check_config``).
#: numbers the runners built in this process (see build_runner's experiment_name)
_RUNNER_COUNT = itertools.count()
_LOADER_SPLITS = {"train_dataloader": "train", "val_dataloader": "val", "test_dataloader": "test"}
_EVALUATOR_SPLITS = {"val_evaluator": "val", "test_evaluator": "test"}


@OPTIM_WRAPPERS.register_module(force=True)
class CPUAutocastOptimWrapper(OptimWrapper):
    """Mixed precision on CPU: bf16 autocast, no loss scaling (bf16 keeps fp32's range).

    mmengine's ``AmpOptimWrapper`` refuses to run without an accelerator.
    """

    def __init__(self, dtype: str | torch.dtype = "bfloat16", **kwargs):
        super().__init__(**kwargs)
        self.cast_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast(device_type="cpu", dtype=self.cast_dtype):
            yield


# ---------------------------------------------------------------------- configs
def resolve_config_path(path: str | os.PathLike) -> Path:
    """``path`` if it exists, else the shipped config of that name (``tad.configs.find_config``:
    short name, ``method/name``, or an old name; ``.py`` optional)."""
    from tad.configs import find_config

    p = Path(path)
    if p.is_file():
        return p
    try:
        found = find_config(p.as_posix())
    except ValueError as exc:
        raise TadInputError(path, str(exc)) from None
    if found is not None:
        return found
    raise TadInputError(path, "config not found (neither a file nor the name of a shipped config)")


def parse_cfg_options(options: Iterable[str] | Mapping | None) -> dict:
    """``["a.b=1", "c=[1,2]"]`` -> ``{"a.b": 1, "c": [1, 2]}`` (mmengine's --cfg-options syntax)."""
    if options is None:
        return {}
    if isinstance(options, Mapping):
        return dict(options)
    parsed = {}
    for item in options:
        if "=" not in item:
            raise TadInputError(item, "cfg option must look like key=value")
        key, value = item.split("=", 1)
        parsed[key.strip()] = DictAction._parse_iterable(value)
    return parsed


def load_config(path: str | os.PathLike, cfg_options: Iterable[str] | Mapping | None = None) -> Config:
    """Read a config, merge ``cfg_options`` and propagate the top-level data keys."""
    resolved = resolve_config_path(path)
    try:
        cfg = Config.fromfile(str(resolved))
    except TadInputError:
        raise
    except Exception as exc:  # syntax errors, bad _base_ references, ...
        first = str(exc).strip().splitlines()
        raise TadInputError(resolved, f"invalid config: {type(exc).__name__}: {first[0] if first else ''}") from exc
    options = parse_cfg_options(cfg_options)
    if options:
        check_cfg_options(cfg, options)
        old_schedule = _schedule_lengths(cfg)
        try:
            cfg.merge_from_dict(options)
        except Exception as exc:
            raise TadInputError(resolved, f"bad --cfg-options {options}: {exc}") from exc
        _follow_schedule_length(cfg, old_schedule, options)
    propagate_top_level_keys(cfg)
    check_components(cfg, str(resolved), options)
    return cfg


def _schedule_lengths(cfg: Config) -> tuple[int | None, int | None]:
    train_cfg = cfg.get("train_cfg") or {}
    return train_cfg.get("max_epochs", cfg.get("max_epochs")), cfg.get("warmup_epochs")


def _follow_schedule_length(cfg: Config, old: tuple[int | None, int | None], options: dict) -> None:
    """Let ``max_epochs=N`` / ``warmup_epochs=N`` / ``train_cfg.max_epochs=N`` on the command
    line also move the epoch loop and the schedulers' bounds that were tied to the old
    values (warmup ``end``, cosine ``begin``/``end``/``T_max``)."""
    old_max, old_warm = old
    if old_max is None:
        return
    new_max = options.get("train_cfg.max_epochs", options.get("max_epochs", old_max))
    new_warm = options.get("warmup_epochs", old_warm)
    if new_max == old_max and new_warm == old_warm:
        return
    cfg.max_epochs = new_max
    if new_warm is not None:
        cfg.warmup_epochs = new_warm
    if cfg.get("train_cfg") is not None and "max_epochs" in cfg.train_cfg:
        cfg.train_cfg.max_epochs = new_max
    schedulers = cfg.get("param_scheduler") or []
    for sched in schedulers if isinstance(schedulers, (list, tuple)) else [schedulers]:
        if not isinstance(sched, Mapping) or not sched.get("by_epoch", True):
            continue
        for key in ("begin", "end"):
            if sched.get(key) == old_max:
                sched[key] = new_max
            elif old_warm is not None and sched.get(key) == old_warm:
                sched[key] = new_warm
        if "T_max" in sched and old_warm is not None and sched["T_max"] == old_max - old_warm:
            sched["T_max"] = new_max - new_warm
        elif "T_max" in sched and sched["T_max"] == old_max:
            sched["T_max"] = new_max
    if isinstance(schedulers, (list, tuple)):
        # a run shorter than its warmup keeps only the warmup
        cfg.param_scheduler = [s for s in schedulers if not isinstance(s, Mapping) or not s.get("by_epoch", True)
                               or s.get("end") is None or s.get("begin", 0) < s["end"]]


def _registered_class(registry, entry):
    """The class a config entry ``dict(type=...)`` builds, or None (unknown or not a name)."""
    kind = entry.get("type") if isinstance(entry, Mapping) else None
    if isinstance(kind, type):
        return kind
    if not isinstance(kind, str):
        return None
    try:
        return registry.get(kind)
    except Exception:  # noqa: BLE001 - unknown types are reported when the Runner builds them
        return None


def _dataset_entries(cfg: Config):
    """(split, dataset entry, its class) of every dataloader."""
    from tad.registry import DATASETS

    for loader_key, split in _LOADER_SPLITS.items():
        dataset = (cfg.get(loader_key) or {}).get("dataset")
        if isinstance(dataset, Mapping):
            yield split, dataset, _registered_class(DATASETS, dataset)


def _metric_entries(cfg: Config):
    """(split, metric entry, its class) of every evaluator."""
    from tad.registry import METRICS

    for evaluator_key, split in _EVALUATOR_SPLITS.items():
        evaluator = cfg.get(evaluator_key)
        for metric in evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]:
            if isinstance(metric, Mapping):
                yield split, metric, _registered_class(METRICS, metric)


def propagate_top_level_keys(cfg: Config) -> None:
    """Let each dataset and metric entry fill its unset keys from the config's top level
    (their class's ``fill_config(entry, cfg, split)``), then the model's ``num_classes`` and
    ``max_seq_len``."""
    cfg.setdefault("val_subset", cfg.get("test_subset"))
    for split, entry, cls in [*_dataset_entries(cfg), *_metric_entries(cfg)]:
        fill = getattr(cls, "fill_config", None)
        if fill is not None:
            fill(entry, cfg, split)
    model = cfg.get("model")
    if isinstance(model, Mapping):
        if model.get("num_classes") is None and cfg.get("num_classes") is not None:
            model["num_classes"] = cfg.num_classes
        if model.get("max_seq_len") is None and cfg.get("max_seq_len") is not None:
            model["max_seq_len"] = cfg.max_seq_len


def input_error_from_worker(exc: BaseException) -> TadInputError | None:
    """The TadInputError a DataLoader worker raised, from torch's re-raised wrapper (which
    cannot rebuild our two-argument exception and turns it into a multi-line RuntimeError)."""
    if isinstance(exc, TadInputError):
        return exc
    marker = f"{TadInputError.__module__}.{TadInputError.__name__}: "
    for line in reversed(str(exc).splitlines()):
        if line.startswith(marker):
            path, _, problem = line[len(marker):].partition(": ")
            return TadInputError(path, problem)
    return None


def checkpoint_mismatch_error(exc: BaseException, checkpoint: object) -> TadInputError | None:
    """One line for torch's multi-line 'Error(s) in loading state_dict' (resuming or loading a
    checkpoint whose model differs from the config's); None for any other exception."""
    text = str(exc)
    if not isinstance(exc, RuntimeError) or "Error(s) in loading state_dict" not in text:
        return None
    sizes = [line.strip() for line in text.splitlines() if "size mismatch" in line]
    keys = [line.strip() for line in text.splitlines() if "Missing key" in line or "Unexpected key" in line]
    what = f"{len(sizes)} shape mismatches ({sizes[0][:200]})" if sizes else (keys[0][:200] if keys else "keys differ")
    return TadInputError(checkpoint, f"checkpoint does not match the config's model: {what}; resume with the "
                                     "config the run started with, or train into a new --work-dir")


# ---------------------------------------------------------------------- devices
def select_device(device: str | None) -> str:
    """Make mmengine (and us) use ``device`` ('cpu', 'cuda', 'cuda:1'); None = auto. Returns it."""
    import mmengine.device.utils as device_utils

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind = device.split(":")[0]
    if kind not in ("cpu", "cuda"):
        raise TadInputError(device, "unknown device (use cpu, cuda or cuda:N)")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise TadInputError(device, "CUDA is not available on this machine")
        if ":" in device:
            torch.cuda.set_device(int(device.split(":")[1]))
    device_utils.DEVICE = kind
    return device


# ---------------------------------------------------------------------- checkpoints
def _is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """torch.save writes zip archives; a file cut short by a kill has no central directory."""
    try:
        return os.path.getsize(path) > 0 and zipfile.is_zipfile(path)
    except OSError:
        return False


def _epoch_checkpoints(work_dir: Path) -> list[Path]:
    found = [Path(p) for p in glob.glob(str(work_dir / "epoch_*.pth")) + glob.glob(str(work_dir / "iter_*.pth"))]

    def step(p: Path) -> int:
        try:
            return int(p.stem.split("_")[-1])
        except ValueError:
            return -1
    return sorted(found, key=lambda p: (step(p), p.stat().st_mtime))


def find_resume_checkpoint(work_dir: str | os.PathLike, notes: list[str] | None = None) -> Path | None:
    """The newest complete checkpoint of a run: ``last_checkpoint`` if it points at a whole
    file, else the newest whole ``epoch_*.pth``/``iter_*.pth`` (a kill during saving
    leaves a truncated file or an empty ``last_checkpoint``).

    ``last_checkpoint`` is resolved inside ``work_dir`` (by file name), so a copied or
    moved work dir resumes from its own files, never from the original's. Each
    truncated checkpoint passed over is described in ``notes`` (when given)."""
    work_dir = Path(work_dir)
    skipped: set[Path] = set()

    def complete(candidate: Path) -> bool:
        if _is_complete_checkpoint(candidate):
            return True
        if candidate not in skipped:
            skipped.add(candidate)
            if notes is not None:
                notes.append(f"{candidate}: skipped, truncated (not a whole checkpoint: the run was probably "
                             "killed while saving it)")
        return False

    marker = work_dir / "last_checkpoint"
    if marker.is_file():
        named = Path(marker.read_text().strip())
        candidates = [work_dir / named.name] if named.name else []
        if named.name and not named.is_absolute() and named.parent != Path("."):
            candidates.append(work_dir / named)
        for candidate in candidates:
            if candidate.is_file() and complete(candidate):
                return candidate
    for candidate in reversed(_epoch_checkpoints(work_dir)):
        if complete(candidate):
            return candidate
    return None


def find_best_checkpoint(work_dir: str | os.PathLike) -> Path:
    """Best checkpoint by average mAP (``best_*average_mAP*.pth``), else the last one."""
    work_dir = Path(work_dir)
    best = sorted(glob.glob(str(work_dir / "best_*average_mAP*.pth")), key=os.path.getmtime)
    if best:
        return Path(best[-1])
    last = find_resume_checkpoint(work_dir)
    if last is None:
        raise TadInputError(work_dir, "no checkpoint found in this work dir")
    return last


# ---------------------------------------------------------------------- runner
def _check_inputs(cfg: Config) -> None:
    """Fail early, in one line, on bad inputs: each dataset class's ``check_config(entry, cfg, split)``."""
    for split, entry, cls in _dataset_entries(cfg):
        check = getattr(cls, "check_config", None)
        if check is not None:
            check(entry, cfg, split)


def build_runner(cfg: Config, work_dir: str | os.PathLike | None = None, resume: bool = False,
                 seed: int | None = None, amp: bool = False, launcher: str = "none",
                 device: str | None = None):
    """An mmengine ``Runner`` for ``cfg`` with the command-line choices applied."""
    from mmengine.runner import Runner

    cfg = copy.deepcopy(cfg)  # the caller keeps its config unchanged
    if work_dir is not None:
        cfg.work_dir = str(work_dir)
    elif cfg.get("work_dir") is None:
        stem = Path(cfg.filename).stem if cfg.filename else "tad_run"
        cfg.work_dir = str(Path("work_dirs") / stem)
    if cfg.get("experiment_name") is None:
        # mmengine names its logger and visualizer instances after the experiment, by default
        # "<config>_<second>": two runners built in one process within the same second would share
        # the first one's logger, still writing to its (possibly closed) log file.
        stem = Path(cfg.filename).stem if cfg.filename else "tad_run"
        cfg.experiment_name = (f"{stem}_{time.strftime('%Y%m%d_%H%M%S')}_{os.getpid()}"
                               f"_{next(_RUNNER_COUNT)}")
    if seed is not None:
        cfg.randomness = dict(cfg.get("randomness") or {}, seed=int(seed))
    if launcher == "none" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        launcher = "pytorch"  # started by torchrun
    cfg.launcher = launcher
    device = select_device(device)
    on_cuda = device.startswith("cuda")
    if launcher != "none":
        env_cfg = cfg.setdefault("env_cfg", {})
        dist_cfg = dict(env_cfg.get("dist_cfg") or {})
        dist_cfg["backend"] = "nccl" if on_cuda else "gloo"
        env_cfg["dist_cfg"] = dist_cfg
        if not on_cuda:
            # DDP on CPU modules requires device_ids=None (mmengine passes LOCAL_RANK).
            cfg.model_wrapper_cfg = dict(type="MMDistributedDataParallel", broadcast_buffers=False,
                                         device_ids=None,
                                         find_unused_parameters=cfg.get("find_unused_parameters", False))
    if amp:
        optim = cfg.optim_wrapper
        if on_cuda:
            optim.type, optim.dtype = "AmpOptimWrapper", "float16"
            optim.setdefault("loss_scale", "dynamic")
        else:
            optim.type, optim.dtype = "CPUAutocastOptimWrapper", "bfloat16"
    if resume:
        from tad.compat.safe_checkpoint import trust_directory

        trust_directory(cfg.work_dir)  # the run's own checkpoints: full pickles are fine
        cfg.resume = True
        if cfg.get("load_from") is None:
            notes: list[str] = []
            last = find_resume_checkpoint(cfg.work_dir, notes)
            for note in notes:
                print(f"resume: {note}", file=sys.stderr)
            if notes and last is not None:
                print(f"resume: resuming from {last}", file=sys.stderr)
            cfg.load_from = str(last) if last is not None else None
    _check_inputs(cfg)
    return Runner.from_cfg(cfg)
