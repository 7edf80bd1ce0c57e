"""Drill logic, view data and export of ``hierseg.explore`` on a hand-built hierarchy (no model, no gradio)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hierseg import Hierarchy, Node
from hierseg import explore
from hierseg.render import node_color

ROOT = Node(-1, 0)


@pytest.fixture
def tree() -> Hierarchy:
    """A 16x8 image: level 0 = left/right halves, level 1 = quadrants, level 2 = eight 4x4 leaves."""
    height, width = 8, 16
    rows, cols = np.mgrid[0:height, 0:width]
    halves = (cols >= 8).astype(np.int32)
    quadrants = halves * 2 + (rows >= 4)
    leaves = quadrants * 2 + ((cols % 8) >= 4)
    evidence = []
    for n in (2, 4, 8):
        rows_ = np.full((n, 3), 0.1, np.float32)
        rows_[np.arange(n), np.arange(n) % 3] = 0.8
        evidence.append(rows_)
    return Hierarchy(
        label_maps=[halves, quadrants, leaves],
        parents=[np.zeros(0, np.int32), np.array([0, 0, 1, 1]), np.repeat(np.arange(4), 2)],
        evidence=evidence,
        class_names=["tabby, tabby cat", "grass", "sky <blue>"],
        prediction=np.array([0.5, 0.3, 0.2], np.float32),
        meta={"timings_ms": {"model": 1.0}},
    )


@pytest.fixture
def state(tree: Hierarchy) -> explore.ExploreState:
    rgb = np.full((*tree.shape, 3), 200, np.uint8)
    return explore.new_state(tree, rgb, "test")


def test_new_state_selects_the_whole_image(state: explore.ExploreState) -> None:
    assert state.selected == ROOT and state.level == 0 and state.checkpoint == "test"
    with pytest.raises(ValueError, match="image is"):
        explore.new_state(state.hierarchy, np.zeros((3, 3, 3), np.uint8))


def test_drill_to_shows_children_and_accepts_every_node_form(state: explore.ExploreState) -> None:
    for form in ("0:1", Node(0, 1), (0, 1)):
        drilled = explore.drill_to(state, form)
        assert drilled.selected == Node(0, 1) and drilled.level == 1
    leaf = explore.drill_to(state, "2:5")
    assert leaf.level == 2, "a superpixel shows itself"
    assert state.selected == ROOT, "states are immutable"
    with pytest.raises(ValueError):
        explore.drill_to(state, "5:0")
    with pytest.raises(ValueError):
        explore.drill_to(state, "not a node")


def test_go_up_walks_to_the_root_and_stops(state: explore.ExploreState) -> None:
    current = explore.drill_to(state, "2:7")
    seen = []
    for _ in range(4):
        current = explore.go_up(current)
        seen.append(str(current.selected))
    assert seen == ["1:3", "0:1", "-1:0", "-1:0"]
    assert current.level == 0


def test_set_level_only_allows_levels_below_the_selection(state: explore.ExploreState) -> None:
    drilled = explore.drill_to(state, "0:0")
    assert explore.set_level(drilled, 2).level == 2
    with pytest.raises(ValueError):
        explore.set_level(drilled, 0)
    with pytest.raises(ValueError):
        explore.set_level(drilled, 3)


def test_click_picks_what_is_shown(state: explore.ExploreState) -> None:
    # Root: the coarsest segment under the pointer.
    assert explore.click_to_node(state, 12, 1, (16, 8)) == Node(0, 1)
    # Inside the selection: its child under the pointer.
    left = explore.drill_to(state, "0:0")
    assert explore.click_to_node(left, 1, 6, (16, 8)) == Node(1, 1)
    # Finer level chosen: the leaf under the pointer.
    assert explore.click_to_node(explore.set_level(left, 2), 5, 6, (16, 8)) == Node(2, 3)
    # Outside the selection: its neighbour at the same level.
    assert explore.click_to_node(left, 12, 1, (16, 8)) == Node(0, 1)
    # Coordinates of a shrunk (or enlarged) overlay are scaled to the label maps.
    assert explore.click_to_node(left, 2, 30, (160, 80)) == Node(1, 0)
    assert explore.click_to_node(left, 10, 70, (160, 80)) == Node(1, 1)
    # Clicks on the very edge stay inside the image.
    assert explore.click_to_node(state, 16, 8, (16, 8)) == Node(0, 1)


def test_tree_click_on_the_centre_goes_up(state: explore.ExploreState) -> None:
    drilled = explore.drill_to(state, "1:2")
    assert explore.tree_click_target(drilled, "1:2") == Node(0, 1)
    assert explore.tree_click_target(drilled, "2:4") == Node(2, 4)
    assert explore.tree_click_target(state, "-1:0") == ROOT


def test_tree_figure_matches_the_hierarchy_and_the_overlay_colours(tree: Hierarchy) -> None:
    figure = explore.tree_figure(tree, "0:1")
    trace = figure["data"][0]
    assert trace["type"] == "sunburst" and trace["level"] == "0:1"
    assert len(trace["ids"]) == 1 + 2 + 4 + 8
    nodes = dict(zip(trace["ids"], trace["parents"]))
    assert nodes["-1:0"] == "" and nodes["0:1"] == "-1:0" and nodes["2:5"] == "1:2"
    for node_id, colour in zip(trace["ids"], trace["marker"]["colors"]):
        if node_id != "-1:0":
            assert colour == "#{:02x}{:02x}{:02x}".format(*node_color(node_id))
    # Values add up (branchvalues="total") and the hover text carries the top class.
    values = dict(zip(trace["ids"], trace["values"]))
    assert values["-1:0"] == 128 and values["0:1"] == values["1:2"] + values["1:3"]
    custom = dict(zip(trace["ids"], trace["customdata"]))
    assert custom["1:1"][1] == "grass" and custom["1:1"][2] == pytest.approx(0.8)
    assert "customdata[1]" in trace["hovertemplate"]
    # The selection is outlined; a selected superpixel is shown among its siblings.
    widths = dict(zip(trace["ids"], trace["marker"]["line"]["width"]))
    assert widths["0:1"] > widths["0:0"]
    assert explore.tree_figure(tree, "2:6")["data"][0]["level"] == "1:3"
    assert json.loads(explore.tree_json(tree, "0:1")) == figure


def test_breadcrumb_links_every_ancestor(tree: Hierarchy) -> None:
    crumbs = explore.breadcrumb_html(tree, "2:5")
    assert crumbs.count("data-node=") == 3
    for ancestor in ("-1:0", "0:1", "1:2"):
        assert f'data-node="{ancestor}"' in crumbs
    assert '<span class="crumb current">' in crumbs and "2:5 · sky &lt;blue&gt;" in crumbs, "names are escaped"
    assert explore.breadcrumb_html(tree, ROOT).count("data-node=") == 0


def test_table_and_level_choices_follow_the_selection(state: explore.ExploreState) -> None:
    headers, rows = explore.evidence_table(state)
    assert headers[0] == "node" and [row[0] for row in rows] == ["0:0", "0:1"]
    assert sum(row[3] for row in rows) == pytest.approx(100.0)
    drilled = explore.drill_to(state, "0:1")
    _, rows = explore.evidence_table(drilled)
    assert [row[0] for row in rows] == ["1:2", "1:3"] and rows[0][1] == "sky <blue>"
    _, rows = explore.evidence_table(explore.set_level(drilled, 2))
    assert [row[0] for row in rows] == ["2:4", "2:5", "2:6", "2:7"]
    assert explore.level_choices(drilled) == [("level 1: 2 parts", 1), ("level 2: 4 superpixels", 2)]


def test_view_bundles_consistent_data(state: explore.ExploreState) -> None:
    shown = explore.view(explore.drill_to(state, "1:0"))
    assert shown.overlay.shape == (8, 16, 3)
    assert json.loads(shown.tree)["data"][0]["level"] == "1:0"
    assert shown.evidence == {"tabby, tabby cat": 0.8, "grass": 0.1, "sky <blue>": 0.1}
    assert next(iter(shown.prediction)) == "tabby, tabby cat"
    assert [row[0] for row in shown.table_rows] == ["2:0", "2:1"]
    assert shown.level == 2 and shown.levels == [("level 2: 2 superpixels", 2)]


def test_overlay_dims_outside_and_colours_the_chosen_level() -> None:
    height, width = 40, 40
    rows, cols = np.mgrid[0:height, 0:width]
    coarse = (cols >= 20).astype(np.int32)
    middle = coarse * 2 + (rows >= 20)
    fine = middle * 2 + ((cols % 20) >= 10)
    tree = Hierarchy(
        [coarse, middle, fine], [np.zeros(0, np.int32), np.array([0, 0, 1, 1]), np.repeat(np.arange(4), 2)],
        [np.full((n, 1), 1.0, np.float32) for n in (2, 4, 8)], ["thing"], np.ones(1, np.float32),
    )
    rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    state = explore.drill_to(explore.new_state(tree, rgb), "0:0")
    children = explore.overlay(state)
    assert children[:, 25:].mean() < rgb[:, 25:].mean() * 0.5, "outside the selection is dimmed"
    fine_view = explore.overlay(explore.set_level(state, 2))
    # Same outside, but the inside now shows the leaf boundary at x = 10 that the children view lacks.
    assert np.array_equal(fine_view[:, 22:], children[:, 22:])
    assert (fine_view[5:15, 10] == 255).all() and not (children[5:15, 10] == 255).all()
    assert explore.overlay(state, max_side=20).shape == (20, 20, 3)


def test_display_size_only_shrinks() -> None:
    assert explore.display_size((2048, 1024)) == (1024, 512)
    assert explore.display_size((300, 200)) == (300, 200)


def test_drill_info_and_summary_are_json(state: explore.ExploreState) -> None:
    info = explore.drill_info(state.hierarchy, "0:1")
    assert info["node"] == "0:1" and info["path"] == ["-1:0", "0:1"] and not info["is_leaf"]
    assert [child["node"] for child in info["children"]] == ["1:2", "1:3"]
    assert info["share"] == pytest.approx(0.5) and info["top_classes"][0] == ["grass", 0.8]
    assert explore.drill_info(state.hierarchy, "2:3")["is_leaf"]
    summary = explore.summary(state)
    assert [level["n_nodes"] for level in summary["levels"]] == [2, 4, 8]
    assert summary["root"]["children"][1]["node"] == "0:1" and summary["checkpoint"] == "test"
    assert summary["prediction"][0] == ["tabby, tabby cat", 0.5]
    json.dumps(summary)


def test_export_zip_round_trips(tree: Hierarchy, tmp_path: Path) -> None:
    archive = explore.export_zip(tree, tmp_path / "tree.zip")
    with zipfile.ZipFile(archive) as zipped:
        assert sorted(zipped.namelist()) == ["level_0.png", "level_1.png", "level_2.png", "tree.json"]
        zipped.extractall(tmp_path / "out")
    assert Hierarchy.load(tmp_path / "out") == tree


def test_segmenter_pool_loads_each_checkpoint_once() -> None:
    calls = []
    pool = explore.SegmenterPool(lambda name: calls.append(name) or f"segmenter {name}")
    assert pool.get("a") == "segmenter a" and pool.get("a") == "segmenter a" and pool.get("b") == "segmenter b"
    assert calls == ["a", "b"]


def test_available_checkpoints(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.json").write_text("{}")
    (tmp_path / "not-a-checkpoint").mkdir()
    monkeypatch.setenv("HIERSEG_CHECKPOINTS", str(tmp_path))
    monkeypatch.setenv("HIERSEG_CHECKPOINT", "/some/folder")
    names = explore.available_checkpoints()
    assert names[:2] == ["/some/folder", "mine"] and "not-a-checkpoint" not in names
    assert "official/moco-in1k-cast_small" in names and len(names) == len(set(names))
