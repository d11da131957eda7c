"""Choosing a training config from the data: ``tad init-config``.

Contract: :func:`data_statistics` measures an annotation file against a feature store
(video lengths in feature steps, action lengths in steps, classes, subsets, feature
width); :func:`choose_settings` turns those statistics into the model and schedule
choices, each with the reason as a sentence; :func:`render_config` writes them as an
mmengine Python config over the shipped ``_base_`` files (model, dataset, runtime), every
choice followed by its reason as a comment. Nothing here trains; the same statistics
always give the same config.

The rules (steps = feature steps of the store):

* strategy and ``max_seq_len``: videos of at most :data:`WHOLE_VIDEO_LIMIT` steps are
  trained whole (``'window'``, ``max_seq_len`` = the longest video rounded up, a 90-100 %
  random crop as augmentation); longer videos whose actions are long
  (median >= :data:`RESIZE_FRACTION` of the video, ActivityNet-like) are resized to
  :data:`RESIZE_LENGTH` steps (``'resize'``); videos over :data:`SLIDING_LIMIT` steps get
  random training windows and overlapping windows at inference (``'sliding'``); the others
  random windows of :data:`LONG_WINDOW` steps and whole videos at inference (``'window'``).
* pyramid depth: enough levels that the coarsest regular level's range reaches the long
  actions (95th percentile of action length), at least 2 and at most 6, and no more than
  the shortest video can be halved into while keeping 2 steps at the top level.
* regression ranges: ActionFormer's doubling ranges ``(0, 4), (4, 8), ...`` with the last
  level open-ended, one per level.
* evaluator: THUMOS14's tIoU 0.3:0.7, or the multi-label protocol 0.1:0.9 (and multi-label
  training targets) when >= 5 % of the instances lie mostly inside one of another class.
* width, local window, epochs, learning rate and EMA from the number of training videos
  and steps (a small-data recipe: short runs need a larger learning rate than ActionFormer's
  1e-4 and a faster EMA).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tad.errors import TadInputError

__all__ = ["DataStatistics", "Settings", "data_statistics", "choose_settings", "render_config",
           "WHOLE_VIDEO_LIMIT", "LONG_WINDOW"]

#: videos up to this many steps are trained whole (one pass, no random windows)
WHOLE_VIDEO_LIMIT = 1024
#: training window for longer videos (ActionFormer's THUMOS14 crop)
LONG_WINDOW = 2304
#: longer videos get sliding windows at inference (strategy 'sliding')
SLIDING_LIMIT = 4 * LONG_WINDOW
#: median action / video length from which long videos are resized (ActivityNet-like)
RESIZE_FRACTION = 0.15
#: steps every video is resized to (ActionFormer's ActivityNet setting)
RESIZE_LENGTH = 192
#: training iterations a short run aims at (epochs = this / iterations per epoch, clamped)
TARGET_ITERS = 200


@dataclass
class DataStatistics:
    ann_file: str
    feature_store: str
    classes: list[str]
    subsets: dict[str, int]  # subset -> number of videos with features
    train_subset: str
    test_subset: str
    num_train_videos: int
    video_steps: np.ndarray  # (V,) steps per annotated+stored video
    action_steps: np.ndarray  # (N,) action lengths in steps (training subset)
    actions_per_video: int  # most actions in one video
    step_seconds: float  # median seconds between features
    in_channels: int
    spatial_grid: int | None
    overlapping: bool  # instances of different classes overlap in time (multi-label)
    video_fraction: float  # median action length / its video's length


@dataclass
class Settings:
    values: dict
    reasons: dict = field(default_factory=dict)


def data_statistics(ann_file: str | Path, feature_store: str | Path, train_subset: str | None = None,
                    test_subset: str | None = None) -> DataStatistics:
    """Measure ``ann_file`` against ``feature_store`` (see the module docstring)."""
    from tad.datasets.data_check import guess_subsets
    from tad.eval.annotations import load_annotations
    from tad.features.store import FeatureStore

    ann = load_annotations(ann_file)
    if not Path(feature_store).is_file():
        raise TadInputError(feature_store, "--features: file not found")
    store = FeatureStore(feature_store)
    stored = set(store.videos)
    if not stored:
        raise TadInputError(feature_store, "--features: the store holds no videos")
    guessed_train, guessed_test = guess_subsets(ann.subsets)
    train = train_subset or (guessed_train[0] if guessed_train else None)
    test = test_subset or (guessed_test[0] if guessed_test else train)
    if train is None or not ann.has_subset(train):
        raise TadInputError(ann_file, f"no training subset (subsets: {', '.join(ann.subsets) or 'none'}); "
                                      "give --train-subset")
    if not ann.has_subset(test):
        raise TadInputError(ann_file, f"--test-subset {test!r} is not a subset (subsets: {', '.join(ann.subsets)})")
    subsets = {name: sum(1 for v in ann.subset(name) if v in stored) for name in ann.subsets}
    video_steps, action_steps, steps_sec, per_video, fractions = [], [], [], [0], []
    nested_count = total_count = 0
    train_ids = [vid for vid in ann.subset(train) if vid in stored]
    if not train_ids:
        raise TadInputError(feature_store, f"no video of the training subset {train!r} of {ann_file} is in the store")
    for vid, video in ann.videos.items():
        if vid not in stored:
            continue
        n = store.num_steps(vid)
        if n == 0:
            continue
        video_steps.append(n)
        if vid not in train_ids:
            continue
        ts = store.read(vid, 0, min(n, 2048)).timestamps
        step = float(np.median(np.diff(ts))) if len(ts) > 1 else max(video.duration, 1e-3)
        steps_sec.append(step)
        lengths = (video.segments[:, 1] - video.segments[:, 0]) / step
        action_steps.extend(lengths[lengths > 0].tolist())
        fractions.extend((lengths[lengths > 0] / n).tolist())
        per_video.append(len(video))
        if len(video) > 1:
            seg, lab = video.segments, video.labels
            inter = np.clip(np.minimum(seg[:, None, 1], seg[None, :, 1]) - np.maximum(seg[:, None, 0], seg[None, :, 0]),
                            0, None)  # (N, N)
            shorter = np.maximum(np.minimum((seg[:, 1] - seg[:, 0])[:, None], (seg[:, 1] - seg[:, 0])[None]), 1e-6)
            nested = (inter / shorter > 0.5) & (lab[:, None] != lab[None, :])
            nested_count += int(nested.any(axis=1).sum())
        total_count += len(video)
    if not action_steps:
        raise TadInputError(ann_file, f"no annotated segments in the training subset {train!r}")
    # multi-label: >= 5 % of the instances lie mostly (> 50 %) inside one of another class
    # (EPIC-like neighbours that touch by a fraction of a second do not count)
    overlapping = nested_count >= max(1, 0.05 * total_count)
    return DataStatistics(ann_file=str(ann_file), feature_store=str(feature_store), classes=list(ann.classes),
                          subsets=subsets, train_subset=train, test_subset=test, num_train_videos=len(train_ids),
                          video_steps=np.asarray(video_steps), action_steps=np.asarray(action_steps),
                          actions_per_video=max(per_video), step_seconds=float(np.median(steps_sec)),
                          in_channels=int(store.feature_dim), spatial_grid=store.spatial_grid, overlapping=overlapping,
                          video_fraction=float(np.median(fractions)))


def _round_up(value: float, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def choose_settings(stats: DataStatistics, batch_size: int = 2) -> Settings:
    """Model and schedule choices from ``stats``, each with its reason."""
    s = Settings(values={})
    v, r = s.values, s.reasons
    longest, shortest = int(stats.video_steps.max()), int(stats.video_steps.min())
    median_video = float(np.median(stats.video_steps))
    a_med = float(np.median(stats.action_steps))
    a_long = float(np.percentile(stats.action_steps, 95))
    a_short = float(np.percentile(stats.action_steps, 5))

    # pyramid depth: level l (< L-1) regresses reaches in (4 * 2^(l-1), 4 * 2^l]; the last is open
    wanted = 2 + max(0, math.ceil(math.log2(max(a_long, 1.0) / 4.0)))
    by_video = 1 + max(1, int(math.floor(math.log2(max(min(shortest, LONG_WINDOW), 4) / 2))))
    levels = int(min(6, max(2, min(wanted, by_video))))
    v["num_levels"] = levels
    r["num_levels"] = (f"95% of actions are <= {a_long:.1f} steps: {levels} levels (strides 1..{2 ** (levels - 1)}) "
                       f"give them a level whose range reaches them; the shortest video ({shortest} steps) "
                       f"keeps >= 2 steps at the top level")
    ranges = [(0 if l == 0 else 4 * 2 ** (l - 1), 4 * 2 ** l) for l in range(levels - 1)]
    ranges.append((ranges[-1][1] if ranges else 0, 10000))
    v["regression_ranges"] = ranges
    r["regression_ranges"] = ("ActionFormer's doubling ranges (largest distance from a point to the action's "
                              "boundaries, in steps), one per level, the last open-ended")

    coarsest = 2 ** (levels - 1)
    v["window_overlap"] = None
    if longest <= WHOLE_VIDEO_LIMIT:
        v["strategy"] = "window"
        v["max_seq_len"] = _round_up(longest, max(coarsest, 16))
        v["crop_ratio"] = [0.9, 1.0]
        r["max_seq_len"] = (f"the longest video has {longest} steps (median {median_video:.0f}): training sees "
                            f"whole videos (rounded up to a multiple of {max(coarsest, 16)}), randomly cropped to "
                            "90-100 % as augmentation; inference runs on whole videos (strategy 'window')")
    elif stats.video_fraction >= RESIZE_FRACTION:
        v["strategy"] = "resize"
        v["max_seq_len"] = RESIZE_LENGTH
        v["crop_ratio"] = None
        r["max_seq_len"] = (f"videos of {shortest}-{longest} steps whose actions are long (median {100 * stats.video_fraction:.0f} % "
                            f"of their video, ActivityNet-like): every video is resized to {RESIZE_LENGTH} steps "
                            "(strategy 'resize'), segments mapped back to seconds through the resized timestamps")
        levels = 6  # actions of 15-100 % of 192 steps: ActionFormer's ActivityNet pyramid
        v["num_levels"] = levels
        v["regression_ranges"] = [(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)]
        r["num_levels"] = (f"resized videos of {RESIZE_LENGTH} steps hold actions of ~{stats.video_fraction * RESIZE_LENGTH:.0f} "
                           "steps (median): 6 levels (strides 1..32), ActionFormer's ActivityNet pyramid")
    elif longest > SLIDING_LIMIT:
        v["strategy"] = "sliding"
        v["max_seq_len"] = LONG_WINDOW
        v["crop_ratio"] = None
        v["window_overlap"] = 0.25
        r["max_seq_len"] = (f"videos reach {longest} steps (median {median_video:.0f}), too long for one pass: random "
                            f"training windows of {LONG_WINDOW} steps; at inference overlapping windows (25 %) merged "
                            "before NMS (strategy 'sliding')")
    else:
        v["strategy"] = "window"
        v["max_seq_len"] = LONG_WINDOW
        v["crop_ratio"] = None
        r["max_seq_len"] = (f"videos reach {longest} steps (median {median_video:.0f}), longer than one "
                            f"training pass: random windows of {LONG_WINDOW} steps that keep actions >= 50 % "
                            "inside; inference runs on whole videos (strategy 'window')")
    v["window_size"] = 9 if max(a_med, 1.0) < 16 and longest <= WHOLE_VIDEO_LIMIT else 19
    r["window_size"] = (f"local attention window (steps of a level): median action {a_med:.1f} steps, "
                        + ("short actions and videos: 9 (t-4..t+4)" if v["window_size"] == 9 else "19, ActionFormer's"))
    v["num_local_levels"] = min(3, levels - 1) if levels > 1 else 1
    r["num_local_levels"] = "local attention at the finest levels, global attention above them (STPT 'mixed')"

    train_steps = float(stats.video_steps.mean()) * stats.num_train_videos
    v["embed_dim"] = 64 if stats.num_train_videos < 30 else 128 if stats.num_train_videos < 100 else 256
    r["embed_dim"] = (f"{stats.num_train_videos} training videos: a {v['embed_dim']}-wide model "
                      "(512, ActionFormer's, overfits and is slow on small sets)")
    v["batch_size"] = batch_size
    iters_per_epoch = max(1, math.ceil(stats.num_train_videos / batch_size))
    epochs = int(min(60, max(15, math.ceil(TARGET_ITERS / iters_per_epoch))))
    v["max_epochs"] = epochs
    v["warmup_epochs"] = max(1, epochs // 10)
    r["max_epochs"] = (f"{iters_per_epoch} iterations per epoch (batch {batch_size}): {epochs} epochs "
                       f"= {epochs * iters_per_epoch} iterations (aim: ~{TARGET_ITERS}, 15-60 epochs), "
                       f"{v['warmup_epochs']} of linear warmup then cosine decay")
    total_iters = epochs * iters_per_epoch
    v["lr"] = 1e-3 if total_iters <= 2000 else 3e-4
    r["lr"] = (f"AdamW lr {v['lr']:g}: a short run ({total_iters} iterations) needs more than ActionFormer's 1e-4"
               if v["lr"] == 1e-3 else f"AdamW lr {v['lr']:g} for a {total_iters}-iteration run")
    v["ema_momentum"] = round(float(min(0.1, max(0.001, 10.0 / total_iters))), 4)
    r["ema_momentum"] = ("EMA of the weights (what is validated and saved), momentum ~ 10 / iterations so the "
                         "average follows a short run (ActionFormer: 0.001 over ~10k iterations)")
    v["val_interval"] = max(1, epochs // 4)
    v["max_seg_num"] = int(max(100, 4 * stats.actions_per_video))
    r["max_seg_num"] = f"segments kept per video: 4 x the most actions in one video ({stats.actions_per_video}), >= 100"
    v["protocol"] = "multithumos" if stats.overlapping else "thumos14"
    r["protocol"] = ("tIoU thresholds of the mAP: " + ("0.1:0.1:0.9, the multi-label protocol (Multi-THUMOS)"
                     if stats.overlapping else "0.3:0.1:0.7, THUMOS14's protocol")
                     + "; other protocols: configs/_base_/evaluators/{thumos14,epic,multithumos,activitynet}.py")
    if stats.overlapping:
        v["multi_label"] = True
        r["multi_label"] = ("instances of different classes overlap in time: every class whose segment claims a "
                            "point is a target there (not only the shortest segment's)")
    return s


def _dataset_type() -> str:
    """'FeatureDataset' where it exists (strategies), else the THUMOS-style dataset."""
    from tad.registry import DATASETS

    return "FeatureDataset" if DATASETS.get("FeatureDataset") is not None else "THUMOSFeatureDataset"


def _base_files(protocol: str) -> list[str]:
    import tad.configs

    root = Path(tad.configs.__file__).resolve().parent / "_base_"
    return [str(root / "models" / "stpt.py"), str(root / "datasets" / "feature_loaders.py"),
            str(root / "evaluators" / f"{protocol}.py"), str(root / "schedules" / "adamw_cosine_35e.py"),
            str(root / "default_runtime.py")]


def render_config(stats: DataStatistics, settings: Settings, ann_file: str, feature_store: str) -> str:
    """The commented config text (paths written as given)."""
    v, r = settings.values, settings.reasons
    dtype = _dataset_type()
    strategy = f", strategy={v['strategy']!r}" if dtype == "FeatureDataset" else ""
    if v.get("window_overlap") is not None:
        strategy += f", window_overlap={v['window_overlap']}"
    lines = [
        "# Written by `tad init-config` from the statistics of your data; edit freely.",
        f"#   annotations: {ann_file}",
        f"#   features:    {feature_store}",
        f"#   {len(stats.classes)} classes; subsets (videos with features): "
        + ", ".join(f"{k} {n}" for k, n in stats.subsets.items()),
        f"#   video length: {int(stats.video_steps.min())}/{int(np.median(stats.video_steps))}/"
        f"{int(stats.video_steps.max())} steps (min/median/max), one step = {stats.step_seconds:.3f} s",
        f"#   action length: {np.percentile(stats.action_steps, 5):.1f}/{np.median(stats.action_steps):.1f}/"
        f"{np.percentile(stats.action_steps, 95):.1f} steps (5%/median/95%), "
        f"{len(stats.action_steps)} training actions, up to {stats.actions_per_video} in one video",
        "# Train:  tad train THIS_FILE --work-dir runs/mine",
        "# Eval:   tad eval THIS_FILE runs/mine/best_*.pth --out preds.json",
        "# The _base_ files are the shipped model / dataset / schedule / runtime defaults (every key commented there).",
        f"# {r['protocol']}",
        f"_base_ = {_base_files(v['protocol'])!r}",
        "",
        f"ann_file = {ann_file!r}",
        f"feature_store = {feature_store!r}",
        f"train_subset = {stats.train_subset!r}",
        f"val_subset = {stats.test_subset!r}   # the best checkpoint is chosen on it: use a held-out subset if you have one",
        f"test_subset = {stats.test_subset!r}",
        f"num_classes = {len(stats.classes)}   # classes in the annotations",
        f"# max_seq_len: {r['max_seq_len']}",
        f"max_seq_len = {v['max_seq_len']}",
        "",
        "model = dict(",
        f"    in_channels={stats.in_channels},   # feature width of the store",
        f"    num_classes={len(stats.classes)}, max_seq_len={v['max_seq_len']},",
        f"    spatial_grid={stats.spatial_grid!r},   # the store's spatial grid (None: plain (T, C) features)",
        f"    embed_dim={v['embed_dim']},   # {r['embed_dim']}",
        "    encoder=dict(",
        f"        num_levels={v['num_levels']},   # {r['num_levels']}",
        f"        window_size={v['window_size']},   # {r['window_size']}",
        f"        num_local_levels={v['num_local_levels']},   # {r['num_local_levels']}",
        "        stem_blocks=1, drop_path=0.1),",
        "    refinement=dict(hidden_dim=64),",
        "    assigner=dict(",
        f"        # {r['regression_ranges']}",
        f"        regression_ranges={v['regression_ranges']!r},",
    ]
    if v.get("multi_label"):
        lines.append(f"        multi_label=True,   # {r['multi_label']}")
    lines += [
        "    ),",
        f"    test_cfg=dict(max_seg_num={v['max_seg_num']}),   # {r['max_seg_num']}",
        ")",
        "",
        f"train_dataloader = dict(batch_size={v['batch_size']}, num_workers=0, persistent_workers=False,",
        f"                        dataset=dict(type={dtype!r}{strategy}, crop_ratio={v['crop_ratio']!r}))",
        f"val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(type={dtype!r}{strategy}))",
        f"test_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(type={dtype!r}{strategy}))",
        "",
        f"# {r['max_epochs']}",
        f"max_epochs = {v['max_epochs']}",
        f"warmup_epochs = {v['warmup_epochs']}",
        f"val_interval = {v['val_interval']}",
        "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=val_interval)",
        "optim_wrapper = dict(type='OptimWrapper',",
        f"                     # {r['lr']}",
        f"                     optimizer=dict(type='AdamW', lr={v['lr']:g}, betas=(0.9, 0.999), weight_decay=0.05),",
        "                     clip_grad=dict(max_norm=1.0, norm_type=2),",
        "                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))",
        "param_scheduler = [",
        "    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=warmup_epochs,",
        "         convert_to_iter_based=True),",
        "    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs, eta_min=1e-6, by_epoch=True,",
        "         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),",
        "]",
        f"# {r['ema_momentum']}",
        f"custom_hooks = [dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum={v['ema_momentum']},",
        "                     update_buffers=True, priority='ABOVE_NORMAL')]",
        "default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=val_interval, max_keep_ckpts=2))",
        "visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])",
        "",
    ]
    return "\n".join(lines)
