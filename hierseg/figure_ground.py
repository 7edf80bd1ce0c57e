"""Figure and ground from the photo's frame: how likely each superpixel is background.

The recognizer's signals do not say which regions form one object (issue 23's cue screen: the teacher's
features separate a horse's parts from each other more than from the grass). A photo's frame does, in
part: the ground runs off the frame, the figure mostly does not. This is boundary connectivity (Zhu,
Liang, Wei and Sun, "Saliency Optimization from Robust Background Detection", CVPR 2014), read on the
superpixel graph with no annotation and no learning:

* the geodesic distance between two superpixels is the least sum of CIE Lab mean differences along a
  path of touching superpixels, so a region of one colour is close to itself however long it is;
* a superpixel's soft region is ``exp(-d^2 / (2 sigma^2))`` of that distance to every superpixel; its
  *spread* is the soft region's area, its *frame length* how much of the frame the soft region touches;
* boundary connectivity is frame length over sqrt(spread), and the background probability is
  ``1 - exp(-connectivity^2 / 2)``.

Only the top, left and right sides of the frame count: photographed things stand on the ground and are
cut by the bottom edge (people by it most of all), and the bottom side alone marks a person's legs as
ground. Lengths are in units of the mean frame superpixel, areas in units of the mean superpixel, so the
probability means the same at every superpixel count.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

__all__ = ["background_probability"]


def background_probability(rgb: np.ndarray, superpixels: np.ndarray, edges: np.ndarray,
                           sigma: float = 14.0) -> np.ndarray:
    """(S,) float64 probability in [0, 1) that each superpixel is ground, by boundary connectivity.

    Args:
        rgb: (H, W, 3) uint8 view the superpixels were computed on.
        superpixels: (H, W) int ids ``0..S-1``.
        edges: (E, 2) pairs of touching superpixels.
        sigma: the geodesic scale in CIE Lab units (L 0..100): how different two colours may be and still
            count as one soft region.

    Raises:
        ValueError: for a view and label map of different sizes or a ``sigma`` that is not positive.
    """
    superpixels = np.asarray(superpixels, np.int64)
    if rgb.shape[:2] != superpixels.shape or rgb.ndim != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"need an (H, W, 3) uint8 view and an (H, W) label map, got {rgb.shape} {rgb.dtype} "
                         f"and {superpixels.shape}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    n = int(superpixels.max()) + 1
    flat = superpixels.ravel()
    pixels = np.maximum(np.bincount(flat, minlength=n), 1).astype(np.float64)
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64)
    colour = np.stack([np.bincount(flat, lab[:, c], n) for c in range(3)], 1) / pixels[:, None]

    frame = np.concatenate([superpixels[0], superpixels[:, 0], superpixels[:, -1]])
    frame_length = np.bincount(frame, minlength=n).astype(np.float64)
    frame_length /= frame_length[frame_length > 0].mean()

    pairs = np.asarray(edges, np.int64).reshape(-1, 2)
    a, b = pairs[:, 0], pairs[:, 1]
    # A tiny floor keeps identical neighbours linked (csgraph reads a 0 weight as no edge).
    step = np.linalg.norm(colour[a] - colour[b], axis=1) + 1e-6
    graph = csr_matrix((np.r_[step, step], (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    distance = dijkstra(graph, directed=False)  # inf between parts the edges leave apart: weight 0
    soft = np.exp(-(distance**2) / (2 * sigma**2))
    spread = soft @ (pixels / pixels.mean())
    connectivity = (soft @ frame_length) / np.sqrt(spread)
    return 1.0 - np.exp(-(connectivity**2) / 2)
