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


def test_hybrid_evidence_reads_each_levels_token_through_the_feature_layer_and_classifier():
    """Superpixels: tokens after stage 1; level l: the level-l clusters after stage l+1; the coarsest: the
    last merge's output. Each through norm, the 1280-d feature layer and the classifier."""
    torch.manual_seed(0)
    model = build_cast("cast_hybrid_micro", num_classes=7).eval()
    sp = torch.arange(64).view(8, 8).repeat_interleave(8, 0).repeat_interleave(8, 1)[None]
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), sp)
        rows = node_evidence(model, out, 0, 64)
        tokens = [out.stage_tokens[0], out.stage_tokens[1], out.stage_tokens[2], out.stage_tokens[3], out.pooled_tokens[3]]
        expected = [model.head[1](model.head[0](model.norm(t[0]))).softmax(-1).numpy() for t in tokens]
    assert [r.shape for r in rows] == [(64, 7), (16, 7), (8, 7), (4, 7), (2, 7)]
    for got, want in zip(rows, expected):
        np.testing.assert_allclose(got, want, atol=1e-6)


def _first_name(words: dict[str, str], wnid: str) -> str:
    return words[wnid].split(",")[0].strip()


def _permutation_p_value(groups: list[tuple[np.ndarray, np.ndarray]], permutations: int = 2000) -> float:
    """One-sided p-value that object segments support a class more than background segments do.

    ``groups``: per image, (support of each segment, True where the segment is on the object). The
    statistic is the sum over images of mean(object support) - mean(background support); the null
    distribution shuffles the object/background labels among each image's own segments.
    """
    def statistic(rng: np.random.Generator | None) -> float:
        total = 0.0
        for support, on_object in groups:
            labels = rng.permutation(on_object) if rng is not None else on_object
            total += support[labels].mean() - support[~labels].mean()
        return total

    observed = statistic(None)
    rng = np.random.default_rng(0)
    null = np.array([statistic(rng) for _ in range(permutations)])
    return float((1 + np.sum(null >= observed)) / (1 + permutations))


def _segment_groups(segmenter, items, level: int):
    """(support of the true class, support of the control class, on-object flags) per image."""
    true, control = [], []
    for path, target, control_class, object_mask in items:
        h = segmenter(path)
        mask = object_mask(h.shape)
        areas = h.areas(level)
        inside = np.bincount(h.label_maps[level].ravel(), weights=mask.ravel(), minlength=len(areas)) / areas
        on_object = inside >= 0.5
        if on_object.any() and (~on_object).any():
            true.append((h.evidence[level][:, target], on_object))
            control.append((h.evidence[level][:, control_class], on_object))
    return true, control


@pytest.mark.skipif(not (REPO / "checkpoints" / "default" / "config.json").exists(), reason="no trained default")
@pytest.mark.slow
def test_object_segments_support_the_true_class_more_than_background_segments():
    """Held-out photos with object masks or boxes (Weizmann horses, Tiny-ImageNet val). Per-image permutation
    test at p < 0.01 for the true class; a control class (an ImageNet class unrelated to the photo) must not
    pass the same test, so a general "object segments are more confident" effect cannot pass it."""
    from PIL import Image

    segmenter = load_segmenter(device="cpu")
    names = segmenter.class_names
    airliner = names.index("airliner")
    horses = shared_data("weizmann_horse")
    items = []
    for path in sorted((horses / "horse").glob("*.jpg"))[:40]:
        mask = np.asarray(Image.open(horses / "mask" / f"{path.stem}.png")) > 0
        items.append((path, names.index("sorrel"), airliner, lambda shape, m=mask: m))
    tiny = shared_data("tinyimagenet_animals59")
    words = dict(line.split("\t", 1) for line in (tiny / "words.txt").read_text().splitlines())
    for line in (tiny / "val" / "val_annotations.txt").read_text().splitlines()[:60]:
        name, wnid, x0, y0, x1, y1 = line.split("\t")[:6]
        if _first_name(words, wnid) in names:
            def box(shape, x0=int(x0), y0=int(y0), x1=int(x1), y1=int(y1)):
                out = np.zeros(shape, bool)
                out[y0:y1 + 1, x0:x1 + 1] = True
                return out
            items.append((tiny / "val" / "images" / name, names.index(_first_name(words, wnid)), airliner, box))
    true, control = _segment_groups(segmenter, items, level=2)
    assert len(true) >= 60
    assert _permutation_p_value(true) < 0.01
    assert _permutation_p_value(control) > 0.01
