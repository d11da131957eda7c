"""Training step time, peak memory and inference time of the detector at THUMOS length.

Measures, for the STPT model (configs/_base_/models/stpt.py) and the ActionFormer-like
reference (configs/_base_/models/actionformer_like.py), in the same run:

* one training step (forward 'loss' + backward + AdamW step) on a batch of 2
  sequences of 2304 steps (THUMOS max_seq_len), full-size model (2048-d input),
  in float32 and under bf16 autocast (CPU) / fp16 autocast (CUDA);
* inference on one THUMOS-length video (forward 'predict', including decoding,
  Soft-NMS and the cap on segments); ``--profile`` adds a torch.profiler breakdown of it
  into encoder, classification head, regression head, candidate selection, Soft-NMS and
  score voting (CPU time of each stage, inclusive; profiler overhead included).

Each measurement runs in its own subprocess; peak memory is the growth of the
process's peak RSS (``resource.getrusage().ru_maxrss``) over the measured part, i.e.
activations, gradients, optimizer state and temporaries on top of the built model
and its inputs (on CUDA: ``torch.cuda.max_memory_allocated``).

\b
Examples:
  python bench/detector_step.py                       # full size, CPU
  python bench/detector_step.py --steps 2 --seq-len 1152   # quicker
  python bench/detector_step.py --device cuda --steps 20
  python bench/detector_step.py --modes infer --precisions fp32 --in-channels 256 --infer-len 12288 --profile
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
MODEL_CONFIGS = {
    "stpt": REPO / "configs" / "_base_" / "models" / "stpt.py",
    "actionformer_like": REPO / "configs" / "_base_" / "models" / "actionformer_like.py",
}
REFERENCE = "actionformer_like"


# ------------------------------------------------------------------ worker side
def build_model(variant: str, in_channels: int, num_classes: int, embed_dim: int | None, device: str):
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import tad.registry  # noqa: F401  (registries + mmengine fixes)
    from tad.registry import MODELS

    cfg = Config.fromfile(str(MODEL_CONFIGS[variant]))
    model_cfg = cfg.model
    model_cfg.update(in_channels=in_channels, num_classes=num_classes)
    if embed_dim is not None:
        _set_embed_dim(model_cfg, embed_dim)
    if DefaultScope.get_current_instance() is None:
        DefaultScope.get_instance("tad-bench", scope_name="tad")
    model = MODELS.build(model_cfg).to(device)
    return model, torch


def _set_embed_dim(model_cfg, embed_dim: int) -> None:
    """Set every ``embed_dim`` key of the model config (top level and sub-dicts)."""
    def walk(node):
        if isinstance(node, dict):
            for key in list(node.keys()):
                if key == "embed_dim":
                    node[key] = embed_dim
                else:
                    walk(node[key])
    walk(model_cfg)


def make_batch(torch, batch: int, seq_len: int, in_channels: int, num_classes: int, device: str, seed: int = 0):
    """Random THUMOS-like inputs: features, full masks, ~10 GT segments per sequence."""
    import numpy as np

    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(batch, in_channels, seq_len, generator=gen).to(device)  # (B, C, T)
    masks = torch.ones(batch, seq_len, dtype=torch.bool, device=device)  # (B, T)
    samples = []
    timestamps = (4 * np.arange(seq_len) + 8) / 30.0
    for b in range(batch):
        starts = torch.randint(0, seq_len - 200, (10,), generator=gen).float()
        lengths = torch.randint(8, 150, (10,), generator=gen).float()
        samples.append(dict(video_id=f"bench_{b}", timestamps=timestamps, duration=float(timestamps[-1] + 0.3),
                            gt_segments=torch.stack([starts, starts + lengths], dim=1).to(device),
                            gt_labels=torch.randint(0, num_classes, (10,), generator=gen).to(device)))
    return dict(feats=feats, masks=masks), samples


def _autocast(torch, precision: str, device: str):
    import contextlib

    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype)


def _sync(torch, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_mb(torch, device, rss0_kb):
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0_kb) / 1024.0


#: profiled stages of one 'predict' call: (label, object, method name)
def _stage_targets(model):
    import tad.detectors.postprocess as postprocess

    return [("encoder", model.encoder, "forward"), ("cls_head", model.cls_head, "forward"),
            ("reg_head", model.reg_head, "forward"), ("candidates", model.postprocessor, "select_candidates"),
            ("soft_nms", postprocess, "soft_nms"), ("voting", postprocess, "score_voting")]


def profile_predict(torch, model, inputs, samples) -> dict:
    """CPU seconds of each stage of one 'predict' call (torch.profiler record_function ranges)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    originals = []
    for label, owner, name in _stage_targets(model):
        fn = getattr(owner, name)
        originals.append((owner, name, fn))

        def wrapped(*a, _fn=fn, _label=label, **k):
            with record_function("stage:" + _label):
                return _fn(*a, **k)
        setattr(owner, name, wrapped)
    try:
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as prof:
            with record_function("stage:total"):
                model(inputs, samples, mode="predict")
    finally:
        for owner, name, fn in originals:
            if owner is model.postprocessor or isinstance(owner, torch.nn.Module):
                delattr(owner, name)  # back to the class attribute
            else:
                setattr(owner, name, fn)
    return {e.key[len("stage:"):]: e.cpu_time_total / 1e6 for e in prof.key_averages()
            if e.key.startswith("stage:")}


