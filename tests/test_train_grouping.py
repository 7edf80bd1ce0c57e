"""Training the grouping head by recognition (no mask) and writing a merge-tree checkpoint."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from hierseg import load_segmenter
from hierseg.checkpoints import CheckpointConfig, save_checkpoint
from hierseg.model import CAST, build_cast
from hierseg.preprocess import InputConfig
from hierseg.superpixels import SEEDS_DEIT
from training.teacher import TEACHER_MEAN, TEACHER_STD, Teacher
from training.train_grouping import GroupingConfig, gram_loss, main, weighted_gram


def test_gram_loss_is_zero_for_the_target_geometry_and_ignores_scale_and_rotation():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(12, 5)))
    areas = torch.from_numpy(rng.uniform(0.5, 2.0, 12))
    target = weighted_gram(x, areas)
    rotation, _ = torch.linalg.qr(torch.from_numpy(rng.normal(size=(5, 5))))
    assert gram_loss(3.0 * x @ rotation + 1.0, target, areas) < 1e-20
    assert gram_loss(x[torch.randperm(12)], target, areas) > 1e-2


def test_the_gram_target_is_standardised_as_the_merge_metric_standardises():
    """The grouping head learns distances as the merge tree reads them: its target's rows are the library's
    standardised regions (a padded batch of shares there, one photo of pixel counts here)."""
    from hierseg.model.hybrid.region_merge import weighted_standardise

    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(2, 12, 5)) * [1.0, 5.0, 0.2, 1.0, 3.0] + 2.0)
    pixels = torch.from_numpy(rng.integers(20, 400, (2, 12)).astype(np.float64))
    pixels[1, 8:] = 0  # the second photo has 8 regions, then padding
    standardised = weighted_standardise(x, pixels / pixels.sum(1, keepdim=True))
    for photo in range(2):
        real = pixels[photo] > 0
        rows = standardised[photo, real] * (pixels[photo, real] / pixels[photo].sum()).sqrt()[:, None]
        torch.testing.assert_close(weighted_gram(x[photo, real], pixels[photo, real]), rows @ rows.T)


def test_settings_parse_as_json():
    config = GroupingConfig().replace(steps="30", photos='["images:photos:train"]', calibrate="images:photos:train")
    assert config.steps == 30 and config.photos == ("images:photos:train",) and config.calibrate == "images:photos:train"
    with pytest.raises(ValueError, match="unknown"):
        GroupingConfig().replace(step="3")


def test_train_grouping_writes_a_tree_checkpoint(tmp_path):
    torch.manual_seed(0)
    teacher = Teacher(TEACHER_MEAN, TEACHER_STD)
    model = build_cast("cast_hybrid_micro", num_classes=1000)
    model.stem.body.load_state_dict(teacher.body_state_dict())
    config = CheckpointConfig(model=model.config, superpixels=dataclasses.replace(SEEDS_DEIT, n_segments=48),
                              class_names=[str(i) for i in range(1000)],
                              input=InputConfig(size=96, resize="long_side", mean=TEACHER_MEAN, std=TEACHER_STD,
                                                connected_superpixels=True))
    save_checkpoint(model, config, tmp_path / "base")
    photos = tmp_path / "data" / "photos" / "train"
    photos.mkdir(parents=True)
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(data, name)()).save(photos / f"{name}.png")
    main([str(tmp_path / "base"), str(tmp_path / "tree"), "--data", str(tmp_path / "data"),
          'photos=["images:photos:train"]', "steps=30", "batch=2", "dim=8", "calibrate=images:photos:train",
          "level_counts=[3, 6]"])
    seg = load_segmenter(tmp_path / "tree", device="cpu")
    assert seg.config.tree is not None and len(seg.config.tree.thresholds) == 2
    assert seg.model.config.pooling.grouping_dim == 8 and seg.model.config.pooling.merge_tokens == 3.0
    assert seg.config.provenance["grouping"]["config"]["steps"] == 30
    torch.manual_seed(0)  # main's seed: the head as it was before training
    fresh = CAST(seg.model.config).grouping_head.net[-1].weight
    assert not torch.allclose(seg.model.grouping_head.net[-1].weight, fresh)
    h = seg(data.astronaut())
    assert h.n_levels == 3 and h.merge_tree is not None and h.n_nodes(0) >= 2
    assert seg.config.tree.border_sigma == 2.0  # a new tree reads the border by default (issue 23)
    # --recalibrate keeps the trained head and only changes the tree's cost: new cut heights for it.
    main([str(tmp_path / "tree"), str(tmp_path / "bordered"), "--data", str(tmp_path / "data"), "--recalibrate",
          "calibrate=images:photos:train", "level_counts=[3, 6]", "border_sigma=0", "border_power=1.0",
          'qualities={"fine": 160}'])
    bordered = load_segmenter(tmp_path / "bordered", device="cpu")
    assert bordered.config.tree.border_sigma == 0.0
    # A named quality: the same weights and cost at a larger view, its own cut heights for the same counts.
    fine = load_segmenter(f"{tmp_path / 'bordered'}@fine", device="cpu")
    assert fine.config.input.size == 160 and fine.config.tree.border_sigma == 0.0
    assert len(fine.config.tree.thresholds) == 2 and fine.config.tree.thresholds != bordered.config.tree.thresholds
    assert max(fine.prepare(data.astronaut()).view.rgb.shape[:2]) == 160
    assert bordered.config.tree.thresholds != seg.config.tree.thresholds
    for name, value in seg.model.state_dict().items():
        assert torch.equal(bordered.model.state_dict()[name], value), name
    assert bordered.config.provenance["tree_recalibrated"]["config"]["border_sigma"] == 0
