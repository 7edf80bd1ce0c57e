"""Whole objects: is there ONE segment (or a selection of TWO) that covers the object (IoU >= 0.7)?

A part-whole explorer is as good as its wholes. For a photo with one annotated object (a Weizmann horse,
the people of a Pascal-Part photo) these questions, each answered by the best IoU with the object's mask:

* ``coarse``: the best segment of the coarsest level, the one the app shows first;
* ``levels``: the best segment of any level above the finest (the display levels of a merge tree);
* ``tree``: the best node of the photo's whole merge tree (every segment any cut or click can reach);
  for a method without a merge tree, the best segment of any of its levels;
* ``coarse_2``, ``levels_2``, ``tree_2``: the same candidates, but one segment OR the union of two
  disjoint ones (what a user reaches by adding a second segment to the selection; nested candidates, a
  node and its descendant, are no pair);
* ``bound``: the best union of the photo's leaves (superpixels), the most any merge order could give.

A photo counts as whole at a question when that IoU reaches ``threshold``. The best union of leaves is
found exactly: the union maximising IoU = I / (M + A - I) is the set of leaves whose share inside the
mask exceeds some level (Dinkelbach's argument), so it is a prefix of the leaves sorted by that share.
The best pair is exhaustive over the candidates that touch the object (a candidate wholly outside it
only lowers a union's IoU), one (K, K) array: a few hundred nodes cost a few milliseconds.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import NDArray

LabelMap = NDArray[np.integer]
Mask = NDArray[np.bool_]

WHOLE_IOU = 0.7


def _leaf_counts(leaves: LabelMap, mask: Mask, n: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per leaf id: (pixels, pixels inside the mask)."""
    leaves = np.asarray(leaves, np.int64)
    mask = np.asarray(mask, bool)
    if leaves.shape != mask.shape:
        raise ValueError(f"leaf map {leaves.shape} and mask {mask.shape} differ in shape")
    if leaves.size and leaves.min() < 0:
        raise ValueError("leaf ids must be >= 0")
    n = int(leaves.max()) + 1 if n is None else n
    area = np.bincount(leaves.ravel(), minlength=n).astype(np.float64)
    inside = np.bincount(leaves.ravel(), weights=mask.ravel().astype(np.float64), minlength=n)
    return area, inside


def segment_ious(label_map: LabelMap, mask: Mask) -> NDArray[np.float64]:
    """(k,) IoU with ``mask`` of every segment id 0..k-1 of ``label_map`` (0 for an id without pixels)."""
    area, inside = _leaf_counts(label_map, mask)
    union = mask.sum() + area - inside
    return np.divide(inside, union, out=np.zeros_like(inside), where=union > 0)


