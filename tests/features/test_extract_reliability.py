"""Issue 15, extraction side: options validated by flag name, one writer per output,
--overwrite replaces only a complete store, unfinished runs named, outputs never over inputs,
exit status 3 when some videos failed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from extract_video_utils import make_video
from store_writer_loop import META, video_data
from tad.cli.extract import extract
from tad.errors import TadInputError
from tad.features.extract import ExtractOptions, extract_videos
from tad.features.store import FeatureStore
from tad.features.store_writer import FeatureStoreWriter, parts_dir_for

FLAGS = ["--backbone", "tiny3d", "--random-init", "--short-side", "32", "--crop", "32", "--no-progress",
         "--workers", "0"]


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two")
    make_video(root / "a.mp4", num_frames=40)
    make_video(root / "b.mp4", num_frames=44)
    return root


@pytest.mark.parametrize("args, line", [
    (["--clip-len", "0"], "--clip-len: must be >= 1, got 0"),
    (["--clip-stride", "0"], "--clip-stride: must be >= 1, got 0"),
    (["--frame-interval", "0"], "--frame-interval: must be >= 1, got 0"),
    (["--resize", "0"], "--resize: must be >= 1, got 0"),
    (["--crop", "0"], "--crop: must be >= 1, got 0"),
    (["--short-side", "-3"], "--short-side: must be >= 1, got -3"),
    (["--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
    (["--fps", "nan"], "--fps: must be a finite number > 0 or 'native', got nan"),
    (["--fps", "0"], "--fps: must be a finite number > 0 or 'native', got 0"),
    (["--fps", "abc"], "--fps: must be a number or 'native', got 'abc'"),
    (["--timeout", "0"], "--timeout: must be a number of seconds > 0, got 0.0"),
    (["--timeout", "inf"], "--timeout: must be a number of seconds > 0, got inf"),
    (["--workers", "-1"], "--workers: must be >= 0 (0: decode in the main process), got -1"),
])
def test_bad_option_values_fail_naming_the_flag(two_videos, tmp_path, args, line):
    out = tmp_path / "x.h5"
    # the later --crop 32 / --workers 0 of FLAGS would win, so the flag under test comes last
    result = CliRunner().invoke(extract, [str(two_videos), "-o", str(out), *FLAGS, *args])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines() == [f"Error: {line}"]
    assert not out.exists() and not parts_dir_for(out).exists()


def test_zero_is_never_the_backbone_default_in_the_library(two_videos, tmp_path):
    for key in ("clip_len", "clip_stride", "frame_interval", "crop", "resize"):
        opts = ExtractOptions(backbone="tiny3d", random_init=True, workers=0, **{key: 0})
        with pytest.raises(TadInputError, match=f"--{key.replace('_', '-')}: must be >= 1, got 0"):
            extract_videos([two_videos / "a.mp4"], two_videos, tmp_path / "x.h5", opts, progress=False)
    assert not (tmp_path / "x.h5").exists()


_HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from store_writer_loop import META, video_data
    from tad.features.store_writer import FeatureStoreWriter
    writer = FeatureStoreWriter({out!r}, META)
    writer.write_video(*video_data(0)[:3], video_data(0)[3])
    open({tmp!r}, "w").write("in progress")  # a temp file of this run
    print("ready", flush=True)
    time.sleep(120)
""")


def test_second_writer_of_the_same_output_is_refused_until_the_first_dies(tmp_path):
    out = tmp_path / "f.h5"
    tmp_file = parts_dir_for(out) / ".video-x.h5.r0.tmp"
    script = _HOLDER.format(tests=str(Path(__file__).parent), out=str(out), tmp=str(tmp_file))
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(TadInputError) as err:
            FeatureStoreWriter(out, META)
        assert str(err.value).startswith(f"{out}: is being written by another process (pid {holder.pid})")
        assert tmp_file.exists()  # the other run's temporary files are left alone
        assert len(list(parts_dir_for(out).glob("video-*.h5"))) == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
    # the kernel released the dead process's lock: the next run resumes its work
    with FeatureStoreWriter(out, META) as writer:
        assert writer.completed == {video_data(0)[0]}
    assert FeatureStore(out).videos == [video_data(0)[0]]
    assert not Path(f"{out}.lock").exists()


