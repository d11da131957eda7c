"""Converting annotation files of other formats into the annotation JSON tad reads.

Contract: :func:`convert_annotations` reads one or more input files and returns the
ActionFormer-style dict that :func:`tad.eval.annotations.load_annotations` reads::

    {"version": "tad-annotations-1", "database": {video_id: {"subset", "duration", ["fps"],
     "annotations": [{"label", "segment": [start_s, end_s], "label_id"}]}}}

Input formats (detected from the content, or forced with ``fmt``):

* ``csv``: a CSV with a header naming the columns ``video,start,end,label[,subset]``
  (optional ``duration`` and ``fps`` columns too). Times in seconds (``12.5``) or
  ``[HH:]MM:SS[.ff]`` (``00:01:02.50``). Rows without ``subset`` get ``default_subset``.
* ``epic``: EPIC-Kitchens-100's official ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv``
  (``video_id``, ``start_timestamp``, ``stop_timestamp`` as ``HH:MM:SS.ff``, ``verb_class``,
  ``noun_class``). ``task`` (``'verb'`` or ``'noun'``) picks the class column: one
  annotation file per task. Class names come from ``EPIC_100_{verb,noun}_classes.csv``
  when found beside the input (or given as ``class_names``), otherwise the class id.
  ``label_id`` is the official class id. Subset: ``training`` for ``*train*`` files,
  ``validation`` for ``*validation*`` files. Durations and fps come from
  ``EPIC_100_video_info.csv`` when found beside the input (or given as ``video_info``).
* ``activitynet``: ActivityNet's official JSON (``taxonomy``/``database``); the
  ``testing`` videos, which have no annotations, are kept with empty lists.
* ``multithumos``: the JSON of piergiaj/super-events-cvpr18 (``data/multithumos.json``,
  also ``charades.json``): ``{vid: {"subset", "duration", "actions": [[class, start, end]]}}``.
  Class names from ``class_names`` (one name per line, in class-id order) when given,
  else ``class_<id>``.

Every row is kept as it is: instances that overlap in time (multi-label data) and
instances of several classes on the same span stay separate entries. Durations: a
``duration`` column / video-info file / ``videos_dir`` (probed from the video files, which
also gives ``fps``); without any of them the last annotated end time is used, and
:attr:`ConversionResult.notes` says so. Bad input raises ``TadInputError`` naming the file,
the row and the problem.
"""
from __future__ import annotations

import ast
import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tad.errors import TadInputError

__all__ = ["ConversionResult", "convert_annotations", "detect_format", "parse_time", "probe_videos",
           "write_annotation_json", "FORMATS", "VIDEO_EXTENSIONS"]

FORMATS = ("auto", "csv", "epic", "activitynet", "multithumos")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".MP4")
OUTPUT_VERSION = "tad-annotations-1"
_EPIC_COLUMNS = {"video_id", "start_timestamp", "stop_timestamp", "verb_class", "noun_class"}
_TIME_RE = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


@dataclass
class ConversionResult:
    """The converted annotation dict plus counts and notes for the user."""

    data: dict
    num_videos: int = 0
    num_segments: int = 0
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ small helpers
def parse_time(text: str) -> float:
    """Seconds from ``'12.5'`` or ``'[HH:]MM:SS[.ff]'``; ValueError otherwise."""
    text = text.strip()
    match = _TIME_RE.match(text)
    if match:
        hours, minutes, seconds = match.groups()
        if int(minutes) >= 60 and hours is not None or float(seconds) >= 60:
            raise ValueError(f"{text!r} is not a valid HH:MM:SS.ff time")
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    value = float(text)  # ValueError for anything else
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite time")
    return value


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise TadInputError(path, "file not found" if not path.exists() else "not a file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise TadInputError(path, "not UTF-8 text") from None


def detect_format(path: str | Path) -> str:
    """``'csv'``, ``'epic'``, ``'activitynet'`` or ``'multithumos'`` from the file's content."""
    path = Path(path)
    text = _read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TadInputError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        if isinstance(data, dict) and "database" in data:
            return "activitynet"
        if isinstance(data, dict) and data and all(isinstance(v, dict) and "actions" in v for v in data.values()):
            return "multithumos"
        raise TadInputError(path, "JSON of an unknown layout (expected ActivityNet's {\"database\": ...} or "
                                  "Multi-THUMOS' {video: {\"subset\", \"duration\", \"actions\"}})")
    header = next(csv.reader([text.splitlines()[0] if text.strip() else ""]), [])
    columns = {c.strip().lower() for c in header}
    if _EPIC_COLUMNS <= columns:
        return "epic"
    if {"video", "start", "end", "label"} <= columns:
        return "csv"
    raise TadInputError(path, f"unknown format: header {header!r} is neither video,start,end,label[,subset] "
                              "nor EPIC-Kitchens-100's (video_id,start_timestamp,stop_timestamp,verb_class,...)")


def probe_videos(videos_dir: str | Path) -> dict[str, tuple[float, float]]:
    """``{video id: (duration_s, fps)}`` of the videos under ``videos_dir`` (ids as ``tad extract``
    names them: the path relative to the folder, without extension). Unreadable videos are left out."""
    from tad.features.decoding import frame_times, open_video  # decord only when asked for

    root = Path(videos_dir)
    if not root.is_dir():
        raise TadInputError(root, "--fps-from-videos: not a folder")
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in
                       {e.lower() for e in VIDEO_EXTENSIONS}):
        try:
            reader = open_video(path)
            pts, durations = frame_times(reader)
            fps = float(reader.get_avg_fps())
        except TadInputError:
            continue
        vid = path.relative_to(root).with_suffix("").as_posix()
        out[vid] = (float(pts[-1] + durations[-1]), fps)
    return out


