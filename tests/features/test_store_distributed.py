"""Two ranks written by two processes merge into the same store as one process."""
from __future__ import annotations

import subprocess
import time

import pytest

from tad.features.store import FeatureStore
from tad.features.store_writer import FeatureStoreWriter, parts_dir_for

from store_test_utils import assert_stores_equal, loop_cmd, loop_env, run_loop
from store_writer_loop import META, video_data


@pytest.mark.slow
def test_two_rank_shards_merge_equals_single_process(tmp_path):
    single = tmp_path / "single.h5"
    run_loop(single, "--videos", "7", "--fail-every", "5")
    path = tmp_path / "dist.h5"
    # rank 0 starts first and is fast; rank 1 is slow, so rank 0 must wait for it
    rank0 = subprocess.Popen(loop_cmd(path, "--videos", "7", "--fail-every", "5", "--rank", "0", "--world-size", "2"),
                             env=loop_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rank1 = subprocess.Popen(loop_cmd(path, "--videos", "7", "--fail-every", "5", "--rank", "1", "--world-size", "2",
                                      "--sleep", "0.3"),
                             env=loop_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out1, err1 = rank1.communicate(timeout=120)
    out0, err0 = rank0.communicate(timeout=120)
    assert rank0.returncode == 0, err0
    assert rank1.returncode == 0, err1
    assert out0.count("wrote ") == 3 and out1.count("wrote ") == 2  # rank 0: 2 4 6, rank 1: 1 3 (0, 5 fail)
    assert not parts_dir_for(path).exists()
    store = FeatureStore(path)
    assert len(store) == 5 and set(store.failed) == {"/videos/grp0/vid0.mp4", "/videos/grp2/vid5.mp4"}
    assert_stores_equal(path, single)


def test_rank0_waits_for_other_ranks_in_process(tmp_path):
    """Without a process group, rank 0's finalize polls the rank markers."""
    path = tmp_path / "f.h5"
    rank0 = FeatureStoreWriter(path, META, rank=0, world_size=2, merge_timeout=0.3, poll_interval=0.05)
    rank1 = FeatureStoreWriter(path, META, rank=1, world_size=2)
    for i in range(4):
        writer = rank0 if i % 2 == 0 else rank1
        writer.write_video(*video_data(i)[:3], video_data(i)[3])
    # both ranks see every completed video, whoever wrote it
    assert FeatureStoreWriter(path, META, rank=1, world_size=2).completed == {video_data(i)[0] for i in range(4)}
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"ranks \[1\] did not finish"):
        rank0.finalize()
    assert time.monotonic() - start >= 0.3 and not path.exists()
    rank1.finalize()
    assert not path.exists()  # only rank 0 merges
    rank0.finalize()
    assert FeatureStore(path).videos == sorted(video_data(i)[0] for i in range(4))


def _gloo_rank(out: str, rank: int, port: int, result) -> None:
    """Forked child: joins a gloo group as ``rank`` and runs the writer loop."""
    import os

    from store_writer_loop import main as loop_main

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
                      LOCAL_RANK=str(rank))
    result[rank] = loop_main([out, "--videos", "5", "--dist"])


@pytest.mark.slow
def test_two_ranks_with_gloo_process_group(tmp_path):
    """With a real (CPU, gloo) torch.distributed group, as under torchrun: the writer's
    constructor barrier works on CPU and rank 0 merges both ranks' videos. (Ranks are
    forked from this process so torch is imported once.)"""
    import multiprocessing
    import socket

    pytest.importorskip("torch.distributed")
    single = tmp_path / "single.h5"
    run_loop(single, "--videos", "5")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "dist.h5"
    ctx = multiprocessing.get_context("fork")
    result = ctx.Array("i", [-1, -1])
    procs = [ctx.Process(target=_gloo_rank, args=(str(path), rank, port, result)) for rank in range(2)]
    try:
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=120)
    finally:
        for proc in procs:  # never leave a hung rank behind
            if proc.is_alive():
                proc.kill()
                proc.join()
    assert [proc.exitcode for proc in procs] == [0, 0]
    assert list(result) == [3, 2]  # videos 0 2 4 on rank 0, 1 3 on rank 1
    assert not parts_dir_for(path).exists()
    assert_stores_equal(path, single)
