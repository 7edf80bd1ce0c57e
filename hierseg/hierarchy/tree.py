"""The part-whole tree of one image: nested label maps, parent links and per-node class evidence.

``Hierarchy`` is plain data (numpy only). Levels are numbered coarsest first: level 0 holds the
coarsest segments and level ``n_levels - 1`` the superpixels. A virtual root ``Node(-1, 0)`` stands
for the whole image; its children are the level-0 segments and its evidence is the image-level
prediction. Everything a click handler needs (areas, boxes, children) is precomputed once, so the
per-node queries cost O(1) or O(size of the node's box).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..labels import areas_and_boxes
from . import io
from .build import canonical_tree
from .checks import check_tree
from .frozen import freeze_json
from .node import ROOT, Node, NodeLike

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
    ) -> None:
        """Check the invariants of the tree (``hierseg.hierarchy.checks``), precompute areas, boxes and children.

        Raises:
            ValueError: if shapes disagree, ids are not compact, the levels do not nest, or an
                evidence row is not a probability distribution.
        """
        # Zero classes is allowed: a self-supervised checkpoint has a hierarchy but no classifier.
        self.class_names: list[str] = [str(name) for name in class_names]
        checked = check_tree(label_maps, parents, evidence, len(self.class_names), prediction, superpixel_ids)
        self.label_maps, self.parents, self.evidence = checked.label_maps, checked.parents, checked.evidence
        self.prediction, self.superpixel_ids = checked.prediction, checked.superpixel_ids
        # Read-only (hierseg.hierarchy.frozen): the metadata describes this tree as it was built.
        try:
            self.meta: dict[str, Any] = freeze_json(meta or {})
        except ValueError as error:
            raise ValueError(f"meta must be a JSON-serialisable dict: {error}") from None
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

    # ------------------------------------------------------------------ serialisation (hierseg.hierarchy.io)
    def to_json_dict(self, top_k: int = 5, include_evidence: bool = False) -> dict[str, Any]:
        """The tree as JSON-able data (no pixels).

        Per level: ``level``, ``n_nodes`` and ``nodes``, each node with ``id``, ``node`` ("l:i"),
        ``parent`` (id at the level above; null at level 0, whose parent is the root), ``area``,
        ``bbox`` ``[x0, y0, x1, y1]`` (end-exclusive) and ``top_classes`` ``[[name, prob], ...]``.
        With ``include_evidence`` each level also carries its full ``evidence`` rows, which
        ``from_pngs`` needs for an exact round trip.
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
        return data

    def save(self, path: str | Path) -> Path:
        """Write one compressed NPZ file, an exact round trip with ``load``; returns the path."""
        return io.write_npz(self._fields(), path)

    def save_pngs(self, directory: str | Path, top_k: int = 5) -> Path:
        """Write ``tree.json`` (``to_json_dict``), the evidence as ``evidence.npz`` and one lossless
        ``level_<l>.png`` per level into ``directory``; returns it."""
        return io.write_pngs(self.label_maps, self.to_json_dict(top_k, include_evidence=True), directory)

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
                             self.meta, self.superpixel_ids)

    # ------------------------------------------------------------------ comparison
    def __eq__(self, other: object) -> bool:
        """Exact equality of every array, name and metadata entry."""
        if not isinstance(other, Hierarchy):
            return NotImplemented
        if self.n_levels != other.n_levels or (self.superpixel_ids is None) != (other.superpixel_ids is None):
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
