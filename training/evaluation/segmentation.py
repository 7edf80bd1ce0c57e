"""CAST and the methods it is compared with, on every segmentation set, through one loop."""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from hierseg.imageio import load_image
from training.metrics.scorers import CountScorer, Segmentation, counts_of

from .datasets import SegmentationSet
from .methods import Method


def evaluate_segmentation(segmenter: Callable[[np.ndarray], Any], datasets: Sequence[SegmentationSet],
                          baselines: dict[str, Method], limit: int | None) -> dict[str, dict[str, Any]]:
    """Every method on every data set: results[method][dataset key], and each method's seconds per image.

    The baselines are asked for CAST's per-level segment counts on the same photo.
    """
    names = ["CAST", *baselines]
    results: dict[str, dict[str, Any]] = {name: {} for name in names}
    seconds = dict.fromkeys(names, 0.0)
    images = 0
    for ds in datasets:
        scorers = {name: [CountScorer(), *ds.scorers()] for name in names}
        for image, gt_path in tqdm(ds.items[:limit], desc=ds.title):
            rgb, gt = load_image(image, max_side=None), ds.load_gt(gt_path)
            t0 = time.perf_counter()
            h = segmenter(rgb)
            seconds["CAST"] += time.perf_counter() - t0
            outputs = {"CAST": Segmentation(list(h.label_maps), list(h.parents))}
            counts = counts_of(h.label_maps)
            for name, method in baselines.items():
                t0 = time.perf_counter()
                outputs[name] = method(rgb, counts)
                seconds[name] += time.perf_counter() - t0
            for name, seg in outputs.items():
                for scorer in scorers[name]:
                    scorer.add(seg, gt)
            images += 1
        if not ds.items[:limit]:
            continue
        for name in names:
            merged: dict[str, Any] = {}
            for scorer in scorers[name]:
                merged.update(scorer.summary())
            results[name][ds.key] = merged
    for name in names:
        results[name]["seconds_per_image"] = seconds[name] / images if images else None
    return results
