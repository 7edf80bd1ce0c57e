"""The whole-object share: one segment at IoU >= 0.7 with the object, at the coarsest level, in the merge
tree, and the superpixels' bound."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from hierseg.hierarchy.merge_tree import ward_tree
from training.metrics.objects import best_union_iou, object_ious, segment_ious, tree_ious
from training.metrics.scorers import ObjectShareScorer, Segmentation


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def random_photo(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8 leaves of uneven size on a 12 x 12 photo and a blob-shaped object."""
    rng = np.random.default_rng(seed)
    leaves = np.repeat(np.repeat(rng.integers(0, 8, (4, 4)), 3, 0), 3, 1)
    leaves = np.unique(leaves, return_inverse=True)[1].reshape(leaves.shape)
    mask = rng.random((12, 12)) < np.linspace(0.1, 0.9, 12)[None]
    return leaves, mask


@pytest.mark.parametrize("seed", range(5))
def test_the_bound_is_the_best_of_every_union_of_leaves(seed: int) -> None:
    leaves, mask = random_photo(seed)
    n = leaves.max() + 1
    brute = max(iou(np.isin(leaves, chosen), mask) for k in range(1, n + 1) for chosen in itertools.combinations(range(n), k))
    assert np.isclose(best_union_iou(leaves, mask), brute)


def test_tree_ious_are_every_nodes_pixels_against_the_mask() -> None:
    leaves, mask = random_photo(7)
    n = leaves.max() + 1
    tree = ward_tree(np.random.default_rng(0).normal(size=(n, 2)), np.ones(n), np.array(list(itertools.combinations(range(n), 2))))
    members = {i: {i} for i in range(n)}
    for k, (a, b) in enumerate(tree.merges.tolist()):
        members[n + k] = members[a] | members[b]
    expected = [iou(np.isin(leaves, sorted(members[node])), mask) for node in range(2 * n - 1)]
    assert np.allclose(tree_ious(leaves, tree.merges, mask), expected)
    assert np.allclose(segment_ious(leaves, mask), expected[:n])


def test_object_ious_read_the_coarsest_level_the_tree_and_the_leaves() -> None:
    # a 2 x 4 photo of 4 leaves; the object is leaves 1 and 2; the coarsest level cuts it in half,
    # the tree joins 1 and 2 into one node
    leaves = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    mask = np.isin(leaves, [1, 2])
    coarse = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    merges = np.array([[1, 2], [0, 4], [3, 5]])
    got = object_ious([coarse, leaves], mask, merges)
    assert got == {"coarse": pytest.approx(1 / 3), "tree": 1.0, "bound": 1.0}
    assert object_ious([coarse, leaves], mask, None)["tree"] == 0.5  # without a tree: the best segment of any level (a leaf)
    with pytest.raises(ValueError, match="empty"):
        object_ious([coarse, leaves], np.zeros_like(mask), merges)


def test_the_share_splits_the_set_in_halves_and_leaves_out_small_objects() -> None:
    leaves = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    whole = Segmentation([leaves // 2, leaves], None)  # the object {0, 1} is one coarse segment
    scorer = ObjectShareScorer(min_cover=0.3)
    for mask_leaves in ([0, 1], [1, 2], [0], [0, 1]):  # photo 3 (leaf 0 only: 25% cover) is left out
        scorer.add(whole, [np.isin(leaves, mask_leaves).astype(int)])
    out = scorer.summary()["objects"]
    # the halves are photos 1-2 and 3-4 of the set whichever are left out
    assert out["dev"] == {"photos": 2, "coarse": 0.5, "tree": 0.5, "bound": 1.0}
    assert out["held_out"] == {"photos": 1, "coarse": 1.0, "tree": 1.0, "bound": 1.0}
    assert out["all"]["photos"] == 3


@pytest.mark.slow
def test_tune_tree_scores_each_setting_on_training_splits(capsys: pytest.CaptureFixture[str]) -> None:
    """The command that chose the border scalars runs end to end on a few photos: one row per setting, the
    border term off first, and the trees it scores are the shipped readout's (``hierseg.readout.merge_tree.merge``)."""
    from conftest import shared_data

    from training import tune_tree

    data = shared_data("bsds500").parent
    shared_data("weizmann_horse"), shared_data("pascal_part_person")
    tune_tree.main(["default", "--data", str(data), "--bsds", "2", "--objects", "2", "--sigma", "1", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split("|")[1].strip() for row in rows] == ["off", "1.0", "2.0"], rows
    from hierseg import load_segmenter

    segmenter = load_segmenter("default", device="cpu")
    photo = sorted((data / "bsds500" / "images" / "train").glob("*.jpg"))[0]
    prepared = segmenter.prepare(photo)
    shipped = segmenter.merge_tree(prepared, segmenter.forward([prepared]), 0)
    tuned = tune_tree.build_tree(tune_tree.photo_inputs(segmenter, photo), segmenter.config.tree, {})
    # The same merges; heights to the last bits (the segmenter limits numpy to one BLAS thread, the tool does not).
    assert np.array_equal(tuned.merges, shipped.merges) and np.allclose(tuned.heights, shipped.heights, rtol=0, atol=1e-12)
