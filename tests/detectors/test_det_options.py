"""DenseDetector options: SGP and dynamic-aggregation mixers, max-pool-only coarse levels, the
Trident boundary head; the base class with two encoders x two heads. Shapes, padding, and a
loss that decreases on a tiny planted set."""
import pytest
import torch
from torch import nn

from tad.detectors.dynamic_aggregation import DynamicAggregation
from tad.detectors.registry import MODELS
from tad.detectors.sgp_mixer import SGPMixer
from tad.detectors.trident_head import TridentHead

C, K, T = 8, 3, 64


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@MODELS.register_module(force=True)
class _ConvOnlyEncoder(nn.Module):
    """A second encoder, defined outside the package: conv levels, no attention (config entry only)."""

    def __init__(self, in_channels: int, embed_dim: int, num_levels: int = 3, spatial_grid=None):
        super().__init__()
        self.num_levels = num_levels
        self.convs = nn.ModuleList(nn.Conv1d(in_channels if i == 0 else embed_dim, embed_dim, 3, padding=1)
                                   for i in range(num_levels))

    def forward(self, feats, mask):
        x, outs, masks = feats, [], []
        for i, conv in enumerate(self.convs):
            if i:
                x, mask = nn.functional.max_pool1d(x, 3, 2, 1), mask[:, ::2]
            x = torch.relu(conv(x)) * mask[:, None].float()  # (B, D, T_l)
            outs.append(x.transpose(1, 2))
            masks.append(mask)
        return outs, masks


def planted():
    gen = torch.Generator().manual_seed(0)
    feats = 0.3 * torch.randn(1, C, T, generator=gen)
    feats[:, 1, 20:35] += 2.0
    feats[:, 2, 20:35] -= 1.0
    import numpy as np
    ts = np.arange(T) * 0.5 + 0.25
    sample = dict(video_id="v", timestamps=ts, duration=T * 0.5,
                  gt_segments=torch.tensor([[19.5, 34.5]]), gt_labels=torch.tensor([1]))
    return dict(feats=feats, masks=torch.ones(1, T, dtype=torch.bool)), [sample]


def build(encoder=None, reg_head=None, type_="DenseDetector"):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type=type_, in_channels=C, num_classes=K, embed_dim=16, max_seq_len=T,
        encoder=encoder or dict(type="PyramidEncoder", num_levels=3, num_heads=2, window_size=5,
                                num_local_levels=2, drop_path=0.0),
        reg_head=reg_head or dict(type="RegressionHead"),
        assigner=dict(type="PointAssigner", regression_ranges=[(0, 4), (4, 8), (8, 10000)]),
        train_cfg=dict(loss_normalizer_momentum=0.0)))


def train_losses(model, steps=30):
    inputs, samples = planted()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    totals = []
    for _ in range(steps):
        losses = model(inputs, samples, mode="loss")
        total = sum(losses.values())
        totals.append(total.item())
        opt.zero_grad()
        total.backward()
        opt.step()
    return totals


@pytest.mark.parametrize("mixer", [SGPMixer, DynamicAggregation])
@pytest.mark.parametrize("shape", [(2, 37, 16), (2, 37, 4, 16)])
def test_mixers_keep_shape_and_zero_padding(mixer, shape):
    x = torch.randn(*shape)
    mask = torch.ones(2, 37, dtype=torch.bool)
    mask[1, 30:] = False
    out = mixer(16)(x, mask)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert out[1, 30:].abs().max() == 0
    # padded steps never leak into valid ones
    x2 = x.clone()
    x2[1, 30:] = 100.0
    torch.manual_seed(0)
    m1 = mixer(16)
    torch.manual_seed(0)
    m2 = mixer(16)
    assert torch.allclose(m1(x, mask)[1, :30], m2(x2, mask)[1, :30], atol=1e-5)


