"""THUMOS-shaped synthetic clip features with a controllable difficulty.

Takes an annotation layout (videos, durations, subsets, segments, classes: usually the
real THUMOS14 one) and writes a tad feature store whose features contain the actions
of that layout, as I3D features of THUMOS would: one feature every 4 frames of a 30 fps
stream, clip ``i`` (16 frames) centred at ``(4 i + 8) / 30`` seconds. Other clip timings
(``SyntheticConfig.fps/clip_len/clip_stride``, e.g. ActivityNet's TSP features: 16-frame
clips every 16 frames at 15 fps) give other dataset shapes.

How a feature sequence of one video is made (all vectors have ``feature_dim`` entries):

* **background**: a few background prototypes mixed with slowly varying weights
  (a smoothed random walk), scaled by ``background``;
* **actions**: every labelled segment adds ``amplitude(t) * (p_k + phase(t) q_k)``
  where ``p_k`` is the class prototype, ``q_k`` a second class vector whose sign
  flips from the first half of the action to the second (start/end cues), and
  ``amplitude(t)`` is the overlap of clip ``t`` with the segment, with linear
  onsets/offsets over ``soft_boundary`` x the segment length (soft boundaries);
* **actionness**: every class prototype shares a common direction with weight
  ``actionness`` (cosine similarity between classes), what a class-agnostic detector keys on;
* **confusable classes**: ``confusable_pairs`` disjoint class pairs whose
  prototypes share a component with cosine similarity ``confusion``;
* **distractors**: unlabelled action-like events (``distractors_per_minute``) in the
  background gaps, mixing a class prototype (weight ``distractor_similarity``)
  with a distractor prototype, at ``distractor_amplitude``;
* **per-video style**: a random offset (norm ``style_shift``) and gain
  ``exp(N(0, style_shift / 2))`` per video;
* **noise**: Gaussian, temporally smoothed over ``noise_smoothing`` steps (clip
  features overlap), with standard deviation ``noise`` along any unit direction,
  so a difficulty setting means the same thing at any ``feature_dim``.
* **space** (``spatial_grid=g``): features are (T, C, g, g); background, style and
  noise fill every cell, each action sits at a random location (a Gaussian blob
  about one cell wide), so pooling space away dilutes it. Memory: one video's
  (T, C, g*g) float32 array at a time (T = 12.5k for the longest THUMOS video).

Prototypes are unit vectors, actions have amplitude 1. Everything is deterministic
by ``seed``; each video has its own random stream (seeded by seed and video id), so
a subset of videos gets the same features as in the full set.

``holdout=True`` perturbs the layout first (segment times jittered, each video's
classes remapped by a random permutation) and draws every random number from a
stream salted differently, giving a THUMOS-shaped held-out set unseen by tuning.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Iterable

import numpy as np
from scipy.ndimage import gaussian_filter1d

from tad.errors import TadInputError

__all__ = [
    "DIFFICULTY_PRESETS",
    "FEATURE_FPS",
    "CLIP_LEN",
    "CLIP_STRIDE",
    "Layout",
    "SyntheticConfig",
    "SyntheticSummary",
    "VideoLayout",
    "clip_timestamps",
    "layout_from_annotations",
    "load_layout",
    "make_synthetic_store",
    "perturb_layout",
    "preset_config",
    "random_layout",
    "select_videos",
    "synthesize_video",
    "write_annotations",
]

FEATURE_FPS = 30.0
CLIP_LEN = 16
CLIP_STRIDE = 4
_HOLDOUT_SALT = 0x5EED_0F_4E1D


# --------------------------------------------------------------------------- layout
@dataclass
class VideoLayout:
    """One video of a layout: segments in seconds and class ids."""

    video_id: str
    subset: str
    duration: float
    fps: float | None
    segments: np.ndarray  # (N, 2) float64 seconds
    labels: np.ndarray  # (N,) int64 class ids


@dataclass
class Layout:
    classes: list[str]
    videos: dict[str, VideoLayout]

    def subset(self, name: str) -> dict[str, VideoLayout]:
        return {k: v for k, v in self.videos.items() if v.subset.lower() == name.lower()}


def layout_from_annotations(ann) -> Layout:
    """An ``AnnotationSet`` (tad.eval.annotations) -> Layout."""
    videos = {
        vid: VideoLayout(
            video_id=vid,
            subset=v.subset,
            duration=float(v.duration),
            fps=None if v.fps is None else float(v.fps),
            segments=np.asarray(v.segments, dtype=np.float64).reshape(-1, 2),
            labels=np.asarray(v.labels, dtype=np.int64).reshape(-1),
        )
        for vid, v in ann.videos.items()
    }
    return Layout(classes=list(ann.classes), videos=videos)


def load_layout(path: str | Path) -> Layout:
    """Read an ActionFormer/ActivityNet annotation file into a Layout."""
    from tad.eval.annotations import load_annotations

    return layout_from_annotations(load_annotations(path))


def random_layout(
    num_videos: int = 12,
    num_classes: int = 3,
    duration_range: tuple[float, float] = (40.0, 80.0),
    segments_per_video: tuple[int, int] = (2, 5),
    segment_length: tuple[float, float] = (2.0, 8.0),
    test_fraction: float = 0.5,
    seed: int = 0,
) -> Layout:
    """A small random layout (non-overlapping segments, THUMOS subset names) for tests/demos."""
    rng = np.random.default_rng([seed, 0x1A7])
    classes = [f"action{k}" for k in range(num_classes)]
    num_test = int(round(num_videos * test_fraction))
    videos = {}
    for i in range(num_videos):
        subset = "Test" if i >= num_videos - num_test else "Validation"
        vid = f"video_{subset.lower()}_{i:04d}"
        duration = round(float(rng.uniform(*duration_range)), 3)
        n = int(rng.integers(segments_per_video[0], segments_per_video[1] + 1))
        lengths = rng.uniform(*segment_length, size=n)
        gap_total = max(duration - lengths.sum(), 0.0)
        gaps = rng.dirichlet(np.ones(n + 1)) * gap_total
        starts = np.cumsum(gaps[:-1]) + np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
        segs = np.stack([starts, np.minimum(starts + lengths, duration)], axis=1)
        videos[vid] = VideoLayout(vid, subset, duration, FEATURE_FPS, segs.round(2),
                                  rng.integers(0, num_classes, size=n).astype(np.int64))
    return Layout(classes, videos)


def perturb_layout(layout: Layout, seed: int, jitter: float = 0.25, remap_classes: bool = True) -> Layout:
    """A held-out variant of ``layout``: same videos and durations, segments moved and
    rescaled by up to ``jitter`` x their length, each video's classes remapped by a
    random permutation (so a video stays mostly one class, as in THUMOS)."""
    num_classes = len(layout.classes)
    videos = {}
    for vid, v in layout.videos.items():
        rng = np.random.default_rng([seed, _HOLDOUT_SALT, zlib.crc32(vid.encode())])
        segs = v.segments.copy()
        labels = v.labels.copy()
        if len(segs):
            length = np.maximum(segs[:, 1] - segs[:, 0], 0.1)
            centre = segs.mean(axis=1) + rng.uniform(-jitter, jitter, len(segs)) * length
            length = length * np.exp(rng.uniform(-jitter, jitter, len(segs)))
            segs = np.stack([centre - length / 2, centre + length / 2], axis=1).clip(0.0, v.duration)
            keep = segs[:, 1] - segs[:, 0] >= 0.1
            segs, labels = segs[keep].round(2), labels[keep]
            if remap_classes:
                labels = rng.permutation(num_classes)[labels]
        videos[vid] = replace(v, segments=segs, labels=labels.astype(np.int64))
    return Layout(list(layout.classes), videos)


def select_videos(layout: Layout, subsets: Iterable[str] | None = None, max_per_subset: int | None = None) -> Layout:
    """Keep the named subsets (case-insensitive) and at most ``max_per_subset`` videos of each (sorted ids)."""
    wanted = None if subsets is None else {s.lower() for s in subsets}
    counts: dict[str, int] = {}
    videos = {}
    for vid in sorted(layout.videos):
        v = layout.videos[vid]
        key = v.subset.lower()
        if wanted is not None and key not in wanted:
            continue
        if max_per_subset is not None and counts.get(key, 0) >= max_per_subset:
            continue
        counts[key] = counts.get(key, 0) + 1
        videos[vid] = v
    return Layout(list(layout.classes), videos)


def write_annotations(layout: Layout, path: str | Path, version: str = "Thumos14-synthetic") -> Path:
    """Write ``layout`` as an ActionFormer-format annotation JSON (label_id = class index)."""
    database = {}
    for vid in sorted(layout.videos):
        v = layout.videos[vid]
        fps = v.fps or FEATURE_FPS
        database[vid] = {
            "subset": v.subset,
            "duration": round(float(v.duration), 3),
            "fps": float(fps),
            "annotations": [
                {
                    "label": layout.classes[int(k)],
                    "segment": [round(float(s[0]), 3), round(float(s[1]), 3)],
                    "segment(frames)": [round(float(s[0]) * fps, 1), round(float(s[1]) * fps, 1)],
                    "label_id": int(k),
                }
                for s, k in zip(v.segments, v.labels)
            ],
        }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": version, "database": database}, indent=1))
    return path


# --------------------------------------------------------------------------- features
@dataclass(frozen=True)
class SyntheticConfig:
    """Difficulty and size of a synthetic feature set (see the module docstring)."""

    feature_dim: int = 2048
    noise: float = 0.6
    noise_smoothing: float = 1.5
    background: float = 0.5
    confusable_pairs: int = 4
    confusion: float = 0.6
    soft_boundary: float = 0.15
    phase_strength: float = 0.5
    distractors_per_minute: float = 1.0
    distractor_similarity: float = 0.5
    distractor_amplitude: float = 0.7
    style_shift: float = 0.5
    spatial_grid: int | None = None
    seed: int = 0
    # clip timing of the features (THUMOS I3D by default; ActivityNet TSP: 15 fps, 16, 16)
    fps: float = 30.0
    clip_len: int = 16
    clip_stride: int = 4
    # share of a common "action" direction in every class prototype (class-agnostic actionness)
    actionness: float = 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        for key, default in (("fps", FEATURE_FPS), ("clip_len", CLIP_LEN), ("clip_stride", CLIP_STRIDE),
                             ("actionness", 0.0)):
            if out[key] == default:  # THUMOS timing: stores made before these fields keep their options
                del out[key]
        return out


DIFFICULTY_PRESETS: dict[str, dict] = {
    # a detector should get near-perfect mAP: for tests and smoke runs
    "easy": dict(noise=0.15, noise_smoothing=1.0, background=0.2, confusable_pairs=0, soft_boundary=0.0,
                 distractors_per_minute=0.0, style_shift=0.1),
    # the default: THUMOS-like difficulty, where detectors differ
    "medium": dict(),
    "hard": dict(noise=1.0, noise_smoothing=2.0, background=0.8, confusable_pairs=8, confusion=0.75,
                 soft_boundary=0.3, distractors_per_minute=2.5, distractor_similarity=0.7,
                 distractor_amplitude=0.8, style_shift=0.8),
}


def preset_config(name: str, **overrides) -> SyntheticConfig:
    if name not in DIFFICULTY_PRESETS:
        raise TadInputError(name, f"unknown difficulty preset (choose from {', '.join(DIFFICULTY_PRESETS)})")
    known = {f.name for f in fields(SyntheticConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise TadInputError(name, f"unknown synthetic option(s): {', '.join(bad)}")
    return SyntheticConfig(**{**DIFFICULTY_PRESETS[name], **overrides})


def clip_timestamps(duration: float, fps: float = FEATURE_FPS, clip_len: int = CLIP_LEN,
                    clip_stride: int = CLIP_STRIDE) -> tuple[np.ndarray, bool]:
    """Clip centres in seconds of a video of ``duration`` s (by default 16-frame clips every 4
    frames at 30 fps).

    Returns ``(timestamps, padded)``; a video shorter than one clip gets one (padded) clip.
    """
    num_frames = int(round(duration * fps))
    num_clips = (num_frames - clip_len) // clip_stride + 1
    padded = num_clips < 1
    idx = np.arange(max(num_clips, 1), dtype=np.float64)
    return (clip_stride * idx + clip_len / 2) / fps, padded


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@dataclass
class _Prototypes:
    classes: np.ndarray  # (K, C) unit
    phases: np.ndarray  # (K, C) unit
    background: np.ndarray  # (nb, C) unit
    distractors: np.ndarray  # (nd, C) unit
    pairs: list = field(default_factory=list)


def _make_prototypes(cfg: SyntheticConfig, num_classes: int, salt: int) -> _Prototypes:
    rng = np.random.default_rng([cfg.seed, salt, 0xC1A55])
    dim = cfg.feature_dim
    protos = _unit_rows(rng, num_classes, dim)
    if cfg.actionness > 0:  # drawn from its own stream: the other prototypes stay as without it
        common = _unit_rows(np.random.default_rng([cfg.seed, salt, 0xAC7]), 1, dim)[0]
        protos = np.sqrt(cfg.actionness) * common + np.sqrt(1.0 - cfg.actionness) * protos
        protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    pairs = []
    order = rng.permutation(num_classes)
    for i in range(min(cfg.confusable_pairs, num_classes // 2)):
        a, b = int(order[2 * i]), int(order[2 * i + 1])
        shared = _unit_rows(rng, 1, dim)[0]
        for k in (a, b):
            mixed = np.sqrt(cfg.confusion) * shared + np.sqrt(1.0 - cfg.confusion) * protos[k]
            protos[k] = mixed / np.linalg.norm(mixed)
        pairs.append((a, b))
    return _Prototypes(
        classes=protos,
        phases=_unit_rows(rng, num_classes, dim),
        background=_unit_rows(rng, 4, dim),
        distractors=_unit_rows(rng, 8, dim),
        pairs=pairs,
    )


def _envelope(timestamps: np.ndarray, segments: np.ndarray, soft: float,
              half_clip: float = CLIP_LEN / 2 / FEATURE_FPS) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip amplitude (T, E) and phase (T, E) of events ``segments`` (E, 2) seconds.

    Amplitude is the mean over the clip's frames of a trapezoid that ramps over
    ``soft`` x the segment length at each end; phase runs +1 -> -1 over the segment.
    """
    sub = np.linspace(-half_clip, half_clip, 8)
    t = timestamps[:, None, None] + sub[None, None, :]  # (T, 1, S)
    start, end = segments[None, :, 0, None], segments[None, :, 1, None]  # (1, E, 1)
    length = np.maximum(end - start, 1e-3)
    ramp = np.maximum(soft * length, 1e-3)
    rise = np.clip((t - start) / ramp, 0.0, 1.0)
    fall = np.clip((end - t) / ramp, 0.0, 1.0)
    inside = ((t >= start) & (t <= end)).astype(np.float64)
    amp = (np.minimum(rise, fall) * inside).mean(axis=2)  # (T, E)
    progress = np.clip((timestamps[:, None] - segments[None, :, 0]) / length[..., 0], 0.0, 1.0)
    phase = np.cos(np.pi * progress)  # (T, E)
    return amp, phase


