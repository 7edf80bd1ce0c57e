"""The granularity control: where a slider at ``position`` (0 coarse .. 1 fine) cuts the photo's merge tree.

A tree read out of a merge tree can be cut with its coarsest level at any merge height in
``Hierarchy.height_range()`` (``Hierarchy.recut``; ``session.set_granularity``). Those heights span
one to two orders of magnitude and the segment counts follow their logarithm, so the slider moves
through log-height: a step changes the counts by a similar factor wherever it is taken. Position 0
is the highest cut (the fewest segments), 1 the lowest.

Positions are snapped to the slider's grid (``STEP``), and a photo's first cut is the grid position
nearest the model's own cut (``default_position``): the slider moved away and back, or reset, gives
exactly the first tree again.
"""
from __future__ import annotations

import math

from hierseg.hierarchy import Hierarchy

__all__ = ["STEP", "default_position", "has_granularity", "height_at", "on_grid", "position_of"]

# 200 stops: finer than one merge per step on a photo of ~200 superpixels, coarse enough for arrow keys.
STEP = 0.005


def has_granularity(tree: Hierarchy) -> bool:
    """Whether the control has anywhere to go: a merge tree with a range of cut heights (not fixed levels)."""
    if tree.merge_tree is None:
        return False
    low, high = tree.height_range()
    return low < high


def on_grid(position: float) -> float:
    """``position`` clamped to [0, 1] and snapped to the slider's grid (the browser's 0.35000000000000003 too)."""
    steps = round(min(max(float(position), 0.0), 1.0) / STEP)
    return round(steps * STEP, 6)


def height_at(tree: Hierarchy, position: float) -> float:
    """The coarsest cut height at slider ``position`` (``on_grid``), log-linear over ``tree.height_range()``;
    the range's ends exactly at 0 and 1."""
    low, high = tree.height_range()
    position = on_grid(position)
    if position in (0.0, 1.0):
        return high if position == 0.0 else low
    return math.exp(math.log(high) + position * (math.log(low) - math.log(high)))


def default_position(tree: Hierarchy) -> float:
    """The grid position of a photo's first cut: the one nearest the model's own coarsest cut."""
    return on_grid(position_of(tree, tree.cut_heights[0]))


def position_of(tree: Hierarchy, height: float) -> float:
    """The slider position of coarsest cut ``height`` (``height_at``'s inverse, clamped to [0, 1])."""
    low, high = tree.height_range()
    if low >= high:
        return 0.0
    height = min(max(float(height), low), high)
    return (math.log(high) - math.log(height)) / (math.log(high) - math.log(low))
