"""The explorer package on hand-built hierarchies (no model, no gradio): chains, session, views, hover, downloads, API JSON."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import (
    checkpoint_menu, classes, describe, display, downloads, granularity, hover, session as sessions, uploads, views,
)
from explorer.chains import ChainTree
from explorer.pool import SegmenterPool
from hierseg import Hierarchy, ImageLoadError, Node, export
from hierseg import naming
from hierseg.hierarchy.build import cut_merge_tree
from hierseg.hierarchy.merge_tree import TreeConfig, ward_tree

ROOT = Node(-1, 0)


@pytest.fixture
def tree() -> Hierarchy:
    """A 16x8 image. Level 0: left/right halves. Level 1: the left half stays whole (a single-child
    chain 0:0 -> 1:0), the right half splits in two (1:1 top, 1:2 bottom). Level 2: every level-1
    node splits left/right into leaves 2:0..2:5."""
    height, width = 8, 16
    rows, cols = np.mgrid[0:height, 0:width]
    halves = (cols >= 8).astype(np.int32)
    middle = np.where(halves == 0, 0, 1 + (rows >= 4)).astype(np.int32)
    leaves = middle * 2 + ((cols % 8) >= 4)
    evidence = []
    for n in (2, 3, 6):
        rows_ = np.full((n, 3), 0.05, np.float32)
        rows_[np.arange(n), np.arange(n) % 3] = 0.9
        evidence.append(rows_)
    evidence[2][5] = [0.34, 0.33, 0.33]  # weak evidence: still a distribution
    return Hierarchy(
        label_maps=[halves, middle, leaves],
        parents=[np.zeros(0, np.int32), np.array([0, 1, 1]), np.repeat(np.arange(3), 2)],
        evidence=evidence,
        class_names=["tabby, tabby cat", "grass", "sky <blue>"],
        prediction=np.array([0.5, 0.3, 0.2], np.float32),
        meta={"timings_ms": {"model": 1.0}},
    )


@pytest.fixture(scope="module")
def cut_tree() -> Hierarchy:
    """A 24x24 image of 6x6 superpixels (4x4 pixels each) whose levels are cut from a Ward merge tree, as the
    Segmenter reads one out: columns 0-2 and 3-5, rows 0-2 and 3-5 differ most, then row by row; 4 / 8 / 15
    segments at its own cut, 2 to 30 coarse segments over its height range."""
    rng = np.random.default_rng(0)
    side, n = 6, 36
    rows, cols = np.mgrid[0:24, 0:24]
    superpixels = (rows // 4 * side + cols // 4).astype(np.int32)
    grid_row, grid_col = np.divmod(np.arange(n), side)
    features = np.stack([grid_col // 3 * 3.0 + grid_row // 3 * 1.0, grid_row / 2.0], 1) + rng.normal(0, 0.5, (n, 2))
    features = (features - features.mean(0)) / np.sqrt(features.var(0).sum())
    edges = [(i, i + 1) for i in range(n) if i % side < side - 1] + [(i, i + side) for i in range(n - side)]
    merges = ward_tree(features, np.full(n, 1 / n), np.array(edges))
    top = float(merges.heights[-4] + merges.heights[-3]) / 2
    config = TreeConfig((top, top * 0.57, top * 0.265), min_segments=2)
    evidence = rng.dirichlet(np.full(3, 0.5), merges.n_nodes).astype(np.float16).astype(np.float32)
    cut = cut_merge_tree(superpixels, merges, config.thresholds, config.min_segments, config.split_chains, evidence)
    order = cut.superpixel_ids
    evidence = np.concatenate([evidence[order], evidence[n:]])
    return Hierarchy(cut.label_maps, cut.parents, cut.evidence, ["tabby, tabby cat", "grass", "sky"],
                     np.array([0.5, 0.3, 0.2], np.float32), merge_tree=merges.relabel_leaves(order), tree_config=config,
                     merge_evidence=evidence)


@pytest.fixture
def session(tree: Hierarchy) -> sessions.Session:
    rgb = np.random.default_rng(0).integers(0, 256, (*tree.shape, 3), dtype=np.uint8)
    return sessions.new_session(tree, rgb, "test", "chelsea.jpg", "abc")


def test_chains_collapse_single_children(tree: Hierarchy) -> None:
    chains = ChainTree(tree)
    assert chains.chain("1:0") == [Node(0, 0), Node(1, 0)] and chains.head("1:0") == Node(0, 0)
    assert chains.children("0:0") == [Node(2, 0), Node(2, 1)], "the chain's children are its bottom's"
    assert chains.parent("2:0") == Node(0, 0) and chains.path("2:1") == [ROOT, Node(0, 0), Node(2, 1)]
    assert chains.siblings("1:2") == [Node(1, 1), Node(1, 2)]
    # No node of the collapsed tree has exactly one child.
    for level in range(tree.n_levels):
        for node in tree.nodes(level):
            assert len(chains.children(node)) != 1
    assert chains.shown_at(ROOT, 1) == [Node(0, 0), Node(1, 1), Node(1, 2)]


def test_a_root_with_one_child_is_one_chain() -> None:
    one = np.zeros((4, 4), np.int32)
    leaves = (np.arange(16).reshape(4, 4) >= 8).astype(np.int32)
    tree = Hierarchy([one, leaves], [np.zeros(0, np.int32), np.array([0, 0])],
                     [np.full((1, 1), 1.0, np.float32), np.full((2, 1), 1.0, np.float32)], ["x"], np.ones(1, np.float32))
    chains = ChainTree(tree)
    assert chains.head("0:0") == ROOT and chains.children(ROOT) == [Node(1, 0), Node(1, 1)]
    assert chains.parts_level(ROOT) == 1


def test_drill_up_and_levels(session: sessions.Session) -> None:
    assert session.selected == ROOT and session.level == 0 and session.name == "chelsea.jpg"
    drilled = sessions.drill_to(session, "1:0")
    assert drilled.selected == Node(0, 0) and drilled.level == 2, "a chain shows its bottom's children"
    assert session.selected == ROOT, "sessions are immutable"
    assert sessions.go_up(drilled).selected == ROOT and sessions.go_up(session) is session
    finer = sessions.drill_to(session, "0:1")
    assert finer.level == 1 and sessions.set_level(finer, 2).level == 2
    # A level coarser than the selection's parts: the whole image when no smaller ancestor shows it.
    coarse = sessions.set_level(finer, 0)
    assert coarse.selected == ROOT and coarse.level == 0
    with pytest.raises(ValueError):
        sessions.set_level(session, 3)
    with pytest.raises(ValueError):
        sessions.drill_to(session, "5:0")


def test_a_coarser_level_keeps_the_selections_ancestor_selected(session: sessions.Session) -> None:
    """From the superpixel 2:3 (in 1:1, in 0:1): level 1 selects 0:1, whose level-1 parts hold 1:1; never the whole image."""
    leaf = sessions.drill_to(session, "2:3")
    coarser = sessions.set_level(leaf, 1)
    assert (coarser.selected, coarser.level) == (Node(0, 1), 1)
    assert Node(1, 1) in views.shown_nodes(coarser), "the selection's own level-1 segment is among the parts shown"
    assert (sessions.set_level(leaf, 0).selected, sessions.set_level(leaf, 0).level) == (ROOT, 0)
    assert sessions.set_level(leaf, 2).selected == Node(2, 3), "its own level: nothing moves"


def _cut(state: sessions.Session) -> list[int]:
    return [state.hierarchy.n_nodes(level) for level in range(state.hierarchy.n_levels)]


def test_the_granularity_control_keeps_the_selection(cut_tree: Hierarchy) -> None:
    """A move re-cuts the photo's first tree and carries the selection: the smallest new segment holding
    it (itself if kept, its ancestor when coarser), its largest piece when the new coarse cut splits it;
    never the whole image unless that was selected, and back where it started when the slider comes back."""
    first = sessions.new_session(cut_tree, np.zeros((24, 24, 3), np.uint8))
    assert first.height == pytest.approx(cut_tree.cut_heights[0], rel=0.02) and _cut(first) == [4, 8, 15, 36]
    low, high = cut_tree.height_range()
    picked = sessions.drill_to(first, "1:3")
    mask = picked.hierarchy.mask(picked.selected)
    for position in np.linspace(0.0, 1.0, 11):
        moved = sessions.set_granularity(picked, granularity.height_at(cut_tree, position))
        assert moved.source is cut_tree and moved.hierarchy == cut_tree.recut(moved.height), "no drift"
        assert moved.selected != ROOT, (position, _cut(moved))
        new_mask = moved.hierarchy.mask(moved.selected)
        if (new_mask & mask).sum() == mask.sum():  # holds all of it: the smallest such segment
            smaller = [child for child in moved.chains.children(moved.selected) if moved.hierarchy.mask(child)[mask].all()]
            assert not smaller, (position, moved.selected)
        else:  # split by a finer coarsest cut: its largest piece among the coarse segments
            assert moved.selected.level == 0 and moved.hierarchy.label_maps[0][mask].size
            pieces = np.bincount(moved.hierarchy.label_maps[0][mask])
            assert moved.selected.index == pieces.argmax(), position
        assert moved.level == moved.chains.parts_level(moved.selected)
    coarsest = sessions.set_granularity(picked, high)
    assert coarsest.hierarchy.mask(coarsest.selected)[mask].all() and _cut(coarsest)[0] < 4, "coarser: an ancestor"
    there = sessions.set_granularity(sessions.set_granularity(picked, low), granularity.height_at(cut_tree, 0.75))
    back = sessions.set_granularity(there, cut_tree.cut_heights[0])
    assert back.selected == picked.selected and back.level == picked.level, "a drag and back ends where it started"
    assert sessions.set_granularity(first, low).selected == ROOT, "the whole image stays the whole image"
    finer = sessions.set_granularity(sessions.set_level(picked, 3), low)
    assert finer.level == 3, "a finer level shown stays shown"


def test_the_first_cut_is_on_the_slider_grid_and_the_slider_returns_to_it(cut_tree: Hierarchy) -> None:
    """One step of the slider and back (as the browser adds and subtracts its float step), or a reset, gives
    exactly the first tree: the first cut is the grid position nearest the model's own."""
    first = sessions.new_session(cut_tree, np.zeros((24, 24, 3), np.uint8))
    start = granularity.default_position(cut_tree)
    assert start == granularity.on_grid(start) and 0 < start < 1
    assert abs(start - granularity.position_of(cut_tree, cut_tree.cut_heights[0])) <= granularity.STEP / 2
    assert first.height == granularity.height_at(cut_tree, start)
    for steps in (1, -1, 7, 40):
        away = sessions.set_granularity(first, granularity.height_at(cut_tree, start + steps * granularity.STEP))
        back = sessions.set_granularity(away, granularity.height_at(cut_tree, start + steps * granularity.STEP
                                                                    - steps * granularity.STEP))
        assert back.height == first.height and back.hierarchy == first.hierarchy, steps
        assert _cut(back) == _cut(first) and back.selected == first.selected


