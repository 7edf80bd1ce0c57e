"""The hybrid model: one preprocessing path, region merging that keeps segments whole, the teacher on the
student's own view, and the dense distillation targets."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data

from hierseg.checkpoints import CheckpointConfig
from hierseg.model import build_cast
from hierseg.model.hybrid.region_merge import ward_merge
from hierseg.preprocess import InputConfig, batch_views, prepare_view, split_disconnected, view_size
from hierseg.resize import resize_nearest
from hierseg.segmenter import Segmenter
from hierseg.superpixels import SEEDS_DEIT, compute_superpixels
from training.data import SuperpixelImages, eval_view, list_images
from training.objectives.hybrid_distill import HybridDistill, node_targets
from training.teacher import TEACHER_MEAN, TEACHER_STD, Teacher

SP = dataclasses.replace(SEEDS_DEIT, n_segments=64)
INPUT = InputConfig(size=96, resize="long_side", mean=TEACHER_MEAN, std=TEACHER_STD, connected_superpixels=True)


@pytest.fixture(scope="module")
def teacher() -> Teacher:
    return Teacher(TEACHER_MEAN, TEACHER_STD)


@pytest.fixture(scope="module")
def model(teacher: Teacher) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_cast("cast_hybrid_micro", num_classes=1000)
    m.stem.backbone.load_state_dict(teacher.body_state_dict())
    m.head.classifier.load_state_dict(teacher.net.classifier.state_dict())
    return m.eval()


def _level_maps(superpixels: np.ndarray, assignment_logits: list[torch.Tensor], row: int = 0) -> list[np.ndarray]:
    """Pixel label maps of every cluster level, finest first."""
    ids = np.arange(int(superpixels.max()) + 1)
    maps = []
    for logits in assignment_logits:
        ids = logits[row].argmax(-1).numpy()[ids]
        maps.append(ids[superpixels])
    return maps


# ------------------------------------------------------------------------------------- preprocessing


def test_view_sizes_follow_the_resize_mode():
    assert view_size(300, 451, InputConfig(size=224)) == (224, 224)
    assert view_size(300, 451, InputConfig(size=320, resize="long_side")) == (213, 320)
    assert view_size(20000, 30, InputConfig(size=320, resize="long_side")) == (320, 16)  # never below 16 px


def test_training_evaluation_and_serving_prepare_the_same_view(model: torch.nn.Module, tmp_path):
    """The evaluation view in training/data.py and Segmenter.prepare are one path: same pixels, same superpixels."""
    photo = data.chelsea()
    folder = tmp_path / "train" / "cat"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.fromarray(photo).save(folder / "chelsea.png")
    item = SuperpixelImages(list_images("imagefolder:.:train", tmp_path), eval_view(), SP, INPUT)[(0, 0)]
    config = CheckpointConfig(model=model.config, superpixels=SP, class_names=[str(i) for i in range(1000)], input=INPUT)
    prepared = Segmenter(model, config, device="cpu").prepare(photo)
    assert torch.equal(item["images"][0], prepared.view.pixels)
    assert np.array_equal(item["superpixels"][0].numpy(), prepared.view.superpixels)
    # Superpixels are those of the view itself, and come back to the photo's size exactly.
    expected = split_disconnected(compute_superpixels(prepared.view.rgb, SP))
    assert np.array_equal(prepared.view.superpixels, expected)
    assert prepared.superpixels.shape == photo.shape[:2]
    assert np.array_equal(np.unique(prepared.superpixels), np.arange(prepared.view.num_superpixels))


def test_split_disconnected_gives_one_piece_per_id():
    labels = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 2]])
    split = split_disconnected(labels)
    assert split.max() + 1 == 5  # the three corner pieces of id 0 become three ids
    for i in range(split.max() + 1):
        assert ndimage.label(split == i)[1] == 1


def test_resize_nearest_keeps_every_id():
    labels = np.arange(12).reshape(3, 4)
    big = resize_nearest(labels, 7, 9)
    assert big.shape == (7, 9) and np.array_equal(np.unique(big), np.arange(12))


# ------------------------------------------------------------------------------------- region merging


def test_ward_merge_joins_neighbours_only_and_reaches_the_count():
    # A chain 0-1-2-3: 0 and 3 are identical but not adjacent, so they may not merge while neighbours remain.
    features = torch.tensor([[[0.0], [5.0], [6.0], [0.0]]])
    areas = torch.full((1, 4), 0.25)
    adjacency = torch.zeros(1, 4, 4, dtype=torch.bool)
    for a, b in ((0, 1), (1, 2), (2, 3)):
        adjacency[0, a, b] = adjacency[0, b, a] = True
    assert ward_merge(features, areas, adjacency, 3).tolist() == [[0, 1, 1, 2]]
    assert ward_merge(features, areas, adjacency, 1).tolist() == [[0, 0, 0, 0]]


def test_ward_merge_absorbs_small_regions_before_joining_big_ones():
    # Ward's cost grows with size: a tiny region merges into a big neighbour although its colour is further
    # from it than the two big regions are from each other.
    features = torch.tensor([[[0.0], [1.0], [4.0]]])
    areas = torch.tensor([[0.49, 0.49, 0.02]])
    adjacency = torch.ones(1, 3, 3, dtype=torch.bool) & ~torch.eye(3, dtype=torch.bool)
    assert ward_merge(features, areas, adjacency, 2).tolist() == [[0, 1, 1]]


def test_ward_merge_ignores_padding_nodes():
    features = torch.tensor([[[0.0], [0.1], [9.0], [0.0]]])
    areas = torch.tensor([[0.4, 0.3, 0.3, 0.0]])
    adjacency = torch.ones(1, 4, 4, dtype=torch.bool) & ~torch.eye(4, dtype=torch.bool)
    assert ward_merge(features, areas, adjacency, 2).tolist() == [[0, 0, 1, 0]]


@pytest.mark.parametrize("photo", [data.astronaut(), data.coffee(), data.chelsea()])
def test_every_segment_of_every_level_is_one_piece(model: torch.nn.Module, photo: np.ndarray):
    view = prepare_view(photo, dataclasses.replace(INPUT, size=160), dataclasses.replace(SP, n_segments=196))
    with torch.no_grad():
        out = model(*batch_views([view]))
    maps = _level_maps(view.superpixels, out.assignment_logits)
    for level, label_map in enumerate(maps):
        count = int(label_map.max()) + 1
        assert count == model.config.clusters[level]
        pieces = [ndimage.label(label_map == k)[1] for k in range(count)]
        assert pieces == [1] * count, (level, pieces)


def test_batched_views_of_one_shape_match_single_views(model: torch.nn.Module):
    photo = data.astronaut()
    views = [prepare_view(p, INPUT, SP) for p in (photo, photo[:, ::-1].copy(), photo[::-1].copy())]
    with torch.no_grad():
        batched = model(*batch_views(views))
        single = model(*batch_views(views[1:2]))
    torch.testing.assert_close(batched.logits[1], single.logits[0], atol=1e-5, rtol=1e-5)
    for a, b in zip(batched.assignment_logits, single.assignment_logits):
        n = b.shape[1]
        assert torch.equal(a[1, :n].argmax(-1), b[0].argmax(-1))


# ------------------------------------------------------------------------------------- distillation


def test_the_students_stem_gives_the_teacher_its_exact_output(model: torch.nn.Module, teacher: Teacher):
    """The teacher's logits on the student's view come from the stem the student already ran."""
    view = prepare_view(data.coffee(), INPUT, SP)
    pixels, superpixels = batch_views([view])
    with torch.no_grad():
        out = model(pixels, superpixels)
        from_stem = teacher.net.classifier(teacher.head_map(out.stem_map).mean((2, 3)))
        direct = teacher(pixels)
    torch.testing.assert_close(from_stem, direct, atol=1e-4, rtol=1e-4)


def test_node_targets_are_area_weighted_means_over_each_nodes_pixels(model: torch.nn.Module):
    view = prepare_view(data.astronaut(), INPUT, SP)
    pixels, superpixels = batch_views([view])
    with torch.no_grad():
        out = model(pixels, superpixels)
    grid = out.stem_map.shape[-2:]
    dense = torch.randn(1, 5, *grid)
    targets, areas = node_targets(out, dense)
    # Brute force: each pixel takes the value of the stride-32 cell it falls in.
    h, w = view.superpixels.shape
    rows = np.minimum(np.arange(h) // 32, grid[0] - 1)
    cols = np.minimum(np.arange(w) // 32, grid[1] - 1)
    per_pixel = dense[0].numpy()[:, rows[:, None], cols[None, :]]  # (5, h, w)
    maps = [view.superpixels, *_level_maps(view.superpixels, out.assignment_logits)]
    for level, label_map in enumerate(maps):
        for node in np.unique(label_map)[:5]:
            expected = per_pixel[:, label_map == node].mean(1)
            np.testing.assert_allclose(targets[level][0, node].numpy(), expected, atol=1e-4)
            assert areas[level][0, node].item() == (label_map == node).sum()


@pytest.mark.slow
def test_hybrid_distillation_steps_lower_the_loss(teacher: Teacher):
    torch.manual_seed(0)
    model = build_cast("cast_hybrid_micro", num_classes=1000)
    model.stem.backbone.load_state_dict(teacher.body_state_dict())
    model.head.classifier.load_state_dict(teacher.net.classifier.state_dict())
    model.head.classifier.requires_grad_(False)
    objective = HybridDistill(model, teacher).train()
    views = [prepare_view(p, dataclasses.replace(INPUT, size=64), SP)
             for p in (data.astronaut(), data.coffee(), data.chelsea(), data.rocket())]
    pixels, superpixels = batch_views(views)
    params = [p for p in objective.parameters() if p.requires_grad]
    assert not any(p.requires_grad for p in model.stem.backbone.parameters())
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.0)
    losses = []
    for _ in range(15):
        loss, logs = objective({"images": pixels[:, None], "superpixels": superpixels[:, None]})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert set(logs) == {"loss_image", "loss_feature", "loss_dense", "agree_top1"}
    assert losses[-1] < 0.7 * losses[0], losses
    # The frozen parts did not move: the stem still reproduces the teacher, the classifier is the teacher's.
    assert torch.equal(model.head.classifier.weight, teacher.net.classifier.weight)


@pytest.mark.slow
def test_a_saved_hybrid_checkpoint_serves_whole_segments_at_the_photo_size(model: torch.nn.Module, tmp_path):
    from hierseg import load_segmenter
    from hierseg.checkpoints import save_checkpoint
    from hierseg.class_names import imagenet_class_names

    config = CheckpointConfig(model=model.config, superpixels=SP, class_names=imagenet_class_names(), input=INPUT)
    segmenter = load_segmenter(save_checkpoint(model, config, tmp_path / "hybrid"), device="cpu")
    assert segmenter.config.input == INPUT
    photo = data.coffee()  # 400 x 600
    h = segmenter(photo)
    assert h.shape == photo.shape[:2] and h.meta["view_size"] == [96, 64]
    for level in range(h.n_levels - 1):
        label_map = h.label_maps[level]
        assert [ndimage.label(label_map == k)[1] for k in range(int(label_map.max()) + 1)] == [1] * (int(label_map.max()) + 1)
    # A photo smaller than the view: superpixels that vanish in the resize back are dropped, not an error.
    tiny = segmenter(photo[::12, ::12])
    assert tiny.shape == (34, 50) and tiny.meta["view_size"] == [96, 65]
    many = segmenter.segment_batch([photo, data.chelsea(), photo])
    assert all(np.array_equal(a, b) for a, b in zip(many[0].label_maps, h.label_maps))
    assert all(np.array_equal(a, b) for a, b in zip(many[2].label_maps, h.label_maps))
