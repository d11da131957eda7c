"""How close `tad extract` gets to the speed of its slower half (decoder or model).

Generates long 30 fps videos with PyAV, then measures in one run:

* decode-only: the full decoder side (worker processes, chunked reading, resampling,
  crop, transfer, clip gather) with the model replaced by a no-op -> frames/s, clips/s;
* model-only: the backbone on pre-made uint8 clips (normalisation included) -> clips/s,
  with the torch thread count the pipeline uses (one core left per decoder on CPU);
* full pipeline: `extract_videos` writing a real store -> clips/s;
* ratio full / min(decode-bound, model-bound) (target >= 0.9);
* peak RSS of a whole extraction (own subprocess each) of a 1-minute and a 10-minute
  video, main process and decoder children separately (target: within 10%).

    python bench/extract_speed.py                 # 3 x 2-minute videos + RSS at 1 and 10 minutes
    python bench/extract_speed.py --quick         # smaller, for a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import numpy as np


def make_long_video(path: Path, seconds: float, width: int, height: int, fps: int = 30) -> Path:
    """H.264 video of moving gradients (cheap to draw, realistic-ish to decode)."""
    import av

    if path.exists():
        return path
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "ultrafast", "g": "60"}
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(int(seconds * fps)):
        img = np.empty((height, width, 3), np.uint8)
        img[..., 0] = (xx + 3 * i) % 256
        img[..., 1] = (yy + 2 * i) % 256
        img[..., 2] = ((xx + yy) // 2 + i) % 256
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


class _NullWriter:
    def __init__(self):
        self.completed = set()

    def write_video(self, *args, **kwargs):
        pass

    def mark_failed(self, *args, **kwargs):
        pass


class _NullModel:
    def __call__(self, clips):
        return np.zeros((len(clips), 1), np.float32)


def decode_only(paths: list[Path], opts) -> tuple[float, int, int]:
    """(seconds, frames decoded, clips) for the decoder side alone."""
    from tad.features import extract as ex
    from tad.features.registry import BACKBONES
    import tad.features.backbones  # noqa: F401

    spec = BACKBONES.build(dict(type=opts.backbone, **opts.backbone_kwargs)).spec
    options = ex.effective_options(opts, spec)
    geometry = ex._geometry(opts, spec)
    tasks = deque(ex.DecodeTask(i, p.stem, str(p), options["fps"], options["clip_len"], options["frame_interval"],
                                options["clip_stride"], geometry, opts.chunk_frames) for i, p in enumerate(paths))
    summary = ex.ExtractSummary()
    pool = ex._DecoderPool(opts.workers, opts.video_timeout)
    try:
        start = time.perf_counter()
        ex._run_pipeline(pool, tasks, _NullModel(), _NullWriter(), opts, summary, None,
                         lambda *a: print("failed:", a, file=sys.stderr), None, start)
        seconds = time.perf_counter() - start
    finally:
        pool.close()
    frames = summary.clips * options["clip_stride"]  # each output frame once (plus one clip's tail per video)
    return seconds, frames, summary.clips


def model_only(opts, clip_shape: tuple[int, ...], batches: int) -> float:
    """clips/s of the backbone on pre-made uint8 clips (B, T, h, w, 3)."""
    import torch

    from tad.features import extract as ex

    model, _, _ = ex._build_backbone(opts)
    device = ex._resolve_device(opts.device)
    before = ex._limit_torch_threads(device, opts.workers)
    try:
        runner = ex._FeatureModel(model, model.spec, opts, model.spec.mean, model.spec.std, device)
        clips = torch.randint(0, 256, (opts.batch_size, *clip_shape), dtype=torch.uint8)
        runner(clips)  # warm-up
        start = time.perf_counter()
        for _ in range(batches):
            runner(clips)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return batches * opts.batch_size / (time.perf_counter() - start)
    finally:
        ex._restore_torch_threads(before)


def full_pipeline(paths: list[Path], opts, out: Path) -> tuple[float, int]:
    from tad.features.extract import extract_videos

    opts.overwrite = True
    start = time.perf_counter()
    summary = extract_videos(paths, paths[0].parent, out, opts, progress=False)
    seconds = time.perf_counter() - start
    assert not summary.failed, summary.failed
    return seconds, summary.clips


def rss_child(video: str, opts_json: str) -> None:
    """Subprocess body: extract one video, print peak RSS (MiB) of this process and its decoders."""
    from tad.features.extract import ExtractOptions, extract_videos

    opts = ExtractOptions(**json.loads(opts_json))
    with tempfile.TemporaryDirectory() as tmp:
        summary = extract_videos([Path(video)], Path(video).parent, Path(tmp) / "f.h5", opts, progress=False)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(dict(main_mib=own, decoder_mib=children, clips=summary.clips)))


def measure_rss(video: Path, opts_dict: dict) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", str(video), json.dumps(opts_dict)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short videos, fewer batches")
    parser.add_argument("--videos", type=int, default=3, help="videos in the throughput runs")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of each throughput video")
    parser.add_argument("--size", default="320x180", help="WxH of generated videos")
    parser.add_argument("--backbone", default="tiny3d")
    parser.add_argument("--short-side", type=int, default=None)
    parser.add_argument("--crop", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--no-rss", action="store_true", help="skip the 1- vs 10-minute peak RSS runs")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "tad_bench_videos"))
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(*args.rss_child)
        return

    import torch

    from tad.features.extract import ExtractOptions

    width, height = (int(v) for v in args.size.split("x"))
    minutes = 0.25 if args.quick else args.minutes
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    opts_dict = dict(backbone=args.backbone, random_init=True, short_side=args.short_side, crop=args.crop,
                     batch_size=args.batch_size, workers=args.workers, device=args.device, dtype=args.dtype)
    opts = ExtractOptions(**opts_dict)

    t0 = time.perf_counter()
    paths = [make_long_video(cache / f"long_{minutes:g}min_{width}x{height}_{i}.mp4", minutes * 60, width, height)
             for i in range(args.videos)]
    print(f"# {args.videos} videos of {minutes:g} min, {width}x{height} @ 30 fps (generated in "
          f"{time.perf_counter() - t0:.0f} s); backbone {args.backbone}, batch {args.batch_size}, "
          f"workers {args.workers}, device {args.device}, dtype {args.dtype}, cores {os.cpu_count()}, "
          f"cuda {'yes' if torch.cuda.is_available() else 'NO (CPU only)'}")

    dec_s, frames, clips = decode_only(paths, opts)
    decode_clips = clips / dec_s
    print(f"decode-only   : {frames / dec_s:8.1f} frames/s  = {decode_clips:7.1f} clips/s  ({clips} clips, {dec_s:.1f} s)")

    from tad.features import extract as ex
    from tad.features.registry import BACKBONES

    spec = BACKBONES.build(dict(type=args.backbone)).spec
    geometry = ex._geometry(opts, spec)
    decoded_w, decoded_h = geometry.decode_size(width, height)
    _, _, ch, cw = geometry.crop_box(decoded_w, decoded_h)
    clip_len = spec.clip_len
    model_clips = model_only(opts, (clip_len, ch, cw, 3), batches=3 if args.quick else 10)
    print(f"model-only    : {model_clips:7.1f} clips/s  (clips {clip_len}x{ch}x{cw}, threads as in the pipeline)")

    with tempfile.TemporaryDirectory() as tmp:
        full_s, full_clips = full_pipeline(paths, opts, Path(tmp) / "bench.h5")
    full = full_clips / full_s
    bound = min(decode_clips, model_clips)
    print(f"full pipeline : {full:7.1f} clips/s  ({full_clips} clips, {full_s:.1f} s, store written)")
    print(f"ratio full / min(decode, model) = {full:.1f} / {bound:.1f} = {full / bound:.2f}  (target >= 0.9)")
    if (os.cpu_count() or 1) <= 2 and args.device == "cpu":
        print("# note: on a 2-core CPU the decoders and the model share the same cores, so the bounds measured "
              "alone overstate what both can do together")

    if not args.no_rss:
        rss_opts = dict(opts_dict, workers=1)
        results = {}
        for rss_minutes in ((0.5, 2.0) if args.quick else (1.0, 10.0)):
            video = make_long_video(cache / f"rss_{rss_minutes:g}min_{width}x{height}.mp4", rss_minutes * 60, width, height)
            results[rss_minutes] = measure_rss(video, rss_opts)
            r = results[rss_minutes]
            print(f"peak RSS {rss_minutes:>4g}-min video: main {r['main_mib']:7.1f} MiB, decoder {r['decoder_mib']:7.1f} MiB "
                  f"({r['clips']} clips)")
        (short, long) = results.values()
        growth = (long["main_mib"] + long["decoder_mib"]) / (short["main_mib"] + short["decoder_mib"]) - 1
        print(f"peak RSS growth, long vs short video: {100 * growth:+.1f}%  (target within 10%)")


if __name__ == "__main__":
    main()