def test_heights_outside_the_published_range_are_refused(cut_tree: Hierarchy) -> None:
    first = sessions.new_session(cut_tree, np.zeros((24, 24, 3), np.uint8))
    low, high = cut_tree.height_range()
    for height in (99.0, high * 1.01, low * 0.99, 0.0, -1.0):
        with pytest.raises(ValueError, match="outside this photo's range"):
            sessions.set_granularity(first, height)
    for height in (low, high, granularity.height_at(cut_tree, 0), granularity.height_at(cut_tree, 1)):
        assert sessions.set_granularity(first, height).height == height


def test_trees_with_fixed_levels_have_no_granularity(session: sessions.Session, cut_tree: Hierarchy) -> None:
    assert session.height is None and not granularity.has_granularity(session.hierarchy)
    with pytest.raises(ValueError, match="fixed levels"):
        sessions.set_granularity(session, 0.1)
    assert describe.summary(session)["granularity"] is None
    cut = sessions.new_session(cut_tree, np.zeros((24, 24, 3), np.uint8))
    inside = float(np.sqrt(np.prod(cut_tree.height_range())))
    stated = describe.summary(sessions.set_granularity(cut, inside))["granularity"]
    assert stated["coarsest_height"] == inside and stated["height_range"] == list(cut_tree.height_range())
    assert stated["cut_heights"][0] == pytest.approx(inside)
    assert describe.drill_info(cut, "0:0")["granularity"] == describe.summary(cut)["granularity"]


