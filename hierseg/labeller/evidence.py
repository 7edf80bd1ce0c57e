"""Class evidence of one photo: logit fields over its pixels, pooled over any node's pixels.

A node is given by its pixels alone (a label map), so any tree gets evidence, whatever cut it. Per
photo a labeller makes one :class:`PhotoEvidence`; it labels any label map::

    node = softmax(sum_f w_f * (logits of field f pooled over the node's pixels) / T_node)

a weighted geometric mean of the fields' distributions. :data:`NO_EVIDENCE` stands in for a segmenter
without a labeller: every node gets an empty (n, 0) row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from ..model.lite0 import LITE0_STRIDE


class Temperatures(Protocol):
    """What evidence reads of a labeller's config (``LabellerConfig``)."""

    node_temperature: float
    image_temperature: float


@dataclass
class LogitField:
    """Class logits over a partition of one photo: ``part_map`` (h, w) ids ``0..n_parts-1`` at any
    resolution covering the whole photo, ``logits`` (n_parts, C) one row per part."""

    part_map: np.ndarray
    logits: np.ndarray

    @classmethod
    def from_grid(cls, cell_logits: np.ndarray, view_size: tuple[int, int], stride: int = LITE0_STRIDE) -> LogitField:
        """The cells of a stride-``stride`` map (gh, gw, C) over a view of ``view_size`` (rows, cols) pixels."""
        grid_h, grid_w = cell_logits.shape[:2]
        rows = np.minimum(np.arange(view_size[0]) // stride, grid_h - 1)
        cols = np.minimum(np.arange(view_size[1]) // stride, grid_w - 1)
        return cls(rows[:, None] * grid_w + cols[None, :], cell_logits.reshape(grid_h * grid_w, -1))

    def counts(self, label_map: np.ndarray, num_nodes: int | None = None) -> np.ndarray:
        """(num_nodes, n_parts) float32: pixels of each id of an (H, W) ``label_map`` in each part.

        Label-map pixel (r, c) stands for part-map pixel (r * h // H, c * w // W), the nearest rule that
        takes label maps from the view to the photo (``hierseg.resize.resize_nearest``).
        """
        label_map = np.asarray(label_map)
        height, width = label_map.shape
        h, w = self.part_map.shape
        rows = np.minimum(np.arange(height) * h // height, h - 1)
        cols = np.minimum(np.arange(width) * w // width, w - 1)
        parts = self.part_map[rows[:, None], cols[None, :]]
        n_parts = len(self.logits)
        num_nodes = int(label_map.max()) + 1 if num_nodes is None else num_nodes
        flat = label_map.astype(np.int64).ravel() * n_parts + parts.ravel()
        return np.bincount(flat, minlength=num_nodes * n_parts).reshape(num_nodes, n_parts).astype(np.float32)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` as float32."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = np.exp(z - z.max(-1, keepdims=True))
    return (z / z.sum(-1, keepdims=True)).astype(np.float32)


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise log of ``softmax(logits, temperature)`` as float32, finite however small the probability."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    return (z - np.log(np.exp(z).sum(-1, keepdims=True))).astype(np.float32)


def pool_logits(counts: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """Pixel-weighted mean of part logits; a node without pixels gets the whole photo's."""
    counts = counts.copy()
    empty = counts.sum(1) == 0
    if empty.any():
        counts[empty] = counts.sum(0) if (~empty).any() else 1.0
    return (counts / counts.sum(1, keepdims=True)) @ logits


@dataclass
class PhotoEvidence:
    """What the labeller knows about one photo: weighted logit fields and the image logits (C,)."""

    fields: list[tuple[LogitField, float]]
    image_logits: np.ndarray
    config: Temperatures  # the labeller config it calibrates by

    @property
    def prediction(self) -> np.ndarray:
        """(C,) float32 calibrated image-level distribution."""
        return softmax(self.image_logits, self.config.image_temperature)

    def nodes(self, label_map: np.ndarray, num_nodes: int | None = None) -> np.ndarray:
        """(num_nodes, C) float32 calibrated distribution of every id of an (H, W) map of the photo."""
        return softmax(self._mix([f.counts(label_map, num_nodes) for f, _ in self.fields]), self.config.node_temperature)

    def tree(self, label_maps: Sequence[np.ndarray], parents: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Evidence of every node of a nested tree (``Hierarchy`` layout: coarsest first, ``parents[l][i]``
        the level l-1 id of node i), one (n_l, C) array per level. The same as ``nodes`` level by level,
        from one pass over the finest map's pixels: a node's pixel counts are its children's summed.
        """
        counts = [f.counts(label_maps[-1]) for f, _ in self.fields]
        out = [None] * len(label_maps)
        for level in range(len(label_maps) - 1, -1, -1):
            if level < len(label_maps) - 1:
                n = int(np.asarray(label_maps[level]).max()) + 1
                child_parent = np.asarray(parents[level + 1], np.int64)
                members = np.zeros((n, len(child_parent)), np.float32)
                members[child_parent, np.arange(len(child_parent))] = 1
                counts = [members @ c for c in counts]
            out[level] = softmax(self._mix(counts), self.config.node_temperature)
        return out

    def merge_nodes(self, leaf_map: np.ndarray, merges: np.ndarray) -> np.ndarray:
        """Evidence of every node of a merge tree (``hierseg.hierarchy.merge_tree`` conventions: leaves are
        the ids ``0..S-1`` of the (H, W) ``leaf_map``, merge k makes node S + k), one (S + len(merges), C)
        array. The same as ``nodes`` on each node's mask, from one pass over the pixels: a merged node's
        pixel counts are its children's summed, as in ``tree``.
        """
        return self.calibrated(self.merge_logits(leaf_map, merges))

    def merge_logits(self, leaf_map: np.ndarray, merges: np.ndarray) -> np.ndarray:
        """The pooled logits behind ``merge_nodes`` (before calibration), one (S + len(merges), C) array."""
        leaves = [f.counts(leaf_map) for f, _ in self.fields]
        n = len(leaves[0])
        counts = []
        for leaf_counts in leaves:
            full = np.empty((n + len(merges), leaf_counts.shape[1]), np.float32)
            full[:n] = leaf_counts
            for k, (a, b) in enumerate(np.asarray(merges, np.int64).tolist()):
                np.add(full[a], full[b], out=full[n + k])
            counts.append(full)
        return self._mix(counts)

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        """(n, C) float32 node distributions of pooled logits (``merge_logits``)."""
        return softmax(logits, self.config.node_temperature)

    def log_calibrated(self, logits: np.ndarray) -> np.ndarray:
        """(n, C) float32 log of ``calibrated``, at full precision (what a union of nodes is pooled from:
        ``hierseg.hierarchy.union``)."""
        return log_softmax(logits, self.config.node_temperature)

    def _mix(self, counts: list[np.ndarray]) -> np.ndarray:
        return sum(w * pool_logits(c, f.logits) for c, (f, w) in zip(counts, self.fields))


class NoEvidence:
    """The evidence of a photo without a labeller: zero classes for every node and the photo."""

    prediction = np.zeros(0, np.float32)

    def nodes(self, label_map: np.ndarray, num_nodes: int | None = None) -> np.ndarray:
        return np.zeros((int(np.asarray(label_map).max()) + 1 if num_nodes is None else num_nodes, 0), np.float32)

    def tree(self, label_maps: Sequence[np.ndarray], parents: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.nodes(m) for m in label_maps]

    def merge_nodes(self, leaf_map: np.ndarray, merges: np.ndarray) -> np.ndarray:
        return self.merge_logits(leaf_map, merges)

    def merge_logits(self, leaf_map: np.ndarray, merges: np.ndarray) -> np.ndarray:
        return np.zeros((int(np.asarray(leaf_map).max()) + 1 + len(merges), 0), np.float32)

    def calibrated(self, logits: np.ndarray) -> np.ndarray:
        return np.asarray(logits, np.float32)

    log_calibrated = calibrated


NO_EVIDENCE = NoEvidence()