def test_trident_head_shapes_and_range():
    head = TridentHead(16, num_levels=2, num_bins=4)
    levels = [torch.randn(2, 20, 16), torch.randn(2, 10, 16)]
    masks = [torch.ones(2, 20, dtype=torch.bool), torch.ones(2, 10, dtype=torch.bool)]
    masks[0][1, 15:] = False
    masks[1][1, 8:] = False
    out = head(levels, masks)
    assert [o.shape for o in out] == [(2, 20, 2), (2, 10, 2)]
    for o in out:
        assert (o >= 0).all() and (o <= 4 + 1e-4).all()
    assert out[0][1, 15:].abs().max() == 0
    # at the first step no start bin reaches before the video: the start distance is 0
    assert out[0][:, 0, 0].abs().max() < 1e-4


@pytest.mark.parametrize("option", [
    dict(encoder=dict(local_mixer=dict(type="SGPMixer"))),
    dict(encoder=dict(local_mixer=dict(type="DynamicAggregation", groups=2))),
    dict(encoder=dict(pool_only_from=2)),
    dict(reg_head=dict(type="TridentHead", num_bins=8)),
], ids=["sgp", "dynamic_aggregation", "maxer_levels", "trident"])
def test_option_trains_on_a_tiny_set(option):
    base = dict(type="PyramidEncoder", num_levels=3, num_heads=2, window_size=5, num_local_levels=2, drop_path=0.0)
    model = build(encoder={**base, **option.get("encoder", {})}, reg_head=option.get("reg_head"),
                  type_="STPTDetector")
    if "pool_only_from" in option.get("encoder", {}):
        assert len(model.encoder.levels[2]) == 0 and len(model.encoder.levels[1]) == 1
    totals = train_losses(model)
    assert totals[-1] < 0.5 * totals[0], totals[::5]
    model.eval()
    out = model(*planted(), mode="tensor")
    assert out["logits"].shape == (1, T + T // 2 + T // 4, K)
    assert out["offsets"].shape == (1, T + T // 2 + T // 4, 2)


@pytest.mark.parametrize("encoder", ["PyramidEncoder", "_ConvOnlyEncoder"])
@pytest.mark.parametrize("head", ["RegressionHead", "TridentHead"])
def test_base_class_with_two_encoders_and_two_heads(encoder, head):
    enc = (dict(type="PyramidEncoder", num_levels=3, num_heads=2, window_size=5, num_local_levels=2, drop_path=0.0)
           if encoder == "PyramidEncoder" else dict(type="_ConvOnlyEncoder", num_levels=3))
    model = build(encoder=enc, reg_head=dict(type=head))
    assert type(model).__name__ == "DenseDetector" and type(model.encoder).__name__ == encoder
    totals = train_losses(model, steps=25)
    assert totals[-1] < 0.6 * totals[0], totals[::5]
    model.eval()
    pred = model(*planted(), mode="predict")[0]
    assert pred["segments"].shape[1] == 2 and len(pred["scores"]) == len(pred["labels"]) > 0


def test_shipped_configs_equal_the_constructor_defaults():
    """Defaults live in one place: the base model configs only name the parts (and the THUMOS
    assigner ranges, which equal the detector's default)."""
    from pathlib import Path

    from mmengine.config import Config

    repo = Path(__file__).resolve().parents[2]
    for name, type_ in (("stpt", "STPTDetector"), ("actionformer_like", "DenseDetector")):
        cfg = Config.fromfile(str(repo / "configs" / "_base_" / "models" / f"{name}.py")).model.to_dict()
        assert cfg["type"] == type_
        torch.manual_seed(0)
        from_cfg = MODELS.build(cfg)
        torch.manual_seed(0)
        bare = MODELS.build(dict(type=type_, encoder=cfg["encoder"]))
        assert {k: v.shape for k, v in from_cfg.state_dict().items()} == \
            {k: v.shape for k, v in bare.state_dict().items()}
        assert from_cfg.train_cfg == bare.train_cfg
        assert vars(from_cfg.postprocessor) == vars(bare.postprocessor)
    stpt = Config.fromfile(str(repo / "configs" / "_base_" / "models" / "stpt.py")).model
    assert stpt["refine"] is False and MODELS.get("STPTDetector").__init__.__defaults__[0] is False
