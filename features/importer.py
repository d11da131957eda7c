"""Import published per-video feature arrays (.npy/.npz/.pt) into a feature store.

Released TAD features (ActionFormer's two-stream I3D for THUMOS14, OpenTAD's, ...)
are one (T, C) array per video, named after the video, with clip ``i`` covering
frames ``i * clip_stride .. i * clip_stride + (clip_len - 1) * frame_interval``.
Following the store's timestamp convention (contract C2) the clip centre is

    t_i = (i * clip_stride + span / 2) / fps,   span = (clip_len - 1) * frame_interval + 1

so 16-frame clips every 4 frames give (4 i + 8) / fps. ``fps`` comes from the
annotation file (per video, ``--fps-from``) or one value for all (``--fps``; with
both, ``--fps`` is the fallback for videos the annotation lacks).

Arrays stored transposed, (C, T), are detected when unambiguous: the feature dimension
is the one shared by every file (or ``feature_dim`` when given), or, for a lone
file, the dimension that matches the annotation's duration. (1, T, C) arrays are
squeezed. Several folders (RGB and flow streams) are concatenated along C. One bad
file is recorded as failed and the import goes on.
"""
from __future__ import annotations

import json
import logging
import os
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from tad.errors import TadInputError
from tad.features.store_writer import FeatureStoreWriter

__all__ = ["ImportOptions", "ImportSummary", "VideoInfo", "read_video_info", "import_features",
           "clip_timestamps", "find_feature_files"]

log = logging.getLogger(__name__)

ARRAY_KEYS = ("feats", "features", "feat", "feature", "arr_0", "x")
EXTENSIONS = ("npy", "npz", "pt")


@dataclass
class ImportOptions:
    clip_len: int = 16
    clip_stride: int = 4
    frame_interval: int = 1
    fps: float | None = None          # one fps for every video (fallback for --fps-from)
    ext: str = "npy"                  # npy | npz | pt
    key: str | None = None            # array name inside .npz / dict .pt files
    feature_dim: int | None = None    # C, to resolve (T, C) vs (C, T); inferred when None
    dtype: str = "float16"            # stored dtype
    compression: str | None = None
    recursive: bool = False
    overwrite: bool = False
    backbone: str = "imported"        # name recorded in the store (e.g. "i3d_two_stream")


@dataclass
class VideoInfo:
    fps: float | None = None
    duration: float | None = None


@dataclass
class ImportSummary:
    done: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)   # source file -> reason
    wall_time: float = 0.0


def clip_timestamps(num_clips: int, fps: float, clip_len: int, clip_stride: int, frame_interval: int = 1) -> np.ndarray:
    """Clip-centre seconds of ``num_clips`` regularly spaced clips. (T,) float64."""
    span = (clip_len - 1) * frame_interval + 1
    return (np.arange(num_clips, dtype=np.float64) * clip_stride + span / 2.0) / float(fps)


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) and number > 0 else None


def read_video_info(path: str | os.PathLike) -> dict[str, VideoInfo]:
    """Per-video fps and duration from an annotation JSON: ActionFormer/ActivityNet
    ``{"database": {vid: {"fps", "duration", ...}}}`` or a plain ``{vid: fps}`` /
    ``{vid: {"fps": ..}}`` mapping."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TadInputError(path, "annotation file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TadInputError(path, f"cannot read annotation file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise TadInputError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise TadInputError(path, "expected a JSON object with a 'database' of videos")
    database = data.get("database", data)
    if not isinstance(database, dict) or not database:
        raise TadInputError(path, "no videos found (expected {'database': {video_id: {'fps': ..., 'duration': ...}}})")
    info: dict[str, VideoInfo] = {}
    for vid, entry in database.items():
        if isinstance(entry, dict):
            info[str(vid)] = VideoInfo(fps=_positive(entry.get("fps")), duration=_positive(entry.get("duration")))
        else:
            info[str(vid)] = VideoInfo(fps=_positive(entry))
    return info


def _lookup(info: dict[str, VideoInfo], vid: str) -> VideoInfo | None:
    """Annotation entry for a feature file: exact id, its base name, or with/without
    ActivityNet's 'v_' prefix."""
    base = vid.rsplit("/", 1)[-1]
    for candidate in (vid, base, base[2:] if base.startswith("v_") else "v_" + base):
        if candidate in info:
            return info[candidate]
    return None


