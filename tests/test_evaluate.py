"""Evaluation: the per-level bookkeeping on hand-built inputs, and end to end on one image per set."""
import json

import numpy as np
import pytest
import torch

from conftest import DATA
from hierseg.checkpoints import CheckpointConfig, save_checkpoint
from hierseg.model import build_cast
from hierseg.superpixels import SuperpixelConfig
from training.evaluate import main, parse_only
from training.evaluation.methods import slic_rag_method
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
    assert parse_only("bsds,recognition") == ["bsds", "recognition"]
    with pytest.raises(Exception, match="subset"):
        parse_only("bsds,coco")


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
