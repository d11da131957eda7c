"""FeatureStoreWriter: settings mismatch, overwrite, resume, failed list, kill -9 safety."""
from __future__ import annotations

import random
import signal
import subprocess
import time

import numpy as np
import pytest

from tad.errors import TadInputError
from tad.features.store import FeatureStore
from tad.features.store_writer import FeatureStoreWriter, parts_dir_for

from store_test_utils import assert_stores_equal, loop_cmd, loop_env, run_loop
from store_writer_loop import META, video_data


def _write(writer, indices):
    for i in indices:
        vid, feats, stamps, attrs = video_data(i)
        writer.write_video(vid, feats, stamps, attrs)


def _meta(**options):
    return dict(META, options={**META["options"], **options})


def test_settings_mismatch_refused_for_store_and_unfinished_run(tmp_path):
    path = tmp_path / "f.h5"
    with FeatureStoreWriter(path, META) as writer:
        _write(writer, [0, 1])
    with pytest.raises(TadInputError, match=r"f\.h5: the existing store was made with different settings "
                                            r"\(clip_stride 4 -> 8\); use --overwrite"):
        FeatureStoreWriter(path, _meta(clip_stride=8))
    with pytest.raises(TadInputError, match=r"backbone 'tiny3d' -> 'tada2d_r50'"):
        FeatureStoreWriter(path, dict(META, backbone="tada2d_r50"))
    with pytest.raises(TadInputError, match=r"checkpoint"):
        FeatureStoreWriter(path, dict(META, checkpoint_sha256="cd" * 32))
    with pytest.raises(TadInputError, match=r"dtype 'float16' -> 'float32'"):
        FeatureStoreWriter(path, META, dtype="float32")
    # options that do not change values may differ
    writer = FeatureStoreWriter(path, _meta(workers=8, batch_size=64, device="cuda"))
    assert writer.completed == {"grp0/vid0", "grp1/vid1"}

    # an unfinished run (parts folder only) is protected the same way
    other = tmp_path / "g.h5"
    writer = FeatureStoreWriter(other, META)
    _write(writer, [0])
    with pytest.raises(TadInputError, match=r"g\.h5\.parts: an unfinished run was made with different settings"):
        FeatureStoreWriter(other, _meta(fps=25))
    assert FeatureStoreWriter(other, META).completed == {"grp0/vid0"}


def test_overwrite_replaces_store_and_unfinished_run(tmp_path):
    path = tmp_path / "f.h5"
    with FeatureStoreWriter(path, META) as writer:
        _write(writer, [0, 1, 2])
    stale = FeatureStoreWriter(path, META)
    _write(stale, [3])  # unfinished run on top
    writer = FeatureStoreWriter(path, _meta(clip_stride=8), overwrite=True)
    assert writer.completed == set() and not any(
        p.name.startswith("video-") for p in parts_dir_for(path).iterdir())
    _write(writer, [4])
    # the old store stays whole until the new one is complete
    assert FeatureStore(path).videos == ["grp0/vid0", "grp1/vid1", "grp2/vid2"]
    writer.finalize()
    store = FeatureStore(path)
    assert store.videos == ["grp1/vid4"] and store.attrs["options"]["clip_stride"] == 8
    # a file that is not a store is refused unless overwrite
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(TadInputError, match=r"junk\.h5: exists and is not an HDF5 feature store; use --overwrite"):
        FeatureStoreWriter(junk, META)
    with FeatureStoreWriter(junk, META, overwrite=True) as writer:
        _write(writer, [0])
    assert FeatureStore(junk).videos == ["grp0/vid0"]


def test_resume_keeps_completed_and_merges_with_existing_store(tmp_path):
    path, ref = tmp_path / "f.h5", tmp_path / "ref.h5"
    with FeatureStoreWriter(ref, META) as writer:
        _write(writer, range(6))
    with FeatureStoreWriter(path, META) as writer:
        _write(writer, [0, 1])
    first_run = FeatureStoreWriter(path, META)
    _write(first_run, [2, 3])  # "crash": never finalized
    del first_run
    assert FeatureStore(path).videos == ["grp0/vid0", "grp1/vid1"]  # old store still intact
    resumed = FeatureStoreWriter(path, META)
    assert resumed.completed == {video_data(i)[0] for i in range(4)}
    _write(resumed, [i for i in range(6) if video_data(i)[0] not in resumed.completed])
    resumed.finalize()
    assert not parts_dir_for(path).exists()
    assert_stores_equal(path, ref)
    # nothing new: finalize leaves the store untouched
    mtime = path.stat().st_mtime_ns
    FeatureStoreWriter(path, META).finalize()
    assert path.stat().st_mtime_ns == mtime


