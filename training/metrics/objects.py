"""Whole objects: is there ONE segment that covers the object (IoU >= 0.7)?

A part-whole explorer is as good as its wholes. For a photo with one annotated object (a Weizmann horse,
the people of a Pascal-Part photo) three questions, each answered by the best IoU with the object's mask:

* ``coarse``: the best segment of the coarsest level, the one the app shows first;
* ``tree``: the best node of the photo's whole merge tree (every segment any cut or click can reach);
  for a method without a merge tree, the best segment of any of its levels;
* ``bound``: the best union of the photo's leaves (superpixels), the most any merge order could give.

A photo counts as whole at a question when that IoU reaches ``threshold``. The best union of leaves is
found exactly: the union maximising IoU = I / (M + A - I) is the set of leaves whose share inside the
mask exceeds some level (Dinkelbach's argument), so it is a prefix of the leaves sorted by that share.
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


def tree_ious(leaves: LabelMap, merges: NDArray[np.integer], mask: Mask) -> NDArray[np.float64]:
    """(n_leaves + m,) IoU with ``mask`` of every node of a merge tree over the leaf ids of ``leaves``
    (scipy-linkage order: merge k joins ``merges[k]`` into node n_leaves + k)."""
    merges = np.asarray(merges, np.int64).reshape(-1, 2)
    n_leaves = max(int(np.asarray(leaves).max()) + 1, len(merges) + 1)
    area, inside = _leaf_counts(leaves, mask, n_leaves)
    area = np.concatenate([area, np.zeros(len(merges))])
    inside = np.concatenate([inside, np.zeros(len(merges))])
    for k, (a, b) in enumerate(merges.tolist()):  # children come before their parent
        area[n_leaves + k] = area[a] + area[b]
        inside[n_leaves + k] = inside[a] + inside[b]
    union = mask.sum() + area - inside
    return np.divide(inside, union, out=np.zeros_like(inside), where=union > 0)


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
    """The three best IoUs of one photo (see the module): ``coarse``, ``tree`` and ``bound``.

    ``label_maps`` coarsest first, the finest holding the leaves; ``merges`` the merge tree over those
    leaves, or None for a method without one (``tree`` is then the best segment of any level).
    """
    if not np.asarray(mask, bool).any():
        raise ValueError("the object mask is empty")
    coarse = float(segment_ious(label_maps[0], mask).max())
    if merges is not None:
        tree = float(tree_ious(label_maps[-1], merges, mask).max())
    else:
        tree = max(float(segment_ious(m, mask).max()) for m in label_maps)
    return {"coarse": coarse, "tree": tree, "bound": best_union_iou(label_maps[-1], mask)}
