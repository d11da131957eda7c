"""`tad check-data` on a clean synthetic set (no errors) and on a broken copy where every
problem it reports is planted once: each is named with its file and video."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tad.cli import main
from tad.datasets.data_check import check_data, guess_subsets
from tad.synthetic_features import make_synthetic_store, preset_config, random_layout


@pytest.fixture(scope="module")
def clean_set(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("check")
    layout = random_layout(num_videos=8, num_classes=2, duration_range=(20.0, 30.0), segments_per_video=(3, 4),
                           segment_length=(2.0, 5.0), seed=0)
    summary = make_synthetic_store(layout, root / "features.h5", preset_config("easy", feature_dim=8, seed=0),
                                   ann_out=root / "annotations.json")
    return summary.annotations, summary.store


def _broken_copy(ann_file: Path, out: Path) -> tuple[Path, dict]:
    data = json.loads(ann_file.read_text())
    db = data["database"]
    train = sorted(v for v in db if db[v]["subset"] == "Validation")
    test = sorted(v for v in db if db[v]["subset"] == "Test")
    planted = {}
    # 1. annotated but missing from the store
    db["ghost_video"] = {"subset": "Validation", "duration": 20.0, "fps": 30.0,
                         "annotations": [{"label": "action0", "segment": [1.0, 3.0], "label_id": 0}]}
    planted["missing"] = "ghost_video"
    # 2. stored but unannotated
    planted["unannotated"] = test[-1]
    del db[test[-1]]
    # 3. bad segments, all in one training video
    vid = train[0]
    duration = db[vid]["duration"]
    db[vid]["annotations"] += [
        {"label": "action0", "segment": [5.0, 3.0], "label_id": 0},                       # negative
        {"label": "action0", "segment": [7.0, 7.0], "label_id": 0},                       # zero
        {"label": "action1", "segment": [duration + 5, duration + 8], "label_id": 1},     # outside
        {"label": "action1", "segment": [duration - 1, duration + 2], "label_id": 1},     # partly outside
        {"label": "action1", "segment": [1.00, 1.05], "label_id": 1},                     # < one step (0.133 s)
    ]
    planted["segments"] = vid
    # 4. drift: the annotated duration is 1.5x what the features cover (wrong fps)
    planted["drift"] = train[1]
    db[train[1]]["duration"] = round(db[train[1]]["duration"] * 1.5, 3)
    # 5. a rare class (one training instance) and a label only in the test subset
    db[train[2]]["annotations"].append({"label": "rare_class", "segment": [0.5, 1.5]})
    db[test[0]]["annotations"].append({"label": "test_only", "segment": [0.5, 1.5]})
    for entry in db.values():
        for a in entry["annotations"]:
            a.pop("label_id", None)
    out.write_text(json.dumps(data))
    return out, planted


def test_guess_subsets():
    assert guess_subsets(["Validation", "Test"]) == (["Validation"], ["Test"])
    assert guess_subsets(["training", "validation", "testing"]) == (["training", "validation"], ["testing"])
    assert guess_subsets(["training", "validation"]) == (["training"], ["validation"])


def test_clean_set_has_no_errors(clean_set):
    ann, store = clean_set
    report = check_data(ann, store, min_instances=2)
    assert report.errors == [], [p.line() for p in report.errors]
    assert report.stats["videos"] == 8 and report.stats["train_subsets"] == ["validation"]


def test_every_planted_problem_is_named(clean_set, tmp_path):
    ann, store = clean_set
    broken, planted = _broken_copy(ann, tmp_path / "broken.json")
    report = check_data(broken, store, min_instances=2)
    lines = [p.line() for p in report.problems]

    def find(level: str, file: Path, video: str | None, text: str) -> str:
        where = f"{level}: {file}: video {video}: " if video else f"{level}: {file}: "
        hits = [line for line in lines if line.startswith(where) and text in line]
        assert len(hits) == 1, f"no single {level} for {video} with {text!r} in:\n" + "\n".join(lines)
        return hits[0]

    find("error", store, planted["missing"], "annotated in broken.json (subset Validation) but missing from the store")
    find("warning", store, planted["unannotated"], "stored but has no entry in broken.json")
    seg = planted["segments"]
    find("error", broken, seg, "[5.00, 3.00] (action0) has negative length (-2.00 s)")
    find("error", broken, seg, "[7.00, 7.00] (action0) has zero length")
    find("error", broken, seg, "lies outside the video")
    find("warning", broken, seg, "extends beyond the video")
    find("warning", broken, seg, "[1.00, 1.05] (action1) is shorter than one feature step (0.13 s)")
    drift = find("error", store, planted["drift"], "drift apart")
    assert "off by more than one clip" in drift
    find("warning", broken, None, "class 'rare_class' has only 1 training instance(s) (< 2)")
    find("warning", broken, None, "label 'test_only' appears only in the test subset(s) test")
    # nothing else is an error: the planted ones only
    assert len(report.errors) == 5, "\n".join(p.line() for p in report.errors)


def test_failed_extraction_is_an_error(clean_set, tmp_path):
    from tad.features.store_writer import FeatureStoreWriter

    ann, _ = clean_set
    data = json.loads(ann.read_text())
    vid = sorted(data["database"])[0]
    writer = FeatureStoreWriter(tmp_path / "f.h5", meta=dict(backbone="synthetic", checkpoint_name="",
                                                             checkpoint_sha256="", options={}))
    for other in sorted(data["database"])[1:]:
        n = int(data["database"][other]["duration"] * 7.5) - 1
        writer.write_video(other, np.zeros((n, 4), np.float32), (np.arange(n) * 4 + 8) / 30.0, dict(fps=30.0))
    writer.mark_failed(vid, "cannot decode as video (moov atom not found)")
    store = writer.finalize()
    report = check_data(ann, store, min_instances=1)
    assert [p.line() for p in report.errors] == [
        f"error: {store}: video {vid}: annotated in {ann.name} but its extraction failed: "
        "cannot decode as video (moov atom not found)"]


def test_cli_exit_status_and_config_checks(clean_set, tmp_path):
    ann, store = clean_set
    runner = CliRunner()
    res = runner.invoke(main, ["check-data", str(ann), str(store), "--min-instances", "2"])
    assert res.exit_code == 0, res.output
    assert res.output.strip().splitlines()[-1].startswith("0 error(s)")
    broken, planted = _broken_copy(ann, tmp_path / "broken.json")
    res = runner.invoke(main, ["check-data", str(broken), str(store), "--min-instances", "2"])
    assert res.exit_code == 1
    assert f"error: {store}: video ghost_video: annotated in broken.json" in res.output
    assert "5 error(s)" in res.output and "Traceback" not in res.output
    # warnings alone do not fail: min-instances 100 warns about every class
    res = runner.invoke(main, ["check-data", str(ann), str(store), "--min-instances", "100"])
    assert res.exit_code == 0 and "training instance(s) (< 100)" in res.output
    # a config whose model does not fit the data
    config = tmp_path / "c.py"
    config.write_text(f"_base_ = ['tiny_test.py']\n".replace("tiny_test.py", str(
        Path(__file__).resolve().parents[1] / "configs" / "tiny_test.py"))
        + f"ann_file = {str(ann)!r}\nfeature_store = {str(store)!r}\nnum_classes = 1\n"
          "model = dict(num_classes=1, in_channels=16)\n")
    res = runner.invoke(main, ["check-data", str(ann), str(store), "--config", str(config), "--min-instances", "2"])
    assert res.exit_code == 1
    assert "features are 8-d but the config's model.in_channels is 16" in res.output
    assert "2 classes in the annotations but the config's num_classes is 1" in res.output
    # bad option value: one line
    res = runner.invoke(main, ["check-data", str(ann), str(store), "--min-instances", "0"])
    assert res.exit_code != 0 and "--min-instances: must be >= 1" in res.output
