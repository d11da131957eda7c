"""Cost per new feature step of the continual causal STPT: flat over the stream, vs sliding-window recompute.

For two shipped sizes of the causal detector (random weights: cost does not depend on them):

* ``demo``: configs/stpt/demo_tiny3d_causal.py (64-d in, embed 128, 6 levels) at the demo's feature rate
  (15 fps, clip stride 6: 2.5 steps/s): wall time and FLOPs per step measured at 1, 10 and 60
  minutes into one stream (every step in between is run: the state is the real one);
* ``thumos``: bench/configs/bench_synth_stpt_causal.py (2048-d in, embed 512, 6 levels; THUMOS I3D rate
  30 fps / stride 4 = 7.5 steps/s): at 1 and 3 minutes (--thumos-minutes).

Times are CPU time of this process (``time.process_time``, one torch thread), which other jobs on a
shared CPU do not inflate; wall time is printed beside. Baseline, measured in the same run: recomputing the same causal model over a sliding window of
its training length (``max_seq_len``: 160 demo / 2304 THUMOS steps) at every new step, which is
how an offline model would serve a stream; the ratio is baseline / continual (target >= 10x
fewer FLOPs). FLOPs are torch's FlopCounterMode counts (matmul/conv/attention, multiply-add = 2).
Example:  python bench/stream_cost.py --threads 1
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu_name  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def build(config: str):
    import tad.detectors  # noqa: F401
    from tad.detectors.registry import MODELS
    from tad.engine.runner import load_config

    cfg = load_config(config)  # a shipped config, or a bench/configs one, by name
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()


def flops_of(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def measure_stream(model, rate: float, minutes: list[float], probe: int):
    """Run one stream; at each checkpoint, time ``probe`` steps and count one step's FLOPs."""
    runner = model.continual()
    dim = model.in_channels
    gen = torch.Generator().manual_seed(0)
    targets = sorted(int(m * 60 * rate) for m in minutes)
    rows = []
    step = 0
    with torch.no_grad():
        for target, label in zip(targets, sorted(minutes)):
            while step < target:
                runner.step(torch.randn(1, dim, generator=gen))
                step += 1
            feats = torch.randn(probe, dim, generator=gen)
            # one full cycle of levels (2**(levels-1) steps) for FLOPs: coarse levels update every 2**l steps
            cycle = 2 ** (runner.num_levels - 1)
            flops = flops_of(lambda: [runner.step(feats[i % probe][None]) for i in range(cycle)]) / cycle
            step += cycle
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(probe):
                runner.step(feats[i][None])
            per_step = (time.process_time() - c0) / probe  # CPU time: robust to other jobs on a shared CPU
            wall = (time.perf_counter() - t0) / probe
            step += probe
            state = sum(b.kv.keys.numel() * 2 for blocks in runner.blocks for b in blocks if b.kv.keys is not None)
            rows.append((label, step, per_step, flops, state, wall))
    return rows


def measure_window(model, window: int, repeats: int):
    x = torch.randn(1, model.in_channels, window)
    masks = torch.ones(1, window, dtype=torch.bool)

    def run():
        with torch.no_grad():
            model(dict(feats=x, masks=masks), mode="tensor")

    flops = flops_of(run)
    run()
    c0 = time.process_time()
    for _ in range(repeats):
        run()
    return (time.process_time() - c0) / repeats, flops


@click.command(help=__doc__)
@click.option("--threads", type=int, default=1, show_default=True, help="torch threads.")
@click.option("--probe", type=int, default=64, show_default=True, help="Steps timed at each checkpoint.")
@click.option("--thumos-minutes", default="1,3", show_default=True, help="Checkpoints of the THUMOS-size stream.")
@click.option("--skip-thumos", is_flag=True, help="Only the demo size.")
def main(threads, probe, thumos_minutes, skip_thumos):
    torch.set_num_threads(threads)
    print(f"stream_cost: CPU {cpu_name()} ({os.cpu_count()} cores, shared with other jobs; load average {os.getloadavg()[0]:.1f}), torch {torch.__version__}, "
          f"{threads} thread(s), float32, batch 1")
    sizes = [("demo", "demo_tiny3d_causal.py", 2.5, [1, 10, 60])]
    if not skip_thumos:
        sizes.append(("thumos", "bench_synth_stpt_causal.py", 7.5, [float(m) for m in thumos_minutes.split(",")]))
    for name, config, rate, minutes in sizes:
        model = build(config)
        window = int(model.max_seq_len)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"\n{name}: {config}, {params:.2f} M params, {rate} steps/s, windows {model.encoder.windows}")
        rows = measure_stream(model, rate, minutes, probe)
        win_s, win_flops = measure_window(model, window, repeats=3 if window > 1000 else 10)
        for label, step, per_step, flops, state, wall in rows:
            print(f"  continual at {label:4g} min (step {step:6d}): {1e3 * per_step:7.2f} ms CPU/step "
                  f"({1e3 * wall:.2f} ms wall), "
                  f"{flops / 1e6:8.2f} MFLOPs/step, attention state {state * 4 / 1024:.0f} KiB")
        mean_flops = sum(r[3] for r in rows) / len(rows)
        mean_time = sum(r[2] for r in rows) / len(rows)
        first, last = rows[0], rows[-1]
        print(f"  flat: time at {last[0]:g} min / at {first[0]:g} min = {last[2] / first[2]:.2f}, FLOPs ratio "
              f"{last[3] / first[3]:.3f}")
        print(f"  sliding-window recompute over {window} steps per new step (baseline): {1e3 * win_s:8.1f} ms CPU/step, "
              f"{win_flops / 1e6:10.1f} MFLOPs/step")
        print(f"  ratio baseline / continual: {win_flops / mean_flops:.0f}x fewer FLOPs, "
              f"{win_s / mean_time:.0f}x less CPU time per step (target >= 10x FLOPs)")


if __name__ == "__main__":
    main()
