"""The merge tree: Ward merging of neighbouring superpixels in the model's learned metric, down to one
segment (``hierseg.hierarchy.merge_tree``), cut to display levels. Set by the checkpoint config's
``tree`` entry (``TreeConfig``); it needs a pooling that gives a tree (``CAST.tree_features``).

The ``Hierarchy`` carries the tree and the evidence of every merge-tree node, so ``Hierarchy.recut``
reads any granularity without the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from ..borders import colour_edges, region_borders
from ..figure_ground import background_probability
from ..hierarchy import Hierarchy
from ..hierarchy.build import cut_merge_tree
from ..hierarchy.merge_tree import MergeTree, TreeConfig, ward_tree
from ..model.hybrid.region_merge import weighted_standardise
from .base import Grouping, Readout

if TYPE_CHECKING:
    from ..checkpoints import CheckpointConfig
    from ..labeller import PhotoEvidence
    from ..model import CAST, CASTOutput
    from ..preprocess import PreparedImage


@dataclass
class TreeInputs:
    """What the merge tree reads of one photo: its view's S superpixels as regions in the model's metric."""

    features: np.ndarray  # (S, D) float64, CAST.tree_features
    areas: np.ndarray  # (S,) float64 shares of the view, summing to 1
    edges: np.ndarray  # (E, 2) int64 touching superpixels a < b
    view_rgb: np.ndarray  # (h, w, 3) uint8, the view the superpixels were computed on
    view_superpixels: np.ndarray  # (h, w) int32 superpixel ids on the view

    @classmethod
    @torch.inference_mode()
    def of(cls, model: CAST, prepared: PreparedImage, output: CASTOutput, index: int) -> TreeInputs:
        """Image ``index`` of a batch output."""
        n = prepared.view.num_superpixels
        regions = output.regions
        areas = regions.areas[index, :n].double().cpu().numpy()
        edges = np.argwhere(np.triu(regions.adjacency[index, :n, :n].cpu().numpy(), 1))
        features = model.tree_features(output)[index, :n].double().cpu().numpy()
        return cls(features, areas / areas.sum(), edges, prepared.view.rgb, prepared.view.superpixels)


def standardise_cue(cue: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """(S, C) float64 ``cue`` standardised as the metric's own parts are: ``weighted_standardise`` over
    ``areas`` (S,), summing to 1."""
    return weighted_standardise(torch.from_numpy(np.asarray(cue, np.float64))[None],
                                torch.from_numpy(np.asarray(areas, np.float64))[None])[0].numpy()


def append_cue(features: np.ndarray, areas: np.ndarray, cue: np.ndarray, weight: float) -> np.ndarray:
    """(S, D + C) the metric ``features`` (S, D; unit total variance) with ``cue`` (S, C) appended,
    standardised (``standardise_cue``) and given ``weight`` times the metric's variance; the whole again
    of unit total variance, so cut heights keep their meaning."""
    return np.concatenate([features, weight**0.5 * standardise_cue(cue, areas)], 1) / (1 + weight) ** 0.5


def merge(inputs: TreeInputs, config: TreeConfig, edge_map: np.ndarray | None = None) -> MergeTree:
    """Ward merging of neighbours in the model's metric, shaped by ``size_power``, ``small_area`` and ``small_power``, each
    merge's cost scaled by the colour edges along the shared border when ``border_sigma`` > 0
    (``hierseg.borders``; ``edge_map``: the view's ``colour_edges`` at that sigma, when already computed),
    the metric extended by figure/ground when ``figure_weight`` > 0 (``hierseg.figure_ground``)."""
    features = inputs.features
    if config.figure_weight > 0:
        ground = background_probability(inputs.view_rgb, inputs.view_superpixels, inputs.edges, config.figure_sigma)
        features = append_cue(features, inputs.areas, ground[:, None], config.figure_weight)
    border = None
    if config.border_sigma > 0:
        if edge_map is None:
            edge_map = colour_edges(inputs.view_rgb, config.border_sigma)
        border = region_borders(inputs.view_superpixels, edge_map)
    return ward_tree(features, inputs.areas, inputs.edges, config.size_power, config.small_area, border,
                     config.border_eps, config.border_power, config.small_power)


class MergeTreeReadout(Readout):
    """The photo's merge tree, cut by ``config`` into display levels. It reads the stage-0 tokens, the
    regions and the stem's map only, so the model's pass stops after stage 0."""

    stages = 1

    def __init__(self, config: TreeConfig) -> None:
        self.config = config

    @classmethod
    def from_checkpoint(cls, config: CheckpointConfig) -> MergeTreeReadout | None:
        return cls(config.tree) if config.tree is not None else None

    def merge_tree(self, model: CAST, prepared: PreparedImage, output: CASTOutput, index: int) -> MergeTree:
        """Leaf ``i`` = superpixel id ``i`` of the view (``merge``)."""
        return merge(TreeInputs.of(model, prepared, output, index), self.config)

    def group(self, model: CAST, prepared: PreparedImage, output: CASTOutput, index: int) -> MergeTreeGrouping:
        tree = self.merge_tree(model, prepared, output, index)
        superpixels = prepared.superpixels
        # A photo smaller than the view can lose superpixels in the nearest resize back: their leaves go.
        kept = np.bincount(superpixels.ravel(), minlength=tree.n_leaves) > 0
        kept_ids = np.flatnonzero(kept)
        if not kept.all():
            superpixels = (np.cumsum(kept) - 1)[superpixels].astype(np.int32)
            tree = tree.restrict(kept)
        return MergeTreeGrouping(self.config, tree, superpixels, kept_ids)


class MergeTreeGrouping(Grouping):
    """A merge tree over the photo's kept superpixels: ``leaf_map`` (H, W) its leaf ids, ``kept_ids`` the
    view's superpixel id of each leaf."""

    def __init__(self, config: TreeConfig, tree: MergeTree, leaf_map: np.ndarray, kept_ids: np.ndarray) -> None:
        self.config, self.tree, self.leaf_map, self.kept_ids = config, tree, leaf_map, kept_ids

    def hierarchy(self, photo: PhotoEvidence, class_names: Sequence[str], meta: Callable[[], dict[str, Any]]) -> Hierarchy:
        config, tree = self.config, self.tree
        logits, prediction = photo.merge_logits(self.leaf_map, tree.merges), photo.prediction
        rows, leaf_log = photo.calibrated(logits), photo.log_calibrated(logits[: tree.n_leaves])
        # The precision the Hierarchy keeps merge-node evidence at, so display rows equal their merge nodes'.
        rows = torch.from_numpy(np.ascontiguousarray(rows, np.float32)).half().float().numpy()  # numpy's float16 cast is ~10x slower
        cut = cut_merge_tree(self.leaf_map, tree, config.thresholds, config.min_segments, config.split_chains, rows)
        # The hierarchy numbers its leaves canonically (cut.superpixel_ids: the tree's leaf of each); the tree follows.
        order = cut.superpixel_ids
        tree = tree.relabel_leaves(order)
        rows = np.concatenate([rows[order], rows[tree.n_leaves:]])
        return Hierarchy(cut.label_maps, cut.parents, cut.evidence, class_names, prediction, meta(),
                         superpixel_ids=self.kept_ids[order], merge_tree=tree, tree_config=config, merge_evidence=rows,
                         leaf_log_evidence=leaf_log[order])
