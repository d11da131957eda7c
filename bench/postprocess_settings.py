"""Post-processing settings on ONE trained model: average mAP and post-processing time per video.

Trains the small STPT of the end-to-end test (bench/configs/bench_e2e_tiny.py: embed 64, 32-d
features, 3 classes) on a synthetic set of the given difficulty, runs the network once over
the test videos, keeps its raw outputs (per-level class probabilities, decoded segments,
masks), then post-processes those SAME outputs with each setting: pre-NMS top-k per level and
pre-NMS threshold (Soft-NMS sigma 0.5, voting 0.7, 200 segments per video, as shipped).
The first setting is the baseline (ActionFormer's published 2000 / 0.001); every row prints
its average mAP, the difference to the baseline in points, its post-processing seconds per
video and the ratio to the baseline, measured in the same run.

This is a small-scale check (a few dozen synthetic videos, 3 classes), not THUMOS scale: it
shows whether a cheaper setting changes the ranking of one model's detections, nothing more.

\b
Examples:
  python bench/postprocess_settings.py
  python bench/postprocess_settings.py --difficulty hard --videos 40 --settings 2000:0.001,500:0.01
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "bench" / "configs" / "bench_e2e_tiny.py"


def parse_settings(spec: str) -> list[tuple[int, float]]:
    out = []
    for item in spec.split(","):
        try:
            topk, thresh = item.split(":")
            out.append((int(topk), float(thresh)))
        except ValueError:
            raise click.BadParameter(f"{item!r}: expected TOPK:THRESH, e.g. 2000:0.001", param_hint="--settings")
        if out[-1][0] <= 0 or not out[-1][1] >= 0:
            raise click.BadParameter(f"{item!r}: top-k must be > 0 and the threshold >= 0", param_hint="--settings")
    return out


class RecordingPostProcessor:
    """Stands in for the model's post-processor: records its inputs, returns the real result."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, *args):
        self.calls.append(args)
        return self.inner(*args)


@click.command(help=__doc__)
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="medium", show_default=True)
@click.option("--videos", type=int, default=24, show_default=True, help="Videos (half train, half test).")
@click.option("--epochs", type=int, default=16, show_default=True, help="Training epochs (the config's 16).")
@click.option("--settings", default="2000:0.001,1000:0.001,500:0.01,200:0.05", show_default=True,
              help="TOPK:THRESH pairs; the first is the baseline.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--work-dir", default=str(REPO / "work_dirs" / "bench_postprocess"), show_default=True)
def main(difficulty, videos, epochs, settings, seed, work_dir):
    import torch

    from tad.datasets.collate import tad_collate
    from tad.detectors.postprocess import SegmentPostProcessor
    from tad.engine.inference import build_test_dataset, load_detector
    from tad.engine.runner import build_runner, find_best_checkpoint, load_config
    from tad.eval.annotations import load_annotations
    from tad.eval.detection import evaluate_detections
    from tad.synthetic_features import make_synthetic_store, preset_config, random_layout

    if videos < 4 or epochs < 1:
        raise click.BadParameter("need --videos >= 4 and --epochs >= 1")
    rows = parse_settings(settings)
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    layout = random_layout(num_videos=videos, num_classes=3, duration_range=(30.0, 60.0), segments_per_video=(2, 5),
                           segment_length=(2.0, 8.0), seed=seed)
    summary = make_synthetic_store(layout, work / f"features_{difficulty}_{seed}.h5",
                                   preset_config(difficulty, feature_dim=32, seed=seed),
                                   ann_out=work / f"annotations_{difficulty}_{seed}.json")
    cfg = load_config(str(CONFIG), [f"ann_file={summary.annotations}", f"feature_store={summary.store}",
                                    f"max_epochs={epochs}", "default_hooks.logger.interval=1000"])
    t0 = time.perf_counter()
    runner = build_runner(cfg, work_dir=work / f"run_{difficulty}_{seed}", seed=seed, device="cpu")
    runner.train()
    train_s = time.perf_counter() - t0
    checkpoint = find_best_checkpoint(runner.work_dir)

    model, classes = load_detector(cfg, checkpoint, "cpu")
    dataset = build_test_dataset(cfg, cfg.test_subset, classes=classes or cfg.get("classes"))
    recorder = RecordingPostProcessor(model.postprocessor)
    model.postprocessor = recorder
    with torch.no_grad():
        for i in range(len(dataset)):
            model.test_step(tad_collate([dataset[i]]))
    annotations = load_annotations(dataset.ann_file)
    lscpu = "unknown CPU"
    try:
        import subprocess
        lscpu = next(line.split(":", 1)[1].strip() for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name"))
    except Exception:
        pass
    print(f"postprocess_settings: {len(recorder.calls)} test videos of a {videos}-video {difficulty} synthetic set, "
          f"model bench_e2e_tiny.py trained {epochs} epochs in {train_s:.0f} s ({checkpoint.name}); CPU {lscpu}, "
          f"torch {torch.__version__}; the same raw outputs post-processed with each setting")
    print(f"  {'top-k':>6s} {'thresh':>7s} {'avg mAP':>8s} {'delta':>7s} {'mAP@0.5':>8s} {'post s/video':>12s} {'ratio':>6s}")
    base = None
    for topk, thresh in rows:
        post = SegmentPostProcessor(pre_nms_topk=topk, pre_nms_thresh=thresh)
        best_time, predictions = float("inf"), {}
        for _ in range(3):  # min of 3 passes over the videos
            t0 = time.perf_counter()
            outs = [post(*args) for args in recorder.calls]
            best_time = min(best_time, time.perf_counter() - t0)
        for out in outs:
            predictions[out["video_id"]] = [
                dict(label=dataset.classes[int(label)], score=float(score), segment=[float(s[0]), float(s[1])])
                for s, score, label in zip(out["segments"].tolist(), out["scores"].tolist(), out["labels"].tolist())]
        result = evaluate_detections(annotations, predictions, subset=dataset.subset)
        per_video = best_time / max(1, len(outs))
        thresholds = [round(float(t), 2) for t in result.tiou_thresholds]
        map05 = float(result.mAP[thresholds.index(0.5)]) if 0.5 in thresholds else float("nan")
        if base is None:
            base = (result.average_mAP, per_video)
        print(f"  {topk:6d} {thresh:7.3f} {100 * result.average_mAP:8.2f} {100 * (result.average_mAP - base[0]):+7.2f} "
              f"{100 * map05:8.2f} {per_video:12.4f} {per_video / base[1]:6.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
