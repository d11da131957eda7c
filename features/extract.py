"""Videos -> features, through a ``FeatureSink`` (the HDF5 store by default; contract C5).

Stages, each its own module::

    decode_tasks    one video: open, frame pts, resample, clip windows, runs of frames
    decoder_pool    worker processes running decode tasks -> typed records (worker_messages)
    clip_batcher    runs of frames from any videos -> batches of uint8 clips
    feature_model   backbone on its device: clips -> features
    feature_sinks   where finished videos go: FeatureStoreWriter (HDF5) or MemorySink

This module wires them for a list of videos:

* Clips from different videos share batches: the model always sees full batches
  (except the last one).
* Every failure is one line ``path: reason``, recorded with ``sink.mark_failed``; the
  run goes on. Ids already in ``sink.completed`` are skipped (resume after a crash).
* A continual backbone (CoX3D, continual TSM) runs each video's frames in order through
  its own ``ContinualFeatureStream`` (runs of frames, no clip batches): the features are
  those ``tad stream`` computes frame by frame.
* Distributed (``torchrun``, env ``WORLD_SIZE`` > 1): the sorted video list is split by
  rank, each rank writes its shard through the writer, rank 0 merges in ``finalize``.

Live sources (one growing video, a camera) go through ``tad.features.live_source`` instead.
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tad.errors import TadInputError
from tad.features.clip_batcher import ClipBatcher
from tad.features.decode_tasks import DecodeTask
from tad.features.decoder_pool import DecoderPool, InlineDecoder
from tad.features.extract_options import (DEFAULT_EXTS, DTYPES, OPTION_FLAGS, ExtractOptions, ExtractSummary,
                                          check_options, check_options_early, effective_options, geometry_for,
                                          norm_exts, parse_fps)
from tad.features.feature_model import FeatureModel, build_backbone, resolve_device
from tad.features.feature_sinks import FeatureSink, MemorySink
from tad.features.worker_messages import FrameRun, VideoEnded, VideoFailed, VideoStarted

__all__ = ["ExtractOptions", "ExtractSummary", "OPTION_FLAGS", "check_options", "parse_fps", "extract_folder", "extract_videos", "list_videos", "video_id_for",
           "effective_options", "DEFAULT_EXTS", "DTYPES"]


# ---- video lists ---------------------------------------------------------------------
def video_id_for(path: Path, root: Path | None) -> str:
    """Path relative to ``root`` without extension, '/'-separated (the file stem if outside root)."""
    path = Path(path)
    if root is not None:
        try:
            rel = path.resolve().relative_to(Path(root).resolve())
            return rel.with_suffix("").as_posix()
        except ValueError:
            pass
    return path.stem


def list_videos(video_dir: str | os.PathLike, exts: Sequence[str] = DEFAULT_EXTS, recursive: bool = False) -> list[Path]:
    """Video files in ``video_dir`` (and subfolders if ``recursive``) with one of ``exts``, sorted."""
    root = Path(video_dir)
    if not root.is_dir():
        raise TadInputError(root, "not a directory of videos")
    wanted = set(norm_exts(exts))
    files = root.rglob("*") if recursive else root.iterdir()
    found = [p for p in files if p.suffix.lower().lstrip(".") in wanted and not p.name.startswith(".") and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _read_video_list(list_file: str | os.PathLike, root: Path, exts: Sequence[str]) -> tuple[list[Path], dict[str, str]]:
    """Entries are ids or paths relative to ``root`` (or absolute). Missing entries -> failures."""
    list_file = Path(list_file)
    try:
        lines = list_file.read_text().splitlines()
    except OSError as exc:
        raise TadInputError(list_file, f"cannot read video list ({exc.strerror or exc})") from None
    paths, missing = [], {}
    for raw in lines:
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        candidate = Path(entry) if Path(entry).is_absolute() else root / entry
        options = [candidate] + [candidate.with_name(candidate.name + "." + e) for e in exts]
        hit = next((p for p in options if p.is_file()), None)
        if hit is None:
            missing[str(candidate)] = f"listed in {list_file} but not found"
        else:
            paths.append(hit)
    return paths, missing


def _distributed(device_name: str) -> tuple[int, int, str]:
    """(rank, world_size, device) from torchrun's env; inits torch.distributed without mmengine."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device_name
    import torch
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    use_cuda = device_name.startswith("cuda") and torch.cuda.is_available()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device_name = f"cuda:{local}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return rank, world, device_name


def _open_writer(out_path, meta, opts: ExtractOptions, rank: int, world: int):
    try:
        from tad.features.store import FeatureStoreWriter
    except ImportError:
        from tad.features.store_writer import FeatureStoreWriter
    return FeatureStoreWriter(out_path, meta=meta, overwrite=opts.overwrite, dtype=opts.store_dtype,
                              compression=opts.compression, rank=rank, world_size=world)


