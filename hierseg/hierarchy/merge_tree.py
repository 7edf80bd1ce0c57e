"""The merge tree of one image: Ward merging of neighbouring superpixels run to a single segment.

Region merging (``hierseg.model.hybrid.region_merge``) stops at fixed counts. Run to one segment, the
same merging is a dendrogram, the kind of object gPb-owt-ucm's ultrametric contour map is: every merge
has a height, and cutting at one height gives a segmentation whose number of segments follows the photo
(a horse on grass falls into two or three segments long before a street does). This module builds that
tree and cuts it into display levels. Numpy only.

Conventions (those of ``scipy.cluster.hierarchy`` linkages): the ``n`` leaves are nodes ``0..n-1``;
merge ``k`` joins nodes ``merges[k]`` into node ``n + k``. ``heights`` never decrease along the merge
order, and a node is never lower than its children, so cutting at a height is a prefix of the merges.
Heights are fractions of the photo's total variance in the merge metric (the features are standardised
per photo), so one height means the same on every photo.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # only its arrays are read: the hierarchy package stays numpy-only
    from ..borders import RegionBorders

__all__ = ["MergeTree", "TreeConfig", "display_levels", "ward_tree"]


@dataclass(frozen=True)
class TreeConfig:
    """How a merge tree is built and cut into the levels a ``Hierarchy`` shows (plain data).

    ``size_power``, ``small_area`` and ``small_power`` shape the merge cost (``ward_tree``); ``border_sigma``
    (px on the model's view; 0: no border term, the cost of configs written before it), ``border_eps`` and
    ``border_power`` weigh it by the colour edge along the shared border (``hierseg.hierarchy.borders``);
    ``figure_weight`` (0: none, the cost of configs written before it) appends each superpixel's
    probability of being ground (``hierseg.figure_ground``, at geodesic scale ``figure_sigma``) to the
    metric, with that share of the metric's variance (``readout.merge_tree.append_cue``);
    ``thresholds`` are the cut heights of the merged display levels, coarsest first (``display_levels``),
    the same for every photo; ``min_segments`` and ``split_chains`` are the cutting rules.
    """

    thresholds: tuple[float, ...]
    size_power: float = 1.0
    small_area: float = 0.0
    min_segments: int = 2
    small_power: float = 1.0
    split_chains: bool = True
    border_sigma: float = 0.0
    border_eps: float = 0.05
    border_power: float = 1.0
    figure_weight: float = 0.0
    figure_sigma: float = 14.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        if not self.thresholds or any(a <= b for a, b in zip(self.thresholds, self.thresholds[1:])):
            raise ValueError(f"tree thresholds must be strictly decreasing, got {self.thresholds}")
        if not all(np.isfinite(self.thresholds)):
            raise ValueError(f"tree thresholds must be finite, got {self.thresholds}")
        if not 0 <= self.size_power <= 1:
            raise ValueError(f"size_power must lie in [0, 1], got {self.size_power}")
        if self.small_area < 0 or self.min_segments < 1:
            raise ValueError("small_area must be >= 0 and min_segments >= 1")
        if not self.size_power <= self.small_power <= 3:
            raise ValueError(f"small_power must lie in [size_power, 3], got {self.small_power}")
        if self.border_sigma < 0 or self.border_eps <= 0 or self.border_power < 0:
            raise ValueError("border_sigma must be >= 0, border_eps > 0 and border_power >= 0")
        if not (self.figure_weight >= 0 and self.figure_sigma > 0):
            raise ValueError("figure_weight must be >= 0 and figure_sigma > 0")

    def to_dict(self) -> dict[str, Any]:
        d = {"thresholds": list(self.thresholds), "size_power": self.size_power, "small_area": self.small_area,
             "min_segments": self.min_segments, "split_chains": self.split_chains}
        if self.small_power != 1.0:  # Ward's crumb factor, the default, reads and writes as before it existed
            d["small_power"] = self.small_power
        if self.border_sigma > 0:  # a config without the border term reads and writes as before it existed
            d.update(border_sigma=self.border_sigma, border_eps=self.border_eps, border_power=self.border_power)
        if self.figure_weight > 0:  # likewise the figure/ground cue
            d.update(figure_weight=self.figure_weight, figure_sigma=self.figure_sigma)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TreeConfig:
        return cls(**d)


@dataclass(frozen=True, eq=False)
class MergeTree:
    """A binary merge tree over ``n_leaves`` leaves (superpixels), as plain read-only arrays.

    Attributes:
        n_leaves: number of leaves; leaf ``i`` is node ``i``.
        merges: (m, 2) int64 node ids joined by each merge, m = n_leaves - 1 for a connected image.
        heights: (m,) float64 non-decreasing: each merge's cost, raised to its children's heights
            where the adjacency constraint made a merge cheaper than an earlier one (an inversion).
        costs: (m,) float64 the raw cost of each merge (Ward's: the area-weighted squared distance of
            the two regions' mean features, a fraction of the image's variance when those are standardised).
    """

    n_leaves: int
    merges: np.ndarray
    heights: np.ndarray
    costs: np.ndarray

    def __post_init__(self) -> None:
        merges = np.array(self.merges, np.int64).reshape(-1, 2)
        heights = np.array(self.heights, np.float64).reshape(-1)
        costs = np.array(self.costs, np.float64).reshape(-1)
        if not (len(merges) == len(heights) == len(costs)) or len(merges) >= max(self.n_leaves, 1):
            raise ValueError(f"{len(merges)} merges, {len(heights)} heights, {len(costs)} costs for {self.n_leaves} leaves")
        if len(heights) and (np.any(np.diff(heights) < 0) or not np.all(np.isfinite(heights))):
            raise ValueError("merge heights must be finite and never decrease along the merge order")
        created = self.n_leaves + np.arange(len(merges))
        if len(merges) and (merges.min() < 0 or np.any(merges >= created[:, None])):
            raise ValueError("a merge joins a node that does not exist yet")
        if len(np.unique(merges)) != merges.size:
            raise ValueError("a node is merged twice")
        object.__setattr__(self, "n_leaves", int(self.n_leaves))
        for name, value in (("merges", merges), ("heights", heights), ("costs", costs)):
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    @property
    def n_nodes(self) -> int:
        """Leaves and merged nodes: ``2 n_leaves - 1`` for a connected image."""
        return self.n_leaves + len(self.merges)

    def count_at(self, height: float) -> int:
        """Number of segments of the cut at ``height`` (merges at or below it are done)."""
        return self.n_leaves - int(np.searchsorted(self.heights, height, side="right"))

    def labels(self, n_merges: int) -> np.ndarray:
        """(n_leaves,) segment id of every leaf after the first ``n_merges`` merges, ids ``0..k-1`` in
        order of each segment's smallest leaf."""
        if not 0 <= n_merges <= len(self.merges):
            raise ValueError(f"n_merges must lie in 0..{len(self.merges)}, got {n_merges}")
        return _compact(_roots(self, np.arange(len(self.merges)) < n_merges))

    def cut(self, height: float) -> np.ndarray:
        """(n_leaves,) segment ids after every merge at or below ``height``."""
        return self.labels(self.n_leaves - self.count_at(height))

    def cut_count(self, count: int) -> np.ndarray:
        """(n_leaves,) segment ids with ``count`` segments (clamped to what the tree can give)."""
        count = int(np.clip(count, self.n_leaves - len(self.merges), self.n_leaves))
        return self.labels(self.n_leaves - count)

    def restrict(self, keep: np.ndarray) -> MergeTree:
        """The tree over the kept leaves only (renumbered ``0..k-1`` in order), heights unchanged.

        A merge that loses one side passes the other side through; a merge that loses both vanishes.
        Used when a resize drops superpixels from the photo-size map.
        """
        keep = np.asarray(keep, bool)
        if keep.shape != (self.n_leaves,):
            raise ValueError(f"keep must have shape ({self.n_leaves},)")
        new_id = np.full(self.n_nodes, -1, np.int64)
        n_new = int(keep.sum())
        new_id[: self.n_leaves][keep] = np.arange(n_new)
        kept = []
        for k, (a, b) in enumerate(self.merges.tolist()):
            ia, ib = new_id[a], new_id[b]
            if ia >= 0 and ib >= 0:
                new_id[self.n_leaves + k] = n_new + len(kept)
                kept.append(k)
            else:
                new_id[self.n_leaves + k] = max(ia, ib)
        rows = np.array(kept, np.int64)
        return MergeTree(n_new, new_id[self.merges[rows]].reshape(-1, 2), self.heights[rows], self.costs[rows])

    def relabel_leaves(self, old_of_new: np.ndarray) -> MergeTree:
        """The same tree with leaf ``old_of_new[i]`` renamed ``i`` (a permutation); merged nodes keep their ids."""
        old_of_new = np.asarray(old_of_new, np.int64)
        if not np.array_equal(np.sort(old_of_new), np.arange(self.n_leaves)):
            raise ValueError(f"old_of_new must be a permutation of 0..{self.n_leaves - 1}")
        new_id = np.arange(self.n_nodes)
        new_id[old_of_new] = np.arange(self.n_leaves)
        return MergeTree(self.n_leaves, new_id[self.merges], self.heights, self.costs)

    def to_json_dict(self) -> dict[str, Any]:
        return {"n_leaves": self.n_leaves, "merges": self.merges.tolist(),
                "heights": self.heights.tolist(), "costs": self.costs.tolist()}

    @classmethod
    def from_json_dict(cls, d: dict[str, Any]) -> MergeTree:
        return cls(int(d["n_leaves"]), np.array(d["merges"], np.int64).reshape(-1, 2), np.array(d["heights"], np.float64),
                   np.array(d["costs"], np.float64))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MergeTree):
            return NotImplemented
        return (self.n_leaves == other.n_leaves and np.array_equal(self.merges, other.merges)
                and np.array_equal(self.heights, other.heights) and np.array_equal(self.costs, other.costs))

    __hash__ = None  # type: ignore[assignment]


