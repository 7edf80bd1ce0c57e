"""Classic bottom-up grouping baselines that output a hierarchy like hierseg: label maps, coarsest first.

* :func:`slic_rag_levels`: SLIC superpixels greedily merged by mean colour on their region adjacency
  graph, cut at exact segment counts; the levels are nested. :func:`slic_rag_matched` cuts it at
  another method's counts and records the counts it could not match.
* :func:`felzenszwalb_levels`: Felzenszwalb-Huttenlocher graph segmentation at several scales; the
  levels are independent runs and are *not* nested.

All label maps are ``int64`` with contiguous labels ``0..n-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import NDArray
from skimage.graph import RAG, merge_hierarchical, rag_mean_color
from skimage.segmentation import felzenszwalb, slic
from skimage.util import img_as_float

from hierseg.labels import contiguous_labels
from hierseg.resize import resize_nearest

LabelMap = NDArray[np.int64]


def _contiguous(labels: NDArray[np.integer]) -> LabelMap:
    """Relabel to ``0..n-1`` in increasing order of the original labels, as the int64 maps of this module."""
    return contiguous_labels(labels).astype(np.int64)


def _check_rgb(rgb: NDArray) -> NDArray[np.float64]:
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {rgb.shape}")
    return img_as_float(rgb)


def _merge_mean_color(graph: RAG, src: int, dst: int) -> None:
    """Fold ``src``'s colour statistics into ``dst`` (called just before the two nodes merge)."""
    node = graph.nodes[dst]
    node["total color"] += graph.nodes[src]["total color"]
    node["pixel count"] += graph.nodes[src]["pixel count"]
    node["mean color"] = node["total color"] / node["pixel count"]


def _mean_color_weight(graph: RAG, src: int, dst: int, neighbour: int) -> dict[str, float]:
    """Edge weight between the merged node ``dst`` and a neighbour: distance of their mean colours."""
    diff = graph.nodes[dst]["mean color"] - graph.nodes[neighbour]["mean color"]
    return {"weight": float(np.linalg.norm(diff))}


def merge_order(image: NDArray[np.float64], superpixels: LabelMap) -> list[tuple[int, int]]:
    """The complete greedy mean-colour merge sequence of a superpixel map, as ``(src, dst)`` pairs.

    ``skimage.graph.merge_hierarchical`` stops at a colour-distance threshold, not at a segment count,
    so we run it with an infinite threshold (until one region is left) and record every merge; replaying
    the first ``n - k`` merges then gives exactly ``k`` segments. In each pair ``src`` is absorbed into
    ``dst``, which keeps its id.
    """
    rag = rag_mean_color(image, superpixels)
    merges: list[tuple[int, int]] = []

    def record_and_merge(graph: RAG, src: int, dst: int) -> None:
        merges.append((src, dst))
        _merge_mean_color(graph, src, dst)

    merge_hierarchical(
        superpixels,
        rag,
        thresh=np.inf,
        rag_copy=False,
        in_place_merge=True,
        merge_func=record_and_merge,
        weight_func=_mean_color_weight,
    )
    return merges


def cut_merge_order(superpixels: LabelMap, merges: Sequence[tuple[int, int]], segment_counts: Sequence[int]) -> list[LabelMap]:
    """Label maps after replaying ``merges`` down to each of ``segment_counts``, in the given order."""
    n_superpixels = int(superpixels.max()) + 1
    wanted = set(segment_counts)
    if min(wanted) < n_superpixels - len(merges) or max(wanted) > n_superpixels:
        raise ValueError(f"{n_superpixels} superpixels and {len(merges)} merges cannot give counts {sorted(wanted)}")
    owner = np.arange(n_superpixels)  # current region of every superpixel
    snapshots = {n_superpixels: owner.copy()} if n_superpixels in wanted else {}
    for done, (src, dst) in enumerate(merges, start=1):
        owner[owner == src] = dst
        if n_superpixels - done in wanted:
            snapshots[n_superpixels - done] = owner.copy()
    return [_contiguous(snapshots[k][superpixels]) for k in segment_counts]


def slic_superpixels(rgb: NDArray, n_superpixels: int = 400, compactness: float = 10.0) -> LabelMap:
    """SLIC superpixels with contiguous labels (``n_superpixels`` is SLIC's target; it may make a few fewer or more)."""
    return _contiguous(slic(_check_rgb(rgb), n_segments=n_superpixels, compactness=compactness, start_label=0))


def slic_rag_levels(
    rgb: NDArray,
    segment_counts: Sequence[int],
    n_superpixels: int = 400,
    compactness: float = 10.0,
) -> list[LabelMap]:
    """Nested segmentations with exactly ``segment_counts`` segments each, coarsest first.

    SLIC (:func:`slic_superpixels`) gives the finest partition; adjacent regions are then merged
    greedily, closest mean colour first, with colour statistics updated after each merge
    (``skimage.graph.merge_hierarchical``). The merge sequence is recorded and cut at each requested
    count, so every level is a union of regions of the next finer one. ``segment_counts`` must be
    strictly increasing and at most the number of SLIC superpixels. Deterministic.
    """
    counts = [int(c) for c in segment_counts]
    if not counts or counts[0] < 1 or any(a >= b for a, b in zip(counts, counts[1:])):
        raise ValueError(f"segment_counts must be positive and strictly increasing, got {list(segment_counts)}")
    image = _check_rgb(rgb)
    superpixels = slic_superpixels(rgb, n_superpixels, compactness)
    available = int(superpixels.max()) + 1
    if counts[-1] > available:
        raise ValueError(
            f"asked for {counts[-1]} segments but SLIC produced only {available} superpixels; raise n_superpixels"
        )
    return cut_merge_order(superpixels, merge_order(image, superpixels), counts)