# ---- public API --------------------------------------------------------------------------------
def extract_folder(video_dir: str | os.PathLike, out_path: str | os.PathLike | None, opts: ExtractOptions,
                   video_list: str | os.PathLike | None = None, progress: bool = True,
                   sink: FeatureSink | None = None) -> ExtractSummary:
    """Extract every video in ``video_dir`` (or those named in ``video_list``) into ``out_path``."""
    check_options_early(opts)
    root = Path(video_dir)
    if not root.is_dir():
        raise TadInputError(root, "not a directory of videos")
    missing: dict[str, str] = {}
    if video_list is not None:
        paths, missing = _read_video_list(video_list, root, norm_exts(opts.exts))
    else:
        paths = list_videos(root, opts.exts, opts.recursive)
    if not paths and not missing:
        raise TadInputError(root, f"no videos with extension {', '.join(norm_exts(opts.exts))}"
                            + ("" if opts.recursive else " (use --recursive for subfolders)"))
    return extract_videos(paths, root, out_path, opts, progress=progress, _pre_failed=missing, sink=sink)


def extract_videos(video_paths: Sequence[str | os.PathLike], root_dir: str | os.PathLike | None,
                   out_path: str | os.PathLike | None, opts: ExtractOptions, progress: bool = True,
                   _pre_failed: dict[str, str] | None = None, sink: FeatureSink | None = None) -> ExtractSummary:
    """Extract ``video_paths`` (ids relative to ``root_dir``) into the store at ``out_path``,
    or into ``sink`` when given (``out_path`` is then only a label, e.g. ``"memory"``)."""
    started = time.time()
    check_options_early(opts)
    root = Path(root_dir) if root_dir is not None else None
    summary = ExtractSummary(out_path=str(out_path if out_path is not None else "memory"))
    rank, world, device_name = _distributed(str(opts.device))  # str: a torch.device works too
    device = resolve_device(device_name)

    # ids, duplicates, this rank's share
    by_id: dict[str, Path] = {}
    pre_failed = dict(_pre_failed or {})
    for p in sorted((Path(p) for p in video_paths), key=lambda p: video_id_for(p, root)):
        vid = video_id_for(p, root)
        if vid in by_id:
            pre_failed[str(p)] = f"duplicate video id {vid!r} (also {by_id[vid].name})"
        else:
            by_id[vid] = p
    if out_path is not None and sink is None:
        from tad.output_guard import refuse_output_over_inputs

        refuse_output_over_inputs({"-o": out_path}, {"VIDEO": list(by_id.values()), "--checkpoint": opts.checkpoint})
    ids = sorted(by_id)[rank::world]
    if rank != 0:
        pre_failed = {}

    # decoder processes start before the model exists (cheap fork, no torch threads yet)
    pool = InlineDecoder() if opts.workers <= 0 else DecoderPool(opts.workers, opts.video_timeout)
    threads_before = _limit_torch_threads(device, opts.workers)
    writer = None
    try:
        model, checkpoint_name, checkpoint_sha = build_backbone(opts)
        spec = model.spec
        options = effective_options(opts, spec)
        meta = dict(backbone=opts.backbone, checkpoint_name=checkpoint_name, checkpoint_sha256=checkpoint_sha,
                    options=options)
        if sink is None:
            writer = _open_writer(out_path, meta, opts, rank, world)
        else:
            writer = sink
            if isinstance(sink, MemorySink) and not sink.meta:
                sink.meta = meta
        runner = FeatureModel(model, spec, opts, spec.mean, spec.std, device)
        geometry = geometry_for(opts, spec)

        completed = writer.completed
        todo = [vid for vid in ids if vid not in completed]
        summary.skipped = [vid for vid in ids if vid in completed]
        tasks = deque(
            DecodeTask(i, vid, str(by_id[vid]), options["fps"], options["clip_len"], options["frame_interval"],
                       options["clip_stride"], geometry, max(8, int(opts.chunk_frames)), opts.decoder)
            for i, vid in enumerate(todo))
        bar = _progress_bar(len(todo), progress and rank == 0)

        def fail(path: str, key: str, reason: str) -> None:
            summary.failed[path] = reason
            writer.mark_failed(key, reason)
            _emit(bar, f"{path}: {reason}")  # one line per failed video, as it happens

        for path, reason in pre_failed.items():
            fail(path, _rel_key(Path(path), root), reason)

        _run_pipeline(pool, tasks, runner, writer, opts, summary, bar, fail, root, started)
        writer.finalize()
        if bar is not None:
            bar.close()
    finally:
        if writer is not None and hasattr(writer, "close"):
            writer.close()  # the output lock (finalize released it already on success)
        pool.close()
        _restore_torch_threads(threads_before)
    summary.wall_time = time.time() - started
    return summary


def _limit_torch_threads(device, workers: int) -> int | None:
    """On CPU, leave one core per decoder: oversubscribed OpenMP threads spin and stall."""
    import torch

    if device.type != "cpu":
        return None
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    before = torch.get_num_threads()
    wanted = max(1, min(before, cores - max(0, workers)))
    if wanted != before:
        torch.set_num_threads(wanted)
    return before