def _float_cell(path: Path, where: str, column: str, text: str, time: bool = False) -> float:
    try:
        value = parse_time(text) if time else float(text)
    except (ValueError, TypeError):
        kind = "a time in seconds or HH:MM:SS.ff" if time else "a number"
        raise TadInputError(path, f"{where}: {column} {text!r} is not {kind}") from None
    if not math.isfinite(value):
        raise TadInputError(path, f"{where}: {column} {text!r} is not finite")
    return value


def _csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header (lower-cased, stripped) and ``(line number, row)`` pairs; blank lines skipped."""
    text = _read_text(path)
    reader = csv.reader(text.splitlines())
    try:
        header = [c.strip().lower() for c in next(reader)]
    except StopIteration:
        raise TadInputError(path, "empty file") from None
    rows = []
    for lineno, cells in enumerate(reader, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise TadInputError(path, f"row {lineno}: {len(cells)} columns but the header has {len(header)}")
        rows.append((lineno, {k: v.strip() for k, v in zip(header, cells)}))
    return header, rows


def _read_class_names_csv(path: Path) -> dict[int, str]:
    """EPIC's ``id,key,...`` class table -> {id: key}."""
    header, rows = _csv_rows(path)
    if "id" not in header or "key" not in header:
        raise TadInputError(path, f"class table needs columns id,key; header is {header}")
    names = {}
    for lineno, row in rows:
        names[int(_float_cell(path, f"row {lineno}", "id", row["id"]))] = row["key"]
    return names


def _read_class_names(path: Path) -> dict[int, str]:
    """An EPIC class CSV (``id,key``) or a text file with one class name per line (id = line index)."""
    text = _read_text(path)
    first = text.splitlines()[0] if text.strip() else ""
    if "," in first and "key" in first.lower():
        return _read_class_names_csv(path)
    names = {}
    for i, line in enumerate(l for l in text.splitlines() if l.strip()):
        parts = line.split()
        # "7 BaseballPitch" (Multi-THUMOS class_list.txt) or a bare name
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = " ".join(parts[1:])
        else:
            names[i] = line.strip()
    return names


