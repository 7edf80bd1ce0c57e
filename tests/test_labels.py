"""One naming rule everywhere: the heading, table, tree, breadcrumb, API answers and COCO export state the
same label for a node (``hierseg.naming``), segments are called by names and never by ids."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from explorer import classes, describe, downloads, session as sessions, views
from hierseg import Hierarchy, Node
from hierseg.class_hierarchy import imagenet_hierarchy
from hierseg.naming import NAME_THRESHOLD, label, node_label

ROOT = Node(-1, 0)
NAMES = list(imagenet_hierarchy().names[:1000])
BREEDS = ["Chihuahua", "beagle", "whippet", "Border terrier", "golden retriever", "Siberian husky",
          "boxer", "Great Dane", "pug", "Samoyed", "toy poodle", "collie"]
NODE_ID = re.compile(r"-?\d+:\d+")


def distribution(mass: dict[str, float]) -> np.ndarray:
    """1000 probabilities: ``mass`` on the named classes, the rest spread evenly."""
    p = np.full(1000, (1.0 - sum(mass.values())) / (1000 - len(mass)), np.float32)
    for name, prob in mass.items():
        p[NAMES.index(name)] = prob
    return p


def dogs(total: float) -> np.ndarray:
    return distribution({breed: total / len(BREEDS) for breed in BREEDS})


@pytest.fixture
def session() -> sessions.Session:
    """16x8: level 0 left/right halves; level 1 splits each half top/bottom (leaves 1:0..1:3).
    Left half: a spread of dog breeds (no breed, but "dog"); its parts a tabby and more breeds.
    Right half: weak evidence (uncertain); its parts two "sorrel"s, one too weak to name (no family of
    it reaches the threshold either), so siblings are named alike only where the rule says so."""
    rows, cols = np.mgrid[0:8, 0:16]
    halves = (cols >= 8).astype(np.int32)
    quarters = (halves * 2 + (rows >= 4)).astype(np.int32)
    level0 = np.stack([dogs(0.85), distribution({"monarch": 0.04})])
    level1 = np.stack([distribution({"tabby": 0.7}), dogs(0.6),
                       distribution({"sorrel": 0.3}), distribution({"sorrel": 0.9})])
    tree = Hierarchy([halves, quarters], [np.zeros(0, np.int32), np.array([0, 0, 1, 1])], [level0, level1],
                     NAMES, distribution({"llama": 0.10}))
    rgb = np.zeros((8, 16, 3), np.uint8)
    return sessions.new_session(tree, rgb, "test", "photo.jpg", "abc")


def visible_text(fragment: str) -> str:
    """What a person reads in an HTML fragment: tags and attributes dropped."""
    return re.sub(r"<[^>]*>", " ", fragment)


def test_wordnet_names_a_spread_over_dog_breeds_dog() -> None:
    stated = label(dogs(0.85), NAMES)
    assert stated.name == "dog" and stated.class_index == -1 and stated.text.startswith("dog 8")
    assert stated.guess in BREEDS and stated.guess_probability < NAME_THRESHOLD
    assert label(distribution({"tabby": 0.7}), NAMES).class_index == NAMES.index("tabby")
    assert label(distribution({"monarch": 0.04}), NAMES).text == "uncertain (monarch 4%)"
    # A vocabulary without a family tree names its classes only.
    assert label(np.array([0.45, 0.3, 0.25]), ["a", "b", "c"]).text == "uncertain (a 45%)"
    assert label(np.array([0.55, 0.3, 0.15]), ["a", "b", "c"]).text == "a 55%"


def test_one_label_per_node_in_every_view(session: sessions.Session, tmp_path: Path) -> None:
    """The heading, table, tree, breadcrumb, API and COCO export state each node's label alike."""
    hierarchy = session.hierarchy
    coco = json.loads(downloads.Downloads(tmp_path).selection_bundle(session)[2].read_text())
    coco_by_node = {a["hierseg"]["node"]: a for a in coco["annotations"]}
    api = describe.summary(session)
    assert api["prediction_label"] == views.panels(session).prediction["label"] == "uncertain (llama 10%)"
    for node in [Node(0, 0), Node(0, 1), Node(1, 0), Node(1, 1), Node(1, 2), Node(1, 3)]:
        stated = node_label(hierarchy, node)
        state = sessions.drill_to(session, node)
        shown = views.panels(state)
        assert shown.evidence["label"] == stated.text, node
        name = classes.segment_name(hierarchy, state.chains, node)
        assert name.split(" (")[0] == stated.word, node
        # The table and tree of the whole image at the node's level list it among its peers.
        overview = views.panels(sessions.set_level(session, node.level))
        row = re.search(rf'<tr data-node="{node}"[^>]*>(.*?)</tr>', overview.table).group(1)
        cells = [visible_text(cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row)]
        assert cells[:2] == [name, stated.text], node
        trace = json.loads(overview.tree)["data"][0]
        at = trace["ids"].index(str(node))
        assert trace["labels"][at] == name and trace["customdata"][at][:2] == [name, stated.text], node
        assert visible_text(shown.breadcrumb).split("›")[-1].strip() == name, node
        info = describe.drill_info(state, node)
        assert info["label"] == stated.text and info["name"] == name and info["node"] == str(node)
        assert coco_by_node[str(node)]["hierseg"]["label"] == stated.text, node
        assert coco_by_node[str(node)]["category_id"] == stated.class_index + 1, node
    # What the rule says for these nodes, so that agreeing on a wrong rule fails too.
    words = {str(n): node_label(hierarchy, n).word for n in [Node(0, 0), Node(0, 1), Node(1, 0), Node(1, 2), Node(1, 3)]}
    assert words == {"0:0": "dog", "0:1": "uncertain", "1:0": "tabby", "1:2": "uncertain", "1:3": "sorrel"}
    assert coco_by_node["0:0"]["category_id"] == 0 and coco_by_node["1:3"]["category_id"] == NAMES.index("sorrel") + 1


