"""Throughput of the whole ``tad stream`` pipeline (decode -> clips -> backbone -> continual causal STPT ->
events) on a CPU, with the cheapest registered backbone, against real time.

The backbone is ``tiny3d`` at its native input (short side 128, 112 x 112 centre crop, 8-frame clips
every 4 frames at 30 fps; random seeded weights: cost does not depend on them); the detector is the
demo's causal STPT (configs/stpt/demo_tiny3d_causal.py, random weights, 64-d input). The video is read as
fast as possible (no --realtime). Printed: frames/s of the whole pipeline, of decoding alone (the
baseline measured in the same run: PyAV decode + resize + crop, what any pipeline pays), their ratio,
and the real-time factor for a 30 fps input (>= 1: keeps up with a 30 fps camera), in wall time and
in frames per CPU-second (all threads of the process; not inflated by other jobs on a shared CPU). Defaults: the real
../shared/data/videos/tennis26.mp4, 2 torch threads (the machine has 2 cores).
Example:  python bench/stream_throughput.py --threads 2
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = next((p / "shared" / "data" / "videos" / "tennis26.mp4" for p in REPO.parents
                      if (p / "shared" / "data" / "videos" / "tennis26.mp4").is_file()),
                     REPO.parent / "shared" / "data" / "videos" / "tennis26.mp4")


def make_detector(folder: Path) -> tuple[Path, Path]:
    """A random-init causal demo detector for tiny3d features and a config that extracts them."""
    import torch

    import tad.detectors  # noqa: F401
    from tad.detectors.registry import MODELS
    from tad.engine.runner import load_config, resolve_config_path

    config = folder / "stream_bench_causal.py"
    base = resolve_config_path("demo_tiny3d_causal.py")
    config.write_text(f"_base_ = ['{base}']\nclasses = ['a', 'b', 'c', 'd']\n"
                      "extract = dict(backbone='tiny3d', random_init=True)\n")
    cfg = load_config(str(config))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = folder / "causal.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": ["a", "b", "c", "d"]}}}, ckpt)
    return config, ckpt


def decode_only(video: Path) -> tuple[int, float]:
    from tad.features.backbones.tiny3d import Tiny3D
    from tad.features.frame_transforms import FrameGeometry
    from tad.features.live_source import LiveFrameSource

    spec = Tiny3D().spec
    source = LiveFrameSource(str(video), FrameGeometry(short_side=spec.short_side, crop=spec.crop))
    t0, c0 = time.perf_counter(), time.process_time()
    frames = sum(1 for _ in source)
    source.close()
    return frames, time.perf_counter() - t0, time.process_time() - c0


@click.command(help=__doc__)
@click.option("--video", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=DEFAULT_VIDEO,
              show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="torch threads.")
@click.option("--repeats", type=int, default=2, show_default=True, help="Runs of each; the best is kept.")
def main(video, threads, repeats):
    import av
    import torch

    from tad.apis.stream import run_stream

    torch.set_num_threads(threads)
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        native = f"{s.codec_context.width}x{s.codec_context.height} at {float(s.average_rate):.2f} fps"
    print(f"stream_throughput: {video.name} ({native}), tiny3d (128 short side, 112 crop, 8x1 clips every 4 frames) "
          f"+ causal demo STPT; CPU {cpu_name()} ({os.cpu_count()} cores, shared with other jobs; load average {os.getloadavg()[0]:.1f}), {threads} torch threads")
    with tempfile.TemporaryDirectory() as tmp:
        config, ckpt = make_detector(Path(tmp))
        best_stream = best_decode = cpu_stream = cpu_decode = 0.0
        for _ in range(repeats):
            frames, seconds, cpu = decode_only(video)
            best_decode = max(best_decode, frames / seconds)
            cpu_decode = max(cpu_decode, frames / cpu)
            c0 = time.process_time()
            result = run_stream(str(video), config, ckpt, random_init=True, device="cpu", threshold=0.5,
                                echo=lambda line: None, status=None)
            cpu_stream = max(cpu_stream, result.frames / (time.process_time() - c0))
            best_stream = max(best_stream, result.fps)
        steps = result.step_seconds
        per_clip = 1e3 * sum(steps) / max(len(steps), 1)
    print(f"decode only (baseline): {best_decode:.1f} frames/s wall, {cpu_decode:.1f} frames per CPU-second")
    print(f"tad stream, whole pipeline: {best_stream:.1f} frames/s wall, {cpu_stream:.1f} frames per CPU-second "
          f"({result.clips} clips, {per_clip:.2f} ms wall per clip for backbone + continual detector + tracker)")
    print(f"ratio stream / decode-only: {best_stream / best_decode:.2f}; real-time factor for 30 fps input: "
          f"{best_stream / 30:.2f}x wall ({'keeps up' if best_stream >= 30 else 'does NOT keep up'} here), "
          f"{cpu_stream / 30:.2f}x per CPU core (>= 1: one idle core keeps up with 30 fps)")
    print("continual backbones (cox3d_*, tsm_*_continual) vs clip mode, per feature step: "
          "bench/continual_backbone_cost.py")


if __name__ == "__main__":
    main()
