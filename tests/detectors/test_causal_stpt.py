"""Causal STPT: causality, training step, and continual inference == offline (<= 1e-5 fp32)."""
import pytest
import torch

import tad.detectors  # noqa: F401
from tad.detectors.registry import MODELS


def _model(levels=4, blocks=2, classes=3, dim=16, online=False, **encoder):
    enc = dict(num_levels=levels, num_heads=2, window_size=5, num_local_levels=2, coarse_window=4,
               stem_blocks=blocks, blocks_per_level=blocks, drop_path=0.0)
    enc.update(encoder)
    ranges = [(0, 4), (4, 8), (8, 16), (16, 10000)][:levels - 1] + [(2 ** (levels + 1), 10000)]
    torch.manual_seed(0)
    extra = {}
    if online:  # the online configs' parts: end-anchored positives, signed end, activity head
        extra = dict(activity_head=dict(num_layers=2))
    return MODELS.build(dict(type="CausalSTPTDetector", in_channels=dim, num_classes=classes, embed_dim=32,
                             max_seq_len=64, encoder=enc, cls_head=dict(num_layers=3),
                             reg_head=dict(num_layers=3, end_mode="signed" if online else "distance"),
                             assigner=dict(regression_ranges=ranges, anchor="end" if online else "centre"),
                             **extra)).eval()


def _offline(model, x, valid=None, activity=False):
    t = x.shape[2]
    masks = torch.ones(x.shape[0], t, dtype=torch.bool) if valid is None else valid
    with torch.no_grad():
        out = model(dict(feats=x, masks=masks), mode="tensor")
    split = (torch.split(out["logits"], out["lengths"], dim=1), torch.split(out["offsets"], out["lengths"], dim=1))
    return split + (out["activity"],) if activity else split


