"""Shape of a part-whole tree: are segments one piece, and do parents really split?

Two failure modes that the region scores hide: a segment made of several disconnected pieces (CAST's
pooling lets any token join any centre), and a parent with a single child (a level that repeats the
one above it for that node, so the tree is deeper than it is informative). Both are counted here and
pooled over a data set by the caller (sum the counts, then divide), so every segment weighs the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import NDArray
from skimage.measure import label as connected_components

LabelMap = NDArray[np.integer]


@dataclass(frozen=True)
class Fraction:
    """``hits`` of ``total``; adds up over images and levels."""

    hits: int
    total: int

    def __add__(self, other: Fraction) -> Fraction:
        return Fraction(self.hits + other.hits, self.total + other.total)

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else float("nan")


def one_piece_segments(label_map: LabelMap) -> Fraction:
    """How many segments of ``label_map`` are a single 4-connected piece, of all segments present."""
    labels = np.asarray(label_map, dtype=np.int64)
    # Background -1 never occurs (ids are >= 0): every pixel belongs to some component.
    components, n_components = connected_components(labels, background=-1, connectivity=1, return_num=True)
    segment_of_component = np.zeros(n_components + 1, dtype=np.int64)
    segment_of_component[components.ravel()] = labels.ravel()
    _, pieces = np.unique(segment_of_component[1:], return_counts=True)
    return Fraction(int((pieces == 1).sum()), len(pieces))


def single_child_parents(parents: Sequence[NDArray[np.integer]]) -> list[Fraction]:
    """Per level 0..L-2: parent nodes (nodes with at least one child) that have exactly one child.

    ``parents[l][i]`` is the id at level ``l-1`` of node ``i`` of level ``l`` (``parents[0]`` is
    ignored), as in :class:`hierseg.Hierarchy`.
    """
    out = []
    for level_parents in parents[1:]:
        children = np.bincount(np.asarray(level_parents, dtype=np.int64))
        out.append(Fraction(int((children == 1).sum()), int((children > 0).sum())))
    return out


def parents_from_nested(label_maps: Sequence[LabelMap]) -> list[NDArray[np.int64]]:
    """``parents`` (as :class:`hierseg.Hierarchy` holds them) of nested label maps, coarsest first.

    Raises ``ValueError`` when a segment of a finer level overlaps two segments of the level above:
    such levels are not a tree and have no parents.
    """
    parents = [np.zeros(0, dtype=np.int64)]
    for level, (coarse, fine) in enumerate(zip(label_maps, label_maps[1:]), start=1):
        fine_ids, coarse_ids = np.asarray(fine, np.int64).ravel(), np.asarray(coarse, np.int64).ravel()
        pairs = np.unique(np.stack([fine_ids, coarse_ids]), axis=1)
        if len(np.unique(pairs[0])) != pairs.shape[1]:
            raise ValueError(f"level {level} does not nest in level {level - 1}")
        parent = np.full(int(fine_ids.max()) + 1, -1, dtype=np.int64)
        parent[pairs[0]] = pairs[1]
        parents.append(parent)
    return parents
