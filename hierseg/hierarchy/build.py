"""Hard part-whole readout: the argmax assignments of one image -> the canonical fields of its tree.

As the official notebooks do (twke18/CAST ``notebooks/save_segmentation_cast.ipynb``), each token
joins the cluster of its largest assignment logit, and the levels are composed upward: level 2 of a
superpixel is ``a_1[a_0[s]]``. This module is the one place that composes levels, pads the
superpixel rows and renumbers nodes; ``Hierarchy.from_assignments`` wraps its result, and a merge tree's display levels
(``cut_merge_tree``) come out through it too. Numpy only.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from ..labels import first_pixels
from .checks import int_array
from .merge_tree import MergeTree, display_levels

__all__ = ["CanonicalTree", "canonical_tree", "compose", "cut_merge_tree", "level_assignments", "rows_per_superpixel"]


class CanonicalTree(NamedTuple):
    """The fields of a ``Hierarchy``, coarsest level first (see ``canonical_tree``)."""

    label_maps: list[np.ndarray]
    parents: list[np.ndarray]
    evidence: list[np.ndarray]
    superpixel_ids: np.ndarray
    raw_ids: list[np.ndarray]  # per level, coarsest first: the raw id of every node (the leaves': superpixel_ids)


def rows_per_superpixel(rows: np.ndarray, num_superpixels: int) -> np.ndarray:
    """One entry per superpixel id from one entry per level-1 token (1-D or 2-D ``rows``).

    Superpixel ids past the last token (they vanished from the feature grid and the batch had no
    larger id) take the last token's entry, as the official export notebook does; tokens past the
    image's own superpixels (batch padding) are cut. Assignments and class evidence both use this rule.
    """
    rows = np.asarray(rows)
    if len(rows) < num_superpixels:
        rows = np.concatenate([rows, np.repeat(rows[-1:], num_superpixels - len(rows), axis=0)])
    return rows[:num_superpixels]


def level_assignments(assignment_logits: Sequence[np.ndarray], num_superpixels: int) -> list[np.ndarray]:
    """Argmax assignments of one image, finest first, as int64 arrays.

    assignment_logits: L arrays (N_l, K_l) of one image. Entry 0 maps every superpixel id to a
    level-1 cluster, padded by ``rows_per_superpixel``.
    """
    assignments = [np.asarray(logits).argmax(axis=-1).astype(np.int64) for logits in assignment_logits]
    assignments[0] = rows_per_superpixel(assignments[0], num_superpixels)
    return assignments


def compose(assignments: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Raw cluster id of every superpixel at every pooled level, finest first.

    ``assignments[0]`` maps superpixels to level-1 clusters and ``assignments[j]`` level-j clusters
    to level-(j+1) ones; entry j of the result maps each superpixel to its level-(j+1) cluster.
    Indexing an entry with a superpixel map gives the official composed label map of that level.
    """
    composed: list[np.ndarray] = []
    for assignment in assignments:
        composed.append(np.asarray(assignment) if not composed else np.asarray(assignment)[composed[-1]])
    return composed


