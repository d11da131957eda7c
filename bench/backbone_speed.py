"""Backbone throughput: clips/s, achieved GFLOP/s against a dense-matmul peak measured in
the same run, and the TAda2D fast TAdaConv path against the official grouped-conv form.

    python bench/backbone_speed.py                 # full: 224 crop, batch 1 and 8, fp32 and bf16
    python bench/backbone_speed.py --quick         # 112 crop, fewer repeats (a smoke run)
    python bench/backbone_speed.py --channels-last --compile --device cuda

FLOPs per clip are counted with torch.utils.flop_counter (2 FLOPs per multiply-add) on
one forward; weights are the seeded random init (speed does not depend on values).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tad.features.backbones  # noqa: E402,F401  (registers the backbones)
from tad.features.registry import BACKBONES  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int) -> float:
    """Dense square matmul throughput: the machine's practical peak for this dtype."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    torch.mm(a, b)
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / min(times) / 1e9


def count_flops_per_clip(model: torch.nn.Module, clip_shape: tuple[int, ...]) -> float:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *clip_shape))
    return float(counter.get_total_flops())


def time_forward(model, clips: torch.Tensor, dtype: torch.dtype, device: torch.device,
                 warmup: int, repeats: int) -> float:
    """Median seconds per forward of ``clips`` (autocast when dtype is not float32)."""
    autocast = (torch.autocast(device_type=device.type, dtype=dtype) if dtype != torch.float32 else nullcontext())
    times = []
    with torch.inference_mode(), autocast:
        for i in range(warmup + repeats):
            sync(device)
            start = time.perf_counter()
            model(clips)
            sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(name: str, kwargs: dict, device: torch.device, channels_last: bool):
    model = BACKBONES.build(dict(type=name, **kwargs)).eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return model


def make_clips(batch: int, spec, crop: int, device: torch.device, channels_last: bool) -> torch.Tensor:
    clips = torch.randn(batch, 3, spec.clip_len, crop, crop, device=device)
    return clips.contiguous(memory_format=torch.channels_last_3d) if channels_last else clips


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="112 crop, 1 timed repeat (smoke run)")
    parser.add_argument("--backbones", nargs="+", default=["tada2d_r50", "slowfast_r50_8x8"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--crop", type=int, default=None, help="clip side in pixels [224; 112 with --quick]")
    parser.add_argument("--repeats", type=int, default=None, help="timed forwards per cell [3; 1 with --quick]")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--channels-last", action="store_true", help="channels_last_3d model and input")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model) (float32, batch 8)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    crop = args.crop or (112 if args.quick else 224)
    repeats = args.repeats or (1 if args.quick else 3)
    warmup = 1
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, crop {crop}, "
          f"channels_last {args.channels_last}, repeats {repeats} (median)")
    if not torch.cuda.is_available():
        print("No GPU here: torch.cuda.is_available() is False; all figures are CPU figures "
              "(the GPU row, bfloat16 batch 32, needs --device cuda on a GPU machine).")

    peaks = {}
    for dtype_name in args.dtypes:
        dtype = getattr(torch, dtype_name)
        size = 4096 if device.type == "cuda" else (1024 if args.quick else 2048)
        peaks[dtype_name] = matmul_gflops(device, dtype, size, repeats=3)
        print(f"dense matmul {size}x{size} {dtype_name}: {peaks[dtype_name]:.1f} GFLOP/s (peak baseline)")

    rows = []
    for name in args.backbones:
        model = build(name, {}, device, args.channels_last)
        spec = model.spec
        clip_shape = (3, spec.clip_len, crop, crop)
        gflop = count_flops_per_clip(model.cpu(), clip_shape) / 1e9
        model.to(device)
        print(f"{name}: {gflop:.1f} GFLOP per clip of {spec.clip_len}x{crop}x{crop}")
        for batch in args.batch_sizes:
            clips = make_clips(batch, spec, crop, device, args.channels_last)
            for dtype_name in args.dtypes:
                sec = time_forward(model, clips, getattr(torch, dtype_name), device, warmup, repeats)
                achieved = gflop * batch / sec
                rows.append((name, "fast" if name == "tada2d_r50" else "-", batch, dtype_name,
                             batch / sec, achieved, achieved / peaks[dtype_name]))
        if name == "tada2d_r50":
            grouped = build(name, dict(tada_impl="grouped"), device, args.channels_last)
            for batch in args.batch_sizes:
                clips = make_clips(batch, spec, crop, device, args.channels_last)
                sec = time_forward(grouped, clips, torch.float32, device, warmup, repeats)
                achieved = gflop * batch / sec
                rows.append((name, "grouped", batch, "float32", batch / sec, achieved, achieved / peaks["float32"]
                             if "float32" in peaks else float("nan")))
            del grouped
        if args.compile:
            batch = max(args.batch_sizes)
            clips = make_clips(batch, spec, crop, device, args.channels_last)
            try:
                compiled = torch.compile(model)
                start = time.perf_counter()
                with torch.inference_mode():
                    compiled(clips)
                compile_s = time.perf_counter() - start
                sec = time_forward(compiled, clips, torch.float32, device, warmup, repeats)
                achieved = gflop * batch / sec
                rows.append((name, "compiled", batch, "float32", batch / sec, achieved,
                             achieved / peaks.get("float32", float("nan"))))
                print(f"{name}: torch.compile works here (first call {compile_s:.1f} s)")
            except Exception as exc:  # report, do not fail the benchmark
                lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
                reason = " / ".join(lines[:1] + lines[-2:])[:300]
                print(f"{name}: torch.compile failed here: {type(exc).__name__}: {reason}")
        del model

    print()
    header = f"{'backbone':18} {'impl':9} {'batch':>5} {'dtype':9} {'clips/s':>9} {'GFLOP/s':>9} {'of peak':>8}"
    print(header)
    print("-" * len(header))
    for name, impl, batch, dtype_name, cps, gfs, frac in rows:
        print(f"{name:18} {impl:9} {batch:>5} {dtype_name:9} {cps:>9.3f} {gfs:>9.1f} {frac:>7.0%}")
    print()
    for batch in args.batch_sizes:
        fast = [r for r in rows if r[0] == "tada2d_r50" and r[1] == "fast" and r[2] == batch and r[3] == "float32"]
        grouped = [r for r in rows if r[0] == "tada2d_r50" and r[1] == "grouped" and r[2] == batch]
        if fast and grouped:
            print(f"TAda2D batch {batch} float32: fast TAdaConv {fast[0][4]:.3f} clips/s vs official grouped "
                  f"{grouped[0][4]:.3f} clips/s -> speed-up x{fast[0][4] / grouped[0][4]:.2f}")


if __name__ == "__main__":
    main()
