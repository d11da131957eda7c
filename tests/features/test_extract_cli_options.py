"""tad extract options: `--decoder pyav|decord` agree; `--backbone-option KEY=VALUE` reaches the backbone."""
import shutil

import numpy as np
from click.testing import CliRunner

from tad.cli.extract import extract
from tad.features.store import FeatureStore


def test_decord_and_pyav_decoders_agree(real_videos_dir, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(real_videos_dir / "tennis26.mp4", videos / "tennis26.mp4")
    stores = {}
    for decoder in ("pyav", "decord"):
        out = tmp_path / f"{decoder}.h5"
        result = CliRunner().invoke(extract, [str(videos), "-o", str(out), "--backbone", "tiny3d", "--random-init",
                                              "--decoder", decoder, "--workers", "1", "--no-progress"])
        assert result.exit_code == 0, result.output
        stores[decoder] = FeatureStore(out)
    a, b = stores["pyav"]["tennis26"], stores["decord"]["tennis26"]
    assert a.features.shape == b.features.shape and a.features.shape[0] > 50
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    # Same frames; the two scalers round differently, hence the small tolerance.
    diff = np.abs(a.features.astype(np.float32) - b.features.astype(np.float32))
    assert diff.max() < 0.05 and diff.mean() < 0.005
    assert stores["decord"].attrs["options"]["decoder"] == "decord"


def test_unknown_decoder_is_refused(real_videos_dir, tmp_path):
    result = CliRunner().invoke(extract, [str(real_videos_dir), "-o", str(tmp_path / "x.h5"), "--backbone", "tiny3d",
                                          "--random-init", "--decoder", "opencv"])
    assert result.exit_code != 0 and "opencv" in result.output


def test_backbone_options_parse_literals_and_reach_the_backbone(real_videos_dir, tmp_path):
    from tad.cli.extract import _backbone_options

    assert _backbone_options(("preset=16x5", "crop=112", "tada_impl='grouped'")) == dict(
        preset="16x5", crop=112, tada_impl="grouped")
    result = CliRunner().invoke(extract, [str(real_videos_dir), "-o", str(tmp_path / "x.h5"), "--backbone", "tiny3d",
                                          "--random-init", "--backbone-option", "bogus=1"])
    assert result.exit_code == 1
    assert "--backbone-option: tiny3d:" in result.output and "bogus" in result.output
    assert not (tmp_path / "x.h5").exists()
