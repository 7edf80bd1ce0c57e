"""Fixed levels: the poolings' cluster assignments, one level per pooling (the official CAST readout)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..hierarchy import Hierarchy
from ..hierarchy.build import CanonicalTree, canonical_tree, level_assignments
from .base import Grouping, Readout

if TYPE_CHECKING:
    from ..checkpoints import CheckpointConfig
    from ..labeller import PhotoEvidence
    from ..model import CAST, CASTOutput
    from ..preprocess import PreparedImage


class LevelsReadout(Readout):
    """The superpixels, then one level per pooling (argmax of its assignment logits). It reads every
    stage, and needs nothing from the checkpoint config: the readout of any checkpoint without another."""

    @classmethod
    def from_checkpoint(cls, config: CheckpointConfig) -> LevelsReadout:
        return cls()

    def group(self, model: CAST, prepared: PreparedImage, output: CASTOutput, index: int) -> LevelsGrouping:
        n_superpixels = prepared.view.num_superpixels
        logits = [a[index].float().cpu().numpy() for a in output.assignment_logits]
        # A photo smaller than the view can lose superpixels in the nearest resize back: the readout
        # drops their leaves, as it drops every node without pixels. The tree does not depend on evidence.
        no_classes = [np.zeros((n_superpixels, 0), np.float32)] + [np.zeros((a.shape[-1], 0), np.float32) for a in logits]
        return LevelsGrouping(canonical_tree(prepared.superpixels, level_assignments(logits, n_superpixels), no_classes, 0))


class LevelsGrouping(Grouping):
    def __init__(self, tree: CanonicalTree) -> None:
        self.tree = tree

    def hierarchy(self, photo: PhotoEvidence, class_names: Sequence[str], meta: Callable[[], dict[str, Any]]) -> Hierarchy:
        tree = self.tree
        evidence, prediction = photo.tree(tree.label_maps, tree.parents), photo.prediction
        return Hierarchy(tree.label_maps, tree.parents, evidence, class_names, prediction, meta(),
                         superpixel_ids=tree.superpixel_ids)
