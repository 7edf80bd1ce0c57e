"""Scorers of segmentation methods: each accumulates one method's scores on one data set, image by image.

A method's output on one image is a :class:`Segmentation` (label maps coarsest first, with the tree
when the levels are nested, and the merge tree when the method has one). Every scorer has ``add(segmentation, ground_truth)`` and ``summary()``;
the evaluation gives each (method, data set) pair fresh scorers and merges their summaries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from .boundaries import evaluate_segmentation_boundaries, summarize_boundaries
from .objects import QUESTIONS, WHOLE_IOU, object_ious
from .parts import majority_label_confusion, miou_from_confusion
from .regions import evaluate_regions, summarize_regions
from .tree import Fraction, one_piece_segments, single_child_parents
from .ultrametric import HEIGHTS, Cuttable, evaluate_tree

# The shape-of-the-tree statistics look at the coarse segments a user sees first.
COARSE_LEVELS = 2


@dataclass
class Segmentation:
    """One method's levels on one image, coarsest first."""

    label_maps: list[np.ndarray]
    parents: list[np.ndarray] | None  # as Hierarchy.parents; None when the levels are not nested
    requested: list[int] | None = None  # the counts asked for, when the method is cut to CAST's counts
    merge_tree: Cuttable | None = None  # its leaves are the ids of the finest label map (Hierarchy.merge_tree)


def counts_of(levels: Sequence[np.ndarray]) -> list[int]:
    """Segments per level of label maps with contiguous labels."""
    return [int(m.max()) + 1 for m in levels]


class Scorer(Protocol):
    def add(self, seg: Segmentation, gt: Any) -> None: ...

    def summary(self) -> dict[str, Any]: ...


@dataclass
class CountScorer:
    """Segments per level, and for matched methods how often a level missed the requested count."""

    produced: list[list[int]] = field(default_factory=list)
    requested: list[list[int]] = field(default_factory=list)

    def add(self, seg: Segmentation, gt: Any) -> None:
        counts = counts_of(seg.label_maps)
        if self.produced and len(counts) != len(self.produced[0]):
            raise ValueError(f"{len(counts)} levels on this image, {len(self.produced[0])} on the first: "
                             "levels must correspond across images to be scored per level")
        if seg.requested is not None and len(seg.requested) != len(counts):
            raise ValueError(f"asked for {len(seg.requested)} levels, got {len(counts)}")
        self.produced.append(counts)
        if seg.requested is not None:
            self.requested.append(list(seg.requested))

    def summary(self) -> dict[str, Any]:
        produced = np.array(self.produced)
        coarsest = produced[:, 0]
        out: dict[str, Any] = {"images": len(self.produced),
                               "segments_per_level": produced.mean(axis=0).tolist(),
                               # Does the coarsest count follow the photo, and is any level one segment?
                               "coarsest_segments_min_median_max": [int(coarsest.min()), float(np.median(coarsest)),
                                                                    int(coarsest.max())],
                               "single_segment_levels": int((produced == 1).sum())}
        if self.requested:
            produced, requested = np.array(self.produced), np.array(self.requested)
            out["requested_segments_per_level"] = requested.mean(axis=0).tolist()
            out["unmatched_images_per_level"] = (produced != requested).sum(axis=0).tolist()
        return out


@dataclass
class BsdsScorer:
    """Region and boundary metrics against the human segmentations."""

    regions: list = field(default_factory=list)
    boundaries: list = field(default_factory=list)
    with_boundaries: bool = True  # boundary matching is most of the scoring time: off for ablation rows

    def add(self, seg: Segmentation, gt: Any) -> None:
        self.regions.append(evaluate_regions(seg.label_maps, gt.segmentations))
        if self.with_boundaries:
            self.boundaries.append(evaluate_segmentation_boundaries(seg.label_maps, gt.boundaries))

    def summary(self) -> dict[str, Any]:
        regions = summarize_regions(self.regions)
        out: dict[str, Any] = {
            "covering_per_level": regions.covering.tolist(), "pri_per_level": regions.pri.tolist(),
            "vi_per_level": regions.voi.tolist(),
            "covering_ods": regions.cover_ods, "covering_ois": regions.cover_ois,
            "covering_ods_level": regions.cover_ods_level,
            "pri_ods": regions.pri_ods, "pri_ois": regions.pri_ois,
            "vi_ods": regions.voi_ods, "vi_ois": regions.voi_ois,
        }
        if self.boundaries:
            bounds = summarize_boundaries(self.boundaries, interpolate=False)
            out.update({"boundary_f_per_level": bounds.f.tolist(), "boundary_f_ods": bounds.ods.f, "boundary_f_ois": bounds.ois.f})
        return out


