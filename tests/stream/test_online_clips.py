"""Clips assembled online from a live source equal the offline extractor's (frames, centres, features)."""
import numpy as np
import pytest
import torch

from extract_video_utils import make_video

from tad.features.extract import ExtractOptions, extract_videos
from tad.features.extract_options import effective_options, geometry_for
from tad.features.feature_model import FeatureModel, build_backbone
from tad.features.feature_sinks import MemorySink
from tad.features.live_source import LiveFrameSource
from tad.features.online_clips import OnlineClipAssembler


def _stream_features(path, opts):
    model, _, _ = build_backbone(opts)
    spec = model.spec
    options = effective_options(opts, spec)
    runner = FeatureModel(model, spec, opts, spec.mean, spec.std, torch.device("cpu"))
    assembler = OnlineClipAssembler(options["clip_len"], options["frame_interval"], options["clip_stride"],
                                    options["fps"])
    source = LiveFrameSource(str(path), geometry_for(opts, spec))
    clips = []
    for frame in source:
        clips += assembler.push(frame.time, frame.rgb)
    clips += assembler.finish()
    source.close()
    assert [c.index for c in clips] == list(range(len(clips)))
    feats = np.concatenate([runner(torch.from_numpy(c.frames)[None]) for c in clips])
    return feats, np.array([c.centre for c in clips])


@pytest.mark.parametrize("fps,frames", [("native", 45), (10, 45), ("native", 5)])
def test_stream_clips_equal_offline_extraction(tmp_path, fps, frames):
    video = make_video(tmp_path / "v.mp4", num_frames=frames)
    opts = ExtractOptions(backbone="tiny3d", random_init=True, fps=fps, clip_stride=3, short_side=64, crop=64,
                          workers=0, store_dtype="float32", backbone_kwargs=dict(feature_dim=16))
    sink = MemorySink()
    summary = extract_videos([str(video)], str(tmp_path), None, opts, progress=False, sink=sink)
    assert summary.done == ["v"]
    offline = sink.videos["v"]
    feats, centres = _stream_features(video, opts)
    assert feats.shape == offline.features.shape
    np.testing.assert_allclose(centres, offline.timestamps, atol=1e-4)
    np.testing.assert_allclose(feats, offline.features, atol=1e-5)


def test_resampling_matches_offline_timeline():
    """fps=10 from 30 fps frames: the frame showing at t0 + k / 10, as resample_timeline picks it."""
    from tad.features.decoding import resample_timeline

    pts = np.arange(31) / 30.0
    assembler = OnlineClipAssembler(clip_len=1, frame_interval=1, clip_stride=1, fps=10)
    clips = []
    for i, t in enumerate(pts):
        clips += assembler.push(float(t), np.full((2, 2, 3), i, dtype=np.uint8))
    clips += assembler.finish()
    timeline = resample_timeline(pts, np.full(31, 1 / 30.0), 10)
    assert [int(c.frames[0, 0, 0, 0]) for c in clips] == timeline.source_index.tolist()
