"""Boundary refinement: sampling, units, which points are refined, targets, gradients."""
import numpy as np
import pytest
import torch

from tad.detectors.boundary_refinement import BoundaryRefinement, sample_linear, sample_linear_points
from tad.detectors.registry import MODELS

C, K = 8, 3


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def build(**overrides):
    cfg = dict(type="STPTDetector", refine=True, in_channels=C, num_classes=K, embed_dim=16, max_seq_len=64,
               encoder=dict(num_levels=4, num_heads=2, window_size=5, num_local_levels=2, drop_path=0.0),
               assigner=dict(regression_ranges=[(0, 4), (4, 8), (8, 16), (16, 10000)]),
               refinement=dict(hidden_dim=8), train_cfg=dict(loss_normalizer_momentum=0.0))
    cfg.update(overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def batch(t=64, b=2):
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(b, C, t, generator=gen)
    samples = [dict(video_id=f"v{i}", timestamps=np.arange(t) * 0.5 + 0.25, duration=t * 0.5,
                    gt_segments=torch.tensor([[10.0 + 5 * i, 30.0 + 5 * i]]), gt_labels=torch.tensor([i % K]))
               for i in range(b)]
    return dict(feats=feats, masks=torch.ones(b, t, dtype=torch.bool)), samples


def set_output_bias(model, d_start, d_end):
    with torch.no_grad():
        model.refinement.mlp[-1].bias.copy_(torch.tensor([d_start, d_end]))


def test_sample_linear_points_values_and_valid_length_clamp():
    feats = torch.arange(10.0)[None, :, None].repeat(2, 1, 3)  # (2, 10, 3): value = position
    batch_idx = torch.tensor([0, 0, 0, 1, 1, 1])
    pos = torch.tensor([2.25, -3.0, 12.0, 2.25, 8.5, 5.5])
    got = sample_linear_points(feats, batch_idx, pos)  # no lengths: [0, T-1]
    torch.testing.assert_close(got[:, 0], torch.tensor([2.25, 0.0, 9.0, 2.25, 8.5, 5.5]))
    # item 1 has 6 valid steps: nothing past step 5 (padding) is read
    got = sample_linear_points(feats, batch_idx, pos, torch.tensor([10, 6]))
    torch.testing.assert_close(got[:, 0], torch.tensor([2.25, 0.0, 9.0, 2.25, 5.0, 5.0]))
    # agrees with the batched sampler
    pos2 = torch.tensor([[0.5, 3.75], [7.0, 9.0]])
    ref = sample_linear(feats, pos2)  # (2, 2, 3)
    flat = sample_linear_points(feats, torch.tensor([0, 0, 1, 1]), pos2.reshape(-1))
    torch.testing.assert_close(flat, ref.reshape(4, 3))


def test_refinement_identity_at_init_and_ignores_padding():
    torch.manual_seed(0)
    ref = BoundaryRefinement(embed_dim=4, hidden_dim=6)
    level0 = torch.randn(2, 20, 4)
    args = (torch.tensor([0, 1, 1]), torch.randn(3, 4), torch.tensor([3.0, 10.0, 14.0]),
            torch.tensor([9.0, 15.5, 15.9]), torch.tensor([1.0, 4.0, 2.0]))
    assert torch.equal(ref(level0, *args), torch.zeros(3, 2))
    torch.nn.init.normal_(ref.mlp[-1].weight)
    lengths = torch.tensor([20, 16])
    out = ref(level0, *args, lengths)
    garbage = level0.clone()
    garbage[1, 16:] = 100.0  # padding of item 1 changes: its refinement must not
    torch.testing.assert_close(ref(garbage, *args, lengths), out)
    assert not torch.allclose(ref(garbage, *args), ref(level0, *args))  # unclamped would read it
    # one point alone gives the same correction as inside a batch of points
    single = ref(level0, args[0][1:2], args[1][1:2], args[2][1:2], args[3][1:2], args[4][1:2], lengths)
    torch.testing.assert_close(single[0], out[1])
    assert ref(level0, *(a[:0] for a in args)).shape == (0, 2)


def test_corrections_are_in_strides():
    model = build().eval()
    set_output_bias(model, 1.0, -0.5)  # weight is zero at init: every correction is (1, -0.5)
    inputs, _ = batch()
    with torch.no_grad():
        out = model(inputs, mode="tensor")
        coarse = model._heads(inputs)
    stride = out["points"][:, 3]
    assert set(stride.tolist()) == {1.0, 2.0, 4.0, 8.0}
    torch.testing.assert_close(out["starts"] - coarse["starts"], stride.expand(2, -1))
    torch.testing.assert_close(out["ends"] - coarse["ends"], -0.5 * stride.expand(2, -1))


def test_training_refines_positives_only_with_l1_target():
    model = build().train()
    set_output_bias(model, 0.3, -0.2)
    inputs, samples = batch()
    seen = []
    model.refinement.register_forward_hook(lambda m, a, o: seen.append(o.shape[0]))
    losses = model(inputs, samples, mode="loss")
    # the reference: targets from the assigner, corrections (0.3, -0.2) at every positive
    out = model._heads(inputs)
    targets = [model.assigner.assign(out["points"], s["gt_segments"], s["gt_labels"], K) for s in samples]
    reg_t = torch.stack([t[1] for t in targets])
    positive = torch.stack([t[2] for t in targets])
    num_pos = int(positive.sum())
    assert seen == [num_pos] and 0 < num_pos < positive.numel() // 10
    off = out["offsets"].detach()
    d_start = off[..., 0] - reg_t[..., 0]  # coarse start + d * stride = true start
    d_end = reg_t[..., 1] - off[..., 1]
    expected = ((0.3 - d_start[positive]).abs().sum() + (-0.2 - d_end[positive]).abs().sum()) / num_pos
    torch.testing.assert_close(losses["loss_refine"], 0.25 * expected)


def test_refine_loss_does_not_pull_the_regression_head():
    model = build().train()
    torch.nn.init.normal_(model.refinement.mlp[-1].weight, std=0.1)
    inputs, samples = batch()
    model(inputs, samples, mode="loss")["loss_refine"].backward()
    assert all(p.grad is None or not p.grad.any() for p in model.reg_head.parameters())
    assert all(p.grad is None or not p.grad.any() for p in model.cls_head.parameters())
    assert model.refinement.mlp[-1].weight.grad.abs().sum() > 0


def test_no_positive_still_gives_zero_loss_with_gradients():
    model = build().train()
    inputs, samples = batch()
    for s in samples:
        s["gt_segments"], s["gt_labels"] = torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)
    losses = model(inputs, samples, mode="loss")
    assert losses["loss_refine"].item() == 0.0
    losses["loss_refine"].backward()
    assert all(p.grad is not None for p in model.refinement.parameters())


