"""FeatureStore / FeatureStoreWriter: round trip, slicing, spatial grid, ids, errors, fork."""
from __future__ import annotations

import json
import os
import pickle

import h5py
import numpy as np
import pytest

from tad.errors import TadInputError
from tad.features.store import FeatureStore, VideoFeatures, escape_id, unescape_id
from tad.features.store_writer import FeatureStoreWriter, parts_dir_for

from store_writer_loop import META, video_data


def write_store(path, n=4, dtype="float16", grid=None, compression=None, meta=META):
    with FeatureStoreWriter(path, meta, dtype=dtype, compression=compression) as writer:
        for i in range(n):
            vid, feats, stamps, attrs = video_data(i, grid=grid)
            writer.write_video(vid, feats, stamps, attrs)
    return path


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_round_trip_values_dtypes_attrs(tmp_path, dtype):
    path = write_store(tmp_path / "f.h5", n=4, dtype=dtype)
    assert not parts_dir_for(path).exists() and not (tmp_path / "f.h5.tmp").exists()
    store = FeatureStore(path)
    assert store.videos == sorted(video_data(i)[0] for i in range(4))
    assert len(store) == 4 and "grp1/vid1" in store and "vid1" not in store
    assert store.feature_dim == 24 and store.spatial_grid is None
    attrs = store.attrs
    assert attrs["format"] == "tad-features" and attrs["format_version"] == 1
    assert attrs["backbone"] == "tiny3d" and attrs["checkpoint_name"] == "tiny.pth"
    assert attrs["checkpoint_sha256"] == "ab" * 32
    assert attrs["options"] == META["options"]  # decoded from JSON
    assert attrs["tad_version"] == "0.1.0"
    with h5py.File(path, "r") as h5:  # raw layout of contract C2
        assert json.loads(h5.attrs["options"]) == META["options"]
        group = h5["videos"][escape_id("grp2/vid2")]
        assert group["features"].dtype == np.dtype(dtype) and group["timestamps"].dtype == np.float64
        assert group["features"].chunks is None and group["features"].compression is None  # contiguous
    for i in range(4):
        vid, feats, stamps, src_attrs = video_data(i)
        item = store[vid]
        assert isinstance(item, VideoFeatures)
        features, timestamps, vattrs = item  # unpacks like a tuple
        assert features.dtype == np.dtype(dtype) and features.shape == (20 + 3 * i, 24)
        np.testing.assert_array_equal(features, feats.astype(dtype))
        assert timestamps.dtype == np.float64
        np.testing.assert_array_equal(timestamps, (4 * np.arange(20 + 3 * i) + 8) / 30)
        assert vattrs == {**src_attrs, "complete": True}
        assert isinstance(vattrs["padded"], bool) and isinstance(vattrs["source_path"], str)
    assert store.failed == {}


def test_read_slices_only_requested_rows(tmp_path):
    store = FeatureStore(write_store(tmp_path / "f.h5", n=3))
    full = store["grp2/vid2"]
    assert full.features.shape[0] == 26
    part = store.read("grp2/vid2", 5, 12)
    np.testing.assert_array_equal(part.features, full.features[5:12])
    np.testing.assert_array_equal(part.timestamps, full.timestamps[5:12])
    assert part.attrs == full.attrs
    np.testing.assert_array_equal(store.read("grp2/vid2", -4, None).features, full.features[-4:])
    assert store.read("grp2/vid2", 20, 1000).features.shape == (6, 24)
    assert store.read("grp2/vid2", 30, 40).features.shape == (0, 24)
    assert store.read("grp2/vid2", 8, 3).timestamps.shape == (0,)
    assert store.num_steps("grp2/vid2") == 26
    with pytest.raises(KeyError, match="no video 'nope'"):
        store.read("nope", 0, 1)