def _tree_counts(leaves: LabelMap, merges: NDArray[np.integer], mask: Mask) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per merge-tree node (scipy-linkage order: merge k joins ``merges[k]`` into node n_leaves + k):
    (pixels, pixels inside the mask)."""
    merges = np.asarray(merges, np.int64).reshape(-1, 2)
    n_leaves = max(int(np.asarray(leaves).max()) + 1, len(merges) + 1)
    area, inside = _leaf_counts(leaves, mask, n_leaves)
    area = np.concatenate([area, np.zeros(len(merges))])
    inside = np.concatenate([inside, np.zeros(len(merges))])
    for k, (a, b) in enumerate(merges.tolist()):  # children come before their parent
        area[n_leaves + k] = area[a] + area[b]
        inside[n_leaves + k] = inside[a] + inside[b]
    return area, inside


def tree_ious(leaves: LabelMap, merges: NDArray[np.integer], mask: Mask) -> NDArray[np.float64]:
    """(n_leaves + m,) IoU with ``mask`` of every node of a merge tree over the leaf ids of ``leaves``
    (scipy-linkage order: merge k joins ``merges[k]`` into node n_leaves + k)."""
    area, inside = _tree_counts(leaves, merges, mask)
    union = mask.sum() + area - inside
    return np.divide(inside, union, out=np.zeros_like(inside), where=union > 0)


def nested_nodes(merges: NDArray[np.integer], n_leaves: int) -> NDArray[np.bool_]:
    """(N, N) bool, N = n_leaves + m: True where two merge-tree nodes share pixels, i.e. one is the other or
    lies inside it (in a tree, any two other nodes are disjoint)."""
    merges = np.asarray(merges, np.int64).reshape(-1, 2)
    n = n_leaves + len(merges)
    below = np.zeros((n, n), bool)  # below[p, c]: c is a strict descendant of p
    for k, (a, b) in enumerate(merges.tolist()):
        row = below[n_leaves + k]
        np.logical_or(below[a], below[b], out=row)
        row[a] = row[b] = True
    return below | below.T | np.eye(n, dtype=bool)


def level_overlaps(label_maps: Sequence[LabelMap]) -> NDArray[np.bool_]:
    """(K, K) bool over the segments of all ``label_maps`` (level by level, ids in order): True where two
    segments share a pixel. Levels need not nest."""
    ids = [np.asarray(m, np.int64).ravel() for m in label_maps]
    sizes = [int(i.max()) + 1 for i in ids]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    shared = np.zeros((starts[-1], starts[-1]), bool)
    for p in range(len(ids)):
        shared[starts[p]:starts[p + 1], starts[p]:starts[p + 1]] = np.eye(sizes[p], dtype=bool)
        for q in range(p + 1, len(ids)):
            joint = np.bincount(ids[p] * sizes[q] + ids[q], minlength=sizes[p] * sizes[q]).reshape(sizes[p], sizes[q]) > 0
            shared[starts[p]:starts[p + 1], starts[q]:starts[q + 1]] = joint
            shared[starts[q]:starts[q + 1], starts[p]:starts[p + 1]] = joint.T
    return shared


def best_pair_iou(area: NDArray[np.float64], inside: NDArray[np.float64], mask_area: float,
                  shared: NDArray[np.bool_]) -> float:
    """The best IoU with a mask of ``mask_area`` pixels of one candidate or the union of two disjoint ones:
    ``area``, ``inside`` (K,) each candidate's pixels and pixels inside the mask, ``shared`` (K, K) True
    where two candidates share pixels (no pair)."""
    area, inside = np.asarray(area, np.float64), np.asarray(inside, np.float64)
    touching = inside > 0  # a candidate wholly outside the object only lowers a union's IoU
    if not touching.any():
        return 0.0
    a, i = area[touching], inside[touching]
    best = float(np.max(i / (mask_area + a - i)))
    pair_inside = i[:, None] + i[None, :]
    pair_iou = pair_inside / (mask_area + a[:, None] + a[None, :] - pair_inside)
    pair_iou[shared[np.ix_(touching, touching)]] = 0.0
    return max(best, float(pair_iou.max()))


def _levels_pair_iou(label_maps: Sequence[LabelMap], mask: Mask) -> float:
    counts = [_leaf_counts(m, mask) for m in label_maps]
    area = np.concatenate([c[0] for c in counts])
    inside = np.concatenate([c[1] for c in counts])
    return best_pair_iou(area, inside, float(mask.sum()), level_overlaps(label_maps))


def leaf_inside_share(leaves: LabelMap, mask: Mask, n: int | None = None) -> NDArray[np.float64]:
    """(n,) the share of each leaf's pixels inside ``mask`` (0 for a leaf without pixels)."""
    area, inside = _leaf_counts(leaves, mask, n)
    return np.divide(inside, area, out=np.zeros_like(inside), where=area > 0)


def best_union_iou(leaves: LabelMap, mask: Mask) -> float:
    """The highest IoU with ``mask`` of any union of the leaves of ``leaves`` (exact)."""
    area, inside = _leaf_counts(leaves, mask)
    present = area > 0
    area, inside = area[present], inside[present]
    order = np.argsort(-(inside / area), kind="stable")
    inter = np.cumsum(inside[order])
    union = mask.sum() + np.cumsum(area[order]) - inter
    return float(np.max(inter / union)) if mask.any() else 0.0


def object_ious(label_maps: Sequence[LabelMap], mask: Mask, merges: NDArray[np.integer] | None = None) -> dict[str, float]:
    """The best IoUs of one photo (see the module): ``coarse``, ``levels``, ``tree``, their two-segment
    ``coarse_2``, ``levels_2``, ``tree_2``, and ``bound``.

    ``label_maps`` coarsest first, the finest holding the leaves; ``merges`` the merge tree over those
    leaves, or None for a method without one (``tree`` is then the best segment of any level).
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("the object mask is empty")
    upper = list(label_maps[:-1]) or list(label_maps)  # the levels above the leaves
    out = {"coarse": float(segment_ious(label_maps[0], mask).max()),
           "levels": max(float(segment_ious(m, mask).max()) for m in upper)}
    if merges is not None:
        merges = np.asarray(merges, np.int64).reshape(-1, 2)
        area, inside = _tree_counts(label_maps[-1], merges, mask)
        union = mask.sum() + area - inside
        out["tree"] = float(np.max(np.divide(inside, union, out=np.zeros_like(inside), where=union > 0)))
        out["tree_2"] = best_pair_iou(area, inside, float(mask.sum()), nested_nodes(merges, len(area) - len(merges)))
    else:
        out["tree"] = max(float(segment_ious(m, mask).max()) for m in label_maps)
        out["tree_2"] = _levels_pair_iou(label_maps, mask)
    out["coarse_2"] = _levels_pair_iou(label_maps[:1], mask)
    out["levels_2"] = _levels_pair_iou(upper, mask)
    out["bound"] = best_union_iou(label_maps[-1], mask)
    return out


# The questions ``object_ious`` answers, in reading order.
QUESTIONS = ("coarse", "coarse_2", "levels", "levels_2", "tree", "tree_2", "bound")
