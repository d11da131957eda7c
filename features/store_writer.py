"""Writing the HDF5 feature store crash-safely and resumably (contract C2).

While a run is in progress nothing is written into the store at ``path``. Each
finished video goes to its own small HDF5 file in ``<path>.parts/`` (temp file,
fsync, ``os.replace``, fsync of the folder), so it is durable when ``write_video``
returns; failures go to ``failed-*.json`` files the same way. ``finalize`` merges
the parts (plus the videos of an existing store at ``path`` when resuming) into
``<path>.tmp``, fsyncs it, replaces ``path`` atomically and removes the parts
folder. Hence after ``kill -9`` at any moment:

* the file at ``path``, if present, is a complete store that opens;
* re-running with the same settings skips every video in ``completed`` and loses
  only the videos that were in progress.

``<path>.parts/meta.json`` records the settings of the unfinished run. Re-running
with different settings (backbone, checkpoint hash, store dtype or an option that
changes the feature values) is refused with TadInputError unless ``overwrite=True``,
which discards any unfinished run and ignores the old store: the old store stays at
``path`` until ``finalize`` replaces it atomically, so a crash never leaves no store.
An interrupted ``overwrite`` run resumes like any other (its ``meta.json`` says it
replaces the store).

One process writes an output at a time: the constructor takes an exclusive ``fcntl``
lock (``tad.features.output_lock``) and a second writer of the same path (and rank)
in another process is refused with "is being written by another process (pid N)".
``finalize`` (or ``close``) releases it; so does the death of the process. Options that do not change
the values (``batch_size``, ``workers``, ``device``, ... see ``IGNORED_OPTION_KEYS``)
may differ between runs.

Distributed runs: every rank builds a writer with its ``rank`` and ``world_size``
and writes its own videos as parts (all ranks share the parts folder, so it works
across machines on a shared filesystem). ``finalize`` writes a ``rank-<r>.done``
marker; rank 0 polls until every rank's marker is there, then merges. When a
torch.distributed process group is initialised, the constructor is a collective
call (a barrier after rank 0's ``overwrite`` wipe and after stale markers are
cleared); without one, start rank 0's ``overwrite`` run first.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

import tad
from tad.errors import TadInputError
from tad.features.output_lock import OutputLock
from tad.features.store import (FORMAT, FORMAT_VERSION, check_store_file, decode_attrs, escape_id,
                                open_h5_readonly, read_failed, unescape_id)

__all__ = ["FeatureStoreWriter", "IGNORED_OPTION_KEYS", "parts_dir_for"]

log = logging.getLogger(__name__)

# Extraction options that do not change feature values: they may differ on resume.
IGNORED_OPTION_KEYS = frozenset({
    "batch_size", "workers", "num_workers", "device", "video_timeout", "overwrite", "progress",
    "recursive", "exts", "ext", "video_list", "compression", "channels_last", "chunk_frames",
})
_META_KEYS = ("backbone", "checkpoint_name", "checkpoint_sha256")


def parts_dir_for(path: str | os.PathLike) -> Path:
    """The folder holding an unfinished run's per-video parts."""
    return Path(str(path) + ".parts")


