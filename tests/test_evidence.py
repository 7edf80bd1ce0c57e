"""Class evidence: its definition on any model, and its meaning on the trained default checkpoint."""
import numpy as np
import pytest
import torch

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


def _first_name(words: dict[str, str], wnid: str) -> str:
    return words[wnid].split(",")[0].strip()


@pytest.mark.skipif(not (REPO / "checkpoints" / "default" / "config.json").exists(), reason="no trained default")
def test_object_segments_support_the_true_class_more_than_background_segments():
    """Tiny-ImageNet val (held out): segments inside the object's box vs segments outside it."""
    root = shared_data("tinyimagenet_animals59")
    segmenter = load_segmenter(device="cpu")
    words = dict(line.split("\t", 1) for line in (root / "words.txt").read_text().splitlines())
    lines = (root / "val" / "val_annotations.txt").read_text().splitlines()[:120]
    wins, ratios = [], []  # per image and level: object support > background support; their ratio
    for line in lines:
        name, wnid, x0, y0, x1, y1 = line.split("\t")[:6]
        if _first_name(words, wnid) not in segmenter.class_names:
            continue
        target = segmenter.class_names.index(_first_name(words, wnid))
        h = segmenter(root / "val" / "images" / name)
        box = np.zeros(h.shape, bool)
        box[int(y0):int(y1) + 1, int(x0):int(x1) + 1] = True
        for level in range(1, h.n_levels - 1):  # cluster levels with several segments
            areas = h.areas(level)
            inside = np.bincount(h.label_maps[level].ravel(), weights=box.ravel(), minlength=len(areas)) / areas
            obj, bg = inside >= 0.9, inside <= 0.2
            if obj.any() and bg.any():
                support = h.evidence[level][:, target]
                o = np.average(support[obj], weights=areas[obj])
                b = np.average(support[bg], weights=areas[bg])
                wins.append(o > b)
                ratios.append(np.log(o / b))
    assert len(wins) > 60
    # The shipped CPU-trained default shows a weak but consistent signal (measured: about 55% of image-levels,
    # about 1.04x on average); a better-trained checkpoint should clear these bars by far.
    assert np.mean(wins) > 0.5 and np.exp(np.mean(ratios)) > 1.0, (np.mean(wins), np.exp(np.mean(ratios)))
