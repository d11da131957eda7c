"""Write a synthetic feature set shaped like a real dataset (+ its annotation JSON).

The layout (videos, durations, segments, classes) is taken from the real annotation file of
the dataset, as it is; the features are synthetic (tad/synthetic_features.py) with the
dataset's clip timing. Shapes are pluggable: a shape is one entry of SHAPES (a Shape with
its annotation file, clip timing, how it picks a CPU-sized subset of videos, and extra
outputs), added with register_shape().

\b
Shapes:
  thumos       THUMOS14: 20 classes, long videos, many short actions; I3D timing (16-frame
               clips every 4 frames at 30 fps); subsets validation / test.
  activitynet  ActivityNet-1.3: 200 classes, minutes-long videos with one or two long actions;
               TSP timing (16-frame clips every 16 frames at 15 fps), class prototypes sharing an
               "action" direction (actionness 0.5, for a class-agnostic detector); subsets training /
               validation; training videos cover the classes round-robin (>= 200 videos: all
               200), validation videos are drawn among those of trained classes. Also
               writes <out>.classifier.json, video-level classifier scores in CUHK's format
               ({"results": {id: [200 scores]}, "class": [...]}): the true class scores
               U(0.6, 1), the others U(0, 0.3), and with --classifier-error the top class is
               a wrong one.

  epic         EPIC-Kitchens-100 (verb task): long videos packed with short, dense actions;
               SlowFast timing (32-frame clips every 16 frames at 30 fps); subsets training /
               validation; from EPIC's official CSVs (default: the real slice in tests/data/epic100).
  multithumos  Multi-THUMOS: 65 classes whose instances overlap in time (multi-label); I3D
               timing; subsets training / testing; from super-events-cvpr18's multithumos.json
               (default: the real slice in tests/data/multithumos).
\b
Examples:
  # ActivityNet-shaped, CPU-sized: 200 training videos (one per class) + 64 validation, 128-d
  python bench/make_synthetic_dataset.py --shape activitynet -o work_dirs/anet_synth/features.h5 \\
      --feature-dim 128 --max-videos 200,64
  tad train activitynet13_tsp.py --cfg-options feature_store=work_dirs/anet_synth/features.h5 \\
      ann_file=work_dirs/anet_synth/features.json model.in_channels=128
  # THUMOS-shaped (as bench/make_synthetic_thumos.py)
  python bench/make_synthetic_dataset.py --shape thumos -o work_dirs/thumos_synth/features.h5 --max-videos 40,40
"""
from __future__ import annotations

import json
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import click
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path:
    """$TAD_SHARED_DIR/data, else the nearest ``shared/data`` beside the checkout or one of its parents."""
    import os

    if os.environ.get("TAD_SHARED_DIR"):
        return Path(os.environ["TAD_SHARED_DIR"]) / "data"
    for parent in REPO.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return REPO.parent / "shared" / "data"


SHARED_DATA = _shared_data()


@dataclass
class Shape:
    """One dataset shape.

    Args:
        annotations: the real annotation file the layout comes from.
        subsets: subsets generated, in the order of --max-videos.
        timing: SyntheticConfig fields of the shape: clip timing (fps, clip_len, clip_stride), actionness.
        select: (layout, max per subset, seed) -> the CPU-sized layout.
        extras: (layout, out_path, seed, options) -> extra files written beside the store.
        difficulty: default difficulty preset.
    """

    annotations: Path
    subsets: tuple[str, ...]
    timing: dict
    select: Callable | None = None
    extras: Callable | None = None
    difficulty: str = "medium"
    options: dict = field(default_factory=dict)
    load: Callable | None = None  # annotation file -> Layout (default: tad's annotation JSON)


SHAPES: dict[str, Shape] = {}


def register_shape(name: str, shape: Shape) -> Shape:
    SHAPES[name] = shape
    return shape


# ------------------------------------------------------------------ selection helpers
def select_sorted(layout, max_per_subset: list[int | None], subsets: tuple[str, ...], seed: int):
    """The first ids (sorted) of each subset."""
    from tad.synthetic_features import Layout, select_videos

    videos = {}
    for subset, count in zip(subsets, max_per_subset):
        videos.update(select_videos(layout, [subset], count).videos)
    return Layout(list(layout.classes), videos)


