"""Majority-label mIoU: part / object discovery scored without training a classifier on the segments."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import NDArray

LabelMap = NDArray[np.integer]


def majority_label_confusion(
    label_map: LabelMap, gt: LabelMap, n_classes: int, ignore_index: int | None = None
) -> NDArray[np.int64]:
    """``n_classes x n_classes`` pixel counts (gt class, predicted class) after majority labelling.

    Every segment of ``label_map`` is assigned the ground-truth class most frequent among its pixels
    (smallest class on ties); pixels whose gt is ``ignore_index`` neither vote nor count.
    """
    if label_map.shape != gt.shape:
        raise ValueError(f"label map {label_map.shape} and ground truth {gt.shape} differ in shape")
    keep = np.ones(gt.shape, bool) if ignore_index is None else gt != ignore_index
    g = gt[keep].astype(np.int64)
    if g.size and (g.min() < 0 or g.max() >= n_classes):
        raise ValueError(f"ground-truth labels must lie in 0..{n_classes - 1} (or be ignore_index)")
    _, seg = np.unique(label_map[keep], return_inverse=True)
    votes = np.bincount(seg * n_classes + g, minlength=(int(seg.max(initial=-1)) + 1) * n_classes)
    predicted = votes.reshape(-1, n_classes).argmax(axis=1)[seg]
    return np.bincount(g * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def miou_from_confusion(confusion: NDArray[np.int64]) -> float:
    """Mean IoU over the classes that occur in the ground truth (rows of ``confusion`` with pixels)."""
    inter = np.diag(confusion).astype(float)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - inter
    present = confusion.sum(axis=1) > 0
    return float((inter[present] / union[present]).mean())


def majority_label_miou(
    label_map: LabelMap | Sequence[LabelMap],
    gt: LabelMap | Sequence[LabelMap],
    n_classes: int,
    ignore_index: int | None = None,
) -> float:
    """Part/object discovery score of one level: majority labelling, then mean IoU.

    Pass one image or equal-length sequences of images. Over a data set, intersections and unions are
    summed over all images before the per-class ratio (the usual data-set mIoU, not a mean of
    per-image mIoUs); the mean runs over classes present in the ground truth of at least one image.
    """
    maps = [label_map] if isinstance(label_map, np.ndarray) else list(label_map)
    gts = [gt] if isinstance(gt, np.ndarray) else list(gt)
    if len(maps) != len(gts) or not maps:
        raise ValueError(f"need as many label maps as ground truths (got {len(maps)} and {len(gts)})")
    confusion = sum(majority_label_confusion(m, g, n_classes, ignore_index) for m, g in zip(maps, gts, strict=True))
    return miou_from_confusion(confusion)
