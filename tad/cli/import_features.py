"""``tad import-features``: published per-video feature arrays -> one HDF5 feature store."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from tad.cli.errors import EXIT_PARTIAL, fail
from tad.errors import TadInputError


@click.command(
    "import-features",
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  # ActionFormer's two-stream I3D THUMOS14 features, fps per video from the annotations
  tad import-features thumos/i3d_features -o thumos_i3d.h5 \\
      --fps-from thumos14.json --clip-len 16 --clip-stride 4
  # one frame rate for every video, float32 storage, .npz files holding 'feats'
  tad import-features feats/ -o feats.h5 --fps 30 --ext npz --key feats --dtype float32
  # separate RGB and flow streams, concatenated per video (1024 + 1024 -> 2048)
  tad import-features i3d_rgb/ i3d_flow/ -o i3d.h5 --fps-from thumos14.json

\b
Timestamps: clip i is centred at (i * clip_stride + span / 2) / fps seconds,
span = (clip_len - 1) * frame_interval + 1 (16-frame clips every 4 frames:
(4 i + 8) / fps). Video ids are file paths relative to NPY_DIR without extension.
(C, T) arrays are transposed when the feature dimension is clear (shared by all
files, --feature-dim, or matching the annotated duration). Re-running resumes;
unreadable files are listed as failed and the run goes on. .pt files are read
weights-only (tensors; no pickled objects); .npy/.npz never unpickle.

\b
Exit status: 0 every file was imported (or already was); 3 some files failed
(listed as 'failed: path: reason') and the rest were written; 1 an error, or
every file failed.""",
)
@click.argument("npy_dirs", metavar="NPY_DIR...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HDF5 feature store to write.")
@click.option("--fps-from", "fps_from", type=click.Path(dir_okay=False, path_type=Path),
              help="Annotation JSON (ActionFormer/ActivityNet 'database') giving each video's fps and duration.")
@click.option("--fps", type=float, default=None, help="Frame rate for every video (fallback with --fps-from).")
@click.option("--clip-len", default=16, show_default=True, type=click.IntRange(min=1), help="Frames per clip.")
@click.option("--clip-stride", default=4, show_default=True, type=click.IntRange(min=1),
              help="Frames between consecutive clip starts.")
@click.option("--frame-interval", default=1, show_default=True, type=click.IntRange(min=1),
              help="Sampling interval of the frames inside a clip.")
@click.option("--ext", type=click.Choice(["npy", "npz", "pt"]), default="npy", show_default=True,
              help="Feature file type.")
@click.option("--key", default=None, help="Array name inside .npz / dict .pt files (default: the only one, or 'feats').")
@click.option("--feature-dim", type=click.IntRange(min=1), default=None,
              help="Feature dimension C, to tell (T, C) from (C, T) arrays (inferred by default).")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True,
              help="Stored feature dtype.")
@click.option("--compression", type=click.Choice(["gzip", "lzf"]), default=None, help="Compress (archives; slower reads).")
@click.option("--backbone-name", default="imported", show_default=True,
              help="Name recorded as the store's backbone (e.g. i3d_two_stream).")
@click.option("--recursive", is_flag=True, help="Also look in subfolders (ids keep the relative path).")
@click.option("--overwrite", is_flag=True, help="Replace an existing store made with other settings.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def import_features(npy_dirs: tuple[Path, ...], output: Path, fps_from: Path | None, fps: float | None, clip_len: int,
                    clip_stride: int, frame_interval: int, ext: str, key: str | None, feature_dim: int | None,
                    dtype: str, compression: str | None, backbone_name: str, recursive: bool, overwrite: bool,
                    quiet: bool) -> None:
    """Convert per-video (T, C) feature arrays in NPY_DIR into one HDF5 feature store.

    Give two folders (e.g. RGB then optical flow, same file names) to concatenate
    their features per video along C."""
    from tad.features.importer import ImportOptions, import_features as run_import, read_video_info

    opts = ImportOptions(clip_len=clip_len, clip_stride=clip_stride, frame_interval=frame_interval, fps=fps, ext=ext,
                         key=key, feature_dim=feature_dim, dtype=dtype, compression=compression, recursive=recursive,
                         overwrite=overwrite, backbone=backbone_name)

    def report(path: str, reason: str) -> None:
        from tqdm import tqdm
        tqdm.write(f"failed: {path}: {reason}", file=sys.stderr)  # above the progress bar

    from tad.output_guard import refuse_output_over_inputs

    try:
        refuse_output_over_inputs({"-o": output}, {"--fps-from": fps_from})
        info = read_video_info(fps_from) if fps_from is not None else None
        summary = run_import(list(npy_dirs), output, opts, video_info=info, fps_from_name=fps_from.name if fps_from else None,
                             progress=not quiet, on_failure=report)
    except (TadInputError, OSError) as exc:
        fail(exc)
    click.echo(f"{output}: imported {len(summary.done)}, skipped {len(summary.skipped)} (already stored), "
               f"failed {len(summary.failed)} in {summary.wall_time:.1f} s")
    if summary.failed and not summary.done and not summary.skipped:
        fail(TadInputError(npy_dirs[0], f"all {len(summary.failed)} files failed (listed above)"))
    if summary.failed:
        sys.exit(EXIT_PARTIAL)
