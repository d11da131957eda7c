"""`tad demo`: render a synthetic dataset, then extract -> train -> eval -> visualize.

Every stage goes through the same functions the CLI commands use
(``extract_folder``, ``load_config``/``build_runner``, ``run_inference``,
``render_timelines``), so a working demo means a working pipeline.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tad.errors import TadInputError

__all__ = ["DemoResult", "demo_config_path", "run_demo", "stream_existing_demo"]

MARKER = ".tad-demo"  # marks a folder as made by `tad demo`, so re-runs may overwrite it
NUM_TIMELINES = 3  # test videos drawn as PNG timelines


@dataclass
class DemoResult:
    workdir: Path
    video_dir: Path
    ann_file: Path
    feature_store: Path
    train_dir: Path
    checkpoint: Path
    predictions: Path
    metrics: Path
    timelines: list[Path]
    average_mAP: float
    mAP: dict[str, float]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stream_events: Path | None = None  # with --stream: the streamed video's events (JSON lines)
    stream_predictions: Path | None = None

    @property
    def total_seconds(self) -> float:
        return sum(self.stage_seconds.values())

    def to_dict(self) -> dict:
        out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}
        out["timelines"] = [str(p) for p in self.timelines]
        out["total_seconds"] = self.total_seconds
        return out


def demo_config_path() -> Path:
    """The shipped ``configs/stpt/demo_tiny3d.py`` (package data of tad.configs)."""
    import tad.configs

    return Path(tad.configs.__file__).resolve().parent / "stpt" / "demo_tiny3d.py"


def _prepare_workdir(workdir: Path) -> None:
    if workdir.exists() and not workdir.is_dir():
        raise TadInputError(workdir, "exists and is not a folder")
    if workdir.is_dir() and any(workdir.iterdir()) and not (workdir / MARKER).exists():
        raise TadInputError(workdir, "folder exists, is not empty and was not made by `tad demo`; "
                                     "choose a new --workdir")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by `tad demo`; re-running the demo here overwrites its outputs\n")


def _stage(name: str, echo) -> None:
    echo(f"\n=== {name} " + "=" * max(0, 60 - len(name)))


def extract_options(cfg, workers: int = 1):
    """The demo config's ``extract`` settings (tiny3d, random init, 64 x 64 frames, native fps)."""
    from tad.features.extract import ExtractOptions

    return ExtractOptions(**dict(cfg.extract), batch_size=32, workers=workers, device="cpu", overwrite=True)