def _restore_torch_threads(before: int | None) -> None:
    if before is not None:
        import torch

        torch.set_num_threads(before)


def _rel_key(path: Path, root: Path | None) -> str:
    """Key for the store's failed list: path relative to the video folder, with extension."""
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


@dataclass
class _Job:
    """A video between its first and last message: features filled as batches return."""

    task: DecodeTask
    num_clips: int = -1
    timestamps: np.ndarray | None = None
    attrs: dict | None = None
    features: np.ndarray | None = None
    filled: int = 0
    ended: bool = False
    stream: object = None  # ContinualFeatureStream (continual backbones)


def _run_pipeline(pool, tasks: deque, runner: FeatureModel, writer: FeatureSink, opts: ExtractOptions, summary: ExtractSummary,
                  bar, fail, root: Path | None, started: float) -> None:
    jobs: dict[int, _Job] = {}
    batcher = ClipBatcher(opts.batch_size)
    store_dtype = np.float32 if opts.store_dtype == "float32" else np.float16 if opts.store_dtype == "float16" else np.float64

    def finish_if_done(job: _Job) -> None:
        if job.ended and job.filled == job.num_clips:
            writer.write_video(job.task.vid, job.features, job.timestamps, job.attrs)
            summary.done.append(job.task.vid)
            del jobs[job.task.task_id]
            _advance(bar, summary, started)

    def drop(task: DecodeTask, reason: str) -> None:
        jobs.pop(task.task_id, None)
        batcher.drop(task.task_id)
        pool.release(task.task_id)
        fail(task.path, _rel_key(Path(task.path), root), reason)
        _advance(bar, summary, started)

    def store(job: _Job, clip: int, row: np.ndarray) -> None:
        if job.features is None:
            job.features = np.empty((job.num_clips,) + row.shape, dtype=store_dtype)
        job.features[clip] = row
        job.filled += 1

    def run_continual(job: _Job, msg: FrameRun | None) -> None:
        """Push a run's new frames (or, at the end, nothing) through the video's continual stream."""
        if msg is None:
            got = job.stream.finish()
        else:
            start = msg.first_clip * job.stream.clip_stride - int(msg.rows[0, 0])  # output frame of msg.frames[0]
            got = job.stream.push(msg.frames[job.stream.frames_seen - start:])
        for clip, row in got:
            if clip < job.num_clips:
                store(job, clip, row)
        summary.clips += len(got)

    def run_batch() -> None:
        got = batcher.take()
        if got is None:
            return
        clips, owners = got
        feats = runner(clips)  # (B, C[, g, g])
        summary.clips += len(owners)
        for row, (task_id, clip) in zip(feats, owners):
            job = jobs.get(task_id)
            if job is None:
                continue  # its video failed meanwhile
            store(job, clip, row)
        for task_id in {t for t, _ in owners}:
            if task_id in jobs:
                finish_if_done(jobs[task_id])

    last_check = 0.0
    while tasks or pool.busy() or batcher.count:
        for worker in pool.idle():
            if not tasks:
                break
            task = tasks.popleft()
            jobs[task.task_id] = _Job(task)
            worker.assign(task)
        messages = pool.poll()
        for msg in messages:
            job = jobs.get(msg.task_id)
            if job is None:
                continue
            if isinstance(msg, VideoStarted):
                job.num_clips, job.timestamps, job.attrs = msg.num_clips, msg.timestamps, msg.attrs
                if runner.continual:
                    task = job.task
                    job.stream = runner.continual_stream(task.clip_len, task.frame_interval, task.clip_stride)
            elif isinstance(msg, FrameRun):
                if job.stream is not None:
                    run_continual(job, msg)
                else:
                    batcher.add(msg.task_id, msg.first_clip, msg.frames, msg.rows)
            elif isinstance(msg, VideoEnded):
                job.ended = True
                if job.stream is not None:
                    run_continual(job, None)
                pool.release(msg.task_id)
                finish_if_done(job)
            elif isinstance(msg, VideoFailed):
                drop(job.task, msg.reason)
        while batcher.ready():
            run_batch()
        now = time.time()
        if now - last_check > 0.5:
            last_check = now
            for task, reason in pool.check():
                if task.task_id in jobs:
                    drop(task, reason)
        if not messages:
            if not pool.busy() and not tasks:
                while batcher.count:
                    run_batch()
            elif not batcher.ready():
                time.sleep(0.005)


# ---- progress -----------------------------------------------------------------------------------
def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="video", dynamic_ncols=True, file=sys.stderr, desc="extract")


def _advance(bar, summary: ExtractSummary, started: float) -> None:
    if bar is None:
        return
    elapsed = max(time.time() - started, 1e-6)
    bar.set_postfix_str(f"{summary.clips / elapsed:.1f} clips/s, failed {len(summary.failed)}", refresh=False)
    bar.update(1)


def _emit(bar, line: str) -> None:
    if bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)
