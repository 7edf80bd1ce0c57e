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
from hierseg import naming
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
    Left half: a spread of dog breeds (no breed, but "dog"); its parts a tabby and more breeds (a "dog" again).
    Right half: weak evidence (uncertain); its parts two "sorrel"s, one too weak to name (no family of
    it reaches the threshold either), so siblings are named alike only where the rule says so."""
    rows, cols = np.mgrid[0:8, 0:16]
    halves = (cols >= 8).astype(np.int32)
    quarters = (halves * 2 + (rows >= 4)).astype(np.int32)
    level0 = np.stack([dogs(0.85), distribution({"monarch": 0.04})])
    level1 = np.stack([distribution({"tabby": 0.8}), dogs(0.75),
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
    assert label(np.array([0.75, 0.15, 0.1]), ["a", "b", "c"]).text == "a 75%"


UPPER = ["implement", "device", "structure", "placental", "organism", "artifact", "covering", "container",
         "equipment", "ungulate", "bovid", "instrumentality", "animal", "vertebrate", "mammal", "carnivore"]


def test_upper_categories_never_name_anything() -> None:
    """The issue's cases: mass spread over unrelated classes of one upper category reads uncertain, and
    over random distributions every stated name is a class or a listed basic-level family."""
    tree = imagenet_hierarchy()
    families = set(tree.families.values())
    # "implement 56%" over a photo of two people: crutch, drumstick, paddle... no listed family holds them.
    spread = label(distribution({"crutch": 0.34, "drumstick": 0.13, "paddle": 0.06, "broom": 0.05}), NAMES)
    assert tree.mass(distribution({"crutch": 0.34, "drumstick": 0.13, "paddle": 0.06, "broom": 0.05}))[
        tree.names.index("implement")] > 0.5
    assert spread.name == "" and spread.text == "uncertain (crutch 34%)"
    # "placental 61%" over a log: unrelated mammals.
    assert label(distribution({"hog": 0.2, "beaver": 0.2, "sorrel": 0.21}), NAMES).name == ""
    rng = np.random.default_rng(0)
    upper = {tree.names.index(name) for name in UPPER}
    for _ in range(300):
        idx = rng.choice(1000, size=int(rng.integers(2, 40)), replace=False)
        p = np.full(1000, 1e-4)
        p[idx] = rng.dirichlet(np.ones(len(idx))) * (1 - 1e-4 * 1000)
        stated = label(p, NAMES)
        synset, _ = tree.name(p, NAME_THRESHOLD)
        assert synset not in upper
        if stated.name:
            assert stated.class_index >= 0 or stated.name in families, stated
    assert not families & set(UPPER) and {"dog", "cat", "bird", "snake", "monkey", "bear", "fish", "butterfly",
                                          "car", "truck", "boat", "aircraft", "musical instrument"} <= families


def test_a_named_family_shows_the_classes_that_make_up_its_number() -> None:
    stated = label(dogs(0.85), NAMES)
    assert stated.family and {name for name, _ in stated.members} == set(BREEDS)
    assert sum(prob for _, prob in stated.members) == pytest.approx(0.85, abs=0.01)
    # Breeds sharing 72% beside a tabby at 20%: the best single class is no dog, but the bars under "dog 6x%"
    # are the breeds that make up the number.
    mixed = distribution({**{breed: 0.72 / len(BREEDS) for breed in BREEDS}, "tabby": 0.2})
    assert label(mixed, NAMES).name == "dog" and label(mixed, NAMES).guess == "tabby"
    shown = classes.heading(one_node(mixed), Node(0, 0))
    assert shown["label"] == label(mixed, NAMES).text and {bar["label"] for bar in shown["confidences"]} <= set(BREEDS)
    assert len(shown["confidences"]) == classes.TOP_K
    # A named class shows the best classes, as before.
    assert not label(distribution({"tabby": 0.7}), NAMES).members


def one_node(p: np.ndarray, names: list[str] = NAMES) -> Hierarchy:
    return Hierarchy([np.zeros((2, 2), np.int32)], [np.zeros(0, np.int32)], [np.asarray(p, np.float32)[None]],
                     names, np.asarray(p, np.float32))


def test_no_class_under_half_a_percent_is_listed() -> None:
    """The selected zebra's top 5 was "zebra 100%, tench 0%, goldfish 0%...": fewer bars instead."""
    zebra = distribution({"zebra": 0.995})
    tree = one_node(zebra)
    assert classes.top_classes(tree, Node(0, 0)) == [("zebra", 0.995)]
    assert [bar["label"] for bar in classes.heading(tree, Node(0, 0))["confidences"]] == ["zebra"]
    mixed = one_node(distribution({"zebra": 0.9, "sorrel": 0.06, "ox": 0.006, "hog": 0.004}))
    assert [name for name, _ in classes.top_classes(mixed, Node(0, 0))] == ["zebra", "sorrel", "ox"]