def test_the_slider_moves_through_log_height_coarse_to_fine(cut_tree: Hierarchy) -> None:
    low, high = cut_tree.height_range()
    assert granularity.height_at(cut_tree, 0) == pytest.approx(high)
    assert granularity.height_at(cut_tree, 1) == pytest.approx(low)
    assert granularity.height_at(cut_tree, 0.5) == pytest.approx((low * high) ** 0.5), "log-scaled"
    for position in (0.0, 0.3, 1.0):
        assert granularity.position_of(cut_tree, granularity.height_at(cut_tree, position)) == pytest.approx(position)
    counts = [cut_tree.recut(granularity.height_at(cut_tree, p)).n_nodes(0) for p in np.linspace(0, 1, 21)]
    assert counts == sorted(counts) and counts[0] < counts[-1], counts
    state = sessions.new_session(cut_tree, np.zeros((24, 24, 3), np.uint8))
    assert views.granularity_label(state) == "Granularity: 4 coarse segments"


def test_labels_of_every_cut_are_the_naming_rules(cut_tree: Hierarchy) -> None:
    """Labels are kept per merge-tree node across cuts: each cut's nodes still get their own evidence's label."""
    for position in (0.0, 0.5, 1.0, 0.25):
        tree = cut_tree.recut(granularity.height_at(cut_tree, position))
        for level in range(tree.n_levels):
            for node in tree.nodes(level):
                assert classes.node_label(tree, node) == naming.node_label(tree, node), (position, node)


def test_siblings_wrap(session: sessions.Session) -> None:
    one = sessions.drill_to(session, "1:1")
    assert sessions.step_sibling(one, 1).selected == Node(1, 2)
    assert sessions.step_sibling(one, -1).selected == Node(1, 2), "wraps around"
    assert sessions.step_sibling(session, 1).selected == ROOT


