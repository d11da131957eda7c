"""The THUMOS-shaped synthetic feature generator (tad.synthetic_features)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tad.errors import TadInputError
from tad.synthetic_features import (
    CLIP_LEN,
    CLIP_STRIDE,
    FEATURE_FPS,
    _make_prototypes,
    clip_timestamps,
    load_layout,
    make_synthetic_store,
    perturb_layout,
    preset_config,
    random_layout,
    select_videos,
    synthesize_video,
    write_annotations,
)


def _inside(timestamps, segments, margin=0.6):
    """Clips within ``margin`` s of a segment (clips are 16/30 s long, so they overlap its edges)."""
    return np.any((timestamps[:, None] >= segments[None, :, 0] - margin)
                  & (timestamps[:, None] <= segments[None, :, 1] + margin), axis=1)


def test_clip_timestamps_follow_i3d_convention():
    ts, padded = clip_timestamps(10.0)  # 300 frames -> (300 - 16) // 4 + 1 = 72 clips
    assert len(ts) == 72 and not padded
    np.testing.assert_allclose(ts, (4 * np.arange(72) + 8) / 30.0)
    short, padded = clip_timestamps(0.3)  # 9 frames: shorter than one clip
    assert len(short) == 1 and padded
    assert CLIP_LEN == 16 and CLIP_STRIDE == 4 and FEATURE_FPS == 30.0


def test_actions_lie_along_their_class_prototype():
    layout = random_layout(num_videos=2, num_classes=3, seed=3)
    cfg = preset_config("easy", feature_dim=64, seed=1)
    protos = _make_prototypes(cfg, 3, 0)
    video = next(iter(layout.videos.values()))
    feats, ts, _ = synthesize_video(video, cfg, protos)
    assert feats.shape == (len(ts), 64) and feats.dtype == np.float32
    proj = feats @ protos.classes.T  # (T, K)
    for seg, label in zip(video.segments, video.labels):
        core = (ts >= seg[0] + 0.6) & (ts <= seg[1] - 0.6)  # away from the clip-overlap ramps
        assert proj[core, label].mean() > 0.7
        others = [k for k in range(3) if k != label]
        assert proj[core, label].mean() > proj[core][:, others].mean(axis=0).max() + 0.5
    outside = ~_inside(ts, video.segments)
    assert np.abs(proj[outside]).mean() < 0.35


def test_deterministic_by_seed_and_independent_of_other_videos():
    layout = random_layout(num_videos=4, num_classes=3, seed=0)
    cfg = preset_config("medium", feature_dim=32, seed=7)
    vid = sorted(layout.videos)[1]
    a, _, _ = synthesize_video(layout.videos[vid], cfg, _make_prototypes(cfg, 3, 0))
    b, _, _ = synthesize_video(layout.videos[vid], cfg, _make_prototypes(cfg, 3, 0))
    np.testing.assert_array_equal(a, b)
    other_seed = preset_config("medium", feature_dim=32, seed=8)
    c, _, _ = synthesize_video(layout.videos[vid], other_seed, _make_prototypes(other_seed, 3, 0))
    assert not np.allclose(a, c)


def test_confusable_pairs_share_a_component():
    cfg = preset_config("medium", feature_dim=512, confusable_pairs=2, confusion=0.6)
    protos = _make_prototypes(cfg, 6, 0)
    assert len(protos.pairs) == 2
    np.testing.assert_allclose(np.linalg.norm(protos.classes, axis=1), 1.0, atol=1e-9)
    for a, b in protos.pairs:
        assert protos.classes[a] @ protos.classes[b] == pytest.approx(0.6, abs=0.12)
    paired = {k for pair in protos.pairs for k in pair}
    free = [k for k in range(6) if k not in paired]
    assert abs(protos.classes[free[0]] @ protos.classes[free[1]]) < 0.2


def test_noise_level_is_independent_of_feature_dim():
    layout = random_layout(num_videos=1, num_classes=2, segments_per_video=(1, 1), seed=2)
    video = next(iter(layout.videos.values()))
    stds = []
    for dim in (64, 1024):
        cfg = preset_config("medium", feature_dim=dim, background=0.0, style_shift=0.0, distractors_per_minute=0.0, noise=0.5)
        protos = _make_prototypes(cfg, 2, 0)
        feats, ts, _ = synthesize_video(video, cfg, protos)
        direction = protos.background[0]  # a unit vector unrelated to the actions
        stds.append((feats[~_inside(ts, video.segments)] @ direction).std())
    assert stds[0] == pytest.approx(0.5, rel=0.25) and stds[1] == pytest.approx(0.5, rel=0.25)


def test_soft_boundaries_ramp_the_onset():
    layout = random_layout(num_videos=1, num_classes=1, segments_per_video=(1, 1), segment_length=(8.0, 8.0), seed=4)
    video = next(iter(layout.videos.values()))
    ramps = []
    for soft in (0.0, 0.3):
        cfg = preset_config("easy", feature_dim=64, noise=0.0, background=0.0, style_shift=0.0, soft_boundary=soft, phase_strength=0.0)
        protos = _make_prototypes(cfg, 1, 0)
        feats, ts, _ = synthesize_video(video, cfg, protos)
        start = video.segments[0, 0]
        near = np.argmin(np.abs(ts - (start + 1.0)))  # one second after the onset
        ramps.append(float(feats[near] @ protos.classes[0]))
    assert ramps[0] == pytest.approx(1.0, abs=0.02)  # hard boundary: full amplitude
    assert ramps[1] < 0.5  # 2.4 s ramp: under half


def test_distractors_add_unlabelled_events():
    layout = random_layout(num_videos=1, num_classes=2, duration_range=(200.0, 200.0), segments_per_video=(1, 1), seed=5)
    video = next(iter(layout.videos.values()))
    energy = []
    for rate in (0.0, 6.0):
        cfg = preset_config("easy", feature_dim=64, noise=0.0, background=0.0, style_shift=0.0, distractors_per_minute=rate)
        feats, ts, _ = synthesize_video(video, cfg, _make_prototypes(cfg, 2, 0))
        energy.append(np.linalg.norm(feats[~_inside(ts, video.segments)], axis=1).max())
    assert energy[0] < 1e-6 and energy[1] > 0.5


def test_spatial_grid_puts_the_action_at_one_location():
    layout = random_layout(num_videos=1, num_classes=2, segments_per_video=(1, 1), seed=6)
    video = next(iter(layout.videos.values()))
    cfg = preset_config("easy", feature_dim=32, noise=0.0, background=0.0, style_shift=0.0, spatial_grid=4)
    protos = _make_prototypes(cfg, 2, 0)
    feats, ts, _ = synthesize_video(video, cfg, protos)
    assert feats.shape == (len(ts), 32, 4, 4)
    core = (ts >= video.segments[0, 0] + 0.6) & (ts <= video.segments[0, 1] - 0.6)
    cell_response = np.einsum("tcyx,c->yx", feats[core], protos.classes[video.labels[0]]) / core.sum()  # (g, g)
    assert cell_response.max() > 0.4
    assert np.sort(cell_response.ravel())[-5] < 0.5 * cell_response.max()  # concentrated in a few cells
    assert cell_response.mean() < 0.35 * cell_response.max()  # pooling dilutes it


def test_holdout_perturbs_segments_and_classes_but_keeps_videos():
    layout = random_layout(num_videos=6, num_classes=4, seed=0)
    held = perturb_layout(layout, seed=1, jitter=0.25)
    assert held.videos.keys() == layout.videos.keys()
    moved = 0
    for vid, v in layout.videos.items():
        h = held.videos[vid]
        assert h.duration == v.duration and h.subset == v.subset
        assert len(h.segments) == len(v.segments)
        assert np.all(h.segments[:, 0] >= 0) and np.all(h.segments[:, 1] <= v.duration)
        moved += int(not np.allclose(h.segments, v.segments))
        # labels are remapped by one permutation per video: equal labels stay equal
        same = v.labels[:, None] == v.labels[None, :]
        np.testing.assert_array_equal(same, h.labels[:, None] == h.labels[None, :])
    assert moved == 6
    again = perturb_layout(layout, seed=1, jitter=0.25)
    for vid in layout.videos:
        np.testing.assert_array_equal(again.videos[vid].segments, held.videos[vid].segments)


def test_select_videos_by_subset_and_count(thumos_json):
    layout = load_layout(thumos_json)
    assert len(layout.classes) == 20 and len(layout.videos) == 412
    small = select_videos(layout, ["validation", "test"], max_per_subset=5)
    assert len(small.subset("validation")) == 5 and len(small.subset("test")) == 5
    only_test = select_videos(layout, ["Test"])
    assert len(only_test.videos) == 212


def test_annotation_json_round_trips_through_the_loader(tmp_path):
    layout = random_layout(num_videos=4, num_classes=3, seed=9)
    path = write_annotations(layout, tmp_path / "ann.json")
    raw = json.loads(path.read_text())
    entry = next(iter(raw["database"].values()))
    assert {"subset", "duration", "fps", "annotations"} <= set(entry)
    back = load_layout(path)
    for vid, v in layout.videos.items():
        np.testing.assert_allclose(back.videos[vid].segments, v.segments, atol=1e-3)
        names = [layout.classes[k] for k in v.labels]
        assert [back.classes[k] for k in back.videos[vid].labels] == names


def test_unknown_preset_or_option_is_a_one_line_error():
    with pytest.raises(TadInputError, match="unknown difficulty preset"):
        preset_config("impossible")
    with pytest.raises(TadInputError, match="nosie"):
        preset_config("easy", nosie=1.0)


def test_store_holds_the_layout_with_i3d_timestamps(tmp_path):
    from tad.features.store import FeatureStore

    layout = random_layout(num_videos=3, num_classes=2, duration_range=(20.0, 30.0), seed=1)
    cfg = preset_config("medium", feature_dim=16, seed=2)
    summary = make_synthetic_store(layout, tmp_path / "s.h5", cfg)
    assert summary.annotations == tmp_path / "s.json" and summary.num_videos == 3
    store = FeatureStore(summary.store)
    assert sorted(store.videos) == sorted(layout.videos)
    assert store.feature_dim == 16 and store.spatial_grid is None
    assert store.attrs["backbone"] == "synthetic" and store.attrs["options"]["feature_dim"] == 16
    protos = _make_prototypes(cfg, 2, 0)
    for vid, video in layout.videos.items():
        item = store[vid]
        expected, ts, _ = synthesize_video(video, cfg, protos)
        np.testing.assert_allclose(item.timestamps, (4 * np.arange(len(ts)) + 8) / 30.0)
        np.testing.assert_allclose(item.features.astype(np.float32), expected, atol=2e-2, rtol=1e-2)
        assert item.attrs["duration"] == pytest.approx(video.duration, abs=1e-3)
    # holdout: same videos, different features and perturbed annotations
    held = make_synthetic_store(layout, tmp_path / "h.h5", cfg, holdout=True)
    held_store = FeatureStore(held.store)
    vid = sorted(layout.videos)[0]
    assert held_store[vid].features.shape == store[vid].features.shape
    assert not np.allclose(held_store[vid].features, store[vid].features)
    assert load_layout(held.annotations).videos[vid].segments.tolist() != load_layout(summary.annotations).videos[vid].segments.tolist()


def test_make_synthetic_thumos_script(tmp_path, thumos_json):
    import subprocess
    import sys
    from pathlib import Path

    from tad.features.store import FeatureStore

    script = Path(__file__).resolve().parents[1] / "bench" / "make_synthetic_thumos.py"
    out = tmp_path / "synth.h5"
    proc = subprocess.run([sys.executable, str(script), "-o", str(out), "--annotations", str(thumos_json),
                           "--feature-dim", "8", "--max-videos", "1", "--holdout", "--spatial-grid", "2",
                           "--difficulty", "hard"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "videos: 2" in proc.stdout
    store = FeatureStore(out)
    assert len(store) == 2 and store.feature_dim == 8 and store.spatial_grid == 2
    ann = json.loads((tmp_path / "synth.json").read_text())
    assert {v["subset"] for v in ann["database"].values()} == {"Validation", "Test"}
    bad = subprocess.run([sys.executable, str(script), "-o", str(tmp_path / "x.h5"), "--annotations",
                          str(tmp_path / "missing.json")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "missing.json" in bad.stderr.strip().splitlines()[-1]