def test_percentages_never_contradict_the_threshold() -> None:
    """Shown rounded down: a stated name never reads under 50%, an unnamed class never 50%, no guess reads 0%."""
    assert label(np.array([0.499, 0.3, 0.201]), ["a", "b", "c"], threshold=0.5).text == "uncertain (a 49%)"
    assert label(np.array([0.5, 0.3, 0.2]), ["a", "b", "c"], threshold=0.5).text == "a 50%"
    assert label(np.array([0.9999, 0.0001]), ["a", "b"], threshold=0.5).text == "a 99%"
    # A bar of 0.499 under another heading reads 49% (the panel shows round(100 * confidence)).
    bars = classes.heading(one_node(np.array([0.4996, 0.2, 0.3004]), ["volcano", "b", "c"]), Node(0, 0))["confidences"]
    assert [round(100 * bar["confidence"]) for bar in bars] == [49, 30, 20]
    flat = label(np.full(1000, 1 / 1000), NAMES)
    assert flat.text == "uncertain" and "0%" not in flat.text
    # Float32 evidence near the threshold: stated exactly when the percentage shown reaches it.
    for threshold in (0.5, NAME_THRESHOLD):
        edge = np.float32(threshold)
        for p in np.float32([edge - 0.01, edge - 1e-4, edge - 1e-5, edge - 5e-7, edge, edge + 1e-5, 0.9, 0.89999]):
            stated = label(np.array([p, (1 - p) / 2, (1 - p) / 2], np.float32), ["a", "b", "c"], threshold=float(threshold))
            assert bool(stated.name) == (naming.percent(p) >= round(100 * threshold)), (threshold, p)
            assert stated.text.endswith(f"{naming.percent(p)}%" if stated.name else f"{naming.percent(p)}%)"), p


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
        # Named in its cell (an uncertain one marked "?"), except in the half-width superpixel column.
        shown_text = "" if node.level == hierarchy.leaf_level else name if stated.certain else views.UNCERTAIN_MARK
        assert trace["labels"][at] == shown_text, node
        assert trace["customdata"][at][:2] == [name, views.hover_detail(stated)], node
        assert re.search(rf'data-current="{node}">.*?(title="{re.escape(name)}"|{re.escape(name)})', shown.breadcrumb), node
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


def twin_sorrels(session: sessions.Session) -> sessions.Session:
    """The fixture's tree with 1:1 (under the dog half) and 1:3 (under the other half) both clearly "sorrel":
    cousins, not siblings, sharing a name."""
    tree = session.hierarchy
    level1 = np.stack([tree.evidence[1][0], distribution({"sorrel": 0.9}), tree.evidence[1][2], tree.evidence[1][3]])
    return sessions.new_session(Hierarchy(tree.label_maps, tree.parents, [tree.evidence[0], level1], NAMES,
                                          tree.prediction), session.rgb, "test", "photo.jpg", "abc")


def test_names_are_unique_wherever_segments_are_listed_together(session: sessions.Session) -> None:
    """Numbered across the whole tree, so one table, one column of the tree and one breadcrumb never show a
    name twice, and a segment has the same name in every view."""
    chains, hierarchy = session.chains, session.hierarchy
    names = {str(n): classes.segment_name(hierarchy, chains, n) for n in hierarchy.nodes(0) + hierarchy.nodes(1)}
    assert names == {"0:0": "dog", "0:1": "uncertain", "1:0": "tabby", "1:1": "dog (2)", "1:2": "uncertain (2)",
                     "1:3": "sorrel"}
    cousins = twin_sorrels(session)
    table = views.table_html(sessions.set_level(cousins, 1))
    rows = [visible_text(row).strip() for row in re.findall(r"<tr data-node[^>]*><td>(.*?)</td>", table)]
    assert rows == ["tabby", "sorrel", "uncertain (2)", "sorrel (2)"]
    for state in (cousins, session):
        trace = views.tree_figure(sessions.set_level(state, 1))["data"][0]
        for level in range(state.hierarchy.n_levels):
            column = [data[0] for node, data in zip(trace["ids"], trace["customdata"], strict=True)
                      if node != "-1:0" and Node.parse(node).level == level and state.chains.head(node) == Node.parse(node)]
            assert len(column) == len(set(column)), column


def test_a_breadcrumb_does_not_repeat_the_word_before_it(session: sessions.Session) -> None:
    crumbs = views.breadcrumb_html(sessions.drill_to(session, "1:1"))
    assert [c.strip() for c in visible_text(crumbs.split('</div>', 1)[1]).split("›")] == ["whole image", "dog", "(2)"]
    assert 'title="dog (2)"' in crumbs and "photo.jpg" in crumbs, "the full name is its tooltip; the photo is named"
    other = views.breadcrumb_html(sessions.drill_to(session, "1:0"))
    assert [c.strip() for c in visible_text(other.split('</div>', 1)[1]).split("›")] == ["whole image", "dog", "tabby"]


def test_the_page_states_the_vocabulary(session: sessions.Session) -> None:
    table = views.table_html(session)
    assert "no &quot;person&quot;" in table and "lab coat" in table and f"{NAME_THRESHOLD:.0%}" in table
    assert "everyday families" in table and "clothing" in table


def test_the_cli_states_the_photo_label_by_the_same_rule(session: sessions.Session, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import hierseg.segmenter
    from hierseg.cli import main

    monkeypatch.setattr(hierseg.segmenter, "load_segmenter", lambda *args, **kwargs: lambda path: session.hierarchy)
    assert main(["segment", "photo.jpg", "--out", str(tmp_path), "--quiet"]) == 0
    stated = node_label(session.hierarchy, ROOT).text
    assert f"photo.jpg: {stated}" in capsys.readouterr().out and stated == views.panels(session).prediction["label"]