def test_predict_refines_candidates_only_and_matches_refining_all():
    model = build().eval()
    torch.nn.init.normal_(model.refinement.mlp[-1].weight, std=0.5)
    model.postprocessor.pre_nms_topk = 5  # fewer candidates than points per level
    model.postprocessor.pre_nms_thresh = 0.0
    inputs, samples = batch()
    seen = []
    hook = model.refinement.register_forward_hook(lambda m, a, o: seen.append(o.shape[0]))
    with torch.no_grad():
        pred = model(inputs, samples, mode="predict")
        hook.remove()
        full = model(inputs, mode="tensor")  # every point refined
        reference = model.predict(full, samples)
    assert seen == [2 * 5 * 4]  # 2 items x 5 candidates x 4 levels
    for got, ref in zip(pred, reference):
        torch.testing.assert_close(got["segments"], ref["segments"])
        torch.testing.assert_close(got["scores"], ref["scores"])
        assert torch.equal(got["labels"], ref["labels"])


@pytest.mark.parametrize("detach", [False, True])
def test_detach_features_keeps_refine_loss_out_of_the_encoder(detach):
    model = build(refinement=dict(hidden_dim=8, detach_features=detach)).train()
    torch.nn.init.normal_(model.refinement.mlp[-1].weight, std=0.1)
    inputs, samples = batch()
    model(inputs, samples, mode="loss")["loss_refine"].backward()
    encoder_grad = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
    assert (encoder_grad == 0.0) == detach
    assert model.refinement.reduce.weight.grad.abs().sum() > 0  # the refinement itself still learns