def find_feature_files(src_dir: Path, ext: str, recursive: bool) -> list[Path]:
    pattern = f"**/*.{ext}" if recursive else f"*.{ext}"
    return sorted(p for p in src_dir.glob(pattern) if p.is_file() and not p.name.startswith("."))


def _pick_key(keys: Iterable[str], wanted: str | None, path: Path) -> str:
    keys = list(keys)
    if wanted is not None:
        if wanted not in keys:
            raise TadInputError(path, f"no array {wanted!r} (has {', '.join(keys) or 'none'})")
        return wanted
    if len(keys) == 1:
        return keys[0]
    for key in ARRAY_KEYS:
        if key in keys:
            return key
    raise TadInputError(path, f"several arrays ({', '.join(keys)}): choose one with --key")


def _npz_shape(path: Path, key: str | None) -> tuple[int, ...]:
    """Shape of an .npz member from its header, without reading the data."""
    with zipfile.ZipFile(path) as archive:
        names = {n[:-4]: n for n in archive.namelist() if n.endswith(".npy")}
        with archive.open(names[_pick_key(names, key, path)]) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, _ = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, _ = np.lib.format.read_array_header_2_0(member)
            else:  # newer header versions: read the member
                return tuple(load_array(path, "npz", key).shape)
    return tuple(shape)


_NPY_MAGIC = b"\x93NUMPY"


def _check_npy_header(path: Path) -> None:
    """A file named .npy that is not one: say what it is instead of numpy's misleading error."""
    with open(path, "rb") as fh:
        head = fh.read(len(_NPY_MAGIC))
    if head == _NPY_MAGIC:
        return
    if head.startswith(b"PK"):
        raise TadInputError(path, "is a zip archive (.npz), not an .npy array: use --ext npz")
    if head[:1] == b"\x80":
        raise TadInputError(path, "holds pickled Python objects, not an .npy array (not loaded: a pickle can run code)")
    if not head:
        raise TadInputError(path, "empty file, not an .npy array")
    raise TadInputError(path, "not an .npy array (no NumPy header; a text file or another format?)")


def load_array(path: Path, ext: str, key: str | None = None, mmap: bool = False) -> np.ndarray:
    """The feature array of one file (npy memory-mapped when ``mmap``)."""
    if ext == "npy":
        _check_npy_header(path)
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        if not isinstance(array, np.ndarray):  # cannot happen after the header check; be safe anyway
            raise TadInputError(path, f"not an .npy array ({type(array).__name__})")
        return array
    if ext == "npz":
        with np.load(path, allow_pickle=False) as archive:
            return np.asarray(archive[_pick_key(archive.files, key, path)])
    if ext == "pt":
        import pickle

        import torch
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise TadInputError(path, "holds Python objects other than tensors (e.g. a numpy array), which a "
                                      "weights-only load refuses: save tensors with torch.save, or arrays as "
                                      ".npy") from None
        if isinstance(obj, dict):
            obj = obj[_pick_key([str(k) for k in obj], key, path)]
        if not isinstance(obj, torch.Tensor):
            raise TadInputError(path, f"expected a tensor or a dict of tensors, found {type(obj).__name__}")
        return obj.detach().float().numpy() if obj.dtype == torch.bfloat16 else obj.detach().numpy()
    raise TadInputError(path, f"unsupported extension {ext!r} (npy, npz or pt)")


def _array_shape(path: Path, ext: str, key: str | None) -> tuple[int, ...]:
    if ext == "npz":
        return _npz_shape(path, key)
    return tuple(load_array(path, ext, key, mmap=True).shape)


def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
    return shape[1:] if len(shape) == 3 and shape[0] == 1 else shape


def infer_feature_dim(shapes: Iterable[tuple[int, ...]]) -> int | None:
    """The channel count shared by every 2-D array; None when it cannot be told apart."""
    shapes = [s for s in (_squeeze(s) for s in shapes) if len(s) == 2]
    if len(shapes) < 2:
        return None
    common = set(shapes[0])
    for shape in shapes[1:]:
        common &= set(shape)
    if len(common) == 1:
        return common.pop()
    if not common:  # inconsistent files: the dimension in most of them, if clear
        counts = Counter(v for s in shapes for v in set(s)).most_common(2)
        if counts[0][1] > len(shapes) / 2 and (len(counts) == 1 or counts[1][1] < counts[0][1]):
            return counts[0][0]
    return None


