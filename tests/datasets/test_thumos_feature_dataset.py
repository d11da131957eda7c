from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
import torch

from tad.datasets.collate import tad_collate
from tad.datasets.thumos_feature_dataset import THUMOSFeatureDataset
from tad.errors import TadInputError


def uniform_ts(T, step=4 / 30):
    return (np.arange(T) * 4 + 8) / 30 if step == 4 / 30 else np.arange(T) * step


def test_test_item_maps_seconds_to_grid_through_nonuniform_timestamps(make_data):
    ts = np.array([0.0, 1.0, 3.0, 6.0, 10.0, 15.0])  # steps 1, 2, 3, 4, 5 s
    feats = np.random.RandomState(0).randn(6, 8)
    ann, store = make_data({"v1": ("Test", 16.0, [(2.0, 8.0, "b"), (0.5, 12.5, "c")])}, {"v1": (feats, ts)})
    ds = THUMOSFeatureDataset(ann, store, subset="test", training=False)
    item = ds[0]
    assert item["inputs"].dtype == torch.float32 and item["inputs"].shape == (8, 6)
    np.testing.assert_allclose(item["inputs"].numpy(), feats.T.astype(np.float32))
    sample = item["data_samples"]
    assert sample["video_id"] == "v1" and sample["duration"] == 16.0
    np.testing.assert_array_equal(sample["timestamps"], ts)
    # 2 s lies halfway between 1 s (i=1) and 3 s (i=2); 8 s halfway between 6 (i=3) and 10 (i=4)
    np.testing.assert_allclose(sample["gt_segments"].numpy(), [[1.5, 3.5], [0.5, 4.5]], atol=1e-6)
    assert [ds.classes[i] for i in sample["gt_labels"].tolist()] == ["b", "c"]
    assert ds.metainfo == {"classes": tuple(ds.classes)}


def test_spatial_grid_features_become_channels_first(make_data):
    ts = uniform_ts(5)
    feats = np.random.RandomState(1).randn(5, 4, 2, 2)
    ann, store = make_data({"v": ("Test", 2.0, [(0.3, 0.6, "a")])}, {"v": (feats, ts)})
    item = THUMOSFeatureDataset(ann, store, subset="Test", training=False)[0]
    assert item["inputs"].shape == (4, 5, 2, 2)
    np.testing.assert_allclose(item["inputs"].numpy(), np.moveaxis(feats, 0, 1).astype(np.float32))


def test_training_windows_keep_actions_at_least_half_inside(make_data):
    rng = np.random.RandomState(2)
    T, L = 200, 40
    ts = np.arange(T, dtype=np.float64)  # 1 s per step: grid position == seconds
    segments = [(float(s), float(s + d), "abc"[i % 3]) for i, (s, d) in
                enumerate(zip(rng.uniform(0, 185, 25), rng.uniform(2, 15, 25)))]
    ann, store = make_data({"v": ("Validation", 200.0, segments)}, {"v": (rng.randn(T, 3), ts)})
    ds = THUMOSFeatureDataset(ann, store, subset="validation", max_seq_len=L, trunc_thresh=0.5)
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
    ds = THUMOSFeatureDataset(ann, store, subset="validation", max_seq_len=L, max_crop_tries=200)
    hits = sum(len(ds[0]["data_samples"]["gt_segments"]) for _ in range(20))
    assert hits == 20  # a random window holds the action in ~6% of tries; retrying finds it


def test_short_videos_are_kept_whole_in_training(make_data):
    ts = uniform_ts(10)
    ann, store = make_data({"v": ("Validation", 3.0, [(0.5, 1.0, "a")])}, {"v": (np.ones((10, 2)), ts)})
    item = THUMOSFeatureDataset(ann, store, subset="validation", max_seq_len=64)[0]
    assert item["inputs"].shape == (2, 10)
    np.testing.assert_array_equal(item["data_samples"]["timestamps"], ts)


def test_missing_videos_give_one_warning_with_count_and_ids(make_data):
    ts = uniform_ts(8)
    ann_videos = {f"v{i}": ("Test", 2.0, [(0.2, 0.6, "a")]) for i in range(5)}
    ann, store = make_data(ann_videos, {"v0": (np.zeros((8, 2)), ts), "v3": (np.zeros((8, 2)), ts)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = THUMOSFeatureDataset(ann, store, subset="test", training=False)
    messages = [str(w.message) for w in caught if "missing" in str(w.message)]
    assert len(messages) == 1
    assert "3 of 5 videos" in messages[0] and "v1, v2, v4" in messages[0]
    assert ds.video_ids == ["v0", "v3"] and len(ds) == 2


def test_no_usable_video_is_a_one_line_error(make_data):
    ann, store = make_data({"x": ("Test", 2.0, [])}, {"y": (np.zeros((4, 2)), uniform_ts(4))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TadInputError, match="no usable videos"):
            THUMOSFeatureDataset(ann, store, subset="test", training=False)


def test_nan_features_raise_error_naming_the_video(make_data):
    ts = uniform_ts(6)
    ann, store = make_data({"good": ("Test", 2.0, []), "broken_vid": ("Test", 2.0, [])},
                           {"good": (np.zeros((6, 2)), ts), "broken_vid": (np.zeros((6, 2)), ts)})
    with h5py.File(store, "r+") as h5:  # the writer refuses NaN: damage the file afterwards
        h5["videos/broken_vid/features"][3, 1] = np.nan
    ds = THUMOSFeatureDataset(ann, store, subset="test", training=False)
    ds[ds.video_ids.index("good")]
    with pytest.raises(TadInputError, match="broken_vid.*NaN/inf") as info:
        ds[ds.video_ids.index("broken_vid")]
    assert "\n" not in str(info.value)


def test_classes_option_remaps_labels_by_name(make_data):
    ts = uniform_ts(6)
    ann, store = make_data({"v": ("Test", 2.0, [(0.3, 0.5, "a"), (0.4, 0.6, "c")])}, {"v": (np.zeros((6, 2)), ts)})
    ds = THUMOSFeatureDataset(ann, store, subset="test", training=False, classes=["c", "a"])
    assert ds[0]["data_samples"]["gt_labels"].tolist() == [1, 0]


def test_unannotated_mode_uses_every_stored_video(make_data):
    ts = uniform_ts(6)
    _, store = make_data({"v": ("Test", 2.0, [])}, {"v": (np.zeros((6, 2)), ts), "w": (np.ones((6, 2)), ts)})
    ds = THUMOSFeatureDataset(None, store, classes=["x"], training=False)
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
    ds = THUMOSFeatureDataset(ann, store, subset="test", training=False)
    ds[0]  # the parent has an open handle before forking
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=tad_collate)
    seen = {}
    for batch in loader:
        for feats, sample in zip(batch["inputs"]["feats"], batch["data_samples"]):
            seen[sample["video_id"]] = float(feats.mean())
    assert seen == {f"v{i}": float(i) for i in range(4)}
