"""Write a THUMOS-shaped synthetic feature store (+ its annotation JSON).

The layout (videos, durations, segments, classes) is the real THUMOS14 one; the
features are synthetic with a chosen difficulty (see tad/synthetic_features.py).

\b
Examples:
  # the full-size set: 412 videos, 2048-d I3D-like features (several GB as float16)
  python bench/make_synthetic_thumos.py -o work_dirs/synth/thumos_synth.h5
  # our held-out set, CPU-sized: 256-d, 60 validation + 60 test videos
  python bench/make_synthetic_thumos.py -o work_dirs/synth/heldout.h5 --holdout \\
      --feature-dim 256 --max-videos 60
  # harder, with a 4x4 spatial grid
  python bench/make_synthetic_thumos.py -o work_dirs/synth/grid.h5 --difficulty hard --spatial-grid 4
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ANN = REPO.parent / "shared" / "data" / "thumos14" / "thumos14.json"


@click.command(help=__doc__)
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output feature store (.h5). The annotations go beside it as .json unless --ann-out.")
@click.option("--annotations", "ann_path", default=str(DEFAULT_ANN), show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Layout source (ActionFormer/ActivityNet JSON).")
@click.option("--ann-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the annotation JSON of the generated set.")
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default="medium", show_default=True)
@click.option("--feature-dim", type=int, default=2048, show_default=True)
@click.option("--noise", type=float, default=None, help="Override the preset's noise level.")
@click.option("--confusable-pairs", type=int, default=None, help="Override: class pairs sharing a prototype component.")
@click.option("--soft-boundary", type=float, default=None, help="Override: onset ramp as a fraction of the segment length.")
@click.option("--distractors-per-minute", type=float, default=None, help="Override: unlabelled action-like events.")
@click.option("--style-shift", type=float, default=None, help="Override: per-video offset/gain strength.")
@click.option("--spatial-grid", type=int, default=None, help="Store (T, C, g, g) features with actions at a location.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--holdout", is_flag=True, help="Perturb the layout (jittered segments, remapped classes), different random streams.")
@click.option("--subsets", default="validation,test", show_default=True, help="Comma-separated subsets to generate.")
@click.option("--max-videos", type=int, default=None, help="At most this many videos per subset (first ids).")
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True)
@click.option("--overwrite", is_flag=True)
def main(out_path, ann_path, ann_out, difficulty, feature_dim, noise, confusable_pairs, soft_boundary,
         distractors_per_minute, style_shift, spatial_grid, seed, holdout, subsets, max_videos, dtype, overwrite):
    from tad.errors import TadInputError
    from tad.synthetic_features import load_layout, make_synthetic_store, preset_config, select_videos

    overrides = dict(noise=noise, confusable_pairs=confusable_pairs, soft_boundary=soft_boundary,
                     distractors_per_minute=distractors_per_minute, style_shift=style_shift)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        cfg = preset_config(difficulty, feature_dim=feature_dim, spatial_grid=spatial_grid, seed=seed, **overrides)
        layout = select_videos(load_layout(ann_path), subsets.split(","), max_videos)
        if not layout.videos:
            raise TadInputError(ann_path, f"no videos in subsets {subsets}")
        summary = make_synthetic_store(layout, out_path, cfg, ann_out=ann_out, holdout=holdout,
                                       overwrite=overwrite, store_dtype=dtype, progress=True)
    except TadInputError as exc:
        raise click.ClickException(str(exc)) from None
    print(f"store: {summary.store}\nannotations: {summary.annotations}\n"
          f"videos: {summary.num_videos}  feature steps written: {summary.num_steps}  "
          f"feature_dim: {cfg.feature_dim}  grid: {cfg.spatial_grid}  difficulty: {difficulty}  "
          f"holdout: {holdout}  time: {summary.seconds:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
