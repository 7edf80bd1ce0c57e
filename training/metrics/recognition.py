"""Image-level recognition through the shipped segmenter, with the teacher scored on the same photos.

A recognition set is a list of photos with their ImageNet-1k class (index in torchvision order), or
with no class at all (Caltech-101: its classes are not ImageNet classes, so there the model can only
be compared with its teacher). The model is read through ``segmenter(rgb).prediction``, exactly what a
user of ``hierseg`` gets; the teacher is any callable from an RGB image to class scores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from hierseg.imageio import load_image

NO_LABEL = -1
# foolbox's sample photos: imagenet_<n>_<class index>.jpg.
IMAGENET_PHOTO_NAME = re.compile(r"imagenet_(\d+)_(\d+)\.(jpe?g|png)$", re.IGNORECASE)


@dataclass(frozen=True)
class LabelledPhoto:
    path: Path
    target: int  # ImageNet-1k class index, or NO_LABEL


Classifier = Callable[[NDArray[np.uint8]], NDArray[np.floating]]


def imagenet_photos(folder: str | Path) -> list[LabelledPhoto]:
    """The photos of ``folder`` named ``imagenet_<n>_<class>.jpg``, in order of ``n``."""
    found = []
    for path in Path(folder).iterdir():
        match = IMAGENET_PHOTO_NAME.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), LabelledPhoto(path, int(match.group(2)))))
    if not found:
        raise FileNotFoundError(f"no imagenet_<n>_<class>.jpg photos in {folder}")
    return [photo for _, photo in sorted(found, key=lambda pair: pair[0])]


def tinyimagenet_val_photos(root: str | Path, wnid_to_imagenet: Mapping[str, int]) -> list[LabelledPhoto]:
    """Tiny-ImageNet val photos whose WordNet id maps to an ImageNet-1k class (all 59 animal classes do)."""
    root = Path(root)
    rows = [line.split("\t") for line in (root / "val" / "val_annotations.txt").read_text().splitlines() if line]
    return [LabelledPhoto(root / "val" / "images" / r[0], wnid_to_imagenet[r[1]]) for r in rows if r[1] in wnid_to_imagenet]


def caltech_test_photos(root: str | Path) -> list[LabelledPhoto]:
    """Caltech-101 test photos (no ImageNet label)."""
    root = Path(root)
    lines = [line.strip() for line in (root / "test.txt").read_text().splitlines() if line.strip()]
    return [LabelledPhoto(root / "images" / rel, NO_LABEL) for rel in lines]


def top_classes(scores: NDArray[np.floating], k: int) -> NDArray[np.int64]:
    """The ``k`` best classes of (..., C) scores, best first, along the last axis.

    A stable sort of the negated scores: ties go to the lower class index, like ``argmax``.
    """
    return np.argsort(-np.asarray(scores, dtype=np.float64), axis=-1, kind="stable")[..., :k]


def score_recognition(
    photos: Sequence[LabelledPhoto], segmenter: Callable[[NDArray[np.uint8]], Any], teacher: Classifier,
    class_names: Sequence[str], progress: str | None = None,
) -> dict[str, Any]:
    """Top-1/top-5 of the model and of the teacher against the labels, and the model's agreement with the teacher.

    ``class_names`` is the vocabulary the targets index (ImageNet-1k); the segmenter's hierarchies must
    use the same one, or its predictions cannot be compared with the labels or the teacher.
    ``agree_top1``: the model's top class is the teacher's; ``teacher_top1_in_model_top5``: the teacher's
    top class is among the model's five. Accuracies are ``None`` on a set without labels. ``progress``
    names a progress bar (none when ``None``).
    """
    if not photos:
        raise ValueError("no photos to score")
    labelled = sum(photo.target != NO_LABEL for photo in photos)
    if labelled not in (0, len(photos)):
        raise ValueError("a recognition set is either fully labelled or not labelled at all")
    hits = {"model_top1": 0, "model_top5": 0, "teacher_top1": 0, "teacher_top5": 0, "agree_top1": 0,
            "teacher_top1_in_model_top5": 0}
    for photo in tqdm(photos, desc=progress, disable=progress is None):
        rgb = load_image(photo.path, max_side=None)
        h = segmenter(rgb)
        if list(h.class_names) != list(class_names):
            raise ValueError(f"the segmenter's {len(h.class_names)} classes are not the {len(class_names)} "
                             "classes the labels and the teacher use; recognition cannot be scored")
        model_top, teacher_top = top_classes(h.prediction, 5), top_classes(teacher(rgb), 5)
        hits["agree_top1"] += int(model_top[0] == teacher_top[0])
        hits["teacher_top1_in_model_top5"] += int(teacher_top[0] in model_top)
        if photo.target != NO_LABEL:
            hits["model_top1"] += int(model_top[0] == photo.target)
            hits["model_top5"] += int(photo.target in model_top)
            hits["teacher_top1"] += int(teacher_top[0] == photo.target)
            hits["teacher_top5"] += int(photo.target in teacher_top)
    n = len(photos)
    result: dict[str, Any] = {"images": n}
    for key, count in hits.items():
        is_accuracy = not key.startswith(("agree", "teacher_top1_in"))
        result[key] = (count / n if labelled else None) if is_accuracy else count / n
    return result
