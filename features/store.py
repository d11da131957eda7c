"""Reading the HDF5 feature store (contract C2).

One ``.h5`` file holds the clip features of a whole video collection::

    /                       attrs: format='tad-features', format_version=1, backbone,
                                   checkpoint_name, checkpoint_sha256, options (JSON),
                                   tad_version; also dtype, feature_dim, spatial_grid (0: none)
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
handle (spawn workers). Contiguous (uncompressed) datasets are read through a
read-only memory map, copying only the requested rows; compressed ones through h5py.
Files are never modified in place (``tad.features.store_writer`` replaces them
atomically), so a reader that outlives a replacement keeps a consistent view.
"""
from __future__ import annotations

import json
import mmap
import os
import re
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import h5py
import numpy as np

from tad.errors import TadInputError

__all__ = [
    "FORMAT", "FORMAT_VERSION", "VideoFeatures", "FeatureStore", "FeatureStoreWriter",
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
        self._state: _OpenState | None = None
        self._pid: int | None = None
        if not self.path.exists():
            if Path(f"{self.path}.parts").is_dir():  # the writer's folder of an interrupted run
                raise TadInputError(self.path, "unfinished run: re-run the same command to resume")
            raise TadInputError(self.path, "feature store not found")
        if self.path.is_dir():
            raise TadInputError(self.path, "is a directory, expected an .h5 feature store file")
        self._signature = _file_signature(self.path)  # before opening: a replacement is seen later
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
    def _process_state(self) -> "_OpenState":
        """This process' handles; rebuilt after fork (a DataLoader worker never reuses
        its parent's HDF5 handle or map)."""
        pid = os.getpid()
        if self._state is None or self._pid != pid:
            if self._state is not None:
                self._state.drop_inherited()
                self._state = None
            state = _OpenState(self.path)
            if state.signature != self._signature:
                self._accept_replacement(state)
            self._state = state
            self._pid = pid
        return self._state

    def _accept_replacement(self, state: "_OpenState") -> None:
        """The file was replaced since the index was read (a resumed extraction or import
        finished meanwhile): fine if every indexed video is still there, same shape."""
        videos = state.h5["videos"] if "videos" in state.h5 else {}
        for vid, name in self._names.items():
            if name not in videos or tuple(videos[name]["features"].shape) != tuple(self._shapes[vid]):
                state.close()
                raise TadInputError(self.path, f"the feature store was replaced while in use and video {vid!r} "
                                               "changed or is gone; reopen the store")
        self._signature = state.signature

    def _key(self, video_id: str) -> str:
        if video_id not in self._names:
            raise KeyError(f"{self.path}: no video {video_id!r} in the feature store")
        return video_id

    def _entry(self, video_id: str) -> "_VideoEntry":
        return self._process_state().entry(self._names[self._key(video_id)])

    def __getitem__(self, video_id: str) -> VideoFeatures:
        return self.read(video_id)

    def read(self, video_id: str, start: int | None = None, stop: int | None = None) -> VideoFeatures:
        """Rows [start, stop) of one video (Python slice semantics), reading only those rows."""
        entry = self._entry(video_id)
        lo, hi, _ = slice(start, stop).indices(entry.features.shape[0])
        hi = max(hi, lo)
        state = self._process_state()
        features = state.rows(entry.features, lo, hi)
        timestamps = state.rows(entry.timestamps, lo, hi).astype(np.float64, copy=False)
        return VideoFeatures(features, timestamps, dict(entry.attrs))

    def video_attrs(self, video_id: str) -> dict:
        return dict(self._entry(video_id).attrs)

    def close(self) -> None:
        if self._state is not None and self._pid == os.getpid():
            self._state.close()
        self._state = None
        self._pid = None

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_state"] = None
        state["_pid"] = None
        return state

    def __repr__(self) -> str:
        return (f"FeatureStore({str(self.path)!r}, videos={len(self)}, backbone={self._attrs.get('backbone')!r}, "
                f"failed={len(self._failed)})")


def _file_signature(path: Path) -> tuple:
    """Identity of the file now at ``path`` (writers replace the file, never edit it)."""
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _Layout(NamedTuple):
    """Where a dataset's rows live: ``offset`` into the file for contiguous,
    uncompressed data (read through a memory map), else None (read through h5py)."""

    dataset: h5py.Dataset
    offset: int | None
    dtype: np.dtype
    shape: tuple


class _VideoEntry(NamedTuple):
    features: _Layout
    timestamps: _Layout
    attrs: dict


def _layout(dataset: h5py.Dataset) -> _Layout:
    offset = None
    if dataset.chunks is None and dataset.compression is None and dataset.dtype.kind == "f":
        try:
            offset = dataset.id.get_offset()
        except Exception:  # noqa: BLE001 - no raw address: fall back to h5py reads
            offset = None
    return _Layout(dataset, offset, dataset.dtype, tuple(dataset.shape))


class _OpenState:
    """One process' open HDF5 handle, read-only memory map and per-video index cache.

    Stores are immutable once written (the writer replaces the file atomically), so
    raw offsets and attrs can be cached; a map keeps reading the file it opened."""

    def __init__(self, path: Path):
        self.signature = _file_signature(path)
        self.h5 = open_h5_readonly(path)
        self._videos = self.h5["videos"]
        self._entries: dict[str, _VideoEntry] = {}
        self._map: mmap.mmap | None = None
        self._path = path

    def entry(self, name: str) -> _VideoEntry:
        entry = self._entries.get(name)
        if entry is None:
            group = self._videos[name]
            entry = _VideoEntry(_layout(group["features"]), _layout(group["timestamps"]), decode_attrs(group.attrs))
            self._entries[name] = entry
        return entry

    def _buffer(self) -> mmap.mmap:
        if self._map is None:
            with open(self._path, "rb") as fh:
                self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return self._map

    def rows(self, layout: _Layout, lo: int, hi: int) -> np.ndarray:
        """Rows [lo, hi) of a dataset as a new array."""
        row_shape = layout.shape[1:]
        if hi <= lo:
            return np.empty((0,) + row_shape, dtype=layout.dtype)
        if layout.offset is None:
            return layout.dataset[lo:hi]
        row_items = int(np.prod(row_shape, dtype=np.int64)) if row_shape else 1
        start = layout.offset + lo * row_items * layout.dtype.itemsize
        flat = np.frombuffer(self._buffer(), dtype=layout.dtype, count=(hi - lo) * row_items, offset=start)
        return flat.reshape((hi - lo,) + row_shape).copy()

    def drop_inherited(self) -> None:
        """After fork: release this process' copies of the parent's handle and map."""
        self._entries.clear()
        for closer in (self.h5.close, self._map.close if self._map is not None else None):
            if closer is None:
                continue
            try:
                closer()
            except Exception:  # noqa: BLE001 - a stale copy must never break reading
                pass

    def close(self) -> None:
        self._entries.clear()
        if self._map is not None:
            self._map.close()
            self._map = None
        self.h5.close()



def describe(store: FeatureStore) -> str:
    """A few lines summarising a store (``python -m tad.features.store PATH``)."""
    attrs = store.attrs
    lines = [f"{store.path}: {len(store)} videos, backbone {attrs.get('backbone')!r}, "
             f"checkpoint {attrs.get('checkpoint_name') or '-'}, tad {attrs.get('tad_version')}"]
    if len(store):
        steps = [store.num_steps(vid) for vid in store.videos]
        grid = store.spatial_grid
        shape = f"(T, {store.feature_dim})" if grid is None else f"(T, {store.feature_dim}, {grid}, {grid})"
        lines.append(f"features {shape} {attrs.get('dtype', '')}, T from {min(steps)} to {max(steps)} "
                     f"({sum(steps)} in all)")
    options = attrs.get("options") or {}
    if options:
        lines.append("options: " + ", ".join(f"{k}={v}" for k, v in sorted(options.items())))
    for key, reason in store.failed.items():
        lines.append(f"failed: {key}: {reason}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    for arg in sys.argv[1:] or ["--help"]:
        if arg in ("-h", "--help"):
            print("usage: python -m tad.features.store STORE.h5 [...]  (summary of each feature store)")
            continue
        try:
            print(describe(FeatureStore(arg)))
        except TadInputError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            sys.exit(1)

def __getattr__(name: str):
    """``from tad.features.store import FeatureStoreWriter`` works too (contract C2);
    the writer lives in ``tad.features.store_writer``."""
    if name == "FeatureStoreWriter":
        from tad.features.store_writer import FeatureStoreWriter
        return FeatureStoreWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
