"""The segmentation methods compared with CAST, each adapted to one call: (rgb, CAST's counts) -> levels.

SLIC + RAG mean-colour merging cut to CAST's segment counts on the same image (a count SLIC cannot
reach is recorded per level, never silently replaced); Felzenszwalb at five scales (its own counts);
the paper's ViT baseline read out by hierarchical k-means at CAST's counts; and CAST itself after
``Segmenter.refine``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hierseg.refine import NO_TIME_BUDGET
from training.baselines import felzenszwalb_levels, slic_rag_matched
from training.metrics.scorers import Segmentation
from training.metrics.tree import parents_from_nested

FELZENSZWALB_SCALES = (30000.0, 10000.0, 3000.0, 1000.0, 300.0)
SLIC_SUPERPIXELS = 400
# SLIC makes roughly, not exactly, the number of superpixels asked for: ask for some headroom above
# CAST's finest count so that every level can be matched on almost every image.
SLIC_HEADROOM = 1.25

# (rgb, CAST's per-level segment counts on this image) -> levels
Method = Callable[[np.ndarray, Sequence[int]], Segmentation]


def slic_rag_method(rgb: np.ndarray, counts: Sequence[int]) -> Segmentation:
    """SLIC+RAG cut to CAST's counts, one level per CAST level (unreachable counts show in ``counts_of``)."""
    n_superpixels = max(SLIC_SUPERPIXELS, math.ceil(SLIC_HEADROOM * max(counts)))
    matched = slic_rag_matched(rgb, counts, n_superpixels=n_superpixels)
    return Segmentation(matched.label_maps, parents_from_nested(matched.label_maps), list(counts))


def felzenszwalb_method(rgb: np.ndarray, counts: Sequence[int]) -> Segmentation:
    return Segmentation(felzenszwalb_levels(rgb, FELZENSZWALB_SCALES), parents=None)


def vit_method(folder: Path) -> Method:
    """The trained ViT baseline in ``folder`` (``training/vit_baseline.py``), cut to CAST's counts."""
    from training.vit_baseline import load_vit, vit_kmeans_levels

    model = load_vit(folder)

    def method(rgb: np.ndarray, counts: Sequence[int]) -> Segmentation:
        maps = vit_kmeans_levels(model, rgb, list(counts))
        return Segmentation(maps, parents_from_nested(maps), list(counts))

    return method


def refined(segmenter: Any, steps: int) -> Callable[[np.ndarray], Any]:
    """rgb -> the hierarchy after ``steps`` steps of ``Segmenter.refine`` (seed 0, no time budget)."""
    return lambda rgb: segmenter.refine(rgb, steps=steps, seed=0, config=NO_TIME_BUDGET)


def refined_method(segmenter: Any, steps: int) -> Method:
    """CAST after refinement, as a method asked for the unrefined model's counts (a changed count shows)."""
    refine = refined(segmenter, steps)

    def method(rgb: np.ndarray, counts: Sequence[int]) -> Segmentation:
        h = refine(rgb)
        return Segmentation(list(h.label_maps), list(h.parents), list(counts))

    return method