def run_demo(workdir: str | Path = "tad_demo", videos: int = 24, seed: int = 0, epochs: int | None = None,
             workers: int = 1, threads: int | None = 1, echo=print, progress: bool = True,
             video_kwargs: dict | None = None, stream: bool = False, realtime: bool = True) -> DemoResult:
    """Run the whole demo in ``workdir``; returns where everything went and the scores.

    ``videos``: how many synthetic videos (40% form the Test subset); ``epochs``
    overrides the demo config's training length (tests use fewer). ``threads``: torch
    intra-op threads (None keeps torch's default). The demo's model is small: one
    thread is about as fast as two on an idle 2-core machine and many times faster
    when the cores are shared (OpenMP threads then wait on each other).
    ``video_kwargs`` go to :func:`tad.demo.render.plan_video` (e.g. shorter videos in tests).
    ``stream``: then train the causal detector (``configs/stpt/demo_tiny3d_causal.py``) on the same
    store and run ``tad stream``'s code on the first Test video (at its own frame rate when
    ``realtime``), printing its events as they come.
    """
    import torch

    from tad.demo.render import render_dataset

    if threads is not None:
        torch.set_num_threads(threads)

    if videos < 4:
        raise TadInputError(f"--videos {videos}", "the demo needs at least 4 videos")
    workdir = Path(workdir).resolve()
    _prepare_workdir(workdir)
    seconds: dict[str, float] = {}

    # 1. Render ------------------------------------------------------------------------
    _stage(f"render {videos} synthetic videos (seed {seed})", echo)
    t0 = time.perf_counter()
    dataset = render_dataset(workdir, num_videos=videos, seed=seed, progress=progress, workers=workers + 1,
                             **(video_kwargs or {}))
    seconds["render"] = time.perf_counter() - t0
    n_actions = sum(len(p.actions) for p in dataset.plans)
    echo(f"{len(dataset.plans)} videos, {n_actions} actions of {len(dataset.classes)} classes "
         f"({', '.join(dataset.classes)}) -> {dataset.video_dir}, {dataset.ann_file}")

    # 2. Extract -----------------------------------------------------------------------
    from tad.engine.runner import build_runner, find_best_checkpoint, load_config
    from tad.features.extract import extract_folder

    store_path = workdir / "features.h5"
    cfg_options = {"ann_file": str(dataset.ann_file), "feature_store": str(store_path)}
    cfg = load_config(demo_config_path(), cfg_options=cfg_options)
    if epochs is not None:
        _set_epochs(cfg, epochs)

    _stage("extract features (tiny3d, random init)", echo)
    t0 = time.perf_counter()
    summary = extract_folder(dataset.video_dir, store_path, extract_options(cfg, workers), progress=progress)
    seconds["extract"] = time.perf_counter() - t0
    if summary.failed:
        raise RuntimeError(f"{store_path}: extraction failed for {len(summary.failed)} demo videos: "
                           + "; ".join(f"{k}: {v}" for k, v in list(summary.failed.items())[:3]))
    echo(f"{len(summary.done)} videos -> {store_path}")

    # 3. Train -------------------------------------------------------------------------
    _stage("train the STPT detector (configs/stpt/demo_tiny3d.py)", echo)
    t0 = time.perf_counter()
    train_dir = workdir / "train"
    if train_dir.exists():
        shutil.rmtree(train_dir)  # a previous demo run's checkpoints must not be picked as "best"
    runner = build_runner(cfg, work_dir=str(train_dir), seed=seed)
    runner.train()
    checkpoint = find_best_checkpoint(train_dir)
    seconds["train"] = time.perf_counter() - t0
    echo(f"best checkpoint: {checkpoint}")

    # 4. Evaluate ----------------------------------------------------------------------
    from tad.engine.inference import run_inference

    _stage("evaluate on the Test subset", echo)
    t0 = time.perf_counter()
    predictions_path = workdir / "predictions.json"
    metrics_path = workdir / "metrics.json"
    _, result = run_inference(cfg, checkpoint, split="test", out=str(predictions_path),
                              metrics_out=str(metrics_path))
    seconds["eval"] = time.perf_counter() - t0
    echo(result.format_table())

    # 5. Visualize ---------------------------------------------------------------------
    from tad.apis.timelines import render_timelines

    _stage("draw timelines", echo)
    t0 = time.perf_counter()
    test_ids = dataset.subset_ids("Test")[:NUM_TIMELINES]
    timelines = render_timelines(predictions_path, dataset.ann_file, test_ids, workdir / "timelines",
                                 video_dir=dataset.video_dir, top_k=3, tiou=0.5)
    seconds["visualize"] = time.perf_counter() - t0

    maps = {f"mAP@{t:.1f}": float(m) for t, m in zip(result.tiou_thresholds, result.mAP)}
    demo = DemoResult(workdir, dataset.video_dir, dataset.ann_file, store_path, train_dir, Path(checkpoint),
                      predictions_path, metrics_path, list(timelines), float(result.average_mAP), maps, seconds)
    (workdir / "demo_summary.json").write_text(json.dumps(demo.to_dict(), indent=1))
    _print_summary(demo, echo)
    if stream:
        stream_video = _first_video(dataset.video_dir, dataset.subset_ids("Test")[0])
        demo.stream_events, demo.stream_predictions = stream_demo_video(
            workdir, cfg_options, stream_video, seed=seed, epochs=epochs, realtime=realtime, echo=echo,
            seconds=demo.stage_seconds)
        (workdir / "demo_summary.json").write_text(json.dumps(demo.to_dict(), indent=1))
    return demo


def _first_video(video_dir: Path, video_id: str) -> Path:
    found = sorted(Path(video_dir).glob(f"{video_id}.*"))
    if not found:
        raise TadInputError(video_dir, f"no video file for {video_id!r}")
    return found[0]


def demo_causal_config_path() -> Path:
    """The shipped ``configs/stpt/demo_tiny3d_causal.py``."""
    return demo_config_path().with_name("demo_tiny3d_causal.py")


