"""Tests of the part-whole tree: construction, invariants on random inputs, queries, serialisation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hierseg.hierarchy import ROOT, Hierarchy, Node

CLASSES = ["cat", "dog", "car", "tree"]


def random_inputs(rng: np.random.Generator, max_side: int = 24) -> dict:
    """Random superpixels (scattered or blocky), 0-4 pooling levels, clusters often left empty."""
    height, width = rng.integers(1, max_side, size=2)
    n_superpixels = int(rng.integers(1, height * width + 1))
    if rng.random() < 0.5:
        superpixels = rng.integers(0, n_superpixels, size=(height, width))
    else:  # blocky, like real superpixels
        blocks = rng.integers(0, n_superpixels, size=((height + 3) // 4, (width + 3) // 4))
        superpixels = np.kron(blocks, np.ones((4, 4), np.int64))[:height, :width]
    superpixels = np.unique(superpixels, return_inverse=True)[1].reshape(height, width)  # compact ids
    sizes = [int(superpixels.max()) + 1]
    for _ in range(rng.integers(0, 5)):
        sizes.append(int(rng.integers(1, 12)))
    assignments = [rng.integers(0, sizes[j + 1], size=sizes[j]) for j in range(len(sizes) - 1)]
    evidence = [rng.dirichlet(np.ones(len(CLASSES)), size=n).astype(np.float32) for n in sizes]
    prediction = rng.dirichlet(np.ones(len(CLASSES))).astype(np.float32)
    return dict(
        superpixels=superpixels,
        assignments=assignments,
        evidence=evidence,
        class_names=CLASSES,
        prediction=prediction,
        meta={"trial": int(rng.integers(1000)), "size": [int(width), int(height)]},
    )


def raw_pixel_labels(inputs: dict) -> list[np.ndarray]:
    """Raw cluster id of every pixel at every level, coarsest first, by composing the argmaxes."""
    per_superpixel = [np.arange(inputs["superpixels"].max() + 1)]
    for assignment in inputs["assignments"]:
        per_superpixel.append(assignment[per_superpixel[-1]])
    return [labels[inputs["superpixels"]] for labels in reversed(per_superpixel)]


def first_pixel(label_map: np.ndarray) -> np.ndarray:
    return np.unique(label_map.ravel(), return_index=True)[1]


@pytest.fixture
def example() -> Hierarchy:
    """A 2x4 image whose canonical numbering is worked out by hand in the test below."""
    superpixels = np.array([[2, 2, 0, 0], [1, 1, 3, 3]])
    assignments = [np.array([5, 0, 0, 2]), np.array([1, 0, 1, 0, 2, 0])]
    one_hot = np.eye(4, dtype=np.float32)
    evidence = [one_hot, one_hot[[0, 1, 2, 3, 0, 1]], one_hot[:3]]
    prediction = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    return Hierarchy.from_assignments(superpixels, assignments, evidence, CLASSES, prediction, {"name": "example"})


def test_hand_worked_example(example: Hierarchy) -> None:
    # Level 2 raw clusters {0, 1} are used, 2 is empty; raw 1 holds the first pixel, so it becomes 0.
    np.testing.assert_array_equal(example.label_maps[0], [[0, 0, 1, 1], [0, 0, 0, 0]])
    # Level 1 raw clusters 0, 2, 5 are used; ordered by (parent, first pixel): raw 0, raw 2, raw 5.
    np.testing.assert_array_equal(example.label_maps[1], [[0, 0, 2, 2], [0, 0, 1, 1]])
    np.testing.assert_array_equal(example.parents[1], [0, 0, 1])
    # Superpixels ordered by (parent, first pixel): input 2, 1, 3, 0.
    np.testing.assert_array_equal(example.label_maps[2], [[0, 0, 3, 3], [1, 1, 2, 2]])
    np.testing.assert_array_equal(example.parents[2], [0, 0, 1, 2])
    np.testing.assert_array_equal(example.superpixel_ids, [2, 1, 3, 0])
    assert example.parents[0].size == 0
    # Evidence rows follow their nodes: new level-1 node 2 is raw cluster 5, whose row is class "dog".
    assert example.top_classes("1:2", k=1) == [("dog", 1.0)]
    np.testing.assert_array_equal(example.evidence[0], np.eye(4, dtype=np.float32)[[1, 0]])
    assert [example.n_nodes(level) for level in range(example.n_levels)] == [2, 3, 4]


def test_invariants_on_random_inputs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(150):
        inputs = random_inputs(rng)
        tree = Hierarchy.from_assignments(**inputs)
        raw = raw_pixel_labels(inputs)
        raw_evidence = inputs["evidence"][::-1]
        assert tree.n_levels == len(inputs["assignments"]) + 1
        for level, label_map in enumerate(tree.label_maps):
            n = tree.n_nodes(level)
            assert label_map.dtype == np.int32 and label_map.shape == inputs["superpixels"].shape
            np.testing.assert_array_equal(np.unique(label_map), np.arange(n))  # compact, all present
            # Same partition as the raw composition: raw and new ids are in bijection...
            pairs = np.unique(np.stack([raw[level].ravel(), label_map.ravel()]), axis=1)
            assert pairs.shape[1] == n == len(np.unique(raw[level]))
            # ...and evidence rows moved with their nodes.
            np.testing.assert_array_equal(tree.evidence[level][pairs[1]], raw_evidence[level][pairs[0]])
            assert tree.evidence[level].dtype == np.float32
            np.testing.assert_allclose(tree.evidence[level].sum(axis=1), 1.0, atol=1e-5)
            first = first_pixel(label_map)
            if level == 0:
                assert np.all(np.diff(first) > 0)
            else:
                parents = tree.parents[level]
                assert parents.shape == (n,)
                np.testing.assert_array_equal(parents[label_map], tree.label_maps[level - 1])  # nesting
                keys = list(zip(parents.tolist(), first.tolist()))
                assert keys == sorted(keys)
        np.testing.assert_array_equal(tree.superpixel_ids[tree.label_maps[-1]], inputs["superpixels"])


def test_children_partition_their_parent_exactly() -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        tree = Hierarchy.from_assignments(**random_inputs(rng))
        for level in range(-1, tree.leaf_level):
            for node in tree.nodes(level):
                children = tree.children(node)
                assert children, f"{node} has no children"
                assert all(tree.parent(child) == node for child in children)
                ids = [child.index for child in children]
                assert ids == list(range(ids[0], ids[0] + len(ids)))  # siblings are contiguous
                coverage = np.sum([tree.mask(child) for child in children], axis=0)
                assert coverage.max() == 1  # disjoint
                np.testing.assert_array_equal(coverage.astype(bool), tree.mask(node))  # union == parent
        # Every node below the top has exactly one parent: child lists partition each level.
        for level in range(tree.n_levels):
            listed = [child for parent in tree.nodes(level - 1) for child in tree.children(parent)]
            assert sorted(listed) == tree.nodes(level)


def test_same_tree_whatever_the_raw_cluster_ids() -> None:
    rng = np.random.default_rng(2)
    for _ in range(40):
        inputs = random_inputs(rng)
        tree = Hierarchy.from_assignments(**inputs)
        assert Hierarchy.from_assignments(**inputs) == tree
        if not inputs["assignments"]:
            continue
        # Rename the raw clusters of one level: relabel the links into and out of it, and its evidence.
        level = int(rng.integers(1, len(inputs["assignments"]) + 1))
        size = len(inputs["evidence"][level])
        rename = rng.permutation(size)
        shuffled = dict(inputs, assignments=list(inputs["assignments"]), evidence=list(inputs["evidence"]))
        shuffled["assignments"][level - 1] = rename[inputs["assignments"][level - 1]]
        if level < len(inputs["assignments"]):
            shuffled["assignments"][level] = inputs["assignments"][level][np.argsort(rename)]
        shuffled["evidence"][level] = inputs["evidence"][level][np.argsort(rename)]
        assert Hierarchy.from_assignments(**shuffled) == tree


def test_areas_and_boxes_match_the_masks() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        tree = Hierarchy.from_assignments(**random_inputs(rng))
        height, width = tree.shape
        for level in range(-1, tree.n_levels):
            assert tree.areas(level).dtype == np.int64
            assert tree.areas(level).sum() == height * width
            for node in tree.nodes(level):
                mask = tree.mask(node)
                rows, cols = np.nonzero(mask)
                assert tree.area(node) == mask.sum()
                assert tree.bbox(node) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)


def test_navigation(example: Hierarchy) -> None:
    tree = example
    assert tree.root == ROOT == Node(-1, 0)
    assert tree.children(tree.root) == [Node(0, 0), Node(0, 1)]
    assert tree.parent("0:1") == ROOT
    assert tree.children("0:0") == [Node(1, 0), Node(1, 1)]
    assert tree.children((1, 0)) == [Node(2, 0), Node(2, 1)]
    assert tree.children("2:3") == [] and tree.is_leaf("2:3") and not tree.is_leaf("1:0")
    assert tree.ancestors("2:3") == [Node(0, 1), Node(1, 2)]
    assert tree.ancestors("0:0") == [] and tree.ancestors(ROOT) == []
    assert tree.path("2:3") == [ROOT, Node(0, 1), Node(1, 2), Node(2, 3)]
    assert tree.path(ROOT) == [ROOT]
    assert tree.node_at(0, x=3, y=0) == Node(0, 1)
    assert tree.node_at(2, x=2, y=1) == Node(2, 2)
    assert tree.node_at(-1, x=0, y=0) == ROOT
    assert tree.shape == (2, 4) and tree.image_size == (4, 2)
    assert tree.bbox(ROOT) == (0, 0, 4, 2) and tree.area(ROOT) == 8 and tree.mask(ROOT).all()
    assert tree.bbox("1:1") == (2, 1, 4, 2)
    np.testing.assert_array_equal(tree.areas(1), [4, 2, 2])
    with pytest.raises(ValueError, match="root has no parent"):
        tree.parent(ROOT)
    for bad in ["3:0", "0:2", "-2:0", "x"]:
        with pytest.raises(ValueError):
            tree.children(bad)
    with pytest.raises(ValueError, match="outside"):
        tree.node_at(0, x=4, y=0)


def test_node_string_form() -> None:
    assert str(Node(2, 5)) == "2:5"
    assert Node.parse("2:5") == Node(2, 5) and Node.parse(str(ROOT)) == ROOT
    with pytest.raises(ValueError, match="level:index"):
        Node.parse("25")


def test_classes(example: Hierarchy) -> None:
    np.testing.assert_array_equal(example.evidence_of(ROOT), example.prediction)
    assert [name for name, _ in example.top_classes(ROOT, k=2)] == ["tree", "car"]
    assert example.top_classes("2:0", k=1) == [("car", 1.0)]  # leaf 0 is input superpixel 2
    assert len(example.top_classes("1:0", k=10)) == len(CLASSES)


def test_npz_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(4)
    for trial in range(10):
        tree = Hierarchy.from_assignments(**random_inputs(rng))
        path = tree.save(tmp_path / f"tree{trial}.npz")
        loaded = Hierarchy.load(path)
        assert loaded == tree
        for mine, theirs in zip(tree.label_maps + tree.evidence, loaded.label_maps + loaded.evidence):
            assert mine.dtype == theirs.dtype
        assert loaded.meta == tree.meta and loaded.class_names == CLASSES


@pytest.mark.parametrize("n_superpixels, mode", [(200, "L"), (300, "I;16")])
def test_png_round_trip(tmp_path, n_superpixels: int, mode: str) -> None:
    rng = np.random.default_rng(5)
    superpixels = rng.permutation(np.arange(40 * 30) % n_superpixels).reshape(30, 40)
    sizes = [n_superpixels, 64, 8]
    inputs = dict(
        superpixels=superpixels,
        assignments=[rng.integers(0, sizes[j + 1], sizes[j]) for j in range(2)],
        evidence=[rng.dirichlet(np.ones(len(CLASSES)), n).astype(np.float32) for n in sizes],
        class_names=CLASSES,
        prediction=rng.dirichlet(np.ones(len(CLASSES))).astype(np.float32),
        meta={"checkpoint": "cast-s", "seconds": 0.25},
    )
    tree = Hierarchy.from_assignments(**inputs)
    tree.save_pngs(tmp_path)
    with Image.open(tmp_path / f"level_{tree.leaf_level}.png") as leaf, Image.open(tmp_path / "level_0.png") as top:
        assert top.mode == "L"
        assert leaf.mode == mode or (mode == "I;16" and leaf.mode.startswith("I"))
    assert Hierarchy.from_pngs(tmp_path) == tree
    assert Hierarchy.load(tmp_path) == tree


def test_json_dict(example: Hierarchy) -> None:
    data = json.loads(json.dumps(example.to_json_dict(top_k=2)))
    assert data["class_names"] == CLASSES and data["image_size"] == [4, 2]
    assert data["meta"] == {"name": "example"}
    assert [level["n_nodes"] for level in data["levels"]] == [2, 3, 4]
    node = data["levels"][1]["nodes"][2]
    assert node == {
        "id": 2,
        "node": "1:2",
        "parent": 1,
        "area": 2,
        "bbox": [2, 0, 4, 1],
        "top_classes": [["dog", 1.0], ["cat", 0.0]],
    }
    assert data["levels"][0]["nodes"][0]["parent"] is None
    assert "evidence" not in data["levels"][0]
    assert len(example.to_json_dict(include_evidence=True)["levels"][2]["evidence"]) == 4


def test_input_validation() -> None:
    rng = np.random.default_rng(6)
    good = random_inputs(rng)
    while not good["assignments"]:
        good = random_inputs(rng)
    cases = {
        "every id": dict(good, superpixels=good["superpixels"] + 1),
        "2-D": dict(good, superpixels=good["superpixels"].ravel()),
        "integers": dict(good, superpixels=good["superpixels"].astype(float)),
        "cluster ids outside": dict(good, assignments=[good["assignments"][0] + 100, *good["assignments"][1:]]),
        "one entry per level": dict(good, evidence=good["evidence"][:-1]),
        "must have shape": dict(good, class_names=CLASSES[:2]),
        "probability distribution": dict(good, evidence=[good["evidence"][0] * 2, *good["evidence"][1:]]),
        "not logits": dict(good, prediction=-good["prediction"]),
        "JSON": dict(good, meta={"array": np.zeros(2)}),
    }
    for message, inputs in cases.items():
        with pytest.raises(ValueError, match=message):
            Hierarchy.from_assignments(**inputs)


def test_constructor_rejects_broken_trees(example: Hierarchy) -> None:
    fields = dict(
        label_maps=example.label_maps,
        parents=example.parents,
        evidence=example.evidence,
        class_names=example.class_names,
        prediction=example.prediction,
        meta=example.meta,
    )
    assert Hierarchy(**fields, superpixel_ids=example.superpixel_ids) == example
    wrong_parent = [example.parents[0], np.array([0, 1, 1]), example.parents[2]]
    with pytest.raises(ValueError, match="does not nest"):
        Hierarchy(**dict(fields, parents=wrong_parent))
    with pytest.raises(ValueError, match="one entry per level"):
        Hierarchy(**dict(fields, parents=example.parents[:2]))
    with pytest.raises(ValueError, match="every id"):
        Hierarchy(**dict(fields, label_maps=[*example.label_maps[:2], example.label_maps[2] * 2]))
    with pytest.raises(ValueError, match="parents\\[0\\] must be empty"):
        Hierarchy(**dict(fields, parents=[np.array([0]), *example.parents[1:]]))


def test_arrays_are_read_only(example: Hierarchy) -> None:
    with pytest.raises(ValueError):
        example.label_maps[0][0, 0] = 1
    with pytest.raises(ValueError):
        example.areas(0)[0] = 0


def test_meta_is_read_only_and_still_plain_json() -> None:
    import copy
    import pickle

    given = {"checkpoint": "micro", "timings_ms": {"model": 1.5}, "image_size": [4, 2]}
    tree = Hierarchy.from_assignments(**dict(random_inputs(np.random.default_rng(9)), meta=given))
    given["checkpoint"] = "changed later"  # the caller's dict is not the tree's
    assert tree.meta["checkpoint"] == "micro"
    for mutate in (
        lambda meta: meta.__setitem__("checkpoint", "x"),
        lambda meta: meta.update(extra=1),
        lambda meta: meta.pop("checkpoint"),
        lambda meta: meta["timings_ms"].__setitem__("model", 0.0),
        lambda meta: meta["image_size"].append(3),
        lambda meta: meta["image_size"].__setitem__(0, 9),
    ):
        with pytest.raises(TypeError, match="read-only"):
            mutate(tree.meta)
    assert tree.meta == {"checkpoint": "micro", "timings_ms": {"model": 1.5}, "image_size": [4, 2]}
    assert json.loads(json.dumps(tree.meta)) == tree.meta
    assert copy.deepcopy(tree) == tree and pickle.loads(pickle.dumps(tree)) == tree
    exported = tree.to_json_dict()["meta"]
    exported["checkpoint"] = "edited export"  # what the JSON view hands out is the caller's to edit
    assert tree.meta["checkpoint"] == "micro"


def test_superpixel_ids_absent_from_the_map_are_dropped_like_empty_clusters() -> None:
    # A photo smaller than the model's view loses superpixels in the resize back: their leaves go, and the
    # tree is the one the map without them gives, except that leaves keep their ids in the given map.
    rng = np.random.default_rng(11)
    for _ in range(30):
        inputs = random_inputs(rng)
        superpixels = inputs["superpixels"]
        n = int(superpixels.max()) + 1
        if n < 3:
            continue
        lost = rng.choice(n, size=n // 3, replace=False)
        kept = np.setdiff1d(np.arange(n), lost)
        survivor = kept[0]
        with_gaps = np.where(np.isin(superpixels, lost), survivor, superpixels)
        tree = Hierarchy.from_assignments(**dict(inputs, superpixels=with_gaps))
        compact = np.searchsorted(kept, with_gaps)
        assignments = [inputs["assignments"][0][kept], *inputs["assignments"][1:]] if inputs["assignments"] else []
        evidence = [inputs["evidence"][0][kept], *inputs["evidence"][1:]]
        expected = Hierarchy.from_assignments(**dict(inputs, superpixels=compact, assignments=assignments, evidence=evidence))
        assert all(np.array_equal(a, b) for a, b in zip(tree.label_maps, expected.label_maps, strict=True))
        assert all(np.array_equal(a, b) for a, b in zip(tree.parents, expected.parents, strict=True))
        assert all(np.array_equal(a, b) for a, b in zip(tree.evidence, expected.evidence, strict=True))
        np.testing.assert_array_equal(tree.superpixel_ids, kept[expected.superpixel_ids])
