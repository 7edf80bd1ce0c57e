"""Region scores of a merge tree read as an ultrametric: cut at a fixed grid of heights, ODS and OIS over it.

The BSDS benchmark scores gPb-owt-ucm by thresholding its ultrametric contour map at the same
thresholds on every image: ODS takes the one threshold best over the data set, OIS the best per image.
A merge tree (``Hierarchy.merge_tree``: scipy-linkage merges with non-decreasing heights, its leaves the
hierarchy's leaf-level nodes) is the same object, so it is scored the same way: every photo's tree is
cut at every height of one grid (:data:`HEIGHTS`, fixed, not fitted to any data), and the cuts go
through the region counts of :func:`.regions.evaluate_region_tables`, the benchmark-checked path.

Heights of hierseg's trees are fractions of the photo's total variance in the merge metric, so one
height means the same on every photo, and the grid spans the whole range from single superpixels
merging (1e-5) to the top merge (above 1 only for trees whose last merges are costlier than the
photo's variance, which the grid still reaches at 10).

Speed: a cut is a union of leaves, so its contingency table with a human segmentation is a sum of
rows of the leaves' table. Each human's leaf table is counted once per photo from the pixels; each of
the grid's cuts then costs a row-sum, not a pass over the pixels.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

from .regions import ImageRegionEval, evaluate_region_tables

LabelMap = NDArray[np.integer]

# 121 heights, 24 per decade from 1e-5 to 10, coarse to fine (the BSDS benchmark reads 99 UCM thresholds).
HEIGHTS: NDArray[np.float64] = np.geomspace(10.0, 1e-5, 121)


class Cuttable(Protocol):
    """What is read of a merge tree: ``cut(height)`` -> segment id of every leaf after every merge at or
    below ``height`` (``hierseg``'s ``MergeTree``)."""

    def cut(self, height: float) -> NDArray[np.integer]: ...


def leaf_tables(leaves: LabelMap, humans: Sequence[LabelMap]) -> list[NDArray[np.int64]]:
    """Per human: pixel counts (leaf id x that human's labels, every label that has pixels)."""
    ids = np.asarray(leaves, np.int64).ravel()
    if ids.min(initial=0) < 0:
        raise ValueError("leaf ids must be >= 0")
    n_leaves = int(ids.max()) + 1
    tables = []
    for human in humans:
        if human.shape != leaves.shape:
            raise ValueError(f"leaf map {leaves.shape} and human segmentation {human.shape} differ in shape")
        _, labels = np.unique(human, return_inverse=True)
        n_labels = int(labels.max()) + 1
        tables.append(np.bincount(ids * n_labels + labels.ravel(), minlength=n_leaves * n_labels).reshape(n_leaves, n_labels))
    return tables


def cut_tables(segment_of_leaf: NDArray[np.integer], tables: Sequence[NDArray[np.int64]]) -> list[NDArray[np.int64]]:
    """Per human: (human labels x segments that have pixels) for a cut given as leaf -> segment id."""
    segment_of_leaf = np.asarray(segment_of_leaf, np.int64)
    n_leaves = tables[0].shape[0]
    if len(segment_of_leaf) < n_leaves:
        raise ValueError(f"the cut labels {len(segment_of_leaf)} leaves, the leaf map has ids up to {n_leaves - 1}")
    segment_of_leaf = segment_of_leaf[:n_leaves]  # leaves with no pixel (lost in a resize) own no row
    out = []
    for table in tables:
        grouped = np.zeros((int(segment_of_leaf.max()) + 1, table.shape[1]), np.int64)
        np.add.at(grouped, segment_of_leaf, table)
        out.append(grouped[grouped.sum(axis=1) > 0].T)
    return out


def evaluate_cuts(leaves: LabelMap, cuts: Sequence[NDArray[np.integer]], humans: Sequence[LabelMap]) -> ImageRegionEval:
    """Covering, PRI and VI of every cut (leaf -> segment id) of ``leaves`` against the humans of one image.

    Equal to ``evaluate_regions([cut[leaves] for cut in cuts], humans)``, without touching the pixels per cut.
    """
    if not humans:
        raise ValueError("need at least one human segmentation")
    tables = leaf_tables(leaves, humans)
    return evaluate_region_tables([cut_tables(cut, tables) for cut in cuts], [float(leaves.size)] * len(cuts))


def evaluate_tree(leaves: LabelMap, tree: Cuttable, humans: Sequence[LabelMap],
                  heights: Sequence[float] = HEIGHTS) -> tuple[ImageRegionEval, NDArray[np.int64]]:
    """The tree cut at every height of ``heights`` (one level per height), and each cut's segment count
    on the photo (leaves without pixels do not count)."""
    cuts = [np.asarray(tree.cut(float(h)), np.int64) for h in heights]
    present = np.unique(np.asarray(leaves, np.int64))
    counts = np.array([len(np.unique(cut[present])) for cut in cuts], np.int64)
    return evaluate_cuts(leaves, cuts, humans), counts
