"""`tad stream` end to end: events as the video plays, ActivityNet output, clean ends, one-line errors."""
import json
import shutil

import pytest
from click.testing import CliRunner

from tad.cli import main
from tad.eval.results import load_predictions


def _args(source, ckpt, *extra):
    return ["stream", str(source), "--config", "tiny_test_causal.py", "--checkpoint", str(ckpt), "--random-init",
            "--threads", "1", *map(str, extra)]


@pytest.mark.slow
def test_stream_real_video_events_and_predictions(causal_run, real_videos_dir, tmp_path):
    events, preds = tmp_path / "events.jsonl", tmp_path / "preds.json"
    result = CliRunner().invoke(main, _args(real_videos_dir / "tennis26.mp4", causal_run, "--threshold", "0.02",
                                            "--max-latency", "1", "-o", events, "--preds-out", preds))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    kinds = {ev["event"] for ev in lines}
    assert kinds == {"start", "segment"}, kinds
    for ev in lines:
        assert ev["video_id"] == "tennis26" and ev["label"] in ("jump", "throw", "run")
        assert 0 <= ev["video_time"] <= 11.5 and ev["wall_time"].endswith("Z")
    times = [ev["video_time"] for ev in lines]
    assert times == sorted(times)
    # some events come before the end of the video: they are emitted as it plays
    assert min(times) < 10.0
    # a segment is due at most --max-latency (1 s) after its end, judged at the next clip centre (clip
    # stride: 4 frames at 10 fps = 0.4 s), which lags the newest frame (the event's video_time) by half
    # the 8-frame clip (0.4 s)
    for ev in lines:
        if ev["event"] == "segment":
            assert ev["video_time"] <= max(ev["segment"][1], 0) + 1.0 + 0.4 + 0.4 + 0.1
    predictions = load_predictions(preds, classes=["jump", "throw", "run"])
    segs = predictions["tennis26"]
    assert segs and all(0 <= s["segment"][0] < s["segment"][1] <= 11.4 for s in segs)
    assert "start and" in result.output


@pytest.mark.slow
def test_stream_real_video_prints_json_lines(causal_run, real_videos_dir):
    """Without -o, each event is one JSON line on stdout as it happens (tennis26.mp4, 11.4 s)."""
    result = CliRunner().invoke(main, _args(real_videos_dir / "tennis26.mp4", causal_run, "--threshold", "0.02",
                                            "--max-latency", "1"))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert {ev["event"] for ev in lines} == {"start", "segment"}
    for ev in lines:
        assert ev["video_id"] == "tennis26" and ev["label"] in ("jump", "throw", "run")
        assert set(ev) >= {"video_time", "wall_time", "score"}
        assert ("segment" in ev) == (ev["event"] == "segment") and ("start" in ev) == (ev["event"] == "start")


def test_stream_refuses_output_over_input(causal_run, real_videos_dir, tmp_path):
    video = tmp_path / "v.mp4"
    shutil.copy(real_videos_dir / "highjump.mp4", video)
    result = CliRunner().invoke(main, _args(video, causal_run, "-o", video))
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {video}: -o is one of the inputs (SOURCE); refusing to overwrite it"
    assert video.stat().st_size > 1000


def test_stream_needs_a_causal_detector(tmp_path, real_videos_dir):
    ckpt = tmp_path / "c.pth"
    import torch

    torch.save({"state_dict": {}}, ckpt)
    result = CliRunner().invoke(main, ["stream", str(real_videos_dir / "highjump.mp4"), "--config", "tiny_test.py",
                                       "--checkpoint", str(ckpt), "--random-init"])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("flag,value", [("--max-latency", "0"), ("--max-latency", "nan"), ("--stall-timeout", "-1"),
                                        ("--threshold", "1.5")])
def test_stream_bad_options_name_the_flag(causal_run, real_videos_dir, flag, value):
    result = CliRunner().invoke(main, _args(real_videos_dir / "highjump.mp4", causal_run, flag, value))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {flag}: ") and len(result.output.strip().splitlines()) == 1


def test_stream_truncated_file_ends_cleanly(causal_run, real_videos_dir, tmp_path):
    """Corrupt data mid-stream: the run ends, what was found is written, exit code 0."""
    from extract_video_utils import make_video

    video = make_video(tmp_path / "v.ts", num_frames=90, width=64, height=64)
    data = video.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) * 2 // 3] + b"\x47garbage" * 500)
    preds = tmp_path / "p.json"
    result = CliRunner().invoke(main, _args(cut, causal_run, "--preds-out", preds))
    assert result.exit_code == 0, result.output
    assert preds.is_file() and "cut" in json.loads(preds.read_text())["results"]


def test_stream_stalled_growing_file_is_a_one_line_error(causal_run, tmp_path):
    grow = tmp_path / "live.ts"
    grow.write_bytes(b"")
    result = CliRunner().invoke(main, _args(grow, causal_run, "--follow", "--stall-timeout", "1"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"Error: {grow}: ") and ("stall" in lines[-1] or "no video data" in lines[-1])