@dataclass
class UltrametricScorer:
    """Region metrics of the merge tree cut at a fixed grid of heights: ODS (one height for the data
    set) and OIS (best height per image), as the benchmark scores gPb-owt-ucm (:mod:`.ultrametric`).

    Methods without a merge tree add nothing and summarise to nothing; a method must have a tree on
    every image or on none.
    """

    heights: Sequence[float] = field(default_factory=lambda: HEIGHTS.tolist())
    regions: list = field(default_factory=list)
    counts: list = field(default_factory=list)
    without_tree: int = 0

    def add(self, seg: Segmentation, gt: Any) -> None:
        if seg.merge_tree is None:
            self.without_tree += 1
        else:
            evaluated, counts = evaluate_tree(seg.label_maps[-1], seg.merge_tree, gt.segmentations, self.heights)
            self.regions.append(evaluated)
            self.counts.append(counts)
        if self.regions and self.without_tree:
            raise ValueError("a merge tree on some images and not on others: the cuts would not be comparable")

    def summary(self) -> dict[str, Any]:
        if not self.regions:
            return {}
        s = summarize_regions(self.regions, self.heights)
        counts = np.mean(self.counts, axis=0)
        return {"ultrametric": {
            "images": len(self.regions), "heights": list(map(float, self.heights)),
            "covering_per_height": s.covering.tolist(), "pri_per_height": s.pri.tolist(), "vi_per_height": s.voi.tolist(),
            "segments_per_height": counts.tolist(),
            "covering_ods": s.cover_ods, "covering_ois": s.cover_ois, "covering_ods_height": float(s.thresholds[s.cover_ods_level]),
            "covering_ods_segments": float(counts[s.cover_ods_level]),
            "pri_ods": s.pri_ods, "pri_ois": s.pri_ois, "pri_ods_height": float(s.thresholds[s.pri_ods_level]),
            "vi_ods": s.voi_ods, "vi_ois": s.voi_ois, "vi_ods_height": float(s.thresholds[s.voi_ods_level]),
        }}


@dataclass
class TreeScorer:
    """Coarse segments in one 4-connected piece; parent nodes with a single child (nested methods only)."""

    one_piece: list[Fraction] = field(default_factory=list)
    single_child: list[Fraction] = field(default_factory=list)
    nested: bool = True

    def add(self, seg: Segmentation, gt: Any) -> None:
        pieces = [one_piece_segments(m) for m in seg.label_maps[:COARSE_LEVELS]]
        self.one_piece = [a + b for a, b in zip(self.one_piece, pieces, strict=True)] if self.one_piece else pieces
        if seg.parents is None:
            self.nested = False
            return
        single = single_child_parents(seg.parents)
        self.single_child = [a + b for a, b in zip(self.single_child, single, strict=True)] if self.single_child else single

    def summary(self) -> dict[str, Any]:
        tree: dict[str, Any] = {
            "one_piece_per_level": [f.value for f in self.one_piece],
            "one_piece_coarse": sum(self.one_piece, Fraction(0, 0)).value,
            "coarse_segments": sum(self.one_piece, Fraction(0, 0)).total,
        }
        if self.nested and self.single_child:
            tree["single_child_per_level"] = [f.value for f in self.single_child]
            tree["single_child"] = sum(self.single_child, Fraction(0, 0)).value
            tree["parent_nodes"] = sum(self.single_child, Fraction(0, 0)).total
        return {"tree": tree}


@dataclass
class MiouScorer:
    """Majority-label mIoU of every level against every ground-truth level, pooled over images."""

    n_classes: Sequence[int]
    confusions: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def add(self, seg: Segmentation, gt: Any) -> None:
        for li, level in enumerate(seg.label_maps):
            for gi, (g, n) in enumerate(zip(gt, self.n_classes, strict=True)):
                c = majority_label_confusion(level, g, n)
                self.confusions[li, gi] = self.confusions.get((li, gi), 0) + c

    def summary(self) -> dict[str, Any]:
        levels = sorted({li for li, _ in self.confusions})
        return {"miou_per_level": [[miou_from_confusion(self.confusions[li, gi]) for gi in range(len(self.n_classes))]
                                   for li in levels]}


@dataclass
class ObjectShareScorer:
    """The share of photos where ONE segment (or the union of two) covers the object at IoU >= ``threshold``
    (:mod:`.objects`): at the coarsest level, at any level above the leaves, anywhere in the merge tree,
    each by one segment and by at most two disjoint ones, and the superpixels' bound.

    The object is the ground truth's first level's foreground (a horse, the people of a Pascal-Part
    photo); photos where it covers less than ``min_cover`` of the pixels are left out. The shares are
    given for the whole set and for its two halves in the set's order (photos left out included in
    the split, so the halves do not depend on the filter): ``dev`` the first (for choosing settings),
    ``held_out`` the second (never tuned on).
    """

    min_cover: float = 0.0
    threshold: float = WHOLE_IOU
    ious: list = field(default_factory=list)  # per photo: None (left out) or object_ious' dict (QUESTIONS)

    def add(self, seg: Segmentation, gt: Any) -> None:
        mask = np.asarray(gt[0]) > 0
        if mask.mean() < self.min_cover or not mask.any():
            self.ious.append(None)
            return
        merges = None if seg.merge_tree is None else seg.merge_tree.merges
        self.ious.append(object_ious(seg.label_maps, mask, merges))

    def summary(self) -> dict[str, Any]:
        half = len(self.ious) // 2
        parts = {"all": self.ious, "dev": self.ious[:half], "held_out": self.ious[half:]}
        out: dict[str, Any] = {"threshold": self.threshold, "min_cover": self.min_cover}
        for name, rows in parts.items():
            kept = [r for r in rows if r is not None]
            out[name] = {"photos": len(kept), **{key: float(np.mean([r[key] >= self.threshold for r in kept])) if kept else None
                                                 for key in QUESTIONS}}
        return {"objects": out}