def orient(array: np.ndarray, path: Path, feature_dim: int | None, expected_steps: float | None) -> np.ndarray:
    """(T, C) or (T, C, g, g) from a possibly transposed or (1, T, C) array."""
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 4:
        if feature_dim is not None and array.shape[1] != feature_dim:
            raise TadInputError(path, f"feature dimension {array.shape[1]}, expected {feature_dim}")
        return array
    if array.ndim != 2:
        raise TadInputError(path, f"expected a (T, C) array, got shape {tuple(array.shape)}")
    rows, cols = array.shape
    if feature_dim is not None:
        if cols == feature_dim:
            return array
        if rows == feature_dim:
            return array.T
        raise TadInputError(path, f"shape {tuple(array.shape)} has no feature dimension {feature_dim}")
    if expected_steps is not None and rows != cols:
        err_rows, err_cols = abs(rows - expected_steps), abs(cols - expected_steps)
        if err_cols < err_rows and err_cols <= 0.2 * expected_steps + 2 < err_rows:
            return array.T
    return array


MAX_STREAM_LENGTH_GAP = 2  # clips; two-stream releases often differ by one at the end


def _concat_streams(streams: list[np.ndarray], path: Path) -> np.ndarray:
    """Per-video streams -> one array, concatenated along C. (T, sum C[, g, g])"""
    if len(streams) == 1:
        return streams[0]
    steps = [s.shape[0] for s in streams]
    if max(steps) - min(steps) > MAX_STREAM_LENGTH_GAP:
        raise TadInputError(path, f"streams have different lengths {steps} (more than {MAX_STREAM_LENGTH_GAP} apart)")
    if len({s.shape[2:] for s in streams}) > 1:
        raise TadInputError(path, f"streams have different spatial grids {[s.shape[2:] for s in streams]}")
    return np.concatenate([s[:min(steps)] for s in streams], axis=1)


def _expected_steps(info: VideoInfo | None, fps: float, opts: ImportOptions) -> float | None:
    if info is None or info.duration is None:
        return None
    span = (opts.clip_len - 1) * opts.frame_interval + 1
    return max(1.0, (info.duration * fps - span) / opts.clip_stride + 1)


def _check_folder(src_dir: Path) -> None:
    if not src_dir.is_dir():
        raise TadInputError(src_dir, "feature folder not found" if not src_dir.exists() else "not a folder")


def _check_options(src_dir: Path, opts: ImportOptions, video_info: dict | None) -> None:
    if opts.ext not in EXTENSIONS:
        raise TadInputError(src_dir, f"unsupported --ext {opts.ext!r} (npy, npz or pt)")
    if video_info is None and opts.fps is None:
        raise TadInputError(src_dir, "give the frame rate: --fps-from ANN.json (per video) or --fps 30")
    if opts.fps is not None and not _positive(opts.fps):
        raise TadInputError(src_dir, f"--fps must be positive, got {opts.fps}")
    for name in ("clip_len", "clip_stride", "frame_interval"):
        if int(getattr(opts, name)) < 1:
            raise TadInputError(src_dir, f"--{name.replace('_', '-')} must be >= 1")


def _source_dim(files: Iterable[Path], opts: ImportOptions) -> int | None:
    shapes = []
    for path in files:  # headers only
        try:
            shapes.append(_array_shape(path, opts.ext, opts.key))
        except Exception:  # noqa: BLE001 - reported when the file itself is imported
            continue
    return infer_feature_dim(shapes)