def worker(args: dict) -> dict:
    model, torch = build_model(args["variant"], args["in_channels"], args["num_classes"], args["embed_dim"], args["device"])
    if args["threads"]:
        torch.set_num_threads(args["threads"])
    device = args["device"]
    params = sum(p.numel() for p in model.parameters())
    out = dict(variant=args["variant"], precision=args["precision"], mode=args["mode"], params_m=params / 1e6)
    if args["mode"] == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        inputs, samples = make_batch(torch, args["batch"], args["seq_len"], args["in_channels"], args["num_classes"], device)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with _autocast(torch, args["precision"], device):
                losses = model(inputs, samples, mode="loss")
            loss = sum(v for k, v in losses.items() if "loss" in k)
            loss.backward()
            optimizer.step()
            return float(loss)

        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for _ in range(args["warmup"]):
            step()
        _sync(torch, device)
        times = []
        for _ in range(args["steps"]):
            t0 = time.perf_counter()
            loss = step()
            _sync(torch, device)
            times.append(time.perf_counter() - t0)
        out.update(step_s=min(times), step_mean_s=sum(times) / len(times), peak_mb=_peak_mb(torch, device, rss0),
                   loss=loss)
    else:
        model.eval()
        inputs, samples = make_batch(torch, 1, args["infer_len"], args["in_channels"], args["num_classes"], device, seed=1)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        times, num_segments = [], 0
        with torch.no_grad():
            for i in range(args["warmup"] + args["steps"]):
                t0 = time.perf_counter()
                with _autocast(torch, args["precision"], device):
                    preds = model(inputs, samples, mode="predict")
                _sync(torch, device)
                if i >= args["warmup"]:
                    times.append(time.perf_counter() - t0)
                num_segments = int(len(preds[0]["scores"]))
        out.update(infer_s=min(times), infer_mean_s=sum(times) / len(times), peak_mb=_peak_mb(torch, device, rss0),
                   segments=num_segments)
        if args.get("profile"):
            out["stages"] = profile_predict(torch, model, inputs, samples)
    return out


