"""Raw videos -> action segments with a trained detector (what ``tad detect`` runs).

Features are extracted with the config's ``extract=dict(...)`` settings into a
``MemorySink`` (no temporary HDF5 file), the detector runs on each video's features,
and the segments are written as ActivityNet-style JSON. ``features_out`` also keeps
the features in an HDF5 store.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tad.errors import TadInputError

__all__ = ["check_config_options", "class_names", "detector_extract_options", "predict_features", "run_detect", "video_root"]


def video_root(paths: Sequence[Path]) -> Path:
    """The deepest folder holding every video; video ids are paths relative to it."""
    parents = [str(Path(p).resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents))


def class_names(cfg, ckpt_classes) -> list[str]:
    """Class names in model order: the checkpoint's, else ``cfg.classes``, else the annotation file's."""
    if ckpt_classes:
        return list(ckpt_classes)
    if cfg.get("classes"):
        return list(cfg.classes)
    ann_file = cfg.get("ann_file")
    if ann_file and Path(ann_file).is_file():
        from tad.eval.annotations import load_annotations

        return list(load_annotations(ann_file).classes)
    raise TadInputError(cfg.filename or "config", "class names unknown: the checkpoint has none, and neither "
                        "cfg.classes nor ann_file gives them (set --cfg-options classes=\"['a','b']\")")


def detector_extract_options(cfg, config_name, **overrides):
    """``ExtractOptions`` from the config's ``extract=dict(...)`` plus ``overrides`` (one-line errors)."""
    from tad.features.extract import ExtractOptions

    extract_cfg = cfg.get("extract")
    if not extract_cfg:
        raise TadInputError(cfg.filename or config_name, "the config has no extract=dict(...) (its features were "
                            "not made by `tad extract`), so the features cannot be computed from video")
    options = dict(extract_cfg)
    options.update(overrides)
    try:
        return ExtractOptions(**options)
    except TypeError as exc:
        raise TadInputError(cfg.filename or config_name, f"bad extract=dict(...) in the config: {exc}") from exc


def check_config_options(opts, cfg, config_name) -> None:
    """``check_options`` naming the config key (``extract.clip_len: ...``) when the bad value came from the config."""
    from tad.features.extract import OPTION_FLAGS, check_options

    try:
        check_options(opts)
    except TadInputError as exc:
        key = {flag: key for key, flag in OPTION_FLAGS.items()}.get(exc.path)
        if key in (cfg.get("extract") or {}) and key not in ("batch_size", "workers"):
            raise TadInputError(cfg.filename or config_name, f"extract.{key}: {exc.problem}") from None
        raise


def predict_features(model, videos: dict, classes: Sequence[str], progress: bool = False) -> dict[str, list[dict]]:
    """Run ``model`` on in-memory features ``{vid: VideoFeatures}``; ActivityNet-style results per video."""
    import torch
    from tqdm import tqdm

    device = next(model.parameters()).device
    results: dict[str, list[dict]] = {}
    model.eval()
    with torch.no_grad():
        for vid in tqdm(sorted(videos), desc="inference", unit="video", disable=not progress, leave=False):
            video = videos[vid]
            feats = np.asarray(video.features, dtype=np.float32)
            if not np.isfinite(feats).all():
                raise TadInputError(vid, "features contain NaN/inf values")
            timestamps = np.asarray(video.timestamps, dtype=np.float64)
            x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(feats, 0, 1)))[None].to(device)  # (1, C, T[, g, g])
            masks = torch.ones(1, x.shape[2], dtype=torch.bool, device=device)
            sample = dict(video_id=vid, timestamps=timestamps,
                          duration=float(video.attrs.get("duration", timestamps[-1])))
            out = model.test_step(dict(inputs=dict(feats=x, masks=masks), data_samples=[sample]))[0]
            order = torch.argsort(out["scores"].float().cpu(), descending=True)
            segments = out["segments"].float().cpu()[order].tolist()
            scores = out["scores"].float().cpu()[order].tolist()
            labels = out["labels"].cpu()[order].tolist()
            results[vid] = [dict(label=classes[label], score=float(score), segment=[float(s[0]), float(s[1])])
                            for s, score, label in zip(segments, scores, labels)]
    return results


