"""`tad stream`: online detection on a live or growing video (flags and output; the work is
``tad.apis.stream.run_stream``)."""
from __future__ import annotations

import sys

import click

from tad.cli.errors import fail
from tad.errors import TadInputError


@click.command(
    "stream",
    help="""Detect actions online in a video as it plays: a file, a growing file (--follow),
    an rtsp:// or http(s):// URL, or a device such as /dev/video0.

    Clips are computed as they complete (one per clip stride, backbone settings from the
    config's extract=dict(...)); a continual backbone (--backbone cox3d_s, tsm_*_continual)
    runs frame by frame instead, one backbone call per new frame, and gives the features
    `tad extract` stores with it. A causal detector (CausalSTPTDetector, configs
    *_causal.py; `tad train` trains it on the same stores) updates its state with each new
    feature step. Events are JSON lines, flushed as they happen, each with its video time
    and wall time: "start" (a class started, while it runs) and "segment" (start, end,
    score; emitted --max-latency s after the action's end, so that the best candidate of
    each action, which may come from a coarse level a few steps after the end, is seen first).
    Without -o they go to stdout. At the end, --preds-out gets every segment as
    ActivityNet JSON (`tad score` reads it). A status line (time processed, frames/s,
    top classes, lag behind real time) goes to stderr.

    The detector --checkpoint is read weights-only (--trust-checkpoint: as a trusted
    pickle); --backbone-checkpoint is a pickle format loaded as a TRUSTED file.

    Ctrl-C, a dropped stream or corrupt data end the run cleanly (events and --preds-out
    are written); a source with no frame for --stall-timeout s ends with a one-line error.

    \b
    Examples:
      tad stream tad_demo/videos/video_test_0014.mp4 --config demo_tiny3d_causal.py \\
          --checkpoint tad_demo/train_causal/best_average_mAP_epoch_80.pth --random-init --realtime \\
          -o events.jsonl --preds-out stream_preds.json
      tad stream rtsp://camera/live --config my_causal.py --checkpoint best.pth \\
          --backbone-checkpoint backbone.pth --max-latency 1.5
    """,
)
@click.argument("source")
@click.option("--config", "config", required=True, help="Config of the causal detector (with extract=dict(...)).")
@click.option("--checkpoint", required=True, type=click.Path(dir_okay=False), help="Detector checkpoint (.pth).")
@click.option("--backbone-checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Backbone weights (loaded as a trusted file).")
@click.option("--backbone", default=None, help="Backbone name, replacing the config's extract.backbone (e.g. cox3d_s: "
              "continual, frame by frame); the detector must take its feature size.")
@click.option("--random-init", is_flag=True, help="Use the backbone's seeded random weights (tests/demo).")
@click.option("--realtime", is_flag=True, help="Read a file at its own frame rate (simulates a camera).")
@click.option("--follow", is_flag=True, help="SOURCE is a file still being written (.ts/.mkv): wait at its end; it is finished once it "
                   "has not grown for --stall-timeout s.")
@click.option("--max-latency", type=float, default=2.0, show_default=True,
              help="Seconds after an action's end at which its segment is emitted (never later; "
                   "a longer wait lets more of the action's candidates compete).")
@click.option("--threshold", type=float, default=0.3, show_default=True,
              help="Class probability that emits a start event; minimum score of a segment event.")
@click.option("-o", "--out", "events_out", type=click.Path(dir_okay=False), default=None,
              help="Events as JSON lines (default: stdout).")
@click.option("--preds-out", type=click.Path(dir_okay=False), default=None,
              help="All segments at the end, ActivityNet JSON.")
@click.option("--stall-timeout", type=float, default=10.0, show_default=True,
              help="Seconds without a frame before the source counts as stalled.")
@click.option("--video-id", default=None, help="Video id in events and --preds-out (default: file stem).")
@click.option("--cfg-options", multiple=True, metavar="KEY=VALUE", help="Override config keys (repeatable).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(min=0), default=0, help="torch threads (0: torch's default).")
@click.option("--trust-checkpoint", is_flag=True,
              help="Read --checkpoint as a trusted pickle (can run code stored in it); default: weights only.")
def stream(source, config, checkpoint, backbone_checkpoint, backbone, random_init, realtime, follow, max_latency, threshold,
           events_out, preds_out, stall_timeout, video_id, cfg_options, device, threads, trust_checkpoint):
    try:
        result = run(source, config, checkpoint, backbone_checkpoint, random_init, realtime, follow, max_latency,
                     threshold, events_out, preds_out, stall_timeout, video_id, cfg_options, device, threads,
                     trust_checkpoint, backbone)
    except (TadInputError, FileNotFoundError) as exc:
        fail(exc)
    if result.end_reason:
        click.echo(f"warning: {source}: {result.end_reason}", err=True)
    segs = sum(1 for e in result.events if e["event"] == "segment")
    starts = sum(1 for e in result.events if e["event"] == "start")
    if result.continual:
        click.echo(f"continual backbone: {result.backbone_steps} frame steps for {result.clips} features", err=True)
    click.echo(f"{result.video_seconds:.1f} s of video, {result.frames} frames in {result.wall_seconds:.1f} s "
               f"({result.fps:.1f} frames/s): {starts} start and {segs} segment events"
               + (f", {len(result.segments)} segments -> {preds_out}" if preds_out else ""), err=True)


def run(source, config, checkpoint, backbone_checkpoint, random_init, realtime, follow, max_latency, threshold,
        events_out, preds_out, stall_timeout, video_id, cfg_options, device, threads, trust_checkpoint=False,
        backbone=None):
    from tad.apis.stream import run_stream

    return run_stream(source, config, checkpoint, backbone_checkpoint=backbone_checkpoint, random_init=random_init,
                      realtime=realtime, follow=follow, max_latency=max_latency, threshold=threshold,
                      events_out=events_out, preds_out=preds_out, device=device, stall_timeout=stall_timeout,
                      cfg_options=cfg_options, video_id=video_id,
                      echo=lambda line: click.echo(line), status=sys.stderr, threads=threads or None,
                      trust_checkpoint=trust_checkpoint, backbone=backbone)
