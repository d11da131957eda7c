"""Timeline PNGs: valid files of the announced size, TP/FP colouring, empty cases."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from tad.demo.render import render_dataset
from tad.errors import TadInputError
from tad.eval.visualize import (FP_COLOR, GT_COLOR, TP_COLOR, SegmentSet, match_predictions, plot_timeline,
                               plot_video_predictions, png_size)

CLASSES = ["Jump", "Throw", "Run"]


def _has_color(png_path, hex_color: str, min_pixels: int = 30) -> bool:
    image = imread(png_path)[..., :3]  # (H, W, 3) floats in [0, 1]
    target = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return int((np.abs(image - target).max(axis=-1) < 0.02).sum()) >= min_pixels


def test_match_predictions_hand_case():
    gt = SegmentSet([[10, 20], [30, 40]], [0, 1])
    pred = SegmentSet(
        [[10, 19], [11, 20], [30, 40], [50, 60], [10, 13]],
        [0, 0, 0, 1, 0],
        [0.9, 0.95, 0.8, 0.7, 0.6],
    )
    is_tp, matched = match_predictions(gt, pred, tiou=0.5)
    # the higher-scored of the two overlapping "Jump" predictions takes the GT; the other is a duplicate;
    # a wrong-class hit, a miss in time and a low-tIoU prediction are false positives
    assert is_tp.tolist() == [False, True, False, False, False]
    assert matched.tolist() == [True, False]
    is_tp_low, _ = match_predictions(gt, pred, tiou=0.25)
    assert is_tp_low.tolist() == [False, True, False, False, False]


def test_png_size_and_colours(tmp_path):
    gt = SegmentSet([[2, 6], [10, 14], [20, 25]], [0, 1, 2])
    pred = SegmentSet([[2.2, 6.1], [15, 18], [20, 24], [1, 3]], [0, 1, 2, 0], [0.9, 0.6, 0.8, 0.2])
    out = tmp_path / "v.png"
    size = plot_timeline(out, video_id="v", duration=30, classes=CLASSES, gt=gt, pred=pred, tiou=0.5,
                         width_inches=10, dpi=80)
    assert size[0] == 800
    assert png_size(out) == size
    assert size[1] > 150
    assert _has_color(out, TP_COLOR) and _has_color(out, FP_COLOR) and _has_color(out, GT_COLOR)


def test_more_lanes_make_a_taller_picture(tmp_path):
    one = plot_timeline(tmp_path / "a.png", video_id="a", duration=10, classes=CLASSES,
                        gt=SegmentSet([[1, 2]], [0]))
    three = plot_timeline(tmp_path / "b.png", video_id="b", duration=10, classes=CLASSES,
                          gt=SegmentSet([[1, 2], [3, 4], [5, 6]], [0, 1, 2]),
                          pred=SegmentSet([[1, 2], [1.5, 2.5], [1.2, 2.2]], [0, 0, 0], [0.9, 0.8, 0.7]))
    assert three[0] == one[0] and three[1] > one[1]


def test_top_k_limits_predictions_drawn(tmp_path):
    segs = [[i, i + 5] for i in range(20)]  # all overlap: each needs its own row
    pred = SegmentSet(segs, [0] * 20, np.linspace(1, 0.05, 20))
    k3 = plot_timeline(tmp_path / "k3.png", video_id="v", duration=30, classes=CLASSES, pred=pred, top_k=3)
    k10 = plot_timeline(tmp_path / "k10.png", video_id="v", duration=30, classes=CLASSES, pred=pred, top_k=10)
    assert k10[1] > k3[1]


@pytest.mark.parametrize("has_gt,has_pred", [(True, False), (False, True), (False, False)])
def test_empty_cases(tmp_path, has_gt, has_pred):
    gt = SegmentSet([[1, 3]], [1]) if has_gt else None
    pred = SegmentSet([[4, 6]], [2], [0.5]) if has_pred else None
    out = tmp_path / "e.png"
    size = plot_timeline(out, video_id="e", duration=8, classes=CLASSES, gt=gt, pred=pred)
    assert png_size(out) == size
    assert _has_color(out, FP_COLOR) == has_pred
    assert not _has_color(out, TP_COLOR)


def test_from_prediction_dicts_with_unknown_label_and_no_duration(tmp_path):
    preds = [{"label": "Jump", "score": 0.8, "segment": [1.0, 2.0]},
             {"label": "Swim", "score": 0.4, "segment": [3.0, 9.5]}]
    out = tmp_path / "d.png"
    size = plot_video_predictions(out, "vid", CLASSES, None, preds)
    assert png_size(out) == size


def test_thumbnail_strip_from_video(tmp_path):
    dataset = render_dataset(tmp_path, num_videos=2, seed=1, size=(48, 64), min_duration=4, max_duration=5,
                             action_len=(1, 2))
    plan = dataset.plans[0]
    gt = SegmentSet([[a.start_frame / 15, a.end_frame / 15] for a in plan.actions], [0] * len(plan.actions))
    plain = plot_timeline(tmp_path / "plain.png", video_id="v", duration=plan.duration, classes=CLASSES, gt=gt)
    thumbs = plot_timeline(tmp_path / "thumbs.png", video_id="v", duration=plan.duration, classes=CLASSES, gt=gt,
                           video_file=dataset.video_dir / f"{plan.video_id}.mp4")
    assert thumbs[0] == plain[0] and thumbs[1] > plain[1]
    assert png_size(tmp_path / "thumbs.png") == thumbs


def test_bad_video_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(TadInputError) as err:
        plot_timeline(tmp_path / "x.png", video_id="v", duration=5, classes=CLASSES, video_file=bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_png_size_rejects_non_png(tmp_path):
    f = tmp_path / "x.png"
    f.write_bytes(b"GIF89a" + b"\0" * 30)
    with pytest.raises(TadInputError):
        png_size(f)
