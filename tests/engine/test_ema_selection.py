"""EMASelectionHook: the checkpoint `tad train` exports holds whichever of its EMA and raw weights
scored higher on validation, records the choice in its meta, and still resumes correctly."""
from __future__ import annotations

import pytest
import torch

from tad.engine.ema_selection import split_weights, swap_weight_sets
from tad.registry import MODELS  # noqa: F401  (scope 'tad' + mmengine fixes)


def _checkpoint(exported: str) -> dict:
    ema, raw = {"w": torch.zeros(2), "b": torch.ones(1)}, {"w": torch.ones(2), "b": torch.full((1,), 2.0)}
    ckpt = dict(state_dict=dict(ema), ema_state_dict={"steps": torch.tensor(3), "module.w": raw["w"],
                                                       "module.b": raw["b"]}, meta={})
    if exported == "raw":
        swap_weight_sets(ckpt)
        ckpt["meta"]["exported_weights"] = "raw"
    return ckpt


@pytest.mark.parametrize("exported", ["ema", "raw"])
def test_split_weights_whichever_set_is_exported(exported):
    ema, raw = split_weights(_checkpoint(exported))
    assert torch.equal(ema["w"], torch.zeros(2)) and torch.equal(ema["b"], torch.ones(1))
    assert torch.equal(raw["w"], torch.ones(2)) and torch.equal(raw["b"], torch.full((1,), 2.0))


@pytest.mark.slow
def test_exported_checkpoint_is_never_worse_than_raw(tiny_dataset, tmp_path):
    """A short run with ActionFormer's lagging EMA (0.999, no warm-up): the EMA is still almost the
    random initialisation, so the raw weights must be exported, and the exported file must score
    exactly the raw score under `tad eval`'s code; resuming from the rewritten file restores the
    EMA state EMAHook expects."""
    from tad.engine.inference import run_inference
    from tad.engine.runner import build_runner, find_best_checkpoint, load_config

    ann, store = tiny_dataset
    options = [f"ann_file={ann}", f"feature_store={store}", "default_hooks.logger.interval=50",
               "default_hooks.checkpoint.save_best=None", "train_cfg.max_epochs=3", "train_cfg.val_interval=4"]
    cfg = load_config("tiny_test.py", options)
    cfg.custom_hooks = [dict(type="EMAHook", ema_type="ExponentialMovingAverage", momentum=0.001,
                             update_buffers=True, priority="ABOVE_NORMAL"),
                        dict(type="EMASelectionHook")]
    work_dir = tmp_path / "run"
    runner = build_runner(cfg, work_dir=work_dir, device="cpu")
    runner.train()
    selection = runner.message_hub.get_info("weight_selection")
    assert selection is not None and selection["metric"] == "average_mAP"
    assert selection["raw"] > selection["ema"], selection  # the lag shows
    assert selection["exported"] == "raw"
    exported = find_best_checkpoint(work_dir)
    assert str(exported) == selection["checkpoint"]
    ckpt = torch.load(exported, map_location="cpu", weights_only=False)
    assert ckpt["meta"]["exported_weights"] == "raw"
    assert ckpt["meta"]["weight_selection"]["raw"] == pytest.approx(selection["raw"])
    ema, raw = split_weights(ckpt)
    for key, value in raw.items():
        assert torch.equal(ckpt["state_dict"][key], value)
    assert any(not torch.equal(ema[k], raw[k]) for k in raw)

    _, result = run_inference(cfg, exported, split="val", out=str(tmp_path / "preds.json"), progress=False)
    assert result.average_mAP == pytest.approx(selection["raw"], abs=1e-6)
    assert result.average_mAP >= selection["ema"]

    # no save_best: the exported file is the last step checkpoint, the one --resume continues;
    # resuming gives the model the raw weights and the EMA the EMA, as EMAHook expects
    assert exported.name == "epoch_3.pth"
    resumed = build_runner(cfg, work_dir=work_dir, device="cpu", resume=True)
    resumed.call_hook("before_run")  # as Runner.train does: EMAHook builds its EMA model
    resumed.load_or_resume()
    ema_hook = next(h for h in resumed.hooks if type(h).__name__ == "EMAHook")
    model_state = resumed.model.state_dict()
    assert all(torch.equal(model_state[k], raw[k]) for k in raw)
    ema_state = ema_hook.ema_model.module.state_dict()
    assert all(torch.equal(ema_state[k], ema[k]) for k in ema)
