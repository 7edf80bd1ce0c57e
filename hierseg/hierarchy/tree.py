"""The part-whole tree of one image: nested label maps, parent links and per-node class evidence.

``Hierarchy`` is plain data (numpy only). Levels are numbered coarsest first: level 0 holds the
coarsest segments and level ``n_levels - 1`` the superpixels. A virtual root ``Node(-1, 0)`` stands
for the whole image; its children are the level-0 segments and its evidence is the image-level
prediction. Everything a click handler needs (areas, boxes, children) is precomputed once, so the
per-node queries cost O(1) or O(size of the node's box).

A hierarchy read out of a merge tree (``hierseg.hierarchy.merge_tree``) carries it: its merged levels
are the tree cut at ``cut_heights``, every node is a merge-tree node (``merge_node``), and ``recut``
reads any other granularity out of the same tree, with evidence for every merge-tree node kept from
the readout (no model run).

A selection of several disjoint segments is one region too: ``union_mask`` and ``union_evidence`` (the
labeller's distribution for that mask, exact from ``leaf_log_evidence``; ``hierseg.hierarchy.union``).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..labels import areas_and_boxes
from . import io
from .build import canonical_tree, cut_merge_tree
from .checks import check_merge_tree, check_tree
from .frozen import freeze_json
from .merge_tree import MergeTree, TreeConfig, display_levels
from .node import ROOT, Node, NodeLike
from .union import check_leaf_log_evidence, disjoint_members, union_distribution

__all__ = ["Hierarchy"]


class Hierarchy:
    """Nested segmentations of one image, coarsest level first, superpixels last.

    Attributes (treat as read-only; the arrays are made non-writeable):
        label_maps: ``n_levels`` int32 (H, W) maps; level ``l`` uses every id in ``0..n_nodes(l)-1``.
        parents: ``parents[l][i]`` is the level ``l-1`` id of node ``i`` at level ``l``; ``parents[0]``
            is an empty array because the parent of every level-0 node is the root.
        evidence: ``evidence[l]`` is (n_nodes(l), n_classes) float32, one distribution per node.
        class_names: one name per class.
        prediction: (n_classes,) float32 image-level class distribution (the root's evidence).
        meta: JSON-able free-form metadata (checkpoint, timings, ...), given at construction and
            read-only after it (mutating it raises ``TypeError``).
        superpixel_ids: for each leaf node, the id it had in the superpixel map given to
            ``from_assignments``, or None when unknown.

    Merge tree (all None for trees read out of fixed levels, e.g. the official releases):
        merge_tree: ``MergeTree`` whose leaves are the leaf nodes (leaf ``i`` = ``Node(leaf_level, i)``).
        tree_config: its ``TreeConfig``; ``thresholds`` are the merged levels' cut heights (``cut_heights``).
        merge_evidence: (merge_tree.n_nodes, n_classes) float32 class distribution of every merge-tree
            node, held at float16 precision.

    Selections (``union_evidence``):
        leaf_log_evidence: (n_leaves, n_classes) float32 natural log of every superpixel's class distribution
            at full precision, what the union of segments is pooled from; it comes with a merge tree. None
            where the tree was read from a file or data set that does not keep it, or has fixed levels
            (then only single segments have evidence).
    """

    def __init__(
        self,
        label_maps: Sequence[np.ndarray],
        parents: Sequence[np.ndarray],
        evidence: Sequence[np.ndarray],
        class_names: Sequence[str],
        prediction: np.ndarray,
        meta: dict[str, Any] | None = None,
        superpixel_ids: np.ndarray | None = None,
        merge_tree: MergeTree | None = None,
        tree_config: TreeConfig | None = None,
        merge_evidence: np.ndarray | None = None,
        leaf_log_evidence: np.ndarray | None = None,
    ) -> None:
        """Check the invariants of the tree (``hierseg.hierarchy.checks``), precompute areas, boxes and children.

        ``merge_tree``, ``tree_config`` and ``merge_evidence`` come together or not at all.

        Raises:
            ValueError: if shapes disagree, ids are not compact, the levels do not nest, an evidence
                row is not a probability distribution, or the levels are not the merge tree's cut.
        """
        # Zero classes is allowed: a self-supervised checkpoint has a hierarchy but no classifier.
        self.class_names: list[str] = [str(name) for name in class_names]
        checked = check_tree(label_maps, parents, evidence, len(self.class_names), prediction, superpixel_ids)
        self.label_maps, self.parents, self.evidence = checked.label_maps, checked.parents, checked.evidence
        self.prediction, self.superpixel_ids = checked.prediction, checked.superpixel_ids
        given = [merge_tree is not None, tree_config is not None, merge_evidence is not None]
        if any(given) and not all(given):
            raise ValueError("merge_tree, tree_config and merge_evidence come together or not at all")
        self._merge_tree, self._tree_config = merge_tree, tree_config
        self._merge_evidence: np.ndarray | None = None
        self._merge_nodes: list[np.ndarray] = []
        if merge_tree is not None:
            merged = check_merge_tree(merge_tree, tree_config, merge_evidence, checked.parents, checked.sizes,
                                      len(self.class_names))
            self._merge_evidence, self._merge_nodes = merged.merge_evidence, merged.merge_nodes
        # Read-only (hierseg.hierarchy.frozen): the metadata describes this tree as it was built.
        try:
            self.meta: dict[str, Any] = freeze_json(meta or {})
        except ValueError as error:
            raise ValueError(f"meta must be a JSON-serialisable dict: {error}") from None
        self._leaf_log_evidence = None
        if leaf_log_evidence is not None:
            if merge_tree is None:  # files keep it with the merge tree's arrays (hierseg.hierarchy.io)
                raise ValueError("leaf_log_evidence comes with a merge tree")
            self._leaf_log_evidence = check_leaf_log_evidence(leaf_log_evidence, checked.evidence[-1])
        self._leaf_ancestor_ids: list[np.ndarray] | None = None
        sizes = checked.sizes
        self._sizes = sizes
        self._areas, self._bboxes = self._box_stats()
        self._child_order, self._child_start = self._child_index()

    @classmethod
    def from_assignments(
        cls,
        superpixels: np.ndarray,
        assignments: Sequence[np.ndarray],
        evidence: Sequence[np.ndarray],
        class_names: Sequence[str],
        prediction: np.ndarray,
        meta: dict[str, Any] | None = None,
    ) -> Hierarchy:
        """The canonical tree of one image from its per-level argmax assignments (finest first).

        ``hierseg.hierarchy.build.canonical_tree`` composes and renumbers (its docstring has the
        arguments and the rules); ``prediction`` is the (C,) image-level distribution and ``meta``
        JSON-able metadata, stored read-only.

        Raises:
            ValueError: on inconsistent shapes or out-of-range ids.
        """
        tree = canonical_tree(superpixels, assignments, evidence, len(class_names))
        return cls(tree.label_maps, tree.parents, tree.evidence, class_names, prediction, meta,
                   superpixel_ids=tree.superpixel_ids)

    # ------------------------------------------------------------------ sizes and nodes
    @property
    def n_levels(self) -> int:
        """Number of levels, superpixels included (the root is not counted)."""
        return len(self.label_maps)

    @property
    def leaf_level(self) -> int:
        """Level of the superpixels, ``n_levels - 1``."""
        return len(self.label_maps) - 1

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the label maps."""
        height, width = self.label_maps[0].shape
        return height, width

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H), the PIL convention."""
        height, width = self.label_maps[0].shape
        return width, height

    @property
    def root(self) -> Node:
        """The virtual whole-image node ``Node(-1, 0)``."""
        return ROOT

    def n_nodes(self, level: int) -> int:
        """Number of nodes at ``level``; level -1 (the root) has one."""
        self._check_level(level)
        return 1 if level == ROOT.level else self._sizes[level]

    def nodes(self, level: int) -> list[Node]:
        """All nodes of ``level`` in id order."""
        return [Node(level, i) for i in range(self.n_nodes(level))]

    def node(self, node: NodeLike) -> Node:
        """Check and normalise a node given as ``Node``, ``(level, index)`` or ``"level:index"``."""
        node = Node.parse(node) if isinstance(node, str) else Node(int(node[0]), int(node[1]))
        if not (ROOT.level <= node.level < self.n_levels) or not (0 <= node.index < self.n_nodes(node.level)):
            raise ValueError(f"no node {node} in a hierarchy with levels of sizes {self._sizes}")
        return node

    def label_map(self, level: int) -> np.ndarray:
        """(H, W) int32 ids at ``level``; for the root level, all zeros."""
        self._check_level(level)
        if level == ROOT.level:
            return np.zeros(self.shape, np.int32)
        return self.label_maps[level]

    # ------------------------------------------------------------------ tree navigation
    def children(self, node: NodeLike) -> list[Node]:
        """Nodes one level finer that compose ``node``, in id order; [] for a superpixel."""
        level, index = self.node(node)
        if level == self.leaf_level:
            return []
        start, stop = self._child_start[level + 1][index : index + 2]
        return [Node(level + 1, int(i)) for i in self._child_order[level + 1][start:stop]]

    def parent(self, node: NodeLike) -> Node:
        """The node one level coarser that contains ``node``; the root for level-0 nodes."""
        level, index = self.node(node)
        if level == ROOT.level:
            raise ValueError("the root has no parent")
        if level == 0:
            return ROOT
        return Node(level - 1, int(self.parents[level][index]))

    def ancestors(self, node: NodeLike) -> list[Node]:
        """Strict ancestors of ``node``, coarsest first, root excluded (``[]`` for level 0 and the root)."""
        level, index = self.node(node)
        chain = []
        for finer in range(level, 0, -1):
            index = int(self.parents[finer][index])
            chain.append(Node(finer - 1, index))
        return chain[::-1]

    def path(self, node: NodeLike) -> list[Node]:
        """Root to ``node``, both included."""
        node = self.node(node)
        if node == ROOT:
            return [ROOT]
        return [ROOT, *self.ancestors(node), node]

    def is_leaf(self, node: NodeLike) -> bool:
        """True for superpixels, the nodes without children."""
        return self.node(node).level == self.leaf_level

    def node_at(self, level: int, x: int, y: int) -> Node:
        """The node of ``level`` covering pixel column ``x``, row ``y``."""
        self._check_level(level)
        height, width = self.shape
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"pixel ({x}, {y}) is outside the {width}x{height} image")
        if level == ROOT.level:
            return ROOT
        return Node(level, int(self.label_maps[level][y, x]))

    # ------------------------------------------------------------------ geometry
    def areas(self, level: int) -> np.ndarray:
        """(n_nodes(level),) int64 pixel counts."""
        self._check_level(level)
        if level == ROOT.level:
            return np.array([self.label_maps[0].size], np.int64)
        return self._areas[level]

    def area(self, node: NodeLike) -> int:
        level, index = self.node(node)
        return int(self.areas(level)[index])

    def bboxes(self, level: int) -> np.ndarray:
        """(n_nodes(level), 4) int64 boxes ``(x0, y0, x1, y1)``, end-exclusive."""
        self._check_level(level)
        if level == ROOT.level:
            height, width = self.shape
            return np.array([[0, 0, width, height]], np.int64)
        return self._bboxes[level]

    def bbox(self, node: NodeLike) -> tuple[int, int, int, int]:
        """Tight box ``(x0, y0, x1, y1)`` of the node: ``mask[y0:y1, x0:x1]`` holds all its pixels."""
        level, index = self.node(node)
        x0, y0, x1, y1 = self.bboxes(level)[index]
        return int(x0), int(y0), int(x1), int(y1)

    def mask(self, node: NodeLike) -> np.ndarray:
        """(H, W) bool mask of the node's pixels."""
        level, index = self.node(node)
        if level == ROOT.level:
            return np.ones(self.shape, bool)
        # Compare inside the box only: a small node on a large image then costs little.
        x0, y0, x1, y1 = self.bbox((level, index))
        mask = np.zeros(self.shape, bool)
        np.equal(self.label_maps[level][y0:y1, x0:x1], index, out=mask[y0:y1, x0:x1])
        return mask

    # ------------------------------------------------------------------ classes
    def evidence_of(self, node: NodeLike) -> np.ndarray:
        """(n_classes,) class distribution of the node; the image prediction for the root."""
        level, index = self.node(node)
        if level == ROOT.level:
            return self.prediction
        return self.evidence[level][index]

    def top_classes(self, node: NodeLike, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes of the node as ``(name, probability)``, best first."""
        scores = self.evidence_of(node)
        best = np.argsort(-scores, kind="stable")[: max(k, 0)]
        return [(self.class_names[i], float(scores[i])) for i in best]

    # ------------------------------------------------------------------ selections of several segments
    @property
    def leaf_log_evidence(self) -> np.ndarray | None:
        """(n_leaves, n_classes) float32 log of every superpixel's class distribution at full precision; None
        for a tree read from a file or data set without it."""
        return self._leaf_log_evidence

    def union_mask(self, nodes: Sequence[NodeLike]) -> np.ndarray:
        """(H, W) bool mask of the union of disjoint ``nodes``.

        Raises:
            ValueError: for no node, the root, a node that does not exist, or overlapping nodes.
        """
        inside = np.zeros(self.n_nodes(self.leaf_level), bool)
        inside[np.concatenate(self._members(nodes))] = True
        return inside[self.label_maps[-1]]

    def union_evidence(self, nodes: Sequence[NodeLike]) -> np.ndarray:
        """(n_classes,) class distribution of the union of disjoint ``nodes`` as one segment: what the labeller
        gives a segment with that mask (``hierseg.hierarchy.union``), at float16 precision like a merge-tree
        node's row; so the union of a node's children is the node's own row. One node: its own row.

        Raises:
            ValueError: for no node, the root, overlapping nodes, or several nodes of a tree without
                ``leaf_log_evidence`` (read from a file or data set that does not keep it: segment the photo
                again to select several segments).
        """
        members = self._members(nodes)
        if len(members) == 1:
            return self.evidence_of(nodes[0])
        if self.n_classes == 0:
            return np.zeros(0, np.float32)
        if self._leaf_log_evidence is None:
            raise ValueError("this hierarchy keeps no leaf_log_evidence (it was read from a file or data set "
                             "without it), so a union of segments has no exact evidence; segment the photo again")
        return union_distribution(self._leaf_log_evidence, self.areas(self.leaf_level), np.concatenate(members))

    def _members(self, nodes: Sequence[NodeLike]) -> list[np.ndarray]:
        """The superpixel ids of each of ``nodes``, checked disjoint (``union.disjoint_members``)."""
        if isinstance(nodes, (str, Node)):
            raise ValueError(f"give a list of nodes, not one node ({nodes}): [{str(nodes)!r}, ...]")
        if self._leaf_ancestor_ids is None:
            ids = [np.empty(0, np.int64)] * self.n_levels
            ids[-1] = np.arange(self._sizes[-1])
            for level in range(self.leaf_level, 0, -1):
                ids[level - 1] = self.parents[level][ids[level]].astype(np.int64)
            self._leaf_ancestor_ids = ids
        return disjoint_members([self.node(node) for node in nodes], self._leaf_ancestor_ids)

    # ------------------------------------------------------------------ merge tree: any granularity
    @property
    def merge_tree(self) -> MergeTree | None:
        """The merge tree the levels were cut from (leaves = the leaf nodes); None for fixed levels."""
        return self._merge_tree

    @property
    def tree_config(self) -> TreeConfig | None:
        """How the merge tree was built and cut (``thresholds`` = ``cut_heights``); None without a tree."""
        return self._tree_config

    @property
    def merge_evidence(self) -> np.ndarray | None:
        """(merge_tree.n_nodes, n_classes) float32 class distribution of every merge-tree node; None without a tree."""
        return self._merge_evidence

    @property
    def cut_heights(self) -> tuple[float, ...]:
        """The merge heights the merged levels were cut at, coarsest first; () without a merge tree.

        Heights are fractions of the photo's variance in the merge metric (``hierseg.hierarchy.merge_tree``).
        """
        return self._tree_config.thresholds if self._tree_config is not None else ()

    def merge_node(self, node: NodeLike) -> int:
        """The merge-tree node that is ``node`` (its leaves are exactly the node's superpixels): the leaf
        id for a superpixel, the top node for the root. Merge-tree node ids are the same in every ``recut``.

        Raises:
            ValueError: without a merge tree, or for a node that does not exist.
        """
        level, index = self.node(node)
        tree = self._require_merge_tree()
        if level == ROOT.level:
            return tree.n_nodes - 1
        return int(self._merge_nodes[level][index])

    def height_range(self) -> tuple[float, float]:
        """``(low, high)``: the coarsest cut heights for which the coarsest level has at least two segments
        of its own and every merged level differs from the superpixels; for a continuous slider over
        ``recut``. ``high`` is the top merge's height (at and above it the coarsest level is the top split);
        ``low`` the lowest positive height at which the finest merged level has merged a pair. ``low ==
        high`` when the tree leaves no room (a photo with very few superpixels).

        Raises:
            ValueError: without a merge tree.
        """
        tree = self._require_merge_tree()
        heights = tree.heights
        if not len(heights) or heights[-1] <= 0:
            return 0.0, 0.0
        high = float(heights[-1])
        ratio = self.cut_heights[-1] / self.cut_heights[0]
        config = self._tree_config
        for height in heights[heights > 0]:
            low = float(height) / ratio
            if low >= high:
                break
            levels = display_levels(tree, self._scaled(low), config.min_segments, config.split_chains)
            if len(np.unique(levels[-1])) < tree.n_leaves:
                return low, high
        return high, high

    def recut(self, coarsest_height: float) -> Hierarchy:
        """The same merge tree cut with the coarsest level at ``coarsest_height`` and the finer merged
        levels at the same ratios to it as ``cut_heights``, by the same rules (at least
        ``tree_config.min_segments`` coarse segments; a segment the next height would leave whole is split
        at its own top merge, so only superpixels can have one child).

        Leaf ids, superpixel ids, the merge tree, its evidence, the prediction and ``meta`` stay; the
        merged levels are renumbered canonically and their nodes take their rows of ``merge_evidence``.
        ``h.recut(h.cut_heights[0]) == h`` for a hierarchy read out by the Segmenter.

        Raises:
            ValueError: without a merge tree, or for a height that is not finite and positive.
        """
        tree = self._require_merge_tree()
        if not (math.isfinite(coarsest_height) and coarsest_height > 0):
            raise ValueError(f"the coarsest cut height must be finite and positive, got {coarsest_height}")
        config = dataclasses.replace(self._tree_config, thresholds=self._scaled(float(coarsest_height)))
        return Hierarchy.cut_from(self.label_maps[-1], tree, config, self._merge_evidence, self.class_names,
                                  self.prediction, self.meta, self.superpixel_ids, self._leaf_log_evidence)

    @classmethod
    def cut_from(cls, leaves: np.ndarray, tree: MergeTree, config: TreeConfig, merge_evidence: np.ndarray,
                 class_names: Sequence[str], prediction: np.ndarray, meta: dict[str, Any] | None = None,
                 superpixel_ids: np.ndarray | None = None, leaf_log_evidence: np.ndarray | None = None) -> Hierarchy:
        """The hierarchy of a stored merge tree cut at ``config.thresholds``: ``leaves`` (H, W) is the leaf map
        (leaf ids kept), ``merge_evidence`` (tree.n_nodes, C) every merge-tree node's class distribution,
        ``leaf_log_evidence`` the leaves' log-evidence when kept (for ``union_evidence``)."""
        cut = cut_merge_tree(leaves, tree, config.thresholds, config.min_segments, config.split_chains,
                             merge_evidence, keep_leaf_ids=True)
        return cls(cut.label_maps, cut.parents, cut.evidence, class_names, prediction, meta,
                   superpixel_ids, tree, config, merge_evidence, leaf_log_evidence)

    def _scaled(self, coarsest_height: float) -> tuple[float, ...]:
        """The cut heights with the coarsest at ``coarsest_height``, the rest at their ratios to it."""
        scale = coarsest_height / self.cut_heights[0]  # exactly 1 for the hierarchy's own height
        # The coarsest is the height asked for, not h0 * (x / h0), which can differ from x in its last bit.
        return (float(coarsest_height), *(h * scale for h in self.cut_heights[1:]))

    def _require_merge_tree(self) -> MergeTree:
        if self._merge_tree is None:
            raise ValueError("this hierarchy carries no merge tree (its checkpoint reads out fixed levels)")
        return self._merge_tree

    # ------------------------------------------------------------------ serialisation (hierseg.hierarchy.io)
    def to_json_dict(self, top_k: int = 5, include_evidence: bool = False) -> dict[str, Any]:
        """The tree as JSON-able data (no pixels).

        Per level: ``level``, ``n_nodes`` and ``nodes``, each node with ``id``, ``node`` ("l:i"),
        ``parent`` (id at the level above; null at level 0, whose parent is the root), ``area``,
        ``bbox`` ``[x0, y0, x1, y1]`` (end-exclusive) and ``top_classes`` ``[[name, prob], ...]``.
        With ``include_evidence`` each level also carries its full ``evidence`` rows (as JSON; files keep
        them as arrays, ``save_pngs``). A hierarchy with a merge tree adds ``merge_tree``
        (``n_leaves``, ``merges``, ``heights``, ``costs``, ``config``) and each node its ``merge_node``.
        """
        levels = []
        for level in range(self.n_levels):
            areas, boxes = self.areas(level).tolist(), self.bboxes(level).tolist()
            nodes = [
                {
                    "id": index,
                    "node": str(Node(level, index)),
                    "parent": int(self.parents[level][index]) if level else None,
                    "area": area,
                    "bbox": bbox,
                    "top_classes": [[name, prob] for name, prob in self.top_classes(Node(level, index), top_k)],
                }
                for index, (area, bbox) in enumerate(zip(areas, boxes, strict=True))
            ]
            if self._merge_tree is not None:
                for entry, merge_node in zip(nodes, self._merge_nodes[level].tolist(), strict=True):
                    entry["merge_node"] = merge_node
            entry: dict[str, Any] = {"level": level, "n_nodes": self.n_nodes(level), "nodes": nodes}
            if include_evidence:
                # float32 -> Python float is exact, and so is the way back: the round trip is lossless.
                entry["evidence"] = self.evidence[level].tolist()
            levels.append(entry)
        data: dict[str, Any] = {
            **io.format_tag(),
            "image_size": list(self.image_size),
            "class_names": list(self.class_names),
            "prediction": self.prediction.tolist(),
            "top_classes": [[name, prob] for name, prob in self.top_classes(ROOT, top_k)],
            "meta": json.loads(json.dumps(self.meta)),  # a plain copy: callers may edit what they get
            "levels": levels,
        }
        if self.superpixel_ids is not None:
            data["superpixel_ids"] = self.superpixel_ids.tolist()
        if self._merge_tree is not None:
            data["merge_tree"] = {**self._merge_tree.to_json_dict(), "config": self._tree_config.to_dict()}
        return data

    def save(self, path: str | Path) -> Path:
        """Write one compressed NPZ file, an exact round trip with ``load``; returns the path."""
        return io.write_npz(self._fields(), path)

    def save_pngs(self, directory: str | Path, top_k: int = 5) -> Path:
        """Write ``tree.json`` (``to_json_dict``), the evidence (and the merge tree's arrays) as
        ``evidence.npz`` and one lossless ``level_<l>.png`` per level into ``directory``; returns it."""
        return io.write_pngs(self._fields(), self.to_json_dict(top_k), directory)

    @classmethod
    def load(cls, path: str | Path) -> Hierarchy:
        """Read a hierarchy written by ``save`` (NPZ file) or ``save_pngs`` (directory)."""
        return cls(**io.read(path)._asdict())

    @classmethod
    def from_pngs(cls, directory: str | Path) -> Hierarchy:
        """Read a directory written by ``save_pngs``."""
        return cls(**io.read_pngs(directory)._asdict())

    def _fields(self) -> io.TreeFields:
        return io.TreeFields(self.label_maps, self.parents, self.evidence, self.class_names, self.prediction,
                             self.meta, self.superpixel_ids, self._merge_tree, self._tree_config, self._merge_evidence,
                             self._leaf_log_evidence)

    # ------------------------------------------------------------------ comparison
    def __eq__(self, other: object) -> bool:
        """Exact equality of every array, name and metadata entry, and of the merge trees and their evidence."""
        if not isinstance(other, Hierarchy):
            return NotImplemented
        if self.n_levels != other.n_levels or (self.superpixel_ids is None) != (other.superpixel_ids is None):
            return False
        if self._merge_tree != other._merge_tree or self._tree_config != other._tree_config:
            return False
        if self._merge_tree is not None and not np.array_equal(self._merge_evidence, other._merge_evidence):
            return False
        if (self._leaf_log_evidence is None) != (other._leaf_log_evidence is None) or (
                self._leaf_log_evidence is not None
                and not np.array_equal(self._leaf_log_evidence, other._leaf_log_evidence)):
            return False
        per_level = zip(
            self.label_maps + self.parents + self.evidence, other.label_maps + other.parents + other.evidence, strict=True
        )
        return (
            all(np.array_equal(mine, theirs) for mine, theirs in per_level)
            and np.array_equal(self.prediction, other.prediction)
            and self.class_names == other.class_names
            and self.meta == other.meta
            and (self.superpixel_ids is None or np.array_equal(self.superpixel_ids, other.superpixel_ids))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable-looking container of arrays

    def __repr__(self) -> str:
        width, height = self.image_size
        return f"Hierarchy(nodes per level={self._sizes}, image={width}x{height}, classes={self.n_classes})"

    # ------------------------------------------------------------------ internals
    def _check_level(self, level: int) -> None:
        if not (ROOT.level <= level < self.n_levels):
            raise ValueError(f"level {level} is outside -1..{self.n_levels - 1} (-1 is the root)")

    def _box_stats(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Areas and boxes per level: from the pixels at the leaf level, then summed up the tree."""
        leaf = self.leaf_level
        height, width = self.shape
        areas = [np.empty(0, np.int64)] * self.n_levels
        bboxes = [np.empty((0, 4), np.int64)] * self.n_levels
        areas[leaf], bboxes[leaf] = areas_and_boxes(self.label_maps[leaf], self._sizes[leaf])
        for level in range(leaf, 0, -1):
            parent, n_parents = self.parents[level], self._sizes[level - 1]
            areas[level - 1] = np.bincount(parent, weights=areas[level], minlength=n_parents).astype(np.int64)
            box = np.array([[width, height, 0, 0]] * n_parents, np.int64)
            np.minimum.at(box[:, 0], parent, bboxes[level][:, 0])
            np.minimum.at(box[:, 1], parent, bboxes[level][:, 1])
            np.maximum.at(box[:, 2], parent, bboxes[level][:, 2])
            np.maximum.at(box[:, 3], parent, bboxes[level][:, 3])
            bboxes[level - 1] = box
        for level in range(self.n_levels):
            areas[level].flags.writeable = False
            bboxes[level].flags.writeable = False
        return areas, bboxes

    def _child_index(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per level l >= 1: level-l ids grouped by parent, and where each parent's group starts."""
        # Index 0 serves the root, whose children are all of level 0.
        order = [np.arange(self._sizes[0])]
        start = [np.array([0, self._sizes[0]], np.int64)]
        for level in range(1, self.n_levels):
            parent = self.parents[level]
            order.append(np.argsort(parent, kind="stable"))
            counts = np.bincount(parent, minlength=self._sizes[level - 1])
            start.append(np.concatenate([[0], np.cumsum(counts)]))
        return order, start
