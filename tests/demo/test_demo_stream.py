"""`tad demo --stream-only`: stream one already-rendered demo video through the causal detector."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from tad.cli import main
from tad.demo.pipeline import run_demo
from tad.eval.annotations import load_annotations
from tad.eval.results import load_predictions


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_stream_only_streams_a_rendered_test_video_at_real_time(tmp_path):
    workdir = tmp_path / "demo"
    run_demo(workdir, videos=8, epochs=3, progress=False, echo=lambda _: None,
             video_kwargs=dict(min_duration=6.0, max_duration=8.0))
    ann = load_annotations(workdir / "annotations.json")
    first_test = sorted(ann.subset("test"))[0]
    duration = ann.videos[first_test].duration

    result = CliRunner().invoke(main, ["demo", "--workdir", str(workdir), "--stream-only", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"=== stream {first_test}.mp4 at real time ===" in out
    assert (workdir / "train_causal").is_dir()  # trained here: the demo had none
    match = re.search(r"([\d.]+) s of video in ([\d.]+) s \((\d+) frames/s\): (\d+) events", out)
    assert match, out
    video_s, wall_s, events = float(match[1]), float(match[2]), int(match[4])
    assert video_s == pytest.approx(duration, abs=0.2)
    assert wall_s >= 0.9 * video_s  # paced at the video's own frame rate
    lines = [json.loads(line) for line in (workdir / "stream_events.jsonl").read_text().splitlines()]
    assert len(lines) == events
    for ev in lines:
        assert ev["event"] in ("start", "segment") and ev["video_id"] == first_test
        assert ev["label"] in ann.classes and 0 <= ev["video_time"] <= duration
    predictions = load_predictions(workdir / "stream_predictions.json", classes=ann.classes)
    assert set(predictions) <= {first_test}

    # again: the trained causal detector is reused, not retrained
    again = CliRunner().invoke(main, ["demo", "--workdir", str(workdir), "--stream-only", "--no-realtime"])
    assert again.exit_code == 0, again.output
    assert "(already trained)" in again.output and "train the causal" not in again.output
    assert f"=== stream {first_test}.mp4 ===" in again.output  # not paced: --no-realtime


def test_demo_stream_only_needs_a_demo(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path), "--stream-only"])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {tmp_path}: no demo here (annotations.json is missing); run "
                                     f"`tad demo --workdir {tmp_path}` first")
