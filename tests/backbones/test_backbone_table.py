"""`tad backbones`: every registered backbone has a true card, the table lists them all."""
from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from tad.cli import COMMANDS
from tad.cli.backbones import backbones
from tad.features.backbone_table import format_markdown, format_table, registered_cards
from tad.features.registry import BACKBONES


def test_every_registered_backbone_has_a_card():
    cards = registered_cards()
    assert {"tada2d_r50", "slowfast_r50_8x8", "tiny3d"} <= set(cards)
    for name, card in cards.items():
        assert card is not None, f"{name} sets no card"
        assert card.paper and card.input and card.norm, name
        assert card.feature_dim > 0 and (card.gflops is None or card.gflops > 0), name


@pytest.mark.parametrize("name", sorted(registered_cards()))
def test_card_feature_dim_matches_the_built_spec(name):
    with torch.device("meta"):  # the spec comes from the constructor; no need to allocate ViT-g's weights
        model = BACKBONES.build(dict(type=name))
    assert registered_cards()[name].feature_dim == model.spec.feature_dim


def test_table_and_markdown_list_every_backbone():
    cards = registered_cards()
    table = format_table()
    markdown = format_markdown()
    for name, card in cards.items():
        assert name in table and card.paper in table
        assert f"| `{name}` |" in markdown
        assert f"--backbone {name} " in markdown
        for checkpoint in card.checkpoints:
            assert checkpoint in table
    assert markdown.count("tad extract thumos14/videos") == len(cards)


def test_cli_table_detail_and_unknown_name():
    assert "backbones" in COMMANDS
    runner = CliRunner()
    result = runner.invoke(backbones, [])
    assert result.exit_code == 0, result.output
    assert "slowfast_r50_8x8" in result.output and "2304" in result.output
    result = runner.invoke(backbones, ["tiny3d"])
    assert result.exit_code == 0, result.output
    assert "clip_len 8, frame_interval 1, fps 30" in result.output and "feature dim    64" in result.output
    result = runner.invoke(backbones, ["no_such_net"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: NAME: unknown backbone 'no_such_net'; registered: {', '.join(registered_cards())}"]


def test_bench_rows_are_registry_driven(capsys):
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench"
    sys.path.insert(0, str(bench))
    try:
        from backbone_rows import load_variants
        import backbone_speed
    finally:
        sys.path.remove(str(bench))
    variants = load_variants()
    assert {v.backbone for v in variants} <= set(registered_cards())
    assert {"tada2d_r50", "r2plus1d_18", "s3d_tv"} <= {v.backbone for v in variants}
    backbone_speed.main(["--backbones", "tiny3d", "--quick", "--batch-sizes", "1", "--dtypes", "float32",
                         "--repeats", "1"])
    out = capsys.readouterr().out
    assert "tiny3d             ours          1 float32   contiguous" in out
    assert "tiny3d             ours          1 float32   channels_last" in out
    assert "tiny3d batch 1: float32 channels_last x" in out