def test_failed_list_kept_and_cleared_on_success(tmp_path):
    path = tmp_path / "f.h5"
    writer = FeatureStoreWriter(path, META)
    _write(writer, [0])
    writer.mark_failed("/videos/bad.mp4", "cannot decode: moov atom not found\nTraceback ...")
    writer.mark_failed(video_data(1)[3]["source_path"], "timed out after 60 s")
    writer.mark_failed("grp2/vid2", "zero frames")
    assert set(writer.failed) == {"/videos/bad.mp4", "/videos/grp1/vid1.mp4", "grp2/vid2"}
    writer.finalize()
    store = FeatureStore(path)
    assert store.failed == {"/videos/bad.mp4": "cannot decode: moov atom not found",
                            "/videos/grp1/vid1.mp4": "timed out after 60 s", "grp2/vid2": "zero frames"}
    # retry: vid1 (failed by path) and vid2 (failed by id) now succeed, bad.mp4 stays failed
    retry = FeatureStoreWriter(path, META)
    assert retry.completed == {"grp0/vid0"}
    _write(retry, [1, 2])
    retry.finalize()
    store = FeatureStore(path)
    assert store.failed == {"/videos/bad.mp4": "cannot decode: moov atom not found"}
    assert store.videos == ["grp0/vid0", "grp1/vid1", "grp2/vid2"]


@pytest.mark.slow
def test_kill_at_every_replace_then_resume_equals_uninterrupted(tmp_path):
    """SIGKILL right before each os.replace of a run (parts, done marker, final merge)
    and right before cleanup; after every kill the store opens, and a re-run finishes it."""
    ref = tmp_path / "ref.h5"
    run_loop(ref, "--videos", "5", "--fail-every", "4")
    # replaces in a fresh run: 1 meta.json, 2 failed video 0, 3-5 videos 1-3, 6 failed video 4,
    # 7 rank-0 done marker, 8 the merged store
    for n in (3, 7, 8):
        path = tmp_path / f"kill{n}.h5"
        proc = run_loop(path, "--videos", "5", "--fail-every", "4", "--die-at-replace", str(n), check=False)
        assert proc.returncode == -signal.SIGKILL
        assert not path.exists() or FeatureStore(path).videos is not None
        run_loop(path, "--videos", "5", "--fail-every", "4")
        assert_stores_equal(path, ref)
    path = tmp_path / "cleanup.h5"
    proc = run_loop(path, "--videos", "5", "--fail-every", "4", "--die-before-cleanup", check=False)
    assert proc.returncode == -signal.SIGKILL and parts_dir_for(path).exists()
    assert_stores_equal(path, ref)  # already complete
    second = run_loop(path, "--videos", "5", "--fail-every", "4")
    assert "wrote" not in second.stdout  # nothing recomputed
    assert_stores_equal(path, ref)
    assert not parts_dir_for(path).exists()


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tmp_path):
    ref = tmp_path / "ref.h5"
    run_loop(ref, "--videos", "10")
    path = tmp_path / "f.h5"
    rng = random.Random(1234)
    kills = 0
    for attempt in range(3):
        proc = subprocess.Popen(loop_cmd(path, "--videos", "10", "--sleep", "0.08"), env=loop_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # wait for the first video of this attempt (python start-up varies), then a random delay
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.5))  # a run lasts >= 0.8 s after its first video
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        kills += proc.returncode == -signal.SIGKILL
        if path.exists():  # whatever moment it died at, the file opens
            FeatureStore(path)
        if first.startswith("finalized"):
            break
    assert kills >= 1
    resumed = run_loop(path, "--videos", "10")
    wrote = resumed.stdout.count("wrote ")
    assert wrote < 10  # completed videos were not recomputed
    assert_stores_equal(path, ref)