def _size_factor(reduced: np.ndarray | float, size_power: float, small_area: float,
                 small_power: float = 1.0) -> np.ndarray | float:
    """``m ** size_power`` for the reduced mass m = w_a w_b / (w_a + w_b); below ``small_area`` it falls
    like ``m ** small_power`` (1: Ward's factor), continuous at ``small_area``, so crumbs are absorbed
    before distinct regions meet."""
    factor = np.power(reduced, size_power)
    if small_area > 0 and small_power != size_power:
        factor = factor * np.power(np.minimum(reduced, small_area) / small_area, small_power - size_power)
    return factor


def _pair_cost(mass_a: float, centre_a: np.ndarray, mass_b: float, centre_b: np.ndarray, size_power: float,
               small_area: float, small_power: float) -> float:
    diff = centre_a - centre_b
    reduced = mass_a * mass_b / (mass_a + mass_b)
    return float(_size_factor(reduced, size_power, small_area, small_power)) * float(diff @ diff)


def ward_tree(features: np.ndarray, areas: np.ndarray, edges: np.ndarray, size_power: float = 1.0,
              small_area: float = 0.0, border: RegionBorders | None = None, border_eps: float = 0.05,
              border_power: float = 1.0, small_power: float = 1.0) -> MergeTree:
    """Merge neighbouring leaves by Ward's criterion, one pair at a time, down to one segment.

    Args:
        features: (n, D) per-leaf mean features (the merge metric's space).
        areas: (n,) positive leaf weights (pixel counts or image fractions).
        edges: (E, 2) pairs of leaves that touch. Components the edges leave apart are joined last,
            cheapest pair first, so the tree always ends in one segment.
        size_power, small_area, small_power: see below.
        border: the edge strength along the border of touching leaves (``borders.region_borders`` over
            the leaves' label map); None: Ward's cost alone.
        border_eps, border_power: see below.

    Merging i and j costs ``w_i w_j / (w_i + w_j) |c_i - c_j|^2`` (w: area, c: mean feature), the
    increase of the within-segment sum of squares; with features standardised to unit total variance
    the costs of all merges add up to 1. ``size_power`` < 1 raises the size factor to that power (0:
    merge the closest means first, whatever their size) for pairs whose reduced mass is above
    ``small_area`` (in the units of ``areas``); below it the factor falls like ``m ** small_power`` (1:
    Ward's; above 1 sooner still), so small crumbs are still absorbed first. With ``border``, the cost
    is multiplied by ``(border_eps + s) ** border_power``, s the mean edge strength along the pair's whole shared border; a merged region's border with a
    neighbour is the union of its children's (strength sums and lengths add), so s stays the mean over
    the border the two regions share. Pairs that ``edges`` link without a border in ``border`` count as
    separated by the strongest edge (s = 1). Ties break on the smaller node ids, so the tree is deterministic.
    """
    centre = np.asarray(features, np.float64)
    mass = np.asarray(areas, np.float64)
    n = len(mass)
    if centre.ndim != 2 or centre.shape[0] != n or n == 0:
        raise ValueError(f"features {centre.shape} and areas {mass.shape} need one row per leaf (at least one)")
    if np.any(mass <= 0):
        raise ValueError("every leaf needs a positive area")
    if centre.shape[1] > n:
        # Every centroid difference lies in the span of the centred leaves: coordinates in it keep all
        # distances and make each cost update O(n) instead of O(D). They come from the (n, n) Gram
        # matrix's eigenvectors (X X^T = V diag(w) V^T, so X's rows sit at V sqrt(w)), ~7x cheaper than
        # an SVD of the (n, D) features for D ~ 3n.
        centred = centre - centre.mean(0)
        eigenvalues, vectors = np.linalg.eigh(centred @ centred.T)
        keep = eigenvalues > eigenvalues.max() * 1e-12
        centre = vectors[:, keep] * np.sqrt(eigenvalues[keep])
    total = 2 * n - 1
    centres = np.zeros((total, centre.shape[1]))
    centres[:n] = centre
    masses = np.zeros(total)
    masses[:n] = mass
    alive = np.zeros(total, bool)
    alive[:n] = True
    neighbours: list[set[int]] = [set() for _ in range(total)]
    for a, b in np.asarray(edges, np.int64).reshape(-1, 2).tolist():
        if a != b:
            neighbours[a].add(b)
            neighbours[b].add(a)
    # Border of every touching pair (smaller id first): [strength sum, length], merged as regions merge.
    shared: dict[tuple[int, int], list[float]] = {}
    if border is not None:
        if len(border.edges) and (border.edges.min() < 0 or border.edges.max() >= n):
            raise ValueError(f"border pairs name leaves outside 0..{n - 1}")
        for (a, b), s, length in zip(border.edges.tolist(), border.strength.tolist(), border.length.tolist()):
            if a != b:
                shared[min(a, b), max(a, b)] = [s, length]
                neighbours[a].add(b)
                neighbours[b].add(a)

    def border_factor(a: int, b: int) -> float:
        if border is None:
            return 1.0
        s, length = shared.get((min(a, b), max(a, b)), (1.0, 1.0))
        return float((border_eps + s / length) ** border_power)

    def pair_cost(a: int, b: int) -> float:
        return _pair_cost(masses[a], centres[a], masses[b], centres[b], size_power, small_area,
                          small_power) * border_factor(a, b)

    heap = [(pair_cost(a, b), a, b) for a in range(n) for b in neighbours[a] if a < b]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    costs: list[float] = []
    heights: list[float] = []
    node_height = np.zeros(total)
    nxt = n

    def join(a: int, b: int, cost: float) -> int:
        nonlocal nxt
        node = nxt
        nxt += 1
        masses[node] = masses[a] + masses[b]
        centres[node] = (masses[a] * centres[a] + masses[b] * centres[b]) / masses[node]
        alive[a] = alive[b] = False
        alive[node] = True
        node_height[node] = max(cost, node_height[a], node_height[b], heights[-1] if heights else 0.0)
        merges.append((a, b))
        costs.append(cost)
        heights.append(node_height[node])
        around = (neighbours[a] | neighbours[b]) - {a, b}
        neighbours[node] = around
        for k in around:
            neighbours[k].discard(a)
            neighbours[k].discard(b)
            neighbours[k].add(node)
        if border is not None:
            shared.pop((min(a, b), max(a, b)), None)
            for k in around:  # the node's border with k is its children's borders with k together
                sa = shared.pop((min(a, k), max(a, k)), (0.0, 0.0))
                sb = shared.pop((min(b, k), max(b, k)), (0.0, 0.0))
                if sa[1] + sb[1] > 0:
                    shared[k, node] = [sa[0] + sb[0], sa[1] + sb[1]]
        if around:
            others = np.fromiter(around, np.int64)
            diff = centres[others] - centres[node]
            reduced = masses[others] * masses[node] / (masses[others] + masses[node])
            pair = _size_factor(reduced, size_power, small_area, small_power) * np.einsum("ij,ij->i", diff, diff)
            if border is not None:
                pair = pair * np.array([border_factor(k, node) for k in others.tolist()])
            for k, c in zip(others.tolist(), pair.tolist()):
                heapq.heappush(heap, (c, k, node))
        return node

    while heap:
        cost, a, b = heapq.heappop(heap)
        if alive[a] and alive[b]:  # stale entries (a side already merged) are skipped
            join(a, b, cost)
    # Disconnected adjacency (padding, a broken map): join what is left, cheapest pair first.
    rest = [int(i) for i in np.flatnonzero(alive[:nxt])]
    while len(rest) > 1:
        best = min((pair_cost(a, b), a, b) for i, a in enumerate(rest) for b in rest[i + 1:])
        node = join(best[1], best[2], best[0])
        rest = [r for r in rest if r not in (best[1], best[2])] + [node]
    return MergeTree(n, np.array(merges, np.int64).reshape(-1, 2), np.array(heights), np.array(costs))


