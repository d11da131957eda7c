"""STPTDetector end to end on small synthetic batches (contract C4)."""
import numpy as np
import pytest
import torch

from tad.detectors.boundary_refinement import sample_linear
from tad.detectors.registry import MODELS
from tad.detectors.soft_nms import segment_iou

C, K = 8, 3


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: thread hand-offs cost more than they save on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(**overrides):
    cfg = dict(type="STPTDetector", in_channels=C, num_classes=K, embed_dim=32, max_seq_len=64,
               encoder=dict(num_levels=4, num_heads=2, window_size=5, num_local_levels=2, drop_path=0.0),
               assigner=dict(regression_ranges=[(0, 4), (4, 8), (8, 16), (16, 10000)]),
               refine=True, refinement=dict(hidden_dim=16))
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return MODELS.build(cfg)


def sample(t, segs=((19.5, 34.5),), labels=(1,), step=0.5):
    ts = np.arange(t) * step + step / 2
    return dict(video_id=f"v{t}", timestamps=ts, duration=float(t * step),
                gt_segments=torch.tensor(segs, dtype=torch.float32), gt_labels=torch.tensor(labels))


def planted_batch(t=64, grid=None):
    """Class 1 planted on steps 20..34 (grid segment [19.5, 34.5] -> 10.0 .. 17.5 s)."""
    gen = torch.Generator().manual_seed(0)
    shape = (1, C, t) if grid is None else (1, C, t, grid, grid)
    feats = 0.3 * torch.randn(*shape, generator=gen)
    feats[:, 1, 20:35] += 2.0
    feats[:, 2, 20:35] -= 1.0
    return dict(feats=feats, masks=torch.ones(1, t, dtype=torch.bool)), [sample(t)]


@pytest.mark.parametrize("grid", [None, 2])
def test_overfit_one_batch_recovers_planted_segment(grid):
    torch.manual_seed(0)
    # momentum 0: the loss normaliser is this batch's positive count, so losses compare across steps
    model = build(spatial_grid=grid, train_cfg=dict(loss_normalizer_momentum=0.0))
    inputs, samples = planted_batch(grid=grid)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()
    first = None
    for _ in range(50):
        losses = model(inputs, samples, mode="loss")
        total = sum(losses.values())
        first = first if first is not None else total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert set(losses) == {"loss_cls", "loss_reg", "loss_refine"}
    assert total.item() < 0.1 * first
    assert all(v.item() < 0.2 for v in losses.values()), losses
    model.eval()
    pred = model(inputs, samples, mode="predict")[0]
    assert pred["video_id"] == "v64"
    assert pred["segments"].dtype == torch.float32 and pred["segments"].shape[1] == 2
    assert pred["labels"][0].item() == 1
    iou = segment_iou(pred["segments"][0], torch.tensor([10.0, 17.5]))
    assert iou > 0.7, pred["segments"][:3]
    assert pred["segments"].min() >= 0 and pred["segments"].max() <= 32.0


