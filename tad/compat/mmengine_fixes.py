"""Workarounds for three breakages of mmengine 0.10.x on this stack.

1. Resuming fails under torch >= 2.6: ``torch.load`` defaults to ``weights_only=True``
   and mmengine's checkpoints pickle message hubs and numpy scalars. The local loader
   (``load_from=``, ``--resume``) is ``tad.compat.safe_checkpoint.load_local_checkpoint``:
   weights-only with those few types allow-listed, so a payload hidden in a checkpoint
   never runs; only the run's own work dir, when resuming, is read as trusted.
2. setuptools >= 82 removed ``pkg_resources``, which mmengine's package utilities
   import (config ``pkg::path`` lookups). They are re-implemented on importlib.metadata.
3. ``init_dist('pytorch')`` calls ``torch.cuda.set_device`` unconditionally, which
   fails on CPU-only torch. Without CUDA we join the process group with gloo instead.

``apply()`` is idempotent; every entry point that builds an mmengine object calls it.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import os.path as osp

import torch

_applied = False


def load_trusted_checkpoint(filename: str, map_location=None):
    """Read a checkpoint as a trusted pickle (can run code: only for files you trust)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"{filename} can not be found.")
    return torch.load(filename, map_location=map_location, weights_only=False)


def is_installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    module = package
    try:
        dist = importlib.metadata.distribution(package)
        top_level = dist.read_text("top_level.txt")
        module = top_level.split()[0] if top_level else package.replace("-", "_")
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise importlib.metadata.PackageNotFoundError(package)
    return osp.dirname(spec.origin)


def _init_dist_pytorch_cpu_safe(backend: str = "nccl", init_backend: str = "torch", **kwargs) -> None:
    import torch.distributed as dist

    if torch.cuda.is_available():
        return _original_init_dist_pytorch(backend, init_backend=init_backend, **kwargs)
    # CPU-only: no device to pin, and nccl does not exist without CUDA.
    dist.init_process_group(backend="gloo", rank=int(os.environ["RANK"]),
                            world_size=int(os.environ["WORLD_SIZE"]), **kwargs)


_original_init_dist_pytorch = None


def apply() -> None:
    global _applied, _original_init_dist_pytorch
    if _applied:
        return
    import mmengine.config.config as config_module
    import mmengine.dist.utils as dist_utils
    import mmengine.hub.hub as hub_module
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils
    from mmengine.runner.checkpoint import CheckpointLoader

    from tad.compat.safe_checkpoint import load_local_checkpoint

    CheckpointLoader.register_scheme(prefixes="", loader=load_local_checkpoint, force=True)

    for module in (package_utils, utils_module, config_module):
        module.is_installed = is_installed
    for module in (package_utils, utils_module, config_module, hub_module):
        module.get_installed_path = get_installed_path

    _original_init_dist_pytorch = dist_utils._init_dist_pytorch
    dist_utils._init_dist_pytorch = _init_dist_pytorch_cpu_safe
    _applied = True
