"""CAST and the methods it is compared with, on every segmentation set, through one loop."""
from __future__ import annotations

import time
from typing import Any, Callable, Collection, Sequence

import numpy as np
from tqdm import tqdm

from hierseg.imageio import load_image
from training.metrics.scorers import BsdsScorer, CountScorer, Segmentation, counts_of

from .datasets import SegmentationSet
from .methods import Method


def evaluate_segmentation(segmenter: Callable[[np.ndarray], Any], datasets: Sequence[SegmentationSet],
                          baselines: dict[str, Method], limit: int | None,
                          without_ground_truth: Collection[str] = (),
                          without_boundaries: Collection[str] = ()) -> dict[str, dict[str, Any]]:
    """Every method on every data set: results[method][dataset key], and each method's seconds per image.

    The baselines are asked for CAST's per-level segment counts on the same photo. On a set without
    ground truth only CAST and the methods named in ``without_ground_truth`` run (counts and shape).
    Methods named in ``without_boundaries`` get region metrics without boundary F.
    """
    names = ["CAST", *baselines]
    results: dict[str, dict[str, Any]] = {name: {} for name in names}
    seconds = dict.fromkeys(names, 0.0)
    calls = dict.fromkeys(names, 0)
    for ds in datasets:
        running = [n for n in names if ds.has_ground_truth or n == "CAST" or n in without_ground_truth]
        scorers = {name: [CountScorer(), *ds.scorers()] for name in running}
        for name in without_boundaries:
            for scorer in scorers.get(name, []):
                if isinstance(scorer, BsdsScorer):
                    scorer.with_boundaries = False
        for image, gt_path in tqdm(ds.items[:limit], desc=ds.title):
            rgb = load_image(image, max_side=None)
            gt = ds.load_gt(gt_path) if gt_path is not None else None
            t0 = time.perf_counter()
            h = segmenter(rgb)
            seconds["CAST"] += time.perf_counter() - t0
            calls["CAST"] += 1
            outputs = {"CAST": Segmentation(list(h.label_maps), list(h.parents), merge_tree=getattr(h, "merge_tree", None))}
            counts = counts_of(h.label_maps)
            for name in running[1:]:
                t0 = time.perf_counter()
                outputs[name] = baselines[name](rgb, counts)
                seconds[name] += time.perf_counter() - t0
                calls[name] += 1
            for name, seg in outputs.items():
                for scorer in scorers[name]:
                    scorer.add(seg, gt)
        if not ds.items[:limit]:
            continue
        for name in running:
            merged: dict[str, Any] = {}
            for scorer in scorers[name]:
                merged.update(scorer.summary())
            results[name][ds.key] = merged
    for name in names:
        results[name]["seconds_per_image"] = seconds[name] / calls[name] if calls[name] else None
    return results
