"""Multi-label training targets vs the default (shortest segment's class only), on a
multi-label synthetic set (tests/datasets/shape_layouts.py), the shipped
configs/stpt/multithumos_i3d.py at CPU size (as tests/test_e2e_shapes.py), tIoU 0.1:0.1:0.9
on held-out videos. Layouts:

* ``nested``: long "Game" instances with 2-3 short actions of other classes inside (the
  end-to-end test's layout): lengths differ, so the two rarely claim a point on the same
  pyramid level and both target rules should score alike;
* ``pairs``: two actions of different classes with similar lengths overlapping by half or
  more (Charades-like): the default rule gives the overlap to the shorter one.

Prints, per variant, the average mAP, the mean AP of the first class and of the others, the
training time, and the ratio of multi-label to the default. Not the shipped defaults' scale:
a CPU-sized model (embed 64, 16-d features).

    python bench/multilabel_targets.py [--layout nested|pairs] [--videos 12] [--epochs 12] [--seeds 0]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "datasets"))
sys.path.insert(0, str(REPO / "tests"))


def _run(multi_label: bool, root: Path, ann: Path, store: Path, epochs: int, seed: int) -> dict:
    from tad.configs import find_config
    from test_e2e_shapes import CPU_SIZE

    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.py"
    config.write_text(f"_base_ = [{str(find_config('multithumos_i3d'))!r}]\nann_file = {str(ann)!r}\n"
                      f"feature_store = {str(store)!r}\nnum_classes = 4\nmax_seq_len = 352\n"
                      + CPU_SIZE.format(in_channels=16, num_classes=4, max_seq_len=352, epochs=epochs)
                      + f"model.update(assigner=dict(multi_label={multi_label}))\n")
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    tad = [sys.executable, "-c", "from tad.cli import main; main()"]
    t0 = time.perf_counter()
    subprocess.run(tad + ["train", str(config), "--work-dir", "work", "--seed", str(seed)], cwd=root, env=env,
                   check=True, capture_output=True)
    seconds = time.perf_counter() - t0
    checkpoint = sorted((root / "work").glob("epoch_*.pth"))[-1]
    subprocess.run(tad + ["eval", str(config), str(checkpoint), "--split", "testing", "--out", "preds.json",
                          "--metrics-out", "metrics.json"], cwd=root, env=env, check=True, capture_output=True)
    metrics = json.loads((root / "metrics.json").read_text())
    per_class = {k: float(np.mean(v)) for k, v in metrics["per_class_AP"].items()}
    first = sorted(per_class)[0]
    return dict(avg=metrics["average_mAP"], context=per_class[first],
                short=float(np.mean([v for k, v in per_class.items() if k != first])), seconds=seconds)


@click.command()
@click.option("--videos", default=12, show_default=True, type=click.IntRange(min=4))
@click.option("--epochs", default=12, show_default=True, type=click.IntRange(min=3))
@click.option("--seeds", default="0", show_default=True, help="Comma-separated training seeds.")
@click.option("--layout", type=click.Choice(["nested", "pairs"]), default="nested", show_default=True)
def main(videos: int, epochs: int, seeds: str, layout: str) -> None:
    import subprocess as sp

    from shape_layouts import multi_label_layout, overlapping_pairs_layout
    from tad.synthetic_features import make_synthetic_store, preset_config

    cpu = sp.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    print(f"CPU: {name}; layout {layout}, {videos} videos, {epochs} epochs, CPU-sized multithumos_i3d")
    make_layout = multi_label_layout if layout == "nested" else overlapping_pairs_layout
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        summary = make_synthetic_store(make_layout(num_videos=videos, seed=0), root / "f.h5",
                                       preset_config("easy", feature_dim=16, seed=0), ann_out=root / "a.json")
        for seed in [int(s) for s in seeds.split(",")]:
            results = {}
            for multi in (False, True):
                r = _run(multi, root / f"s{seed}_{multi}", summary.annotations, summary.store, epochs, seed)
                results[multi] = r
                label = "multi_label=True " if multi else "default (shortest)"
                print(f"seed {seed} {label}: avg mAP {100 * r['avg']:.2f}  first-class AP {100 * r['context']:.2f}  "
                      f"other-class AP {100 * r['short']:.2f}  train {r['seconds']:.1f} s")
            base, multi = results[False], results[True]
            print(f"seed {seed} ratio multi-label / default: avg mAP {multi['avg'] / max(base['avg'], 1e-9):.3f}, "
                  f"first-class AP {multi['context'] / max(base['context'], 1e-9):.3f}, "
                  f"train time {multi['seconds'] / base['seconds']:.2f}")


if __name__ == "__main__":
    main()
