"""Continual backbone vs clip mode on overlapping clips: time and FLOPs per feature step.

For each pair (continual backbone, its clip-mode twin with the same weights), one feature every
``clip_stride`` output frames:

* clip mode (baseline, measured in the same run): one clip of ``clip_len`` frames per feature step
  (what ``tad stream`` does for every other backbone);
* continual mode: the frames of the step go through ``forward_steps`` once each; only the frame
  phases some window uses are computed, ``clip_stride / gcd(clip_stride, frame_interval)`` steps
  per feature (``tad.features.continual_features``).

FLOPs: torch's FlopCounterMode (2 per multiply-add), clip = one ``model(clip)``, continual = one
warm feature step. Time: CPU time of this process (``time.process_time``, --threads torch threads)
per feature step, median of --repeats after warm-up; wall time beside it. Rows are the shipped
defaults (X3D-XS/S test crops 160 px, clip_stride 4; TSM MobileNetV2 224 px) unless marked, plus
rows with clip_stride = frame_interval (one continual step per feature, the CoX3D setting).
Weights are random (cost does not depend on them).
Example:  python bench/continual_backbone_cost.py --threads 1
"""
from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

import click
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _timed(fn, repeats: int) -> tuple[float, float]:
    cpu, wall = [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def measure(continual: str, clip: str, clip_kwargs: dict, crop: int | None, stride: int | None, repeats: int) -> dict:
    from tad.features.registry import BACKBONES
    import tad.features.backbones  # noqa: F401

    kwargs = {} if crop is None else {"crop": crop}
    co = BACKBONES.build(dict(type=continual, **kwargs)).eval()
    base = BACKBONES.build(dict(type=clip, **kwargs, **clip_kwargs)).eval()
    spec = co.spec
    stride = stride or spec.clip_stride
    steps = stride // math.gcd(stride, spec.frame_interval)  # continual steps per feature step
    size = spec.crop
    gen = torch.Generator().manual_seed(0)
    clip_in = torch.randn(1, 3, spec.clip_len, size, size, generator=gen)  # (1, 3, T, H, W)
    frames = torch.randn(1, 3, steps, size, size, generator=gen)  # one feature step's frames of one phase
    with torch.inference_mode():
        state = co.init_state(1, spec.clip_len)
        co.forward_steps(torch.randn(1, 3, spec.clip_len, size, size, generator=gen), state)  # warm state
        clip_flops = _flops(lambda: base(clip_in))
        co_flops = _flops(lambda: co.forward_steps(frames[:, :, :1], state)) * steps
        base(clip_in)
        co.forward_steps(frames, state)
        clip_cpu, clip_wall = _timed(lambda: base(clip_in), repeats)
        co_cpu, co_wall = _timed(lambda: [co.forward_steps(frames[:, :, i:i + 1], state) for i in range(steps)],
                                 repeats)
    return dict(name=f"{continual} vs {clip}", crop=size, clip_len=spec.clip_len, interval=spec.frame_interval,
                stride=stride, steps=steps, clip_gflops=clip_flops / 1e9, co_gflops=co_flops / 1e9,
                clip_ms=clip_cpu * 1e3, co_ms=co_cpu * 1e3, clip_wall=clip_wall * 1e3, co_wall=co_wall * 1e3)


@click.command()
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads.")
@click.option("--repeats", type=int, default=5, show_default=True, help="Timed feature steps per mode (median).")
@click.option("--quick", is_flag=True, help="Only X3D-XS and MobileNetV2 at the shipped defaults.")
def main(threads: int, repeats: int, quick: bool) -> None:
    torch.set_num_threads(threads)
    print(f"CPU: {cpu_name()}; torch {torch.__version__}, {threads} thread(s); per feature step, median of {repeats}")
    rows = [("cox3d_xs", "x3d_xs", {}, None, None), ("cox3d_s", "x3d_s", {}, None, None),
            ("cox3d_s", "x3d_s", {}, None, 6),
            ("tsm_mobilenetv2_continual", "tsm_mobilenetv2_online", {}, None, None)]
    if quick:
        rows = [rows[0], rows[3]]
    header = (f"{'continual vs clip mode':<52} {'crop':>4} {'TxI':>5} {'stride':>6} {'steps':>5} "
              f"{'GFLOPs clip':>11} {'GFLOPs co':>9} {'ratio':>6} {'ms clip':>8} {'ms co':>7} {'ratio':>6} "
              f"{'wall ms clip/co':>15}")
    print(header)
    for continual, clip, clip_kwargs, crop, stride in rows:
        r = measure(continual, clip, clip_kwargs, crop, stride, repeats)
        mark = "" if stride is None else " (stride = interval)"
        print(f"{r['name'] + mark:<52} {r['crop']:>4} {r['clip_len']:>2}x{r['interval']:<2} {r['stride']:>6} "
              f"{r['steps']:>5} {r['clip_gflops']:>11.3f} {r['co_gflops']:>9.3f} "
              f"{r['clip_gflops'] / r['co_gflops']:>5.1f}x {r['clip_ms']:>8.1f} {r['co_ms']:>7.1f} "
              f"{r['clip_ms'] / r['co_ms']:>5.1f}x {r['clip_wall']:>7.0f}/{r['co_wall']:<7.0f}", flush=True)


if __name__ == "__main__":
    main()
