"""The whole-object share: one segment (or the union of two disjoint ones) at IoU >= 0.7 with the object, at
the coarsest level, at any level, in the merge tree, and the superpixels' bound."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from hierseg.hierarchy.merge_tree import ward_tree
from training.metrics.objects import (
    best_union_iou, leaf_inside_share, level_overlaps, nested_nodes, object_ious, segment_ious, tree_ious,
)
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
    assert got == {"coarse": pytest.approx(1 / 3), "levels": pytest.approx(1 / 3), "tree": 1.0, "bound": 1.0,
                   "coarse_2": pytest.approx(1 / 2), "levels_2": pytest.approx(1 / 2), "tree_2": 1.0}
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
    assert out["dev"] == {"photos": 2, "coarse": 0.5, "levels": 0.5, "tree": 0.5, "bound": 1.0,
                          "coarse_2": 0.5, "levels_2": 0.5, "tree_2": 1.0}  # {1, 2}: two leaves, not two halves
    assert out["held_out"] == {"photos": 1, "coarse": 1.0, "levels": 1.0, "tree": 1.0, "bound": 1.0,
                               "coarse_2": 1.0, "levels_2": 1.0, "tree_2": 1.0}
    assert out["all"]["photos"] == 3


def test_two_node_reach_on_a_tree_worked_by_hand() -> None:
    """2 x 4 photo, leaves 0-3 (columns of 2 px); tree: 4 = {1, 2}, 5 = {0, 1, 2}, 6 = all. Object: leaves
    0, 1 and 3 (6 px). Coarsest level: {0, 1, 2}, {3}; middle level: {0}, {1, 2}, {3}."""
    leaves = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    mask = np.isin(leaves, [0, 1, 3])
    merges = np.array([[1, 2], [0, 4], [3, 5]])
    coarse, middle = np.array([0, 0, 0, 1])[leaves], np.array([0, 1, 1, 2])[leaves]
    got = object_ious([coarse, middle, leaves], mask, merges)
    # one segment: {0, 1, 2} has 4 of its 6 px inside (IoU 4/8); the whole photo 6/8
    assert got["coarse"] == got["levels"] == pytest.approx(0.5) and got["tree"] == pytest.approx(0.75)
    # two: the coarsest level's two segments make the whole photo (6/8); {0} + {3} = 4/6; a node and its
    # own descendant are no pair (the photo + leaf 3 would count leaf 3 twice: 8/8)
    assert got["coarse_2"] == got["levels_2"] == got["tree_2"] == pytest.approx(0.75)
    # object = leaves 0 and 3 (4 px): {0} + {3} is the object; the coarsest level's best is {3} (2/4), and
    # its pair makes the whole photo (4/8)
    mask2 = np.isin(leaves, [0, 3])
    got2 = object_ious([coarse, middle, leaves], mask2, merges)
    assert got2["coarse"] == got2["coarse_2"] == got2["tree"] == 0.5
    assert got2["levels_2"] == got2["tree_2"] == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_the_best_pair_is_the_best_of_every_disjoint_pair(seed: int) -> None:
    leaves, mask = random_photo(seed)
    n = leaves.max() + 1
    rng = np.random.default_rng(seed)
    tree = ward_tree(rng.normal(size=(n, 2)), np.ones(n), np.array(list(itertools.combinations(range(n), 2))))
    members = {i: {i} for i in range(n)}
    for k, (a, b) in enumerate(tree.merges.tolist()):
        members[n + k] = members[a] | members[b]
    best = max(iou(np.isin(leaves, sorted(members[a] | members[b])), mask)
               for a, b in itertools.product(members, members) if a == b or not members[a] & members[b])
    # levels that do not nest: random coarse partitions
    maps = [np.unique(rng.integers(0, k, n), return_inverse=True)[1][leaves] for k in (2, 3)] + [leaves]
    segments = [m == i for m in maps for i in range(m.max() + 1)]
    best_levels = max(iou(a | b, mask) for a, b in itertools.product(segments, segments)
                      if a is b or not (a & b).any())
    got = object_ious(maps, mask, tree.merges)
    assert got["tree_2"] == pytest.approx(best)
    assert object_ious(maps, mask, None)["tree_2"] == pytest.approx(best_levels)
    assert nested_nodes(tree.merges, n).sum() == sum(bool(members[a] & members[b]) for a in members for b in members)
    assert level_overlaps(maps).sum() == sum(bool((a & b).any()) for a in segments for b in segments)


@pytest.mark.slow
def test_tune_tree_scores_each_setting_on_training_splits(capsys: pytest.CaptureFixture[str]) -> None:
    """The command that chose the border scalars runs end to end on a few photos: one row per setting, the
    border term off first, and the trees it scores are the shipped readout's (``hierseg.readout.merge_tree.merge``)."""
    from conftest import shared_data

    from training import tune_tree

    data = shared_data("bsds500").parent
    shared_data("weizmann_horse"), shared_data("pascal_part_person")
    tune_tree.main(["default", "--data", str(data), "--bsds", "2", "--objects", "2", "--sigma", "1", "2",
                    "--size-power", "0.5", "0.7"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [tuple(cell.strip() for cell in row.split("|")[1:5:3]) for row in rows] == [
        ("off", "0.7"), ("1.0", "0.5"), ("1.0", "0.7"), ("2.0", "0.5"), ("2.0", "0.7")], rows
    from hierseg import load_segmenter

    segmenter = load_segmenter("default", device="cpu")
    photo = sorted((data / "bsds500" / "images" / "train").glob("*.jpg"))[0]
    prepared = segmenter.prepare(photo)
    shipped = segmenter.merge_tree(prepared, segmenter.forward([prepared]), 0)
    tuned = tune_tree.build_tree(tune_tree.photo_inputs(segmenter, photo), segmenter.config.tree, {})
    # The same merges; heights to the last bits (the segmenter limits numpy to one BLAS thread, the tool does not).
    assert np.array_equal(tuned.merges, shipped.merges) and np.allclose(tuned.heights, shipped.heights, rtol=0, atol=1e-12)


def test_display_single_child_counts_parents_of_every_display_level_down_to_the_leaves() -> None:
    """A chain tree ((((0 1) 2) 3): cut at 2.5 the coarsest level is {012, 3}; at 1.5 {01, 2, 3}. Parents:
    012 (two children), 3 (one), 01 (two), 2 (one), 3 (one): 3 of 5 have a single child."""
    from hierseg.hierarchy.merge_tree import MergeTree, TreeConfig
    from training.tune_tree import display_single_child

    tree = MergeTree(4, np.array([[0, 1], [4, 2], [5, 3]]), np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    config = TreeConfig(thresholds=(2.5, 1.5))
    single = display_single_child(tree, config.thresholds, config)
    assert (single.hits, single.total) == (3, 5)


def test_leaf_inside_share_is_each_leafs_share_of_the_mask():
    leaves = np.array([[0, 0, 1, 1], [2, 2, 2, 1]])
    mask = np.array([[True, False, True, True], [False, False, True, False]])
    np.testing.assert_allclose(leaf_inside_share(leaves, mask, 4), [0.5, 2 / 3, 1 / 3, 0.0])  # leaf 3 has no pixels