def _json_clean(value: Any) -> Any:
    """Round-trip through JSON so tuples, Paths and numpy scalars compare like the stored copy."""
    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, (set, frozenset)):
            return sorted(obj)
        return str(obj)
    return json.loads(json.dumps(value, default=default, sort_keys=True))


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, data: bytes, tmp_tag: str) -> None:
    tmp = path.with_name(f".{path.name}.{tmp_tag}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent, directory=True)


def _id_hash(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:24]


def _one_line(text: object) -> str:
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


def _dist_group_active(world_size: int) -> bool:
    """True when a torch.distributed process group is initialised. Never imports torch:
    if nobody imported torch.distributed, no group can exist."""
    if world_size <= 1:
        return False
    dist = sys.modules.get("torch.distributed")
    return dist is not None and dist.is_available() and dist.is_initialized()


def _barrier() -> None:
    import torch.distributed as dist
    dist.barrier()


class FeatureStoreWriter:
    """Crash-safe, resumable writer of one feature store (see the module docstring).

    ``meta``: dict(backbone=..., checkpoint_name=..., checkpoint_sha256=..., options={...}).
    ``dtype``: stored feature dtype ('float16' default, 'float32'). ``compression``:
    None (contiguous, fastest random reads) or 'gzip'/'lzf'.
    """

    def __init__(self, path: str | os.PathLike, meta: Mapping[str, Any], overwrite: bool = False,
                 dtype: str = "float16", compression: str | None = None, rank: int = 0, world_size: int = 1,
                 merge_timeout: float | None = None, poll_interval: float = 0.5):
        if dtype not in ("float16", "float32", "float64"):
            raise TadInputError(path, f"store dtype must be float16, float32 or float64, got {dtype!r}")
        if compression not in (None, "gzip", "lzf"):
            raise TadInputError(path, f"compression must be None, 'gzip' or 'lzf', got {compression!r}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.path = Path(path)
        self.parts_dir = parts_dir_for(self.path)
        self.dtype = np.dtype(dtype)
        self.compression = compression
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.merge_timeout = merge_timeout
        self.poll_interval = poll_interval
        self.meta = self._normalise_meta(meta)
        self._tmp_tag = f"r{self.rank}"
        self._finalized = False
        self._feature_shape: tuple | None = None  # (C,) or (C, g, g) shared by all videos
        self._use_dist = _dist_group_active(self.world_size)

        if self.path.is_dir():
            raise TadInputError(self.path, "is a directory, expected a path for the .h5 feature store")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = OutputLock(self.path, self.rank)  # before touching anything of another run
        try:
            self._open(overwrite)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, overwrite: bool) -> None:
        if overwrite and self.rank == 0:
            self._remove_unfinished()
        # This rank's marker from an earlier interrupted run: we are not done.
        (self.parts_dir / f"rank-{self.rank}.done").unlink(missing_ok=True)
        if self._use_dist:
            _barrier()  # rank 0 has wiped (overwrite) and no stale marker is left
        elif overwrite and self.rank != 0:
            self._wait_for_fresh_parts()

        self._has_store = False  # a valid store with the same settings exists at `path`
        self._existing_ids: set[str] = set()
        self._existing_failed: dict[str, str] = {}
        # replacing: the store at `path` (if any) is ignored and replaced by finalize
        self._replacing = bool(overwrite) or self._unfinished_run_replaces()
        if not self._replacing:
            self._check_existing_store()
        self._prepare_parts_dir()
        self._part_ids, self._part_failed = self._scan_parts()
        self._completed = set(self._existing_ids) | set(self._part_ids)

    # ---- settings --------------------------------------------------------------
    def _normalise_meta(self, meta: Mapping[str, Any]) -> dict:
        missing = [key for key in ("backbone",) if not meta.get(key)]
        if missing:
            raise ValueError(f"store meta needs {missing}")
        out = {key: str(meta.get(key) or "") for key in _META_KEYS}
        out["options"] = _json_clean(dict(meta.get("options") or {}))
        out["dtype"] = self.dtype.name
        return out

    @staticmethod
    def _identity(meta: Mapping[str, Any]) -> dict:
        ident = {"backbone": meta.get("backbone", ""), "dtype": meta.get("dtype", "")}
        sha = meta.get("checkpoint_sha256", "")
        ident["checkpoint"] = sha if sha else meta.get("checkpoint_name", "")
        options = meta.get("options") or {}
        ident["options"] = {k: v for k, v in options.items() if k not in IGNORED_OPTION_KEYS}
        return ident

    def _differences(self, other: Mapping[str, Any]) -> list[str]:
        mine, theirs = self._identity(self.meta), self._identity(other)
        diffs = []
        for key in ("backbone", "checkpoint", "dtype"):
            if mine[key] != theirs[key]:
                diffs.append(f"{key} {theirs[key]!r} -> {mine[key]!r}")
        for key in sorted(set(mine["options"]) | set(theirs["options"])):
            a, b = theirs["options"].get(key), mine["options"].get(key)
            if a != b:
                diffs.append(f"{key} {a!r} -> {b!r}")
        return diffs

    def _refuse(self, where: Path, what: str, diffs: list[str]) -> None:
        shown = "; ".join(diffs[:4]) + (f"; ... ({len(diffs)} differences)" if len(diffs) > 4 else "")
        raise TadInputError(where, f"{what} was made with different settings ({shown}); "
                                   "use --overwrite (overwrite=True) to replace it, or another output path")

    # ---- existing state --------------------------------------------------------
    def _remove_unfinished(self) -> None:
        """``overwrite``: drop an unfinished run; the old store stays until ``finalize`` replaces it."""
        Path(str(self.path) + ".tmp").unlink(missing_ok=True)
        if self.parts_dir.exists():
            shutil.rmtree(self.parts_dir)

    def _read_parts_meta(self) -> dict | None:
        try:
            previous = json.loads((self.parts_dir / "meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return previous if isinstance(previous, dict) else None

    def _unfinished_run_replaces(self) -> bool:
        """An interrupted ``overwrite`` run with these settings: resuming it still replaces the store."""
        previous = self._read_parts_meta()
        return bool(previous and previous.get("replaces_existing") and not self._differences(previous))

    def _wait_for_fresh_parts(self) -> None:
        """Non-zero ranks without a process group: wait until rank 0 has wiped and restarted."""
        deadline = None if self.merge_timeout is None else time.monotonic() + self.merge_timeout
        meta_file = self.parts_dir / "meta.json"
        while True:
            if meta_file.exists():
                try:
                    previous = json.loads(meta_file.read_text())
                    if previous.get("replaces_existing") and not self._differences(previous):
                        return
                except (OSError, json.JSONDecodeError, AttributeError):
                    pass
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.parts_dir}: rank 0 did not start the overwrite run in time")
            time.sleep(self.poll_interval)

    def _stored_meta(self, h5: h5py.File) -> dict:
        attrs = decode_attrs(h5.attrs)
        meta = {key: str(attrs.get(key) or "") for key in _META_KEYS}
        meta["options"] = attrs.get("options") if isinstance(attrs.get("options"), dict) else {}
        dtype = attrs.get("dtype")
        if not dtype and "videos" in h5:
            for group in h5["videos"].values():
                dtype = group["features"].dtype.name
                break
        meta["dtype"] = dtype or self.meta["dtype"]
        return meta

    def _check_existing_store(self) -> None:
        if not self.path.exists():
            return
        try:
            h5 = open_h5_readonly(self.path)
        except OSError:
            raise TadInputError(self.path, "exists and is not an HDF5 feature store; use --overwrite "
                                           "(overwrite=True) to replace it, or another output path") from None
        with h5:
            try:
                check_store_file(h5, self.path)
            except TadInputError as exc:
                raise TadInputError(self.path, f"{exc.problem}; use --overwrite (overwrite=True) to replace it") from None
            diffs = self._differences(self._stored_meta(h5))
            if diffs:
                self._refuse(self.path, "the existing store", diffs)
            self._has_store = True
            if "videos" in h5:
                for name, group in h5["videos"].items():
                    if bool(group.attrs.get("complete", False)):
                        self._existing_ids.add(unescape_id(name))
                        if self._feature_shape is None:
                            self._feature_shape = tuple(group["features"].shape[1:])
            self._existing_failed = read_failed(h5)

    def _prepare_parts_dir(self) -> None:
        meta_file = self.parts_dir / "meta.json"
        if meta_file.exists():
            try:
                previous = json.loads(meta_file.read_text())
            except (OSError, json.JSONDecodeError):
                previous = None
            if previous is not None:
                diffs = self._differences(previous)
                if diffs:
                    self._refuse(self.parts_dir, "an unfinished run", diffs)
                return
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        record = dict(self.meta, replaces_existing=True) if self._replacing else self.meta
        _atomic_write_bytes(meta_file, json.dumps(record, sort_keys=True, indent=1).encode(), self._tmp_tag)
        _fsync_path(self.parts_dir.parent, directory=True)

    def _scan_parts(self) -> tuple[dict[str, Path], dict[str, str]]:
        """Parts already on disk: video id -> part file, failed key -> reason."""
        videos: dict[str, Path] = {}
        failed: dict[str, str] = {}
        if not self.parts_dir.is_dir():
            return videos, failed
        for entry in sorted(self.parts_dir.iterdir()):
            name = entry.name
            if name.startswith("video-") and name.endswith(".h5"):
                try:
                    with open_h5_readonly(entry) as h5:
                        vid = h5.attrs["video_id"]
                        vid = vid.decode() if isinstance(vid, bytes) else str(vid)
                        if self._feature_shape is None:
                            self._feature_shape = tuple(h5["video/features"].shape[1:])
                    videos[vid] = entry
                except (OSError, KeyError) as exc:  # cannot happen after os.replace; be safe anyway
                    log.warning("%s: unreadable part ignored (%s)", entry, _one_line(exc))
            elif name.startswith("failed-") and name.endswith(".json"):
                try:
                    record = json.loads(entry.read_text())
                    failed[str(record["key"])] = str(record["reason"])
                except (OSError, KeyError, json.JSONDecodeError):
                    pass
            elif name.endswith(f".{self._tmp_tag}.tmp"):
                entry.unlink(missing_ok=True)  # our own temp file from a killed run
        return videos, failed

    # ---- public API ------------------------------------------------------------
    @property
    def completed(self) -> set[str]:
        """Ids already stored (by any rank, or in the existing store): never recompute them."""
        return set(self._completed)

    @property
    def failed(self) -> dict[str, str]:
        failed = dict(self._existing_failed)
        failed.update(self._part_failed)
        return {k: v for k, v in failed.items() if k not in self._completed}

    def _check_video(self, vid: str, features: np.ndarray, timestamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = np.asarray(features)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if features.ndim not in (2, 4):
            raise ValueError(f"{vid}: features must be (T, C) or (T, C, g, g), got shape {features.shape}")
        if features.ndim == 4 and features.shape[2] != features.shape[3]:
            raise ValueError(f"{vid}: spatial grid must be square, got shape {features.shape}")
        num_steps = features.shape[0]
        if num_steps < 1:
            raise ValueError(f"{vid}: no feature rows (T = 0)")
        if timestamps.shape != (num_steps,):
            raise ValueError(f"{vid}: timestamps shape {timestamps.shape} does not match T = {num_steps}")
        if not np.all(np.isfinite(timestamps)) or np.any(np.diff(timestamps) <= 0):
            raise ValueError(f"{vid}: timestamps must be finite and strictly increasing")
        shape = tuple(features.shape[1:])
        if self._feature_shape is not None and shape != self._feature_shape:
            raise ValueError(f"{vid}: feature shape {shape} differs from the store's {self._feature_shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            stored = features.astype(self.dtype, copy=False)
        if not np.all(np.isfinite(stored)):
            hint = " (values overflow float16: use a float32 store)" if np.all(np.isfinite(features)) else ""
            raise ValueError(f"{vid}: features contain NaN or inf{hint}")
        return np.ascontiguousarray(stored), timestamps

    def write_video(self, vid: str, features: np.ndarray, timestamps: np.ndarray,
                    attrs: Mapping[str, Any] | None = None) -> None:
        """Store one video; durable when this returns. ``attrs``: fps, num_frames, duration,
        source_path, source_size, source_mtime, padded (others are kept too)."""
        if self._finalized:
            raise RuntimeError(f"{self.path}: writer already finalized")
        escape_id(vid)  # validates the id
        features, timestamps = self._check_video(vid, features, timestamps)
        key = _id_hash(vid)
        final = self.parts_dir / f"video-{key}.h5"
        tmp = self.parts_dir / f".video-{key}.h5.{self._tmp_tag}.tmp"
        with h5py.File(tmp, "w") as h5:
            h5.attrs["video_id"] = vid
            group = h5.create_group("video")
            if self.compression:
                chunk_rows = max(1, min(features.shape[0], max(1, (1 << 20) // max(1, features[0].nbytes))))
                group.create_dataset("features", data=features, chunks=(chunk_rows,) + features.shape[1:],
                                     compression=self.compression, shuffle=True)
            else:
                group.create_dataset("features", data=features)
            group.create_dataset("timestamps", data=timestamps)
            for name, value in self._video_attrs(vid, timestamps, attrs or {}).items():
                group.attrs[name] = value
        _fsync_path(tmp)
        os.replace(tmp, final)
        _fsync_path(self.parts_dir, directory=True)
        if self._feature_shape is None:
            self._feature_shape = tuple(features.shape[1:])
        self._completed.add(vid)
        self._part_ids[vid] = final
        for failed_key in {vid, str((attrs or {}).get("source_path", ""))} - {""}:
            self._clear_failed(failed_key)

    @staticmethod
    def _video_attrs(vid: str, timestamps: np.ndarray, attrs: Mapping[str, Any]) -> dict:
        out: dict[str, Any] = {}
        for name, value in attrs.items():
            if value is None or name == "complete":
                continue
            if isinstance(value, (dict, list, tuple)):
                value = json.dumps(_json_clean(value))
            elif isinstance(value, os.PathLike):
                value = os.fspath(value)
            elif isinstance(value, (bool, np.bool_)):
                value = np.bool_(value)
            out[name] = value
        out["padded"] = np.bool_(bool(attrs.get("padded", False)))
        out["complete"] = np.bool_(True)
        return out

    def _clear_failed(self, key: str) -> None:
        self._part_failed.pop(key, None)
        (self.parts_dir / f"failed-{_id_hash(key)}.json").unlink(missing_ok=True)

    def mark_failed(self, vid_or_path: str | os.PathLike, reason: object) -> None:
        """Record a video that could not be processed (kept in the store's ``failed``)."""
        key = os.fspath(vid_or_path)
        reason = _one_line(reason)
        record = json.dumps({"key": key, "reason": reason}).encode()
        _atomic_write_bytes(self.parts_dir / f"failed-{_id_hash(key)}.json", record, self._tmp_tag)
        self._part_failed[key] = reason

    # ---- finalize ----------------------------------------------------------------
    def finalize(self) -> Path:
        """Merge everything into one store at ``path``. Rank 0 waits for every rank's
        marker, then merges; other ranks write their marker and return at once (no
        collective call here: ranks may finish hours apart, beyond any barrier timeout)."""
        if self._finalized:
            return self.path
        _atomic_write_bytes(self.parts_dir / f"rank-{self.rank}.done",
                            json.dumps({"rank": self.rank, "world_size": self.world_size}).encode(), self._tmp_tag)
        if self.rank == 0:
            if self.world_size > 1:
                self._wait_for_ranks()
            self._merge()
        self._finalized = True
        self.close()
        return self.path

    def close(self) -> None:
        """Release the output lock (``finalize`` does it; call it when giving up on a run)."""
        self._lock.release()

    def _wait_for_ranks(self) -> None:
        deadline = None if self.merge_timeout is None else time.monotonic() + self.merge_timeout
        waiting_logged = False
        while True:
            missing = [r for r in range(self.world_size) if not (self.parts_dir / f"rank-{r}.done").exists()]
            if not missing:
                return
            if not waiting_logged:
                log.info("%s: waiting for ranks %s to finish", self.path, missing)
                waiting_logged = True
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.parts_dir}: ranks {missing} did not finish in time")
            time.sleep(self.poll_interval)

    def _merge(self) -> None:
        part_ids, part_failed = self._scan_parts()
        existing = self.path if self._has_store and self.path.exists() else None
        if existing is not None and not part_ids and not part_failed:
            shutil.rmtree(self.parts_dir, ignore_errors=True)  # nothing new: keep the store as is
            return
        tmp = Path(str(self.path) + ".tmp")
        tmp.unlink(missing_ok=True)
        completed = set(part_ids) | (self._existing_ids if existing else set())
        failed = dict(self._existing_failed if existing else {})
        failed.update(part_failed)
        source_paths: set[str] = set()
        feature_shape = self._feature_shape

        src_store = open_h5_readonly(existing) if existing is not None else None
        try:
            with h5py.File(tmp, "w") as out:
                self._write_root_attrs(out)
                videos = out.create_group("videos")
                for vid in sorted(completed):
                    name = escape_id(vid)
                    if vid in part_ids:
                        with open_h5_readonly(part_ids[vid]) as part:
                            part.copy(part["video"], videos, name=name)
                    else:
                        src_store.copy(src_store["videos"][name], videos, name=name)
                    source = videos[name].attrs.get("source_path")
                    if source is not None:
                        source_paths.add(source.decode() if isinstance(source, bytes) else str(source))
                    if feature_shape is None:
                        feature_shape = tuple(videos[name]["features"].shape[1:])
                failed = {k: v for k, v in sorted(failed.items()) if k not in completed and k not in source_paths}
                out.create_dataset("failed", data=json.dumps(failed, sort_keys=True),
                                   dtype=h5py.string_dtype("utf-8"))
                if feature_shape is not None:
                    out.attrs["feature_dim"] = int(feature_shape[0])
                    out.attrs["spatial_grid"] = int(feature_shape[1]) if len(feature_shape) == 3 else 0
        finally:
            if src_store is not None:
                src_store.close()
        _fsync_path(tmp)
        os.replace(tmp, self.path)
        _fsync_path(self.path.parent, directory=True)
        shutil.rmtree(self.parts_dir, ignore_errors=True)

    def _write_root_attrs(self, h5: h5py.File) -> None:
        h5.attrs["format"] = FORMAT
        h5.attrs["format_version"] = np.int64(FORMAT_VERSION)
        for key in _META_KEYS:
            h5.attrs[key] = self.meta[key]
        h5.attrs["options"] = json.dumps(self.meta["options"], sort_keys=True)
        h5.attrs["dtype"] = self.meta["dtype"]
        h5.attrs["tad_version"] = tad.__version__

    # ---- context manager -----------------------------------------------------------
    def __enter__(self) -> "FeatureStoreWriter":
        return self

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        try:
            if exc_type is None:
                self.finalize()
        finally:
            self.close()