@pytest.mark.parametrize("steps", [1, 7, 53])
def test_continual_equals_offline_causal_model(steps):
    model = _model()
    x = torch.randn(2, 16, steps)
    logits, offsets = _offline(model, x)
    runner = model.continual()
    seen = {level: 0 for level in range(4)}
    worst = 0.0
    for t in range(steps):
        for p in runner.step(x[:, :, t]):
            assert p.position == t and p.position == p.index * p.stride
            assert p.index == seen[p.level]
            seen[p.level] += 1
            worst = max(worst, (p.logits - logits[p.level][:, p.index]).abs().max().item(),
                        (p.offsets - offsets[p.level][:, p.index]).abs().max().item())
    assert seen == {level: -(-steps // 2 ** level) for level in range(4)}
    assert worst <= 1e-5


@pytest.mark.parametrize("steps", [1, 29])
def test_continual_equals_offline_with_online_heads(steps):
    """Signed end distances and the activity head stream exactly as offline (<= 1e-5)."""
    model = _model(online=True)
    with torch.no_grad():  # make the signed end reachable: some lengths shorter than start distances
        model.reg_head.stack.out.bias.copy_(torch.tensor([1.5, 0.5]))
    x = torch.randn(2, 16, steps)
    logits, offsets, activity = _offline(model, x, activity=True)
    assert activity.shape[:1] + activity.shape[2:] == (2, 3) and activity.shape[1] >= steps  # padded
    runner = model.continual()
    worst, negative = 0.0, False
    for t in range(steps):
        for p in runner.step(x[:, :, t]):
            assert (p.activity is not None) == (p.level == 0)
            if p.level == 0:
                worst = max(worst, (p.activity - activity[:, p.index]).abs().max().item())
            worst = max(worst, (p.logits - logits[p.level][:, p.index]).abs().max().item(),
                        (p.offsets - offsets[p.level][:, p.index]).abs().max().item())
            assert (p.offsets[:, 0] >= 0).all()
            negative |= bool((p.offsets[:, 1] < 0).any())
    assert worst <= 1e-5
    assert negative or steps == 1


def test_online_heads_train_with_activity_loss():
    model = _model(levels=3, blocks=1, online=True).train()
    x = torch.randn(2, 16, 30)
    masks = torch.ones(2, 30, dtype=torch.bool)
    masks[1, 24:] = False
    samples = [dict(gt_segments=torch.tensor([[3.0, 9.0]]), gt_labels=torch.tensor([1])),
               dict(gt_segments=torch.tensor([[10.0, 20.0]]), gt_labels=torch.tensor([2]))]
    losses = model(dict(feats=x, masks=masks), samples, mode="loss")
    assert set(losses) == {"loss_cls", "loss_reg", "loss_activity"}
    # the activity target: steps 3..9 are class 1 in the first item; BCE averaged over 30 + 24 steps
    with torch.no_grad():
        act = model(dict(feats=x, masks=masks), mode="tensor")["activity"][:, :30]  # (B, T, K), padding cut
    labels = torch.zeros(2, 30, 3)
    labels[0, 3:10, 1] = 1
    labels[1, 10:21, 2] = 1
    expected = torch.nn.functional.binary_cross_entropy_with_logits(act[masks], labels[masks], reduction="sum") / 54
    model.eval()
    with torch.no_grad():
        again = model(dict(feats=x, masks=masks), samples, mode="loss")["loss_activity"]
    assert torch.allclose(again, expected, atol=1e-5)
    sum(losses.values()).backward()
    assert model.activity_head.stack.out.weight.grad is not None


def test_continual_equals_offline_on_every_prefix():
    """The stream at step t gives what the causal model gives on the prefix [0, t]."""
    model = _model(levels=3, blocks=1)
    x = torch.randn(1, 16, 20)
    runner = model.continual()
    for t in range(20):
        points = runner.step(x[:, :, t])
        logits, offsets = _offline(model, x[:, :, : t + 1])
        for p in points:
            assert torch.allclose(p.logits, logits[p.level][:, p.index], atol=1e-5, rtol=0)
            assert torch.allclose(p.offsets, offsets[p.level][:, p.index], atol=1e-5, rtol=0)


def test_outputs_do_not_depend_on_the_future():
    model = _model()
    x = torch.randn(1, 16, 40)
    y = x.clone()
    y[:, :, 25:] = torch.randn(1, 16, 15) * 5
    a_logits, a_off = _offline(model, x)
    b_logits, b_off = _offline(model, y)
    for level in range(4):
        keep = -(-25 // 2 ** level)  # points at input steps < 25
        assert torch.allclose(a_logits[level][:, :keep], b_logits[level][:, :keep], atol=1e-6)
        assert torch.allclose(a_off[level][:, :keep], b_off[level][:, :keep], atol=1e-6)
        assert not torch.allclose(a_logits[level][:, keep:], b_logits[level][:, keep:])


def test_continual_state_is_bounded():
    model = _model(levels=3, blocks=1)
    runner = model.continual()
    for _ in range(100):
        runner.step(torch.randn(1, 16))
    for level, blocks in enumerate(runner.blocks):
        for block in blocks:
            assert block.kv.keys.shape[2] == model.encoder.windows[level] - 1
    assert all(len(r) <= 2 for r in runner.recent)


def test_causal_model_trains_and_predicts():
    model = _model(levels=3, blocks=1).train()
    x = torch.randn(2, 16, 30)
    masks = torch.ones(2, 30, dtype=torch.bool)
    masks[1, 24:] = False
    samples = [dict(gt_segments=torch.tensor([[3.0, 9.0]]), gt_labels=torch.tensor([1])),
               dict(gt_segments=torch.tensor([[10.0, 20.0]]), gt_labels=torch.tensor([2]))]
    losses = model(dict(feats=x, masks=masks), samples, mode="loss")
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
    assert all(p.grad is not None for p in model.encoder.parameters() if p.requires_grad)
    model.eval()
    preds = model(dict(feats=x[:1], masks=masks[:1]),
                  [dict(video_id="v", timestamps=torch.arange(30).double() * 0.5, duration=15.0)], mode="predict")
    assert preds[0]["segments"].shape[1] == 2 and len(preds[0]["scores"]) == len(preds[0]["labels"])


def test_refinement_is_refused():
    with pytest.raises(ValueError, match="refinement"):
        MODELS.build(dict(type="CausalSTPTDetector", in_channels=8, num_classes=2, refine=True))


def test_causal_config_builds_from_registry():
    from tad.engine.runner import load_config

    cfg = load_config("tiny_test_causal.py")
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == "CausalSTPTDetector" and model.refinement is None
    assert model.encoder.windows == [5, 5, 8]
