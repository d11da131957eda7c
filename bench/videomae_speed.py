"""VideoMAE ViT clips/s: fused ``scaled_dot_product_attention`` (default) against the official
softmax(QK^T)V attention form, measured in the same run on the same weights.

    python bench/videomae_speed.py                         # ViT-B, full depth, batch 1 and 8, fp32 and bf16
    python bench/videomae_speed.py --size b --depth 1      # one block: a CPU-sized run (not the shipped depth)
    python bench/videomae_speed.py --size g --device cuda --compile

The official code itself needs timm (not installed here), so the baseline is our model with
``attn_impl='math'``, which is the official attention line for line (the parity test checks both
forms against the official outputs). Weights are the seeded random init; name the CPU with
``lscpu | grep 'Model name'``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tad.features.backbones.videomae import VideoMAEViT  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(model, clips, dtype: torch.dtype, device: torch.device, repeats: int) -> float:
    autocast = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()
    times = []
    with torch.inference_mode(), autocast:
        for i in range(repeats + 1):  # one warm-up
            sync(device)
            start = time.perf_counter()
            model(clips)
            sync(device)
            if i:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="b", choices=("s", "b", "l", "h", "g"))
    parser.add_argument("--depth", type=int, default=None, help="blocks (default: the release's depth)")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model) (SDPA, float32)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    for flag in ("depth", "repeats", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag} must be >= 1, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = VideoMAEViT(size=args.size, depth=args.depth).eval().to(device)
    depth = len(model.blocks)
    print(f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
          f"ViT-{args.size} depth {depth}{' (reduced)' if args.depth else ''}, clips 16x224x224, "
          f"median of {args.repeats}")
    rows = []
    for batch in args.batch_sizes:
        clips = torch.randn(batch, 3, 16, 224, 224, device=device)
        for dtype_name in args.dtypes:
            per_impl = {}
            for impl in ("sdpa", "math"):
                model.set_attn_impl(impl)
                per_impl[impl] = batch / time_forward(model, clips, getattr(torch, dtype_name), device, args.repeats)
            rows.append((batch, dtype_name, per_impl["sdpa"], per_impl["math"]))
            print(f"batch {batch} {dtype_name}: SDPA {per_impl['sdpa']:.3f} clips/s, official attention "
                  f"{per_impl['math']:.3f} clips/s -> x{per_impl['sdpa'] / per_impl['math']:.2f}", flush=True)
        if args.compile:
            model.set_attn_impl("sdpa")
            try:
                compiled = torch.compile(model)
                rate = batch / time_forward(compiled, clips, torch.float32, device, args.repeats)
                print(f"batch {batch} float32 torch.compile: {rate:.3f} clips/s")
            except Exception as exc:  # report, do not fail the benchmark
                print(f"torch.compile failed here: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


if __name__ == "__main__":
    main()
