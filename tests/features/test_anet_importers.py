"""ActivityNet feature releases -> tad store: TSP's .h5, ActionFormer's v_<id>.npy, BMN's v_<id>.csv.
Each maps v_ ids to annotation ids and reports ids with no features and features with no ids."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from tad.cli import main
from tad.features.import_formats import detect_format, match_ids
from tad.features.store import FeatureStore

DURATIONS = {"abc": 40.0, "def": 25.0, "ghi": 60.0}  # ghi has no features; v_zzz has no annotation


@pytest.fixture
def anet_ann(tmp_path):
    db = {vid: {"subset": "validation", "duration": d, "fps": 30.0,
                "annotations": [{"label": "Run", "segment": [1.0, d / 2]}]} for vid, d in DURATIONS.items()}
    path = tmp_path / "anet.json"
    path.write_text(json.dumps({"version": "1.3", "taxonomy": [], "database": db}))
    return path


def _arrays(dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return {"v_abc": rng.standard_normal((37, dim)).astype(np.float32),
            "v_def": rng.standard_normal((23, dim)).astype(np.float32),
            "v_zzz": rng.standard_normal((5, dim)).astype(np.float32)}


def _import(*args):
    return CliRunner().invoke(main, ["import-features", *map(str, args), "--quiet"])


def _check_ids_report(output):
    assert "ids: 2 of 3 annotated videos have features" in output
    assert "ids: 1 annotated videos have no features (first: ghi)" in output
    assert "ids: 1 feature files match no annotated video (first: v_zzz)" in output


def test_tsp_h5_with_v_prefixes_maps_to_annotation_ids(tmp_path, anet_ann):
    arrays = _arrays()
    src = tmp_path / "tsp.h5"
    with h5py.File(src, "w") as h5:
        for name, array in arrays.items():
            h5.create_dataset(name, data=array)
    assert detect_format([src]) == "tsp_h5"
    out = tmp_path / "store.h5"
    result = _import(src, "-o", out, "--fps-from", anet_ann)  # auto-detected
    assert result.exit_code == 0, result.output
    assert "format tsp_h5: imported 3" in result.output
    _check_ids_report(result.output)
    store = FeatureStore(out)
    assert sorted(store.videos) == ["abc", "def", "zzz"]
    video = store["abc"]
    np.testing.assert_allclose(video.features, arrays["v_abc"], atol=2e-3)  # float16 storage
    np.testing.assert_allclose(video.timestamps, (16 * np.arange(37) + 8) / 15.0)  # 16-frame clips every 16 at 15 fps
    assert video.attrs["duration"] == 40.0
    again = _import(src, "-o", out, "--fps-from", anet_ann, "--format", "tsp_h5")
    assert "skipped 3 (already stored)" in again.output  # resumable


def test_anet_npy_folder(tmp_path, anet_ann):
    folder = tmp_path / "npy"
    folder.mkdir()
    arrays = _arrays(seed=1)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    assert detect_format([folder], DURATIONS.keys()) == "anet_npy"
    assert detect_format([folder]) is None  # without annotations the v_ prefix proves nothing
    out = tmp_path / "store.h5"
    result = _import(folder, "-o", out, "--fps-from", anet_ann, "--clip-stride", "8")
    assert result.exit_code == 0, result.output
    _check_ids_report(result.output)
    video = FeatureStore(out)["def"]
    np.testing.assert_allclose(video.features, arrays["v_def"], atol=2e-3)
    np.testing.assert_allclose(video.timestamps, (8 * np.arange(23) + 8) / 15.0)  # --clip-stride given


def test_bmn_csv_rows_spread_over_the_annotated_duration(tmp_path, anet_ann):
    folder = tmp_path / "csv_mean_100"
    folder.mkdir()
    arrays = _arrays(dim=6, seed=2)
    for name, array in arrays.items():
        header = ",".join(f"f{i}" for i in range(array.shape[1]))
        np.savetxt(folder / f"{name}.csv", array, delimiter=",", header=header, comments="", fmt="%.6f")
    assert detect_format([folder]) == "bmn_csv"
    out = tmp_path / "store.h5"
    result = _import(folder, "-o", out, "--fps-from", anet_ann, "--format", "bmn_csv")
    assert result.exit_code == 0, result.output
    _check_ids_report(result.output)
    assert "failed 1" in result.output  # v_zzz: no annotated duration to spread its rows over
    video = FeatureStore(out)["abc"]
    np.testing.assert_allclose(video.features, arrays["v_abc"], atol=2e-3)
    np.testing.assert_allclose(video.timestamps, (np.arange(37) + 0.5) * 40.0 / 37)


def test_ucf_style_thumos_files_stay_plain_arrays(tmp_path):
    folder = tmp_path / "thumos"
    folder.mkdir()
    np.save(folder / "v_Jump_g01_c01.npy", np.zeros((4, 3), np.float32))
    assert detect_format([folder], {"v_Jump_g01_c01"}) is None


def test_match_ids_without_annotations_drops_the_prefix():
    report = match_ids(["v_a", "b"], None)
    assert report.mapping == {"v_a": "a", "b": "b"} and report.lines() == []


def test_unknown_format_and_missing_input_are_one_line_errors(tmp_path):
    result = _import(tmp_path / "nope.h5", "-o", tmp_path / "o.h5", "--format", "tsp_h5", "--fps", "15")
    assert result.exit_code != 0 and "not found" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
