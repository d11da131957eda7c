from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
import torch

from tad.datasets.collate import tad_collate
from tad.datasets.feature_dataset import FeatureDataset
from tad.errors import TadInputError


def uniform_ts(T, step=4 / 30):
    return (np.arange(T) * 4 + 8) / 30 if step == 4 / 30 else np.arange(T) * step


def test_test_item_maps_seconds_to_grid_through_nonuniform_timestamps(make_data):
    ts = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])  # steps 1, 2, 3, 4, 5 s
    feats = np.random.RandomState(0).randn(6, 8)
    ann, store = make_data({"v1": ("Test", 16.0, [(2.0, 8.0, "b"), (0.5, 12.5, "c")])}, {"v1": (feats, ts)})
    ds = FeatureDataset(ann, store, subset="test", training=False)
    item = ds[0]
    assert item["inputs"].dtype == torch.float32 and item["inputs"].shape == (8, 6)
    np.testing.assert_allclose(item["inputs"].numpy(), feats.T.astype(np.float32))
    sample = item["data_samples"]
    assert sample["video_id"] == "v1" and sample["duration"] == 16.0
    np.testing.assert_array_equal(sample["timestamps"], ts)
    # 2 s lies halfway between 1 s (i=1) and 3 s (i=2); 8 s halfway between 6 (i=3) and 10 (i=4)
    np.testing.assert_allclose(sample["gt_segments"].numpy(), [[1.5, 3.5], [0.5, 4.5]], atol=1e-6)
    assert [ds.classes[i] for i in sample["gt_labels"].tolist()] == ["b", "c"]
    assert ds.metainfo == {"classes": tuple(ds.classes), "class_agnostic": False}


def test_spatial_grid_features_become_channels_first(make_data):
    ts = uniform_ts(5)
    feats = np.random.RandomState(1).randn(5, 4, 2, 2)
    ann, store = make_data({"v": ("Test", 2.0, [(0.3, 0.6, "a")])}, {"v": (feats, ts)})
    item = FeatureDataset(ann, store, subset="Test", training=False)[0]
    assert item["inputs"].shape == (4, 5, 2, 2)
    np.testing.assert_allclose(item["inputs"].numpy(), np.moveaxis(feats, 0, 1).astype(np.float32))


def test_training_windows_keep_actions_at_least_half_inside(make_data):
    rng = np.random.RandomState(2)
    T, L = 200, 40
    ts = np.arange(T, dtype=np.float64)  # 1 s per step: grid position == seconds
    segments = [(float(s), float(s + d), "abc"[i % 3]) for i, (s, d) in
                enumerate(zip(rng.uniform(0, 185, 25), rng.uniform(2, 15, 25)))]
    ann, store = make_data({"v": ("Validation", 200.0, segments)}, {"v": (rng.randn(T, 3), ts)})
    ds = FeatureDataset(ann, store, subset="validation", max_seq_len=L, trunc_thresh=0.5)
    all_gt = np.array([[s[0], s[1]] for s in segments])
    for _ in range(30):
        item = ds[0]
        sample = item["data_samples"]
        assert item["inputs"].shape == (3, L) and len(sample["timestamps"]) == L
        start = int(sample["timestamps"][0])
        lo, hi = start - 0.5, start + L - 0.5
        inside = np.clip(np.minimum(all_gt[:, 1], hi) - np.maximum(all_gt[:, 0], lo), 0, None)
        expected = all_gt[inside / (all_gt[:, 1] - all_gt[:, 0]) >= 0.5]
        expected = np.clip(expected - start, -0.5, L - 0.5)
        got = sample["gt_segments"].numpy()
        np.testing.assert_allclose(np.sort(got, axis=0), np.sort(expected, axis=0), atol=1e-5)
        assert len(got) == len(sample["gt_labels"])
        assert (got[:, 0] >= -0.5).all() and (got[:, 1] <= L - 0.5).all()


def test_training_window_retries_until_it_holds_an_action(make_data):
    T, L = 400, 20
    ts = np.arange(T, dtype=np.float64)
    ann, store = make_data({"v": ("Validation", 400.0, [(300.0, 306.0, "a")])}, {"v": (np.zeros((T, 2)), ts)})
    ds = FeatureDataset(ann, store, subset="validation", max_seq_len=L, max_crop_tries=200)
    hits = sum(len(ds[0]["data_samples"]["gt_segments"]) for _ in range(20))
    assert hits == 20  # a random window holds the action in ~6% of tries; retrying finds it


