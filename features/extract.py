"""Videos -> one HDF5 feature store (contract C5).

Pipeline::

    decoder workers (processes)                       main process
    open, frame pts, resample, clip windows  ->  per-worker queue  ->  gather clips (uint8)
    decode runs of frames (chunked, forward)         batches across videos -> normalise on device
    crop -> uint8 frames + clip index rows            backbone -> per-video features -> writer

* A worker decodes one video at a time and sends *runs* of frames with the rows of
  frame positions for each clip inside the run, so overlapping clips never cost extra
  decoding or transfer; the main process gathers clips only when it fills a batch.
* Clips from different videos share batches: the model always sees full batches
  (except the last one).
* Each worker has its own bounded output queue (memory stays bounded whatever the video
  length) and a heartbeat: a worker that makes no progress for ``video_timeout``
  seconds (its decoder hangs) is killed and replaced; its video is recorded as failed.
  Blocking on a full queue is not "no progress".
* Every failure is one line ``path: reason``, recorded with ``writer.mark_failed``; the
  run goes on. Ids already in ``writer.completed`` are skipped (resume after a crash).
* Distributed (``torchrun``, env ``WORLD_SIZE`` > 1): the sorted video list is split by
  rank, each rank writes its shard through the writer, rank 0 merges in ``finalize``.
"""
from __future__ import annotations

import gc
import multiprocessing as mp
import os
import queue
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from tad.errors import TadInputError
from tad.features.clip_sampling import clip_windows
from tad.features.decoding import ChunkedFrameReader, PyAVFrameSource, frame_times, open_video, resample_timeline
from tad.features.frame_transforms import FrameGeometry, normalize_clips

__all__ = ["ExtractOptions", "ExtractSummary", "OPTION_FLAGS", "check_options", "extract_folder", "parse_fps", "extract_videos", "list_videos", "video_id_for"]

DEFAULT_EXTS = ("mp4", "avi", "mkv", "webm", "mov")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class ExtractOptions:
    """Every extraction setting. ``None`` means the backbone's default (its ``BackboneSpec``).

    ``fps``: a number (resample by time) or ``"native"`` (keep every frame).
    ``resize``: square resize of the whole frame instead of short-side + centre crop.
    ``video_timeout``: seconds a decoder may go without progress before it is killed.
    ``dtype``: compute dtype (autocast when not float32); ``store_dtype``: stored dtype.
    ``workers=0`` decodes in the main process (no overlap, no timeout; for debugging).
    ``decoder``: where pixels come from. ``"pyav"`` (default) decodes only what is asked
    for, so memory stays flat however long the video and however slow the model;
    ``"decord"`` reads the same forward chunks with decord's ``get_batch``, whose decoder
    thread decodes ahead while the model is busy (more memory on slow models).
    Both use decord's frame index and presentation times.
    """

    backbone: str = "tiny3d"
    checkpoint: str | None = None
    random_init: bool = False
    clip_len: int | None = None
    frame_interval: int | None = None
    clip_stride: int | None = None
    fps: float | str | None = None
    short_side: int | None = None
    crop: int | None = None
    resize: int | None = None
    spatial_grid: int | None = None
    batch_size: int = 8
    workers: int = 2
    device: str = "cpu"
    dtype: str = "float32"
    store_dtype: str = "float16"
    compression: str | None = None
    video_timeout: float = 120.0
    exts: tuple = DEFAULT_EXTS
    recursive: bool = False
    overwrite: bool = False
    backbone_kwargs: dict = field(default_factory=dict)
    channels_last: bool = False
    chunk_frames: int = 128
    decoder: str = "pyav"


# option -> the `tad extract` flag that sets it (errors name the flag)
OPTION_FLAGS = {"clip_len": "--clip-len", "frame_interval": "--frame-interval", "clip_stride": "--clip-stride",
                "fps": "--fps", "short_side": "--short-side", "crop": "--crop", "resize": "--resize",
                "spatial_grid": "--spatial-grid", "batch_size": "--batch-size", "workers": "--workers",
                "video_timeout": "--timeout", "chunk_frames": "--chunk-frames", "dtype": "--dtype",
                "store_dtype": "--store-dtype", "compression": "--compression", "decoder": "--decoder"}