# ------------------------------------------------------------------ builder
class _Builder:
    """Collects videos and annotations; keeps the first-seen metadata per video."""

    def __init__(self) -> None:
        self.videos: dict[str, dict] = {}
        self.label_ids: dict[str, int] = {}

    def video(self, path: Path, where: str, vid: str, subset: str) -> dict:
        entry = self.videos.get(vid)
        if entry is None:
            entry = self.videos[vid] = {"subset": subset, "duration": None, "fps": None, "annotations": []}
        elif entry["subset"] != subset:
            raise TadInputError(path, f"{where}: video {vid!r} is in subset {subset!r} here but "
                                      f"{entry['subset']!r} earlier")
        return entry

    def add(self, path: Path, where: str, vid: str, subset: str, label: str, start: float, end: float,
            label_id: int | None = None, strict: bool = True) -> None:
        """``strict``: zero-length segments are errors (user CSVs); official files keep them as they
        are (their evaluators drop GT shorter than 1 ms; ``tad check-data`` reports them)."""
        if not vid:
            raise TadInputError(path, f"{where}: empty video id")
        if not label:
            raise TadInputError(path, f"{where}: empty label")
        if start < 0:
            raise TadInputError(path, f"{where}: start {start} is negative")
        if end < start or (strict and end == start):
            raise TadInputError(path, f"{where}: end {end} is not after start {start} (video {vid})")
        if label_id is not None:
            known = self.label_ids.setdefault(label, label_id)
            if known != label_id:
                raise TadInputError(path, f"{where}: label {label!r} has id {label_id} here but {known} earlier")
        entry = self.video(path, where, vid, subset)
        ann = {"label": label, "segment": [round(start, 6), round(end, 6)]}
        if label_id is not None:
            ann["label_id"] = int(label_id)
        entry["annotations"].append(ann)


def _set_duration(path: Path, where: str, entry: dict, duration: float | None, fps: float | None) -> None:
    if duration is not None:
        if duration <= 0:
            raise TadInputError(path, f"{where}: duration {duration} must be > 0")
        if entry["duration"] is not None and abs(entry["duration"] - duration) > 1e-3:
            raise TadInputError(path, f"{where}: duration {duration} disagrees with {entry['duration']} earlier")
        entry["duration"] = duration
    if fps is not None:
        if fps <= 0:
            raise TadInputError(path, f"{where}: fps {fps} must be > 0")
        entry["fps"] = fps


# ------------------------------------------------------------------ readers
def _read_plain_csv(path: Path, builder: _Builder, default_subset: str, id_map: Callable[[str], str]) -> None:
    header, rows = _csv_rows(path)
    missing = [c for c in ("video", "start", "end", "label") if c not in header]
    if missing:
        raise TadInputError(path, f"missing column(s) {', '.join(missing)} (header: {', '.join(header)})")
    if not rows:
        raise TadInputError(path, "no annotation rows")
    for lineno, row in rows:
        where = f"row {lineno}"
        vid = id_map(row["video"])
        subset = row.get("subset") or default_subset
        start = _float_cell(path, where, "start", row["start"], time=True)
        end = _float_cell(path, where, "end", row["end"], time=True)
        builder.add(path, where, vid, subset, row["label"], start, end)
        duration = _float_cell(path, where, "duration", row["duration"], time=True) if row.get("duration") else None
        fps = _float_cell(path, where, "fps", row["fps"]) if row.get("fps") else None
        _set_duration(path, where, builder.videos[vid], duration, fps)


def _epic_subset(path: Path) -> str:
    name = path.name.lower()
    if "train" in name:
        return "training"
    if "validation" in name or "_val" in name:
        return "validation"
    if "test" in name:
        return "test"
    return "training"


def _read_epic(path: Path, builder: _Builder, task: str | None, class_names: Path | None,
               video_info: Path | None, subset: str | None, id_map: Callable[[str], str], notes: list[str]) -> None:
    if task not in ("verb", "noun"):
        raise TadInputError(path, "EPIC-Kitchens-100 annotations need --task verb or --task noun "
                                  "(one annotation file per task)")
    header, rows = _csv_rows(path)
    if not rows:
        raise TadInputError(path, "no annotation rows")
    if class_names is None:
        beside = path.with_name(f"EPIC_100_{task}_classes.csv")
        class_names = beside if beside.is_file() else None
    names = _read_class_names(class_names) if class_names is not None else {}
    if not names:
        notes.append(f"{path}: no EPIC_100_{task}_classes.csv beside it or given: labels are the class ids")
    if video_info is None:
        beside = path.with_name("EPIC_100_video_info.csv")
        video_info = beside if beside.is_file() else None
    info: dict[str, tuple[float, float]] = {}
    if video_info is not None:
        _, info_rows = _csv_rows(video_info)
        for lineno, row in info_rows:
            where = f"row {lineno}"
            info[row["video_id"]] = (_float_cell(video_info, where, "duration", row["duration"]),
                                     _float_cell(video_info, where, "fps", row["fps"]))
    subset = subset or _epic_subset(path)
    column = f"{task}_class"
    for lineno, row in rows:
        where = f"row {lineno}"
        raw_id = row["video_id"]
        vid = id_map(raw_id)
        start = _float_cell(path, where, "start_timestamp", row["start_timestamp"], time=True)
        end = _float_cell(path, where, "stop_timestamp", row["stop_timestamp"], time=True)
        class_id = _float_cell(path, where, column, row[column])
        if not float(class_id).is_integer() or class_id < 0:
            raise TadInputError(path, f"{where}: {column} {row[column]!r} is not a class id")
        class_id = int(class_id)
        if names and class_id not in names:
            raise TadInputError(path, f"{where}: {column} {class_id} is not in {class_names}")
        label = names.get(class_id, str(class_id))
        builder.add(path, where, vid, subset, label, start, end, label_id=class_id, strict=False)
        if raw_id in info:
            _set_duration(path, where, builder.videos[vid], *info[raw_id])


