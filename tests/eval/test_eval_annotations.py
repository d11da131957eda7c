from __future__ import annotations

import numpy as np
import pytest
from eval_helpers import actionformer_db, write_json

from tad.errors import TadInputError
from tad.eval.annotations import load_annotations, remove_duplicate_segments


def test_real_thumos14(thumos_json):
    ann = load_annotations(thumos_json)
    assert len(ann.subset("validation")) == 200
    assert len(ann.subset("test")) == 212
    assert len(ann.subset("Test")) == 212  # case-insensitive
    assert len(ann.classes) == 20
    assert ann.classes[0] == "BaseballPitch" and ann.classes[19] == "VolleyballSpiking"
    assert ann.class_index["Diving"] == 7
    v = ann.videos["video_test_0000004"]
    assert v.subset == "Test" and v.fps == 30.0 and v.duration == pytest.approx(33.83)
    assert v.segments.dtype == np.float64 and v.segments.shape == (len(v.labels), 2)
    assert v.labels.dtype == np.int64
    np.testing.assert_array_equal(v.segments[0], [0.2, 1.1])
    assert ann.classes[v.labels[0]] == "CricketBowling"
    assert sum(len(x) for x in ann.videos.values()) == 6365


def test_activitynet_style(tmp_path):
    doc = {"version": "VERSION 1.3",
           "taxonomy": [{"nodeId": 1, "nodeName": "Zumba", "parentId": 0, "parentName": "Root"}],
           "database": {
               "v1": {"subset": "training", "duration": 20.5, "url": "https://x", "resolution": "640x360",
                      "annotations": [{"label": "Zumba", "segment": [1.0, 5.0]},
                                      {"label": "Archery", "segment": [6.0, 9.5]}]},
               "v2": {"subset": "validation", "duration": 10, "annotations": [{"label": "Bowling", "segment": [0, 2]}]},
               "v3": {"subset": "testing", "duration": 12.0, "annotations": []}}}
    ann = load_annotations(write_json(tmp_path / "anet.json", doc))
    assert ann.classes == ["Archery", "Bowling", "Zumba"]  # no label_id: sorted names
    assert ann.videos["v1"].fps is None
    np.testing.assert_array_equal(ann.videos["v1"].labels, [2, 0])
    assert list(ann.subset("Validation")) == ["v2"]
    assert len(ann.videos["v3"]) == 0
    assert ann.subsets == ["training", "validation", "testing"]


def test_label_ids_compacted_in_order(tmp_path):
    doc = {"database": {"a": {"subset": "test", "duration": 9, "annotations": [
        {"label": "Jump", "segment": [0, 1], "label_id": 11},
        {"label": "Bowl", "segment": [2, 3], "label_id": 5},
        {"label": "Swim", "segment": [4, 5], "label_id": 7}]}}}
    ann = load_annotations(write_json(tmp_path / "a.json", doc))
    assert ann.classes == ["Bowl", "Swim", "Jump"]
    np.testing.assert_array_equal(ann.videos["a"].labels, [2, 0, 1])


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"version": 1}', "missing key 'database'"),
    ('{"database": {"v": {"duration": 3, "annotations": []}}}', "database['v']: missing key 'subset'"),
    ('{"database": {"v": {"subset": "test", "annotations": []}}}', "database['v']: missing key 'duration'"),
    ('{"database": {"v": {"subset": "test", "duration": 9, "annotations": [{"segment": [0, 1]}]}}}',
     "database['v']['annotations'][0]: missing key 'label'"),
    ('{"database": {"v": {"subset": "test", "duration": 9, "annotations": [{"label": "A", "segment": [3, 1]}]}}}',
     "database['v']['annotations'][0]: segment end 1 < start 3"),
    ('{"database": {"v": {"subset": "test", "duration": 9, "annotations": [{"label": "A", "segment": [0, NaN]}]}}}',
     "'segment' must be [start, end] finite numbers"),
    ('{"database": {"v": {"subset": "test", "duration": 9, "annotations": ['
     '{"label": "A", "segment": [0, 1], "label_id": 0}, {"label": "B", "segment": [0, 1], "label_id": 0}]}}}',
     "label_id 0 names 'B' here but 'A' earlier"),
])
def test_bad_annotation_files(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TadInputError) as err:
        load_annotations(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_missing_annotation_file(tmp_path):
    with pytest.raises(TadInputError, match="file not found"):
        load_annotations(tmp_path / "nope.json")


def test_remove_duplicates_by_hand():
    segs = np.array([[0, 10], [0.0005, 10.0009], [0.0015, 10.0015], [0, 10], [5, 5.0005], [20, 30]], float)
    labels = np.array([0, 0, 0, 1, 0, 0])
    # 1 duplicates 0; 2 is within tol of 1 (dropped) but not of 0 -> kept; 3 other class;
    # 4 shorter than 1e-3 s
    np.testing.assert_array_equal(remove_duplicate_segments(segs, labels), [0, 2, 3, 5])
    assert remove_duplicate_segments(np.zeros((0, 2)), np.zeros(0, int)).tolist() == []


def test_helpers_db_is_loadable(tmp_path):
    ann = load_annotations(write_json(tmp_path / "x.json", actionformer_db(
        {"v": ("Test", 30.0, [("B", 1.0, 2.0)])})))
    assert ann.classes == ["B"]  # only labels that occur