def canonical_tree(
    superpixels: np.ndarray,
    assignments: Sequence[np.ndarray],
    evidence: Sequence[np.ndarray],
    n_classes: int,
    keep_leaf_ids: bool = False,
) -> CanonicalTree:
    """The tree of one image from the argmax assignments of each pooling level.

    Args:
        superpixels: (H, W) int map with ids in ``0..S-1``, S = ``len(evidence[0])``.
        assignments: finest first. ``assignments[0]`` (length S) maps a superpixel to its raw
            level-1 cluster; ``assignments[j]`` (length K_j) maps a raw level-j cluster to its raw
            level-(j+1) cluster.
        evidence: finest first, one more entry than ``assignments``: ``evidence[0]`` is (S, C)
            per superpixel and ``evidence[j]`` is (K_j, C) per raw level-j cluster.
        n_classes: C.

    Nodes without pixels are dropped at every level: clusters that no superpixel composes into,
    and superpixel ids absent from the map (a photo smaller than the model's view can lose some in
    the resize back). Ids are then renumbered so that the result depends only on the segmentation:
    level-0 nodes are ordered by the raster (row-major) position of their first pixel, and the
    nodes of every finer level, superpixels included, by (parent id, first pixel), so the children
    of a node have contiguous ids. With ``keep_leaf_ids`` the superpixel ids stay the leaf ids (every
    id must be in the map): a re-cut of a tree keeps naming its leaves as before. Levels come coarsest
    first; ``superpixel_ids`` maps each leaf back to its id in ``superpixels``, ``raw_ids`` every node
    of every level to its raw id.

    Raises:
        ValueError: on inconsistent shapes or out-of-range ids.
    """
    superpixels = int_array(superpixels, "superpixels", ndim=2)
    if len(evidence) != len(assignments) + 1:
        raise ValueError(
            f"evidence needs one entry per level, superpixels included: {len(assignments) + 1}, got {len(evidence)}"
        )
    sizes = [len(rows) for rows in evidence]
    if superpixels.size == 0 or superpixels.min() < 0 or superpixels.max() >= sizes[0]:
        raise ValueError(
            f"superpixels must be a non-empty map of ids in 0..{sizes[0] - 1}: every id needs its row in evidence[0]"
        )
    for j, rows in enumerate(evidence):
        if np.ndim(rows) != 2 or np.shape(rows) != (sizes[j], n_classes):
            raise ValueError(f"evidence[{j}] must have shape ({sizes[j]}, {n_classes}), got {np.shape(rows)}")
    links = []
    for j, assignment in enumerate(assignments):
        assignment = int_array(assignment, f"assignments[{j}]", ndim=1)
        if len(assignment) != sizes[j]:
            raise ValueError(f"assignments[{j}] has length {len(assignment)}, level {j} has {sizes[j]} nodes")
        if assignment.min() < 0 or assignment.max() >= sizes[j + 1]:
            raise ValueError(
                f"assignments[{j}] has cluster ids outside 0..{sizes[j + 1] - 1} "
                f"(the number of rows of evidence[{j + 1}])"
            )
        links.append(assignment)

    raw = [np.arange(sizes[0]), *compose(links)]  # raw[j]: each superpixel's raw level-j node
    n_pixels = superpixels.size
    superpixel_first = first_pixels(superpixels, sizes[0])  # n_pixels for ids absent from the map
    # j counts raw levels finest first (0 = superpixels); the output is built coarsest first,
    # because a node's new id depends on its parent's.
    top = len(links)
    new_ids: list[np.ndarray] = [np.empty(0, np.int32)] * (top + 1)
    label_maps, parents, rows, raw_ids = [], [], [], []
    for j in range(top, -1, -1):
        first = np.full(sizes[j], n_pixels, np.int64)
        np.minimum.at(first, raw[j], superpixel_first)
        used = np.flatnonzero(first < n_pixels)
        if j == 0 and keep_leaf_ids:
            if len(used) != sizes[0]:
                raise ValueError("keep_leaf_ids needs every superpixel id in the map")
            order = used
            parents.append(new_ids[1][links[0]] if top else np.zeros(0, np.int32))
        elif j == top:
            order = used[np.argsort(first[used])]
            parents.append(np.zeros(0, np.int32))
        else:
            parent_of_used = new_ids[j + 1][links[j][used]]
            order = used[np.lexsort((first[used], parent_of_used))]
            parents.append(new_ids[j + 1][links[j][order]])
        new_ids[j] = np.full(sizes[j], -1, np.int32)
        new_ids[j][order] = np.arange(len(order))
        label_maps.append(new_ids[j][raw[j]][superpixels])
        rows.append(np.asarray(evidence[j])[order])
        raw_ids.append(order)
    # ``order`` now lists, per new leaf id, the input superpixel id.
    return CanonicalTree(label_maps, parents, rows, order, raw_ids)


def cut_merge_tree(superpixels: np.ndarray, tree: MergeTree, heights: Sequence[float], min_segments: int,
                   split_chains: bool, node_evidence: np.ndarray, keep_leaf_ids: bool = False) -> CanonicalTree:
    """The display levels of a merge tree (``merge_tree.display_levels``) as a canonical tree.

    Args:
        superpixels: (H, W) map of the tree's leaf ids, every id ``0..tree.n_leaves-1`` present.
        heights, min_segments, split_chains: the cut (``display_levels``).
        node_evidence: (tree.n_nodes, C) one row per merge-tree node, leaves first.
        keep_leaf_ids: as ``canonical_tree``'s.

    The raw ids of the merged levels are merge-tree node ids (``raw_ids`` names every display node's
    merge node), so nodes are renumbered and their rows picked by the same rules as a ladder's clusters.
    """
    levels = display_levels(tree, heights, min_segments, split_chains)
    assignments = [levels[-1]]
    for coarse, fine in zip(levels[-2::-1], levels[::-1]):  # finest first: each level's nodes -> the next coarser
        link = np.zeros(tree.n_nodes, np.int64)
        link[fine] = coarse
        assignments.append(link)
    evidence = [node_evidence[: tree.n_leaves], *[node_evidence] * len(levels)]
    return canonical_tree(superpixels, assignments, evidence, node_evidence.shape[1], keep_leaf_ids)
