"""Continual backbones end to end: `tad extract` offline = the frame-by-frame stream (<= 1e-4) on a real
video, and `tad stream --backbone cox3d_xs` runs the backbone once per frame (X3D-XS res5, 32 px, 10 fps)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tad.cli import main

if str(Path(__file__).resolve().parents[1] / "backbones") not in sys.path:  # parity_recipe (seeded weights)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backbones"))

OPTS = ["--backbone-option", "feature='s5'", "--fps", "10", "--short-side", "32", "--crop", "32"]


def _stream_features(video, clip_stride: int, model=None, frame_interval: int | None = None, fps=10.0):
    """What `tad stream` computes: live frames -> assembler (keep_frames) -> ContinualFeatureStream, frame by frame."""
    from tad.features.continual_features import ContinualFeatureStream
    from tad.features.frame_transforms import FrameGeometry
    from tad.features.live_source import LiveFrameSource
    from tad.features.online_clips import OnlineClipAssembler
    from tad.features.registry import BACKBONES

    model = model or BACKBONES.build(dict(type="cox3d_xs", feature="s5", crop=32)).eval()
    spec = model.spec
    interval = frame_interval or spec.frame_interval
    stream = ContinualFeatureStream(model, spec.clip_len, interval, clip_stride)
    assembler = OnlineClipAssembler(spec.clip_len, interval, clip_stride, fps, keep_frames=True)
    feats, centres = {}, {}
    source = LiveFrameSource(str(video), FrameGeometry(short_side=32, crop=32))
    try:
        for frame in source:
            clips = assembler.push(frame.time, frame.rgb)
            for rgb in assembler.take_frames():
                feats.update(stream.push(rgb[None]))  # one backbone call per output frame
            centres.update({c.index: c.centre for c in clips})
    finally:
        source.close()
    clips = assembler.finish()
    for rgb in assembler.take_frames():
        feats.update(stream.push(rgb[None]))
    feats.update(stream.finish())
    centres.update({c.index: c.centre for c in clips})
    return feats, centres, stream.steps, stream.frames_seen


@pytest.mark.slow
def test_extract_offline_equals_frame_by_frame_stream(real_videos_dir, tmp_path):
    from tad.features.store import FeatureStore

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "tennis26.mp4").symlink_to(real_videos_dir / "tennis26.mp4")
    out = tmp_path / "co.h5"
    result = CliRunner().invoke(main, ["extract", str(videos), "-o", str(out), "--backbone", "cox3d_xs", "--random-init",
                                       *OPTS, "--clip-stride", "8", "--store-dtype", "float32", "--workers", "0",
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    store = FeatureStore(out)
    stored = store["tennis26"]
    options = store.options
    assert options["continual"]["mode"] == "cox3d" and options["clip_len"] == 4 and options["frame_interval"] == 12
    feats, centres, steps, frames = _stream_features(real_videos_dir / "tennis26.mp4", clip_stride=8)
    n = len(stored.features)  # 113 frames at 10 fps: windows of 37 frames every 8 -> 10
    assert n == 10 and sorted(feats) == sorted(centres) == list(range(n))
    stream_feats = np.stack([feats[i] for i in range(n)])  # (10, 192)
    assert np.abs(stream_feats - stored.features).max() <= 1e-4
    assert np.abs(stored.features).mean() > 1e-3
    # timestamps are the clip windows' centres; feature i ends at output frame 8 i + 36
    assert np.allclose(stored.timestamps, [centres[i] for i in range(n)], atol=1e-6)
    assert np.allclose(stored.timestamps, (8 * np.arange(n) + 18.5) / 10, atol=0.02)
    assert frames == 113 and steps == len(range(0, 113, 4))  # phases 0, 4, 8 of 12: a quarter of the frames


@pytest.mark.parametrize("backbone,interval,stride", [("cox3d_xs", 4, 2), ("tsm_mobilenetv2_continual", 2, 4)])
def test_rendered_video_extract_equals_stream(backbone, interval, stride, tmp_path):
    """A rendered video, seeded weights from a checkpoint file (every BN random): the library extraction
    (MemorySink, what `tad detect` uses) = the frame-by-frame stream, for CoX3D and continual TSM."""
    from extract_video_utils import make_video
    from parity_recipe import recipe_state_dict

    from tad.features.extract import ExtractOptions, extract_videos
    from tad.features.feature_sinks import MemorySink
    from tad.features.registry import BACKBONES

    video = make_video(tmp_path / "rendered.mp4", num_frames=30, width=48, height=32)
    model = BACKBONES.build(dict(type=backbone, crop=32)).eval()
    keys = {k: list(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    state = {k: torch.from_numpy(v) for k, v in recipe_state_dict(keys, 1).items()}
    model.load_state_dict(state, strict=False)
    torch.save(state, tmp_path / "weights.pth")
    opts = ExtractOptions(backbone=backbone, checkpoint=str(tmp_path / "weights.pth"), fps="native", short_side=32,
                          crop=32, frame_interval=interval, clip_stride=stride, workers=0, store_dtype="float32",
                          chunk_frames=8)
    sink = MemorySink()
    summary = extract_videos([video], tmp_path, None, opts, progress=False, sink=sink)
    assert not summary.failed and sink.meta["options"]["continual"]["delay_steps"] == 0
    stored = sink.videos["rendered"]
    feats, centres, _, frames = _stream_features(video, stride, model=model, frame_interval=interval, fps=None)
    span = (model.spec.clip_len - 1) * interval + 1
    assert frames == 30 and len(stored.features) == (30 - span) // stride + 1 == len(feats)
    stream_feats = np.stack([feats[i] for i in range(len(feats))])
    assert np.abs(stream_feats - stored.features).max() <= 1e-4 and np.abs(stored.features).mean() > 1e-3
    assert np.allclose(stored.timestamps, [centres[i] for i in range(len(feats))], atol=1e-6)


@pytest.fixture(scope="module")
def x3d_detector(tmp_path_factory):
    """A random-init causal detector taking 192-d X3D-XS res5 features (events need no trained weights here)."""
    import tad.detectors  # noqa: F401
    from tad.detectors.registry import MODELS
    from tad.engine.runner import load_config

    cfg = load_config("tiny_test_x3d_causal.py")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("x3d_det") / "det.pth"
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict(),
                "meta": {"dataset_meta": {"classes": ["jump", "throw", "run"]}}}, path)
    return path


@pytest.mark.slow
def test_tad_stream_backbone_flag_runs_continually(x3d_detector, real_videos_dir, tmp_path):
    args = ["stream", str(real_videos_dir / "tennis26.mp4"), "--config", "tiny_test_x3d_causal.py", "--checkpoint",
            str(x3d_detector), "--random-init", "--threads", "1", "--threshold", "0.01"]
    clip = CliRunner().invoke(main, args + ["--preds-out", str(tmp_path / "clip.json")])
    assert clip.exit_code == 0, clip.output
    assert "continual backbone" not in clip.output  # x3d_xs from the config: clip mode
    co = CliRunner().invoke(main, args + ["--backbone", "cox3d_xs", "--preds-out", str(tmp_path / "co.json")])
    assert co.exit_code == 0, co.output
    # 113 output frames at 10 fps; windows every 4 frames -> phases 0, 4, 8 of 12
    assert "continual backbone: 29 frame steps for 20 features" in co.output
    bad = CliRunner().invoke(main, args + ["--backbone", "cox3d_xs", "--cfg-options", "extract.backbone_kwargs.feature=conv5"])
    assert bad.exit_code == 1 and bad.output.strip() == (
        "Error: --backbone: cox3d_xs gives 432-d features but the detector takes 192-d")
