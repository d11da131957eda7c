"""Reading the HDF5 feature store (contract C2).

One ``.h5`` file holds the clip features of a whole video collection::

    /                       attrs: format='tad-features', format_version=1, backbone,
                                   checkpoint_name, checkpoint_sha256, options (JSON),
                                   tad_version
    /videos/<escaped id>/features     (T, C) or (T, C, g, g), float16 by default
    /videos/<escaped id>/timestamps   (T,) float64, clip-centre seconds, strictly increasing
                            attrs: fps, num_frames, duration, source_path, source_size,
                                   source_mtime, padded, complete
    /failed                 scalar string: JSON {video id or path: one-line reason}

Video ids are paths relative to the video folder without extension
(``"ucf/v_Jump_g01"``). HDF5 treats ``/`` as hierarchy, so group names are
escaped:

    ``%`` -> ``%25``, ``/`` -> ``%2F``, and a leading ``.`` -> ``%2E``

(so ``.``/``..`` are never names). Nothing else changes; ``unescape_id`` reverses
it exactly. The API takes and returns real ids; escaping is only visible to people
reading the file with other tools.

``FeatureStore`` opens the file lazily and reopens it after ``fork``, so each
PyTorch DataLoader worker gets its own handle; the object pickles without its
handle (spawn workers).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import h5py
import numpy as np

from tad.errors import TadInputError

__all__ = [
    "FORMAT", "FORMAT_VERSION", "VideoFeatures", "FeatureStore",
    "escape_id", "unescape_id", "decode_attrs", "open_h5_readonly",
]

FORMAT = "tad-features"
FORMAT_VERSION = 1

_ESCAPES = {"%": "%25", "/": "%2F"}
_UNESCAPE_RE = re.compile(r"%(25|2F|2E)")
_UNESCAPES = {"25": "%", "2F": "/", "2E": "."}


def escape_id(video_id: str) -> str:
    """Real video id -> HDF5 group name (see the module docstring)."""
    if not isinstance(video_id, str) or not video_id:
        raise ValueError(f"video id must be a non-empty string, got {video_id!r}")
    name = "".join(_ESCAPES.get(ch, ch) for ch in video_id)
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name


def unescape_id(name: str) -> str:
    """HDF5 group name -> real video id."""
    return _UNESCAPE_RE.sub(lambda m: _UNESCAPES[m.group(1)], name)


class VideoFeatures(NamedTuple):
    """Features of one video: ``features`` (T, C) or (T, C, g, g), ``timestamps``
    (T,) float64 clip-centre seconds, ``attrs`` the video's attributes."""

    features: np.ndarray
    timestamps: np.ndarray
    attrs: dict