_AT_LEAST_ONE = ("clip_len", "frame_interval", "clip_stride", "short_side", "crop", "resize", "spatial_grid",
                 "batch_size", "chunk_frames")  # None (backbone default) or an int >= 1


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def parse_fps(value: Any, flag: str = "--fps") -> float | str | None:
    """``None``, ``"native"`` or a finite frame rate > 0 (numbers given as text are parsed)."""
    if value is None or value == "native":
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise TadInputError(flag, f"must be a number or 'native', got {value!r}") from None
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
    else:
        raise TadInputError(flag, f"must be a number or 'native', got {value!r}")
    if not np.isfinite(number) or number <= 0:
        raise TadInputError(flag, f"must be a finite number > 0 or 'native', got {value}")
    return number


def check_options(opts: "ExtractOptions") -> None:
    """Every option of ``opts`` in range, else TadInputError naming its flag (``--clip-len: must be >= 1, got 0``).

    The one place options are validated: the CLI, ``tad detect`` (config ``extract=dict(...)``)
    and the library all pass through here before any work starts.
    """
    for key in _AT_LEAST_ONE:
        value = getattr(opts, key)
        if value is None and key not in ("batch_size", "chunk_frames"):
            continue
        if not _is_int(value) or value < 1:
            raise TadInputError(OPTION_FLAGS[key], f"must be an integer >= 1, got {value!r}"
                                if not _is_int(value) else f"must be >= 1, got {value}")
    if not _is_int(opts.workers) or opts.workers < 0:
        raise TadInputError("--workers", f"must be >= 0 (0: decode in the main process), got {opts.workers!r}")
    timeout = opts.video_timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)) \
            or not np.isfinite(timeout) or timeout <= 0:
        raise TadInputError("--timeout", f"must be a number of seconds > 0, got {timeout!r}")
    parse_fps(opts.fps)
    if opts.dtype not in DTYPES:
        raise TadInputError("--dtype", f"must be one of {', '.join(DTYPES)}, got {opts.dtype!r}")
    if opts.store_dtype not in ("float16", "float32"):
        raise TadInputError("--store-dtype", f"must be float16 or float32, got {opts.store_dtype!r}")
    if opts.compression not in (None, "gzip", "lzf"):
        raise TadInputError("--compression", f"must be gzip or lzf, got {opts.compression!r}")
    if opts.decoder not in ("pyav", "decord"):
        raise TadInputError("--decoder", f"must be pyav or decord, got {opts.decoder!r}")
    if opts.resize is not None and (opts.short_side is not None or opts.crop is not None):
        raise TadInputError("--resize", "use either --resize or --short-side/--crop, not both")


@dataclass
class ExtractSummary:
    done: list = field(default_factory=list)  # ids extracted in this run
    skipped: list = field(default_factory=list)  # ids already complete in the store
    failed: dict = field(default_factory=dict)  # path -> one-line reason
    wall_time: float = 0.0
    clips: int = 0  # clips computed in this run
    out_path: str = ""

    def line(self) -> str:
        rate = self.clips / self.wall_time if self.wall_time > 0 else 0.0
        return (f"done {len(self.done)}, skipped {len(self.skipped)} (already complete), failed {len(self.failed)}; "
                f"{self.clips} clips in {self.wall_time:.1f} s ({rate:.1f} clips/s) -> {self.out_path}")


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


def _norm_exts(exts: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({e.lower().lstrip(".") for e in exts if e.strip()}))


def list_videos(video_dir: str | os.PathLike, exts: Iterable[str] = DEFAULT_EXTS, recursive: bool = False) -> list[Path]:
    """Video files in ``video_dir`` (and subfolders if ``recursive``) with one of ``exts``, sorted."""
    root = Path(video_dir)
    if not root.is_dir():
        raise TadInputError(root, "not a directory of videos")
    wanted = set(_norm_exts(exts))
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


