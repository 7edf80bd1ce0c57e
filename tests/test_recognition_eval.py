"""Recognition scoring on fake photo folders, with a stub segmenter and a stub teacher.

Each fake photo is a flat PNG whose red value says which class the stub segmenter ranks first and whose
green value says which class the stub teacher ranks first, so every number is counted by hand.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from hierseg.checkpoints import CheckpointConfig, save_checkpoint
from hierseg.class_names import imagenet_class_names
from hierseg.model import build_cast
from hierseg.superpixels import SuperpixelConfig
from training import evaluate
from training.evaluation.datasets import recognition_sets
from training.metrics.recognition import NO_LABEL, caltech_test_photos, imagenet_photos, score_recognition

N_CLASSES = 10
NAMES = [f"class{i}" for i in range(N_CLASSES)]
STEP = 20  # pixel value per class index


def _photo(path: Path, model_class: int, teacher_class: int) -> None:
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = model_class * STEP, teacher_class * STEP
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


class StubSegmenter:
    """Ranks classes by distance to the class its red value names: top-5 of class 0 is 0..4."""

    def __init__(self, names: list[str] = NAMES) -> None:
        self.class_names = names

    def __call__(self, rgb: np.ndarray) -> SimpleNamespace:
        c = int(round(rgb[0, 0, 0] / STEP))
        scores = 1.0 / (1.0 + np.abs(np.arange(N_CLASSES) - c)) - 1e-6 * np.arange(N_CLASSES)
        return SimpleNamespace(prediction=scores / scores.sum(), class_names=self.class_names)


def stub_teacher(rgb: np.ndarray) -> np.ndarray:
    """One-hot logits at the class the green value names (the rest tie: lowest indices next)."""
    logits = np.zeros(N_CLASSES)
    logits[int(round(rgb[0, 0, 1] / STEP))] = 5.0
    return logits


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    _photo(folder / "imagenet_00_2.png", model_class=2, teacher_class=2)  # both right
    _photo(folder / "imagenet_01_9.png", model_class=0, teacher_class=9)  # model wrong, not in its top-5
    _photo(folder / "imagenet_10_3.png", model_class=0, teacher_class=4)  # both wrong, both have 3 in top-5
    _photo(folder / "notes_3.png", model_class=0, teacher_class=0)  # not a sample name: ignored
    return folder


def test_imagenet_photos_are_parsed_in_sample_order(photo_folder: Path) -> None:
    photos = imagenet_photos(photo_folder)
    assert [(p.path.name, p.target) for p in photos] == [
        ("imagenet_00_2.png", 2), ("imagenet_01_9.png", 9), ("imagenet_10_3.png", 3)]
    with pytest.raises(FileNotFoundError):
        imagenet_photos(photo_folder.parent)


def test_scores_are_counted_per_photo(photo_folder: Path) -> None:
    r = score_recognition(imagenet_photos(photo_folder), StubSegmenter(), stub_teacher, NAMES)
    assert r["images"] == 3
    assert (r["model_top1"], r["model_top5"]) == pytest.approx((1 / 3, 2 / 3))
    assert (r["teacher_top1"], r["teacher_top5"]) == pytest.approx((2 / 3, 3 / 3))
    # Agreement: only photo 0 shares the top class; the teacher's class is in the model's top-5 on 0 and 2.
    assert (r["agree_top1"], r["teacher_top1_in_model_top5"]) == pytest.approx((1 / 3, 2 / 3))


def test_unlabelled_set_scores_agreement_only(tmp_path: Path) -> None:
    root = tmp_path / "caltech"
    _photo(root / "images" / "dog" / "image_0001.png", model_class=4, teacher_class=4)
    _photo(root / "images" / "cup" / "image_0001.png", model_class=1, teacher_class=7)
    (root / "test.txt").write_text("dog/image_0001.png\ncup/image_0001.png\n")
    photos = caltech_test_photos(root)
    assert [p.target for p in photos] == [NO_LABEL, NO_LABEL]
    r = score_recognition(photos, StubSegmenter(), stub_teacher, NAMES)
    assert r["model_top1"] is None and r["teacher_top5"] is None
    assert (r["agree_top1"], r["teacher_top1_in_model_top5"]) == (0.5, 0.5)


def test_a_different_vocabulary_is_refused(photo_folder: Path) -> None:
    with pytest.raises(ValueError, match="classes"):
        score_recognition(imagenet_photos(photo_folder), StubSegmenter(NAMES[::-1]), stub_teacher, NAMES)


def test_photos_of_training_classes_are_left_out(tmp_path: Path) -> None:
    names = imagenet_class_names()
    tiny = tmp_path / "data" / "tinyimagenet_animals59"
    (tiny / "val").mkdir(parents=True)
    (tiny / "wnids.txt").write_text("n01443537\n")
    (tiny / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\n")
    (tiny / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01443537\t0\t0\t8\t8\n")
    photos = tmp_path / "photos"
    _photo(photos / f"imagenet_00_{names.index('goldfish')}.png", 0, 0)
    _photo(photos / "imagenet_01_9.png", 0, 0)
    sets, skipped = recognition_sets(tmp_path / "data", photos, names, limit=None)
    assert [p.target for p in sets["imagenet_photos"]] == [9]
    assert [p.target for p in sets["tinyimagenet_val"]] == [names.index("goldfish")]
    assert set(skipped) == {"caltech101_test"}


def test_evaluate_recognition_end_to_end_with_the_real_teacher(photo_folder: Path, tmp_path: Path) -> None:
    pytest.importorskip("timm")
    torch.manual_seed(0)
    names = imagenet_class_names()
    model = build_cast("cast_micro", img_size=64, num_classes=len(names))
    sp = SuperpixelConfig("slic", 32)
    folder = save_checkpoint(model, CheckpointConfig(model=model.config, superpixels=sp, class_names=names),
                             tmp_path / "ckpt")
    out = tmp_path / "eval"
    evaluate.main([str(folder), "--data", str(tmp_path / "no_data"), "--only", "recognition",
                   "--imagenet-photos", str(photo_folder), "--out", str(out)])
    recognition = json.loads((out / "results.json").read_text())["recognition"]
    assert recognition["sets"]["imagenet_photos"]["images"] == 3
    assert set(recognition["skipped"]) == {"tinyimagenet_val", "caltech101_test"}
    assert "| imagenet_photos | 3 |" in (out / "results.md").read_text()