def select_shared_classes(layout, max_per_subset: list[int | None], subsets: tuple[str, ...], seed: int):
    """Training videos (first subset) picked round-robin over every class, so that with at least
    as many videos as classes every class is trained on (and named in the annotation file);
    evaluation videos (second subset) drawn at random among those whose classes are all trained."""
    from tad.synthetic_features import Layout

    rng = np.random.default_rng(seed)
    train_name, eval_name = subsets
    n_train, n_eval = max_per_subset
    by_subset = {s: sorted(v for v, x in layout.videos.items() if x.subset.lower() == s and len(x.labels))
                 for s in subsets}
    classes = sorted({int(k) for v in by_subset[train_name] for k in layout.videos[v].labels})
    pools = {c: [v for v in by_subset[train_name] if c in set(layout.videos[v].labels.tolist())] for c in classes}
    for c in classes:
        rng.shuffle(pools[c])
    train_ids, used = [], set()
    limit = n_train if n_train else len(by_subset[train_name])
    while len(train_ids) < limit and any(pools.values()):
        for c in classes:
            while pools[c] and pools[c][-1] in used:
                pools[c].pop()
            if pools[c] and len(train_ids) < limit:
                vid = str(pools[c].pop())
                used.add(vid)
                train_ids.append(vid)
    trained = {int(k) for v in train_ids for k in layout.videos[v].labels}
    candidates = [str(v) for v in rng.permutation(by_subset[eval_name])
                  if set(layout.videos[str(v)].labels.tolist()) <= trained]
    eval_ids = candidates[:n_eval] if n_eval else candidates
    return Layout(list(layout.classes), {v: layout.videos[v] for v in sorted(train_ids + eval_ids)})


def write_classifier_scores(layout, out_path: Path, seed: int, options: dict) -> Path:
    """Video-level scores in CUHK's format for every video of the layout (see the shapes above)."""
    error = float(options.get("classifier_error", 0.1))
    results = {}
    for vid in sorted(layout.videos):
        rng = np.random.default_rng([seed, zlib.crc32(vid.encode()), 0xC1A5])
        scores = rng.uniform(0.0, 0.3, len(layout.classes))
        for k in set(layout.videos[vid].labels.tolist()):
            scores[k] = rng.uniform(0.6, 1.0)
        if rng.random() < error:
            scores[int(rng.integers(len(layout.classes)))] = 1.05  # a confident wrong class
        results[vid] = [round(float(x), 4) for x in scores]
    path = out_path.with_suffix(".classifier.json")
    path.write_text(json.dumps({"results": results, "class": list(layout.classes)}))
    return path


register_shape("thumos", Shape(
    annotations=SHARED_DATA / "thumos14" / "thumos14.json", subsets=("validation", "test"),
    timing=dict(fps=30.0, clip_len=16, clip_stride=4), select=select_sorted))
register_shape("activitynet", Shape(
    annotations=SHARED_DATA / "activitynet" / "activitynet13.json", subsets=("training", "validation"),
    timing=dict(fps=15.0, clip_len=16, clip_stride=16, actionness=0.5), select=select_shared_classes,
    extras=write_classifier_scores))