# ---- decode side (runs in worker processes; no torch) ------------------------------------
@dataclass
class DecodeTask:
    task_id: int
    vid: str
    path: str
    fps: float | str | None
    clip_len: int
    frame_interval: int
    clip_stride: int
    geometry: FrameGeometry
    chunk_frames: int = 128
    decoder: str = "pyav"


def decode_messages(task: DecodeTask) -> Iterator[tuple]:
    """Messages for one video: ('start', id, info), ('clips', id, first_clip, frames, rows)..., ('end', id).

    ``frames`` (n, h, w, 3) uint8 holds output frames [a, a + n); ``rows`` (k, clip_len)
    int64 are the positions of clips first_clip.. first_clip + k - 1 inside ``frames``.
    """
    reader = open_video(task.path)
    pts, durations = frame_times(reader)
    num_frames, native_fps = len(reader), float(reader.get_avg_fps())
    height, width = reader[0].shape[:2]
    out_w, out_h = task.geometry.decode_size(width, height)
    del reader
    if task.decoder == "decord":
        source = open_video(task.path, width=out_w, height=out_h)
    else:  # pull-based: bounded memory, see tad.features.decoding
        source = PyAVFrameSource(task.path, pts, out_w, out_h)
    timeline = resample_timeline(pts, durations, task.fps)
    windows = clip_windows(len(timeline), task.clip_len, task.frame_interval, task.clip_stride)
    timestamps = windows.centres(timeline.times, timeline.durations)  # (T,)
    stat = os.stat(task.path)
    attrs = dict(fps=native_fps, num_frames=int(num_frames), duration=float(pts[-1] + durations[-1]),
                 source_path=str(Path(task.path).resolve()), source_size=int(stat.st_size),
                 source_mtime=float(stat.st_mtime), padded=bool(windows.padded))
    yield ("start", task.task_id, dict(num_clips=len(windows), timestamps=timestamps, attrs=attrs))

    frames_reader = ChunkedFrameReader(source, timeline.source_index, chunk_size=task.chunk_frames,
                                       crop=task.geometry.crop_frames)
    span = int(windows.last[0] - windows.first[0]) + 1
    per_run = max(1, (max(task.chunk_frames, span) - span) // task.clip_stride + 1)
    for c0 in range(0, len(windows), per_run):
        c1 = min(len(windows), c0 + per_run)
        rows = windows.frame_index[c0:c1]  # (k, clip_len)
        a, b = int(rows.min()), int(rows.max()) + 1
        frames = frames_reader.get(a, b)  # (b - a, h, w, 3)
        yield ("clips", task.task_id, c0, frames, rows - a)
    if hasattr(source, "close"):
        source.close()
    yield ("end", task.task_id)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, TadInputError):
        return exc.problem
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _die_with_parent() -> None:
    """Decoder processes must not outlive a main process killed with SIGKILL."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # not Linux: the ppid checks below still end the worker
        pass


class _MallocTrimmer:
    """Give freed heap memory back to the OS after each run of frames.

    The decoder's own threads allocate frame buffers from glibc per-thread arenas that
    otherwise keep growing with fragmentation, so a decoder's RSS would grow with video
    length; ``malloc_trim`` keeps it flat. A no-op where glibc is not there.
    """

    def __init__(self):
        try:
            import ctypes

            self._trim = ctypes.CDLL("libc.so.6").malloc_trim
        except Exception:
            self._trim = None

    def __call__(self) -> None:
        if self._trim is not None:
            self._trim(0)


def _worker_loop(task_q, out_q, beat) -> None:
    """Decoder process: take tasks until None; every message refreshes the heartbeat."""
    parent = os.getppid()
    _die_with_parent()
    trim = _MallocTrimmer()
    if not os.environ.get("TAD_DECODER_LOG"):
        # ffmpeg/decord print multi-line native noise for bad files; our one line per video says it
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def orphaned() -> bool:
        return os.getppid() != parent

    def put(msg) -> None:
        while True:
            try:
                out_q.put(msg, timeout=0.5)
                beat.value = time.time()
                return
            except queue.Full:  # the model is the bottleneck: waiting is progress
                if orphaned():
                    os._exit(1)
                beat.value = time.time()

    while True:
        try:
            task = task_q.get(timeout=1.0)
        except queue.Empty:
            if orphaned():
                os._exit(1)
            continue
        if task is None:
            break
        beat.value = time.time()
        try:
            for msg in decode_messages(task):
                put(msg)
                del msg
                trim()
        except Exception as exc:  # one bad video: report it, take the next
            put(("error", task.task_id, _one_line(exc)))
    out_q.close()
    out_q.join_thread()


class _Worker:
    def __init__(self, ctx, queue_size: int):
        self.task_q = ctx.Queue()
        self.out_q = ctx.Queue(maxsize=queue_size)
        self.beat = ctx.Value("d", time.time(), lock=False)
        self.proc = ctx.Process(target=_worker_loop, args=(self.task_q, self.out_q, self.beat), daemon=True)
        self.proc.start()
        self.task: DecodeTask | None = None
        self.dead_since: float | None = None

    def assign(self, task: DecodeTask) -> None:
        self.task = task
        self.beat.value = time.time()
        self.task_q.put(task)

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        for q in (self.task_q, self.out_q):
            q.cancel_join_thread()
            q.close()


class _DecoderPool:
    """Worker processes, one video each at a time; hung or dead ones are replaced."""

    def __init__(self, num_workers: int, timeout: float, queue_size: int = 3):
        methods = mp.get_all_start_methods()
        # fork: starts fast and keeps test monkeypatches; workers never touch torch.
        # TAD_DECODER_START_METHOD=forkserver|spawn gives decoders a clean interpreter instead.
        self.ctx = mp.get_context(os.environ.get("TAD_DECODER_START_METHOD", "fork") if "fork" in methods else "spawn")
        self.timeout = timeout
        self.queue_size = queue_size
        self._next = 0
        self.workers = [self._start_worker() for _ in range(num_workers)]

    def _start_worker(self) -> _Worker:
        # Freeze the parent's objects first: otherwise the child's garbage collector walks
        # (and so copies) every page of them, and its RSS creeps up to the parent's size.
        gc.collect()
        gc.freeze()
        try:
            return _Worker(self.ctx, self.queue_size)
        finally:
            gc.unfreeze()

    def idle(self) -> list[_Worker]:
        return [w for w in self.workers if w.task is None]

    def busy(self) -> bool:
        return any(w.task is not None for w in self.workers)

    def poll(self) -> list[tuple]:
        """Messages available now, round-robin over workers (at most one per worker)."""
        out = []
        n = len(self.workers)
        for i in range(n):
            w = self.workers[(self._next + i) % n]
            if w.task is None:
                continue
            try:
                out.append(w.out_q.get_nowait())
            except queue.Empty:
                pass
        self._next = (self._next + 1) % max(n, 1)
        return out

    def release(self, task_id: int) -> None:
        for w in self.workers:
            if w.task is not None and w.task.task_id == task_id:
                w.task = None

    def check(self) -> list[tuple[DecodeTask, str]]:
        """Kill and replace workers that hang or died; returns (task, reason) for their videos."""
        now, lost = time.time(), []
        for i, w in enumerate(self.workers):
            if w.task is None and w.proc.is_alive():
                continue
            reason = None
            if not w.proc.is_alive():
                # its last messages may still be in the queue: give them a moment
                w.dead_since = w.dead_since or now
                if w.task is not None and (not w.out_q.empty() and now - w.dead_since < 2.0):
                    continue
                code = w.proc.exitcode
                reason = f"decoder process died (exit code {code})" if (code or 0) >= 0 else f"decoder process killed by signal {-code}"
            elif now - w.beat.value > self.timeout:
                reason = f"decoder made no progress for {self.timeout:g} s (timed out), killed"
            if reason is None:
                continue
            if w.task is not None:
                lost.append((w.task, reason))
            w.kill()
            self.workers[i] = self._start_worker()
        return lost

    def close(self) -> None:
        for w in self.workers:
            if w.proc.is_alive() and w.task is None:
                try:
                    w.task_q.put(None)
                except Exception:
                    pass
        deadline = time.time() + 5
        for w in self.workers:
            w.proc.join(timeout=max(0.0, deadline - time.time()))
            w.kill()


class _InlineDecoder:
    """``workers=0``: decode in this process, one video at a time (no timeout)."""

    def __init__(self):
        self.messages: Iterator[tuple] | None = None
        self.task: DecodeTask | None = None
        self.workers = [self]

    def idle(self) -> list:
        return [self] if self.task is None else []

    def assign(self, task: DecodeTask) -> None:
        self.task, self.messages = task, decode_messages(task)

    def busy(self) -> bool:
        return self.task is not None

    def poll(self) -> list[tuple]:
        if self.task is None:
            return []
        try:
            return [next(self.messages)]
        except StopIteration:
            return []
        except Exception as exc:
            return [("error", self.task.task_id, _one_line(exc))]

    def release(self, task_id: int) -> None:
        self.task, self.messages = None, None

    def check(self) -> list:
        return []

    def close(self) -> None:
        pass


# ---- model side ----------------------------------------------------------------------------
@dataclass
class _Job:
    task: DecodeTask
    num_clips: int = -1
    timestamps: np.ndarray | None = None
    attrs: dict | None = None
    features: np.ndarray | None = None
    filled: int = 0
    ended: bool = False


class _ClipBatcher:
    """Pending runs of frames; hands out batches of up to ``batch_size`` clips of one frame shape."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.items: deque = deque()  # [task_id, first_clip, frames, rows, taken]
        self.count = 0

    def add(self, task_id: int, first_clip: int, frames: np.ndarray, rows: np.ndarray) -> None:
        self.items.append([task_id, first_clip, frames, rows, 0])
        self.count += len(rows)

    def drop(self, task_id: int) -> None:
        kept = deque(item for item in self.items if item[0] != task_id)
        self.count = sum(len(item[3]) - item[4] for item in kept)
        self.items = kept

    def ready(self) -> bool:
        return self.count >= self.batch_size

    def take(self):
        """(clips uint8 (B, T, h, w, 3) numpy, [(task_id, clip_index), ...]) or None."""
        import torch

        parts, owners, need, shape = [], [], self.batch_size, None
        while self.items and need > 0:
            task_id, first, frames, rows, taken = self.items[0]
            if shape is None:
                shape = frames.shape[1:]
            elif frames.shape[1:] != shape:
                break  # other frame size: next batch
            k = min(need, len(rows) - taken)
            sel = rows[taken : taken + k]  # (k, clip_len)
            parts.append(torch.from_numpy(frames)[torch.from_numpy(sel)])  # (k, clip_len, h, w, 3)
            owners.extend((task_id, first + taken + j) for j in range(k))
            need -= k
            self.count -= k
            if taken + k == len(rows):
                self.items.popleft()
            else:
                self.items[0][4] = taken + k
        if not parts:
            return None
        return (parts[0] if len(parts) == 1 else torch.cat(parts)), owners


