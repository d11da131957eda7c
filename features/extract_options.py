"""Every extraction setting (``ExtractOptions``), their checks, and what a run reports.

``effective_options(opts, spec)`` fills the backbone's defaults in and rejects bad values
by flag name (one line each); it is what a feature store records as ``options``, and
what ``tad detect`` / ``tad stream`` read back from a config's ``extract=dict(...)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from tad.errors import TadInputError
from tad.features.frame_transforms import FrameGeometry

__all__ = ["DEFAULT_EXTS", "DTYPES", "OPTION_FLAGS", "ExtractOptions", "ExtractSummary", "check_options",
           "check_options_early", "parse_fps", "effective_options",
           "geometry_for", "norm_exts"]

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


def norm_exts(exts: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({e.lower().lstrip(".") for e in exts if e.strip()}))


def check_options_early(opts: ExtractOptions) -> None:
    """The checks that need neither torch nor the video list: fail before any work starts."""
    check_options(opts)
    if opts.checkpoint is None and not opts.random_init:
        raise TadInputError("--checkpoint", "no checkpoint given; pass --checkpoint CKPT, or --random-init "
                            "to extract with untrained (seeded) weights")
    if opts.checkpoint is not None and not Path(opts.checkpoint).is_file():
        raise TadInputError(opts.checkpoint, "no such checkpoint file")


def effective_options(opts: ExtractOptions, spec) -> dict:
    """Every option with backbone defaults filled in (what the store records)."""
    geometry = geometry_for(opts, spec)
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
        exts=list(norm_exts(opts.exts)), checkpoint=Path(opts.checkpoint).name if opts.checkpoint else None,
    )
    mode = (getattr(spec, "extra", None) or {}).get("continual")
    if mode:  # a continual backbone: say where each feature ends (timestamps stay window centres)
        effective["continual"] = dict(mode=mode, delay_steps=0, feature_end_frame="i * clip_stride + "
                                      "(clip_len - 1) * frame_interval (output frames at fps; timestamps: window centres)")
    return effective


def geometry_for(opts: ExtractOptions, spec) -> FrameGeometry:
    if opts.resize is not None:
        return FrameGeometry(resize=int(opts.resize))
    spec_resize = getattr(spec, "resize", None)
    if spec_resize and opts.short_side is None and opts.crop is None:  # the backbone's own square-resize recipe
        return FrameGeometry(resize=int(spec_resize))
    short = spec.short_side if opts.short_side is None else opts.short_side
    crop = spec.crop if opts.crop is None else opts.crop
    return FrameGeometry(short_side=int(short) if short else None, crop=int(crop) if crop else None)
