"""Borders between superpixels: how strong a colour edge runs along each shared border.

Ward's merge cost compares region means and is blind to the boundary between two regions: a horse's
leg and the grass beside it can be closer in mean than the leg and the horse's body. A merge tree that
also reads the border (``hierseg.hierarchy.merge_tree.ward_tree(border=...)``) keeps apart regions that a clear contour separates.

The edge map needs no annotation: the Di Zenzo gradient of the photo in CIE Lab, i.e. the square root
of the largest eigenvalue of the colour structure tensor ``sum_c grad(I_c) grad(I_c)^T``, with Gaussian
derivatives at scale ``sigma`` (px), divided by its 99th percentile and clipped to [0, 1], so one
strength means the same on a dull photo and a contrasted one. Numpy and OpenCV only.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["RegionBorders", "colour_edges", "region_borders"]

# The edge map's scale: its 99th percentile is 1 (a few contours saturate rather than one outlier setting the scale).
_NORM_PERCENTILE = 99.0


def _gaussian_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The sampled Gaussian and its derivative at ``sigma`` px, truncated at 4 sigma (1-D, float32)."""
    radius = max(1, int(np.ceil(4 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    # d/dx of the Gaussian, sign chosen for correlation (cv2 filters correlate): the response is +dI/dx.
    dg = x / sigma**2 * g
    return g.astype(np.float32), dg.astype(np.float32)


def colour_edges(rgb: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """(H, W) float32 colour edge strength of an (H, W, 3) uint8 RGB image, in [0, 1] per photo.

    Raises:
        ValueError: for an image that is not (H, W, 3) uint8 or a ``sigma`` that is not positive.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"colour_edges needs an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)  # L in 0..100, a and b about -100..100
    g, dg = _gaussian_kernels(sigma)
    gx = cv2.sepFilter2D(lab, cv2.CV_32F, dg, g, borderType=cv2.BORDER_REFLECT)
    gy = cv2.sepFilter2D(lab, cv2.CV_32F, g, dg, borderType=cv2.BORDER_REFLECT)
    jxx, jyy, jxy = (gx * gx).sum(2), (gy * gy).sum(2), (gx * gy).sum(2)
    largest = 0.5 * (jxx + jyy + np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2))
    strength = np.sqrt(largest)
    scale = float(np.percentile(strength, _NORM_PERCENTILE))
    if scale <= 0:  # a flat image: no edge anywhere
        return np.zeros(strength.shape, np.float32)
    return np.minimum(strength / scale, 1.0).astype(np.float32)


@dataclass(frozen=True)
class RegionBorders:
    """The borders between touching regions of a label map, as plain arrays (one row per touching pair).

    Attributes:
        edges: (E, 2) int64 region ids ``a < b`` that share a border (4-neighbourhood), sorted.
        strength: (E,) float64 sum of the edge strength over the border's pixel pairs.
        length: (E,) float64 number of pixel pairs on the border (> 0).
    """

    edges: np.ndarray
    strength: np.ndarray
    length: np.ndarray

    @property
    def mean_strength(self) -> np.ndarray:
        """(E,) mean edge strength along each border."""
        return self.strength / self.length


def region_borders(labels: np.ndarray, edge_map: np.ndarray) -> RegionBorders:
    """Every pair of 4-neighbouring regions of ``labels`` (H, W ids >= 0) and the edge strength along their
    border: each pair of neighbouring pixels with different ids is one unit of border, of strength the
    mean of ``edge_map`` (H, W) at its two pixels.

    Raises:
        ValueError: when the maps differ in shape or an id is negative.
    """
    labels = np.asarray(labels, np.int64)
    edge_map = np.asarray(edge_map, np.float64)
    if labels.ndim != 2 or labels.shape != edge_map.shape:
        raise ValueError(f"labels {labels.shape} and edge map {edge_map.shape} must be the same (H, W)")
    if labels.size and labels.min() < 0:
        raise ValueError("region ids must be >= 0")
    n = int(labels.max()) + 1 if labels.size else 0
    keys, values = [], []
    for a, b, ea, eb in ((labels[:, :-1], labels[:, 1:], edge_map[:, :-1], edge_map[:, 1:]),
                         (labels[:-1], labels[1:], edge_map[:-1], edge_map[1:])):
        cross = a != b
        lo, hi = np.minimum(a[cross], b[cross]), np.maximum(a[cross], b[cross])
        keys.append(lo * n + hi)
        values.append(0.5 * (ea[cross] + eb[cross]))
    key = np.concatenate(keys)
    pairs, inverse = np.unique(key, return_inverse=True)
    strength = np.bincount(inverse, weights=np.concatenate(values), minlength=len(pairs))
    length = np.bincount(inverse, minlength=len(pairs)).astype(np.float64)
    return RegionBorders(np.stack([pairs // max(n, 1), pairs % max(n, 1)], 1).astype(np.int64), strength, length)