def run_detect(config, videos, checkpoint, backbone_checkpoint=None, random_init=False, out="preds.json",
               features_out=None, cfg_options=(), device=None, batch_size=8, workers=2, progress=True,
               trust_checkpoint=False, classifier_scores=None, classifier_top_k=None, warn=None):
    """The whole of ``tad detect``; returns (predictions, extraction summary). The detector
    checkpoint is read weights-only unless ``trust_checkpoint``. A class-agnostic model's
    segments are fused with ``classifier_scores`` (CUHK JSON); fusion notes go to ``warn``.

    Whole-video configs (dataset ``strategy='window'``) run on the in-memory features; the
    ``'resize'`` and ``'sliding'`` strategies go through the config's test dataset, over a
    temporary store, so the features reach the model exactly as in ``tad eval``."""
    import tempfile

    from tad.engine.inference import build_test_dataset, fuse_classifier_scores, load_detector, predict_dataset
    from tad.engine.runner import load_config, select_device
    from tad.eval.results import write_predictions
    from tad.features.extract import extract_videos
    from tad.features.feature_sinks import MemorySink
    from tad.output_guard import refuse_output_over_inputs

    paths = [Path(v) for v in videos]
    refuse_output_over_inputs({"-o": out, "--features-out": features_out},
                              {"VIDEOS": paths, "--config": config, "--checkpoint": checkpoint,
                               "--backbone-checkpoint": backbone_checkpoint,
                               "--classifier-scores": classifier_scores})
    cfg = load_config(config, list(cfg_options))
    opts = detector_extract_options(cfg, config)
    for p in paths:
        if not p.is_file():
            raise TadInputError(p, "video not found")
    if backbone_checkpoint is None and not random_init:
        raise TadInputError("--backbone-checkpoint", "no backbone checkpoint given; pass --backbone-checkpoint CKPT, "
                            "or --random-init to extract with untrained (seeded) weights")
    device = select_device(device)
    model, ckpt_classes = load_detector(cfg, checkpoint, device, trust_checkpoint=trust_checkpoint)
    classes = class_names(cfg, ckpt_classes)

    opts.checkpoint, opts.random_init, opts.device = backbone_checkpoint, random_init, device
    opts.batch_size, opts.workers = batch_size, workers
    check_config_options(opts, cfg, config)
    sink = MemorySink()
    summary = extract_videos([str(p) for p in paths], str(video_root(paths)), None, opts, progress=progress,
                             sink=sink)
    if not summary.done and not summary.skipped:  # name the video(s)
        if len(summary.failed) == 1:
            path, reason = next(iter(summary.failed.items()))
            raise TadInputError(path, reason)
        raise TadInputError("VIDEOS", f"none of the {len(paths)} videos could be read (listed above)")
    if features_out:
        _write_store(sink, features_out, opts)
    strategy = (cfg.test_dataloader.get("dataset") or {}).get("strategy", "window")
    agnostic = False
    if strategy == "window":
        predictions = predict_features(model, sink.videos, classes, progress=progress)
        agnostic = bool(cfg.get("class_agnostic") or (cfg.test_dataloader.get("dataset") or {}).get("class_agnostic"))
    else:
        with tempfile.TemporaryDirectory(prefix="tad_detect_") as tmp:
            store = features_out or os.path.join(tmp, "features.h5")
            if not features_out:
                _write_store(sink, store, opts)
            dataset = build_test_dataset(cfg, subset=None, classes=classes, ann_file=None, feature_store=str(store))
            predictions = predict_dataset(model, dataset, dataset.classes, batch_size=1, num_workers=0,
                                          progress=progress)
            agnostic = bool(getattr(dataset, "class_agnostic", False))
    predictions, notes = fuse_classifier_scores(cfg, predictions, classifier_scores, classifier_top_k, agnostic)
    for note in notes:
        if warn is not None:
            warn(note)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_predictions(out, predictions)
    return predictions, summary


def _write_store(sink, path, opts) -> None:
    from tad.features.store_writer import FeatureStoreWriter

    writer = FeatureStoreWriter(path, meta=sink.meta, overwrite=opts.overwrite, dtype=opts.store_dtype,
                                compression=opts.compression)
    for vid, video in sink.videos.items():
        writer.write_video(vid, video.features, video.timestamps, video.attrs)
    for key, reason in sink.failed.items():
        writer.mark_failed(key, reason)
    writer.finalize()