def test_click_picks_what_is_shown(session: sessions.Session) -> None:
    assert sessions.click_to_node(session, 12, 1) == Node(0, 1)
    right = sessions.drill_to(session, "0:1")
    assert sessions.click_to_node(right, 12, 6) == Node(1, 2)
    assert sessions.click_to_node(right, 2, 2) == Node(0, 0), "outside: the neighbour at the selection's level"
    assert sessions.click_to_node(session, 99, 99) == Node(0, 1), "clamped to the image"
    drilled = sessions.drill_to(session, "1:1")
    assert sessions.tree_click_target(drilled, "1:1") == Node(0, 1), "clicking the centre goes up"


def test_click_targets_are_what_a_click_on_each_pixel_selects(session: sessions.Session) -> None:
    """The page hit-tests with click_targets by superpixel: the same answer as click_to_node, pixel by pixel."""
    leaves = session.hierarchy.label_maps[-1]
    for state in [session, sessions.drill_to(session, "0:1"), sessions.set_level(sessions.drill_to(session, "0:1"), 2),
                  sessions.drill_to(session, "2:3")]:
        targets = sessions.click_targets(state)
        assert len(targets) == session.hierarchy.n_nodes(session.hierarchy.leaf_level)
        for y, x in np.ndindex(leaves.shape):
            assert targets[leaves[y, x]] == sessions.click_to_node(state, x, y), (state.selected, x, y)
    assert json.loads(views.click_targets_json(session)) == [str(node) for node in sessions.click_targets(session)]
    # Inside the selection 0:1 the level-1 parts; outside it, the level-0 neighbour (here the chain head 0:0).
    assert sessions.click_targets(sessions.drill_to(session, "0:1")) == [Node(0, 0)] * 2 + [Node(1, 1)] * 2 + [Node(1, 2)] * 2


def test_display_size_and_shrunk_canvases(tree: Hierarchy) -> None:
    assert display.display_size((2048, 1024)) == (1024, 512) and display.display_size((300, 200)) == (300, 200)
    small = sessions.new_session(tree, np.zeros((*tree.shape, 3), np.uint8))
    drawn = display.draw_canvas(small.chains, small.rgb, max_side=8)
    assert drawn.label_maps[0].shape == (4, 8) and drawn.rgb.shape == (4, 8, 3)
    with pytest.raises(ValueError, match="image is"):
        sessions.new_session(tree, np.zeros((3, 3, 3), np.uint8))


def test_the_session_is_state_and_its_canvas_is_derived_once(session: sessions.Session) -> None:
    """A session holds no drawing data; the canvas of its tree is computed once and shared by its successors."""
    assert not {"colours", "shown_rgb", "shown_maps"} & set(vars(session))
    drawn = display.canvas(session.chains, session.rgb)
    assert display.canvas(sessions.drill_to(session, "0:1").chains, session.rgb) is drawn
    np.testing.assert_array_equal(drawn.label_maps[0], session.hierarchy.label_maps[0])
    other = sessions.new_session(session.hierarchy, session.rgb)
    assert display.canvas(other.chains, other.rgb) is not drawn, "another tree, another canvas"


def heads_in_column(trace: dict, centre: str, level: int) -> set[str]:
    """From the drawn tree alone: the cells of ``level`` under ``centre``, each named by its chain's first cell
    (a cell continues its parent's chain when it is that parent's only child). ``tests/test_browser.py`` reads the
    drawn tree with it too."""
    parent = dict(zip(trace["ids"], trace["parents"], strict=True))
    n_children = {node: trace["parents"].count(node) for node in trace["ids"]}

    def head(node: str) -> str:
        while node != "-1:0" and n_children[parent[node]] == 1:
            node = parent[node]
        return node

    def under(node: str) -> bool:
        while node and node != centre:
            node = parent[node]
        return node == centre

    return {head(node) for node in trace["ids"] if node.startswith(f"{level}:") and under(node)}


def test_the_trees_column_at_the_level_shown_is_what_the_photo_shows(session: sessions.Session) -> None:
    """At every selection and level, the tree's cells of that level inside the selection = the table's rows = the photo's segments."""
    for node in [ROOT, Node(0, 0), Node(0, 1), Node(1, 1), Node(2, 3)]:
        for level in range(session.hierarchy.n_levels):
            state = sessions.set_level(sessions.drill_to(session, node), level)
            trace = views.tree_figure(state)["data"][0]
            column = heads_in_column(trace, str(views.tree_centre(state)), state.level)
            rows = {row.split('"')[0] for row in views.table_html(state).split('data-node="')[1:]}
            assert column == rows == {str(n) for n in views.shown_nodes(state)}, (node, level)
            shown_map = display.canvas(state.chains, state.rgb).label_maps[state.level]
            photo_ids = set(np.unique(shown_map[views.overlay(state).any(axis=2) >= 0]))
            heads = {str(state.chains.head(Node(state.level, int(i)))) for i in photo_ids}
            assert column <= heads


