"""Class evidence: its definition on any model, and its meaning on the trained default checkpoint."""
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, shared_data
from hierseg import load_segmenter
from hierseg.evidence import image_prediction, node_evidence
from hierseg.model import build_cast


def test_evidence_is_the_classifier_on_each_level_token():
    torch.manual_seed(0)
    model = build_cast("cast_micro", img_size=64, num_classes=4).eval()
    sp = torch.arange(64).view(8, 8).repeat_interleave(8, 0).repeat_interleave(8, 1)[None]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), sp)
        rows = node_evidence(model, out, 0, 64)
        expected_top = model.head(model.norm(out.pooled_tokens[-1][0])).softmax(-1).numpy()
    assert [r.shape for r in rows] == [(64, 4), (16, 4), (8, 4), (4, 4), (2, 4)]
    np.testing.assert_allclose(rows[-1], expected_top, atol=1e-6)
    np.testing.assert_allclose(image_prediction(out, 0), out.logits[0].softmax(-1).numpy(), atol=1e-6)


def test_ids_without_a_token_take_the_last_token_row():
    model = build_cast("cast_micro", img_size=64, num_classes=3).eval()
    sp = torch.arange(64).view(8, 8).repeat_interleave(8, 0).repeat_interleave(8, 1)[None]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), sp)
        rows = node_evidence(model, out, 0, 70)  # 6 superpixel ids vanished after the last token
    assert rows[0].shape == (70, 3) and np.array_equal(rows[0][64:], np.repeat(rows[0][63:64], 6, 0))


def test_models_without_a_classifier_give_zero_classes():
    model = build_cast("cast_micro", img_size=64).eval()
    sp = torch.zeros(1, 64, 64, dtype=torch.long)
    sp[0, 32:] = 1
    with torch.no_grad():
        rows = node_evidence(model, model(torch.randn(1, 3, 64, 64), sp), 0, 2)
    assert all(r.shape[1] == 0 for r in rows)


SORREL = "sorrel"  # the ImageNet-1k horse class


@pytest.mark.skipif(not (REPO / "checkpoints" / "default" / "config.json").exists(), reason="no trained default")
def test_horse_segments_support_horse_more_than_background_segments():
    horses = shared_data("weizmann_horse")
    segmenter = load_segmenter(device="cpu")
    target = segmenter.class_names.index(SORREL)
    images = sorted((horses / "horse").glob("*.jpg"))[:40]
    margins = {}  # level -> per-image (object support - background support)
    for path in images:
        h = segmenter(path)
        mask = np.asarray(Image.open(horses / "mask" / f"{path.stem}.png").resize(h.image_size, Image.NEAREST)) > 0
        for level in range(h.n_levels - 1):  # the cluster levels
            labels = h.label_maps[level]
            inside = np.bincount(labels.ravel(), weights=mask.ravel(), minlength=h.n_nodes(level)) / h.areas(level)
            support = h.evidence[level][:, target]
            obj, bg = inside >= 0.7, inside <= 0.1
            if obj.any() and bg.any():
                w = h.areas(level)
                margins.setdefault(level, []).append(
                    np.average(support[obj], weights=w[obj]) - np.average(support[bg], weights=w[bg]))
    assert margins, "no image had both object and background segments"
    for level, values in margins.items():
        # Most images, and the average, favour the horse segments at every level.
        assert np.mean(values) > 0 and np.mean(np.array(values) > 0) > 0.6, (level, np.mean(values))