def _distractor_segments(rng: np.random.Generator, duration: float, segments: np.ndarray, rate: float) -> np.ndarray:
    """Unlabelled events in the gaps between labelled segments, lengths like the labelled ones."""
    count = rng.poisson(rate * duration / 60.0)
    if count == 0:
        return np.zeros((0, 2))
    lengths = segments[:, 1] - segments[:, 0] if len(segments) else np.array([4.0])
    out = []
    for _ in range(count * 4):  # a few tries per event
        if len(out) == count:
            break
        length = float(rng.choice(lengths)) * float(rng.uniform(0.7, 1.3))
        if length >= duration:
            continue
        start = float(rng.uniform(0.0, duration - length))
        cand = np.array([start, start + length])
        taken = np.concatenate([segments, np.array(out).reshape(-1, 2)])
        if len(taken) and np.any((taken[:, 0] < cand[1] + 1.0) & (taken[:, 1] > cand[0] - 1.0)):
            continue
        out.append(cand)
    return np.array(out).reshape(-1, 2)


def synthesize_video(video: VideoLayout, cfg: SyntheticConfig, prototypes: _Prototypes, salt: int = 0) -> tuple[np.ndarray, np.ndarray, bool]:
    """Features (T, C) or (T, C, g, g) float32, timestamps (T,), padded flag for one video."""
    rng = np.random.default_rng([cfg.seed, salt, zlib.crc32(video.video_id.encode())])
    timestamps, padded = clip_timestamps(video.duration, cfg.fps, cfg.clip_len, cfg.clip_stride)
    num_steps, dim = len(timestamps), cfg.feature_dim
    num_classes = len(prototypes.classes)

    # events: labelled segments, then distractors
    segs = video.segments.reshape(-1, 2)
    distractors = _distractor_segments(rng, video.duration, segs, cfg.distractors_per_minute)
    events = np.concatenate([segs, distractors])
    amp, phase = (_envelope(timestamps, events, cfg.soft_boundary, cfg.clip_len / 2 / cfg.fps) if len(events)
                  else (np.zeros((num_steps, 0)),) * 2)
    patterns = [prototypes.classes[video.labels]]
    phase_vectors = [cfg.phase_strength * prototypes.phases[video.labels]]
    if len(distractors):
        mimic = rng.integers(0, num_classes, len(distractors))
        other = prototypes.distractors[rng.integers(0, len(prototypes.distractors), len(distractors))]
        mixed = np.sqrt(cfg.distractor_similarity) * prototypes.classes[mimic] + np.sqrt(1 - cfg.distractor_similarity) * other
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        patterns.append(cfg.distractor_amplitude * mixed)
        phase_vectors.append(cfg.distractor_amplitude * cfg.phase_strength * prototypes.phases[mimic])
    pattern = np.concatenate(patterns).reshape(-1, dim)  # (E, C)
    phase_vec = np.concatenate(phase_vectors).reshape(-1, dim)  # (E, C)

    # background: slowly varying mixture of background prototypes
    walk = gaussian_filter1d(rng.standard_normal((num_steps, len(prototypes.background))), sigma=30.0, axis=0, mode="nearest")
    walk /= walk.std(axis=0, keepdims=True) + 1e-6
    background = cfg.background * (walk @ prototypes.background)  # (T, C)
    offset = cfg.style_shift * _unit_rows(rng, 1, dim)[0]  # (C,)
    gain = float(np.exp(rng.normal(0.0, cfg.style_shift / 2)))
    base = background + offset  # (T, C)

    grid = cfg.spatial_grid
    if grid is None:
        signal = amp @ pattern + (amp * phase) @ phase_vec  # (T, C)
        noise = _smoothed_noise(rng, (num_steps, dim), cfg)
        feats = gain * (base + signal) + noise
    else:
        # each event sits at a random location: Gaussian blob of about one cell
        centres = rng.uniform(0.0, grid, size=(len(events), 2))
        ys, xs = np.meshgrid(np.arange(grid) + 0.5, np.arange(grid) + 0.5, indexing="ij")
        d2 = (ys[None] - centres[:, 0, None, None]) ** 2 + (xs[None] - centres[:, 1, None, None]) ** 2
        weight = np.exp(-d2 / (2 * 0.6**2)).reshape(len(events), grid * grid)  # (E, g*g)
        amp32, phase32 = amp.astype(np.float32), (amp * phase).astype(np.float32)
        pattern32, phase_vec32, weight32 = pattern.astype(np.float32), phase_vec.astype(np.float32), weight.astype(np.float32)
        signal = (np.einsum("te,ec,es->tcs", amp32, pattern32, weight32)
                  + np.einsum("te,ec,es->tcs", phase32, phase_vec32, weight32))  # (T, C, g*g)
        noise = _smoothed_noise(rng, (num_steps, dim, grid * grid), cfg)
        signal += base.astype(np.float32)[:, :, None]
        signal *= gain
        signal += noise
        feats = signal  # (T, C, g*g)
        feats = feats.reshape(num_steps, dim, grid, grid)
    return feats.astype(np.float32), timestamps, padded


