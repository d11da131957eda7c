"""Blocked local window attention against a naive masked full-attention reference."""
import math

import pytest
import torch

from tad.detectors.global_attention import GlobalAttention
from tad.detectors.windowed_attention import LocalWindowAttention, blocked_window_attention


def naive_window_attention(q, k, v, mask, window):
    """Full T x T (x S x S) attention restricted to |t - t'| <= window // 2 and valid keys."""
    b, h, t, s, d = q.shape
    qf = q.reshape(b, h, t * s, d)
    kf = k.reshape(b, h, t * s, d)
    vf = v.reshape(b, h, t * s, d)
    time_of = torch.arange(t).repeat_interleave(s)
    allowed = (time_of[:, None] - time_of[None, :]).abs() <= window // 2  # (TS, TS)
    key_valid = mask.repeat_interleave(s, dim=1)  # (B, TS)
    allowed = allowed[None] & key_valid[:, None, :]
    scores = qf @ kf.transpose(-1, -2) / math.sqrt(d)
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    attn = torch.nan_to_num(torch.softmax(scores, -1), nan=0.0)
    return (attn @ vf).reshape(b, h, t, s, d)


@pytest.mark.parametrize("t,s,window", [(23, 1, 5), (40, 4, 7), (9, 1, 19), (30, 3, 1)])
def test_blocked_equals_naive(t, s, window):
    gen = torch.Generator().manual_seed(t * 10 + s)
    q, k, v = (torch.randn(2, 2, t, s, 8, generator=gen) for _ in range(3))
    mask = torch.ones(2, t, dtype=torch.bool)
    mask[1, t - t // 3:] = False  # second item padded
    mask[0, 3] = False  # a hole inside the first item
    out = blocked_window_attention(q, k, v, mask, window)
    ref = naive_window_attention(q, k, v, mask, window)
    assert out.shape == (2, 2, t, s, 8)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_module_masks_padding_and_is_causal_free_of_padding_values():
    torch.manual_seed(0)
    attn = LocalWindowAttention(16, num_heads=2, window_size=5).eval()
    x = torch.randn(1, 20, 16)
    mask = torch.ones(1, 20, dtype=torch.bool)
    mask[:, 15:] = False
    y1 = attn(x, mask)
    x2 = x.clone()
    x2[:, 15:] = 1e4  # garbage in the padding must not change valid outputs
    y2 = attn(x2, mask)
    torch.testing.assert_close(y1[:, :15], y2[:, :15])
    assert torch.all(y1[:, 15:] == 0)
    # steps further apart than the window do not interact
    x3 = x.clone()
    x3[:, 0] += 5.0
    y3 = attn(x3, mask)
    torch.testing.assert_close(y3[:, 3:15], y1[:, 3:15])
    assert not torch.allclose(y3[:, 2], y1[:, 2])


def test_spatial_tokens_shape():
    attn = LocalWindowAttention(16, num_heads=4, window_size=3)
    x = torch.randn(2, 11, 4, 16)
    y = attn(x, torch.ones(2, 11, dtype=torch.bool))
    assert y.shape == (2, 11, 4, 16)


def _score_elements(monkeypatch, t, s=1, window=19):
    """Size of the largest score matrix the blocked attention asks the fused kernel for."""
    import tad.detectors.windowed_attention as wa

    sizes = []
    real_sdpa = wa.F.scaled_dot_product_attention

    def recording_sdpa(q, k, v, **kwargs):
        sizes.append(q.shape[:-1].numel() * k.shape[-2])  # (..., L, d) x (..., S, d) -> (..., L, S) scores
        return real_sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(wa.F, "scaled_dot_product_attention", recording_sdpa)
    q = k = v = torch.zeros(1, 1, t, s, 4)
    blocked_window_attention(q, k, v, torch.ones(1, t, dtype=torch.bool), window)
    monkeypatch.setattr(wa.F, "scaled_dot_product_attention", real_sdpa)
    return max(sizes)


def test_memory_is_linear_in_length(monkeypatch):
    window = 19
    small = _score_elements(monkeypatch, 19 * 20, window=window)
    large = _score_elements(monkeypatch, 19 * 160, window=window)
    assert large == 8 * small  # 8x longer -> 8x larger intermediates
    t = 19 * 160
    assert large == t * (2 * window - 1)  # (T/w blocks) x w queries x (2w - 1) keys: O(T * w), never T x T
    assert large < t * t / 50


def test_global_attention_ignores_padding():
    torch.manual_seed(1)
    attn = GlobalAttention(16, num_heads=2).eval()
    x = torch.randn(1, 12, 16)
    mask = torch.ones(1, 12, dtype=torch.bool)
    mask[:, 8:] = False
    padded = attn(x, mask)
    unpadded = attn(x[:, :8], mask[:, :8])
    torch.testing.assert_close(padded[:, :8], unpadded, atol=1e-5, rtol=1e-5)
    assert torch.all(padded[:, 8:] == 0)
