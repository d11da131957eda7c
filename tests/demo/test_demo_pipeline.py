"""Demo pipeline pieces that need no training run."""
from __future__ import annotations

import pytest

from tad.demo.pipeline import _set_epochs, demo_config_path, extract_options, run_demo
from tad.engine.runner import load_config
from tad.errors import TadInputError


def test_refuses_a_foreign_non_empty_workdir(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(TadInputError, match="not made by `tad demo`"):
        run_demo(tmp_path, videos=4)
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_demo_config_loads_and_drives_extraction(tmp_path):
    cfg = load_config(demo_config_path(), cfg_options={"ann_file": "a.json", "feature_store": "f.h5"})
    assert cfg.model.in_channels == 64 and cfg.model.num_classes == 4
    assert cfg.train_dataloader.dataset.ann_file == "a.json"
    assert cfg.test_dataloader.dataset.feature_store == "f.h5"
    opts = extract_options(cfg, workers=1)
    assert (opts.backbone, opts.random_init, opts.fps, opts.clip_stride, opts.resize) == ("tiny3d", True, "native", 6, 64)


def test_set_epochs_keeps_schedule_consistent():
    cfg = load_config(demo_config_path())
    _set_epochs(cfg, 12)
    assert cfg.train_cfg.max_epochs == 12 and cfg.train_cfg.val_interval == 12
    warmup, cosine = cfg.param_scheduler
    assert warmup["end"] == cosine["begin"] and cosine["end"] == 12
    assert cosine["T_max"] == 12 - cosine["begin"]
