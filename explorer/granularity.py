"""The granularity control: where a slider at ``position`` (0 coarse .. 1 fine) cuts the photo's merge tree.

A tree read out of a merge tree can be cut with its coarsest level at any merge height in
``Hierarchy.height_range()`` (``Hierarchy.recut``; ``session.set_granularity``). Those heights span
one to two orders of magnitude and the segment counts follow their logarithm, so the slider moves
through log-height: a step changes the counts by a similar factor wherever it is taken. Position 0
is the highest cut (the fewest segments), 1 the lowest.
"""
from __future__ import annotations

import math

from hierseg.hierarchy import Hierarchy

__all__ = ["STEP", "has_granularity", "height_at", "position_of"]

# 200 stops: finer than one merge per step on a photo of ~200 superpixels, coarse enough for arrow keys.
STEP = 0.005


def has_granularity(tree: Hierarchy) -> bool:
    """Whether the control has anywhere to go: a merge tree with a range of cut heights (not fixed levels)."""
    if tree.merge_tree is None:
        return False
    low, high = tree.height_range()
    return low < high


def height_at(tree: Hierarchy, position: float) -> float:
    """The coarsest cut height at slider ``position`` (clamped to [0, 1]), log-linear over ``tree.height_range()``."""
    low, high = tree.height_range()
    position = min(max(float(position), 0.0), 1.0)
    return math.exp(math.log(high) + position * (math.log(low) - math.log(high)))


def position_of(tree: Hierarchy, height: float) -> float:
    """The slider position of coarsest cut ``height`` (``height_at``'s inverse, clamped to [0, 1])."""
    low, high = tree.height_range()
    if low >= high:
        return 0.0
    height = min(max(float(height), low), high)
    return (math.log(high) - math.log(height)) / (math.log(high) - math.log(low))
