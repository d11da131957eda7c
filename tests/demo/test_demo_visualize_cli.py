"""`tad visualize`: PNGs from files, one-line errors for bad input."""
from __future__ import annotations

import json

from click.testing import CliRunner

from tad.cli.visualize import visualize
from tad.eval.results import write_predictions
from tad.eval.visualize import png_size


def _files(tmp_path):
    ann = {"version": "t", "database": {
        "v1": {"subset": "Test", "duration": 30.0, "fps": 15.0, "annotations": [
            {"label": "Jump", "segment": [2.0, 6.0], "segment(frames)": [30, 90], "label_id": 0},
            {"label": "Run", "segment": [10.0, 14.0], "segment(frames)": [150, 210], "label_id": 1}]},
        "v2": {"subset": "Test", "duration": 20.0, "fps": 15.0, "annotations": [
            {"label": "Run", "segment": [3.0, 5.0], "segment(frames)": [45, 75], "label_id": 1}]},
    }}
    ann_path = tmp_path / "ann.json"
    ann_path.write_text(json.dumps(ann))
    preds_path = tmp_path / "preds.json"
    write_predictions(preds_path, {"v1": [{"label": "Jump", "score": 0.9, "segment": [2.1, 6.2]},
                                          {"label": "Run", "score": 0.3, "segment": [20.0, 22.0]}],
                                   "v2": []})
    return ann_path, preds_path


def test_one_video_png(tmp_path):
    ann, preds = _files(tmp_path)
    out = tmp_path / "v1.png"
    result = CliRunner().invoke(visualize, [str(preds), "--annotations", str(ann), "--video", "v1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    width, height = png_size(out)
    assert width == 1200 and height > 200
    assert f"wrote {out}" in result.output


def test_all_videos_into_a_folder_including_one_without_predictions(tmp_path):
    ann, preds = _files(tmp_path)
    out = tmp_path / "timelines"
    result = CliRunner().invoke(visualize, [str(preds), "--annotations", str(ann), "--subset", "test",
                                            "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["v1.png", "v2.png"]
    for p in out.iterdir():
        assert png_size(p)[0] == 1200


def test_predictions_only(tmp_path):
    _, preds = _files(tmp_path)
    result = CliRunner().invoke(visualize, [str(preds), "--video", "v1", "-o", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "p.png")[0] == 1200


def _assert_one_line_error(result, *needles):
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0]


def test_errors_are_one_line(tmp_path):
    ann, preds = _files(tmp_path)
    runner = CliRunner()
    _assert_one_line_error(runner.invoke(visualize, [str(preds), "--annotations", str(ann), "--video", "nope",
                                                     "-o", str(tmp_path / "x.png")]), "nope")
    _assert_one_line_error(runner.invoke(visualize, [str(tmp_path / "missing.json"), "--video", "v1",
                                                     "-o", str(tmp_path / "x.png")]), "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    _assert_one_line_error(runner.invoke(visualize, [str(broken), "-o", str(tmp_path / "x.png")]), "broken.json")
    _assert_one_line_error(runner.invoke(visualize, [str(preds), "--annotations", str(ann), "--video", "v1",
                                                     "--video", "v2", "-o", str(tmp_path / "x.png")]), "folder")
    _assert_one_line_error(runner.invoke(visualize, [str(preds), "--video", "v1", "--video-file",
                                                     str(tmp_path / "none.mp4"), "-o", str(tmp_path / "x.png")]),
                           "none.mp4")