def test_no_node_id_where_a_person_reads(session: sessions.Session) -> None:
    for node in [ROOT, Node(0, 0), Node(0, 1), Node(1, 1), Node(1, 3)]:
        for level in range(session.hierarchy.n_levels):
            state = sessions.set_level(sessions.drill_to(session, node), level)
            shown = views.panels(state)
            for fragment in (shown.breadcrumb, shown.table, shown.caption):
                assert not NODE_ID.search(visible_text(fragment)), (node, level, visible_text(fragment))
            trace = json.loads(shown.tree)["data"][0]
            assert not NODE_ID.search(json.dumps([trace["labels"], trace["customdata"]])), (node, level)
            assert not NODE_ID.search(shown.evidence["label"])


def test_siblings_sharing_a_name_are_numbered(session: sessions.Session) -> None:
    chains, hierarchy = session.chains, session.hierarchy
    # 1:2 and 1:3 are both "sorrel" at a glance, but 1:2 is under the threshold: not numbered alike.
    assert [classes.segment_name(hierarchy, chains, n) for n in (Node(1, 2), Node(1, 3))] == ["uncertain", "sorrel"]
    twin = sessions.new_session(
        Hierarchy(hierarchy.label_maps, hierarchy.parents,
                  [hierarchy.evidence[0], np.stack([dogs(0.6), dogs(0.9), *hierarchy.evidence[1][2:]])],
                  NAMES, hierarchy.prediction), session.rgb, "test", "photo.jpg", "abc")
    names = [classes.segment_name(twin.hierarchy, twin.chains, n) for n in (Node(1, 0), Node(1, 1))]
    assert names == ["dog", "dog (2)"]
    assert 'dog (2)' in views.table_html(sessions.drill_to(twin, "0:0"))
    assert "whole image" in views.breadcrumb_html(twin)


def test_the_page_states_the_vocabulary(session: sessions.Session) -> None:
    table = views.table_html(session)
    assert "no &quot;person&quot;" in table and "lab coat" in table and f"{NAME_THRESHOLD:.0%}" in table


def test_the_cli_states_the_photo_label_by_the_same_rule(session: sessions.Session, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import hierseg.segmenter
    from hierseg.cli import main

    monkeypatch.setattr(hierseg.segmenter, "load_segmenter", lambda *args, **kwargs: lambda path: session.hierarchy)
    assert main(["segment", "photo.jpg", "--out", str(tmp_path), "--quiet"]) == 0
    stated = node_label(session.hierarchy, ROOT).text
    assert f"photo.jpg: {stated}" in capsys.readouterr().out and stated == views.panels(session).prediction["label"]
