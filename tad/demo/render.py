"""A synthetic untrimmed-video dataset: real H.264 mp4 files plus THUMOS-format annotations.

Each video shows a cluttered, slowly scrolling background with drifting grey
distractor blobs. At random, non-overlapping times one of a few *actions* happens:
a coloured shape that moves in a class-specific way (slides, bounces, spins,
flashes). An action is drawn on frame ``k`` exactly when ``t0 <= k / fps < t1``
for its annotated segment ``[t0, t1]`` (segment bounds lie on the frame grid), so
the annotations are the ground truth of what was drawn.

Everything is determined by ``seed``: the same seed gives the same frames. Drawing is
vectorised numpy over chunks of frames; encoding goes through PyAV (libx264).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import av
import numpy as np

__all__ = [
    "ACTION_CLASSES",
    "CLASS_COLORS",
    "ActionInstance",
    "ClassDeck",
    "DemoDataset",
    "VideoPlan",
    "draw_frames",
    "plan_video",
    "render_dataset",
    "write_mp4",
]

# Class name -> RGB colour of its shape. Saturated colours over a muted background.
ACTION_CLASSES: tuple[str, ...] = ("SlideSquare", "BounceBall", "SpinBar", "FlashDiamond")
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "SlideSquare": (225, 35, 35),
    "BounceBall": (35, 205, 60),
    "SpinBar": (45, 90, 240),
    "FlashDiamond": (245, 225, 30),
}

_CHUNK = 64  # frames drawn per vectorised step
_TEXTURE = 128  # side of the periodic background texture (pixels)


@dataclass(frozen=True)
class ActionInstance:
    """One action: frames ``[start_frame, end_frame)`` and the shape's motion parameters."""

    label: str
    start_frame: int
    end_frame: int
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to draw one video, derived from the seed."""

    video_id: str
    subset: str  # "Validation" (train) or "Test"
    num_frames: int
    fps: int
    size: tuple[int, int]  # (height, width)
    actions: tuple[ActionInstance, ...]
    seed: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps


@dataclass
class DemoDataset:
    """What :func:`render_dataset` wrote."""

    video_dir: Path
    ann_file: Path
    classes: list[str]
    plans: list[VideoPlan]

    def subset_ids(self, subset: str) -> list[str]:
        return [p.video_id for p in self.plans if p.subset.lower() == subset.lower()]


# ----------------------------------------------------------------------------- planning


def _place_actions(rng: np.random.Generator, num_frames: int, fps: int, count: int,
                   min_len_s: float, max_len_s: float, gap_s: float) -> list[tuple[int, int]]:
    """Random non-overlapping frame intervals, at least ``gap_s`` apart and from the ends."""
    placed: list[tuple[int, int]] = []
    gap = int(round(gap_s * fps))
    for _ in range(count):
        for _attempt in range(100):
            length = int(round(rng.uniform(min_len_s, max_len_s) * fps))
            hi = num_frames - gap - length
            if hi <= gap:
                break
            start = int(rng.integers(gap, hi))
            end = start + length
            if all(end + gap <= s or start >= e + gap for s, e in placed):
                placed.append((start, end))
                break
    return sorted(placed)


def _motion_params(rng: np.random.Generator, label: str, height: int, width: int) -> dict:
    """Per-instance shape size, position and motion; sizes scale with the frame."""
    unit = min(height, width) / 96.0
    if label == "SlideSquare":
        half = rng.uniform(10, 13) * unit
        left_to_right = bool(rng.integers(2))
        x0, x1 = (half, width - half) if left_to_right else (width - half, half)
        return dict(half=half, x0=x0, x1=x1, y=rng.uniform(half + 4, height - half - 4))
    if label == "BounceBall":
        radius = rng.uniform(10, 13) * unit
        return dict(radius=radius, x=rng.uniform(radius + 8, width - radius - 8),
                    drift=rng.uniform(-6, 6) * unit, floor=height - radius - 3,
                    amplitude=rng.uniform(0.45, 0.6) * height, hz=rng.uniform(0.8, 1.4))
    if label == "SpinBar":
        length = rng.uniform(20, 26) * unit
        return dict(half_len=length, half_width=rng.uniform(4, 5.5) * unit,
                    cx=rng.uniform(length + 2, width - length - 2), cy=rng.uniform(length + 2, height - length - 2),
                    omega=rng.choice([-1.0, 1.0]) * rng.uniform(2.5, 4.0) * np.pi,  # rad/s
                    phase=rng.uniform(0, np.pi))
    if label == "FlashDiamond":
        radius = rng.uniform(13, 17) * unit
        return dict(radius=radius, cx=rng.uniform(radius + 2, width - radius - 2),
                    cy=rng.uniform(radius + 2, height - radius - 2), hz=rng.uniform(2.0, 3.0), duty=0.6)
    raise KeyError(label)


class ClassDeck:
    """Labels dealt like cards from a shuffled deck holding every class once, refilled when
    empty: any ``k * len(classes)`` consecutive draws hold each class ``k`` times."""

    def __init__(self, rng: np.random.Generator, classes: Sequence[str] = ACTION_CLASSES):
        self.rng, self.classes, self.cards = rng, list(classes), []

    def draw(self) -> str:
        if not self.cards:
            self.cards = [self.classes[i] for i in self.rng.permutation(len(self.classes))]
        return self.cards.pop()


def plan_video(video_id: str, subset: str, seed: int, fps: int = 15, size: tuple[int, int] = (96, 96),
               min_duration: float = 20.0, max_duration: float = 60.0,
               action_len: tuple[float, float] = (2.0, 7.0), deck: ClassDeck | None = None) -> VideoPlan:
    """Draw the random layout of one video (length, actions, motions) from ``seed``.

    Action labels come from ``deck`` when given (balanced classes across videos), else
    uniformly at random.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    num_frames = int(round(rng.uniform(min_duration, max_duration) * fps))
    duration = num_frames / fps
    count = int(rng.integers(1, max(2, int(duration // 10) + 1)))
    intervals = _place_actions(rng, num_frames, fps, count, action_len[0], action_len[1], gap_s=1.0)
    actions = []
    for start, end in intervals:
        label = deck.draw() if deck is not None else ACTION_CLASSES[int(rng.integers(len(ACTION_CLASSES)))]
        actions.append(ActionInstance(label, start, end, _motion_params(rng, label, height, width)))
    return VideoPlan(video_id, subset, num_frames, fps, (height, width), tuple(actions), seed)


# ----------------------------------------------------------------------------- drawing


@functools.lru_cache(maxsize=4)
def _background_texture(seed: int) -> np.ndarray:
    """A periodic (wraps at the edges) blobby texture, muted colours. (S, S, 3) uint8."""
    rng = np.random.default_rng([seed, 2])
    s = _TEXTURE
    freq = np.fft.fftfreq(s)
    radius = np.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    lowpass = np.exp(-(radius / 0.06) ** 2)  # blobs of ~10-20 px
    channels = []
    for _ in range(3):
        noise = rng.standard_normal((s, s))
        smooth = np.real(np.fft.ifft2(np.fft.fft2(noise) * lowpass))
        channels.append((smooth - smooth.mean()) / (smooth.std() + 1e-8))
    tex = np.stack(channels, axis=-1)  # (S, S, 3), roughly N(0, 1)
    luminance = tex.mean(axis=-1, keepdims=True)
    # Mostly luminance clutter with a little colour: greys and browns, never saturated.
    tex = 110 + 38 * luminance + 4 * (tex - luminance) + np.array([8.0, 2.0, -8.0])
    return np.clip(tex, 40, 185).astype(np.uint8)


def draw_frames(plan: VideoPlan, start: int, stop: int) -> np.ndarray:
    """Frames ``[start, stop)`` of ``plan`` as (F, H, W, 3) uint8 RGB, drawn vectorised."""
    rng = np.random.default_rng([plan.seed, 1])
    texture = _background_texture(plan.seed)
    height, width = plan.size
    fps = plan.fps
    frame_idx = np.arange(start, stop)
    t = frame_idx / fps  # (F,) seconds
    yy = np.arange(height, dtype=np.float64)[None, :, None]  # (1, H, 1)
    xx = np.arange(width, dtype=np.float64)[None, None, :]  # (1, 1, W)

    # Scrolling background: the periodic texture sampled at a moving offset.
    velocity = rng.uniform(-8, 8, size=2)  # px/s (y, x)
    wobble = rng.uniform(2, 6)
    oy = np.round(velocity[0] * t + wobble * np.sin(0.3 * t)).astype(np.int64)
    ox = np.round(velocity[1] * t + wobble * np.cos(0.2 * t)).astype(np.int64)
    rows = (np.arange(height)[None, :] + oy[:, None]) % _TEXTURE  # (F, H)
    cols = (np.arange(width)[None, :] + ox[:, None]) % _TEXTURE  # (F, W)
    frames = texture[rows[:, :, None], cols[:, None, :]].astype(np.int16)  # (F, H, W, 3)
    # Slow global brightness drift, like auto exposure.
    frames += np.round(12 * np.sin(2 * np.pi * t / rng.uniform(8, 20) + rng.uniform(0, 6)))[:, None, None, None].astype(np.int16)

    # Grey distractor blobs drifting across and wrapping around.
    for _ in range(int(rng.integers(3, 6))):
        radius = rng.uniform(3, 8) * min(height, width) / 96.0
        pos0 = rng.uniform(0, 1, size=2) * (height, width)
        vel = rng.uniform(-10, 10, size=2)
        shade = int(rng.integers(150, 235))
        cy = np.mod(pos0[0] + vel[0] * t, height)[:, None, None]
        cx = np.mod(pos0[1] + vel[1] * t, width)[:, None, None]
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2  # (F, H, W)
        frames[mask] = shade

    for action in plan.actions:
        lo, hi = max(start, action.start_frame), min(stop, action.end_frame)
        if lo >= hi:
            continue
        local = np.arange(lo, hi)
        masks = _shape_masks(action, local - action.start_frame, fps, yy, xx)  # (f, H, W)
        color = np.array(CLASS_COLORS[action.label], dtype=np.int16)
        chunk = frames[lo - start:hi - start]
        chunk[masks] = color
    return np.clip(frames, 0, 255).astype(np.uint8)


def _shape_masks(action: ActionInstance, local_frames: np.ndarray, fps: int,
                 yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Masks (f, H, W) of ``action``'s shape at frame offsets ``local_frames`` into the action."""
    p = action.params
    tau = (local_frames / fps)[:, None, None]  # (f, 1, 1) seconds into the action
    if action.label == "SlideSquare":
        length = max(action.end_frame - action.start_frame - 1, 1)
        progress = (local_frames / length)[:, None, None]
        cx = p["x0"] + (p["x1"] - p["x0"]) * progress
        return (np.abs(xx - cx) <= p["half"]) & (np.abs(yy - p["y"]) <= p["half"])
    if action.label == "BounceBall":
        cy = p["floor"] - p["amplitude"] * np.abs(np.sin(np.pi * p["hz"] * tau))
        cx = p["x"] + p["drift"] * np.sin(0.5 * tau)
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= p["radius"] ** 2
    if action.label == "SpinBar":
        angle = p["phase"] + p["omega"] * tau
        dx, dy = xx - p["cx"], yy - p["cy"]
        along = dx * np.cos(angle) + dy * np.sin(angle)
        across = -dx * np.sin(angle) + dy * np.cos(angle)
        return (np.abs(along) <= p["half_len"]) & (np.abs(across) <= p["half_width"])
    if action.label == "FlashDiamond":
        on = np.mod(tau * p["hz"], 1.0) < p["duty"]
        inside = np.abs(xx - p["cx"]) + np.abs(yy - p["cy"]) <= p["radius"]
        return inside & on
    raise KeyError(action.label)


# ----------------------------------------------------------------------------- files


def write_mp4(path: Path, plan: VideoPlan, crf: int = 20) -> None:
    """Encode ``plan`` as H.264 (yuv420p) at ``plan.fps``, drawing chunk by chunk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = plan.size
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=plan.fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        # One thread: x264 output then depends on nothing but the frames (deterministic).
        stream.options = {"preset": "veryfast", "crf": str(crf), "threads": "1"}
        for start in range(0, plan.num_frames, _CHUNK):
            for rgb in draw_frames(plan, start, min(start + _CHUNK, plan.num_frames)):
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)


def annotation_json(plans: list[VideoPlan]) -> dict:
    """THUMOS14 / ActionFormer-format annotations of ``plans``."""
    database = {}
    for plan in plans:
        annotations = [
            {
                "label": a.label,
                "segment": [round(a.start_frame / plan.fps, 6), round(a.end_frame / plan.fps, 6)],
                "segment(frames)": [float(a.start_frame), float(a.end_frame)],
                "label_id": ACTION_CLASSES.index(a.label),
            }
            for a in plan.actions
        ]
        database[plan.video_id] = {
            "subset": plan.subset,
            "duration": round(plan.duration, 6),
            "fps": float(plan.fps),
            "annotations": annotations,
        }
    return {"version": "tad-demo-synthetic-v1", "database": database}


def plan_dataset(num_videos: int = 24, seed: int = 0, test_fraction: float = 0.4, **plan_kwargs) -> list[VideoPlan]:
    """Plans of ``num_videos`` videos; the last ``test_fraction`` of them form the Test subset."""
    if num_videos < 2:
        raise ValueError("the demo needs at least 2 videos (one to train on, one to test)")
    num_test = min(max(1, int(round(num_videos * test_fraction))), num_videos - 1)
    # One deck per subset: each subset sees the classes in balanced numbers (every class
    # appears in a subset holding at least len(ACTION_CLASSES) actions).
    decks = {name: ClassDeck(np.random.default_rng([seed, k, 7])) for k, name in enumerate(("Validation", "Test"))}
    plans = []
    for i in range(num_videos):
        subset = "Test" if i >= num_videos - num_test else "Validation"
        prefix = "video_test" if subset == "Test" else "video_validation"
        video_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        plans.append(plan_video(f"{prefix}_{i:04d}", subset, seed=video_seed, deck=decks[subset], **plan_kwargs))
    return plans


def _write_one(job: tuple[Path, VideoPlan]) -> str:
    write_mp4(*job)
    return job[1].video_id


def render_dataset(out_dir: str | Path, num_videos: int = 24, seed: int = 0, progress: bool = False,
                   workers: int = 1, **plan_kwargs) -> DemoDataset:
    """Write ``out_dir/videos/*.mp4`` and ``out_dir/annotations.json``; deterministic by ``seed``.

    ``plan_kwargs`` go to :func:`plan_video` (``fps``, ``size``, ``min_duration``,
    ``max_duration``, ``action_len``). Existing files are overwritten. ``workers > 1``
    renders videos in that many processes (the files do not depend on it).
    """
    out_dir = Path(out_dir)
    video_dir = out_dir / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)
    plans = plan_dataset(num_videos, seed, **plan_kwargs)
    jobs = [(video_dir / f"{plan.video_id}.mp4", plan) for plan in plans]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="render", unit="video")
    # Encoding always runs in fresh (spawned) processes: x264's output in a process that
    # has already decoded video with decord's own FFmpeg was seen to differ, and a forked
    # child can inherit a held libav lock. Fresh processes make the files depend on the
    # seed alone, whatever the caller did before.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))), mp_context=context) as pool:
        for _ in pool.map(_write_one, jobs):
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    ann_file = out_dir / "annotations.json"
    ann_file.write_text(json.dumps(annotation_json(plans), indent=1))
    return DemoDataset(video_dir, ann_file, list(ACTION_CLASSES), plans)