def stream_demo_video(workdir: Path, cfg_options: dict, video: Path, seed: int = 0, epochs: int | None = None,
                      realtime: bool = True, echo=print, seconds: dict | None = None,
                      threshold: float = 0.3, max_latency: float = 2.0,
                      checkpoint: Path | None = None) -> tuple[Path, Path]:
    """Train the causal demo detector on the demo store (unless ``checkpoint`` is given), then
    stream ``video`` through it.

    Returns (events JSON lines, stream predictions JSON), both in ``workdir``.
    """
    from tad.apis.stream import run_stream
    from tad.engine.runner import build_runner, find_best_checkpoint, load_config

    seconds = seconds if seconds is not None else {}
    if checkpoint is None:
        cfg = load_config(demo_causal_config_path(), cfg_options=cfg_options)
        if epochs is not None:
            _set_epochs(cfg, epochs)
        _stage("train the causal STPT detector (configs/stpt/demo_tiny3d_causal.py)", echo)
        t0 = time.perf_counter()
        train_dir = workdir / "train_causal"
        if train_dir.exists():
            shutil.rmtree(train_dir)
        runner = build_runner(cfg, work_dir=str(train_dir), seed=seed)
        runner.train()
        checkpoint = find_best_checkpoint(train_dir)
        seconds["train_causal"] = time.perf_counter() - t0
        echo(f"best checkpoint: {checkpoint}")
    else:
        echo(f"causal detector: {checkpoint} (already trained)")

    _stage(f"stream {video.name}" + (" at real time" if realtime else ""), echo)
    t0 = time.perf_counter()
    events, preds = workdir / "stream_events.jsonl", workdir / "stream_predictions.json"
    result = run_stream(str(video), demo_causal_config_path(), checkpoint, random_init=True, realtime=realtime,
                        max_latency=max_latency, threshold=threshold, events_out=events, preds_out=preds,
                        cfg_options=[f"{k}={v}" for k, v in cfg_options.items()], device="cpu", echo=echo)
    seconds["stream"] = time.perf_counter() - t0
    echo(f"{result.video_seconds:.1f} s of video in {result.wall_seconds:.1f} s ({result.fps:.0f} frames/s): "
         f"{len(result.events)} events -> {events}; {len(result.segments)} segments -> {preds}")
    if result.end_reason:
        echo(f"warning: {video}: {result.end_reason}")
    return events, preds


def stream_existing_demo(workdir: str | Path = "tad_demo", seed: int = 0, epochs: int | None = None,
                         realtime: bool = True, echo=print) -> tuple[Path, Path]:
    """``tad demo --stream-only``: stream the first Test video of the demo already in ``workdir``.

    Reuses its videos, annotations and feature store, and its trained causal detector
    (``train_causal/``; trained here, as ``--stream`` does, when it has none).
    Returns (events JSON lines, stream predictions JSON).
    """
    from tad.engine.runner import find_best_checkpoint
    from tad.eval.annotations import load_annotations

    workdir = Path(workdir).resolve()
    ann_file, store, video_dir = workdir / "annotations.json", workdir / "features.h5", workdir / "videos"
    for path in (ann_file, store, video_dir):
        if not path.exists():
            raise TadInputError(workdir, f"no demo here ({path.name} is missing); run `tad demo --workdir "
                                         f"{workdir}` first")
    test_ids = sorted(load_annotations(ann_file).subset("test"))
    if not test_ids:
        raise TadInputError(ann_file, "the demo has no Test video to stream")
    video = _first_video(video_dir, test_ids[0])
    cfg_options = {"ann_file": str(ann_file), "feature_store": str(store)}
    try:
        checkpoint = find_best_checkpoint(workdir / "train_causal")
    except TadInputError:  # none yet: train it
        checkpoint = None
    events, preds = stream_demo_video(workdir, cfg_options, video, seed=seed, epochs=epochs, realtime=realtime,
                                      echo=echo, checkpoint=checkpoint)
    return events, preds


def _set_epochs(cfg, epochs: int) -> None:
    """Shorten training to ``epochs`` keeping the warmup + cosine shape and a final validation."""
    warmup = max(1, min(cfg.get("warmup_epochs", 1), epochs // 5))
    cfg.train_cfg.max_epochs = epochs
    cfg.train_cfg.val_interval = epochs
    for sched in cfg.param_scheduler:
        if sched["type"] == "LinearLR":
            sched["end"] = warmup
        elif sched["type"] == "CosineAnnealingLR":
            sched["begin"], sched["end"], sched["T_max"] = warmup, epochs, max(1, epochs - warmup)


def _print_summary(demo: DemoResult, echo) -> None:
    _stage("done", echo)
    rows = [
        ("videos + annotations", f"{demo.video_dir}  {demo.ann_file}"),
        ("feature store", str(demo.feature_store)),
        ("training logs + checkpoints", str(demo.train_dir)),
        ("best checkpoint", str(demo.checkpoint)),
        ("predictions (ActivityNet JSON)", str(demo.predictions)),
        ("metrics", str(demo.metrics)),
        ("timelines (PNG)", ", ".join(str(p) for p in demo.timelines)),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        echo(f"{key:<{width}}  {value}")
    stages = ", ".join(f"{k} {v:.0f}s" for k, v in demo.stage_seconds.items())
    echo(f"average mAP (tIoU 0.3:0.1:0.7): {100 * demo.average_mAP:.1f}%")
    echo(f"total time {demo.total_seconds:.0f}s ({stages})")