def _smoothed_noise(rng: np.random.Generator, shape: tuple, cfg: SyntheticConfig) -> np.ndarray:
    """Gaussian noise along axis 0 (time), smoothed, with std ``cfg.noise`` along any unit direction."""
    # float32 for (T, C, g*g) grids, which get large; float64 otherwise
    noise = rng.standard_normal(shape, dtype=np.float32 if len(shape) > 2 else np.float64)
    if cfg.noise_smoothing > 0 and shape[0] > 1:
        noise = gaussian_filter1d(noise, sigma=cfg.noise_smoothing, axis=0, mode="reflect")
        kernel = np.exp(-0.5 * (np.arange(-4 * cfg.noise_smoothing, 4 * cfg.noise_smoothing + 1) / cfg.noise_smoothing) ** 2)
        noise /= np.sqrt(np.sum((kernel / kernel.sum()) ** 2))  # back to unit variance
    return cfg.noise * noise


# --------------------------------------------------------------------------- store
@dataclass
class SyntheticSummary:
    store: Path
    annotations: Path
    num_videos: int
    num_steps: int
    seconds: float


def make_synthetic_store(
    layout: Layout,
    out_path: str | Path,
    cfg: SyntheticConfig = SyntheticConfig(),
    ann_out: str | Path | None = None,
    holdout: bool = False,
    holdout_jitter: float = 0.25,
    overwrite: bool = False,
    store_dtype: str = "float16",
    progress: bool = False,
) -> SyntheticSummary:
    """Write synthetic features for every video of ``layout`` to a tad store at ``out_path``
    and the (possibly perturbed) layout as annotation JSON at ``ann_out``
    (default: ``out_path`` with suffix ``.json``). Resumable: videos already in the
    store are not recomputed."""
    import time

    try:
        from tad.features.store import FeatureStoreWriter
    except ImportError:  # the writer may live in its own module
        from tad.features.store_writer import FeatureStoreWriter

    t0 = time.perf_counter()
    out_path = Path(out_path)
    ann_out = Path(ann_out) if ann_out is not None else out_path.with_suffix(".json")
    salt = _HOLDOUT_SALT if holdout else 0
    # durations as the annotation JSON writes them (ms), so store and annotations agree
    layout = Layout(list(layout.classes), {vid: replace(v, duration=round(float(v.duration), 3))
                                           for vid, v in layout.videos.items()})
    if holdout:
        layout = perturb_layout(layout, seed=cfg.seed, jitter=holdout_jitter)
    write_annotations(layout, ann_out)
    prototypes = _make_prototypes(cfg, len(layout.classes), salt)
    options = dict(cfg.to_dict(), generator="tad.synthetic_features", holdout=holdout, holdout_jitter=holdout_jitter,
                   fps=cfg.fps, clip_len=cfg.clip_len, clip_stride=cfg.clip_stride, frame_interval=1,
                   classes=list(layout.classes))
    meta = dict(backbone="synthetic", checkpoint_name="", checkpoint_sha256="", options=options)
    writer = FeatureStoreWriter(out_path, meta=meta, overwrite=overwrite, dtype=store_dtype)
    done = set(writer.completed)
    ids = sorted(layout.videos)
    iterator = ids
    if progress:
        from tqdm import tqdm

        iterator = tqdm(ids, desc="synthetic features", unit="video")
    num_steps = 0
    for vid in iterator:
        if vid in done:
            continue
        video = layout.videos[vid]
        feats, timestamps, padded = synthesize_video(video, cfg, prototypes, salt)
        num_steps += len(timestamps)
        attrs = dict(fps=cfg.fps, num_frames=int(round(video.duration * cfg.fps)), duration=float(video.duration),
                     source_path=f"synthetic://{vid}", source_size=0, source_mtime=0.0, padded=bool(padded))
        writer.write_video(vid, feats, timestamps, attrs)
    store = writer.finalize()
    return SyntheticSummary(Path(store), ann_out, len(ids), num_steps, time.perf_counter() - t0)
