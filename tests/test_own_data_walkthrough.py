"""The README's "Your own videos" walkthrough, run as written: the bash block of that section
is read from README.md and executed line by line in a folder holding the demo's rendered
videos (``videos/``) and a CSV of their labels (``labels.csv``, mixed second and
HH:MM:SS.ff times)."""
from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _walkthrough_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own videos", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block in the README's 'Your own videos' section"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def _hhmmss(seconds: float) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:05.2f}"


def test_walkthrough_block_uses_each_step():
    commands = " ".join(_walkthrough_commands())
    for step in ("tad extract", "tad convert-annotations", "tad check-data", "tad init-config", "tad train",
                 "tad eval", "tad visualize"):
        assert step in commands, step


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_walkthrough_runs_as_written(tmp_path):
    from tad.demo.render import render_dataset

    render_dataset(tmp_path, num_videos=12, seed=0, workers=2, min_duration=20.0, max_duration=40.0)
    annotations = json.loads((tmp_path / "annotations.json").read_text())["database"]
    (tmp_path / "annotations.json").unlink()  # the user has a CSV, not our JSON
    with (tmp_path / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["video", "start", "end", "label", "subset"])
        for i, (vid, entry) in enumerate(sorted(annotations.items())):
            subset = "test" if entry["subset"].lower() == "test" else "train"
            for a in entry["annotations"]:
                start, end = a["segment"]
                if i % 2:  # half the videos in HH:MM:SS.ff
                    start, end = _hhmmss(start), _hhmmss(end)
                writer.writerow([vid, start, end, a["label"], subset])

    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for command in _walkthrough_commands():
        proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        if command.startswith("tad check-data"):
            assert "0 error(s)" in proc.stdout, proc.stdout

    converted = json.loads((tmp_path / "ann.json").read_text())["database"]
    assert converted.keys() == annotations.keys()
    for vid, entry in annotations.items():
        assert converted[vid]["duration"] == pytest.approx(entry["duration"], abs=0.1)  # from the video file
        got = sorted(a["segment"] for a in converted[vid]["annotations"])
        want = sorted(a["segment"] for a in entry["annotations"])
        assert len(got) == len(want)
        for g, w in zip(got, want):  # HH:MM:SS.ff rows keep 10 ms
            assert g == pytest.approx(w, abs=0.006)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # 4 classes: chance is a few %; the demo reaches 50-62 % with twice the videos
    assert metrics["average_mAP"] > 0.25, metrics
    timelines = sorted((tmp_path / "timelines").glob("*.png"))
    tests = [vid for vid, e in annotations.items() if e["subset"].lower() == "test"]
    assert len(timelines) == len(tests)
    print(f"\nwalkthrough on {len(annotations)} demo videos: average mAP {100 * metrics['average_mAP']:.2f}")