def test_the_tree_shows_every_level_the_selection_and_its_path(session: sessions.Session) -> None:
    """Every node of every level is a cell under its parent, whatever is selected; the selection's chain is
    outlined, its path from the root too; cells outside both are faded, cells inside keep the photo's colour."""
    tree = session.hierarchy
    everything = {"-1:0"} | {str(node) for level in range(tree.n_levels) for node in tree.nodes(level)}
    colours = display.canvas(session.chains, session.rgb).colours
    for state in (session, sessions.drill_to(session, "2:4")):  # the coarsest view and a superpixel's
        ids = views.tree_figure(state)["data"][0]["ids"]
        assert set(ids) == everything and len(ids) == len(everything), state.selected
    state = sessions.drill_to(session, "1:1")
    trace = views.tree_figure(state)["data"][0]
    for node, parent in zip(trace["ids"], trace["parents"], strict=True):
        assert parent == ("" if node == "-1:0" else str(tree.parent(node)))
    style = {node: (width, colour) for node, width, colour
             in zip(trace["ids"], trace["marker"]["line"]["width"], trace["marker"]["colors"], strict=True)}
    assert style["1:1"][0] == 3 and style["0:1"][0] == 2 and style["-1:0"][0] == 2, "selection and path outlined"
    for node in ("2:2", "2:3", "1:1"):  # inside the selection
        assert style[node][1] == display.node_hex(colours, Node.parse(node))
    for node in ("0:0", "1:0", "2:0", "1:2", "2:5"):  # outside it and off its path
        assert style[node][0] <= 1 and style[node][1] != display.node_hex(colours, Node.parse(node)), node
    named = dict(zip(trace["ids"], trace["labels"], strict=True))
    assert named["0:0"] and named["1:0"] == "", "a chain is named once, in its first cell"
    assert len(views.tree_json(session)) < 200 * len(everything), "a modest payload"


def test_tree_figure_colours_values_and_labels(session: sessions.Session) -> None:
    figure = views.tree_figure(session)
    trace = figure["data"][0]
    assert figure["layout"]["meta"] == {"selected": "-1:0", "level": 0, "centre": "-1:0", "columns": 4}
    assert figure["layout"]["uniformtext"]["mode"] == "hide", "names that do not fit are hidden, not shrunk"
    values = dict(zip(trace["ids"], trace["values"], strict=True))
    assert values["-1:0"] == 128 and values["-1:0"] == values["0:0"] + values["0:1"]
    colours = dict(zip(trace["ids"], trace["marker"]["colors"], strict=True))
    assert colours["0:1"] == display.node_hex(display.canvas(session.chains, session.rgb).colours, Node(0, 1))
    assert json.loads(views.tree_json(session)) == figure
    leaf = sessions.drill_to(session, "2:3")
    assert views.tree_figure(leaf)["layout"]["meta"]["centre"] == "1:1", "a superpixel is shown among its siblings"


def test_colours_children_differ_from_their_parent(session: sessions.Session) -> None:
    """A part never has its parent's colour; siblings differ; a chain keeps one colour."""
    chains, colours = session.chains, display.canvas(session.chains, session.rgb).colours
    assert (colours[0][0] == colours[1][0]).all(), "0:0 and 1:0 are one region, one colour"
    for level in range(session.hierarchy.n_levels - 1):
        for node in session.hierarchy.nodes(level):
            children = chains.children(node)
            for child in children:
                assert not (colours[child.level][child.index] == colours[node.level][node.index]).all()
            assert len({tuple(colours[c.level][c.index]) for c in children}) == len(children)


def test_honest_labels_and_plurals(session: sessions.Session) -> None:
    assert classes.node_label(session.hierarchy, Node(2, 0)).text == "tabby 90%"
    assert classes.node_label(session.hierarchy, Node(2, 5)).text == "uncertain (tabby 34%)"
    assert views.plural(1, "part") == "1 part" and views.plural(3, "superpixel") == "3 superpixels"
    assert views.level_choices(session) == [("level 0 · 2 segments", 0), ("level 1 · 3 segments", 1),
                                            ("level 2 · 6 superpixels", 2)]
    crumbs = views.breadcrumb_html(sessions.drill_to(session, "2:5"))
    assert crumbs.count("data-node=") == 3 and crumbs.endswith(">uncertain</span></nav>")
    assert "sky &lt;blue&gt;" in views.breadcrumb_html(sessions.drill_to(session, "1:2")), "names are escaped"
    assert "finest part" in views.caption_html(sessions.drill_to(session, "2:0"))
    assert "2 parts" in views.caption_html(session)


def test_panels_bundle_consistent_data(session: sessions.Session) -> None:
    shown = views.panels(sessions.drill_to(session, "0:1"))
    assert shown.overlay.shape == (8, 16, 3) and shown.can_go_up
    assert json.loads(shown.tree)["layout"]["meta"]["selected"] == "0:1"
    assert shown.evidence["label"] == "grass 90%" and shown.prediction["label"] == "uncertain (tabby 50%)"
    assert shown.level == 1 and 'data-node="1:1"' in shown.table and "swatch" in shown.table
    assert not views.panels(session).can_go_up, "Up at the root is disabled"
    strip = views.level_strip_html(session)
    assert strip.count("data-level=") == 3 and strip.count("data:image/jpeg;base64,") == 3