def display_levels(tree: MergeTree, heights: Sequence[float], min_segments: int = 2,
                   split_chains: bool = True) -> list[np.ndarray]:
    """The merged levels a user sees, coarsest first: for every leaf, the merge-tree node that is its
    segment at each of ``heights`` (strictly decreasing cut heights).

    Rules:

    * the coarsest level has at least ``min_segments`` segments (a photo never shows as one segment);
    * with ``split_chains``, a segment that the next height would leave whole is split there at its
      own top merge (Ward's best split of it) instead, so no segment passes unchanged to the next level
      and the tree has no single-child chains at the source; only a single leaf cannot split.

    Returns one (n_leaves,) int64 array of node ids per level; the levels nest. Every segment is a node
    of ``tree``, so its id names it across cuts at any heights.
    """
    heights = [float(t) for t in heights]
    if not heights or any(a <= b for a, b in zip(heights, heights[1:])):
        raise ValueError(f"cut heights must be strictly decreasing, got {heights}")
    top = max(tree.count_at(heights[0]), min(min_segments, tree.n_leaves))
    done = np.arange(len(tree.merges)) < tree.n_leaves - top  # merges are ordered by height: a cut is a prefix
    roots = _roots(tree, done)
    levels = [roots]
    for height in heights[1:]:
        done = done & (tree.heights <= height)
        if split_chains:
            merged_roots = np.unique(roots[roots >= tree.n_leaves])
            done[merged_roots - tree.n_leaves] = False
        roots = _roots(tree, done)
        levels.append(roots)
    return levels


def _roots(tree: MergeTree, done: np.ndarray) -> np.ndarray:
    """(n_leaves,) the top node of every leaf's segment when exactly the merges marked ``done`` are
    applied (a set closed under children, as every cut of the tree is)."""
    parent = np.arange(tree.n_nodes)
    chosen = np.flatnonzero(done)
    parent[tree.merges[chosen].ravel()] = np.repeat(tree.n_leaves + chosen, 2)
    root = parent
    while True:  # pointer jumping
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root[: tree.n_leaves]
        root = nxt


def _compact(roots: np.ndarray) -> np.ndarray:
    """Segment ids 0..k-1 in order of each segment's smallest leaf."""
    first = np.full(roots.max() + 1, len(roots))
    np.minimum.at(first, roots, np.arange(len(roots)))
    used = np.flatnonzero(first < len(roots))
    rank = np.empty(roots.max() + 1, np.int64)
    rank[used[np.argsort(first[used])]] = np.arange(len(used))
    return rank[roots]