def test_spatial_grid_features(tmp_path):
    path = write_store(tmp_path / "g.h5", n=2, grid=3, dtype="float32")
    store = FeatureStore(path)
    assert store.feature_dim == 24 and store.spatial_grid == 3
    vid, feats, stamps, _ = video_data(1, grid=3)
    assert store[vid].features.shape == (23, 24, 3, 3)
    np.testing.assert_array_equal(store[vid].features, feats)
    np.testing.assert_array_equal(store.read(vid, 2, 4).features, feats[2:4])
    # one store, one feature shape
    writer = FeatureStoreWriter(tmp_path / "h.h5", META)
    writer.write_video("a", np.zeros((3, 24, 3, 3)), np.arange(3.0), {})
    with pytest.raises(ValueError, match=r"feature shape \(24,\) differs"):
        writer.write_video("b", np.zeros((3, 24)), np.arange(3.0), {})


def test_gzip_compression_round_trip(tmp_path):
    path = write_store(tmp_path / "z.h5", n=2, compression="gzip")
    with h5py.File(path, "r") as h5:
        assert h5["videos"][escape_id("grp1/vid1")]["features"].compression == "gzip"
    vid, feats, _, _ = video_data(1)
    store = FeatureStore(path)
    np.testing.assert_array_equal(store[vid].features, feats.astype(np.float16))
    np.testing.assert_array_equal(store.read(vid, 3, 9).features, feats[3:9].astype(np.float16))
    assert store._entry(vid).features.offset is None  # chunked: read through h5py
    plain = FeatureStore(write_store(tmp_path / "p.h5", n=2))
    assert plain._entry(vid).features.offset is not None  # contiguous: read through the memory map


@pytest.mark.parametrize("vid", ["a/b/c", "100%/x", ".hidden", "..", "plain", "sp ace/ü", "a%2Fb"])
def test_id_escaping_round_trip(tmp_path, vid):
    name = escape_id(vid)
    assert "/" not in name and not name.startswith(".") and unescape_id(name) == vid
    path = tmp_path / "ids.h5"
    with FeatureStoreWriter(path, META) as writer:
        writer.write_video(vid, np.ones((2, 4)), np.array([0.5, 1.0]), {})
    store = FeatureStore(path)
    assert store.videos == [vid]
    np.testing.assert_array_equal(store[vid].features, np.ones((2, 4)))


def test_contract_import_path():
    from tad.features import store, store_writer
    from tad.features.store import FeatureStoreWriter as Exported

    assert Exported is store_writer.FeatureStoreWriter and "FeatureStoreWriter" in store.__all__


def test_escape_rule_is_the_documented_one():
    assert escape_id("a/b") == "a%2Fb"
    assert escape_id("50%") == "50%25"
    assert escape_id(".x") == "%2Ex"
    with pytest.raises(ValueError):
        escape_id("")