# EPIC-Kitchens-100 and Multi-THUMOS: their official files (EPIC's CSVs, super-events' JSON) are read
# through `tad convert-annotations`' converter (EPIC: verb task; the validation CSV beside a train CSV
# is read too), or give the converted JSON. Defaults: the real slices under tests/data (the full
# files are not shipped).
def _load_converted(path: Path, **kwargs):
    from tad.datasets.annotation_convert import convert_annotations
    from tad.synthetic_features import layout_from_annotations
    from tad.eval.annotations import load_annotations

    path = Path(path)
    if path.suffix == ".json" and "database" in path.read_text()[:4096]:
        return layout_from_annotations(load_annotations(path))
    sources = [path]
    sibling = path.with_name(path.name.replace("train", "validation"))
    if path.suffix == ".csv" and sibling != path and sibling.is_file():
        sources.append(sibling)
    result = convert_annotations(sources, **kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        converted = Path(tmp) / "converted.json"
        converted.write_text(json.dumps(result.data))
        return layout_from_annotations(load_annotations(converted))


_TESTS_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
register_shape("epic", Shape(
    annotations=_TESTS_DATA / "epic100" / "EPIC_100_train_slice.csv", subsets=("training", "validation"),
    timing=dict(fps=30.0, clip_len=32, clip_stride=16), select=select_sorted,
    load=lambda path: _load_converted(path, task="verb")))
register_shape("multithumos", Shape(
    annotations=_TESTS_DATA / "multithumos" / "multithumos_slice.json", subsets=("training", "testing"),
    timing=dict(fps=30.0, clip_len=16, clip_stride=4), select=select_sorted, load=_load_converted))


def make_dataset(shape_name: str, out_path: Path, feature_dim: int = 512, max_videos: list[int | None] | None = None,
                 difficulty: str | None = None, seed: int = 0, annotations: Path | None = None,
                 overwrite: bool = False, dtype: str = "float16", progress: bool = False,
                 options: dict | None = None) -> dict:
    """Generate one shape; returns the paths written and the counts (also the script's output)."""
    from tad.errors import TadInputError
    from tad.synthetic_features import load_layout, make_synthetic_store, preset_config

    if shape_name not in SHAPES:
        raise TadInputError("--shape", f"unknown shape {shape_name!r} (choose from {', '.join(sorted(SHAPES))})")
    shape = SHAPES[shape_name]
    ann_path = Path(annotations) if annotations else shape.annotations
    if not ann_path.is_file():
        raise TadInputError(ann_path, "annotation file not found (give --annotations)")
    counts = list(max_videos or [None] * len(shape.subsets))
    counts += [None] * (len(shape.subsets) - len(counts))
    layout = (shape.load or load_layout)(ann_path)
    layout = (shape.select or select_sorted)(layout, counts, shape.subsets, seed)
    if not layout.videos:
        raise TadInputError(ann_path, f"no videos in subsets {', '.join(shape.subsets)}")
    cfg = preset_config(difficulty or shape.difficulty, feature_dim=feature_dim, seed=seed, **shape.timing)
    summary = make_synthetic_store(layout, out_path, cfg, overwrite=overwrite, store_dtype=dtype, progress=progress)
    out = dict(store=str(summary.store), annotations=str(summary.annotations), videos=summary.num_videos,
               steps=summary.num_steps, seconds=round(summary.seconds, 1),
               per_subset={s: sum(v.subset.lower() == s for v in layout.videos.values()) for s in shape.subsets},
               classes=len({int(k) for v in layout.videos.values() for k in v.labels}))
    if shape.extras is not None:
        out["extra"] = str(shape.extras(layout, Path(out_path), seed, {**shape.options, **(options or {})}))
    return out


@click.command(help=__doc__)
@click.option("--shape", "shape_name", required=True, type=click.Choice(sorted(SHAPES)), help="Dataset shape.")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output feature store (.h5); the annotations go beside it as .json.")
@click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The real annotation file (default: the shape's, under ../shared/data).")
@click.option("--feature-dim", type=int, default=512, show_default=True)
@click.option("--max-videos", default=None, help="Videos per subset, comma-separated in the shape's subset order.")
@click.option("--difficulty", type=click.Choice(["easy", "medium", "hard"]), default=None)
@click.option("--classifier-error", type=float, default=0.1, show_default=True,
              help="activitynet: fraction of videos whose classifier top class is wrong.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True)
@click.option("--overwrite", is_flag=True)
def main(shape_name, out_path, annotations, feature_dim, max_videos, difficulty, classifier_error, seed, dtype,
         overwrite):
    from tad.errors import TadInputError

    counts = [int(x) if x.strip() else None for x in max_videos.split(",")] if max_videos else None
    try:
        out = make_dataset(shape_name, out_path, feature_dim, counts, difficulty, seed, annotations, overwrite,
                           dtype, progress=True, options=dict(classifier_error=classifier_error))
    except TadInputError as exc:
        raise click.ClickException(str(exc)) from None
    for key, value in out.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    sys.exit(main())
