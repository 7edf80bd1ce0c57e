"""The paper's ViT baseline: trained by the same entry point and recipe, read out by k-means."""
from pathlib import Path

import numpy as np

from test_training import data_root, run  # noqa: F401  (session fixture: a small synthetic ImageFolder)
from training.vit_baseline import load_vit, vit_kmeans_levels


def test_vit_baseline_trains_with_the_cast_recipe_and_segments(data_root: Path, tmp_path: Path) -> None:  # noqa: F811
    run("distill_tiny", data_root, tmp_path, "model=vit_baseline:cast_micro")
    model = load_vit(tmp_path / "model")
    assert model.config.num_classes == 1000 and model.grid_size == model.config.img_size // 16
    rng = np.random.default_rng(0)
    for shape in [(50, 70), (64, 64), (90, 40)]:
        rgb = np.kron(rng.integers(0, 255, (shape[0] // 10 + 1, shape[1] // 10 + 1, 3)), np.ones((10, 10, 1)))
        maps = vit_kmeans_levels(model, rgb[: shape[0], : shape[1]].astype(np.uint8), [2, 4, 8])
        assert [m.shape for m in maps] == [shape] * 3
        assert [int(m.max()) + 1 for m in maps] == [2, 4, 8], "every requested count, not just the coarse ones"
        for coarse, fine in zip(maps, maps[1:]):
            assert all(len(np.unique(coarse[fine == i])) == 1 for i in range(int(fine.max()) + 1))
