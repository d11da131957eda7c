"""Online detection accuracy and latency on the held-out THUMOS-shaped synthetic set.

Trains, with the same data, schedule and sizes, the offline STPT (``bench_synth_stpt.py``, the
baseline measured in this run) and the causal STPT (``bench_synth_stpt_causal.py``), then on the
test subset prints:

* avg mAP (tIoU 0.3:0.1:0.7) of the offline STPT, of the causal model run offline (whole video,
  ``tad eval``'s code), and of the segments the stream emits (continual runner + the incremental
  tracker of ``tad stream``, fed the stored features step by step), with the ratio stream / offline
  STPT (target >= 0.90);
* per-frame online action detection mAP (THUMOS14 OAD protocol: per-step AP per class over all
  test videos, mean over classes; background steps are negatives). The causal model's step score
  is its activity head's output at that step (online: it sees steps <= t); without an activity
  head, and for the offline STPT (which sees the future; printed beside it), it is the max over
  pyramid levels of the class score of the newest point at or before the step;
* latency in video seconds: true start -> first ``start`` event of that class during the action;
  true end -> first ``segment`` event of that class with tIoU >= 0.5 (median, p95, and how many
  actions got one), at ``--threshold`` and ``--max-latency``.

``--from-demo WORKDIR`` skips training and evaluates the two detectors ``tad demo --stream`` trained
(demo_tiny3d.py and demo_tiny3d_causal.py: same data and sizes; the causal one trains 80 epochs, the
offline one 40) on the demo's Test videos.

Scale: the CPU-sized run of bench/detector_ablation.py (128-d features, embed 64, 576-step crops,
``--max-videos`` per subset, the shipped STPT schedule, 16 epochs at lr 2e-4, unless ``--epochs`` /
``--lr``); the header says which. That schedule is sized for THUMOS14's ~200 training videos (~1,600
iterations); its own scaling rule (configs/_base_/schedules/adamw_cosine_35e.py) gives ~60 epochs for 50
videos (second line). Examples:
  python bench/stream_accuracy.py --max-videos 50 --replay
  python bench/stream_accuracy.py --epochs 60 --max-videos 50 --replay
  python bench/stream_accuracy.py --epochs 60 --lr 8e-4 --max-videos 50 --replay
  python bench/stream_accuracy.py --epochs 24 --max-videos 30 --feature-dim 256 --replay --candidate-floor 0.05
  python bench/stream_accuracy.py --epochs 24 --max-videos 30 --feature-dim 256 --replay --segments-from runs
  python bench/stream_accuracy.py --from-demo tad_demo
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _ablation():
    spec = importlib.util.spec_from_file_location("detector_ablation", REPO / "bench" / "detector_ablation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train(config: str, store: Path, ann: Path, feature_dim: int, num_classes: int, embed_dim: int,
          max_seq_len: int, epochs: int | None, seed: int, work_dir: Path, lr: float | None = None):
    from tad.engine.runner import build_runner, find_best_checkpoint, load_config

    options = dict(ann_file=str(ann), feature_store=str(store), max_seq_len=max_seq_len)
    if epochs:
        options["max_epochs"] = epochs
    if lr:
        options["optim_wrapper.optimizer.lr"] = lr
    cfg = load_config(config, cfg_options=options)  # bench/configs/<name>, resolved by name in a checkout
    cfg.model.update(in_channels=feature_dim, num_classes=num_classes, max_seq_len=max_seq_len)
    _ablation()._set_key(cfg.model, "embed_dim", embed_dim)
    n = cfg.train_cfg.max_epochs
    cfg.train_cfg.val_interval = n + 1
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=n, by_epoch=True, max_keep_ckpts=1,
                                        save_last=True)
    if (Path(work_dir) / f"epoch_{n}.pth").is_file():  # a killed run resumes: that model is trained already
        print(f"  {config}: reusing its trained checkpoint in {work_dir}", flush=True)
        return cfg, find_best_checkpoint(work_dir), float("nan")
    runner = build_runner(cfg, work_dir=work_dir, seed=seed, device="cpu")
    t0 = time.perf_counter()
    runner.train()
    return cfg, find_best_checkpoint(work_dir), time.perf_counter() - t0


def frame_scores(level_probs: list[np.ndarray], steps: int) -> np.ndarray:
    """(T, K): per step, max over levels of the newest point at or before it (level l point i at i * 2**l)."""
    out = np.zeros((steps, level_probs[0].shape[1]))
    t = np.arange(steps)
    for level, probs in enumerate(level_probs):
        idx = np.minimum(t // 2 ** level, len(probs) - 1)
        out = np.maximum(out, probs[idx])
    return out


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = positive[order].astype(np.float64)
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def oad_map(per_video: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """per_video: (scores (T, K), labels (T, K) bool) -> mean over classes of per-frame AP."""
    scores = np.concatenate([s for s, _ in per_video])
    labels = np.concatenate([lab for _, lab in per_video])
    aps = [average_precision(scores[:, c], labels[:, c]) for c in range(scores.shape[1])]
    aps = [a for a in aps if np.isfinite(a)]
    return float(np.mean(aps)) if aps else float("nan")


def step_labels(timestamps: np.ndarray, video, num_classes: int) -> np.ndarray:
    labels = np.zeros((len(timestamps), num_classes), dtype=bool)
    for (s, e), c in zip(video.segments, video.labels):
        labels[(timestamps >= s) & (timestamps <= e), int(c)] = True
    return labels


def level_probs_offline(model, feats: np.ndarray) -> list[np.ndarray]:
    import torch

    x = torch.from_numpy(np.ascontiguousarray(feats.T, dtype=np.float32))[None]
    with torch.no_grad():
        out = model(dict(feats=x, masks=torch.ones(1, x.shape[2], dtype=torch.bool)), mode="tensor")
    probs = torch.sigmoid(out["logits"][0]).numpy()
    parts = np.split(probs, np.cumsum(out["lengths"])[:-1])
    steps = len(feats)
    return [p[: -(-steps // 2 ** level)] for level, p in enumerate(parts)]


RUN_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # --segments-from runs: activity levels that cut runs


def replayed_steps(model, feats: np.ndarray):
    """Per input step, the ``PointOutput``s the continual runner would produce, taken from ONE offline
    pass of the causal model over the whole video (equal to the runner's to <= 1e-5 in float32:
    tests/detectors/test_causal_stpt.py); for long sets where stepping the runner in Python is slow."""
    import torch

    from tad.detectors.continual_state import PointOutput

    x = torch.from_numpy(np.ascontiguousarray(feats.T, dtype=np.float32))[None]  # (1, C, T)
    with torch.no_grad():
        out = model(dict(feats=x, masks=torch.ones(1, x.shape[2], dtype=torch.bool)), mode="tensor")
    logits = torch.split(out["logits"][0], out["lengths"])  # per level (T_l, K)
    offsets = torch.split(out["offsets"][0], out["lengths"])
    activity = out.get("activity")
    for t in range(len(feats)):
        points = []
        for level in range(len(logits)):
            stride = 2 ** level
            if t % stride:
                break
            i = t // stride
            act = activity[0, t][None] if level == 0 and activity is not None else None
            points.append(PointOutput(level, i, t, stride, logits[level][i][None], offsets[level][i][None], act))
        yield points


def stream_video(model, classes, feats: np.ndarray, timestamps: np.ndarray, threshold: float, max_latency: float,
                 replay: bool = False, candidate_floor: float | None = None, segments_from: str = "points"):
    """Continual runner + tracker over stored features: (events with video_time, segments, level probs,
    per-step activity-head probabilities (T, K) or None when the model has no activity head)."""
    import torch

    from tad.detectors.online_events import OnlineSegmentTracker

    runner = model.continual()
    post = model.postprocessor
    tracker = OnlineSegmentTracker(classes, threshold=threshold, max_latency=max_latency,
                                   pre_thresh=1.0 if segments_from == "runs" else (candidate_floor or post.pre_nms_thresh),
                                   run_thresholds=RUN_THRESHOLDS if segments_from == "runs" else (), nms_sigma=post.nms_sigma,
                                   min_score=post.nms_min_score, voting_thresh=post.voting_thresh)
    events = []
    level_probs: list[list[np.ndarray]] = [[] for _ in range(runner.num_levels)]
    activity: list[np.ndarray] = []
    x = torch.from_numpy(np.asarray(feats, dtype=np.float32))
    steps = replayed_steps(model, feats) if replay else (runner.step(x[t][None]) for t in range(len(x)))
    for t, points in enumerate(steps):
        for p in points:
            level_probs[p.level].append(torch.sigmoid(p.logits[0]).numpy())
            if p.activity is not None:
                activity.append(torch.sigmoid(p.activity[0]).numpy())
        for ev in tracker.update(points, float(timestamps[t])):
            events.append(dict(ev, video_time=float(timestamps[t])))
    for ev in tracker.finish():
        events.append(dict(ev, video_time=float(timestamps[-1])))
    segments = [dict(label=classes[c.label], score=c.score, segment=[max(0.0, c.start), c.end])
                for c in tracker.segments(int(post.max_seg_num))]
    return events, segments, [np.stack(p) for p in level_probs], (np.stack(activity) if activity else None)


def latencies(events: list[dict], video, classes) -> tuple[list[float], list[float], int]:
    starts, ends = [], []
    for (s, e), c in zip(video.segments, video.labels):
        name = classes[int(c)]
        hit = next((ev["video_time"] - s for ev in events if ev["event"] == "start" and ev["label"] == name
                    and s <= ev["video_time"] <= e), None)
        if hit is not None:
            starts.append(hit)
        for ev in events:
            if ev["event"] == "segment" and ev["label"] == name:
                a, b = ev["segment"]
                inter = max(0.0, min(b, e) - max(a, s))
                if inter / max(1e-9, (b - a) + (e - s) - inter) >= 0.5:
                    ends.append(ev["video_time"] - e)
                    break
    return starts, ends, len(video.labels)


def _positive(value, flag: str):
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a finite number > 0, got {value}", param_hint=flag)
    return value


def _pct(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


@click.command(help=__doc__)
@click.option("--epochs", type=int, default=None, help="Training epochs of both models (default: the configs', 16).")
@click.option("--lr", type=float, default=None, callback=lambda ctx, param, v: _positive(v, "--lr"),
              help="Learning rate of both models (default: the configs', 2e-4).")
@click.option("--max-videos", type=int, default=50, show_default=True, help="Videos per subset.")
@click.option("--feature-dim", type=int, default=128, show_default=True)
@click.option("--embed-dim", type=int, default=64, show_default=True)
@click.option("--max-seq-len", type=int, default=576, show_default=True)
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="easy", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threshold", type=float, default=0.3, show_default=True, help="Event threshold (tad stream's).")
@click.option("--max-latency", type=float, default=2.0, show_default=True, help="tad stream --max-latency.")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--data-dir", default=str(REPO / "work_dirs" / "bench_synth"), type=click.Path(path_type=Path))
@click.option("--work-dir", default=str(REPO / "work_dirs" / "bench_stream"), type=click.Path(path_type=Path))
@click.option("--json-out", type=click.Path(dir_okay=False), default=None)
@click.option("--candidate-floor", type=float, default=None,
              help="Minimum class probability of a tracker candidate (default: the config's pre_nms_thresh, "
                   "0.001, as `tad stream`); 0.05 is several times faster on 20 classes.")
@click.option("--segments-from", type=click.Choice(["points", "runs"]), default="points", show_default=True,
              help="Stream segments from the pyramid points' candidates (what `tad stream` does) or from the runs of "
                   "the activity head above each of several levels (OnlineSegmentTracker(run_thresholds=...)).")
@click.option("--replay", is_flag=True,
              help="Feed the tracker the causal model's outputs from one offline pass per video instead of "
                   "stepping the continual runner (the same numbers to <= 1e-5, tested; much faster on long sets).")
@click.option("--from-demo", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Skip training: evaluate the two detectors `tad demo --stream` trained in this folder "
                   "(demo_tiny3d.py vs demo_tiny3d_causal.py, on the demo's synthetic videos).")
def main(epochs, lr, max_videos, feature_dim, embed_dim, max_seq_len, difficulty, seed, threshold, max_latency, threads,
         data_dir, work_dir, json_out, from_demo, replay, candidate_floor, segments_from):
    import torch

    from tad.engine.inference import run_inference

    torch.set_num_threads(threads)
    if from_demo is not None:
        print(f"stream_accuracy: the detectors of `tad demo --stream` in {from_demo} (demo_tiny3d.py and "
              f"demo_tiny3d_causal.py: same data, 40 and 80 epochs; Test subset); events at threshold {threshold}, max "
              f"latency {max_latency} s; CPU {cpu_name()} ({os.cpu_count()} cores, shared; load average {os.getloadavg()[0]:.1f}), {threads} threads")
        return evaluate_demo(from_demo, threshold, max_latency, json_out, replay, candidate_floor, segments_from)
    data_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    ab = _ablation()
    store, ann_file, num_classes = ab.ensure_heldout_set(data_dir, ab.DEFAULT_ANN, feature_dim, max_videos or None,
                                                         difficulty, seed)
    print(f"stream_accuracy: held-out THUMOS-shaped synthetic set ({difficulty}), {feature_dim}-d, {max_videos} "
          f"videos per subset, embed {embed_dim}, crops {max_seq_len}, epochs {epochs or 'config (16)'}, lr {lr or 'config (2e-4)'}, seed {seed}; "
          f"events at threshold {threshold}, max latency {max_latency} s; CPU {cpu_name()} ({os.cpu_count()} cores, "
          f"shared), {threads} threads")
    results = {}
    models = {}
    for name, config in (("offline STPT", "bench_synth_stpt.py"), ("causal STPT", "bench_synth_stpt_causal.py")):
        cfg, ckpt, train_s = train(config, store, ann_file, feature_dim, num_classes, embed_dim, max_seq_len,
                                   epochs, seed, work_dir / f"{config[:-3]}_n{max_videos}_e{epochs}_lr{lr}_s{seed}", lr)
        _, res = run_inference(cfg, ckpt, split="test", out=None, progress=False)
        results[name] = dict(average_mAP=float(res.average_mAP), train_s=train_s)
        models[name] = (cfg, ckpt)
        trained = f"trained {train_s:.0f} s" if np.isfinite(train_s) else "reused"
        print(f"  {name:14s} {trained}; offline avg mAP {100 * res.average_mAP:.2f}", flush=True)

    evaluate(models, results, ann_file, store, threshold, max_latency, json_out, replay, candidate_floor, segments_from)


def evaluate_demo(workdir: Path, threshold: float, max_latency: float, json_out, replay: bool = False,
                  candidate_floor: float | None = None, segments_from: str = "points") -> None:
    """Evaluate the checkpoints ``tad demo --stream`` trained (no training here)."""
    from tad.engine.inference import run_inference
    from tad.engine.runner import find_best_checkpoint, load_config

    options = dict(ann_file=str(workdir / "annotations.json"), feature_store=str(workdir / "features.h5"))
    results, models = {}, {}
    for name, config, train_dir in (("offline STPT", "demo_tiny3d.py", "train"),
                                    ("causal STPT", "demo_tiny3d_causal.py", "train_causal")):
        cfg = load_config(config, cfg_options=options)  # bench/configs/<name>, resolved by name in a checkout
        ckpt = find_best_checkpoint(workdir / train_dir)
        _, res = run_inference(cfg, ckpt, split="test", out=None, progress=False)
        results[name] = dict(average_mAP=float(res.average_mAP))
        models[name] = (cfg, ckpt)
        print(f"  {name:14s} {config} ({ckpt.name}): offline avg mAP {100 * res.average_mAP:.2f}", flush=True)
    evaluate(models, results, options["ann_file"], options["feature_store"], threshold, max_latency, json_out, replay,
             candidate_floor, segments_from)


def evaluate(models: dict, results: dict, ann_file, store, threshold: float, max_latency: float, json_out=None,
             replay: bool = False, candidate_floor: float | None = None, segments_from: str = "points"):
    """Offline STPT vs the causal model streamed over the test videos' stored features; prints the figures."""
    from tad.engine.inference import load_detector, resolve_subset
    from tad.eval.annotations import load_annotations
    from tad.eval.detection import evaluate_detections
    from tad.features.store import FeatureStore

    ann = load_annotations(ann_file)
    cfg, ckpt = models["causal STPT"]
    subset = resolve_subset(cfg, "test")
    causal, classes = load_detector(cfg, ckpt, "cpu")
    classes = classes or list(ann.classes)
    off_cfg, off_ckpt = models["offline STPT"]
    offline, _ = load_detector(off_cfg, off_ckpt, "cpu")
    features = FeatureStore(store)
    predictions, oad_causal, oad_offline = {}, [], []
    start_delays, end_delays, actions = [], [], 0
    t0 = time.perf_counter()
    steps = 0
    for vid, video in sorted(ann.subset(subset).items()):
        item = features[vid]
        feats, ts = np.asarray(item.features, dtype=np.float32), np.asarray(item.timestamps)
        events, segs, probs, activity = stream_video(causal, classes, feats, ts, threshold, max_latency, replay,
                                                     candidate_floor, segments_from)
        duration = float(video.duration or ts[-1])
        predictions[vid] = [dict(s, segment=[s["segment"][0], min(s["segment"][1], duration)]) for s in segs
                            if min(s["segment"][1], duration) > s["segment"][0]]
        labels = step_labels(ts, video, len(classes))
        oad_causal.append((activity if activity is not None else frame_scores(probs, len(ts)), labels))
        oad_offline.append((frame_scores(level_probs_offline(offline, feats), len(ts)), labels))
        s_d, e_d, n = latencies(events, video, classes)
        start_delays += s_d
        end_delays += e_d
        actions += n
        steps += len(ts)
    stream_s = time.perf_counter() - t0
    stream_map = evaluate_detections(ann, predictions, subset=subset).average_mAP
    base = results["offline STPT"]["average_mAP"]
    oad_c, oad_o = oad_map(oad_causal), oad_map(oad_offline)
    source = "outputs replayed from one offline pass" if replay else "continual runner stepped"
    if candidate_floor:
        source += f", candidates >= {candidate_floor}"
    if segments_from == "runs":
        source += ", segments from activity runs"
    print(f"  stream (causal STPT, {source}, + incremental tracker): avg mAP {100 * stream_map:.2f}; "
          f"{steps} steps in {stream_s:.1f} s ({1e3 * stream_s / max(steps, 1):.2f} ms/step)")
    print(f"segment mAP: stream {100 * stream_map:.2f} / offline STPT {100 * base:.2f} = ratio "
          f"{stream_map / base if base else float('nan'):.3f} (target >= 0.90); causal model offline "
          f"{100 * results['causal STPT']['average_mAP']:.2f}")
    print(f"per-frame OAD mAP: causal online {100 * oad_c:.2f} / offline STPT (sees the future) {100 * oad_o:.2f} "
          f"= ratio {oad_c / oad_o if oad_o else float('nan'):.3f}")
    print(f"latency (video s): start event after true start: median {_pct(start_delays, 50):.2f}, p95 "
          f"{_pct(start_delays, 95):.2f} ({len(start_delays)}/{actions} actions); segment event after true end: "
          f"median {_pct(end_delays, 50):.2f}, p95 {_pct(end_delays, 95):.2f} ({len(end_delays)}/{actions} actions)")
    if json_out:
        Path(json_out).write_text(json.dumps(dict(results=results, stream_mAP=stream_map, oad_causal=oad_c,
                                                  oad_offline=oad_o, start_delays=start_delays,
                                                  end_delays=end_delays, actions=actions), indent=1))


if __name__ == "__main__":
    sys.exit(main())