def test_overlay_dims_outside_and_honours_display_options(session: sessions.Session) -> None:
    right = sessions.drill_to(session, "0:1")
    dimmed = views.overlay(right)
    shown_rgb = display.canvas(session.chains, session.rgb).rgb
    rgb = shown_rgb.astype(int)
    assert dimmed[:, :6].mean() < rgb[:, :6].mean() * 0.5
    bright = views.overlay(sessions.set_display(right, sessions.Display(dim=False)))
    assert bright[:, :6].mean() > dimmed[:, :6].mean() * 1.5
    outlines = views.overlay(sessions.set_display(right, sessions.Display(outlines_only=True, dim=False)))
    assert (outlines[2, 1] == shown_rgb[2, 1]).all(), "outlines only: the photo is untouched inside segments"


def test_hover_payload_decodes_to_the_shown_maps(session: sessions.Session) -> None:
    payload = json.loads(hover.hover_payload(session))
    assert (payload["width"], payload["height"]) == (16, 8)
    for runs, label_map in zip(payload["maps"], display.canvas(session.chains, session.rgb).label_maps, strict=True):
        decoded = np.repeat(runs[0::2], runs[1::2]).reshape(8, 16)
        np.testing.assert_array_equal(decoded, label_map)
    small = json.loads(hover.hover_payload(session, max_side=4))
    assert (small["width"], small["height"]) == (4, 2) and sum(small["maps"][0][1::2]) == 8


def test_exports(session: sessions.Session, tmp_path: Path) -> None:
    tree = session.hierarchy
    archive = export.export_tree_zip(tree, tmp_path / "tree.zip")
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == ["evidence.npz", "level_0.png", "level_1.png", "level_2.png", "tree.json"]
        zipped.extractall(tmp_path / "out")
    assert Hierarchy.load(tmp_path / "out") == tree
    mask = np.asarray(Image.open(export.export_mask(tree, "1:2", tmp_path / "mask.png")))
    np.testing.assert_array_equal(mask > 0, tree.mask("1:2"))
    cutout = np.asarray(Image.open(export.export_cutout(tree, session.rgb, "1:2", tmp_path / "cut.png")))
    assert cutout.shape == (4, 8, 4) and (cutout[..., 3] == 255).all()
    np.testing.assert_array_equal(cutout[..., :3], session.rgb[4:8, 8:16])
    coco = json.loads(export.export_coco(tree, tmp_path / "coco.json", "chelsea.jpg").read_text())
    assert len(coco["annotations"]) == 2 + 3 + 6 and coco["images"][0]["width"] == 16
    for annotation in coco["annotations"]:
        node = annotation["hierseg"]["node"]
        np.testing.assert_array_equal(export.decode_coco_rle(annotation["segmentation"]), tree.mask(node))
        assert annotation["area"] == tree.area(node)
    assert export.coco_rle(np.array([[True, False]]))["counts"] == [0, 1, 1], "runs start with background"
    categories = {a["hierseg"]["node"]: a["category_id"] for a in coco["annotations"]}
    assert categories["0:0"] == 1 and categories["1:2"] == 3 and categories["2:5"] == 0, "2:5 is uncertain"


def test_coco_categories_follow_the_class_index_when_names_repeat(tmp_path: Path) -> None:
    """ImageNet names two classes "crane": a node's category is its best class's index, not the first of that name."""
    one = np.zeros((2, 2), np.int32)
    tree = Hierarchy([one], [np.zeros(0, np.int32)], [np.array([[0.1, 0.2, 0.7]], np.float32)],
                     ["crane", "bird", "crane"], np.array([0.1, 0.2, 0.7], np.float32))
    coco = json.loads(export.export_coco(tree, tmp_path / "coco.json").read_text())
    assert coco["annotations"][0]["category_id"] == 3
    assert coco["categories"][2] == {"id": 3, "name": "crane"}


def test_the_selection_bundle_is_named_after_the_photo_and_node(session: sessions.Session, tmp_path: Path) -> None:
    files = downloads.Downloads(tmp_path).selection_bundle(sessions.drill_to(session, "1:2"))
    assert [path.name for path in files] == ["chelsea-1-2-mask.png", "chelsea-1-2-cutout.png", "chelsea-coco.json",
                                             "chelsea-tree.zip"]
    assert len({path.parent for path in files}) == 4, "each in a folder of its own"
    np.testing.assert_array_equal(np.asarray(Image.open(files[0])) > 0, session.hierarchy.mask("1:2"))


