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
from typing import Any, NamedTuple, Sequence, Union

import numpy as np
from PIL import Image

__all__ = ["Hierarchy", "Node", "NodeLike", "ROOT"]

FORMAT_NAME = "hierseg-hierarchy"
FORMAT_VERSION = 1
TREE_JSON = "tree.json"
# Tolerance on "rows sum to 1": float32 softmax over ~1000 classes is off by ~1e-6.
_SUM_ATOL = 1e-3
# Ids above this do not fit a 16-bit PNG.
_MAX_PNG_ID = 2**16 - 1


class Node(NamedTuple):
    """A node of the tree: ``level`` (0 = coarsest, -1 = the whole-image root) and its id there."""

    level: int
    index: int

    def __str__(self) -> str:
        return f"{self.level}:{self.index}"

    @classmethod
    def parse(cls, text: str) -> Node:
        """Inverse of ``str(node)``: ``Node.parse("2:5") == Node(2, 5)``."""
        level, sep, index = text.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            return cls(int(level), int(index))
        except ValueError:
            raise ValueError(f"not a node id: {text!r}; expected 'level:index', e.g. '2:5'") from None


ROOT = Node(-1, 0)
NodeLike = Union[Node, str, tuple[int, int]]


class Hierarchy:
    """Nested segmentations of one image, coarsest level first, superpixels last.

    Attributes (treat as read-only; the arrays are made non-writeable):
        label_maps: ``n_levels`` int32 (H, W) maps; level ``l`` uses every id in ``0..n_nodes(l)-1``.
        parents: ``parents[l][i]`` is the level ``l-1`` id of node ``i`` at level ``l``; ``parents[0]``
            is an empty array because the parent of every level-0 node is the root.
        evidence: ``evidence[l]`` is (n_nodes(l), n_classes) float32, one distribution per node.
        class_names: one name per class.
        prediction: (n_classes,) float32 image-level class distribution (the root's evidence).
        meta: JSON-able free-form metadata (checkpoint, timings, ...).
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
        """Validate the invariants of the tree and precompute per-node areas, boxes and children.

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
        self.class_names: list[str] = [str(name) for name in class_names]
        # Zero classes is allowed: a self-supervised checkpoint has a hierarchy but no classifier.
        n_classes = len(self.class_names)

        self.label_maps: list[np.ndarray] = []
        for level, label_map in enumerate(label_maps):
            label_map = _int_array(label_map, f"label_maps[{level}]", ndim=2)
            if level and label_map.shape != self.label_maps[0].shape:
                raise ValueError(
                    f"label_maps[{level}] has shape {label_map.shape}, level 0 has {self.label_maps[0].shape}"
                )
            self.label_maps.append(_frozen(label_map, np.int32))
        if len(parents[0]) != 0:
            raise ValueError("parents[0] must be empty: the parent of every level-0 node is the root")

        # Only the leaf map is checked pixel by pixel for compact ids. Going up, nesting
        # (parents[l][label_maps[l]] == label_maps[l-1]) makes the ids of level l-1 exactly the values
        # of parents[l], so compactness there is a check on that short array.
        sizes = [0] * len(label_maps)
        sizes[-1] = _check_compact_ids(self.label_maps[-1], f"label_maps[{len(label_maps) - 1}]")
        self.parents: list[np.ndarray] = [_frozen(np.zeros(0), np.int32)] * len(label_maps)
        for level in range(len(label_maps) - 1, 0, -1):
            parent = _int_array(parents[level], f"parents[{level}]", ndim=1)
            if len(parent) != sizes[level]:
                raise ValueError(f"parents[{level}] has {len(parent)} entries, level {level} has {sizes[level]} nodes")
            sizes[level - 1] = _check_compact_ids(parent, f"parents[{level}]")
            parent = _frozen(parent, np.int32)
            if not np.array_equal(parent[self.label_maps[level]], self.label_maps[level - 1]):
                raise ValueError(
                    f"level {level} does not nest in level {level - 1}: label_maps[{level - 1}] differs from "
                    f"parents[{level}][label_maps[{level}]] (a node has pixels outside its parent, or "
                    f"label_maps[{level - 1}] does not use every id)"
                )
            self.parents[level] = parent

        self.evidence: list[np.ndarray] = [
            _frozen(_distributions(rows, (sizes[level], n_classes), f"evidence[{level}]"), np.float32)
            for level, rows in enumerate(evidence)
        ]
        self.prediction = _frozen(_distributions(prediction, (n_classes,), "prediction"), np.float32)
        self.meta: dict[str, Any] = _json_copy(meta or {})

        if superpixel_ids is None:
            self.superpixel_ids = None
        else:
            ids = _int_array(superpixel_ids, "superpixel_ids", ndim=1)
            if len(ids) != sizes[-1] or len(np.unique(ids)) != len(ids) or ids.min() < 0:
                raise ValueError(f"superpixel_ids must be {sizes[-1]} distinct non-negative ids, one per leaf")
            self.superpixel_ids = _frozen(ids, np.int64)

        self._sizes = sizes
        self._areas, self._bboxes = self._box_stats()
        self._child_order, self._child_start = self._child_index()

    # ------------------------------------------------------------------ construction from the model
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
        """Build the tree from the argmax assignments of each pooling level.

        Args:
            superpixels: (H, W) int map with ids ``0..S-1``, every id present.
            assignments: finest first. ``assignments[0]`` (length S) maps a superpixel to its raw
                level-1 cluster; ``assignments[j]`` (length K_j) maps a raw level-j cluster to its raw
                level-(j+1) cluster.
            evidence: finest first, one more entry than ``assignments``: ``evidence[0]`` is (S, C)
                per superpixel and ``evidence[j]`` is (K_j, C) per raw level-j cluster.
            class_names: C names.
            prediction: (C,) image-level distribution.
            meta: JSON-able metadata, stored as a copy.

        Clusters that no superpixel composes into are dropped. Ids are then renumbered so that the
        result depends only on the segmentation: level-0 nodes are ordered by the raster (row-major)
        position of their first pixel, and the nodes of every finer level, superpixels included, by
        (parent id, first pixel), so the children of a node have contiguous ids. The result lists
        levels coarsest first; ``superpixel_ids`` maps each leaf back to its input superpixel id.

        Raises:
            ValueError: on inconsistent shapes or out-of-range ids.
        """
        superpixels = _int_array(superpixels, "superpixels", ndim=2)
        n_superpixels = _check_compact_ids(superpixels, "superpixels")
        if len(evidence) != len(assignments) + 1:
            raise ValueError(
                f"evidence needs one entry per level, superpixels included: {len(assignments) + 1}, got {len(evidence)}"
            )
        n_classes = len(class_names)
        sizes = [n_superpixels] + [len(rows) for rows in evidence[1:]]
        for j, rows in enumerate(evidence):
            if np.ndim(rows) != 2 or np.shape(rows) != (sizes[j], n_classes):
                raise ValueError(f"evidence[{j}] must have shape ({sizes[j]}, {n_classes}), got {np.shape(rows)}")
        links = []
        for j, assignment in enumerate(assignments):
            assignment = _int_array(assignment, f"assignments[{j}]", ndim=1)
            if len(assignment) != sizes[j]:
                raise ValueError(f"assignments[{j}] has length {len(assignment)}, level {j} has {sizes[j]} nodes")
            if assignment.min() < 0 or assignment.max() >= sizes[j + 1]:
                raise ValueError(
                    f"assignments[{j}] has cluster ids outside 0..{sizes[j + 1] - 1} "
                    f"(the number of rows of evidence[{j + 1}])"
                )
            links.append(assignment)

        # Raw cluster of every superpixel at every level: compose the argmaxes upward (cast.md §1.10).
        raw = [np.arange(n_superpixels)]
        for link in links:
            raw.append(link[raw[-1]])
        n_pixels = superpixels.size
        superpixel_first = _first_pixels(superpixels, n_superpixels)

        # j counts raw levels finest first (0 = superpixels); the output is built coarsest first,
        # because a node's new id depends on its parent's.
        top = len(links)
        new_ids: list[np.ndarray] = [np.empty(0, np.int32)] * (top + 1)
        label_maps, parents, rows = [], [], []
        for j in range(top, -1, -1):
            first = np.full(sizes[j], n_pixels, np.int64)
            np.minimum.at(first, raw[j], superpixel_first)
            used = np.flatnonzero(first < n_pixels)
            if j == top:
                order = used[np.argsort(first[used])]
                parents.append(np.zeros(0, np.int32))
            else:
                parent_of_used = new_ids[j + 1][links[j][used]]
                order = used[np.lexsort((first[used], parent_of_used))]
                parents.append(new_ids[j + 1][links[j][order]])
            new_ids[j] = np.full(sizes[j], -1, np.int32)
            new_ids[j][order] = np.arange(len(order))
            label_maps.append(new_ids[j][raw[j]][superpixels])
            rows.append(np.asarray(evidence[j])[order])
        # ``order`` now lists, per new leaf id, the input superpixel id.
        return cls(label_maps, parents, rows, class_names, prediction, meta, superpixel_ids=order)

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

    # ------------------------------------------------------------------ serialisation
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
            nodes = []
            for index, (area, bbox) in enumerate(zip(self._areas[level].tolist(), self._bboxes[level].tolist())):
                node = Node(level, index)
                nodes.append(
                    {
                        "id": index,
                        "node": str(node),
                        "parent": int(self.parents[level][index]) if level else None,
                        "area": area,
                        "bbox": bbox,
                        "top_classes": [[name, prob] for name, prob in self.top_classes(node, top_k)],
                    }
                )
            entry: dict[str, Any] = {"level": level, "n_nodes": self._sizes[level], "nodes": nodes}
            if include_evidence:
                # float32 -> Python float is exact, and so is the way back: the round trip is lossless.
                entry["evidence"] = self.evidence[level].tolist()
            levels.append(entry)
        data: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "image_size": list(self.image_size),
            "class_names": list(self.class_names),
            "prediction": self.prediction.tolist(),
            "top_classes": [[name, prob] for name, prob in self.top_classes(ROOT, top_k)],
            "meta": self.meta,
            "levels": levels,
        }
        if self.superpixel_ids is not None:
            data["superpixel_ids"] = self.superpixel_ids.tolist()
        return data

    def save(self, path: str | Path) -> Path:
        """Write everything to one compressed NPZ file (exact round trip with ``load``); returns the path."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT_NAME),
            "version": np.array(FORMAT_VERSION),
            "n_levels": np.array(self.n_levels),
            "class_names": np.array(self.class_names, dtype=str),
            "prediction": self.prediction,
            "meta_json": np.array(json.dumps(self.meta)),
        }
        for level in range(self.n_levels):
            arrays[f"label_map_{level}"] = self.label_maps[level]
            arrays[f"parents_{level}"] = self.parents[level]
            arrays[f"evidence_{level}"] = self.evidence[level]
        if self.superpixel_ids is not None:
            arrays["superpixel_ids"] = self.superpixel_ids
        path = Path(path)
        with open(path, "wb") as file:  # a file object keeps numpy from appending ".npz"
            np.savez_compressed(file, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Hierarchy:
        """Read a hierarchy written by ``save`` (NPZ file) or ``save_pngs`` (directory)."""
        path = Path(path)
        if path.is_dir():
            return cls.from_pngs(path)
        with np.load(path, allow_pickle=False) as archive:
            if "format" not in archive or "version" not in archive:
                raise ValueError(f"{path} is not a hierseg hierarchy (no format tag)")
            _check_format(str(archive["format"]), int(archive["version"]), path)
            n_levels = int(archive["n_levels"])
            return cls(
                label_maps=[archive[f"label_map_{level}"] for level in range(n_levels)],
                parents=[archive[f"parents_{level}"] for level in range(n_levels)],
                evidence=[archive[f"evidence_{level}"] for level in range(n_levels)],
                class_names=archive["class_names"].tolist(),
                prediction=archive["prediction"],
                meta=json.loads(str(archive["meta_json"])),
                superpixel_ids=archive["superpixel_ids"] if "superpixel_ids" in archive else None,
            )

    def save_pngs(self, directory: str | Path, top_k: int = 5) -> Path:
        """Write ``level_<l>.png`` per level plus ``tree.json`` into ``directory``; returns it.

        Each PNG holds the node ids losslessly: 8-bit grayscale when every id fits in a byte,
        16-bit grayscale (``I;16``) otherwise. ``tree.json`` is ``to_json_dict`` with the full
        evidence and the PNG file name of each level, enough for ``from_pngs`` to rebuild an equal
        hierarchy.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = self.to_json_dict(top_k=top_k, include_evidence=True)
        for level, label_map in enumerate(self.label_maps):
            top_id = self._sizes[level] - 1
            if top_id > _MAX_PNG_ID:
                raise ValueError(f"level {level} has {top_id + 1} nodes; a 16-bit PNG holds at most {_MAX_PNG_ID + 1}")
            name = f"level_{level}.png"
            pixels = label_map.astype(np.uint8 if top_id <= 255 else np.uint16)
            Image.fromarray(pixels).save(directory / name)
            data["levels"][level]["label_map"] = name
        (directory / TREE_JSON).write_text(json.dumps(data))
        return directory

    @classmethod
    def from_pngs(cls, directory: str | Path) -> Hierarchy:
        """Read a directory written by ``save_pngs``."""
        directory = Path(directory)
        data = json.loads((directory / TREE_JSON).read_text())
        _check_format(data.get("format"), data.get("version"), directory / TREE_JSON)
        label_maps, parents, evidence = [], [], []
        for level, entry in enumerate(data["levels"]):
            if "evidence" not in entry or "label_map" not in entry:
                raise ValueError(f"{directory / TREE_JSON}: level {level} lacks its evidence or label map file name")
            with Image.open(directory / entry["label_map"]) as image:
                label_maps.append(np.asarray(image).astype(np.int32))
            parents.append(np.array([node["parent"] for node in entry["nodes"]] if level else [], np.int32))
            evidence.append(np.array(entry["evidence"], np.float32).reshape(entry["n_nodes"], len(data["class_names"])))
        superpixel_ids = data.get("superpixel_ids")
        return cls(
            label_maps,
            parents,
            evidence,
            data["class_names"],
            np.array(data["prediction"], np.float32),
            data["meta"],
            superpixel_ids=None if superpixel_ids is None else np.array(superpixel_ids, np.int64),
        )

    # ------------------------------------------------------------------ comparison
    def __eq__(self, other: object) -> bool:
        """Exact equality of every array, name and metadata entry."""
        if not isinstance(other, Hierarchy):
            return NotImplemented
        if self.n_levels != other.n_levels or (self.superpixel_ids is None) != (other.superpixel_ids is None):
            return False
        per_level = zip(
            self.label_maps + self.parents + self.evidence, other.label_maps + other.parents + other.evidence
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
        areas[leaf], bboxes[leaf] = _leaf_stats(self.label_maps[leaf], self._sizes[leaf])
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


# ---------------------------------------------------------------------- helpers
def _int_array(values: Any, name: str, ndim: int) -> np.ndarray:
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


def _check_compact_ids(ids: np.ndarray, name: str) -> int:
    """Number of distinct ids in an id array that must use exactly 0..n-1; raises otherwise."""
    if ids.size == 0:
        raise ValueError(f"{name} is empty")
    low, high = int(ids.min()), int(ids.max())
    if low < 0:
        raise ValueError(f"{name} has negative ids")
    if high >= np.iinfo(np.int32).max:
        raise ValueError(f"{name} has ids too large for int32")
    # For label maps, count per run of equal ids: as exact for presence and far fewer than pixels.
    present = ids.ravel()[_row_runs(ids)[0]] if ids.ndim == 2 else ids
    missing = np.flatnonzero(np.bincount(present, minlength=high + 1) == 0)
    if len(missing):
        raise ValueError(
            f"{name} must use every id in 0..{high}; {len(missing)} are missing (first: {missing[:5].tolist()})"
        )
    return high + 1


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


def _json_copy(meta: dict[str, Any]) -> dict[str, Any]:
    """A JSON round-tripped copy, so that what is stored is what ``load`` gives back."""
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        return json.loads(json.dumps(meta, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"meta must be JSON-serialisable: {error}") from None


def _check_format(name: Any, version: Any, source: Path) -> None:
    if name != FORMAT_NAME or version != FORMAT_VERSION:
        raise ValueError(f"{source} is not a hierseg hierarchy (format {name!r} version {version!r})")


def _row_runs(label_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the first and last pixel of every horizontal run of equal ids.

    Runs never cross rows, and the k-th start pairs with the k-th end. Every per-node extreme
    (first pixel, leftmost/rightmost column, top/bottom row) lies at a run end, so reducing over
    runs instead of pixels keeps the statistics cheap on large images.
    """
    height, width = label_map.shape
    starts = np.ones((height, width), bool)
    np.not_equal(label_map[:, 1:], label_map[:, :-1], out=starts[:, 1:])
    ends = np.ones((height, width), bool)
    ends[:, :-1] = starts[:, 1:]
    return np.flatnonzero(starts), np.flatnonzero(ends)


def _first_pixels(label_map: np.ndarray, n: int) -> np.ndarray:
    """Raster (row-major) index of the first pixel of each id."""
    starts, _ = _row_runs(label_map)
    first = np.full(n, label_map.size, np.int64)
    np.minimum.at(first, label_map.ravel()[starts], starts)
    return first


def _leaf_stats(label_map: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Areas (n,) and end-exclusive boxes (n, 4) of a compact label map."""
    width = label_map.shape[1]
    starts, ends = _row_runs(label_map)
    ids = label_map.ravel()[starts]
    areas = np.bincount(ids, weights=ends - starts + 1, minlength=n).astype(np.int64)
    box = np.empty((n, 4), np.int64)
    box[:, 0:2] = np.iinfo(np.int64).max
    box[:, 2:4] = -1
    np.minimum.at(box[:, 0], ids, starts % width)
    np.minimum.at(box[:, 1], ids, starts // width)
    np.maximum.at(box[:, 2], ids, ends % width + 1)
    np.maximum.at(box[:, 3], ids, ends // width + 1)
    return areas, box
