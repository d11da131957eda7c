"""LiveFrameSource: a growing file is followed to its end; --realtime paces a file at its frame rate."""
import threading
import time

from extract_video_utils import make_video

from tad.features.frame_transforms import FrameGeometry
from tad.features.live_source import LiveFrameSource


def test_growing_file_is_followed_until_it_stops_growing(tmp_path):
    full = make_video(tmp_path / "full.ts", num_frames=60, width=64, height=48)
    data = full.read_bytes()
    grow = tmp_path / "grow.ts"
    half = (len(data) // 2) // 188 * 188  # whole MPEG-TS packets
    grow.write_bytes(data[:half])

    def writer():
        time.sleep(1.0)
        with open(grow, "ab") as f:
            f.write(data[half:])

    thread = threading.Thread(target=writer)
    thread.start()
    source = LiveFrameSource(str(grow), FrameGeometry(), follow=True, stall_timeout=3.0)
    frames = [f.index for f in source]
    source.close()
    thread.join()
    assert frames == list(range(60))
    assert "stopped growing" in source.end_reason


def test_realtime_paces_a_file_at_its_frame_rate(tmp_path):
    video = make_video(tmp_path / "v.mp4", num_frames=45, fps=30)  # 1.5 s
    source = LiveFrameSource(str(video), FrameGeometry(), realtime=True)
    started = time.monotonic()
    arrivals = [(f.time, time.monotonic() - started) for f in source]
    source.close()
    assert len(arrivals) == 45
    assert arrivals[-1][1] >= 1.4  # not faster than real time
    assert all(wall >= t - 0.05 for t, wall in arrivals)  # no frame before its time
