"""End to end evaluation on one image per dataset with a small random checkpoint."""
import json

import pytest
import torch

from conftest import DATA
from hierseg.checkpoints import CheckpointConfig, save_checkpoint
from hierseg.model import build_cast
from hierseg.superpixels import SuperpixelConfig
from training.evaluate import main


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
        # The baseline is cut to exactly our segment counts on every image.
        assert slic[key]["segments_per_level"] == cast[key]["segments_per_level"]
    assert 0 < cast["bsds"]["covering_ods"] <= 1 and cast["bsds"]["vi_ods"] > 0
    assert cast["bsds"]["covering_ois"] >= cast["bsds"]["covering_ods"]
    assert len(cast["pascal_part"]["miou_per_level"][0]) == 3
    assert (tmp_path / "eval" / "results.png").stat().st_size > 10_000
    assert "| CAST |" in (tmp_path / "eval" / "results.md").read_text()
