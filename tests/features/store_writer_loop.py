"""Subprocess used by the store tests: writes synthetic videos in a loop with
FeatureStoreWriter, skipping completed ones, then finalizes.

    python store_writer_loop.py OUT.h5 --videos 12 [--rank R --world-size W]
        [--sleep S] [--die-at-replace N] [--die-before-cleanup] [--fail-every K] [--dist]

Video ``i`` has id ``grp<i % 3>/vid<i>``, T = 20 + 3 i rows and values seeded by i,
so every run produces identical data. ``--die-at-replace N`` SIGKILLs this process
just before the N-th ``os.replace`` (a part file or the final merge), and
``--die-before-cleanup`` just before the parts folder is removed.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import numpy as np


def video_data(i: int, dim: int = 24, grid: int | None = None) -> tuple[str, np.ndarray, np.ndarray, dict]:
    rng = np.random.default_rng(1000 + i)
    num_steps = 20 + 3 * i
    shape = (num_steps, dim) if grid is None else (num_steps, dim, grid, grid)
    feats = rng.standard_normal(shape).astype(np.float32)
    stamps = (4 * np.arange(num_steps) + 8) / 30.0
    attrs = dict(fps=30.0, num_frames=4 * num_steps + 12, duration=(4 * num_steps + 12) / 30.0,
                 source_path=f"/videos/grp{i % 3}/vid{i}.mp4", source_size=1000 + i, source_mtime=1.7e9 + i,
                 padded=False)
    return f"grp{i % 3}/vid{i}", feats, stamps, attrs


META = dict(backbone="tiny3d", checkpoint_name="tiny.pth", checkpoint_sha256="ab" * 32,
            options={"clip_len": 16, "clip_stride": 4, "fps": 30, "workers": 1})


def main(argv: list[str] | None = None) -> int:
    """Run the loop; returns the number of videos written by this call."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--world-size", type=int, default=1)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--die-at-replace", type=int, default=0)
    parser.add_argument("--die-before-cleanup", action="store_true")
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--dist", action="store_true", help="init a gloo process group from env (RANK, ...)")
    args = parser.parse_args(argv)
    if args.dist:
        import torch.distributed as dist
        dist.init_process_group("gloo")
        args.rank, args.world_size = dist.get_rank(), dist.get_world_size()

    from tad.features import store_writer
    from tad.features.store_writer import FeatureStoreWriter

    if args.die_at_replace:
        real_replace = os.replace
        calls = [0]

        def replace(src, dst):  # noqa: ANN001
            calls[0] += 1
            if calls[0] == args.die_at_replace:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst)
        store_writer.os.replace = replace  # type: ignore[attr-defined]
    if args.die_before_cleanup:
        def rmtree(*_a, **_k):  # noqa: ANN002, ANN003
            os.kill(os.getpid(), signal.SIGKILL)
        store_writer.shutil.rmtree = rmtree  # type: ignore[attr-defined]

    writer = FeatureStoreWriter(args.out, META, rank=args.rank, world_size=args.world_size, poll_interval=0.05)
    done = writer.completed
    wrote = 0
    for i in range(args.videos):
        if i % args.world_size != args.rank:
            continue
        vid, feats, stamps, attrs = video_data(i)
        if vid in done:
            continue
        if args.fail_every and i % args.fail_every == 0:
            writer.mark_failed(attrs["source_path"], f"synthetic failure of video {i}")
            continue
        writer.write_video(vid, feats, stamps, attrs)
        print(f"wrote {vid}", flush=True)
        wrote += 1
        if args.sleep:
            time.sleep(args.sleep)
    writer.finalize()
    print("finalized", flush=True)
    return wrote


if __name__ == "__main__":
    main()
    sys.exit(0)
