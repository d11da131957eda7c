"""Detector ablation on our held-out THUMOS-shaped synthetic set: the SHIPPED STPT recipe against
the ActionFormer-like reference with ActionFormer's published recipe, in the same run.

Variants (each trained and evaluated in its own subprocess, through
tad.engine.runner.build_runner and tad.engine.inference.run_inference):

\b
  stpt               exactly what `tad train` ships: bench/configs/bench_synth_stpt.py = the STPT model
                     (configs/_base_/models/stpt.py), schedule (configs/_base_/schedules/
                     adamw_cosine_35e.py) and runtime (EMA with warm-up) of thumos14_stpt_i3d.py
  actionformer_like  the reference: bench/configs/bench_synth_actionformer.py, ActionFormer's recipe as
                     published: 35 epochs, lr 1e-4, EMA 0.999 (no warm-up), fp32
  stpt_<option>      the shipped STPT plus one option (an ablation row): sgp (SGP mixers in the
                     local levels), dynagg (dynamic aggregation in the local levels), maxer
                     (levels >= 3 max-pool only), trident (Trident boundary head), refine
                     (boundary refinement), local (local attention everywhere)
  stpt_grid_tokens   on a store with a 2 x 2 spatial grid (--spatial-grid 2): spatial tokens in
  stpt_grid_pooled   level 0 vs the grid averaged away at the input

Scoring is what a user gets: no validation while training, the checkpoint `tad train` exports
(the last; its `state_dict` holds the EMA weights) is scored on the test subset with `tad eval`'s
code. The raw weights of the same checkpoint are scored too, for information (ActionFormer's
eval script loads the EMA). Prints average mAP, training wall time, inference + post-processing
time per test video, and the deltas/ratios vs actionformer_like, per seed and averaged.

Scale (printed with the results): the CPU is 2 cores shared by 8 engineers, where one training
step of the full-size model (embed 512, batch 2 x 2304 steps) took 70 s. The default run is
therefore reduced in width and data, NOT in recipe: 128-d features, embed_dim 64, training crops
of 576 steps, --max-videos videos per subset; epochs, learning rate, warm-up, EMA and losses are
the shipped ones (STPT) and ActionFormer's (reference). `--embed-dim 0 --max-seq-len 2304
--feature-dim 2048 --max-videos 0` runs the full sizes (a GPU job). `--epochs/--lr/--ema-momentum`
override the recipes of every variant (then it is not the shipped recipe; the header says so).

\b
Examples:
  python bench/detector_ablation.py --seeds 0,1                       # the target comparison
  python bench/detector_ablation.py --variants stpt,stpt_sgp,stpt_maxer,stpt_trident,stpt_dynagg
  python bench/detector_ablation.py --variants stpt_grid_tokens,stpt_grid_pooled --spatial-grid 2
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
#: the real THUMOS14 annotations in ../shared beside the checkout or any of its parents
DEFAULT_ANN = next((p / "shared" / "data" / "thumos14" / "thumos14.json" for p in REPO.parents
                    if (p / "shared" / "data" / "thumos14" / "thumos14.json").is_file()),
                   REPO.parent / "shared" / "data" / "thumos14" / "thumos14.json")
REFERENCE = "actionformer_like"

#: variant -> (config, model overrides)
VARIANTS = {
    "stpt": ("bench_synth_stpt.py", {}),
    "actionformer_like": ("bench_synth_actionformer.py", {}),
    "stpt_sgp": ("bench_synth_stpt.py", {"encoder.local_mixer": {"type": "SGPMixer"}}),
    "stpt_dynagg": ("bench_synth_stpt.py", {"encoder.local_mixer": {"type": "DynamicAggregation"}}),
    "stpt_maxer": ("bench_synth_stpt.py", {"encoder.pool_only_from": 3}),
    "stpt_trident": ("bench_synth_stpt.py", {"reg_head": {"type": "TridentHead"}}),
    "stpt_refine": ("bench_synth_stpt.py", {"refine": True}),
    "stpt_local": ("bench_synth_stpt.py", {"encoder.attention": "local"}),
    "stpt_grid_tokens": ("bench_synth_stpt.py", {"spatial_grid": "GRID"}),
    "stpt_grid_pooled": ("bench_synth_stpt.py", {"spatial_grid": "GRID", "encoder.spatial_levels": 0}),
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
    if isinstance(value, dict) and isinstance(node.get(key), dict):
        node[key] = dict(value)  # a new part type: its own defaults, not the old part's keys
    else:
        node[key] = value


def _raw_weights_checkpoint(checkpoint: Path, out: Path) -> Path | None:
    """The raw (non-EMA) weights of a checkpoint mmengine's EMAHook wrote, as a checkpoint of their own
    (whichever set EMASelectionHook exported)."""
    import torch

    from tad.engine.ema_selection import split_weights

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if not ckpt.get("ema_state_dict"):
        return None
    _, raw = split_weights(ckpt)
    ckpt.pop("ema_state_dict")
    ckpt["state_dict"] = raw
    torch.save(ckpt, out)
    return out


def train_and_evaluate(job: dict) -> dict:
    """Train one variant, evaluate the checkpoint `tad train` exports (and its raw weights) on test."""
    import torch

    from tad.engine.inference import run_inference
    from tad.engine.runner import build_runner, find_best_checkpoint, load_config

    if job["threads"]:
        torch.set_num_threads(job["threads"])
    config, overrides = VARIANTS[job["variant"]]
    options = dict(ann_file=job["ann_file"], feature_store=job["store"])
    if job["max_seq_len"]:
        options["max_seq_len"] = job["max_seq_len"]
    if job["epochs"]:
        options["max_epochs"] = job["epochs"]  # the schedulers' bounds follow (load_config)
    cfg = load_config(str(REPO / "bench" / "configs" / config), cfg_options=options)
    model = cfg.model
    model.update(in_channels=job["feature_dim"], num_classes=job["num_classes"])
    if job["max_seq_len"]:
        model.update(max_seq_len=job["max_seq_len"])
    if job["embed_dim"]:
        _set_key(model, "embed_dim", job["embed_dim"])
    for key, value in overrides.items():
        _set_model_option(model, key, job["spatial_grid"] if value == "GRID" else value)
    if job["lr"]:
        cfg.optim_wrapper.optimizer.lr = job["lr"]
    if job["ema_momentum"] is not None:
        for hook in cfg.get("custom_hooks") or []:
            if hook.get("type") == "EMAHook":
                hook["momentum"] = job["ema_momentum"]
    epochs = cfg.train_cfg.max_epochs
    # no validation during training: pure training time, and no model selection on test
    cfg.train_cfg.val_interval = epochs + 1
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
    checkpoint = find_best_checkpoint(work_dir)  # what `tad train` reports (no validation: the last)
    t0 = time.perf_counter()
    predictions, result = run_inference(cfg, checkpoint, split="test", out=str(work_dir / "test_predictions.json"),
                                        metrics_out=str(work_dir / "test_metrics.json"), progress=False)
    infer_s = time.perf_counter() - t0
    num_videos = max(1, len(predictions))
    raw = _raw_weights_checkpoint(checkpoint, work_dir / "raw_weights.pth")
    raw_map = None
    if raw is not None:
        _, raw_result = run_inference(cfg, raw, split="test", out=str(work_dir / "raw_predictions.json"),
                                      progress=False)
        raw_map = float(raw_result.average_mAP)
    thresholds = [float(t) for t in result.tiou_thresholds]
    ema = next((h for h in cfg.get("custom_hooks") or [] if h.get("type") == "EMAHook"), {})
    recipe = dict(lr=cfg.optim_wrapper.optimizer.lr, epochs=epochs, warmup_epochs=cfg.get("warmup_epochs"),
                  ema=f"{ema.get('ema_type')} momentum {ema.get('momentum')} gamma {ema.get('gamma', '-')}",
                  batch=cfg.train_dataloader.batch_size)
    return dict(variant=job["variant"], seed=job["seed"], epochs=epochs, iters=iters, params_m=params / 1e6,
                train_s=train_s, train_cpu_s=train_cpu_s, infer_s=infer_s, infer_per_video_s=infer_s / num_videos,
                videos=num_videos, average_mAP=float(result.average_mAP), raw_average_mAP=raw_map,
                mAP={f"{t:.1f}": float(m) for t, m in zip(thresholds, result.mAP)}, recipe=recipe)


# ------------------------------------------------------------------ driver side
def ensure_heldout_set(data_dir: Path, ann: Path, feature_dim: int, max_videos: int | None, difficulty: str,
                       seed: int, overrides: dict | None = None, spatial_grid: int | None = None
                       ) -> tuple[Path, Path, int]:
    """Generate (or reuse) the held-out store; returns (store, annotations, num_classes)."""
    from tad.synthetic_features import load_layout, make_synthetic_store, preset_config, select_videos

    overrides = dict(overrides or {})
    if spatial_grid:
        overrides["spatial_grid"] = spatial_grid
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
    return dict(variant=job["variant"], seed=job["seed"], error=f"{tail[0]} (log: {log_path})")


def parse_variants(spec: str) -> list[str]:
    out = []
    for item in spec.split(","):
        name = item.strip()
        if name not in VARIANTS:
            raise click.BadParameter(f"unknown variant {name!r} (choose from {', '.join(VARIANTS)})")
        out.append(name)
    return out


def _fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def print_summary(results: list[dict], seeds: list[int]) -> None:
    print("\nsummary vs actionformer_like, same seed (mAP in points; ratios of training wall time and of "
          "inference + post-processing per test video; targets: >= +1.0 avg mAP at <= 0.5x training time, "
          "<= 0.25x inference)")
    print(f"  {'variant':18s} {'seed':>4s} {'epochs':>6s} {'iters':>5s} {'avg mAP':>8s} {'delta':>7s} {'raw w.':>7s} "
          f"{'mAP@0.5':>8s} {'train s':>8s} {'ratio':>6s} {'infer s/v':>9s} {'ratio':>6s}")
    rows: dict[str, list[dict]] = {}
    for r in results:
        if "error" in r:
            continue
        ref = next((x for x in results if x.get("variant") == REFERENCE and x.get("seed") == r["seed"]
                    and "error" not in x), None)
        d = ratio = iratio = None
        if ref:
            d = 100 * (r["average_mAP"] - ref["average_mAP"])
            ratio = r["train_s"] / ref["train_s"]
            iratio = r["infer_per_video_s"] / ref["infer_per_video_s"]
        rows.setdefault(r["variant"], []).append(dict(d=d, ratio=ratio, iratio=iratio, **r))
        raw = None if r.get("raw_average_mAP") is None else 100 * r["raw_average_mAP"]
        print(f"  {r['variant']:18s} {r['seed']:4d} {r['epochs']:6d} {r['iters']:5d} {100 * r['average_mAP']:8.2f} "
              f"{_fmt(d, '+7.2f')} {_fmt(raw, '7.2f')} {100 * r['mAP']['0.5']:8.2f} {r['train_s']:8.0f} "
              f"{_fmt(ratio, '6.2f')} {r['infer_per_video_s']:9.3f} {_fmt(iratio, '6.2f')}")
    if len(seeds) > 1:
        print(f"\nmean over seeds {','.join(map(str, seeds))}")
        for name, rs in rows.items():
            def mean(key):
                vals = [x[key] for x in rs if x.get(key) is not None]
                return sum(vals) / len(vals) if vals else None
            print(f"  {name:18s} avg mAP {100 * mean('average_mAP'):6.2f}  delta {_fmt(mean('d'), '+6.2f')}  "
                  f"raw weights {_fmt(None if mean('raw_average_mAP') is None else 100 * mean('raw_average_mAP'), '6.2f')}  "
                  f"train time ratio {_fmt(mean('ratio'), '5.2f')}  inference ratio {_fmt(mean('iratio'), '5.2f')}")


@click.command(help=__doc__)
@click.option("--variants", default="stpt,actionformer_like", show_default=True, help="Comma-separated.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated data and training seeds.")
@click.option("--epochs", type=int, default=None, help="Override every variant's epochs (NOT the shipped recipe).")
@click.option("--feature-dim", type=int, default=128, show_default=True, help="Synthetic feature size.")
@click.option("--embed-dim", type=int, default=64, show_default=True,
              help="Detector width (0: the configs' 512).")
@click.option("--max-videos", type=int, default=50, show_default=True, help="Videos per subset (0: all 200 + 212).")
@click.option("--max-seq-len", type=int, default=576, show_default=True,
              help="Training crop length (0: the configs' 2304).")
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="easy", show_default=True,
              help="Synthetic set difficulty.")
@click.option("--data-option", "data_options", multiple=True, metavar="KEY=VALUE",
              help="Override a difficulty parameter of the synthetic set (e.g. noise=0.3), repeatable.")
@click.option("--spatial-grid", type=int, default=None, help="Features keep a g x g grid (stpt_grid_* variants).")
@click.option("--lr", type=float, default=None, help="Override every variant's lr (NOT the shipped recipe).")
@click.option("--ema-momentum", type=float, default=None,
              help="Override every variant's EMA momentum (NOT the shipped recipe).")
@click.option("--amp", is_flag=True, help="bf16 autocast (CPU) / fp16 AMP (CUDA) for every variant.")
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option("--threads", type=int, default=0,
              help="torch threads per job (0: default). On a shared CPU, 1 avoids OpenMP oversubscription.")
@click.option("--annotations", "ann", default=str(DEFAULT_ANN), show_default=True, type=click.Path(path_type=Path),
              help="Layout source: the real THUMOS14 annotations.")
@click.option("--data-dir", default=str(REPO / "work_dirs" / "bench_synth"), show_default=True,
              type=click.Path(path_type=Path))
@click.option("--work-dir", default=str(REPO / "work_dirs" / "bench_ablation"), show_default=True,
              type=click.Path(path_type=Path))
@click.option("--json-out", type=click.Path(dir_okay=False), default=None)
@click.option("--worker-json", default=None, hidden=True)
def main(variants, seeds, epochs, feature_dim, embed_dim, max_videos, max_seq_len, difficulty, data_options,
         spatial_grid, lr, ema_momentum, amp, device, threads, ann, data_dir, work_dir, json_out, worker_json):
    if worker_json:
        print("RESULT " + json.dumps(train_and_evaluate(json.loads(worker_json))), flush=True)
        return
    plan = parse_variants(variants)
    seed_list = [int(x) for x in seeds.split(",")]
    if any(v.startswith("stpt_grid") for v in plan) and not spatial_grid:
        raise click.BadParameter("the stpt_grid_* variants need --spatial-grid", param_hint="--variants")
    data_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    overrides = {}
    for item in data_options:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--data-option")
        overrides[key.strip()] = float(value) if "." in value else int(value)
    import platform

    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").is_file() else platform.processor()
    recipe_note = "shipped recipes" if not (epochs or lr or ema_momentum is not None or amp) else \
        f"recipes OVERRIDDEN (epochs {epochs}, lr {lr}, EMA momentum {ema_momentum}, amp {amp}): NOT the shipped recipe"
    print(f"detector_ablation: held-out THUMOS-shaped synthetic set ({difficulty}"
          f"{''.join(f', {k}={v}' for k, v in overrides.items())}), {feature_dim}-d features"
          f"{f', {spatial_grid}x{spatial_grid} grid' if spatial_grid else ''}, "
          f"{max_videos or 'all'} videos per subset (train: validation, test: test), training crops "
          f"{max_seq_len or 'config (2304)'}, embed_dim {embed_dim or 'config (512)'}; {recipe_note}; "
          f"torch threads {threads or torch.get_num_threads()}, CPU {cpu} ({os.cpu_count()} cores, shared)")
    results = []
    for seed in seed_list:
        store, ann_file, num_classes = ensure_heldout_set(data_dir, ann, feature_dim, max_videos or None, difficulty,
                                                          seed, overrides, spatial_grid)
        for name in plan:
            job = dict(variant=name, epochs=epochs, store=str(store), ann_file=str(ann_file),
                       feature_dim=feature_dim, num_classes=num_classes, embed_dim=embed_dim or None,
                       max_seq_len=max_seq_len or None, lr=lr, ema_momentum=ema_momentum, seed=seed, amp=amp,
                       device=device, threads=threads, spatial_grid=spatial_grid,
                       work_dir=str(work_dir / f"{name}_s{seed}"))
            res = run_job(job, work_dir / f"{name}_s{seed}.log")
            results.append(res)
            if "error" in res:
                print(f"  {name:18s} seed {seed} ERROR: {res['error']}")
            else:
                raw = res.get("raw_average_mAP")
                print(f"  {name:18s} seed {seed}: {res['epochs']} epochs ({res['iters']} iters, {res['recipe']}), "
                      f"{res['params_m']:.2f} M params: avg mAP {100 * res['average_mAP']:.2f} (raw weights "
                      f"{'n/a' if raw is None else f'{100 * raw:.2f}'})  mAP@0.5 {100 * res['mAP']['0.5']:.2f}  "
                      f"train {res['train_s']:.0f} s (CPU {res['train_cpu_s']:.0f} s)  inference+post "
                      f"{res['infer_per_video_s']:.3f} s/video ({res['videos']} videos)")
            sys.stdout.flush()
    print_summary(results, seed_list)
    if json_out:
        Path(json_out).write_text(json.dumps(dict(results=results, feature_dim=feature_dim, embed_dim=embed_dim,
                                                  max_videos=max_videos, difficulty=difficulty), indent=1))


if __name__ == "__main__":
    main()
