"""Backbone throughput: clips/s of every registered backbone at batch 1 and 8, in float32,
bfloat16 and channels-last, with achieved GFLOP/s against a dense-matmul peak measured in the
same run, and against other implementations of the same backbone (the official code where it
runs here, alternative kernels) timed in the same process on the same input.

    python bench/backbone_speed.py                      # every backbone at its shipped clip size
    python bench/backbone_speed.py --quick              # half crop, 1 timed repeat (a smoke run)
    python bench/backbone_speed.py --backbones r2plus1d_18 s3d --layouts contiguous
    python bench/backbone_speed.py --compile --device cuda --batch-sizes 1 8 32

Rows come from the registry (every backbone, at its ``BackboneSpec`` clip length and crop) and
from ``bench/backbone_rows/`` (one small module per family lists its other implementations), so
a new backbone gets rows without editing this file. FLOPs per clip are counted with
torch.utils.flop_counter (2 FLOPs per multiply-add) on one forward; weights are the seeded
random init (speed does not depend on values).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import tad.features.backbones  # noqa: E402,F401  (registers the backbones)
from tad.features.registry import BACKBONES  # noqa: E402
from backbone_rows import load_variants  # noqa: E402


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


def to_layout(module_or_clips, layout: str):
    if layout == "channels_last":
        if isinstance(module_or_clips, torch.Tensor):
            return module_or_clips.contiguous(memory_format=torch.channels_last_3d)
        for param in module_or_clips.parameters():  # 3D convs: channels_last_3d; 2D convs (TSM): channels_last
            fmt = {5: torch.channels_last_3d, 4: torch.channels_last}.get(param.dim())
            if fmt is not None:
                param.data = param.data.contiguous(memory_format=fmt)
        return module_or_clips
    return module_or_clips


def make_clips(batch: int, clip_len: int, crop: int, device: torch.device, layout: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return to_layout(torch.randn(batch, 3, clip_len, crop, crop, generator=generator).to(device), layout)


def one_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {(lines[0] if lines else '')[:160]}"


def main(argv: list[str] | None = None) -> None:
    names = sorted(BACKBONES.module_dict)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="half the shipped crop, 1 timed repeat (smoke run)")
    parser.add_argument("--backbones", nargs="+", default=names, choices=names, metavar="NAME",
                        help="registered backbones [all]")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--layouts", nargs="+", default=["contiguous", "channels_last"],
                        choices=["contiguous", "channels_last"], help="memory formats of model and input")
    parser.add_argument("--channels-last", action="store_true", help="same as --layouts channels_last")
    parser.add_argument("--crop", type=int, default=None, help="clip side in pixels [the backbone's shipped crop]")
    parser.add_argument("--clip-len", type=int, default=None, help="frames per clip [the backbone's shipped clip_len]")
    parser.add_argument("--repeats", type=int, default=None, help="timed forwards per cell [3; 1 with --quick]")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model) (float32, largest batch)")
    parser.add_argument("--no-variants", action="store_true", help="skip the official / alternative implementations")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    args = parser.parse_args(argv)
    for flag in ("crop", "clip_len", "repeats", "threads"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if any(b <= 0 for b in args.batch_sizes):
        parser.error("--batch-sizes must be positive")
    layouts = ["channels_last"] if args.channels_last else args.layouts

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = args.repeats or (1 if args.quick else 3)
    warmup = 1
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"torch {torch.__version__}, device {device}, CPU {cpu}, threads {torch.get_num_threads()}, "
          f"repeats {repeats} (median), layouts {layouts}")
    if not torch.cuda.is_available():
        print("No GPU here: torch.cuda.is_available() is False; all figures are CPU figures "
              "(GPU rows need --device cuda on a GPU machine).")

    peaks = {}
    for dtype_name in args.dtypes:
        size = 4096 if device.type == "cuda" else (1024 if args.quick else 2048)
        if device.type == "cpu" and dtype_name != "float32":
            size = 512  # no native bf16/fp16 GEMM on AVX2-only CPUs: a large one takes minutes
        peaks[dtype_name] = matmul_gflops(device, getattr(torch, dtype_name), size, repeats=3)
        print(f"dense matmul {size}x{size} {dtype_name}: {peaks[dtype_name]:.1f} GFLOP/s (peak baseline)")

    variants = [] if args.no_variants else load_variants()
    rows = []  # (backbone, impl, batch, dtype, layout, clips/s, GFLOP/s, fraction of peak)
    for name in args.backbones:
        model = BACKBONES.build(dict(type=name)).eval()
        spec = model.spec
        clip_len = args.clip_len or spec.clip_len
        crop = args.crop or (max(spec.crop // 2, 32) if args.quick else spec.crop)
        fits = getattr(model, "check_size", None)  # nets whose grid reductions take only some sizes (Inception)
        while not args.crop and fits is not None and fits(crop, crop) is not None:
            crop += 1
        gflop = count_flops_per_clip(model, (3, clip_len, crop, crop)) / 1e9
        print(f"{name}: {gflop:.1f} GFLOP per clip of {clip_len}x{crop}x{crop}", flush=True)

        def time_cells(impl: str, module: torch.nn.Module, dtypes, cell_layouts) -> None:
            for layout in cell_layouts:
                module = to_layout(module.to(device), layout)
                for batch in args.batch_sizes:
                    clips = make_clips(batch, clip_len, crop, device, layout)
                    for dtype_name in dtypes:
                        try:
                            sec = time_forward(module, clips, getattr(torch, dtype_name), device, warmup, repeats)
                        except Exception as exc:  # an implementation that cannot take this input: report it
                            print(f"{name} {impl} batch {batch} {dtype_name} {layout}: failed: {one_line(exc)}")
                            continue
                        achieved = gflop * batch / sec
                        rows.append((name, impl, batch, dtype_name, layout, batch / sec, achieved,
                                     achieved / peaks.get(dtype_name, float("nan"))))

        time_cells("ours", model, args.dtypes, layouts)
        for variant in (v for v in variants if v.backbone == name):
            try:
                other = variant.build()
            except (ImportError, RuntimeError) as exc:
                print(f"{name} {variant.label}: not run here: {exc}")
                continue
            time_cells(variant.label, other, [d for d in variant.dtypes if d in args.dtypes] or ["float32"],
                       ["contiguous"])
            del other
        if args.compile:
            batch = max(args.batch_sizes)
            clips = make_clips(batch, clip_len, crop, device, "contiguous")
            try:
                compiled = torch.compile(to_layout(model, "contiguous"))
                start = time.perf_counter()
                with torch.inference_mode():
                    compiled(clips)
                compile_s = time.perf_counter() - start
                sec = time_forward(compiled, clips, torch.float32, device, warmup, repeats)
                achieved = gflop * batch / sec
                rows.append((name, "compiled", batch, "float32", "contiguous", batch / sec, achieved,
                             achieved / peaks.get("float32", float("nan"))))
                print(f"{name}: torch.compile works here (first call {compile_s:.1f} s)")
            except Exception as exc:  # report, do not fail the benchmark
                print(f"{name}: torch.compile failed here: {one_line(exc)}")
        del model

    print()
    header = (f"{'backbone':18} {'impl':9} {'batch':>5} {'dtype':9} {'layout':13} {'clips/s':>9} "
              f"{'GFLOP/s':>9} {'of peak':>8}")
    print(header)
    print("-" * len(header))
    for name, impl, batch, dtype_name, layout, cps, gfs, frac in rows:
        print(f"{name:18} {impl:9} {batch:>5} {dtype_name:9} {layout:13} {cps:>9.3f} {gfs:>9.1f} {frac:>7.0%}")
    print()
    index = {(r[0], r[1], r[2], r[3], r[4]): r[5] for r in rows}
    for name in args.backbones:
        for batch in args.batch_sizes:
            base = index.get((name, "ours", batch, "float32", "contiguous"))
            if base is None:
                continue
            for dtype_name, layout in (("bfloat16", "contiguous"), ("float32", "channels_last")):
                other = index.get((name, "ours", batch, dtype_name, layout))
                if other is not None:
                    print(f"{name} batch {batch}: {dtype_name} {layout} x{other / base:.2f} of float32 contiguous")
            for variant in (v for v in variants if v.backbone == name):
                other = index.get((name, variant.label, batch, "float32", "contiguous"))
                if other is not None:
                    print(f"{name} batch {batch} float32: ours {base:.3f} clips/s vs {variant.label} {other:.3f} "
                          f"clips/s -> x{base / other:.2f} ({variant.note})")


if __name__ == "__main__":
    main()
