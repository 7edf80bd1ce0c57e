"""Evaluation: the per-level bookkeeping on hand-built inputs, and end to end on one image per set."""
import json

import numpy as np
import pytest
import torch

from conftest import DATA
from hierseg.checkpoints import CheckpointConfig, save_checkpoint
from hierseg.model import build_cast
from hierseg.superpixels import SuperpixelConfig
from training.baselines import slic_rag_matched
from training.evaluate import main, parse_named, parse_only
from training.evaluation.datasets import bsds_split
from training.evaluation.methods import prefix_cut, slic_rag, slic_rag_method, tree_matched_method
from training.metrics.scorers import CountScorer, Segmentation, TreeScorer


def _maps(*counts: int, width: int = 600) -> list[np.ndarray]:
    """Nested 1-row label maps with the given counts (stripes of equal width)."""
    return [(np.arange(width)[None, :] * c // width).astype(np.int64) for c in counts]


def test_count_scorer_records_levels_that_missed_their_count() -> None:
    scorer = CountScorer()
    scorer.add(Segmentation(_maps(4, 300), None, requested=[4, 300]), None)
    scorer.add(Segmentation(_maps(4, 300), None, requested=[4, 500]), None)  # SLIC had only 300
    summary = scorer.summary()
    assert summary["segments_per_level"] == [4.0, 300.0]
    assert summary["requested_segments_per_level"] == [4.0, 400.0]
    assert summary["unmatched_images_per_level"] == [0, 1]
    with pytest.raises(ValueError, match="levels"):
        scorer.add(Segmentation(_maps(300), None, requested=[300]), None)  # a dropped level
    with pytest.raises(ValueError, match="asked for 2 levels"):
        CountScorer().add(Segmentation(_maps(4), None, requested=[4, 8]), None)


def test_slic_rag_method_keeps_one_level_per_cast_level() -> None:
    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    seg = slic_rag_method(rgb, [2, 6, 6, 400])
    assert seg.requested == [2, 6, 6, 400]
    counts = [int(m.max()) + 1 for m in seg.label_maps]
    assert counts[:3] == [2, 6, 6] and counts[3] < 400  # 16x16 px cannot hold 400 SLIC superpixels
    assert seg.parents is not None and len(seg.parents) == 4


def test_tree_scorer_pools_over_images_and_skips_single_child_when_not_nested() -> None:
    scorer = TreeScorer()
    split = np.array([[0, 1, 0], [1, 1, 1]])  # segment 0 in two pieces
    fine = np.array([[0, 1, 2], [1, 1, 1]])
    pixels = np.arange(6).reshape(2, 3)  # a finer level: every pixel its own segment
    scorer.add(Segmentation([split, fine, pixels], [np.zeros(0, int), np.array([0, 1, 0]), fine.ravel()]), None)
    scorer.add(Segmentation([np.zeros((2, 3), int), fine, pixels], [np.zeros(0, int), np.array([0, 0, 0]), fine.ravel()]),
               None)
    tree = scorer.summary()["tree"]
    # Only the two coarse levels: image 1 has 1 of 2 (level 0) and 3 of 3 (level 1), image 2 1 of 1 and 3 of 3.
    assert tree["one_piece_per_level"] == [2 / 3, 1.0] and tree["one_piece_coarse"] == 8 / 9
    # Level 0 parents: image 1 node 0 has two children, node 1 one; image 2 one parent with three.
    # Level 1 parents (both images): fine nodes 0 and 2 have one pixel each, node 1 has four.
    assert tree["single_child_per_level"] == [1 / 3, 4 / 6] and tree["parent_nodes"] == 9
    assert tree["single_child"] == 5 / 9
    unnested = TreeScorer()
    unnested.add(Segmentation([split, fine], None), None)
    assert "single_child" not in unnested.summary()["tree"]


def test_only_flag_validates() -> None:
    assert parse_only("bsds,bsds_test,recognition") == ["bsds", "bsds_test", "recognition"]
    with pytest.raises(Exception, match="subset"):
        parse_only("bsds,coco")
    assert parse_named("tokens off=runs/x") == ("tokens off", "runs/x")
    with pytest.raises(Exception, match="NAME=CHECKPOINT"):
        parse_named("runs/x")


def test_count_scorer_reports_the_coarsest_count_and_single_segment_levels() -> None:
    scorer = CountScorer()
    for counts in ((3, 9, 160), (1, 5, 150), (7, 12, 170)):
        scorer.add(Segmentation(_maps(*counts), None), None)
    summary = scorer.summary()
    assert summary["coarsest_segments_min_median_max"] == [1, 3.0, 7]
    assert summary["single_segment_levels"] == 1


def test_cached_slic_rag_cuts_exactly_what_slic_rag_matched_cuts(tmp_path) -> None:
    rgb = (np.random.default_rng(1).random((40, 60, 3)) * 255).astype(np.uint8)
    counts = [3, 7, 7, 40]
    reference = slic_rag_matched(rgb, counts, n_superpixels=400)
    method = slic_rag(tmp_path / "cache")
    for _ in range(2):  # computed, then read back from the cache
        seg = method(rgb, counts)
        assert all(np.array_equal(a, b) for a, b in zip(seg.label_maps, reference.label_maps, strict=True))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1


class _Tree:
    """Leaves 0..3; 0+1 join first, then 2+3, then the two halves."""

    n_leaves = 4
    merges = np.array([[0, 1], [2, 3], [4, 5]])
    heights = np.array([0.1, 0.2, 0.9])


class _Hierarchy:
    def __init__(self) -> None:
        self.label_maps = [np.zeros((2, 4), np.int64), np.repeat(np.arange(4), 2).reshape(2, 4)]
        self.merge_tree = _Tree()


def test_prefix_cut_and_the_matched_tree_method() -> None:
    np.testing.assert_array_equal(prefix_cut(4, _Tree.merges, 0), [0, 1, 2, 3])
    np.testing.assert_array_equal(prefix_cut(4, _Tree.merges, 1), [0, 0, 1, 2])
    np.testing.assert_array_equal(prefix_cut(4, _Tree.merges, 3), [0, 0, 0, 0])
    seg = tree_matched_method(lambda rgb: _Hierarchy())(None, [2, 3, 4])
    assert [int(m.max()) + 1 for m in seg.label_maps] == [2, 3, 4] and seg.requested == [2, 3, 4]
    np.testing.assert_array_equal(seg.label_maps[0].ravel(), [0, 0, 0, 0, 1, 1, 1, 1])
    # Asking for fewer segments than the tree's one root gives its root; the count then shows as missed.
    assert int(tree_matched_method(lambda rgb: _Hierarchy())(None, [0, 4]).label_maps[0].max()) == 0


def test_a_bsds_split_without_ground_truth_is_scored_for_shape_only(tmp_path) -> None:
    (tmp_path / "images" / "test").mkdir(parents=True)
    for name in ("1", "2"):
        (tmp_path / "images" / "test" / f"{name}.jpg").write_bytes(b"")
    ds = bsds_split(tmp_path, "test")
    assert ds.key == "bsds_test" and not ds.has_ground_truth and "no ground truth" in ds.title
    assert [type(s).__name__ for s in ds.scorers()] == ["TreeScorer"]
    (tmp_path / "groundTruth" / "test").mkdir(parents=True)
    (tmp_path / "groundTruth" / "test" / "1.mat").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="1 of 2"):
        bsds_split(tmp_path, "test")


@pytest.mark.slow
@pytest.mark.skipif(not (DATA / "bsds500").exists(), reason="shared data not available")
def test_evaluate_writes_a_comparable_table(tmp_path):
    torch.manual_seed(0)
    model = build_cast("cast_micro", img_size=96, num_classes=3, clusters=(24, 12, 6, 3))
    sp = SuperpixelConfig("seeds", 64, histogram_bins=5, iterations=15, prior=2, num_levels=1, double_step=False)
    folder = save_checkpoint(model, CheckpointConfig(model=model.config, superpixels=sp, class_names=["a", "b", "c"]),
                             tmp_path / "ckpt")
    main([str(folder), "--data", str(DATA), "--limit", "1", "--out", str(tmp_path / "eval")])
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    cast, slic = results["methods"]["CAST"], results["methods"]["SLIC+RAG"]
    for key in ("bsds", "pascal_part", "horse"):
        # The baseline has one level per CAST level, cut to CAST's counts, and says where it missed.
        assert slic[key]["requested_segments_per_level"] == cast[key]["segments_per_level"]
        missed = slic[key]["unmatched_images_per_level"]
        assert [a == b for a, b in zip(slic[key]["segments_per_level"], cast[key]["segments_per_level"], strict=True)] == \
            [m == 0 for m in missed]
    assert 0 < cast["bsds"]["covering_ods"] <= 1 and cast["bsds"]["vi_ods"] > 0
    assert cast["bsds"]["covering_ois"] >= cast["bsds"]["covering_ods"]
    assert 0 <= cast["bsds"]["tree"]["one_piece_coarse"] <= 1 and 0 <= cast["bsds"]["tree"]["single_child"] <= 1
    assert "single_child" not in results["methods"]["Felzenszwalb"]["bsds"]["tree"]
    assert len(cast["pascal_part"]["miou_per_level"][0]) == 3
    # A 3-class checkpoint cannot be scored against ImageNet labels: recognition says so instead.
    assert "ImageNet-1k" in results["recognition"]["skipped"]["all"]
    assert (tmp_path / "eval" / "results.png").stat().st_size > 10_000
    table = (tmp_path / "eval" / "results.md").read_text()
    assert "| CAST |" in table and "Shape of the tree" in table
    # Whole objects (issue 23) on horses and people, per half of the set, for CAST and the baselines alike.
    for key in ("pascal_part", "horse"):
        for method in (cast, slic):
            assert set(method[key]["objects"]) >= {"dev", "held_out", "all"}
    assert cast["horse"]["objects"]["all"]["photos"] == 1 and 0 <= cast["horse"]["objects"]["all"]["bound"] <= 1
    assert "Whole objects" in table


class _FakeSegmenter:
    """prepare/forward/readout like Segmenter: the 'tree' is the photo's sum plus an offset."""

    def __init__(self, offset: int) -> None:
        self.offset, self.calls, self.full_passes = offset, 0, 0

    def prepare(self, rgb):
        return rgb

    def forward(self, prepared, all_stages=False):
        self.calls += 1
        self.full_passes += all_stages
        return int(prepared[0].sum())

    def readout(self, prepared, output, index):
        return _Tagged(output + self.offset)

    def __call__(self, rgb):
        return self.readout(rgb, self.forward([rgb]), 0)


class _Tagged:
    def __init__(self, value: int) -> None:
        self.label_maps, self.parents, self.evidence = [np.array([value])], [np.zeros(0)], [np.zeros(0)]


def test_shared_forward_reads_other_checkpoints_out_of_one_forward_pass_unless_they_differ() -> None:
    from training.evaluation.methods import SharedForward

    main_model, same, different = _FakeSegmenter(0), _FakeSegmenter(0), _FakeSegmenter(5)
    shared = SharedForward(main_model)
    read_same, read_different = shared.readout_with(same), shared.readout_with(different)
    for value in (1, 2, 3):
        rgb = np.full(2, value)
        assert int(shared(rgb).label_maps[0][0]) == 2 * value
        assert int(read_same(rgb).label_maps[0][0]) == 2 * value
        # A checkpoint whose readout of the shared pass differs from its own call falls back to its own call.
        assert int(read_different(rgb).label_maps[0][0]) == 2 * value + 5
    assert main_model.calls == 3 and same.calls == 1  # checked once, then shared
    # A pass cut short (the merge tree reads stage 0 only) would lack what another readout may read.
    assert main_model.full_passes == 3
    with pytest.raises(RuntimeError, match="last called"):
        read_same(np.full(2, 9))


def test_refine_evaluation_helpers() -> None:
    from hierseg.class_names import imagenet_class_names
    from training.evaluation.refine import evenly, stated_label

    assert evenly(list(range(100)), 3) == [0, 50, 99] and evenly([1, 2], 5) == [1, 2]
    names = imagenet_class_names()
    probs = np.zeros(1000)
    probs[207] = 0.9  # golden retriever
    assert stated_label(probs, names, 207) == ("right", pytest.approx(0.9))
    assert stated_label(probs, names, 208)[0] == "wrong"  # named "golden retriever": wrong for a Labrador
    probs[:] = 0.0
    probs[[207, 208]] = 0.4  # no single class reaches the threshold, their family does: a name, right for either dog
    assert stated_label(probs, names, 208)[0] == "right" and stated_label(probs, names, 1)[0] == "wrong"
    probs[:] = 0.001
    assert stated_label(probs, names, 1)[0] == "uncertain"


def test_a_new_evaluation_set_is_one_registry_entry(tmp_path, monkeypatch, random_micro_checkpoint) -> None:
    """Registering a set (here: two drawn 'horses', read by the Weizmann loader) is all it takes for
    ``--only`` to accept it, the run to score it, and the report and the plot to show it."""
    from PIL import Image

    from training.evaluation import datasets

    folder = tmp_path / "data" / "toy_horses"
    (folder / "horse").mkdir(parents=True)
    (folder / "mask").mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        mask = np.zeros((48, 48), np.uint8)
        mask[10 + i:30, 8:40 - i] = 1
        rgb = (rng.random((48, 48, 3)) * 60 + mask[..., None] * 150).astype(np.uint8)
        Image.fromarray(rgb).save(folder / "horse" / f"{i}.jpg")
        Image.fromarray(mask).save(folder / "mask" / f"{i}.png")
    entry = datasets.EvaluationSet("toy", "toy_horses", "toy_horses", datasets.weizmann_horses, "miou", "Toy horses",
                                   "drawn for this test", datasets.PlotPanel("miou_per_level", "Toy horses: mIoU", 0))
    monkeypatch.setitem(datasets.EVALUATION_SETS, "toy", entry)
    with pytest.raises(ValueError, match="already registered"):
        datasets.register_evaluation_set(entry)

    out = tmp_path / "eval"
    main([str(random_micro_checkpoint), "--data", str(tmp_path / "data"), "--only", "toy", "--baselines", "", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    assert results["methods"]["CAST"]["toy_horses"]["images"] == 2
    assert results["gt_columns"] == {"toy_horses": ["mIoU"]}
    assert "**Toy horses** (drawn for this test), 2 images" in (out / "results.md").read_text()
    assert (out / "results.png").stat().st_size > 5_000  # one panel drawn, not an empty figure
