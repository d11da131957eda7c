"""Peak host memory of one backbone forward at batch 1: the `--dtype bfloat16` ViT-g budget check.

    python bench/vit_memory.py                                  # ViT-g, full size, bf16, batch 1
    python bench/vit_memory.py --dtype float32
    python bench/vit_memory.py --option depth=4                 # a reduced model (quick)

Runs what `tad extract --backbone NAME --dtype D --batch-size 1` runs per clip: the seeded
random-init model in float32 (as a checkpoint loads), one clip at the backbone's input size,
the forward under autocast when D is not float32. Prints the process's peak resident memory
(``ru_maxrss``) after building the model and after the forward, the seconds per clip, and the
ratio of the peak to the fp32 weights alone (measured in the same run). Name the CPU with
``lscpu | grep 'Model name'``.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tad.features.backbones  # noqa: E402,F401  (registers the backbones)
from tad.features.registry import BACKBONES  # noqa: E402


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def parse_option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        return key, int(value)
    except ValueError:
        return key, value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="videomae_vit_g")
    parser.add_argument("--dtype", default="bfloat16", choices=("float32", "bfloat16"))
    parser.add_argument("--option", action="append", default=[], help="backbone option KEY=VALUE (e.g. depth=4)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    base = peak_gib()
    model = BACKBONES.build(dict(type=args.backbone, **dict(parse_option(o) for o in args.option))).eval()
    weights_gib = sum(p.numel() * p.element_size() for p in model.parameters()) / 2 ** 30
    built = peak_gib()
    spec = model.spec
    size = getattr(model, "img_size", spec.crop)
    clip = torch.rand(1, 3, spec.clip_len, size, size)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.dtype == "bfloat16" else nullcontext()
    start = time.perf_counter()
    with torch.inference_mode(), autocast:
        feature = model(clip)
    seconds = time.perf_counter() - start
    peak = peak_gib()
    print(f"{args.backbone} {args.option or ''} dtype={args.dtype} batch=1 clip {tuple(clip.shape)} -> {tuple(feature.shape)}")
    print(f"fp32 weights {weights_gib:.2f} GiB; peak RSS: start {base:.2f} GiB, after build {built:.2f} GiB, "
          f"after forward {peak:.2f} GiB (peak / weights {peak / weights_gib:.2f}x); {seconds:.1f} s per clip")


if __name__ == "__main__":
    main()
