"""The paper's ViT baseline: trained by the same entry point and recipe, read out by k-means."""
import json
from pathlib import Path

import numpy as np
import torch

from conftest import train_run
from hierseg.model.config import FLAT_NAMES
from training.vit_baseline import load_vit, vit_kmeans_levels


def test_vit_baseline_trains_with_the_cast_recipe_and_segments(shapes_data: Path, tmp_path: Path) -> None:
    train_run("distill_tiny", shapes_data, tmp_path, "model=vit_baseline:cast_micro")
    model = load_vit(tmp_path / "model")
    assert model.config.num_classes == 1000 and model.grid_size == model.config.stem.img_size // 16
    rng = np.random.default_rng(0)
    for shape in [(50, 70), (64, 64), (90, 40)]:
        rgb = np.kron(rng.integers(0, 255, (shape[0] // 10 + 1, shape[1] // 10 + 1, 3)), np.ones((10, 10, 1)))
        maps = vit_kmeans_levels(model, rgb[: shape[0], : shape[1]].astype(np.uint8), [2, 4, 8])
        assert [m.shape for m in maps] == [shape] * 3
        assert [int(m.max()) + 1 for m in maps] == [2, 4, 8], "every requested count, not just the coarse ones"
        for coarse, fine in zip(maps, maps[1:]):
            assert all(len(np.unique(coarse[fine == i])) == 1 for i in range(int(fine.max()) + 1))
    # A folder written before the model config nested (its sizes in the flat layout) still loads.
    meta = json.loads((tmp_path / "model" / "config.json").read_text())
    nested = meta["model"]
    flat = {k: v for k, v in nested.items() if k not in ("stem", "pooling")}
    flat.update({key: nested[part][name] for key, (part, name) in FLAT_NAMES.items() if name in nested[part]})
    (tmp_path / "model" / "config.json").write_text(json.dumps({**meta, "model": flat}))
    old = load_vit(tmp_path / "model")
    assert old.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), model.state_dict().values(), strict=True))
