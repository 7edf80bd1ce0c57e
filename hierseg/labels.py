"""Integer label maps: compact renumbering, run lengths, and per-id statistics read from horizontal runs.

Shared by the superpixels, the readout, the tree, the exports and the baselines (numpy only). Runs of
equal values are found in one place (``run_starts``): the exports' run-length encodings
(``run_lengths``) and the statistics below are read from them. Statistics are
reduced over runs of equal ids instead of pixels: every per-id extreme (first pixel, leftmost or
rightmost column, top or bottom row) lies at a run end, and a label map has far fewer runs than
pixels, so they stay cheap on large photos.
"""
from __future__ import annotations

import numpy as np

__all__ = ["areas_and_boxes", "contiguous_labels", "count_compact_ids", "first_pixels", "row_runs", "run_lengths",
           "run_starts"]


def contiguous_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber non-negative labels to 0..n-1 in increasing order of the original ids, as int32.

    Same result as ``np.unique(labels, return_inverse=True)[1]``, in linear time; labels that are
    already contiguous int32 are returned as they are.
    """
    present = np.bincount(labels.ravel()) > 0
    if present.all():
        return labels.astype(np.int32, copy=False)
    new_ids = np.cumsum(present, dtype=np.int32) - 1
    return new_ids[labels]


def run_starts(values: np.ndarray) -> np.ndarray:
    """Bool array shaped like ``values``: True where a run of equal values begins along the last axis.

    The first element of every row (of the array, for 1-D) begins a run, so runs never cross rows.
    """
    starts = np.ones(values.shape, bool)
    np.not_equal(values[..., 1:], values[..., :-1], out=starts[..., 1:])
    return starts


def run_lengths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run-length encoding of a 1-D array: the value of every run of equal values and its length, in order."""
    if values.ndim != 1:
        raise ValueError(f"run_lengths encodes a 1-D array, not one of shape {values.shape}")
    starts = np.flatnonzero(run_starts(values))
    return values[starts], np.diff(np.r_[starts, values.size])


def row_runs(label_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the first and last pixel of every horizontal run of equal ids.

    Runs never cross rows, and the k-th start pairs with the k-th end.
    """
    height, width = label_map.shape
    starts = run_starts(label_map)
    ends = np.ones((height, width), bool)
    ends[:, :-1] = starts[:, 1:]
    return np.flatnonzero(starts), np.flatnonzero(ends)


def count_compact_ids(ids: np.ndarray, name: str) -> int:
    """Number of distinct ids in a 1-D or 2-D id array that must use exactly 0..n-1.

    Raises:
        ValueError: naming ``name``, if the array is empty, has negative or int32-overflowing ids,
            or skips an id.
    """
    if ids.size == 0:
        raise ValueError(f"{name} is empty")
    low, high = int(ids.min()), int(ids.max())
    if low < 0:
        raise ValueError(f"{name} has negative ids")
    if high >= np.iinfo(np.int32).max:
        raise ValueError(f"{name} has ids too large for int32")
    present = ids.ravel()[row_runs(ids)[0]] if ids.ndim == 2 else ids
    missing = np.flatnonzero(np.bincount(present, minlength=high + 1) == 0)
    if len(missing):
        raise ValueError(
            f"{name} must use every id in 0..{high}; {len(missing)} are missing (first: {missing[:5].tolist()})"
        )
    return high + 1


def first_pixels(label_map: np.ndarray, n: int) -> np.ndarray:
    """Raster (row-major) index of the first pixel of each id 0..n-1 (``label_map.size`` if absent)."""
    starts, _ = row_runs(label_map)
    first = np.full(n, label_map.size, np.int64)
    np.minimum.at(first, label_map.ravel()[starts], starts)
    return first


def areas_and_boxes(label_map: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel counts (n,) and end-exclusive boxes ``(x0, y0, x1, y1)`` (n, 4) of a compact label map."""
    width = label_map.shape[1]
    starts, ends = row_runs(label_map)
    ids = label_map.ravel()[starts]
    areas = np.bincount(ids, weights=ends - starts + 1, minlength=n).astype(np.int64)
    box = np.empty((n, 4), np.int64)
    box[:, 0:2] = np.iinfo(np.int64).max
    box[:, 2:4] = -1
    np.minimum.at(box[:, 0], ids, starts % width)
    np.minimum.at(box[:, 1], ids, starts // width)
    np.maximum.at(box[:, 2], ids, ends % width + 1)
    np.maximum.at(box[:, 3], ids, ends // width + 1)
    return areas, box