def test_short_videos_are_kept_whole_in_training(make_data):
    ts = uniform_ts(10)
    ann, store = make_data({"v": ("Validation", 3.0, [(0.5, 1.0, "a")])}, {"v": (np.ones((10, 2)), ts)})
    item = FeatureDataset(ann, store, subset="validation", max_seq_len=64)[0]
    assert item["inputs"].shape == (2, 10)
    np.testing.assert_array_equal(item["data_samples"]["timestamps"], ts)


def test_missing_videos_give_one_warning_with_count_and_ids(make_data):
    ts = uniform_ts(8)
    ann_videos = {f"v{i}": ("Test", 2.0, [(0.2, 0.6, "a")]) for i in range(5)}
    ann, store = make_data(ann_videos, {"v0": (np.zeros((8, 2)), ts), "v3": (np.zeros((8, 2)), ts)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FeatureDataset(ann, store, subset="test", training=False)
    messages = [str(w.message) for w in caught if "missing" in str(w.message)]
    assert len(messages) == 1
    assert "3 of 5 videos" in messages[0] and "v1, v2, v4" in messages[0]
    assert ds.video_ids == ["v0", "v3"] and len(ds) == 2


def test_no_usable_video_is_a_one_line_error(make_data):
    ann, store = make_data({"x": ("Test", 2.0, [])}, {"y": (np.zeros((4, 2)), uniform_ts(4))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TadInputError, match="no usable videos"):
            FeatureDataset(ann, store, subset="test", training=False)


def test_nan_features_raise_error_naming_the_video(make_data):
    ts = uniform_ts(6)
    ann, store = make_data({"good": ("Test", 2.0, []), "broken_vid": ("Test", 2.0, [])},
                           {"good": (np.zeros((6, 2)), ts), "broken_vid": (np.zeros((6, 2)), ts)})
    with h5py.File(store, "r+") as h5:  # the writer refuses NaN: damage the file afterwards
        h5["videos/broken_vid/features"][3, 1] = np.nan
    ds = FeatureDataset(ann, store, subset="test", training=False)
    ds[ds.video_ids.index("good")]
    with pytest.raises(TadInputError, match="broken_vid.*NaN/inf") as info:
        ds[ds.video_ids.index("broken_vid")]
    assert "\n" not in str(info.value)


def test_classes_option_remaps_labels_by_name(make_data):
    ts = uniform_ts(6)
    ann, store = make_data({"v": ("Test", 2.0, [(0.3, 0.5, "a"), (0.4, 0.6, "c")])}, {"v": (np.zeros((6, 2)), ts)})
    ds = FeatureDataset(ann, store, subset="test", training=False, classes=["c", "a"])
    assert ds[0]["data_samples"]["gt_labels"].tolist() == [1, 0]


def test_unannotated_mode_uses_every_stored_video(make_data):
    ts = uniform_ts(6)
    _, store = make_data({"v": ("Test", 2.0, [])}, {"v": (np.zeros((6, 2)), ts), "w": (np.ones((6, 2)), ts)})
    ds = FeatureDataset(None, store, classes=["x"], training=False)
    assert ds.video_ids == ["v", "w"]
    assert ds[1]["data_samples"]["gt_segments"].shape == (0, 2)


def test_collate_pads_and_masks():
    items = [dict(inputs=torch.ones(3, n), data_samples=dict(video_id=str(n))) for n in (4, 7, 2)]
    batch = tad_collate(items)
    feats, masks = batch["inputs"]["feats"], batch["inputs"]["masks"]
    assert feats.shape == (3, 3, 7) and masks.shape == (3, 7) and masks.dtype == torch.bool
    assert masks.sum(1).tolist() == [4, 7, 2]
    assert feats[0, :, 4:].abs().sum() == 0 and feats[0, :, :4].eq(1).all()
    assert [s["video_id"] for s in batch["data_samples"]] == ["4", "7", "2"]


def test_collate_spatial_grid():
    items = [dict(inputs=torch.randn(2, n, 3, 3), data_samples={}) for n in (5, 3)]
    batch = tad_collate(items)
    assert batch["inputs"]["feats"].shape == (2, 2, 5, 3, 3)
    torch.testing.assert_close(batch["inputs"]["feats"][1, :, :3], items[1]["inputs"])
    assert batch["inputs"]["masks"].tolist() == [[True] * 5, [True] * 3 + [False] * 2]


def test_dataloader_workers_each_open_the_store(make_data):
    ts = uniform_ts(6)
    videos = {f"v{i}": (np.full((6, 2), i, dtype=np.float32), ts) for i in range(4)}
    ann, store = make_data({vid: ("Test", 2.0, []) for vid in videos}, videos)
    ds = FeatureDataset(ann, store, subset="test", training=False)
    ds[0]  # the parent has an open handle before forking
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=tad_collate)
    seen = {}
    for batch in loader:
        for feats, sample in zip(batch["inputs"]["feats"], batch["data_samples"]):
            seen[sample["video_id"]] = float(feats.mean())
    assert seen == {f"v{i}": float(i) for i in range(4)}


# ---------------------------------------------------------------- input strategies
def test_thumos_alias_is_the_feature_dataset_with_a_deprecation_warning(make_data):
    from tad.datasets.thumos_feature_dataset import THUMOSFeatureDataset
    from tad.registry import DATASETS

    ts = uniform_ts(6)
    ann, store = make_data({"v": ("Test", 2.0, [(0.3, 0.6, "a")])}, {"v": (np.ones((6, 2)), ts)})
    with pytest.warns(DeprecationWarning, match="FeatureDataset"):
        old = DATASETS.build(dict(type="THUMOSFeatureDataset", ann_file=str(ann), feature_store=str(store),
                                  subset="test", training=False))
    assert isinstance(old, THUMOSFeatureDataset) and isinstance(old, FeatureDataset)
    new = FeatureDataset(ann, store, subset="test", training=False)
    for key in ("gt_segments", "gt_labels"):
        torch.testing.assert_close(old[0]["data_samples"][key], new[0]["data_samples"][key])
    torch.testing.assert_close(old[0]["inputs"], new[0]["inputs"])


def test_resize_interpolates_to_n_steps_and_maps_segments_through_resized_timestamps(make_data):
    from tad.detectors.timeline import grid_to_seconds

    T, N = 37, 16
    ts = np.arange(T) * 1.5 + 0.75  # 1.5 s per step
    feats = np.stack([np.arange(T, dtype=np.float64), np.full(T, 2.0)], axis=1)  # a ramp and a constant
    segments = [(6.0, 20.0, "a"), (30.0, 50.0, "c")]
    ann, store = make_data({"v": ("Validation", 56.0, segments)}, {"v": (feats, ts)})
    for training in (True, False):
        ds = FeatureDataset(ann, store, subset="validation", strategy="resize", max_seq_len=N, training=training)
        item = ds[0]
        sample = item["data_samples"]
        assert item["inputs"].shape == (2, N) and len(sample["timestamps"]) == N
        positions = (np.arange(N) + 0.5) * T / N - 0.5  # align_corners=False
        # the ramp is linear: interpolation gives the positions themselves (clamped at the ends)
        np.testing.assert_allclose(item["inputs"][0].numpy(), np.clip(positions, 0, T - 1), atol=1e-4)
        np.testing.assert_allclose(item["inputs"][1].numpy(), 2.0)
        np.testing.assert_allclose(sample["timestamps"], positions * 1.5 + 0.75, atol=1e-9)
        # ground truth in resized steps comes back to its seconds through the resized timestamps
        back = grid_to_seconds(sample["gt_segments"].numpy().astype(np.float64), sample["timestamps"])
        np.testing.assert_allclose(back, [[6.0, 20.0], [30.0, 50.0]], atol=1e-4)
        assert sample["duration"] == 56.0 and "windows" not in sample


def test_resize_also_upsamples_short_videos(make_data):
    ts = uniform_ts(5)
    ann, store = make_data({"v": ("Test", 2.0, [(0.3, 0.6, "a")])}, {"v": (np.random.randn(5, 3), ts)})
    item = FeatureDataset(ann, store, subset="test", strategy="resize", resize_length=12, max_seq_len=99,
                          training=False)[0]
    assert item["inputs"].shape == (3, 12)
    assert np.all(np.diff(item["data_samples"]["timestamps"]) > 0)


def test_sliding_test_items_carry_overlapping_windows_covering_the_video(make_data):
    from tad.datasets.input_strategies import sliding_windows

    T, L = 100, 32
    ts = np.arange(T, dtype=np.float64)
    ann, store = make_data({"long": ("Test", 100.0, [(10.0, 20.0, "a")]), "short": ("Test", 20.0, [])},
                           {"long": (np.zeros((T, 2)), ts), "short": (np.zeros((20, 2)), ts[:20])})
    ds = FeatureDataset(ann, store, subset="test", strategy="sliding", max_seq_len=L, window_overlap=0.25,
                        training=False)
    long_item = ds[ds.video_ids.index("long")]
    assert long_item["inputs"].shape == (2, T)  # the whole video: the detector walks the windows
    windows = long_item["data_samples"]["windows"]
    assert windows == sliding_windows(T, L, 0.25) == [(0, 32), (24, 56), (48, 80), (68, 100)]
    assert "windows" not in ds[ds.video_ids.index("short")]["data_samples"]
    train = FeatureDataset(ann, store, subset="test", strategy="sliding", max_seq_len=L)
    assert train[train.video_ids.index("long")]["inputs"].shape == (2, L)  # random windows in training


def test_bad_strategy_options_name_the_option(make_data):
    ann, store = make_data({"v": ("Test", 2.0, [])}, {"v": (np.zeros((4, 2)), uniform_ts(4))})
    with pytest.raises(TadInputError, match="strategy.*'zoom'"):
        FeatureDataset(ann, store, subset="test", strategy="zoom")
    with pytest.raises(TadInputError, match="window_overlap"):
        FeatureDataset(ann, store, subset="test", strategy="sliding", window_overlap=1.0)
    with pytest.raises(TadInputError, match="max_seq_len"):
        FeatureDataset(ann, store, subset="test", max_seq_len=0)


def test_class_agnostic_gives_every_action_one_class(make_data):
    ts = uniform_ts(6)
    ann, store = make_data({"v": ("Test", 2.0, [(0.3, 0.5, "a"), (0.4, 0.6, "c")])}, {"v": (np.zeros((6, 2)), ts)})
    ds = FeatureDataset(ann, store, subset="test", training=False, class_agnostic=True)
    assert ds.classes == ["action"] and ds[0]["data_samples"]["gt_labels"].tolist() == [0, 0]
    assert ds.metainfo["class_agnostic"] is True


def test_sliding_windows_predict_a_long_video_end_to_end(make_data):
    """Dataset windows -> detector window by window -> one NMS: segments cover the whole video."""
    from tad.engine.inference import predict_dataset
    from tad.registry import MODELS

    T = 300
    ts = np.arange(T) * 0.5 + 0.25
    ann, store = make_data({"long": ("Test", 150.0, [(10.0, 20.0, "a")])},
                           {"long": (np.random.RandomState(3).randn(T, 8), ts)})
    ds = FeatureDataset(ann, store, subset="test", strategy="sliding", max_seq_len=64, training=False,
                        classes=["a", "b", "c"])
    assert len(ds[0]["data_samples"]["windows"]) == 6
    torch.manual_seed(0)
    model = MODELS.build(dict(type="STPTDetector", in_channels=8, num_classes=3, embed_dim=32, max_seq_len=64,
                              encoder=dict(num_levels=4, num_heads=2, window_size=5, num_local_levels=2,
                                           drop_path=0.0),
                              assigner=dict(regression_ranges=[(0, 4), (4, 8), (8, 16), (16, 10000)]), refine=False))
    segments = np.array([d["segment"] for d in predict_dataset(model, ds, ds.classes, progress=False)["long"]])
    assert len(segments) == 200  # max_seg_num after the one NMS over all windows
    assert segments.min() >= 0.0 and segments.max() <= 150.0
    assert segments[:, 0].min() < 30.0 and segments[:, 1].max() > 120.0  # first and last windows both contribute
