"""`tad convert-annotations`: plain CSV, EPIC-Kitchens-100 (real slice), ActivityNet JSON,
Multi-THUMOS (real slice); one-line errors naming file and row; output never over input."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tad.cli import main
from tad.datasets.annotation_convert import convert_annotations, parse_time, write_annotation_json
from tad.errors import TadInputError
from tad.eval.annotations import load_annotations

DATA = Path(__file__).resolve().parents[1] / "data"
EPIC = DATA / "epic100"
MULTITHUMOS = DATA / "multithumos" / "multithumos_slice.json"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _roundtrip(tmp_path: Path, result) -> "object":
    out = tmp_path / "ann.json"
    write_annotation_json(result.data, out)
    return load_annotations(out)


def test_parse_time_forms():
    assert parse_time("12.5") == 12.5
    assert parse_time("00:01:02.50") == pytest.approx(62.5)
    assert parse_time("01:02.25") == pytest.approx(62.25)
    assert parse_time("1:00:00") == 3600
    for bad in ("abc", "00:61:00", "00:00:75.0", "nan", ""):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_plain_csv_seconds_and_timestamps_overlaps_kept(tmp_path):
    src = _write(tmp_path / "labels.csv",
                 "video,start,end,label,subset\n"
                 "clipA,1.5,4.0,jump,train\n"
                 "clipA,00:00:03.00,00:00:06.50,wave,train\n"     # overlaps the jump: kept
                 "clipA,3.0,6.5,jump,train\n"                     # same span, other class: kept
                 "clipB,0:02.00,0:05.00,wave,test\n"
                 "\n")
    result = convert_annotations([src])
    ann = _roundtrip(tmp_path, result)
    assert ann.classes == ["jump", "wave"]
    a = ann.videos["clipA"]
    assert a.subset == "train" and len(a) == 3
    np.testing.assert_allclose(a.segments, [[1.5, 4.0], [3.0, 6.5], [3.0, 6.5]])
    assert list(a.labels) == [0, 1, 0]
    assert ann.videos["clipB"].subset == "test"
    np.testing.assert_allclose(ann.videos["clipB"].segments, [[2.0, 5.0]])
    # no duration known: the last end time, and a note that says so
    assert a.duration == pytest.approx(6.5)
    assert any("last annotated end time" in note for note in result.notes)


def test_plain_csv_default_subset_and_duration_column(tmp_path):
    src = _write(tmp_path / "labels.csv", "video,start,end,label,duration\nv1,1,2,a,30\nv1,5,9,b,30\n")
    ann = _roundtrip(tmp_path, convert_annotations([src], default_subset="validation"))
    assert ann.videos["v1"].subset == "validation" and ann.videos["v1"].duration == 30


@pytest.mark.parametrize("text, problem", [
    ("video,start,end,label\nv1,abc,2,a\n", "row 2: start 'abc' is not a time"),
    ("video,start,end,label\nv1,1,2,a\nv1,5,4,b\n", "row 3: end 4.0 is not after start 5.0"),
    ("video,start,end,label\nv1,1,1,a\n", "row 2: end 1.0 is not after start 1.0"),
    ("video,start,end,label\nv1,-1,1,a\n", "row 2: start -1.0 is negative"),
    ("video,start,end,label\nv1,1,2\n", "row 2: 3 columns but the header has 4"),
    ("video,start,end,label\nv1,1,2,\n", "row 2: empty label"),
    ("video,begin,end,label\nv1,1,2,a\n", "unknown format"),
    ("video,start,end,label,subset\nv1,1,2,a,train\nv1,3,4,a,test\n", "row 3: video 'v1' is in subset 'test'"),
])
def test_plain_csv_errors_name_file_and_row(tmp_path, text, problem):
    src = _write(tmp_path / "bad.csv", text)
    with pytest.raises(TadInputError) as info:
        convert_annotations([src])
    assert str(info.value).startswith(f"{src}: ")
    assert problem in str(info.value)
    assert "\n" not in str(info.value)


def test_epic_slice_verb_and_noun(tmp_path):
    train, val = EPIC / "EPIC_100_train_slice.csv", EPIC / "EPIC_100_validation_slice.csv"
    rows = list(csv.DictReader(train.open())) + list(csv.DictReader(val.open()))
    for task in ("verb", "noun"):
        result = convert_annotations([train, val], task=task)
        ann = _roundtrip(tmp_path, result)
        assert result.num_segments == len(rows) == 75
        names = {int(r["id"]): r["key"] for r in csv.DictReader((EPIC / f"EPIC_100_{task}_classes.csv").open())}
        used = sorted({int(r[f"{task}_class"]) for r in rows})
        # classes ordered by the official id, named by the official class table
        assert ann.classes == [names[i] for i in used]
        assert {v.subset for v in ann.videos.values()} == {"training", "validation"}
        assert sorted(ann.subset("training")) == ["P11_02", "P11_06", "P11_07"]
        assert sorted(ann.subset("validation")) == ["P02_13", "P11_21"]
        # durations and fps from EPIC_100_video_info.csv
        assert ann.videos["P11_02"].duration == pytest.approx(36.08605)
        assert ann.videos["P02_13"].fps == pytest.approx(59.94005994, rel=1e-6)
        # HH:MM:SS.ff timestamps in seconds, row by row
        first = rows[0]
        seg = ann.videos[first["video_id"]].segments[0]
        assert seg[0] == pytest.approx(parse_time(first["start_timestamp"]))
        assert seg[1] == pytest.approx(parse_time(first["stop_timestamp"]))
        assert ann.classes[ann.videos[first["video_id"]].labels[0]] == names[int(first[f"{task}_class"])]
        raw = result.data["database"][first["video_id"]]["annotations"][0]
        assert raw["label_id"] == int(first[f"{task}_class"])  # the official class id


def test_epic_needs_task_and_validates_classes(tmp_path):
    with pytest.raises(TadInputError, match="--task verb or --task noun"):
        convert_annotations([EPIC / "EPIC_100_validation_slice.csv"])
    rows = (EPIC / "EPIC_100_validation_slice.csv").read_text().splitlines()
    header = rows[0].split(",")
    broken = tmp_path / "EPIC_100_validation.csv"
    cells = next(csv.reader([rows[1]]))
    cells[header.index("stop_timestamp")] = "00:00:xx"
    with broken.open("w", newline="") as f:
        csv.writer(f).writerows([header, cells])
    with pytest.raises(TadInputError) as info:
        convert_annotations([broken], task="verb")
    assert str(info.value).startswith(f"{broken}: row 2: stop_timestamp '00:00:xx'")


def test_activitynet_official_json(tmp_path):
    src = tmp_path / "activity_net.json"
    src.write_text(json.dumps({
        "version": "VERSION 1.3", "taxonomy": [],
        "database": {
            "abc": {"subset": "training", "duration": 120.5, "resolution": "640x360", "url": "u",
                    "annotations": [{"segment": [3.2, 50.1], "label": "Long jump"},
                                    {"segment": [60.0, 90.0], "label": "Archery"}]},
            "def": {"subset": "validation", "duration": 60.0, "annotations": [{"segment": [1, 20], "label": "Archery"}]},
            "ghi": {"subset": "testing", "duration": 30.0, "annotations": []},
        }}))
    ann = _roundtrip(tmp_path, convert_annotations([src], id_prefix="v_"))
    assert sorted(ann.videos) == ["v_abc", "v_def", "v_ghi"]
    assert ann.classes == ["Archery", "Long jump"]
    assert len(ann.videos["v_ghi"]) == 0 and ann.videos["v_ghi"].subset == "testing"
    assert ann.videos["v_abc"].duration == 120.5


def test_activitynet_shared_file_converts_unchanged(tmp_path, shared_dir):
    src = shared_dir / "data" / "activitynet" / "activitynet13.json"
    ref = load_annotations(src)
    ann = _roundtrip(tmp_path, convert_annotations([src]))
    assert ann.classes == ref.classes and len(ann.classes) == 200
    assert ann.videos.keys() == ref.videos.keys()
    for vid in list(ref.videos)[:500]:
        np.testing.assert_allclose(ann.videos[vid].segments, ref.videos[vid].segments, atol=1e-6)
        assert list(ann.videos[vid].labels) == list(ref.videos[vid].labels)


def test_multithumos_slice_overlaps_kept(tmp_path):
    raw = json.loads(MULTITHUMOS.read_text())
    result = convert_annotations([MULTITHUMOS])
    ann = _roundtrip(tmp_path, result)
    assert result.num_segments == sum(len(v["actions"]) for v in raw.values())
    assert {v.subset for v in ann.videos.values()} == {"training", "testing"}
    # every action kept, with its class (named class_<id>) and times
    for vid, entry in raw.items():
        got = sorted((ann.classes[int(k)], float(s[0]), float(s[1]))
                     for s, k in zip(ann.videos[vid].segments, ann.videos[vid].labels))
        assert got == sorted((f"class_{c}", float(s), float(e)) for c, s, e in entry["actions"])
    # instances of different classes overlap in time
    v = ann.videos["video_test_0000062"]
    overlaps = [(i, j) for i in range(len(v)) for j in range(i + 1, len(v))
                if v.labels[i] != v.labels[j] and min(v.segments[i, 1], v.segments[j, 1])
                > max(v.segments[i, 0], v.segments[j, 0])]
    assert overlaps


def test_multithumos_class_names_file(tmp_path):
    names = tmp_path / "class_list.txt"
    names.write_text("\n".join(f"{i} Name{i}" for i in range(1, 66)))
    ann = _roundtrip(tmp_path, convert_annotations([MULTITHUMOS], class_names=names))
    assert all(name.startswith("Name") for name in ann.classes)


def test_cli_writes_and_refuses_output_over_input(tmp_path):
    src = _write(tmp_path / "labels.csv", "video,start,end,label,subset\nv1,1,2,a,train\nv2,1,3,a,test\n")
    runner = CliRunner()
    out = tmp_path / "ann.json"
    res = runner.invoke(main, ["convert-annotations", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 videos (train 1, test 1), 2 segments, 1 classes" in res.output
    assert load_annotations(out).classes == ["a"]
    # output over input: one line, input untouched
    before = src.read_text()
    res = runner.invoke(main, ["convert-annotations", str(src), "-o", str(src)])
    assert res.exit_code != 0 and "refusing to overwrite" in res.output and "Traceback" not in res.output
    assert src.read_text() == before
    # EPIC without --task: one line naming the file
    res = runner.invoke(main, ["convert-annotations", str(EPIC / "EPIC_100_train_slice.csv"), "-o", str(out)])
    assert res.exit_code != 0 and "--task verb or --task noun" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(main, ["convert-annotations", str(EPIC / "EPIC_100_train_slice.csv"), "--task", "noun",
                               "-o", str(tmp_path / "epic_noun.json")])
    assert res.exit_code == 0, res.output
    assert "3 videos (training 3), 50 segments" in res.output