class _FeatureModel:
    """Backbone on its device with autocast/channels-last; uint8 clips -> features numpy."""

    def __init__(self, model, spec, opts: ExtractOptions, mean, std, device):
        import torch

        self.torch = torch
        self.device = device
        self.model = model.to(device).eval()
        self.channels_last = opts.channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last_3d)
        self.autocast_dtype = None if opts.dtype == "float32" else getattr(torch, opts.dtype)
        self.spatial_grid = opts.spatial_grid
        self.mean, self.std = mean, std

    def __call__(self, clips) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            x = clips.to(self.device, non_blocking=True)
            x = normalize_clips(x, self.mean, self.std, channels_last=self.channels_last)  # (B, 3, T, h, w)
            with torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype or torch.float32,
                                enabled=self.autocast_dtype is not None):
                feats = self.model(x, spatial_grid=self.spatial_grid)  # (B, C[, g, g])
            return feats.float().cpu().numpy()


# ---- setup -----------------------------------------------------------------------------------
def _resolve_device(name: str):
    import torch

    name = str(name)
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise TadInputError("--device", f"{name} requested but CUDA is not available (use --device cpu)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise TadInputError("--device", f"unknown device {name!r}") from None


def _check_options_early(opts: ExtractOptions) -> None:
    """The checks that need neither torch nor the video list: fail before any work starts."""
    check_options(opts)
    if opts.checkpoint is None and not opts.random_init:
        raise TadInputError("--checkpoint", "no checkpoint given; pass --checkpoint CKPT, or --random-init "
                            "to extract with untrained (seeded) weights")
    if opts.checkpoint is not None and not Path(opts.checkpoint).is_file():
        raise TadInputError(opts.checkpoint, "no such checkpoint file")


def _build_backbone(opts: ExtractOptions):
    """Model, effective options (the store's ``options``), checkpoint name and sha256."""
    from tad.features.registry import BACKBONES
    import tad.features.backbones  # noqa: F401  (registers every backbone)

    if opts.backbone not in BACKBONES.module_dict:
        names = ", ".join(sorted(BACKBONES.module_dict))
        raise TadInputError("--backbone", f"unknown backbone {opts.backbone!r}; registered: {names}")
    _check_options_early(opts)
    try:
        model = BACKBONES.build(dict(type=opts.backbone, **opts.backbone_kwargs))
    except (TypeError, ValueError, KeyError) as exc:  # a bad --backbone-option
        if isinstance(exc, TadInputError):
            raise
        message = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise TadInputError("--backbone-option", f"{opts.backbone}: {message}") from None
    checkpoint_name, checkpoint_sha = "", ""
    if opts.checkpoint is not None:
        from tad.features.backbones.checkpoint import file_sha256, load_backbone_checkpoint

        load_backbone_checkpoint(model, opts.checkpoint)
        checkpoint_name, checkpoint_sha = Path(opts.checkpoint).name, file_sha256(opts.checkpoint)
    return model, checkpoint_name, checkpoint_sha


def effective_options(opts: ExtractOptions, spec) -> dict:
    """Every option with backbone defaults filled in (what the store records)."""
    geometry = _geometry(opts, spec)
    check_options(opts)
    fps = parse_fps(opts.fps if opts.fps is not None else spec.fps)

    def pick(value, default):  # 0 is an error (check_options), never "use the default"
        return default if value is None else value

    effective = asdict(opts)
    effective.update(
        clip_len=int(pick(opts.clip_len, spec.clip_len)),
        frame_interval=int(pick(opts.frame_interval, spec.frame_interval)),
        clip_stride=int(pick(opts.clip_stride, spec.clip_stride)),
        fps=fps,
        short_side=geometry.short_side, crop=geometry.crop, resize=geometry.resize,
        mean=list(spec.mean), std=list(spec.std), feature_dim=int(spec.feature_dim),
        exts=list(_norm_exts(opts.exts)), checkpoint=Path(opts.checkpoint).name if opts.checkpoint else None,
    )
    return effective


def _geometry(opts: ExtractOptions, spec) -> FrameGeometry:
    if opts.resize is not None:
        return FrameGeometry(resize=int(opts.resize))
    spec_resize = getattr(spec, "resize", None)
    if spec_resize and opts.short_side is None and opts.crop is None:  # the backbone's own square-resize recipe
        return FrameGeometry(resize=int(spec_resize))
    short = spec.short_side if opts.short_side is None else opts.short_side
    crop = spec.crop if opts.crop is None else opts.crop
    return FrameGeometry(short_side=int(short) if short else None, crop=int(crop) if crop else None)


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
def extract_folder(video_dir: str | os.PathLike, out_path: str | os.PathLike, opts: ExtractOptions,
                   video_list: str | os.PathLike | None = None, progress: bool = True) -> ExtractSummary:
    """Extract every video in ``video_dir`` (or those named in ``video_list``) into ``out_path``."""
    _check_options_early(opts)
    root = Path(video_dir)
    if not root.is_dir():
        raise TadInputError(root, "not a directory of videos")
    missing: dict[str, str] = {}
    if video_list is not None:
        paths, missing = _read_video_list(video_list, root, _norm_exts(opts.exts))
    else:
        paths = list_videos(root, opts.exts, opts.recursive)
    if not paths and not missing:
        raise TadInputError(root, f"no videos with extension {', '.join(_norm_exts(opts.exts))}"
                            + ("" if opts.recursive else " (use --recursive for subfolders)"))
    return extract_videos(paths, root, out_path, opts, progress=progress, _pre_failed=missing)


def extract_videos(video_paths: Sequence[str | os.PathLike], root_dir: str | os.PathLike | None,
                   out_path: str | os.PathLike, opts: ExtractOptions, progress: bool = True,
                   _pre_failed: dict[str, str] | None = None) -> ExtractSummary:
    """Extract ``video_paths`` (ids relative to ``root_dir``) into the store at ``out_path``."""
    started = time.time()
    _check_options_early(opts)
    root = Path(root_dir) if root_dir is not None else None
    summary = ExtractSummary(out_path=str(out_path))
    rank, world, device_name = _distributed(str(opts.device))  # str: a torch.device works too
    device = _resolve_device(device_name)

    # ids, duplicates, this rank's share
    by_id: dict[str, Path] = {}
    pre_failed = dict(_pre_failed or {})
    for p in sorted((Path(p) for p in video_paths), key=lambda p: video_id_for(p, root)):
        vid = video_id_for(p, root)
        if vid in by_id:
            pre_failed[str(p)] = f"duplicate video id {vid!r} (also {by_id[vid].name})"
        else:
            by_id[vid] = p
    from tad.output_guard import refuse_output_over_inputs

    refuse_output_over_inputs({"-o": out_path}, {"VIDEO": list(by_id.values()), "--checkpoint": opts.checkpoint})
    ids = sorted(by_id)[rank::world]
    if rank != 0:
        pre_failed = {}

    # decoder processes start before the model exists (cheap fork, no torch threads yet)
    pool = _InlineDecoder() if opts.workers <= 0 else _DecoderPool(opts.workers, opts.video_timeout)
    threads_before = _limit_torch_threads(device, opts.workers)
    writer = None
    try:
        model, checkpoint_name, checkpoint_sha = _build_backbone(opts)
        spec = model.spec
        options = effective_options(opts, spec)
        meta = dict(backbone=opts.backbone, checkpoint_name=checkpoint_name, checkpoint_sha256=checkpoint_sha,
                    options=options)
        writer = _open_writer(out_path, meta, opts, rank, world)
        runner = _FeatureModel(model, spec, opts, spec.mean, spec.std, device)
        geometry = _geometry(opts, spec)

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
        if writer is not None:
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


def _run_pipeline(pool, tasks: deque, runner: _FeatureModel, writer, opts: ExtractOptions, summary: ExtractSummary,
                  bar, fail, root: Path | None, started: float) -> None:
    jobs: dict[int, _Job] = {}
    batcher = _ClipBatcher(opts.batch_size)
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
            if job.features is None:
                job.features = np.empty((job.num_clips,) + row.shape, dtype=store_dtype)
            job.features[clip] = row
            job.filled += 1
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
            kind, task_id = msg[0], msg[1]
            job = jobs.get(task_id)
            if job is None:
                continue
            if kind == "start":
                info = msg[2]
                job.num_clips, job.timestamps, job.attrs = info["num_clips"], info["timestamps"], info["attrs"]
            elif kind == "clips":
                batcher.add(task_id, msg[2], msg[3], msg[4])
            elif kind == "end":
                job.ended = True
                pool.release(task_id)
                finish_if_done(job)
            elif kind == "error":
                drop(job.task, msg[2])
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
