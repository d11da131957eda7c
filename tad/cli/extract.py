"""``tad extract``: a folder of videos -> one HDF5 feature store."""
from __future__ import annotations

import sys

import click

from tad.cli.errors import EXIT_PARTIAL, fail
from tad.errors import TadInputError


def _backbone_options(values: tuple[str, ...]) -> dict:
    """``key=value`` pairs; values are Python literals when they parse as one, else strings."""
    import ast

    kwargs = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--backbone-option")
        try:
            kwargs[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            kwargs[key.strip()] = raw
    return kwargs


@click.command("extract", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("video_dir", type=click.Path(file_okay=False, dir_okay=True))
@click.option("-o", "--out", "out", required=True, type=click.Path(dir_okay=False), help="Output HDF5 store (.h5).")
@click.option("--backbone", default="tiny3d", show_default=True, help="Registered backbone name (tada2d_r50, slowfast_r50_8x8, tiny3d, ...).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None, help="Backbone weights (.pyth/.pth/.pt/.pkl). Loaded as a TRUSTED file.")
@click.option("--random-init", is_flag=True, help="No checkpoint: use the backbone's seeded random weights (tests, demos).")
@click.option("--backbone-option", "backbone_options", multiple=True, metavar="KEY=VALUE",
              help="Backbone constructor option, e.g. preset=16x5 for tada2d_r50 (repeatable).")
@click.option("--clip-len", type=int, default=None, help="Frames per clip [backbone default].")
@click.option("--frame-interval", type=int, default=None, help="Take every n-th frame inside a clip [backbone default].")
@click.option("--clip-stride", type=int, default=None, help="Frames between clip starts [backbone default, 4].")
@click.option("--fps", "fps", default=None, help="Resample to this frame rate by timestamp, or 'native' [backbone default, 30].")
@click.option("--short-side", type=int, default=None, help="Resize so the short side is this many pixels [backbone default].")
@click.option("--crop", type=int, default=None, help="Centre crop size after the short-side resize [backbone default].")
@click.option("--resize", type=int, default=None, help="Square resize of the whole frame instead of short side + crop.")
@click.option("--spatial-grid", type=int, default=None, help="Keep a g x g grid per clip: features (T, C, g, g).")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Clips per forward pass (batches span videos).")
@click.option("--workers", type=int, default=2, show_default=True, help="Decoder processes (0: decode in the main process).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True, help="Compute dtype (autocast when not float32).")
@click.option("--channels-last", is_flag=True, help="channels_last_3d memory format (faster on some GPUs).")
@click.option("--store-dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True, help="Dtype of the stored features.")
@click.option("--compression", type=click.Choice(["gzip", "lzf"]), default=None, help="Compress the stored features (smaller, slower random reads).")
@click.option("--timeout", "video_timeout", type=float, default=120.0, show_default=True, help="Seconds a decoder may make no progress before its video is failed.")
@click.option("--video-list", type=click.Path(dir_okay=False, exists=True), default=None, help="Only these videos (one id or relative path per line).")
@click.option("--recursive", is_flag=True, help="Also look in subfolders (ids keep the subfolder: sub/name).")
@click.option("--ext", "exts", default="mp4,avi,mkv,webm,mov", show_default=True, help="Comma-separated video extensions.")
@click.option("--overwrite", is_flag=True, help="Discard an existing store (or unfinished run) made with other settings.")
@click.option("--decoder", type=click.Choice(["pyav", "decord"]), default="pyav", show_default=True,
              help="Pixel decoder. Frame index and timestamps always come from decord; pyav decodes only what is "
                   "asked for (flat memory), decord's get_batch reads ahead while the model is busy.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def extract(video_dir, out, backbone, checkpoint, random_init, backbone_options, clip_len, frame_interval, clip_stride, fps, short_side,
            crop, resize, spatial_grid, batch_size, workers, device, dtype, channels_last, store_dtype, compression,
            video_timeout, video_list, recursive, exts, overwrite, decoder, no_progress):
    """Extract clip features of every video in VIDEO_DIR into one HDF5 store.

    Each clip of --clip-len frames (every --clip-stride frames, after resampling to
    --fps by timestamp) becomes one feature row with its centre time in seconds.
    Defaults come from the backbone. Re-running the same command after a crash or
    kill resumes: completed videos are kept and not recomputed. Videos that fail
    (corrupt, empty, unreadable, hanging decoder) are listed and recorded in the
    store; the run goes on.

    \b
    Examples:
      tad extract videos/ -o feats.h5 --backbone tada2d_r50 --checkpoint TAda2D_8x8.pyth
      tad extract videos/ -o feats.h5 --backbone slowfast_r50_8x8 --checkpoint SLOWFAST_8x8_R50.pkl \\
          --device cuda --dtype bfloat16 --batch-size 32 --workers 8
      tad extract videos/ -o tiny.h5 --backbone tiny3d --random-init --short-side 64 --crop 56
      tad extract videos/ -o grid.h5 --backbone tada2d_r50 --checkpoint C.pyth --spatial-grid 2
      tad extract videos/ -o f16.h5 --backbone tada2d_r50 --checkpoint C.pyth --backbone-option preset=16x5
      torchrun --nproc_per_node 4 -m tad.cli.extract videos/ -o feats.h5 --backbone ... (one store)

    \b
    Backbone checkpoints (.pyth/.pth/.pt, Caffe2 .pkl) are pickle formats, loaded with
    torch.load(weights_only=False) / pickle, i.e. as TRUSTED files that can run code:
    only use checkpoints you trust.

    \b
    Exit status: 0 every video was extracted (or already was); 3 some videos failed
    (listed, recorded in the store) and the rest were written; 1 an error, or no
    video could be read. Only one run may write an output at a time.
    """
    from tad.features.extract import ExtractOptions, extract_folder
    from tad.output_guard import refuse_output_over_inputs

    try:
        ext_list = tuple(e.strip().lstrip(".") for e in exts.split(",") if e.strip())
        if not ext_list:
            raise TadInputError("--ext", "no extensions given")
        opts = ExtractOptions(
            backbone=backbone, checkpoint=checkpoint, random_init=random_init, clip_len=clip_len,
            frame_interval=frame_interval, clip_stride=clip_stride, fps=fps, short_side=short_side, crop=crop,
            resize=resize, spatial_grid=spatial_grid, batch_size=batch_size, workers=workers, device=device,
            dtype=dtype, store_dtype=store_dtype, compression=compression, video_timeout=video_timeout,
            exts=ext_list, recursive=recursive, overwrite=overwrite, channels_last=channels_last,
            decoder=decoder, backbone_kwargs=_backbone_options(backbone_options))
        refuse_output_over_inputs({"-o": out}, {"--video-list": video_list, "--checkpoint": checkpoint})
        summary = extract_folder(video_dir, out, opts, video_list=video_list, progress=not no_progress)
    except (TadInputError, click.BadParameter, OSError) as exc:
        fail(exc)
    click.echo(summary.line())
    if summary.failed:
        click.echo(f"{len(summary.failed)} failed (listed above as 'path: reason'; recorded in the store's "
                   "failed list): fix or remove them and re-run the same command to retry only those", err=True)
    if not summary.done and not summary.skipped:
        sys.exit(1)
    if summary.failed:
        sys.exit(EXIT_PARTIAL)


if __name__ == "__main__":  # torchrun -m tad.cli.extract ...
    extract()
