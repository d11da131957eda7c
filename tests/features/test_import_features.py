"""tad import-features: published (T, C) arrays -> feature store with clip-centre timestamps."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tad.cli import main
from tad.errors import TadInputError
from tad.features.importer import (ImportOptions, VideoInfo, clip_timestamps, import_features, infer_feature_dim,
                                   read_video_info)
from tad.features.store import FeatureStore

# real THUMOS14 ids: 30 fps, 29.97 fps and 25 fps videos
REAL = {"video_test_0000004": 250, "video_test_0000591": 248, "video_test_0000950": 60}


def i3d_like(num_steps: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((num_steps, 2048)).astype(np.float32)


@pytest.fixture
def i3d_dir(tmp_path):
    src = tmp_path / "i3d_features"
    src.mkdir()
    for seed, (vid, steps) in enumerate(REAL.items()):
        np.save(src / f"{vid}.npy", i3d_like(steps, seed))
    return src


def test_cli_round_trip_i3d_features_with_thumos_fps(tmp_path, i3d_dir, thumos_json):
    (i3d_dir / "broken.npy").write_bytes(b"not an array")
    out = tmp_path / "i3d.h5"
    result = CliRunner().invoke(main, ["import-features", str(i3d_dir), "-o", str(out), "--fps-from", str(thumos_json),
                                       "--fps", "30", "--clip-len", "16", "--clip-stride", "4", "--quiet"])
    assert result.exit_code == 3, result.output  # some files failed, the rest were written
    assert "imported 3, skipped 0 (already stored), failed 1" in result.output
    assert "broken.npy" in result.output

    ann = json.loads(thumos_json.read_text())["database"]
    store = FeatureStore(out)
    assert store.videos == sorted(REAL) and store.feature_dim == 2048 and store.spatial_grid is None
    assert store.attrs["backbone"] == "imported"
    assert store.attrs["options"]["clip_len"] == 16 and store.attrs["options"]["clip_stride"] == 4
    assert list(store.failed) == [str((i3d_dir / "broken.npy").resolve())]
    for seed, (vid, steps) in enumerate(REAL.items()):
        fps = ann[vid]["fps"]
        features, timestamps, attrs = store[vid]
        assert features.dtype == np.float16 and features.shape == (steps, 2048)
        np.testing.assert_array_equal(features, i3d_like(steps, seed).astype(np.float16))
        np.testing.assert_allclose(timestamps, (4 * np.arange(steps) + 8) / fps, rtol=0, atol=1e-12)
        assert attrs["fps"] == fps and attrs["duration"] == ann[vid]["duration"]
        assert attrs["num_frames"] == round(ann[vid]["duration"] * fps)
        assert attrs["source_path"] == str((i3d_dir / f"{vid}.npy").resolve()) and attrs["padded"] is False
    assert store["video_test_0000950"].timestamps[1] == pytest.approx(12 / 25)

    # re-running skips everything already stored
    again = CliRunner().invoke(main, ["import-features", str(i3d_dir), "-o", str(out), "--fps-from", str(thumos_json),
                                      "--fps", "30", "--quiet"])
    assert again.exit_code == 3 and "imported 0, skipped 3" in again.output
    # other settings on the same store are refused in one line
    other = CliRunner().invoke(main, ["import-features", str(i3d_dir), "-o", str(out), "--fps", "30",
                                      "--clip-stride", "8", "--quiet"])
    assert other.exit_code == 1
    assert other.output.strip().splitlines()[-1].startswith(f"Error: {out}: the existing store was made with different")
    assert "Traceback" not in other.output


def test_transposed_arrays_are_detected(tmp_path):
    src = tmp_path / "feats"
    src.mkdir()
    arrays = {"a": i3d_like(30, 0)[:, :64], "b": i3d_like(45, 1)[:, :64], "c": i3d_like(12, 2)[:, :64]}
    np.save(src / "a.npy", arrays["a"])
    np.save(src / "b.npy", arrays["b"].T)  # (C, T)
    np.save(src / "c.npy", arrays["c"][None])  # (1, T, C)
    summary = import_features(src, tmp_path / "f.h5", ImportOptions(fps=30, dtype="float32"), progress=False)
    assert sorted(summary.done) == ["a", "b", "c"] and not summary.failed
    store = FeatureStore(tmp_path / "f.h5")
    for vid, array in arrays.items():
        np.testing.assert_array_equal(store[vid].features, array)
    assert infer_feature_dim([(30, 64), (64, 45), (1, 12, 64)]) == 64
    assert infer_feature_dim([(30, 64)]) is None  # one file alone is ambiguous
    assert infer_feature_dim([(30, 64), (30, 64)]) is None


def test_lone_transposed_file_resolved_by_annotated_duration(tmp_path):
    src = tmp_path / "one"
    src.mkdir()
    array = i3d_like(100, 3)[:, :256]  # T = 100 clips of a (4 * 99 + 16) / 30 s video
    np.save(src / "vid.npy", array.T)
    info = {"vid": VideoInfo(fps=30.0, duration=(4 * 99 + 16) / 30)}
    import_features(src, tmp_path / "f.h5", ImportOptions(), video_info=info, progress=False)
    np.testing.assert_array_equal(FeatureStore(tmp_path / "f.h5")["vid"].features, array.astype(np.float16))
    # --feature-dim decides too; a file without that dimension fails alone
    np.save(src / "odd.npy", np.zeros((5, 7), np.float32))
    summary = import_features(src, tmp_path / "g.h5", ImportOptions(fps=30, feature_dim=256), progress=False)
    assert summary.done == ["vid"]
    assert list(summary.failed.values()) == ["shape (5, 7) has no feature dimension 256"]


def test_npz_and_pt_inputs_with_keys(tmp_path):
    torch = pytest.importorskip("torch")
    npz_dir, pt_dir = tmp_path / "npz", tmp_path / "pt"
    (npz_dir / "sub").mkdir(parents=True)
    pt_dir.mkdir()
    a, b = i3d_like(10, 4)[:, :32], i3d_like(14, 5)[:, :32]
    np.savez(npz_dir / "sub" / "x.npz", feats=a, other=np.zeros(3))
    np.savez(npz_dir / "y.npz", b)
    opts = ImportOptions(fps=25, ext="npz", recursive=True, dtype="float32", clip_len=8, clip_stride=8, frame_interval=2)
    summary = import_features(npz_dir, tmp_path / "z.h5", opts, progress=False)
    assert sorted(summary.done) == ["sub/x", "y"]
    store = FeatureStore(tmp_path / "z.h5")
    np.testing.assert_array_equal(store["sub/x"].features, a)
    span = (8 - 1) * 2 + 1
    np.testing.assert_allclose(store["y"].timestamps, (8 * np.arange(14) + span / 2) / 25)

    torch.save({"features": torch.from_numpy(a)}, pt_dir / "p.pt")
    torch.save(torch.from_numpy(b), pt_dir / "q.pt")
    torch.save({"u": torch.zeros(2, 32), "v": torch.zeros(2, 32)}, pt_dir / "r.pt")
    summary = import_features(pt_dir, tmp_path / "p.h5", ImportOptions(fps=30, ext="pt"), progress=False)
    assert sorted(summary.done) == ["p", "q"]
    assert list(summary.failed.values()) == ["several arrays (u, v): choose one with --key"]
    np.testing.assert_array_equal(FeatureStore(tmp_path / "p.h5")["q"].features, b.astype(np.float16))


def test_clip_timestamps_convention():
    np.testing.assert_allclose(clip_timestamps(5, 30, 16, 4), (4 * np.arange(5) + 8) / 30)
    np.testing.assert_allclose(clip_timestamps(3, 10, 1, 1), [0.05, 0.15, 0.25])


def test_bad_input_is_one_line_error(tmp_path, i3d_dir):
    runner = CliRunner()
    res = runner.invoke(main, ["import-features", str(tmp_path / "missing"), "-o", str(tmp_path / "o.h5"), "--fps", "30"])
    assert res.exit_code == 1 and res.output.strip() == f"Error: {tmp_path / 'missing'}: feature folder not found"
    res = runner.invoke(main, ["import-features", str(i3d_dir), "-o", str(tmp_path / "o.h5")])
    assert res.exit_code == 1 and "give the frame rate: --fps-from ANN.json" in res.output
    bad_json = tmp_path / "ann.json"
    bad_json.write_text("{oops")
    res = runner.invoke(main, ["import-features", str(i3d_dir), "-o", str(tmp_path / "o.h5"), "--fps-from", str(bad_json)])
    assert res.exit_code == 1 and res.output.strip() == f"Error: {bad_json}: not valid JSON (line 1: Expecting property name enclosed in double quotes)"
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(main, ["import-features", str(empty), "-o", str(tmp_path / "o.h5"), "--fps", "30"])
    assert res.exit_code == 1 and "no .npy files found" in res.output
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.npy").write_text("x")
    res = runner.invoke(main, ["import-features", str(junk), "-o", str(tmp_path / "j.h5"), "--fps", "30", "--quiet"])
    assert res.exit_code == 1 and "all 1 files failed" in res.output.splitlines()[-1]
    assert FeatureStore(tmp_path / "j.h5").failed.keys() == {str((junk / "a.npy").resolve())}
    with pytest.raises(TadInputError, match="no videos found"):
        (tmp_path / "e.json").write_text("{}")
        read_video_info(tmp_path / "e.json")


def test_read_video_info_formats(tmp_path, thumos_json):
    info = read_video_info(thumos_json)
    assert len(info) == 412 and info["video_test_0000591"].fps == 29.97
    assert info["video_test_0000004"].duration == 33.83
    plain = tmp_path / "fps.json"
    plain.write_text(json.dumps({"v1": 25, "v2": {"fps": 24.0}}))
    assert read_video_info(plain) == {"v1": VideoInfo(25.0, None), "v2": VideoInfo(24.0, None)}


def test_rgb_and_flow_streams_concatenated(tmp_path):
    rgb, flow = tmp_path / "rgb", tmp_path / "flow"
    rgb.mkdir()
    flow.mkdir()
    streams = {}
    for seed, (vid, steps) in enumerate({"v1": 40, "v2": 25, "v3": 30, "v4": 12}.items()):
        a, b = i3d_like(steps, seed)[:, :48], i3d_like(steps, seed + 10)[:, :48]
        np.save(rgb / f"{vid}.npy", a)
        if vid == "v2":
            b = b[:-1]  # flow one clip shorter: cut to the shortest
        if vid == "v3":
            b = b[:20]  # too far apart: fails alone
        if vid != "v4":  # no flow file: fails alone
            np.save(flow / f"{vid}.npy", b.T if vid == "v1" else b)  # v1's flow stored (C, T)
        streams[vid] = (a, b)
    res = CliRunner().invoke(main, ["import-features", str(rgb), str(flow), "-o", str(tmp_path / "two.h5"),
                                    "--fps", "30", "--dtype", "float32", "--quiet"])
    assert res.exit_code == 3, res.output
    assert "imported 2, skipped 0 (already stored), failed 2" in res.output
    store = FeatureStore(tmp_path / "two.h5")
    assert store.videos == ["v1", "v2"] and store.feature_dim == 96
    a, b = streams["v1"]
    np.testing.assert_array_equal(store["v1"].features, np.concatenate([a, b], axis=1))
    a, b = streams["v2"]
    np.testing.assert_array_equal(store["v2"].features, np.concatenate([a[:24], b], axis=1))
    np.testing.assert_allclose(store["v2"].timestamps, (4 * np.arange(24) + 8) / 30)
    assert store.failed == {str((rgb / "v3.npy").resolve()): "streams have different lengths [30, 20] (more than 2 apart)",
                            str((rgb / "v4.npy").resolve()): f"no .npy file for this video in {flow}"}
