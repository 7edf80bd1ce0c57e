"""Hard part-whole readout: the soft assignments of one image -> a canonical ``Hierarchy``.

As the official notebooks do (twke18/CAST ``notebooks/save_segmentation_cast.ipynb``), each token
joins the cluster of its largest assignment logit, and the levels are composed upward:
level 2 of a superpixel is ``a_1[a_0[s]]``. This module is the one place that composes levels and
renumbers them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..hierarchy import Hierarchy
from ..labels import count_compact_ids, first_pixels
from ..tree_checks import int_array

if TYPE_CHECKING:
    import torch

__all__ = ["compose", "hierarchy_from_assignments", "level_assignments"]


def level_assignments(assignment_logits: list[torch.Tensor], num_superpixels: int) -> list[np.ndarray]:
    """Argmax assignments of one image, finest first, as int64 arrays.

    assignment_logits: L tensors (N_l, K_l) of one image. Entry 0 maps every superpixel id to a level-1
    cluster. Superpixel ids past the last token (they vanished from the feature grid and the batch
    had no larger id) take the last token's cluster, as the official export notebook does.
    """
    assignments = [logits.argmax(dim=-1).cpu().numpy().astype(np.int64) for logits in assignment_logits]
    first = assignments[0]
    if len(first) < num_superpixels:
        first = np.concatenate([first, np.full(num_superpixels - len(first), first[-1], dtype=np.int64)])
    assignments[0] = first[:num_superpixels]
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


def hierarchy_from_assignments(
    superpixels: np.ndarray,
    assignments: Sequence[np.ndarray],
    evidence: Sequence[np.ndarray],
    class_names: Sequence[str],
    prediction: np.ndarray,
    meta: dict[str, Any] | None = None,
) -> Hierarchy:
    """The tree of one image from the argmax assignments of each pooling level.

    Args:
        superpixels: (H, W) int map with ids ``0..S-1``, every id present.
        assignments: finest first. ``assignments[0]`` (length S) maps a superpixel to its raw
            level-1 cluster; ``assignments[j]`` (length K_j) maps a raw level-j cluster to its raw
            level-(j+1) cluster.
        evidence: finest first, one more entry than ``assignments``: ``evidence[0]`` is (S, C)
            per superpixel and ``evidence[j]`` is (K_j, C) per raw level-j cluster.
        class_names: C names.
        prediction: (C,) image-level distribution.
        meta: JSON-able metadata, stored read-only.

    Clusters that no superpixel composes into are dropped. Ids are then renumbered so that the
    result depends only on the segmentation: level-0 nodes are ordered by the raster (row-major)
    position of their first pixel, and the nodes of every finer level, superpixels included, by
    (parent id, first pixel), so the children of a node have contiguous ids. The result lists
    levels coarsest first; ``superpixel_ids`` maps each leaf back to its input superpixel id.

    Raises:
        ValueError: on inconsistent shapes or out-of-range ids.
    """
    superpixels = int_array(superpixels, "superpixels", ndim=2)
    n_superpixels = count_compact_ids(superpixels, "superpixels")
    if len(evidence) != len(assignments) + 1:
        raise ValueError(
            f"evidence needs one entry per level, superpixels included: {len(assignments) + 1}, got {len(evidence)}"
        )
    n_classes = len(class_names)
    sizes = [n_superpixels] + [len(rows) for rows in evidence[1:]]
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

    raw = [np.arange(n_superpixels), *compose(links)]  # raw[j]: each superpixel's raw level-j node
    n_pixels = superpixels.size
    superpixel_first = first_pixels(superpixels, n_superpixels)
    # j counts raw levels finest first (0 = superpixels); the output is built coarsest first,
    # because a node's new id depends on its parent's.
    top = len(links)
    new_ids: list[np.ndarray] = [np.empty(0, np.int32)] * (top + 1)
    label_maps, parents, rows = [], [], []
    for j in range(top, -1, -1):
        first = np.full(sizes[j], n_pixels, np.int64)
        np.minimum.at(first, raw[j], superpixel_first)
        used = np.flatnonzero(first < n_pixels)
        if j == top:
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
    # ``order`` now lists, per new leaf id, the input superpixel id.
    return Hierarchy(label_maps, parents, rows, class_names, prediction, meta, superpixel_ids=order)
