"""Every extraction setting (``ExtractOptions``), their checks, and what a run reports.

``effective_options(opts, spec)`` fills the backbone's defaults in and rejects bad values
by flag name (one line each); it is what a feature store records as ``options``, and
what ``tad detect`` / ``tad stream`` read back from a config's ``extract=dict(...)``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from tad.errors import TadInputError
from tad.features.frame_transforms import FrameGeometry

__all__ = ["DEFAULT_EXTS", "DTYPES", "ExtractOptions", "ExtractSummary", "check_options_early", "effective_options",
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
    if opts.dtype not in DTYPES:
        raise TadInputError("--dtype", f"must be one of {', '.join(DTYPES)}, got {opts.dtype!r}")
    if opts.checkpoint is None and not opts.random_init:
        raise TadInputError("--checkpoint", "no checkpoint given; pass --checkpoint CKPT, or --random-init "
                            "to extract with untrained (seeded) weights")
    if opts.checkpoint is not None and not Path(opts.checkpoint).is_file():
        raise TadInputError(opts.checkpoint, "no such checkpoint file")
    if opts.store_dtype not in ("float16", "float32"):
        raise TadInputError("--store-dtype", f"must be float16 or float32, got {opts.store_dtype!r}")


def effective_options(opts: ExtractOptions, spec) -> dict:
    """Every option with backbone defaults filled in (what the store records)."""
    geometry = geometry_for(opts, spec)
    fps = opts.fps if opts.fps is not None else spec.fps
    if isinstance(fps, str) and fps != "native":
        try:
            fps = float(fps)
        except ValueError:
            raise TadInputError("--fps", f"must be a number or 'native', got {fps!r}") from None
    effective = asdict(opts)
    effective.update(
        clip_len=int(opts.clip_len or spec.clip_len),
        frame_interval=int(opts.frame_interval or spec.frame_interval),
        clip_stride=int(opts.clip_stride or spec.clip_stride),
        fps=fps if fps == "native" else float(fps),
        short_side=geometry.short_side, crop=geometry.crop, resize=geometry.resize,
        mean=list(spec.mean), std=list(spec.std), feature_dim=int(spec.feature_dim),
        exts=list(norm_exts(opts.exts)), checkpoint=Path(opts.checkpoint).name if opts.checkpoint else None,
    )
    for key in ("clip_len", "frame_interval", "clip_stride", "batch_size"):
        if effective[key] < 1:
            raise TadInputError(f"--{key.replace('_', '-')}", f"must be >= 1, got {effective[key]}")
    if opts.spatial_grid is not None and opts.spatial_grid < 1:
        raise TadInputError("--spatial-grid", f"must be >= 1, got {opts.spatial_grid}")
    if opts.decoder not in ("pyav", "decord"):
        raise TadInputError("--decoder", f"must be pyav or decord, got {opts.decoder!r}")
    return effective


def geometry_for(opts: ExtractOptions, spec) -> FrameGeometry:
    if opts.resize:
        if opts.short_side or opts.crop:
            raise TadInputError("--resize", "use either --resize or --short-side/--crop, not both")
        return FrameGeometry(resize=int(opts.resize))
    short = opts.short_side or spec.short_side
    crop = opts.crop or spec.crop
    return FrameGeometry(short_side=int(short) if short else None, crop=int(crop) if crop else None)