def import_features(src_dirs: str | os.PathLike | Sequence[str | os.PathLike], out_path: str | os.PathLike,
                    opts: ImportOptions, video_info: dict[str, VideoInfo] | None = None,
                    fps_from_name: str | None = None, progress: bool = True,
                    on_failure: Callable[[str, str], None] | None = None) -> ImportSummary:
    """Convert every ``*.<ext>`` file under ``src_dirs`` into the store at ``out_path``
    (resumable: videos already there are skipped). ``video_info`` (from
    ``read_video_info``) gives per-video fps/duration.

    Several folders (e.g. RGB and optical-flow streams) are concatenated along C per
    video, in the order given; ids come from the first folder, and streams whose
    lengths differ by up to ``MAX_STREAM_LENGTH_GAP`` clips are cut to the shortest."""
    started = time.monotonic()
    sources = [Path(src_dirs)] if isinstance(src_dirs, (str, os.PathLike)) else [Path(d) for d in src_dirs]
    if not sources:
        raise TadInputError(".", "no feature folder given")
    for src in sources:
        _check_folder(src)
    _check_options(sources[0], opts, video_info)
    by_source = [{path.relative_to(src).with_suffix("").as_posix(): path
                  for path in find_feature_files(src, opts.ext, opts.recursive)} for src in sources]
    if not by_source[0]:
        raise TadInputError(sources[0], f"no .{opts.ext} files found" + ("" if opts.recursive else " (try --recursive)"))
    from tad.output_guard import refuse_output_over_inputs

    refuse_output_over_inputs({"-o": out_path}, {"NPY_DIR": [p for files in by_source for p in files.values()]})
    span = (opts.clip_len - 1) * opts.frame_interval + 1
    options = dict(source="import", clip_len=opts.clip_len, clip_stride=opts.clip_stride,
                   frame_interval=opts.frame_interval, span=span, fps=opts.fps, fps_from=fps_from_name,
                   key=opts.key, ext=opts.ext, store_dtype=opts.dtype, streams=len(sources))
    writer = FeatureStoreWriter(out_path, dict(backbone=opts.backbone, checkpoint_name="", checkpoint_sha256="",
                                               options=options),
                                overwrite=opts.overwrite, dtype=opts.dtype, compression=opts.compression)
    summary = ImportSummary()

    def failed(path: Path, reason: str) -> None:
        key = str(path.resolve())  # the source_path a later successful retry records
        summary.failed[key] = reason
        writer.mark_failed(key, reason)
        if on_failure is not None:
            on_failure(key, reason)

    ids = sorted(by_source[0])
    todo = [vid for vid in ids if vid not in writer.completed]
    summary.skipped = [vid for vid in ids if vid in writer.completed]
    # C of each stream: given (one stream only) or shared by that stream's files
    dims = [opts.feature_dim if opts.feature_dim is not None and len(sources) == 1 else
            _source_dim(files.values(), opts) for files in by_source]

    from tqdm import tqdm
    for vid in tqdm(todo, desc="import", unit="video", disable=not progress):
        path = by_source[0][vid]
        try:
            info = _lookup(video_info, vid) if video_info is not None else None
            fps = (info.fps if info is not None else None) or opts.fps
            if fps is None:
                where = fps_from_name or "the annotation file"
                raise TadInputError(path, f"no fps for video {vid!r} in {where} (give --fps as a fallback)")
            expected = _expected_steps(info, fps, opts)
            streams = []
            for src, files, dim in zip(sources, by_source, dims):
                if vid not in files:
                    raise TadInputError(path, f"no .{opts.ext} file for this video in {src}")
                streams.append(orient(load_array(files[vid], opts.ext, opts.key), files[vid], dim, expected))
            array = _concat_streams(streams, path)
            if array.shape[0] < 1:
                raise TadInputError(path, "empty feature array (T = 0)")
            if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
                raise TadInputError(path, f"non-numeric array of dtype {array.dtype}")
            num_steps = array.shape[0]
            stamps = clip_timestamps(num_steps, fps, opts.clip_len, opts.clip_stride, opts.frame_interval)
            duration = info.duration if info is not None and info.duration else ((num_steps - 1) * opts.clip_stride + span) / fps
            stat = path.stat()
            attrs = dict(fps=float(fps), num_frames=int(round(duration * fps)), duration=float(duration),
                         source_path=str(path.resolve()), source_size=int(stat.st_size), source_mtime=float(stat.st_mtime),
                         padded=False)
            writer.write_video(vid, array, stamps, attrs)
            summary.done.append(vid)
        except TadInputError as exc:
            failed(path, exc.problem if Path(exc.path) == path else f"{exc.path}: {exc.problem}")
        except (ValueError, OSError, KeyError, EOFError, RuntimeError, zipfile.BadZipFile) as exc:
            text = str(exc).strip().splitlines()
            failed(path, text[0] if text else type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - one unreadable file never stops the run
            text = str(exc).strip().splitlines()
            failed(path, f"unreadable ({type(exc).__name__}: {text[0][:200]})" if text else
                   f"unreadable ({type(exc).__name__})")
    writer.finalize()
    summary.wall_time = time.monotonic() - started
    return summary

