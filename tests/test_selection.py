"""A selection of several segments in the explorer (no gradio): added and taken out, shown, named and
exported as one region."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import downloads, session as sessions, views
from explorer.display import canvas
from hierseg import Hierarchy, Node, naming
from test_explore import cut_tree  # noqa: F401  (the fixture: levels cut from a Ward merge tree)

ROOT = Node(-1, 0)


@pytest.fixture
def photo(cut_tree: Hierarchy) -> sessions.Session:  # noqa: F811
    """``cut_tree`` with its superpixels' log-evidence, as the Segmenter reads a tree out."""
    tree = Hierarchy.cut_from(cut_tree.label_maps[-1], cut_tree.merge_tree, cut_tree.tree_config, cut_tree.merge_evidence,
                              cut_tree.class_names, cut_tree.prediction, leaf_log_evidence=np.log(cut_tree.evidence[-1]))
    rgb = np.random.default_rng(0).integers(0, 256, (*tree.shape, 3), dtype=np.uint8)
    return sessions.new_session(tree, rgb, "test", "chelsea.jpg", "abc")


def two_coarse(photo: sessions.Session) -> tuple[sessions.Session, Node, Node]:
    first, second = photo.hierarchy.nodes(0)[:2]
    return sessions.toggle_segment(sessions.drill_to(photo, first), second), first, second


def test_a_second_segment_joins_the_selection_and_is_named_with_it(photo: sessions.Session) -> None:
    both, first, second = two_coarse(photo)
    tree = both.hierarchy
    assert both.members == [first, second] and both.selected == first
    union = tree.union_evidence([first, second])
    assert not np.array_equal(union, tree.evidence_of(first))
    assert views.panels(both).evidence == views.selection_heading_of(both)
    assert views.panels(both).evidence["label"] == naming.label(union, tree.class_names).text
    shown = canvas(both.chains, both.rgb).label_maps[0]
    np.testing.assert_array_equal(views.selection_mask(both), np.isin(shown, [first.index, second.index]))
    assert 'data-selection="2"' in views.breadcrumb_html(both)
    assert "selection of 2 segments" in views.caption_html(both)
    outlined = [cell for cell, width in zip(views.tree_figure(both)["data"][0]["ids"],
                                            views.tree_figure(both)["data"][0]["marker"]["line"]["width"]) if width == 3]
    assert {str(first), str(second)} <= set(outlined)


def test_taking_out_and_any_other_move_return_to_one_segment(photo: sessions.Session) -> None:
    both, first, second = two_coarse(photo)
    assert sessions.toggle_segment(both, second).members == [first]
    assert sessions.toggle_segment(both, first).members == [second]
    assert sessions.go_up(both).members == [first], "Esc: back to the first segment alone"
    assert sessions.drill_to(both, second).members == [second], "a plain click: one segment"
    alone = sessions.drill_to(photo, first)
    assert sessions.toggle_segment(alone, first) is alone, "the only member stays"
    assert sessions.toggle_segment(photo, first).members == [first], "from the whole image: a plain selection"
    with pytest.raises(ValueError, match="whole image"):
        sessions.toggle_segment(both, "-1:0")


def test_a_segment_that_overlaps_a_member_takes_its_place(photo: sessions.Session) -> None:
    both, first, second = two_coarse(photo)
    part = both.chains.children(second)[0]
    narrowed = sessions.toggle_segment(both, part)
    assert narrowed.members == [first, part]
    assert sessions.toggle_segment(narrowed, second).members == [first, second], "and the whole back again"


def test_a_ctrl_click_on_the_photo_adds_the_neighbour_or_takes_a_member_out(photo: sessions.Session) -> None:
    first = photo.hierarchy.nodes(0)[0]
    alone = sessions.drill_to(photo, first)
    shown = canvas(alone.chains, alone.rgb).label_maps
    ys, xs = np.nonzero(shown[0] != first.index)
    outside = sessions.toggle_at(alone, xs[0], ys[0])
    neighbour = sessions.click_to_node(alone, xs[0], ys[0])
    assert outside.members == [first, neighbour]
    ys, xs = np.nonzero(shown[0] == first.index)
    assert sessions.toggle_at(outside, xs[0], ys[0]).members == [neighbour]


def test_the_selections_export_is_its_union(photo: sessions.Session, tmp_path: Path) -> None:
    both, first, second = two_coarse(photo)
    files = downloads.Downloads(tmp_path).selection_bundle(both)
    assert files[0].name == f"chelsea-{first.level}-{first.index}_{second.level}-{second.index}-mask.png"
    np.testing.assert_array_equal(np.asarray(Image.open(files[0])) > 0, both.hierarchy.union_mask([first, second]))
    alpha = np.asarray(Image.open(files[1]))[..., 3] > 0
    assert alpha.sum() == both.hierarchy.union_mask([first, second]).sum()


def test_a_tree_without_superpixel_evidence_refuses_a_selection_clearly(cut_tree: Hierarchy) -> None:  # noqa: F811
    plain = sessions.new_session(cut_tree, np.zeros((*cut_tree.shape, 3), np.uint8))
    first, second = cut_tree.nodes(0)[:2]
    with pytest.raises(ValueError, match="no per-superpixel evidence"):
        sessions.toggle_segment(sessions.drill_to(plain, first), second)