def _to_python(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def decode_attrs(attrs: h5py.AttributeManager) -> dict:
    """HDF5 attrs -> plain Python values (``options`` JSON decoded to a dict)."""
    out = {key: _to_python(attrs[key]) for key in attrs.keys()}
    if isinstance(out.get("options"), str):
        try:
            out["options"] = json.loads(out["options"])
        except json.JSONDecodeError:
            pass
    return out


def open_h5_readonly(path: str | os.PathLike) -> h5py.File:
    """Open read-only with HDF5's default file locking, so the same file can also be
    opened with plain ``h5py.File(path)`` in this process. (On filesystems without
    locks, set ``HDF5_USE_FILE_LOCKING=FALSE``; stores are replaced atomically and
    never written in place.)"""
    return h5py.File(path, "r")


def read_failed(h5: h5py.File) -> dict[str, str]:
    if "failed" not in h5:
        return {}
    raw = h5["failed"][()]
    raw = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
    return dict(json.loads(raw)) if raw else {}


def check_store_file(h5: h5py.File, path: str | os.PathLike) -> None:
    """Raise TadInputError unless ``h5`` is a tad feature store this code can read."""
    fmt = _to_python(h5.attrs.get("format"))
    if fmt != FORMAT:
        raise TadInputError(path, f"not a tad feature store (format attribute is {fmt!r}, expected {FORMAT!r})")
    version = _to_python(h5.attrs.get("format_version"))
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise TadInputError(path, f"feature store format_version {version!r} is not supported "
                                  f"(this tad reads up to {FORMAT_VERSION}); upgrade tad")


class FeatureStore:
    """Read-only view of a feature store. ``store[video_id]`` -> ``VideoFeatures``.

    The constructor checks the file (TadInputError if missing or not a tad store) and
    reads the index, then closes it; data reads open a handle per process.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._h5: h5py.File | None = None
        self._pid: int | None = None
        if not self.path.exists():
            raise TadInputError(self.path, "feature store not found")
        if self.path.is_dir():
            raise TadInputError(self.path, "is a directory, expected an .h5 feature store file")
        try:
            h5 = open_h5_readonly(self.path)
        except OSError as exc:
            raise TadInputError(self.path, f"not a readable HDF5 file ({_short(exc)})") from None
        with h5:
            check_store_file(h5, self.path)
            self._attrs = decode_attrs(h5.attrs)
            names: dict[str, str] = {}
            shapes: dict[str, tuple] = {}
            for name, group in h5["videos"].items() if "videos" in h5 else ():
                if not bool(group.attrs.get("complete", False)) or "features" not in group:
                    continue
                vid = unescape_id(name)
                names[vid] = name
                shapes[vid] = group["features"].shape
            self._failed = read_failed(h5)
        self._names = dict(sorted(names.items()))
        self._shapes = shapes

    # ---- index ---------------------------------------------------------------
    @property
    def videos(self) -> list[str]:
        """Ids of the completed videos, sorted."""
        return list(self._names)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._names

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def keys(self) -> list[str]:
        return self.videos

    def items(self) -> Iterator[tuple[str, VideoFeatures]]:
        for vid in self._names:
            yield vid, self[vid]

    @property
    def attrs(self) -> dict:
        """Root attrs with ``options`` decoded from JSON."""
        return dict(self._attrs)

    @property
    def options(self) -> dict:
        return dict(self._attrs.get("options") or {})

    @property
    def failed(self) -> dict[str, str]:
        """Videos (ids or source paths) that failed extraction/import -> reason."""
        return dict(self._failed)

    def _any_shape(self) -> tuple | None:
        return next(iter(self._shapes.values()), None)

    @property
    def feature_dim(self) -> int:
        """C, the channel count of every feature vector."""
        shape = self._any_shape()
        if shape is not None:
            return int(shape[1])
        dim = self._attrs.get("feature_dim")
        if dim is None:
            raise TadInputError(self.path, "feature store holds no videos, feature dimension unknown")
        return int(dim)

    @property
    def spatial_grid(self) -> int | None:
        """g for (T, C, g, g) stores, None for (T, C) stores."""
        shape = self._any_shape()
        if shape is not None:
            return int(shape[2]) if len(shape) == 4 else None
        grid = self._attrs.get("spatial_grid")
        return int(grid) if grid else None

    def num_steps(self, video_id: str) -> int:
        """T of one video, without reading its data."""
        return int(self._shapes[self._key(video_id)][0])

    # ---- data ----------------------------------------------------------------
    def _handle(self) -> h5py.File:
        pid = os.getpid()
        if self._h5 is None or self._pid != pid:
            if self._h5 is not None:
                # A handle inherited through fork: drop this process' copy, open our own.
                try:
                    self._h5.close()
                except Exception:  # noqa: BLE001 - a stale copy must never break reading
                    pass
            self._h5 = open_h5_readonly(self.path)
            self._pid = pid
        return self._h5

    def _key(self, video_id: str) -> str:
        if video_id not in self._names:
            raise KeyError(f"{self.path}: no video {video_id!r} in the feature store")
        return video_id

    def _group(self, video_id: str) -> h5py.Group:
        return self._handle()["videos"][self._names[self._key(video_id)]]

    def __getitem__(self, video_id: str) -> VideoFeatures:
        group = self._group(video_id)
        return VideoFeatures(group["features"][()], group["timestamps"][()].astype(np.float64, copy=False),
                             decode_attrs(group.attrs))

    def read(self, video_id: str, start: int | None = None, stop: int | None = None) -> VideoFeatures:
        """Rows [start, stop) of one video (Python slice semantics), reading only those rows."""
        group = self._group(video_id)
        lo, hi, _ = slice(start, stop).indices(group["features"].shape[0])
        hi = max(hi, lo)
        return VideoFeatures(group["features"][lo:hi], group["timestamps"][lo:hi].astype(np.float64, copy=False),
                             decode_attrs(group.attrs))

    def video_attrs(self, video_id: str) -> dict:
        return decode_attrs(self._group(video_id).attrs)

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None
        self._pid = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_h5"] = None
        state["_pid"] = None
        return state

    def __repr__(self) -> str:
        return (f"FeatureStore({str(self.path)!r}, videos={len(self)}, backbone={self._attrs.get('backbone')!r}, "
                f"failed={len(self._failed)})")


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
