"""The grouping-cue screen (issue 23, item 2): its separation score, the way a cue joins the shipped metric,
and the recognizer's occlusion test."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from skimage import data

from hierseg import Segmenter
from hierseg.readout.merge_tree import TreeInputs
from training.grouping_cues import occlusion_importance, separation_auc, with_cue


def test_separation_auc_is_the_share_of_far_near_pairs_in_order():
    rng = np.random.default_rng(0)
    far, near = rng.integers(0, 6, 40).astype(float), rng.integers(0, 4, 30).astype(float)  # many ties
    pairs = far[:, None] - near[None]
    expected = ((pairs > 0).sum() + 0.5 * (pairs == 0).sum()) / pairs.size
    assert separation_auc(far, near) == pytest.approx(expected)
    assert separation_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert separation_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert np.isnan(separation_auc(np.array([]), near))


def test_a_cue_joins_the_metric_exactly_as_the_grouping_embedding_does(default: Segmenter):
    """The shipped metric rebuilt from its descriptors alone plus the head's embedding appended by ``with_cue``
    at ``merge_tokens`` is the metric the shipped tree reads: the screen's rows differ from the shipped tree
    only by the cue."""
    prepared = default.prepare(data.astronaut())
    output = default.forward([prepared])
    shipped = TreeInputs.of(default.model, prepared, output, 0)
    pool = default.model.pools[0]
    weight = pool.tree_weight
    n = prepared.view.num_superpixels
    with torch.no_grad():
        embedding = default.model.grouping_head(output.stage_tokens[0][0, :n].float()).double().numpy()
    pool.tree_weight = 0.0  # the descriptors alone
    try:
        bare = TreeInputs.of(default.model, prepared, output, 0)
    finally:
        pool.tree_weight = weight
    descriptors = sum(w for w in pool.descriptor_weights if w > 0)
    rebuilt = with_cue(bare, descriptors, embedding, weight)
    np.testing.assert_allclose(rebuilt.features, shipped.features, atol=1e-5)
    assert with_cue(shipped, descriptors + weight, embedding, 0.0).features == pytest.approx(shipped.features)


class LeftHalfRecognizer(torch.nn.Module):
    """A stand-in teacher whose class 0 is the brightness of the image's left half (class 1 its right half)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        w = images.shape[-1]
        left, right = images[..., : w // 2].mean((1, 2, 3)), images[..., w // 2:].mean((1, 2, 3))
        return torch.stack([10 * left, 5 * right] + [torch.zeros_like(left)] * 8, 1)


def test_occlusion_importance_is_the_recognition_lost_when_a_segment_is_greyed():
    superpixels = np.repeat(np.arange(4)[None], 8, 0).repeat(4, 1).astype(np.int32)  # 4 columns of 8x4 px
    rgb = np.full((8, 16, 3), 255, np.uint8)
    inputs = TreeInputs(np.zeros((4, 1)), np.full(4, 0.25), np.array([[0, 1], [1, 2], [2, 3]]), rgb, superpixels)
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    segments = np.array([7, 7, 9, 11])  # the left half is one segment, the right half two
    importance = occlusion_importance(LeftHalfRecognizer(), inputs, segments, mean, std)[:, 0]
    assert importance.shape == (4,)
    assert importance[0] == importance[1] > importance[2] == importance[3] > 0  # the left half holds class 0's evidence
    # Greying nothing loses nothing: a photo already grey everywhere.
    grey = dataclasses.replace(inputs, view_rgb=np.full((8, 16, 3), 127, np.uint8))
    assert np.abs(occlusion_importance(LeftHalfRecognizer(), grey, segments, mean, std)).max() < 0.1