# ------------------------------------------------------------------ driver side
def run_worker(args: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker-json", json.dumps(args)]
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(args, error=f"timed out after {timeout:.0f} s")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return dict(args, error=tail[0])


def _fmt(value, spec):
    return "n/a" if value is None else format(value, spec)


@click.command(help=__doc__)
@click.option("--seq-len", type=int, default=2304, show_default=True, help="Training sequence length (THUMOS max_seq_len).")
@click.option("--batch", type=int, default=2, show_default=True)
@click.option("--infer-len", type=int, default=2304, show_default=True,
              help="Steps of the inference video (THUMOS test videos: 1600 on average, up to 12.5k).")
@click.option("--in-channels", type=int, default=2048, show_default=True)
@click.option("--num-classes", type=int, default=20, show_default=True)
@click.option("--embed-dim", type=int, default=None, help="Override the configs' embed_dim (default: full size).")
@click.option("--steps", type=int, default=3, show_default=True, help="Timed steps (the minimum is reported).")
@click.option("--warmup", type=int, default=1, show_default=True)
@click.option("--precisions", default="fp32,bf16", show_default=True, help="fp32, bf16 (autocast), fp16 (CUDA autocast).")
@click.option("--variants", default="stpt,actionformer_like", show_default=True)
@click.option("--modes", default="train,infer", show_default=True, help="train, infer or both.")
@click.option("--profile", is_flag=True, help="Also print a torch.profiler stage breakdown of one inference.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=0, help="torch threads (0: torch's default).")
@click.option("--timeout", type=float, default=900, show_default=True, help="Seconds per measurement.")
@click.option("--json-out", type=click.Path(dir_okay=False), default=None, help="Also write the figures as JSON.")
@click.option("--worker-json", default=None, hidden=True)
def main(seq_len, batch, infer_len, in_channels, num_classes, embed_dim, steps, warmup, precisions, variants,
         modes, profile, device, threads, timeout, json_out, worker_json):
    if worker_json:
        print("RESULT " + json.dumps(worker(json.loads(worker_json))), flush=True)
        return
    import torch

    print(f"detector_step: batch {batch} x {seq_len} steps x {in_channels}-d, {num_classes} classes, "
          f"embed_dim {embed_dim or 'config default'}, inference video {infer_len} steps, device {device}, "
          f"torch {torch.__version__}, threads {threads or torch.get_num_threads()}, "
          f"{steps} timed steps after {warmup} warm-up (min reported)")
    results = []
    for variant in variants.split(","):
        for precision in precisions.split(","):
            for mode in [m for m in ("train", "infer") if m in modes.split(",")]:
                args = dict(variant=variant, precision=precision, mode=mode, seq_len=seq_len, batch=batch,
                            infer_len=infer_len, in_channels=in_channels, num_classes=num_classes,
                            embed_dim=embed_dim, steps=steps, warmup=warmup, device=device, threads=threads,
                            profile=profile)
                res = run_worker(args, timeout)
                results.append(res)
                if "error" in res:
                    print(f"  {variant:18s} {precision:5s} {mode:5s} ERROR: {res['error']}")
                elif mode == "train":
                    print(f"  {variant:18s} {precision:5s} train step {res['step_s']:.3f} s "
                          f"(mean {res['step_mean_s']:.3f}), peak +{res['peak_mb']:.0f} MiB, {res['params_m']:.1f} M params")
                else:
                    print(f"  {variant:18s} {precision:5s} inference {res['infer_s']:.3f} s/video "
                          f"(mean {res['infer_mean_s']:.3f}), peak +{res['peak_mb']:.0f} MiB, {res['segments']} segments")
                    if res.get("stages"):
                        st = res["stages"]
                        total = st.get("total") or 1.0
                        print("    profile (CPU s, % of total): " + ", ".join(
                            f"{k} {v:.3f} ({100 * v / total:.0f}%)" for k, v in st.items() if k != "total")
                            + f"; total {total:.3f}")
                sys.stdout.flush()

    def find(variant, precision, mode):
        for r in results:
            if r.get("variant") == variant and r.get("precision") == precision and r.get("mode") == mode and "error" not in r:
                return r
        return None

    print("\nsummary (ratio = variant / actionformer_like, same run; < 1 is better)")
    print(f"  {'variant':18s} {'prec':5s} {'step s':>8s} {'ratio':>6s} {'peak MiB':>9s} {'ratio':>6s} {'infer s':>8s} {'ratio':>6s}")
    for variant in variants.split(","):
        for precision in precisions.split(","):
            tr, inf = find(variant, precision, "train"), find(variant, precision, "infer")
            ref_tr, ref_inf = find(REFERENCE, precision, "train"), find(REFERENCE, precision, "infer")

            def ratio(a, b, key):
                return None if not (a and b) else a[key] / b[key]
            print(f"  {variant:18s} {precision:5s} {_fmt(tr and tr['step_s'], '8.3f')} "
                  f"{_fmt(ratio(tr, ref_tr, 'step_s'), '6.2f')} {_fmt(tr and tr['peak_mb'], '9.0f')} "
                  f"{_fmt(ratio(tr, ref_tr, 'peak_mb'), '6.2f')} {_fmt(inf and inf['infer_s'], '8.3f')} "
                  f"{_fmt(ratio(inf, ref_inf, 'infer_s'), '6.2f')}")
    if json_out:
        Path(json_out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