def test_not_a_store_errors(tmp_path):
    with pytest.raises(TadInputError, match="feature store not found"):
        FeatureStore(tmp_path / "missing.h5")
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(TadInputError, match=r"notes\.h5: not a readable HDF5 file"):
        FeatureStore(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(TadInputError, match=r"other\.h5: not a tad feature store"):
        FeatureStore(other)
    with h5py.File(other, "a") as h5:
        h5.attrs["format"] = "tad-features"
        h5.attrs["format_version"] = 99
    with pytest.raises(TadInputError, match="format_version 99 is not supported"):
        FeatureStore(other)
    with pytest.raises(TadInputError, match="is a directory"):
        FeatureStore(tmp_path)
    # one line each, as the CLI prints them
    with pytest.raises(TadInputError) as info:
        FeatureStore(text)
    assert "\n" not in str(info.value)


def test_empty_store_opens(tmp_path):
    path = tmp_path / "empty.h5"
    FeatureStoreWriter(path, META).finalize()
    store = FeatureStore(path)
    assert store.videos == [] and len(store) == 0 and store.attrs["backbone"] == "tiny3d"
    with pytest.raises(TadInputError, match="holds no videos"):
        store.feature_dim


def test_writer_rejects_bad_arrays(tmp_path):
    writer = FeatureStoreWriter(tmp_path / "w.h5", META)
    with pytest.raises(ValueError, match="strictly increasing"):
        writer.write_video("v", np.zeros((3, 4)), np.array([0.0, 1.0, 1.0]), {})
    with pytest.raises(ValueError, match="timestamps shape"):
        writer.write_video("v", np.zeros((3, 4)), np.arange(4.0), {})
    with pytest.raises(ValueError, match="T = 0"):
        writer.write_video("v", np.zeros((0, 4)), np.zeros(0), {})
    with pytest.raises(ValueError, match="overflow float16"):
        writer.write_video("v", np.full((2, 4), 1e6), np.arange(2.0), {})
    with pytest.raises(ValueError, match="NaN"):
        writer.write_video("v", np.full((2, 4), np.nan), np.arange(2.0), {})
    assert writer.completed == set()
    writer.finalize()
    assert FeatureStore(tmp_path / "w.h5").videos == []


def test_lazy_open_pickle_and_fork(tmp_path):
    path = write_store(tmp_path / "f.h5", n=3)
    store = FeatureStore(path)
    assert store._state is None  # nothing held open after construction
    expected = store["grp1/vid1"].features  # parent now holds a handle
    clone = pickle.loads(pickle.dumps(store))
    assert clone._state is None
    np.testing.assert_array_equal(clone["grp1/vid1"].features, expected)

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: reads through its own fresh handle
        try:
            ok = all(np.array_equal(store.read(vid, 1, 5).features, store[vid].features[1:5]) for vid in store.videos)
            ok = ok and np.array_equal(store["grp1/vid1"].features, expected) and store._pid == os.getpid()
            os.write(write_fd, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write_fd)
    answer = os.read(read_fd, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    np.testing.assert_array_equal(store["grp1/vid1"].features, expected)  # parent handle still fine


class _WindowDataset:
    def __init__(self, store, vids):
        self.store, self.vids = store, vids

    def __len__(self):
        return len(self.vids)

    def __getitem__(self, i):
        item = self.store.read(self.vids[i], 2, 10)
        return item.features.astype(np.float32), os.getpid()


def test_dataloader_workers_each_open_their_own_handle(tmp_path):
    torch = pytest.importorskip("torch")
    path = write_store(tmp_path / "f.h5", n=6)
    store = FeatureStore(path)
    store["grp0/vid0"]  # parent handle open before workers fork
    vids = store.videos * 2
    loader = torch.utils.data.DataLoader(_WindowDataset(store, vids), batch_size=2, num_workers=2,
                                         multiprocessing_context="fork")
    batches = list(loader)
    feats = torch.cat([b[0] for b in batches]).numpy()
    pids = {int(p) for b in batches for p in b[1]}
    assert len(pids) == 2 and os.getpid() not in pids
    expected = np.stack([store[v].features[2:10].astype(np.float32) for v in vids])
    np.testing.assert_array_equal(feats, expected)


def test_describe_summarises_store(tmp_path):
    from tad.features.store import describe

    path = write_store(tmp_path / "f.h5", n=3)
    with FeatureStoreWriter(path, META) as writer:
        writer.mark_failed("/videos/bad.mp4", "zero frames")
    lines = describe(FeatureStore(path)).splitlines()
    assert lines[0] == f"{path}: 3 videos, backbone 'tiny3d', checkpoint tiny.pth, tad 0.1.0"
    assert lines[1] == "features (T, 24) float16, T from 20 to 26 (69 in all)"
    assert lines[2] == "options: clip_len=16, clip_stride=4, fps=30, workers=1"
    assert lines[3] == "failed: /videos/bad.mp4: zero frames"


def test_store_replaced_while_in_use(tmp_path):
    path = write_store(tmp_path / "f.h5", n=2)
    store = FeatureStore(path)  # index read, nothing open
    with FeatureStoreWriter(path, META) as writer:  # a resumed run adds a video: superset, same shapes
        writer.write_video(*video_data(2)[:3], video_data(2)[3])
    np.testing.assert_array_equal(store["grp1/vid1"].features, video_data(1)[1].astype(np.float16))
    assert store.videos == ["grp0/vid0", "grp1/vid1"]  # the index a dataset was built on stays put
    store.close()
    stale = FeatureStore(path)
    with FeatureStoreWriter(path, META, overwrite=True) as writer:  # different content
        writer.write_video("grp0/vid0", np.zeros((3, 24)), np.arange(3.0), {})
    with pytest.raises(TadInputError, match="replaced while in use and video 'grp0/vid0' changed or is gone"):
        stale["grp0/vid0"]
