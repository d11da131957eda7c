"""The shipped EMA warm-up (no lag on short runs) and lean checkpoints (optimizer state only in
the newest, which `--resume` continues; `tad eval` still loads the older ones)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from tad.engine.lean_checkpoints import strip_resume_state
from tad.registry import MODELS  # noqa: F401  (scope 'tad' + mmengine fixes)

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "configs" / "_base_" / "default_runtime.py"


def shipped_hooks() -> list[dict]:
    return [dict(h) for h in Config.fromfile(str(RUNTIME)).custom_hooks]


def _ema(cfg: dict, model: torch.nn.Module):
    from mmengine.registry import MODELS as MM_MODELS

    kwargs = {k: v for k, v in cfg.items() if k not in ("type", "ema_type", "priority")}
    return MM_MODELS.build(dict(type=cfg["ema_type"], model=model, **kwargs))


def test_shipped_ema_warmup_does_not_lag_on_a_short_run():
    """A 150-step regression from a random start: ActionFormer's plain EMA 0.999 still holds
    0.999^150 = 86 % of the initial weights and loses badly; the shipped warm-up EMA scores
    no worse than the raw weights."""
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = x @ torch.randn(8, 1) + 0.01 * torch.randn(256, 1)
    model = torch.nn.Linear(8, 1)
    hook = next(h for h in shipped_hooks() if h["type"] == "EMAHook")
    assert hook["ema_type"] == "MomentumAnnealingEMA"
    warm = _ema(hook, model)
    plain = _ema(dict(ema_type="ExponentialMovingAverage", momentum=hook["momentum"]), model)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        warm.update_parameters(model)
        plain.update_parameters(model)
    with torch.no_grad():
        raw_loss = torch.nn.functional.mse_loss(model(x), y).item()
        warm_loss = torch.nn.functional.mse_loss(warm.module(x), y).item()
        plain_loss = torch.nn.functional.mse_loss(plain.module(x), y).item()
    assert raw_loss < 1e-3
    assert warm_loss <= raw_loss * 1.05 + 1e-5, (warm_loss, raw_loss)
    assert plain_loss > 100 * raw_loss  # the lag the warm-up removes would show here


def _keys(path: Path) -> set[str]:
    return set(torch.load(path, map_location="cpu", weights_only=False))


def test_strip_resume_state_keeps_weights_and_ema(tmp_path):
    path = tmp_path / "epoch_1.pth"
    torch.save(dict(state_dict={"w": torch.ones(2)}, ema_state_dict={"w": torch.zeros(2)}, meta={},
                    optimizer={"state": {}}, param_schedulers=[{}]), path)
    assert strip_resume_state(path)
    assert _keys(path) == {"state_dict", "ema_state_dict", "meta"}
    assert not strip_resume_state(path)  # already lean
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_train_resume_and_eval_with_lean_checkpoints(tiny_dataset, tmp_path):
    from tad.engine.inference import run_inference
    from tad.engine.runner import build_runner, find_resume_checkpoint, load_config

    ann, store = tiny_dataset
    options = [f"ann_file={ann}", f"feature_store={store}", "default_hooks.logger.interval=50",
               "default_hooks.checkpoint.save_best=None"]

    def config(epochs: int):
        cfg = load_config("tiny_test.py", options + [f"train_cfg.max_epochs={epochs}"])
        cfg.custom_hooks = shipped_hooks()  # the shipped EMA warm-up + LeanCheckpointHook
        return cfg

    work_dir = tmp_path / "run"
    build_runner(config(3), work_dir=work_dir, device="cpu").train()
    for epoch in (1, 2):
        assert "optimizer" not in _keys(work_dir / f"epoch_{epoch}.pth")
        assert {"state_dict", "ema_state_dict", "meta"} <= _keys(work_dir / f"epoch_{epoch}.pth")
    assert {"optimizer", "param_schedulers", "ema_state_dict"} <= _keys(work_dir / "epoch_3.pth")
    assert (work_dir / "epoch_1.pth").stat().st_size < 0.6 * (work_dir / "epoch_3.pth").stat().st_size
    assert find_resume_checkpoint(work_dir) == work_dir / "epoch_3.pth"

    runner = build_runner(config(4), work_dir=work_dir, device="cpu", resume=True)
    runner.train()
    assert runner.epoch == 4 and runner.iter > 0
    assert "optimizer" in _keys(work_dir / "epoch_4.pth")
    assert "optimizer" not in _keys(work_dir / "epoch_3.pth")

    # an older, lean checkpoint still evaluates
    _, result = run_inference(config(4), work_dir / "epoch_2.pth", split="test",
                              out=str(tmp_path / "preds.json"))
    assert 0.0 <= result.average_mAP <= 1.0
    assert (tmp_path / "preds.json").is_file()