def _read_activitynet(path: Path, builder: _Builder, id_map: Callable[[str], str]) -> None:
    data = json.loads(_read_text(path))
    database = data.get("database")
    if not isinstance(database, dict):
        raise TadInputError(path, "'database' must map video ids to entries")
    for raw_id, entry in database.items():
        where = f"database[{raw_id!r}]"
        if not isinstance(entry, dict) or "subset" not in entry or "duration" not in entry:
            raise TadInputError(path, f"{where}: needs 'subset' and 'duration'")
        vid = id_map(str(raw_id))
        video = builder.video(path, where, vid, str(entry["subset"]))
        try:
            duration = float(entry["duration"])
        except (TypeError, ValueError):
            raise TadInputError(path, f"{where}: duration {entry['duration']!r} is not a number") from None
        fps = entry.get("fps")
        _set_duration(path, where, video, duration, float(fps) if fps is not None else None)
        for j, ann in enumerate(entry.get("annotations") or []):
            awhere = f"{where}['annotations'][{j}]"
            seg = ann.get("segment") if isinstance(ann, dict) else None
            if not isinstance(seg, (list, tuple)) or len(seg) != 2:
                raise TadInputError(path, f"{awhere}: 'segment' must be [start, end]")
            start = _float_cell(path, awhere, "segment start", seg[0])
            end = _float_cell(path, awhere, "segment end", seg[1])
            label_id = ann.get("label_id")
            builder.add(path, awhere, vid, video["subset"], str(ann.get("label", "")), start, end,
                        label_id=int(label_id) if isinstance(label_id, (int, float)) else None, strict=False)


def _read_multithumos(path: Path, builder: _Builder, class_names: Path | None,
                      id_map: Callable[[str], str]) -> None:
    data = json.loads(_read_text(path))
    names = _read_class_names(class_names) if class_names is not None else {}
    for raw_id, entry in data.items():
        where = f"[{raw_id!r}]"
        if not isinstance(entry, dict) or "subset" not in entry or "duration" not in entry:
            raise TadInputError(path, f"{where}: needs 'subset', 'duration' and 'actions'")
        vid = id_map(str(raw_id))
        video = builder.video(path, where, vid, str(entry["subset"]))
        _set_duration(path, where, video, _float_cell(path, where, "duration", entry["duration"]),
                      float(entry["fps"]) if entry.get("fps") else None)
        for j, action in enumerate(entry.get("actions") or []):
            awhere = f"{where}['actions'][{j}]"
            if not isinstance(action, (list, tuple)) or len(action) != 3:
                raise TadInputError(path, f"{awhere}: expected [class, start, end], got {action!r}")
            class_id = _float_cell(path, awhere, "class", action[0])
            if not float(class_id).is_integer():
                raise TadInputError(path, f"{awhere}: class {action[0]!r} is not an integer")
            class_id = int(class_id)
            if names and class_id not in names:
                raise TadInputError(path, f"{awhere}: class {class_id} is not in {class_names}")
            label = names.get(class_id, f"class_{class_id}")
            start = _float_cell(path, awhere, "start", action[1])
            end = _float_cell(path, awhere, "end", action[2])
            builder.add(path, awhere, vid, video["subset"], label, start, end, label_id=class_id, strict=False)