def _bsds_sized_tree(half: bool) -> Hierarchy:
    """481x321, 1000 classes, levels of 4..256 segments; ``half``: evidence of float16 precision (as a tree read
    out of a merge tree holds it), else float32."""
    rng = np.random.default_rng(0)
    superpixels = np.arange(321 * 481).reshape(321, 481) // 604  # 256 bands of superpixels
    sizes = [256, 64, 16, 4]
    assignments = [np.arange(sizes[j]) * sizes[j + 1] // sizes[j] for j in range(3)]
    evidence = [rng.dirichlet(np.full(1000, 0.05), n).astype(np.float16 if half else np.float32).astype(np.float32)
                for n in sizes]
    return Hierarchy.from_assignments(superpixels, assignments, evidence, [f"class {i}" for i in range(1000)],
                                      rng.dirichlet(np.ones(1000)).astype(np.float32))


def _stored_dtypes(folder: Path) -> set[str]:
    with np.load(folder / "evidence.npz", allow_pickle=False) as stored:
        return {str(stored[name].dtype) for name in stored.files if name.startswith("level_")}


def test_the_tree_zip_of_a_bsds_sized_photo_is_compact_and_loads_back_exactly(tmp_path: Path) -> None:
    """481x321, 1000 classes, levels of 4..256 segments: tree.json stays under 1 MB, and the unzipped
    folder loads back to the same tree (every evidence row exact: float32 evidence stays float32)."""
    tree = _bsds_sized_tree(half=False)
    with zipfile.ZipFile(export.export_tree_zip(tree, tmp_path / "tree.zip")) as zipped:
        assert zipped.getinfo("tree.json").file_size <= 1_000_000
        zipped.extractall(tmp_path / "out")
    assert _stored_dtypes(tmp_path / "out") == {"float32"}
    assert Hierarchy.load(tmp_path / "out") == tree
    # A folder of format version 1 (the evidence inline in tree.json) still loads.
    data = json.loads((tmp_path / "out" / "tree.json").read_text())
    data["version"] = 1
    del data["evidence"]
    for level, entry in enumerate(data["levels"]):
        entry["evidence"] = tree.evidence[level].tolist()
    (tmp_path / "out" / "tree.json").write_text(json.dumps(data))
    (tmp_path / "out" / "evidence.npz").unlink()
    assert Hierarchy.load(tmp_path / "out") == tree


def test_the_tree_zip_holds_float16_evidence_compressed_where_that_is_exact(cut_tree: Hierarchy, tmp_path: Path) -> None:
    """Evidence of float16 precision (a merge tree's readout) is stored as float16, compressed, by the library's
    one writer (the zip, ``save_pngs`` and ``save`` alike): smaller than the same rows as float32 compressed,
    which is smaller than the rows written plainly (np.savez); it loads back to the same tree, and so does a
    tree with its merge tree."""
    tree = _bsds_sized_tree(half=True)
    with zipfile.ZipFile(export.export_tree_zip(tree, tmp_path / "tree.zip")) as zipped:
        zipped.extractall(tmp_path / "out")
    assert _stored_dtypes(tmp_path / "out") == {"float16"}
    assert _stored_dtypes(tree.save_pngs(tmp_path / "library")) == {"float16"}
    assert Hierarchy.load(tmp_path / "out") == tree
    exported = (tmp_path / "out" / "evidence.npz").stat().st_size
    rows = {f"level_{level}": rows for level, rows in enumerate(tree.evidence)}
    with open(tmp_path / "single.npz", "wb") as single, open(tmp_path / "plain.npz", "wb") as plain:
        np.savez_compressed(single, **rows)
        np.savez(plain, **rows)
    assert exported < (tmp_path / "single.npz").stat().st_size < (tmp_path / "plain.npz").stat().st_size
    with np.load(tree.save(tmp_path / "tree.npz"), allow_pickle=False) as stored:
        assert {str(stored[f"evidence_{level}"].dtype) for level in range(tree.n_levels)} == {"float16"}
    assert Hierarchy.load(tmp_path / "tree.npz") == tree
    with zipfile.ZipFile(export.export_tree_zip(cut_tree, tmp_path / "cut.zip")) as zipped:
        zipped.extractall(tmp_path / "cut")
    assert _stored_dtypes(tmp_path / "cut") == {"float16"}
    assert Hierarchy.load(tmp_path / "cut") == cut_tree


def test_the_checkpoint_list_offers_downloads_with_their_size_and_leaves_them_out_offline(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from hierseg.checkpoints import OFFICIAL_RELEASES, hub

    monkeypatch.setenv("HIERSEG_CACHE", str(tmp_path))
    monkeypatch.setattr(hub, "in_hub_cache", lambda repo, filename: False)
    downloaded = "official/deit-in1k-cast_small"  # converted once: on this machine
    folder = tmp_path / hub.release_key(*OFFICIAL_RELEASES[downloaded])
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    names = ["mine", *OFFICIAL_RELEASES]
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    assert checkpoint_menu.offered_checkpoints(names) == {"mine": "mine", downloaded: downloaded}
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(checkpoint_menu, "release_download_size",
                        lambda name, timeout=3.0: 88_400_000 if name.endswith("cast_small") else None)
    offered = checkpoint_menu.offered_checkpoints(names)
    assert list(offered) == names
    assert offered["official/moco-in1k-cast_small"] == "official/moco-in1k-cast_small (download, 88 MB)"
    assert offered["official/moco-in1k-cast_base"] == "official/moco-in1k-cast_base (download)"
    assert offered[downloaded] == downloaded


def test_coco_names_the_photo_file_and_no_category_where_the_page_says_uncertain(tmp_path: Path) -> None:
    """The bundle's COCO file: ``file_name`` with the photo's extension, and a category only for the
    nodes whose class the page states (``classes``'s rule; 0 elsewhere)."""
    halves = (np.mgrid[0:4, 0:8][1] >= 4).astype(np.int32)
    evidence = np.full((2, 20), 0.05, np.float32)  # node 0:0 has no class above chance
    evidence[1] = 0.01
    evidence[1, 7] = 0.81
    tree = Hierarchy([halves], [np.zeros(0, np.int32)], [evidence], [f"class {i}" for i in range(20)],
                     np.full(20, 0.05, np.float32))
    state = sessions.new_session(tree, np.zeros((4, 8, 3), np.uint8), "test", "grass.field.png", "abc")
    coco_file = downloads.Downloads(tmp_path).selection_bundle(state)[2]
    assert coco_file.name == "grass.field-coco.json"
    coco = json.loads(coco_file.read_text())
    assert coco["images"][0]["file_name"] == "grass.field.png"
    categories = {a["hierseg"]["node"]: a["category_id"] for a in coco["annotations"]}
    assert categories == {"0:0": 0, "0:1": 8}
    for node, category in categories.items():
        assert (category != 0) == bool(classes.confident_name(tree, Node.parse(node))), node


def test_download_names_follow_the_photo_and_node() -> None:
    """No uuid names."""
    assert downloads.download_name("chelsea", "0:1") == "chelsea-0-1.png"
    assert downloads.download_name("chelsea", ROOT, "tree", "zip") == "chelsea-tree.zip"
    assert downloads.download_name("my photo/..", Node(2, 5), "mask") == "my_photo_..-2-5-mask.png"


def test_api_json_walks_the_collapsed_tree(session: sessions.Session) -> None:
    info = describe.drill_info(session, "1:0")
    assert info["node"] == "0:0" and info["chain"] == ["0:0", "1:0"] and info["path"] == ["-1:0", "0:0"]
    assert [child["node"] for child in info["children"]] == ["2:0", "2:1"] and not info["is_leaf"]
    assert info["color"] == display.node_hex(display.canvas(session.chains, session.rgb).colours, Node(0, 0))
    assert describe.drill_info(session, "2:3")["is_leaf"]
    summary = describe.summary(session)
    assert [level["n_nodes"] for level in summary["levels"]] == [2, 3, 6] and summary["checkpoint"] == "test"
    assert summary["prediction"][0] == ["tabby, tabby cat", 0.5]
    # The fields the README's API section lists, and no others (refinement left the app).
    assert set(summary) == {"checkpoint", "image_size", "levels", "granularity", "selected", "prediction",
                            "prediction_label", "root", "timings_ms"}
    assert summary["selected"] == "-1:0" and describe.summary(sessions.drill_to(session, "2:3"))["selected"] == "2:3"
    json.dumps(summary)


def test_an_upload_is_digested_once_and_named_as_the_person_named_it(tmp_path: Path) -> None:
    copy = tmp_path / "3f2a9c" / "upload.bin"
    copy.parent.mkdir()
    copy.write_bytes(b"this is not an image at all")
    upload = uploads.read_upload({"path": str(copy), "orig_name": "notes.jpg"})
    assert upload.name == "notes.jpg" and len(upload.key) == 40
    assert uploads.read_upload({"path": str(copy)}).name == "upload.bin" and uploads.read_upload(None) is None
    with pytest.raises(ImageLoadError, match="not an image") as error:
        upload.decode()
    assert "'notes.jpg'" in str(error.value) and str(copy) not in str(error.value)
    Image.new("RGB", (12, 10), (1, 2, 3)).save(copy, "PNG")
    assert upload.decode().shape == (10, 12, 3), "the file is read when decoded"


def test_segmenter_pool_loads_each_checkpoint_once() -> None:
    calls = []
    pool = SegmenterPool(lambda name: calls.append(name) or f"segmenter {name}")
    assert pool.get("a") == "segmenter a" and pool.get("a") == "segmenter a" and pool.get("b") == "segmenter b"
    assert calls == ["a", "b"]


def test_available_checkpoints(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    (tmp_path / "not-a-checkpoint").mkdir()
    monkeypatch.setenv("HIERSEG_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("HIERSEG_CHECKPOINT", "/some/folder")
    names = checkpoint_menu.available_checkpoints()
    assert names[:2] == ["/some/folder", "mine"] and "not-a-checkpoint" not in names
    assert "official/moco-in1k-cast_small" in names and len(names) == len(set(names))
