"""Tiny generated videos for the decoding/extraction tests (PyAV, H.264)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def frame_image(index: int, width: int, height: int) -> np.ndarray:
    """Frame ``index``: grey level 3 * index (mod 256) so decoded frames can be identified,
    plus a moving bright square so features differ between clips."""
    img = np.full((height, width, 3), (3 * index) % 256, dtype=np.uint8)
    x = (index * 2) % max(1, width - 8)
    img[4:12, x : x + 8] = (255, 40, 40)
    return img


def make_video(path: Path, num_frames: int = 60, width: int = 64, height: int = 48, fps: int = 30,
               pts_ms: list[int] | None = None) -> Path:
    """Write an H.264 mp4. ``pts_ms`` gives each frame's presentation time in ms (VFR)."""
    import av

    path = Path(path)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": "10", "g": "8", "bf": "0"}
    if pts_ms is not None:
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        num_frames = len(pts_ms)
    for i in range(num_frames):
        frame = av.VideoFrame.from_ndarray(frame_image(i, width, height), format="rgb24")
        if pts_ms is not None:
            frame.pts, frame.time_base = int(pts_ms[i]), Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def grey_level(frame: np.ndarray) -> float:
    """Mean grey of the frame's lower part (below the moving square)."""
    return float(frame[frame.shape[0] // 2 :].mean())
