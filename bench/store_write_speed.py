"""Cost of crash safety: FeatureStoreWriter (one fsynced part file per video, then a
merge) against writing every video straight into one h5py file (no fsync, no resume,
a kill leaves a file that may not open), measured in the same run on the same data.

    python bench/store_write_speed.py [--videos 100] [--steps 300] [--dim 2048]

Extraction produces roughly a video every few seconds per GPU, so the per-video
overhead printed here is what matters, next to the model's time per video.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from tad.features.store import FeatureStore
from tad.features.store_writer import FeatureStoreWriter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--steps", type=int, default=300, help="T per video")
    parser.add_argument("--dim", type=int, default=2048, help="C")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((args.steps, args.dim), dtype=np.float32) for _ in range(4)]
    stamps = (4 * np.arange(args.steps) + 8) / 30.0
    megabytes = args.videos * args.steps * args.dim * 2 / 2**20
    with tempfile.TemporaryDirectory(prefix="tad_store_write_") as tmp:
        root = Path(tmp)

        start = time.perf_counter()
        with h5py.File(root / "naive.h5", "w") as h5:
            for i in range(args.videos):
                group = h5.create_group(f"videos/v{i}")
                group["features"] = feats[i % 4].astype(np.float16)
                group["timestamps"] = stamps
                group.attrs["fps"] = 30.0
        naive = time.perf_counter() - start

        start = time.perf_counter()
        writer = FeatureStoreWriter(root / "safe.h5", dict(backbone="bench"))
        for i in range(args.videos):
            writer.write_video(f"v{i}", feats[i % 4], stamps, dict(fps=30.0))
        parts = time.perf_counter() - start
        writer.finalize()
        safe = time.perf_counter() - start

        store = FeatureStore(root / "safe.h5")
        assert len(store) == args.videos
        assert np.array_equal(store["v5"].features, feats[1].astype(np.float16))

    print(f"{args.videos} videos x ({args.steps}, {args.dim}) float16 = {megabytes:.0f} MiB")
    print(f"naive h5py, one file      : {naive:6.2f} s  {naive / args.videos * 1e3:7.1f} ms/video")
    print(f"FeatureStoreWriter parts  : {parts:6.2f} s  {parts / args.videos * 1e3:7.1f} ms/video (durable on return)")
    print(f"  + finalize (merge)      : {safe - parts:6.2f} s")
    print(f"crash-safe total / naive  : {safe / naive:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