# ------------------------------------------------------------------ entry point
def convert_annotations(inputs: Sequence[str | Path], fmt: str = "auto", task: str | None = None,
                        videos_dir: str | Path | None = None, class_names: str | Path | None = None,
                        video_info: str | Path | None = None, subset: str | None = None,
                        default_subset: str = "training", id_prefix: str = "",
                        strip_prefix: str = "") -> ConversionResult:
    """Read ``inputs`` (all of one format, merged) and return the tad annotation dict.

    Args:
        inputs: annotation files (CSV / EPIC CSVs / ActivityNet JSON / Multi-THUMOS JSON).
        fmt: one of :data:`FORMATS`; ``'auto'`` detects each file's format.
        task: EPIC-Kitchens-100 only: ``'verb'`` or ``'noun'``.
        videos_dir: folder of the videos: durations and fps are probed from the files.
        class_names: class table (EPIC ``id,key`` CSV, or one name per line).
        video_info: EPIC ``EPIC_100_video_info.csv`` (durations, fps).
        subset: force this subset for every video of EPIC inputs (default: from the file name).
        default_subset: subset of plain-CSV rows without a ``subset`` column/value.
        id_prefix: prepended to every video id (e.g. ``'v_'`` for ActivityNet feature files).
        strip_prefix: removed from the start of every video id that has it.
    """
    if fmt not in FORMATS:
        raise TadInputError("--format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if task is not None and task not in ("verb", "noun"):
        raise TadInputError("--task", f"must be verb or noun, got {task!r}")
    if not inputs:
        raise TadInputError("FILE", "no input file given")

    def id_map(raw: str) -> str:
        raw = raw.strip()
        if strip_prefix and raw.startswith(strip_prefix):
            raw = raw[len(strip_prefix):]
        return id_prefix + raw

    builder = _Builder()
    notes: list[str] = []
    for item in inputs:
        path = Path(item)
        kind = detect_format(path) if fmt == "auto" else fmt
        if kind != "epic" and task is not None:
            raise TadInputError("--task", f"only applies to EPIC-Kitchens-100 CSVs; {path} is {kind}")
        if kind == "csv":
            _read_plain_csv(path, builder, default_subset, id_map)
        elif kind == "epic":
            _read_epic(path, builder, task, None if class_names is None else Path(class_names),
                       None if video_info is None else Path(video_info), subset, id_map, notes)
        elif kind == "activitynet":
            _read_activitynet(path, builder, id_map)
        else:
            _read_multithumos(path, builder, None if class_names is None else Path(class_names), id_map)

    if videos_dir is not None:
        probed = probe_videos(videos_dir)
        missing = [vid for vid in builder.videos if vid not in probed]
        if missing:
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            notes.append(f"{videos_dir}: {len(missing)} annotated video(s) not found or unreadable ({shown}); "
                         "their duration is the last annotated end time")
        for vid, entry in builder.videos.items():
            if vid in probed:
                duration, fps = probed[vid]
                entry["duration"] = round(duration, 6)
                entry["fps"] = fps

    guessed = []
    for vid, entry in builder.videos.items():
        if entry["duration"] is None:
            ends = [a["segment"][1] for a in entry["annotations"]]
            entry["duration"] = max(ends) if ends else 0.0
            guessed.append(vid)
    if guessed:
        shown = ", ".join(guessed[:5]) + (", ..." if len(guessed) > 5 else "")
        notes.append(f"{len(guessed)} video(s) without a known duration use their last annotated end time "
                     f"({shown}); give --fps-from-videos DIR (or a duration column) for the real one")

    # label ids: official ones where the format has them, else sorted label names
    if builder.label_ids and len(builder.label_ids) == len({a["label"] for e in builder.videos.values()
                                                            for a in e["annotations"]}):
        label_ids = dict(builder.label_ids)
    else:
        label_ids = {name: i for i, name in enumerate(sorted({a["label"] for e in builder.videos.values()
                                                              for a in e["annotations"]}))}
    database = {}
    num_segments = 0
    for vid, entry in builder.videos.items():
        anns = [dict(a, label_id=label_ids[a["label"]]) for a in entry["annotations"]]
        num_segments += len(anns)
        out = {"subset": entry["subset"], "duration": entry["duration"]}
        if entry["fps"] is not None:
            out["fps"] = entry["fps"]
        out["annotations"] = anns
        database[vid] = out
    classes = [name for name, _ in sorted(label_ids.items(), key=lambda kv: kv[1])]
    data = {"version": OUTPUT_VERSION, "database": database}
    return ConversionResult(data=data, num_videos=len(database), num_segments=num_segments,
                            classes=classes, notes=notes)


def write_annotation_json(data: dict, out: str | Path) -> None:
    """Write atomically (a temporary file renamed into place)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(out)
