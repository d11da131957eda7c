"""Named import formats for released ActivityNet features (``tad import-features --format NAME``).

A format is one module that registers itself here with :func:`register_format`:

* ``tsp_h5`` (:mod:`tad.features.tsp_h5_import`): TSP's single ``.h5`` file, one dataset per ``v_<id>``;
* ``anet_npy`` (:mod:`tad.features.anet_npy_import`): one ``v_<id>.npy`` per video (ActionFormer);
* ``bmn_csv`` (:mod:`tad.features.bmn_csv_import`): one ``v_<id>.csv`` of TSN features per video (BMN/BSN).

Every format lists ``(file id, loader)`` pairs; this module does the rest the same way for
all of them: it maps the file ids (``v_`` prefixes) to the annotation ids
(:func:`match_ids`), reports annotated videos with no features and features with no
annotated video (counts and first ids, :class:`IdReport`), gives each video its timestamps
and writes the store resumably with :class:`~tad.features.store_writer.FeatureStoreWriter`
(videos already stored are skipped; one bad video is recorded as failed, the run goes on).

Timestamps: regular clips, ``t_i = (i * clip_stride + span / 2) / fps`` (the format's
defaults, or the user's ``--fps/--clip-len/--clip-stride``); a format whose features are
rescaled to a fixed count per video (``bmn_csv``) spreads them evenly over the annotated
duration instead, ``t_i = (i + 0.5) * duration / T``, unless ``fps`` is given.
"""
from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from tad.errors import TadInputError
from tad.features.importer import ImportSummary, VideoInfo, clip_timestamps
from tad.features.store_writer import FeatureStoreWriter

__all__ = ["FORMATS", "FormatOptions", "ImportFormat", "IdReport", "detect_format", "get_formats", "match_ids",
           "register_format", "run_format"]

#: modules that register a format when imported
_FORMAT_MODULES = ("tad.features.tsp_h5_import", "tad.features.anet_npy_import", "tad.features.bmn_csv_import")
#: how many ids a report line shows
IDS_SHOWN = 5


@dataclass
class FormatOptions:
    """Clip timing and storage. None = the format's default (``ImportFormat.defaults``).

    Args:
        fps: feature sampling rate (frames per second the clips were cut at).
        clip_len: frames per clip.
        clip_stride: frames between clip starts.
        frame_interval: sampling interval inside a clip.
        evenly_spread: spread T features over the annotated duration instead of regular clips.
        dtype: stored dtype.
        compression: None, 'gzip' or 'lzf'.
        overwrite: replace a store made with other settings.
        backbone: name recorded in the store.
    """

    fps: float | None = None
    clip_len: int | None = None
    clip_stride: int | None = None
    frame_interval: int | None = None
    evenly_spread: bool | None = None
    dtype: str = "float16"
    compression: str | None = None
    overwrite: bool = False
    backbone: str | None = None


@dataclass
class ImportFormat:
    """One named format: ``detect(paths, annotation_ids or None) -> bool`` and
    ``list_videos(paths) -> [(file id, load)]``
    where ``load() -> (T, C) array``; ``defaults`` fill the unset FormatOptions."""

    name: str
    description: str
    detect: Callable[[Sequence[Path], "set[str] | None"], bool]
    list_videos: Callable[[Sequence[Path]], list[tuple[str, Callable[[], np.ndarray]]]]
    defaults: dict = field(default_factory=dict)


FORMATS: dict[str, ImportFormat] = {}


def register_format(fmt: ImportFormat) -> ImportFormat:
    FORMATS[fmt.name] = fmt
    return fmt


def get_formats() -> dict[str, ImportFormat]:
    """Every registered format (imports the format modules)."""
    for module in _FORMAT_MODULES:
        importlib.import_module(module)
    return FORMATS


def detect_format(paths: Sequence[str | os.PathLike], annotation_ids: Iterable[str] | None = None) -> str | None:
    """The name of the format ``paths`` are in, or None (plain per-video arrays). ``annotation_ids``
    (from ``--fps-from``) let a format check that its id prefix maps files to annotated videos."""
    paths = [Path(p) for p in paths]
    known = set(annotation_ids) if annotation_ids is not None else None
    for name, fmt in get_formats().items():
        try:
            if fmt.detect(paths, known):
                return name
        except OSError:
            continue
    return None


# ---------------------------------------------------------------------- ids
def _strip(file_id: str) -> str:
    base = file_id.rsplit("/", 1)[-1]
    return base[2:] if base.startswith("v_") else base


@dataclass
class IdReport:
    """How file ids met the annotation ids."""

    mapping: dict[str, str]          # file id -> store id (the annotation id when there is one)
    no_features: list[str]           # annotated ids with no feature file
    no_annotation: list[str]         # file ids matching no annotated id
    num_annotated: int = 0

    def lines(self) -> list[str]:
        def first(ids: list[str]) -> str:
            return ", ".join(ids[:IDS_SHOWN]) + (", ..." if len(ids) > IDS_SHOWN else "")
        out = []
        if self.num_annotated:
            out.append(f"{len(self.mapping) - len(self.no_annotation)} of {self.num_annotated} annotated videos "
                       f"have features")
        if self.no_features:
            out.append(f"{len(self.no_features)} annotated videos have no features (first: {first(self.no_features)})")
        if self.no_annotation:
            out.append(f"{len(self.no_annotation)} feature files match no annotated video "
                       f"(first: {first(self.no_annotation)})")
        return out


