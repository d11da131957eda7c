"""Random-window read speed of the HDF5 feature store vs the usual alternatives.

Training reads a random window of each video's features every step. Baselines
measured in the same run on the same data:

* npy:  ActionFormer-style loading, ``np.load`` of the video's float32 ``.npy`` and a slice;
* h5py: naive HDF5 reading, ``h5py.File(...)["videos/<id>/features"][a:b]`` on the same store
  (handle kept open, as a careful user would).

``FeatureStore.read`` maps contiguous datasets and copies only the window's rows.

    python bench/store_read_speed.py [--videos 24] [--steps 1200] [--dim 2048] [--seconds 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from tad.features.store import FeatureStore, escape_id
from tad.features.store_writer import FeatureStoreWriter


def make_data(root: Path, videos: int, steps: int, dim: int) -> Path:
    rng = np.random.default_rng(0)
    store_path = root / "features.h5"
    with FeatureStoreWriter(store_path, dict(backbone="bench")) as writer:
        for i in range(videos):
            feats = rng.standard_normal((steps, dim), dtype=np.float32)
            np.save(root / f"v{i}.npy", feats)
            writer.write_video(f"v{i}", feats, (4 * np.arange(steps) + 8) / 30.0, dict(fps=30.0))
    return store_path


def rate(read_one, seconds: float, windows: list[tuple[int, int, int]]) -> float:
    """Reads per second, cycling through a fixed list of (video, start, stop) windows."""
    done, start = 0, time.perf_counter()
    while True:
        for window in windows:
            read_one(*window)
            done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--steps", type=int, default=1200, help="T per video")
    parser.add_argument("--dim", type=int, default=2048, help="C")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tad_store_bench_") as tmp:
        root = Path(tmp)
        store_path = make_data(root, args.videos, args.steps, args.dim)
        store = FeatureStore(store_path)
        raw = h5py.File(store_path, "r")
        print(f"{args.videos} videos x ({args.steps}, {args.dim}); store {store_path.stat().st_size / 2**20:.0f} MiB "
              f"float16, npy {sum(p.stat().st_size for p in root.glob('*.npy')) / 2**20:.0f} MiB float32 "
              "(both in the page cache after writing)")

        def via_store(i: int, a: int, b: int) -> np.ndarray:
            return store.read(f"v{i}", a, b).features

        def via_h5py(i: int, a: int, b: int) -> np.ndarray:
            return raw["videos"][escape_id(f"v{i}")]["features"][a:b]

        def via_npy(i: int, a: int, b: int) -> np.ndarray:
            return np.load(root / f"v{i}.npy")[a:b]

        rng = np.random.default_rng(1)
        for window in (64, 256, args.steps):
            win = min(window, args.steps)
            windows = [(int(rng.integers(args.videos)), s, s + win)
                       for s in rng.integers(0, args.steps - win + 1, size=64).tolist()]
            for i, a, b in windows[:4]:  # same values from every path
                assert np.array_equal(via_store(i, a, b), via_h5py(i, a, b))
                assert np.array_equal(via_store(i, a, b), via_npy(i, a, b).astype(np.float16))
            store_rate = rate(via_store, args.seconds, windows)
            h5py_rate = rate(via_h5py, args.seconds, windows)
            npy_rate = rate(via_npy, args.seconds, windows)
            print(f"window {win:5d} rows: store {store_rate:8.0f} reads/s | h5py {h5py_rate:8.0f} reads/s | "
                  f"npy {npy_rate:8.0f} reads/s | store/h5py {store_rate / h5py_rate:5.1f}x | "
                  f"store/npy {store_rate / npy_rate:5.1f}x")
        raw.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
