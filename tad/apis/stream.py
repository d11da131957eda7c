"""Online detection on one live source (what ``tad stream`` runs).

    LiveFrameSource (reader thread) -> OnlineClipAssembler -> backbone, one clip per clip stride
    -> ContinualSTPT.step (causal detector, bounded state) -> OnlineSegmentTracker -> events

* The backbone and its settings come from the config's ``extract=dict(...)`` (the same as
  ``tad extract`` / ``tad detect``; ``backbone=`` overrides its name), so a detector trained
  on an offline store serves the stream; features are rounded to the store's dtype as the
  store would.
* A continual backbone (``cox3d_*``, ``tsm_*_continual``) is run frame by frame instead of
  per clip: every output frame goes through ``ContinualFeatureStream`` once (one backbone
  call per new frame), and the feature of a clip window is ready when its last frame
  arrives -- the features ``tad extract`` stores for the same backbone and file.
* The detector must be causal (``CausalSTPTDetector``, configs ``*_causal.py``).
* Events (``start`` / ``segment``) are JSON lines written and flushed as they happen, each
  with ``video_time`` (seconds into the stream) and ``wall_time`` (UTC, ISO 8601).
* Ctrl-C, a dropped stream or corrupt data end the run cleanly: open candidates are
  finalised, the events and ``preds_out`` (ActivityNet JSON) are written. A stalled
  source raises ``TadInputError`` after the same clean-up.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TextIO

import numpy as np

from tad.errors import TadInputError

__all__ = ["StreamResult", "run_stream"]


@dataclass
class StreamResult:
    video_id: str
    events: list = field(default_factory=list)
    segments: list = field(default_factory=list)  # ActivityNet dicts, best first
    frames: int = 0
    clips: int = 0
    backbone_steps: int = 0  # continual backbones: frames run through the backbone
    continual: bool = False
    video_seconds: float = 0.0
    wall_seconds: float = 0.0
    end_reason: str | None = None  # None: end of stream; else why it stopped early
    step_seconds: list = field(default_factory=list)  # wall time of each detector step

    @property
    def fps(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds > 0 else 0.0


def _wall() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _video_id(source: str) -> str:
    if "://" in source:
        tail = source.rstrip("/").split("/")[-1] or "stream"
        return tail.split("?")[0].rsplit(".", 1)[0] or "stream"
    return Path(source).stem


class _Status:
    """One status line on stderr: rewritten in place on a terminal, a line every 10 s otherwise."""

    def __init__(self, stream: TextIO | None, classes):
        self.stream = stream
        self.tty = bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
        self.classes = classes
        self.last = 0.0

    def update(self, video_time: float, fps: float, activity: np.ndarray, lag: float | None, force=False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self.last < (0.5 if self.tty else 10.0):
            return
        self.last = now
        top = np.argsort(-activity)[:3] if len(activity) else []
        tops = ", ".join(f"{self.classes[i]} {activity[i]:.2f}" for i in top)
        lag_text = f", lag {lag:.1f} s" if lag is not None else ""
        line = f"{video_time:8.1f} s processed, {fps:5.1f} frames/s{lag_text} | {tops}"
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def run_stream(source: str, config, checkpoint, backbone_checkpoint=None, random_init: bool = False,
               realtime: bool = False, follow: bool = False, max_latency: float = 2.0, threshold: float = 0.3,
               events_out=None, preds_out=None, device: str | None = "cpu", stall_timeout: float = 10.0,
               cfg_options=(), video_id: str | None = None, echo: Callable[[str], None] | None = None,
               status: TextIO | None = None, threads: int | None = None,
               trust_checkpoint: bool = False, backbone: str | None = None) -> StreamResult:
    """Detect actions online in ``source``; see the module docstring. Returns what happened.

    The detector checkpoint is read weights-only unless ``trust_checkpoint``.
    ``echo(line)`` receives each event as a JSON line when ``events_out`` is None, else a
    short human line; ``status`` is where the live status line goes (None: nowhere).
    ``backbone`` replaces the config's ``extract.backbone`` (its feature size must be the detector's input).
    """
    import torch

    from tad.apis.detect import check_config_options, class_names, detector_extract_options
    from tad.detectors.online_events import OnlineSegmentTracker
    from tad.engine.inference import load_detector
    from tad.engine.runner import load_config, select_device
    from tad.eval.results import write_predictions
    from tad.features.extract_options import effective_options, geometry_for
    from tad.features.feature_model import FeatureModel, build_backbone, resolve_device
    from tad.features.live_source import LiveFrameSource, is_url_or_device
    from tad.features.online_clips import OnlineClipAssembler
    from tad.output_guard import refuse_output_over_inputs

    echo = echo or print
    for flag, value in (("--max-latency", max_latency), ("--stall-timeout", stall_timeout)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise TadInputError(flag, f"must be a positive number of seconds, got {value}")
    if not 0 < threshold < 1:
        raise TadInputError("--threshold", f"must be between 0 and 1, got {threshold}")
    inputs = {"--config": config, "--checkpoint": checkpoint, "--backbone-checkpoint": backbone_checkpoint}
    if not is_url_or_device(str(source)):
        inputs["SOURCE"] = source
    refuse_output_over_inputs({"-o": events_out, "--preds-out": preds_out}, inputs)
    if events_out is not None and preds_out is not None:
        refuse_output_over_inputs({"--preds-out": preds_out}, {"-o": events_out})
    if threads:
        torch.set_num_threads(int(threads))

    cfg = load_config(config, list(cfg_options))
    opts = detector_extract_options(cfg, config, **({"backbone": backbone} if backbone else {}))
    device = select_device(device)
    model, ckpt_classes = load_detector(cfg, checkpoint, device, trust_checkpoint=trust_checkpoint)
    if not hasattr(model, "continual"):
        raise TadInputError(cfg.filename or config, f"the detector ({type(model).__name__}) is not causal: "
                            "`tad stream` needs a CausalSTPTDetector (a *_causal.py config)")
    classes = class_names(cfg, ckpt_classes)
    if backbone_checkpoint is None and not random_init:
        raise TadInputError("--backbone-checkpoint", "no backbone checkpoint given; pass --backbone-checkpoint CKPT, "
                            "or --random-init to use the backbone's untrained (seeded) weights")
    opts.checkpoint, opts.random_init, opts.device = backbone_checkpoint, random_init, device
    check_config_options(opts, cfg, config)
    backbone, _, _ = build_backbone(opts)
    spec = backbone.spec
    in_channels = getattr(model, "in_channels", None)
    if in_channels is not None and int(spec.feature_dim) != int(in_channels):
        raise TadInputError("--backbone" if backbone else (cfg.filename or config),
                            f"{opts.backbone} gives {spec.feature_dim}-d features but the detector takes {in_channels}-d")
    options = effective_options(opts, spec)
    features = FeatureModel(backbone, spec, opts, spec.mean, spec.std, resolve_device(str(device)))
    continual = features.continual_stream(options["clip_len"], options["frame_interval"],
                                          options["clip_stride"]) if features.continual else None
    round_to = np.float16 if opts.store_dtype == "float16" else np.float32
    runner = model.continual()
    tracker = OnlineSegmentTracker(classes, threshold=threshold, max_latency=max_latency,
                                   pre_thresh=float(getattr(model.postprocessor, "pre_nms_thresh", 0.001)),
                                   nms_sigma=float(getattr(model.postprocessor, "nms_sigma", 0.5)),
                                   min_score=float(getattr(model.postprocessor, "nms_min_score", 0.001)),
                                   voting_thresh=float(getattr(model.postprocessor, "voting_thresh", 0.0)))
    assembler = OnlineClipAssembler(options["clip_len"], options["frame_interval"], options["clip_stride"],
                                    options["fps"], keep_frames=continual is not None)
    result = StreamResult(video_id or _video_id(str(source)), continual=continual is not None)
    frames_source = LiveFrameSource(str(source), geometry_for(opts, spec), realtime=realtime, follow=follow,
                                    stall_timeout=stall_timeout)
    sink = open(events_out, "w") if events_out is not None else None
    bar = _Status(status, classes)
    started = time.monotonic()
    first_frame_wall = None
    last_time = 0.0
    stalled: TadInputError | None = None

    def emit(events: list[dict], video_time: float) -> None:
        for ev in events:
            ev = dict(ev, video_id=result.video_id, video_time=round(video_time, 3), wall_time=_wall())
            result.events.append(ev)
            line = json.dumps(ev)
            if sink is not None:
                sink.write(line + "\n")
                sink.flush()
                echo(_human(ev))
            else:
                echo(line)

    def continual_features(last: bool) -> dict[int, np.ndarray]:
        """Continual mode: the new output frames through the backbone; window index -> (C,)."""
        frames = assembler.take_frames()
        got = continual.push(np.stack(frames)) if frames else []
        if last:
            got += continual.finish()
        result.backbone_steps = continual.steps
        return dict(got)

    def run_clips(clips, last: bool = False) -> None:
        t_frames = time.perf_counter()
        ready = continual_features(last) if continual is not None else None
        frame_seconds = time.perf_counter() - t_frames
        for clip in clips:
            t0 = time.perf_counter()
            if ready is None:
                feat = features(torch.from_numpy(clip.frames)[None])  # (1, C)
            else:
                feat = ready[clip.index][None]  # (1, C): computed frame by frame
                t0 -= frame_seconds  # the frames' backbone time counts toward this step
                frame_seconds = 0.0
            feat = feat.astype(round_to).astype(np.float32)
            points = runner.step(torch.from_numpy(feat).to(device))
            events = tracker.update(points, clip.centre)
            result.step_seconds.append(time.perf_counter() - t0)
            result.clips += 1
            emit(events, last_time)

    try:
        try:
            for frame in frames_source:
                if first_frame_wall is None:
                    first_frame_wall = time.monotonic() - frame.time if realtime else None
                last_time = frame.time
                result.frames += 1
                run_clips(assembler.push(frame.time, frame.rgb))
                elapsed = time.monotonic() - started
                lag = (time.monotonic() - first_frame_wall - frame.time) if first_frame_wall is not None else None
                bar.update(frame.time, result.frames / max(elapsed, 1e-6), tracker.activity, lag)
            result.end_reason = frames_source.end_reason
        except KeyboardInterrupt:
            result.end_reason = f"interrupted (Ctrl-C) at {last_time:.1f} s"
        except TadInputError as exc:  # stalled
            stalled = exc
            result.end_reason = exc.problem
        try:
            run_clips(assembler.finish(), last=True)
        except KeyboardInterrupt:
            pass
        duration = last_time + (1.0 / frames_source.native_fps if frames_source.native_fps else 0.0)
        emit(tracker.finish(), last_time)
        bar.update(last_time, result.frames / max(time.monotonic() - started, 1e-6), tracker.activity, None,
                   force=True)
        bar.done()
    finally:
        frames_source.close()
        if sink is not None:
            sink.close()
    max_seg = int(getattr(model.postprocessor, "max_seg_num", 200))
    result.segments = [dict(label=classes[c.label], score=float(c.score),
                            segment=[float(max(0.0, c.start)), float(min(max(c.end, 0.0), duration))])
                       for c in tracker.segments(max_seg)]
    result.segments = [s for s in result.segments if s["segment"][1] > s["segment"][0]]
    result.video_seconds = last_time
    result.wall_seconds = time.monotonic() - started
    if preds_out is not None:
        write_predictions(preds_out, {result.video_id: result.segments})
    if stalled is not None:
        raise stalled
    return result


def _human(ev: dict) -> str:
    if ev["event"] == "start":
        return f"[{ev['video_time']:8.2f} s] start    {ev['label']} (from {ev['start']:.2f} s, score {ev['score']:.2f})"
    s, e = ev["segment"]
    return f"[{ev['video_time']:8.2f} s] segment  {ev['label']} {s:.2f}-{e:.2f} s (score {ev['score']:.2f})"