def test_extract_cli_refuses_a_locked_output(two_videos, tmp_path):
    out = tmp_path / "f.h5"
    script = _HOLDER.format(tests=str(Path(__file__).parent), out=str(out), tmp=str(tmp_path / "unused"))
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = CliRunner().invoke(extract, [str(two_videos), "-o", str(out), *FLAGS])
        assert result.exit_code == 1
        assert result.output.strip().splitlines()[-1].startswith(
            f"Error: {out}: is being written by another process (pid {holder.pid})")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()


def test_interrupted_overwrite_keeps_the_old_store_and_resumes(tmp_path):
    path = tmp_path / "f.h5"
    with FeatureStoreWriter(path, META) as writer:
        for i in (0, 1):
            writer.write_video(*video_data(i)[:3], video_data(i)[3])
    new_meta = dict(META, options=dict(META["options"], clip_stride=8))
    crashed = FeatureStoreWriter(path, new_meta, overwrite=True)
    crashed.write_video(*video_data(2)[:3], video_data(2)[3])
    crashed.close()  # "killed" before finalize
    assert FeatureStore(path).videos == [video_data(0)[0], video_data(1)[0]]  # still the old, complete store
    resumed = FeatureStoreWriter(path, new_meta)  # same command again, without --overwrite: resumes
    assert resumed.completed == {video_data(2)[0]}
    resumed.write_video(*video_data(3)[:3], video_data(3)[3])
    resumed.finalize()
    store = FeatureStore(path)
    assert store.videos == sorted([video_data(2)[0], video_data(3)[0]])
    assert store.attrs["options"]["clip_stride"] == 8


def test_store_summary_names_an_unfinished_run(tmp_path):
    path = tmp_path / "f.h5"
    writer = FeatureStoreWriter(path, META)
    writer.write_video(*video_data(0)[:3], video_data(0)[3])
    writer.close()  # as after kill -9: parts, no store
    proc = subprocess.run([sys.executable, "-m", "tad.features.store", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error: {path}: unfinished run: re-run the same command to resume"
    assert "Traceback" not in proc.stderr


def test_some_videos_failed_exit_status_3_with_summary(two_videos, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    os.symlink(two_videos / "a.mp4", videos / "a.mp4")
    (videos / "junk.mp4").write_text("not a video")
    out = tmp_path / "f.h5"
    result = CliRunner().invoke(extract, [str(videos), "-o", str(out), *FLAGS])
    assert result.exit_code == 3, result.output
    assert "done 1, skipped 0 (already complete), failed 1" in result.stdout
    assert FeatureStore(out).videos == ["a"]
    again = CliRunner().invoke(extract, [str(videos), "-o", str(out), *FLAGS])  # still one failed
    assert again.exit_code == 3 and "done 0, skipped 1" in again.stdout
    (videos / "junk.mp4").unlink()
    assert CliRunner().invoke(extract, [str(videos), "-o", str(out), *FLAGS]).exit_code == 0
    help_text = CliRunner().invoke(extract, ["--help"]).output
    assert "Exit status: 0" in help_text and "3 some videos failed" in help_text and "TRUSTED" in help_text


def test_output_over_an_input_is_refused(two_videos, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    video = videos / "a.mp4"
    video.write_bytes((two_videos / "a.mp4").read_bytes())
    before = video.read_bytes()
    result = CliRunner().invoke(extract, [str(videos), "-o", str(videos / "." / "a.mp4"), *FLAGS])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {videos / '.' / 'a.mp4'}: -o is one of the inputs (VIDEO); refusing to overwrite it"]
    listing = tmp_path / "list.txt"
    listing.write_text("a\n")
    result = CliRunner().invoke(extract, [str(videos), "-o", str(listing), "--video-list", str(listing), *FLAGS])
    assert result.exit_code == 1 and "-o is one of the inputs (--video-list)" in result.output
    assert video.read_bytes() == before and listing.read_text() == "a\n"
    assert sorted(p.name for p in videos.iterdir()) == ["a.mp4"]
