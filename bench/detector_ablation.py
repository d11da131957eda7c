"""Detector ablation on our held-out THUMOS-shaped synthetic set.

Variants (trained and evaluated in the same run, each in its own subprocess, through
tad.engine.runner.build_runner and tad.engine.inference.run_inference):

\b
  stpt               the default STPT head (configs/bench_synth_stpt.py: mixed local/global
                     attention; refinement off, as in configs/_base_/models/stpt.py)
  stpt_refine        the same with STPT boundary refinement
  stpt_no_refine     explicitly without boundary refinement (= stpt with today's defaults)
  stpt_local         local window attention at every level (otherwise as stpt)
  actionformer_like  the reference ActionFormer recipe (configs/bench_synth_actionformer.py
                     = configs/_base_/models/actionformer_like.py: local attention, no refinement)

The held-out set (tad.synthetic_features, ``holdout=True``: the real THUMOS14 layout with
jittered segments and remapped classes, its own random streams) is generated on first
use. Training uses the validation subset, evaluation the test subset; no model
selection on test: the last checkpoint (EMA weights) is evaluated. Prints average mAP,
mAP@0.5 and training wall time per variant, and the deltas/ratios vs actionformer_like.

CPU-feasible defaults (reduced sizes, printed with the results): the ``easy`` set,
128-d features, embed_dim 64, 50 + 50 videos, training crops of 576 steps, 24 epochs
(600 iterations of batch 2) at lr 3e-3 with EMA momentum 0.05: ~3 min per variant on
one shared core. Measured: with 150-200 iterations at 2304 steps the reference recipe
does not learn even the easy set (average mAP < 2 %), hence the shorter crops and more
iterations. ``--full``: the ``medium`` set, 2048-d features, all 200 + 212 videos,
2304-step crops, the configs' embed_dim 512 and lr 1e-4, 35 epochs (a GPU job). ``--full`` = 2048-d features, all 200 + 212 videos,
the configs' embed_dim 512 and lr 1e-4, 35 epochs (a GPU job).

\b
Examples:
  python bench/detector_ablation.py
  python bench/detector_ablation.py --variants stpt:6,actionformer_like:12   # per-variant epochs
  python bench/detector_ablation.py --full --device cuda
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ANN = REPO.parent / "shared" / "data" / "thumos14" / "thumos14.json"
REFERENCE = "actionformer_like"

#: variant -> (config, model overrides)
VARIANTS = {
    "stpt": ("bench_synth_stpt.py", {}),
    "stpt_refine": ("bench_synth_stpt.py", {"refine": True}),
    "stpt_no_refine": ("bench_synth_stpt.py", {"refine": False}),
    "stpt_local": ("bench_synth_stpt.py", {"encoder.attention": "local"}),
    "actionformer_like": ("bench_synth_actionformer.py", {}),
}


# ------------------------------------------------------------------ worker side
def _set_key(node, key: str, value) -> int:
    """Set every ``key`` in a nested config dict; returns how many were set."""
    count = 0
    if isinstance(node, dict):
        for k in list(node.keys()):
            if k == key:
                node[k] = value
                count += 1
            else:
                count += _set_key(node[k], key, value)
    return count


def _set_model_option(model_cfg, dotted_key: str, value) -> None:
    """``model_cfg['a']['b'] = value`` for ``'a.b'``, creating sub-dicts the base config leaves out."""
    *parents, key = dotted_key.split(".")
    node = model_cfg
    for name in parents:
        if node.get(name) is None:
            node[name] = {}
        node = node[name]
    node[key] = value


def train_and_evaluate(job: dict) -> dict:
    """Train one variant, evaluate its last checkpoint on the test subset."""
    import torch

    from tad.engine.inference import run_inference
    from tad.engine.runner import build_runner, find_best_checkpoint, load_config

    if job["threads"]:
        torch.set_num_threads(job["threads"])
    config, overrides = VARIANTS[job["variant"]]
    cfg = load_config(str(REPO / "configs" / config), cfg_options=dict(
        ann_file=job["ann_file"], feature_store=job["store"], max_seq_len=job["max_seq_len"]))
    model = cfg.model
    model.update(in_channels=job["feature_dim"], num_classes=job["num_classes"], max_seq_len=job["max_seq_len"])
    if job["embed_dim"]:
        _set_key(model, "embed_dim", job["embed_dim"])
    for key, value in overrides.items():
        _set_model_option(model, key, value)
    # schedule: warmup 1/7 of the epochs (ActionFormer: 5 of 35), then cosine
    epochs = job["epochs"]
    warmup = max(1, round(epochs / 7))
    cfg.train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=epochs, val_interval=epochs + 1)
    cfg.param_scheduler = [
        dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=warmup, convert_to_iter_based=True)]
    if epochs > warmup:
        cfg.param_scheduler.append(dict(type="CosineAnnealingLR", T_max=epochs - warmup, eta_min=1e-8, by_epoch=True,
                                        begin=warmup, end=epochs, convert_to_iter_based=True))
    if job["lr"]:
        cfg.optim_wrapper.optimizer.lr = job["lr"]
    if job["ema_momentum"] is not None:
        for hook in cfg.get("custom_hooks") or []:
            if hook.get("type") == "EMAHook":
                hook["momentum"] = job["ema_momentum"]
    # no validation during training: pure training time, and no model selection on test
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=epochs, by_epoch=True, max_keep_ckpts=1,
                                        save_last=True)
    work_dir = Path(job["work_dir"])
    runner = build_runner(cfg, work_dir=work_dir, seed=job["seed"], amp=job["amp"], device=job["device"])
    params = sum(p.numel() for p in runner.model.parameters())
    t0, c0 = time.perf_counter(), time.process_time()
    runner.train()
    train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    iters = runner.iter
    checkpoint = find_best_checkpoint(work_dir)
    t0 = time.perf_counter()
    _, result = run_inference(cfg, checkpoint, split="test", out=str(work_dir / "test_predictions.json"),
                              metrics_out=str(work_dir / "test_metrics.json"))
    infer_s = time.perf_counter() - t0
    thresholds = [float(t) for t in result.tiou_thresholds]
    return dict(variant=job["variant"], epochs=epochs, iters=iters, params_m=params / 1e6, train_s=train_s,
                train_cpu_s=train_cpu_s, infer_s=infer_s, average_mAP=float(result.average_mAP),
                mAP={f"{t:.1f}": float(m) for t, m in zip(thresholds, result.mAP)})


# ------------------------------------------------------------------ driver side
def ensure_heldout_set(data_dir: Path, ann: Path, feature_dim: int, max_videos: int | None, difficulty: str,
                       seed: int, overrides: dict | None = None) -> tuple[Path, Path, int]:
    """Generate (or reuse) the held-out store; returns (store, annotations, num_classes)."""
    from tad.synthetic_features import load_layout, make_synthetic_store, preset_config, select_videos

    overrides = overrides or {}
    extra = "".join(f"_{k}{v}" for k, v in sorted(overrides.items()))
    tag = f"heldout_{difficulty}{extra}_d{feature_dim}_n{max_videos or 'all'}_s{seed}"
    store, ann_out = data_dir / f"{tag}.h5", data_dir / f"{tag}.json"
    layout = select_videos(load_layout(ann), ["validation", "test"], max_videos)
    if not (store.is_file() and ann_out.is_file()):
        t0 = time.perf_counter()
        cfg = preset_config(difficulty, feature_dim=feature_dim, seed=seed, **overrides)
        summary = make_synthetic_store(layout, store, cfg, ann_out=ann_out, holdout=True, overwrite=True)
        print(f"generated {summary.num_videos} videos, {summary.num_steps} feature steps in "
              f"{time.perf_counter() - t0:.0f} s -> {store}")
    # classes present in the written annotations (a subset of videos may lack some)
    return store, ann_out, len(load_layout(ann_out).classes)


def run_job(job: dict, log_path: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker-json", json.dumps(job)]
    with open(log_path, "w") as log:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        if job["threads"]:
            env["OMP_NUM_THREADS"] = str(job["threads"])
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = log_path.read_text().strip().splitlines()[-1:] or ["no output"]
    return dict(variant=job["variant"], error=f"{tail[0]} (log: {log_path})")


def parse_variants(spec: str, default_epochs: int) -> list[tuple[str, int]]:
    out = []
    for item in spec.split(","):
        name, _, epochs = item.strip().partition(":")
        if name not in VARIANTS:
            raise click.BadParameter(f"unknown variant {name!r} (choose from {', '.join(VARIANTS)})")
        out.append((name, int(epochs) if epochs else default_epochs))
    return out


@click.command(help=__doc__)
@click.option("--variants", default="stpt,stpt_refine,stpt_local,actionformer_like", show_default=True,
              help="Comma-separated; NAME:EPOCHS sets a variant's own epoch count.")
@click.option("--epochs", type=int, default=None, help="Epochs per variant [CPU: 24, --full: 35].")
@click.option("--feature-dim", type=int, default=None, help="Synthetic feature size [CPU: 128, --full: 2048].")
@click.option("--embed-dim", type=int, default=None, help="Detector width [CPU: 64, --full: config default 512].")
@click.option("--max-videos", type=int, default=None, help="Videos per subset [CPU: 50, --full: all 200 + 212].")
@click.option("--max-seq-len", type=int, default=None, help="Training crop length [CPU: 576, --full: 2304].")
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default=None,
              help="Synthetic set difficulty [CPU: easy, --full: medium].")
@click.option("--data-option", "data_options", multiple=True, metavar="KEY=VALUE",
              help="Override a difficulty parameter of the synthetic set (e.g. noise=0.3), repeatable.")
@click.option("--full", is_flag=True, help="Full THUMOS sizes (defaults in brackets after --full).")
@click.option("--lr", type=float, default=None, help="Learning rate [CPU: 3e-3, --full: the configs' 1e-4].")
@click.option("--ema-momentum", type=float, default=None, help="Override the EMA momentum (short CPU runs need a faster EMA).")
@click.option("--seed", type=int, default=0, show_default=True, help="Data and training seed.")
@click.option("--amp", is_flag=True, help="bf16 autocast (CPU) / fp16 AMP (CUDA).")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option("--threads", type=int, default=0,
              help="torch threads per job (0: default). On a shared CPU, 1 avoids OpenMP oversubscription.")
@click.option("--annotations", "ann", default=str(DEFAULT_ANN), show_default=True, type=click.Path(path_type=Path),
              help="Layout source: the real THUMOS14 annotations.")
@click.option("--data-dir", default=str(REPO / "work_dirs" / "bench_synth"), show_default=True, type=click.Path(path_type=Path))
@click.option("--work-dir", default=str(REPO / "work_dirs" / "bench_ablation"), show_default=True, type=click.Path(path_type=Path))
@click.option("--json-out", type=click.Path(dir_okay=False), default=None)
@click.option("--worker-json", default=None, hidden=True)
def main(variants, epochs, feature_dim, embed_dim, max_videos, max_seq_len, difficulty, data_options, full, lr, ema_momentum, seed,
         amp, device, threads, ann, data_dir, work_dir, json_out, worker_json):
    if worker_json:
        print("RESULT " + json.dumps(train_and_evaluate(json.loads(worker_json))), flush=True)
        return
    epochs = epochs or (35 if full else 24)
    max_seq_len = max_seq_len or (2304 if full else 576)
    difficulty = difficulty or ("medium" if full else "easy")
    feature_dim = feature_dim or (2048 if full else 128)
    embed_dim = embed_dim or (None if full else 64)
    max_videos = max_videos or (None if full else 50)
    lr = lr or (None if full else 3e-3)  # ~200 iterations instead of ActionFormer's ~3500 at 1e-4
    if ema_momentum is None and not full:
        ema_momentum = 0.05  # a few hundred iterations: 0.001 would leave the EMA near initialisation
    plan = parse_variants(variants, epochs)
    data_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    overrides = {}
    for item in data_options:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--data-option")
        overrides[key.strip()] = float(value) if "." in value else int(value)
    store, ann_file, num_classes = ensure_heldout_set(data_dir, ann, feature_dim, max_videos, difficulty, seed,
                                                      overrides)
    import torch

    print(f"detector_ablation: held-out THUMOS-shaped synthetic set ({difficulty}{', ' if overrides else ''}"
          f"{', '.join(f'{k}={v}' for k, v in overrides.items())}), {feature_dim}-d features, "
          f"{max_videos or 'all'} videos per subset (train: validation, test: test), max_seq_len {max_seq_len}, "
          f"embed_dim {embed_dim or 'config default'}, lr {lr or 'config'}, EMA momentum {ema_momentum or 'config'}, "
          f"amp {amp}, torch threads {threads or torch.get_num_threads()}, seed {seed}")
    results = []
    for name, variant_epochs in plan:
        job = dict(variant=name, epochs=variant_epochs, store=str(store), ann_file=str(ann_file),
                   feature_dim=feature_dim, num_classes=num_classes, embed_dim=embed_dim, max_seq_len=max_seq_len,
                   lr=lr, ema_momentum=ema_momentum, seed=seed, amp=amp, device=device, threads=threads,
                   work_dir=str(work_dir / f"{name}_e{variant_epochs}"))
        res = run_job(job, work_dir / f"{name}_e{variant_epochs}.log")
        results.append(res)
        if "error" in res:
            print(f"  {name:18s} ERROR: {res['error']}")
        else:
            print(f"  {name:18s} {res['epochs']:3d} epochs ({res['iters']} iters), {res['params_m']:.2f} M params: "
                  f"avg mAP {100 * res['average_mAP']:.2f}  mAP@0.5 {100 * res['mAP'].get('0.5', float('nan')):.2f}  "
                  f"train {res['train_s']:.0f} s (CPU {res['train_cpu_s']:.0f} s)  inference {res['infer_s']:.0f} s")
        sys.stdout.flush()

    ref = next((r for r in results if r["variant"] == REFERENCE and "error" not in r), None)
    ref_epochs = f" ({ref['epochs']} epochs)" if ref else ""
    print(f"\nsummary (vs {REFERENCE}{ref_epochs}: mAP delta in points, "
          f"training time ratio, wall and process CPU time; target: >= +1.0 points at <= 0.5x time)")
    print(f"  {'variant':18s} {'epochs':>6s} {'avg mAP':>8s} {'delta':>7s} {'mAP@0.5':>8s} {'delta':>7s} "
          f"{'train s':>8s} {'ratio':>6s} {'CPU s':>7s} {'ratio':>6s}")
    for r in results:
        if "error" in r:
            continue
        d_avg = d_50 = ratio = cpu_ratio = None
        if ref:
            d_avg = 100 * (r["average_mAP"] - ref["average_mAP"])
            d_50 = 100 * (r["mAP"]["0.5"] - ref["mAP"]["0.5"])
            ratio = r["train_s"] / ref["train_s"]
            cpu_ratio = r["train_cpu_s"] / ref["train_cpu_s"]

        def fmt(v, spec):
            return "n/a" if v is None else format(v, spec)
        print(f"  {r['variant']:18s} {r['epochs']:6d} {100 * r['average_mAP']:8.2f} {fmt(d_avg, '+7.2f')} "
              f"{100 * r['mAP']['0.5']:8.2f} {fmt(d_50, '+7.2f')} {r['train_s']:8.0f} {fmt(ratio, '6.2f')} "
              f"{r['train_cpu_s']:7.0f} {fmt(cpu_ratio, '6.2f')}")
    if json_out:
        Path(json_out).write_text(json.dumps(dict(results=results, feature_dim=feature_dim, embed_dim=embed_dim,
                                                  max_videos=max_videos, difficulty=difficulty), indent=1))


if __name__ == "__main__":
    main()
