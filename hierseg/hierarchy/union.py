"""Several disjoint segments taken as one region (a selection): its superpixels and its class evidence.

The labeller gives a segment ``softmax(pooled logits / T)``, the logits pooled as a pixel-weighted mean
over its pixels (``hierseg.labeller.evidence``). So the pooled logits of a union are the area-weighted
mean of its superpixels' pooled logits, and since ``log p_l = logits_l / T - log Z_l`` differs from them by
one constant per superpixel, which softmax removes::

    union = softmax(sum_l a_l * log p_l / sum_l a_l)      over the union's superpixels l, areas a_l

exactly the labeller's distribution for a segment with that mask (the same numbers as a merge-tree node
that is that union). It needs each superpixel's log-evidence at full precision (``leaf_log_evidence``):
the float16 rows a hierarchy keeps round small probabilities to 0, whose logarithm is lost; and a mix of
the members' probabilities is a different (wrong) number altogether.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .node import ROOT, Node

__all__ = ["check_leaf_log_evidence", "disjoint_members", "union_distribution"]


def union_distribution(leaf_log_evidence: np.ndarray, leaf_areas: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """(C,) float32 class distribution of the union of ``leaves`` (ids into the (S, C) log-evidence and the
    (S,) pixel areas), held at float16 precision like a merge-tree node's row."""
    weights = np.asarray(leaf_areas, np.float64)[leaves]
    logits = weights @ np.asarray(leaf_log_evidence, np.float64)[leaves] / weights.sum()
    z = np.exp(logits - logits.max())
    return (z / z.sum()).astype(np.float16).astype(np.float32)


def disjoint_members(nodes: Sequence[Node], leaf_ancestors: list[np.ndarray]) -> list[np.ndarray]:
    """The superpixel ids of each node, refusing overlap: a node twice, a node and its ancestor, the root.

    ``leaf_ancestors[l]`` (S,) is the level-``l`` node holding each superpixel.

    Raises:
        ValueError: for no node, the root, or two nodes that share a pixel (in a tree: one inside the other).
    """
    if not nodes:
        raise ValueError("a selection needs at least one segment")
    if ROOT in nodes:
        raise ValueError("the root is the whole photo: it cannot be part of a selection of several segments")
    owner = np.full(len(leaf_ancestors[-1]), -1, np.int64)
    members = []
    for position, node in enumerate(nodes):
        leaves = np.flatnonzero(leaf_ancestors[node.level] == node.index)
        taken = owner[leaves]
        if (taken >= 0).any():
            other = nodes[int(taken[taken >= 0][0])]
            inner, outer = (node, other) if node.level >= other.level else (other, node)
            relation = "is selected twice" if node == other else f"lies inside {outer}"
            raise ValueError(f"a selection holds disjoint segments: {inner} {relation}")
        owner[leaves] = position
        members.append(leaves)
    return members


def check_leaf_log_evidence(values: np.ndarray, leaf_evidence: np.ndarray) -> np.ndarray:
    """``values`` as an (S, C) float32 array of finite log-probabilities whose exponentials are ``leaf_evidence``
    (the hierarchy's superpixel rows, float16 precision allowed).

    Raises:
        ValueError: on another shape, non-finite values, or rows that are not the leaves' evidence.
    """
    array = np.asarray(values)
    if array.shape != leaf_evidence.shape:
        raise ValueError(f"leaf_log_evidence must have shape {leaf_evidence.shape} (superpixels, classes), "
                         f"got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
        raise ValueError("leaf_log_evidence must hold finite floats (log-probabilities)")
    if array.size:
        rows = np.exp(array.astype(np.float64))
        # A float16 row is within half a step of the exact value (2**-11 relative, 2**-25 absolute below
        # float16's normal range); allowed a little more for the float32 log.
        if not np.allclose(rows, leaf_evidence, rtol=2.0**-10, atol=2.0**-23):
            raise ValueError("leaf_log_evidence is not the log of the superpixels' evidence rows (another photo, "
                             "another labeller or another leaf order)")
    copy = np.array(array, np.float32, copy=True)
    copy.flags.writeable = False
    return copy
