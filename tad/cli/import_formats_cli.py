"""The ActivityNet branch of ``tad import-features`` (``--format tsp_h5|anet_npy|bmn_csv|auto``):
picks the format, runs :func:`tad.features.import_formats.run_format`, prints the summary and
the id report. Options the user did not pass fall back to the format's own defaults."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


def _given(ctx: click.Context, name: str):
    """The option's value when the user passed it, else None (the format's default applies)."""
    source = ctx.get_parameter_source(name)
    return ctx.params[name] if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP") else None


def run_named_format(ctx: click.Context, fmt: str, paths: tuple[Path, ...], output: Path, fps_from: Path | None,
                     dtype: str, compression: str | None, overwrite: bool, quiet: bool) -> bool:
    """Import in a named format; False when ``fmt`` is 'auto' and the inputs are plain arrays."""
    from tad.features.import_formats import FormatOptions, detect_format, run_format
    from tad.features.importer import read_video_info
    from tad.output_guard import refuse_output_over_inputs

    try:
        info = read_video_info(fps_from) if fps_from is not None else None
        if fmt == "auto":
            fmt = detect_format(paths, None if info is None else info.keys())
            if fmt is None:
                return False
        refuse_output_over_inputs({"-o": output}, {"NPY_DIR": paths[0], **({"--fps-from": fps_from} if fps_from else {})})
        fps = _given(ctx, "fps")
        opts = FormatOptions(fps=fps, clip_len=_given(ctx, "clip_len"), clip_stride=_given(ctx, "clip_stride"),
                             frame_interval=_given(ctx, "frame_interval"),
                             evenly_spread=False if fps is not None else None, dtype=dtype, compression=compression,
                             overwrite=overwrite, backbone=_given(ctx, "backbone_name"))

        def report(path: str, reason: str) -> None:
            from tqdm import tqdm
            tqdm.write(f"failed: {path}: {reason}", file=sys.stderr)

        summary, ids = run_format(fmt, paths, output, opts, video_info=info, progress=not quiet, on_failure=report)
    except (TadInputError, OSError) as exc:
        fail(exc)
    click.echo(f"{output}: format {fmt}: imported {len(summary.done)}, skipped {len(summary.skipped)} "
               f"(already stored), failed {len(summary.failed)} in {summary.wall_time:.1f} s")
    for line in ids.lines():
        click.echo(f"ids: {line}")
    if summary.failed and not summary.done and not summary.skipped:
        fail(TadInputError(paths[0], f"all {len(summary.failed)} videos failed (listed above)"))
    return True
