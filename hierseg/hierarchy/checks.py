"""The invariants of a part-whole tree, checked once and frozen: what ``Hierarchy(...)`` accepts.

Levels nest (every node lies inside its parent), ids are compact (level ``l`` uses every id in
``0..n-1``), every evidence row is a probability distribution, and the arrays come back as private
read-only copies, so statistics computed from them cannot go stale. Numpy only.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from ..labels import count_compact_ids
from .merge_tree import MergeTree, TreeConfig, display_levels

__all__ = ["CheckedMergeTree", "CheckedTree", "check_merge_tree", "check_tree", "int_array"]

# Tolerance on "rows sum to 1": float32 softmax over ~1000 classes is off by ~1e-6.
_SUM_ATOL = 1e-3


class CheckedTree(NamedTuple):
    label_maps: list[np.ndarray]  # int32, read-only
    parents: list[np.ndarray]  # int32, read-only; parents[0] is empty
    evidence: list[np.ndarray]  # float32, read-only
    prediction: np.ndarray  # float32, read-only
    superpixel_ids: np.ndarray | None  # int64, read-only
    sizes: list[int]  # nodes per level


def check_tree(
    label_maps: Sequence[np.ndarray],
    parents: Sequence[np.ndarray],
    evidence: Sequence[np.ndarray],
    n_classes: int,
    prediction: np.ndarray,
    superpixel_ids: np.ndarray | None,
) -> CheckedTree:
    """Check the fields of a tree (see ``Hierarchy``) and return read-only copies.

    Raises:
        ValueError: if shapes disagree, ids are not compact, the levels do not nest, or an
            evidence row is not a probability distribution.
    """
    if len(label_maps) == 0:
        raise ValueError("a hierarchy needs at least one level (the superpixels)")
    if not (len(parents) == len(evidence) == len(label_maps)):
        raise ValueError(
            f"label_maps, parents and evidence must have one entry per level; got "
            f"{len(label_maps)}, {len(parents)} and {len(evidence)}"
        )
    maps: list[np.ndarray] = []
    for level, label_map in enumerate(label_maps):
        label_map = int_array(label_map, f"label_maps[{level}]", ndim=2)
        if level and label_map.shape != maps[0].shape:
            raise ValueError(f"label_maps[{level}] has shape {label_map.shape}, level 0 has {maps[0].shape}")
        maps.append(_frozen(label_map, np.int32))
    if len(parents[0]) != 0:
        raise ValueError("parents[0] must be empty: the parent of every level-0 node is the root")

    # Only the leaf map is checked pixel by pixel for compact ids. Going up, nesting
    # (parents[l][label_maps[l]] == label_maps[l-1]) makes the ids of level l-1 exactly the values
    # of parents[l], so compactness there is a check on that short array.
    sizes = [0] * len(maps)
    sizes[-1] = count_compact_ids(maps[-1], f"label_maps[{len(maps) - 1}]")
    links: list[np.ndarray] = [_frozen(np.zeros(0), np.int32)] * len(maps)
    for level in range(len(maps) - 1, 0, -1):
        parent = int_array(parents[level], f"parents[{level}]", ndim=1)
        if len(parent) != sizes[level]:
            raise ValueError(f"parents[{level}] has {len(parent)} entries, level {level} has {sizes[level]} nodes")
        sizes[level - 1] = count_compact_ids(parent, f"parents[{level}]")
        parent = _frozen(parent, np.int32)
        if not np.array_equal(parent[maps[level]], maps[level - 1]):
            raise ValueError(
                f"level {level} does not nest in level {level - 1}: label_maps[{level - 1}] differs from "
                f"parents[{level}][label_maps[{level}]] (a node has pixels outside its parent, or "
                f"label_maps[{level - 1}] does not use every id)"
            )
        links[level] = parent

    rows = [
        _frozen(_distributions(values, (sizes[level], n_classes), f"evidence[{level}]"), np.float32)
        for level, values in enumerate(evidence)
    ]
    image = _frozen(_distributions(prediction, (n_classes,), "prediction"), np.float32)
    ids = None
    if superpixel_ids is not None:
        ids = int_array(superpixel_ids, "superpixel_ids", ndim=1)
        if len(ids) != sizes[-1] or len(np.unique(ids)) != len(ids) or ids.min() < 0:
            raise ValueError(f"superpixel_ids must be {sizes[-1]} distinct non-negative ids, one per leaf")
        ids = _frozen(ids, np.int64)
    return CheckedTree(maps, links, rows, image, ids, sizes)


class CheckedMergeTree(NamedTuple):
    merge_evidence: np.ndarray  # float32 at float16 precision, read-only
    merge_nodes: list[np.ndarray]  # per level: the merge-tree node of every node, int64, read-only


def check_merge_tree(
    tree: MergeTree,
    config: TreeConfig,
    merge_evidence: np.ndarray,
    parents: Sequence[np.ndarray],
    sizes: Sequence[int],
    n_classes: int,
) -> CheckedMergeTree:
    """Check that the levels of a checked tree are ``tree`` cut by ``config`` (its thresholds are the
    merged levels' cut heights) over the tree's leaves, and name every node's merge-tree node.

    ``merge_evidence`` (tree.n_nodes, n_classes) holds a distribution per merge-tree node; it is kept at
    float16 precision (as float32), so that files hold it exactly in half the bytes.

    Raises:
        ValueError: if the leaves, the levels or the evidence do not fit the tree.
    """
    if tree.n_leaves != sizes[-1]:
        raise ValueError(f"the merge tree has {tree.n_leaves} leaves, the hierarchy {sizes[-1]} superpixels")
    if len(config.thresholds) != len(sizes) - 1:
        raise ValueError(f"{len(config.thresholds)} cut heights for {len(sizes) - 1} merged levels")
    rows = _distributions(merge_evidence, (tree.n_nodes, n_classes), "merge_evidence")
    rows = _frozen(rows.astype(np.float16), np.float32)
    segment = np.arange(sizes[-1])  # every leaf's node at the current level, finest first
    nodes = [_frozen(segment, np.int64)]
    cut = display_levels(tree, config.thresholds, config.min_segments, config.split_chains)
    for level in range(len(sizes) - 2, -1, -1):
        segment = parents[level + 1][segment]
        node = np.full(sizes[level], -1, np.int64)
        node[segment] = cut[level]
        # Every leaf of a node has the node's merge node, and no two nodes share one: the same partition.
        if not np.array_equal(node[segment], cut[level]) or len(np.unique(node)) != sizes[level]:
            raise ValueError(f"level {level} is not the merge tree's cut at {config.thresholds[level]:.6g}")
        nodes.insert(0, _frozen(node, np.int64))
    return CheckedMergeTree(rows, nodes)


def int_array(values: Any, name: str, ndim: int) -> np.ndarray:
    """``values`` as an integer array of ``ndim`` dimensions; ValueError naming ``name`` otherwise."""
    array = np.asarray(values)
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array


def _frozen(array: np.ndarray, dtype: type) -> np.ndarray:
    """A private read-only copy, so cached statistics cannot go stale."""
    copy = np.array(array, dtype=dtype, copy=True)
    copy.flags.writeable = False
    return copy


def _distributions(values: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must hold floats, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be finite and non-negative (probabilities, not logits)")
    sums = array.sum(axis=-1, dtype=np.float64)
    if array.size and not np.allclose(sums, 1.0, rtol=0, atol=_SUM_ATOL):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name}: every row must be a probability distribution summing to 1 (off by {worst:.3g})")
    return array