@pytest.mark.parametrize("t", [1, 37, 64, 101])
def test_any_length_and_padding_masks(t):
    torch.manual_seed(0)
    model = build().eval()
    feats = torch.randn(2, C, t)
    masks = torch.ones(2, t, dtype=torch.bool)
    masks[1, (t + 1) // 2:] = False
    samples = [sample(t, segs=((0.0, max(t - 1, 1) / 2),)), sample(t, segs=((0.0, 0.5),))]
    losses = model(dict(feats=feats, masks=masks), samples, mode="loss")
    assert all(torch.isfinite(v) for v in losses.values())
    preds = model(dict(feats=feats, masks=masks), samples, mode="predict")
    assert len(preds) == 2
    for p in preds:
        assert p["segments"].shape[0] == p["scores"].shape[0] == p["labels"].shape[0] <= 200
        assert (p["segments"][:, 1] > p["segments"][:, 0]).all()
        assert p["segments"].max() <= t * 0.5


def test_padding_does_not_change_predictions():
    torch.manual_seed(0)
    model = build().eval()
    feats = torch.randn(1, C, 40)
    s = sample(40)
    short = model(dict(feats=feats, masks=torch.ones(1, 40, dtype=torch.bool)), [s], mode="tensor")
    padded_feats = torch.cat([feats, torch.randn(1, C, 24) * 100], dim=2)
    masks = torch.zeros(1, 64, dtype=torch.bool)
    masks[:, :40] = True
    padded = model(dict(feats=padded_feats, masks=masks), [s], mode="tensor")
    valid = short["point_mask"][0].nonzero().squeeze(1)
    padded_valid = padded["point_mask"][0].nonzero().squeeze(1)
    # the valid points of both runs sit at the same grid positions and score the same
    torch.testing.assert_close(short["points"][valid, 0], padded["points"][padded_valid, 0])
    torch.testing.assert_close(short["logits"][0, valid], padded["logits"][0, padded_valid], atol=1e-4, rtol=1e-4)


def test_spatial_and_plain_inputs():
    torch.manual_seed(0)
    spatial = build(spatial_grid=2).eval()
    plain = build().eval()
    s = [sample(32, segs=((3.0, 9.0),))]
    mask = torch.ones(1, 32, dtype=torch.bool)
    out = spatial(dict(feats=torch.randn(1, C, 32, 2, 2), masks=mask), s, mode="tensor")
    assert out["logits"].shape == (1, 32 + 16 + 8 + 4, K)
    # a spatial model also takes plain features; a plain model averages a grid away
    assert spatial(dict(feats=torch.randn(1, C, 32), masks=mask), s, mode="predict")[0]["segments"].shape[1] == 2
    x = torch.randn(1, C, 32, 2, 2)
    torch.testing.assert_close(plain(dict(feats=x, masks=mask), s, mode="tensor")["logits"],
                               plain(dict(feats=x.mean((3, 4)), masks=mask), s, mode="tensor")["logits"])
    with pytest.raises(ValueError, match="spatial"):
        spatial(dict(feats=torch.randn(1, C, 32, 3, 3), masks=mask), s, mode="tensor")
    with pytest.raises(ValueError, match="in_channels"):
        plain(dict(feats=torch.randn(1, C + 1, 32), masks=mask), s, mode="tensor")


def test_bf16_autocast_runs():
    torch.manual_seed(0)
    model = build(spatial_grid=2)
    inputs, samples = planted_batch(grid=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(inputs, samples, mode="loss")
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    model.eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pred = model(inputs, samples, mode="predict")[0]
    assert pred["segments"].dtype == torch.float32


def test_long_video_predicts_whole_sequence():
    model = build().eval()
    t = 5 * 64 + 3  # well beyond max_seq_len=64: one pass, no windows
    out = model(dict(feats=torch.randn(1, C, t)), [sample(t)], mode="tensor")
    assert out["lengths"] == [328, 164, 82, 41]  # padded to a multiple of the coarsest stride (8)
    pred = model(dict(feats=torch.randn(1, C, t)), [sample(t)], mode="predict")[0]
    assert pred["segments"].max() <= t * 0.5


def test_refinement_off_and_sampling():
    model = build(refine=False)
    losses = model(*planted_batch(), mode="loss")
    assert set(losses) == {"loss_cls", "loss_reg"}
    feats = torch.arange(10.0).repeat(2, 1).T[None]  # (1, 10, 2): feature value = position
    got = sample_linear(feats, torch.tensor([[0.0, 2.25, 8.5, -3.0, 12.0]]))
    torch.testing.assert_close(got[0, :, 0], torch.tensor([0.0, 2.25, 8.5, 0.0, 9.0]))


def test_sliding_windows_merge_candidates_before_one_nms(monkeypatch):
    torch.manual_seed(0)
    model = build(refine=False).eval()
    inputs, samples = planted_batch(t=96)
    whole = model(inputs, samples, mode="predict")[0]
    # one window covering the video is the whole-video prediction
    one = model(inputs, [dict(samples[0], windows=[(0, 96)])], mode="predict")[0]
    torch.testing.assert_close(one["segments"], whole["segments"])
    torch.testing.assert_close(one["scores"], whole["scores"])
    # overlapping windows: the candidates of every window reach a single suppress call
    counts, calls = [], []
    real_candidates, real_suppress = model.postprocessor.candidates_in_seconds, model.postprocessor.suppress

    def candidates(*args):
        out = real_candidates(*args)
        counts.append(len(out[0]))
        return out

    def suppress(seconds, *args):
        calls.append(len(seconds))
        return real_suppress(seconds, *args)

    monkeypatch.setattr(model.postprocessor, "candidates_in_seconds", candidates)
    monkeypatch.setattr(model.postprocessor, "suppress", suppress)
    windows = [(0, 64), (32, 96)]
    out = model(inputs, [dict(samples[0], windows=windows)], mode="predict")[0]
    assert len(counts) == 2 and calls == [sum(counts)]
    segs = out["segments"]
    assert len(segs) and (segs[:, 0] >= 0).all() and (segs[:, 1] <= samples[0]["duration"] + 1e-6).all()
    # the planted action sits in both windows: after the merged NMS one copy keeps its score,
    # the other is decayed by Soft-NMS (tIoU ~1), not listed twice at the top
    top = out["scores"].argsort(descending=True)[:2]
    if len(top) == 2:
        assert out["scores"][top[1]] < out["scores"][top[0]]