def match_ids(file_ids: Iterable[str], annotation_ids: Iterable[str] | None) -> IdReport:
    """Map file ids to annotation ids: exact, else with the ``v_`` prefix removed or added.
    Without annotations, ids lose their ``v_`` prefix (ActivityNet annotation ids have none)."""
    file_ids = sorted(file_ids)
    if annotation_ids is None:
        return IdReport({f: _strip(f) for f in file_ids}, [], [])
    known = set(annotation_ids)
    mapping, unmatched = {}, []
    for f in file_ids:
        base = f.rsplit("/", 1)[-1]
        for candidate in (f, base, _strip(f), "v_" + base):
            if candidate in known:
                mapping[f] = candidate
                break
        else:
            mapping[f] = _strip(f)
            unmatched.append(f)
    covered = set(mapping.values())
    return IdReport(mapping, sorted(a for a in known if a not in covered), unmatched, num_annotated=len(known))


# ---------------------------------------------------------------------- import
def _resolved(fmt: ImportFormat, opts: FormatOptions) -> FormatOptions:
    filled = {k: v for k, v in fmt.defaults.items() if getattr(opts, k, None) is None}
    out = replace(opts, **filled)
    if out.backbone is None:
        out = replace(out, backbone=fmt.name)
    if out.evenly_spread is None:
        out = replace(out, evenly_spread=False)
    return out


def _timestamps(num_steps: int, opts: FormatOptions, info: VideoInfo | None, file_id: str) -> np.ndarray:
    if opts.evenly_spread:
        if info is None or not info.duration:
            raise TadInputError(file_id, "features are spread over the video's duration, but the annotation "
                                         "file gives none for it (pass --fps-from ANN.json, or --fps for regular clips)")
        return (np.arange(num_steps, dtype=np.float64) + 0.5) * float(info.duration) / num_steps
    return clip_timestamps(num_steps, float(opts.fps), int(opts.clip_len), int(opts.clip_stride),
                           int(opts.frame_interval or 1))


def run_format(name: str, paths: Sequence[str | os.PathLike], out_path: str | os.PathLike, opts: FormatOptions,
               video_info: dict[str, VideoInfo] | None = None, progress: bool = True,
               on_failure: Callable[[str, str], None] | None = None) -> tuple[ImportSummary, IdReport]:
    """Import ``paths`` in format ``name`` into the store at ``out_path`` (resumable)."""
    started = time.monotonic()
    formats = get_formats()
    if name not in formats:
        raise TadInputError("--format", f"unknown format {name!r} (choose from {', '.join(sorted(formats))})")
    fmt = formats[name]
    paths = [Path(p) for p in paths]
    for p in paths:
        if not p.exists():
            raise TadInputError(p, "not found")
    opts = _resolved(fmt, opts)
    if opts.fps is not None and not (np.isfinite(opts.fps) and opts.fps > 0):
        raise TadInputError("--fps", f"must be positive, got {opts.fps}")
    if not opts.evenly_spread and opts.fps is None:
        raise TadInputError("--fps", f"format {name} needs the features' frame rate (--fps)")
    videos = fmt.list_videos(paths)
    if not videos:
        raise TadInputError(paths[0], f"no {name} features found")
    report = match_ids([vid for vid, _ in videos], None if video_info is None else list(video_info))
    options = dict(source="import", format=name, fps=opts.fps, clip_len=opts.clip_len, clip_stride=opts.clip_stride,
                   frame_interval=opts.frame_interval, evenly_spread=opts.evenly_spread, store_dtype=opts.dtype)
    writer = FeatureStoreWriter(out_path, dict(backbone=opts.backbone, checkpoint_name="", checkpoint_sha256="",
                                               options=options),
                                overwrite=opts.overwrite, dtype=opts.dtype, compression=opts.compression)
    summary = ImportSummary()
    from tqdm import tqdm

    for file_id, load in tqdm(videos, desc=f"import {name}", unit="video", disable=not progress):
        store_id = report.mapping[file_id]
        if store_id in writer.completed:
            summary.skipped.append(store_id)
            continue
        try:
            array = np.asarray(load())
            if array.ndim != 2 or array.shape[0] < 1:
                raise TadInputError(file_id, f"expected a (T, C) feature array, got shape {tuple(array.shape)}")
            if not np.issubdtype(array.dtype, np.number):
                raise TadInputError(file_id, f"non-numeric array of dtype {array.dtype}")
            info = video_info.get(store_id) if video_info is not None else None
            stamps = _timestamps(array.shape[0], opts, info, file_id)
            step = float(stamps[1] - stamps[0]) if len(stamps) > 1 else 2.0 * float(stamps[0])
            duration = float(info.duration) if info is not None and info.duration else float(stamps[-1]) + step / 2
            fps = float(opts.fps) if opts.fps else (info.fps if info is not None and info.fps else 0.0)
            attrs = dict(fps=fps, num_frames=int(round(duration * fps)), duration=duration,
                         source_path=f"{paths[0].resolve()}::{file_id}", source_size=0, source_mtime=0.0, padded=False)
            writer.write_video(store_id, array, stamps, attrs)
            summary.done.append(store_id)
        except TadInputError as exc:
            summary.failed[file_id] = exc.problem
            writer.mark_failed(file_id, exc.problem)
            if on_failure is not None:
                on_failure(file_id, exc.problem)
        except (ValueError, OSError, KeyError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            summary.failed[file_id] = reason
            writer.mark_failed(file_id, reason)
            if on_failure is not None:
                on_failure(file_id, reason)
    writer.finalize()
    summary.wall_time = time.monotonic() - started
    return summary, report