@dataclass(frozen=True)
class MatchedLevels:
    """Label maps cut to requested counts, and the count each level actually has."""

    label_maps: list[LabelMap]
    counts: list[int]


def slic_rag_matched(
    rgb: NDArray, segment_counts: Sequence[int], n_superpixels: int = 400, compactness: float = 10.0
) -> MatchedLevels:
    """SLIC+RAG cut to another method's per-level counts: one level per requested count, in their order.

    Unlike :func:`slic_rag_levels` the counts may repeat or decrease (a hierarchy can have two levels
    with the same count). A count above the number of superpixels SLIC made cannot be matched: that
    level gets all SLIC superpixels and ``counts`` says so; no level is ever dropped or shifted.
    """
    requested = [int(c) for c in segment_counts]
    if not requested or min(requested) < 1:
        raise ValueError(f"segment counts must be positive, got {requested}")
    image = _check_rgb(rgb)
    superpixels = slic_superpixels(rgb, n_superpixels, compactness)
    available = int(superpixels.max()) + 1
    produced = [min(c, available) for c in requested]
    distinct = sorted(set(produced))
    maps = dict(zip(distinct, cut_merge_order(superpixels, merge_order(image, superpixels), distinct), strict=True))
    return MatchedLevels([maps[c] for c in produced], produced)


def felzenszwalb_levels(
    rgb: NDArray,
    scales: Sequence[float] = (1000.0, 300.0, 100.0),
    sigma: float = 0.8,
    min_size: int = 20,
) -> list[LabelMap]:
    """Felzenszwalb-Huttenlocher segmentations at several ``scales``, ordered by segment count (fewest first).

    A larger scale favours larger segments, but each scale is an independent run: levels are not
    nested and counts are not guaranteed to follow the scales, hence the explicit ordering by count
    (ties keep the order of ``scales``).
    """
    if not scales:
        raise ValueError("need at least one scale")
    image = _check_rgb(rgb)
    maps = [_contiguous(felzenszwalb(image, scale=s, sigma=sigma, min_size=min_size)) for s in scales]
    return sorted(maps, key=lambda m: int(m.max()) + 1)


def spherical_kmeans(points: NDArray, k: int, weights: NDArray | None = None, iterations: int = 30,
                     seed: int = 0) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Weighted spherical k-means (cosine similarity) with k-means++ seeding. Returns (labels, unit centres).

    Deterministic for a given ``seed``. Empty clusters are re-seeded on the worst-fitting point, so
    exactly ``min(k, number of distinct points)`` clusters come back non-empty.
    """
    x = points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    k = min(k, len(x))
    rng = np.random.default_rng(seed)
    centres = [x[int(np.argmax(w))]]
    for _ in range(1, k):
        dist = np.maximum(0.0, 1.0 - np.max(x @ np.array(centres).T, axis=1)) * w
        centres.append(x[rng.choice(len(x), p=dist / dist.sum())] if dist.sum() > 0 else x[rng.integers(len(x))])
    c = np.array(centres)
    for _ in range(iterations):
        sim = x @ c.T
        labels = sim.argmax(axis=1)
        for j in range(k):
            members = labels == j
            if not members.any():
                worst = int(np.argmin(sim[np.arange(len(x)), labels]))
                labels[worst] = j
                members = labels == j
            centre = (x[members] * w[members, None]).sum(0)
            c[j] = centre / max(np.linalg.norm(centre), 1e-12)
    labels = (x @ c.T).argmax(axis=1)
    return _contiguous(labels), c[np.unique(labels)]


def kmeans_token_levels(tokens: NDArray, image_shape: tuple[int, int], segment_counts: Sequence[int],
                        seed: int = 0) -> list[LabelMap]:
    """The paper's ViT baseline readout: hierarchical spherical k-means on a ViT's patch tokens.

    ``tokens`` is the (gh, gw, C) last-layer patch grid. The finest level clusters the token features
    bilinearly upsampled to the image (every pixel takes its nearest prototype); each coarser level
    clusters the previous level's prototypes (weighted by their pixel counts), so levels nest.
    ``segment_counts`` are the wanted counts, coarsest first; a count above the number of tokens is
    capped there. Returns label maps coarsest first.
    """
    import torch
    import torch.nn.functional as F

    height, width = image_shape
    grid = torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.float32)).permute(2, 0, 1)[None]
    # Pixel features at up to 1/2 resolution, then nearest back up: the clustering is the same and
    # it keeps a 2048 px photo affordable.
    small = (max(1, height // 2), max(1, width // 2))
    pixels = F.interpolate(grid, size=small, mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
    pixels = F.normalize(pixels.reshape(-1, pixels.shape[-1]), dim=-1).numpy()
    flat_tokens = tokens.reshape(-1, tokens.shape[-1])
    counts = [min(int(c), len(flat_tokens)) for c in segment_counts]
    labels_tok, centres = spherical_kmeans(flat_tokens, counts[-1], seed=seed)
    pixel_labels = (pixels @ centres.T).argmax(axis=1)
    maps_small = [pixel_labels]
    weights = np.bincount(pixel_labels, minlength=len(centres)).astype(float)
    for k in reversed(counts[:-1]):
        parent, centres = spherical_kmeans(centres, k, weights=np.maximum(weights, 1e-6), seed=seed)
        maps_small.append(parent[maps_small[-1]])
        weights = np.bincount(parent, weights=weights, minlength=len(centres))
    return [_contiguous(resize_nearest(m.reshape(small), height, width)) for m in reversed(maps_small)]
