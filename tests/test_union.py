"""A selection of several disjoint segments as one region: its mask and the labeller's evidence for it."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from hierseg.hierarchy import Hierarchy, Node
from hierseg.labeller import PhotoEvidence
from hierseg.segmenter import Segmenter

# The rows a hierarchy keeps are float16: one half-precision step apart at most (2**-10 relative, 2**-24
# absolute below float16's normal range), where the last float32 digits fall on either side of a rounding.
HALF_STEP = dict(rtol=2.0**-10, atol=2.0**-24)


@pytest.fixture(scope="module")
def photo(default: Segmenter) -> PhotoEvidence:
    return default.photo_evidence(data.chelsea())


def parents_with_children(tree: Hierarchy) -> list[tuple[Node, list[Node]]]:
    return [(node, tree.children(node)) for level in range(tree.leaf_level) for node in tree.nodes(level)
            if len(tree.children(node)) >= 2]


def test_the_union_of_a_nodes_children_is_the_nodes_own_evidence(chelsea: Hierarchy):
    pairs = parents_with_children(chelsea)
    assert len(pairs) >= 10
    exact = 0
    for parent, children in pairs:
        union = chelsea.union_evidence(children)
        np.testing.assert_allclose(union, chelsea.evidence_of(parent), **HALF_STEP)
        exact += np.array_equal(union, chelsea.evidence_of(parent))
        assert np.array_equal(chelsea.union_mask(children), chelsea.mask(parent))
    assert exact >= 0.8 * len(pairs)  # the same float16 row, but for a rare rounding at the last step


def test_the_union_is_the_labellers_evidence_for_its_mask(chelsea: Hierarchy, photo: PhotoEvidence):
    """Two segments from different parents (a union no tree node is): the labeller's row for that mask."""
    level = chelsea.leaf_level - 1
    nodes = chelsea.nodes(level)
    first = nodes[0]
    second = next(n for n in nodes if chelsea.parent(n) != chelsea.parent(first))
    third = chelsea.nodes(chelsea.leaf_level)[-1]
    for selection in ([first, second], [first, second, third] if chelsea.parent(third) not in
                      (first, second) else [first, second]):
        mask = chelsea.union_mask(selection)
        expected = photo.nodes(mask.astype(np.int32), 2)[1]
        np.testing.assert_allclose(chelsea.union_evidence(selection), expected, rtol=2e-3, atol=1e-6)
        # a mix of the members' probabilities is another number, well outside that tolerance
        areas = np.array([chelsea.area(n) for n in selection], np.float64)
        mixed = areas @ np.stack([chelsea.evidence_of(n) for n in selection]) / areas.sum()
        assert not np.allclose(mixed, expected, rtol=2e-2, atol=1e-6)


def test_a_selection_holds_disjoint_segments(chelsea: Hierarchy):
    parent, children = parents_with_children(chelsea)[0]
    with pytest.raises(ValueError, match=f"{children[0]} lies inside {parent}"):
        chelsea.union_evidence([parent, children[0]])
    with pytest.raises(ValueError, match="lies inside"):
        chelsea.union_mask([children[0], parent])
    with pytest.raises(ValueError, match="selected twice"):
        chelsea.union_evidence([children[0], children[0]])
    with pytest.raises(ValueError, match="root"):
        chelsea.union_evidence(["-1:0", children[0]])
    with pytest.raises(ValueError, match="at least one"):
        chelsea.union_evidence([])
    assert np.array_equal(chelsea.union_evidence([str(parent)]), chelsea.evidence_of(parent))


def test_recut_and_files_keep_what_a_union_needs(tmp_path, chelsea: Hierarchy):
    cut = chelsea.recut(chelsea.cut_heights[0] * 0.5)
    assert np.array_equal(cut.leaf_log_evidence, chelsea.leaf_log_evidence)
    cut.save(tmp_path / "tree.npz")
    assert Hierarchy.load(tmp_path / "tree.npz") == cut
    cut.save_pngs(tmp_path / "pngs")
    loaded = Hierarchy.from_pngs(tmp_path / "pngs")
    assert loaded == cut and loaded.leaf_log_evidence is not None


def test_a_tree_without_leaf_log_evidence_refuses_a_union_clearly(chelsea: Hierarchy):
    """A tree read back from a data set (or a file written before) keeps float16 rows only."""
    stored = Hierarchy.cut_from(chelsea.label_maps[-1], chelsea.merge_tree, chelsea.tree_config,
                               chelsea.merge_evidence, chelsea.class_names, chelsea.prediction)
    parent, children = parents_with_children(stored)[0]
    assert stored.leaf_log_evidence is None
    with pytest.raises(ValueError, match="keeps no leaf_log_evidence"):
        stored.union_evidence(children)
    assert np.array_equal(stored.union_evidence([children[0]]), stored.evidence_of(children[0]))
    assert np.array_equal(stored.union_mask(children), stored.mask(parent))


def test_leaf_log_evidence_must_be_the_leaves_own(chelsea: Hierarchy):
    shuffled = chelsea.leaf_log_evidence[::-1]
    with pytest.raises(ValueError, match="not the log of the superpixels"):
        Hierarchy.cut_from(chelsea.label_maps[-1], chelsea.merge_tree, chelsea.tree_config, chelsea.merge_evidence,
                           chelsea.class_names, chelsea.prediction, leaf_log_evidence=shuffled)
