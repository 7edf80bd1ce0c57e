"""The evaluation sets: where their photos and ground truth are under the data folder, how each is scored,
and how the report shows it.

Segmentation sets (BSDS500 val and test, Pascal-Part person val, Weizmann horses) pair each photo
with its ground truth and name the scorers that apply; each is one entry of :data:`EVALUATION_SETS`,
which ``python -m training.evaluate`` (``--only``, the run, ``results.md``, ``results.png``) reads. A
BSDS500 split whose photos are present without their ``groundTruth/<split>`` folder (the shared data
has the 200 test photos only) is still a set: it is scored for what needs no ground truth (segment
counts, the shape of the tree) and says so. Recognition sets are photos with an ImageNet-1k class,
or none (Caltech-101, scored by agreement with the teacher only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from training.data import tinyimagenet_to_imagenet
from training.metrics.ground_truth import (
    PASCAL_PART_N_CLASSES,
    WEIZMANN_N_CLASSES,
    load_bsds_ground_truth,
    load_pascal_part_levels,
    load_weizmann_mask,
)
from training.metrics.recognition import LabelledPhoto, caltech_test_photos, imagenet_photos, tinyimagenet_val_photos
from training.metrics.scorers import BsdsScorer, MiouScorer, ObjectShareScorer, Scorer, TreeScorer, UltrametricScorer


@dataclass
class SegmentationSet:
    """Photos with ground truth, and the scorers (beyond the segment counts) that apply to them."""

    key: str  # results key
    title: str
    items: list[tuple[Path, Path | None]]  # (image, ground truth; None on a set scored without it)
    load_gt: Callable[[Path], Any]
    scorers: Callable[[], list[Scorer]]
    gt_columns: list[str] = field(default_factory=list)  # names of the ground-truth levels (mIoU sets)
    has_ground_truth: bool = True


def bsds_split(root: Path, split: str, key: str | None = None) -> SegmentationSet:
    """A BSDS500 split: region, ultrametric and boundary metrics and the tree's shape; the shape only when
    the split's ground truth is absent (every photo needs its ``.mat``, or none may have one)."""
    key = key or ("bsds" if split == "val" else f"bsds_{split}")  # "bsds" is val, as in every earlier results file
    images = sorted((root / "images" / split).glob("*.jpg"))
    truth = [root / "groundTruth" / split / f"{i.stem}.mat" for i in images]
    present = sum(t.exists() for t in truth)
    if present == len(truth):
        return SegmentationSet(key, f"BSDS500 {split}", list(zip(images, truth)), load_bsds_ground_truth,
                               lambda: [BsdsScorer(), UltrametricScorer(), TreeScorer()])
    if present:
        missing = next(t for t in truth if not t.exists())
        raise FileNotFoundError(f"BSDS500 {split}: {present} of {len(truth)} photos have ground truth ({missing} is missing)")
    return SegmentationSet(key, f"BSDS500 {split} (no ground truth here: counts and tree shape only)",
                           [(i, None) for i in images], lambda _: None, lambda: [TreeScorer()], has_ground_truth=False)


# Whole people are scored where people are a subject of the photo, not a crowd in the distance (issue 23).
PEOPLE_MIN_COVER = 0.10


def pascal_part_val(root: Path, key: str) -> SegmentationSet:
    ids = (root / "val_id.txt").read_text().split()
    items = [(root / "JPEGImages" / f"{i}.jpg", root / "gt_masks" / f"{i}.png") for i in ids
             if (root / "JPEGImages" / f"{i}.jpg").exists()]
    return SegmentationSet(key, "Pascal-Part person val", items, load_pascal_part_levels,
                           lambda: [MiouScorer(PASCAL_PART_N_CLASSES), TreeScorer(), ObjectShareScorer(PEOPLE_MIN_COVER)],
                           ["body", "upper/lower", "parts"])


def weizmann_horses(root: Path, key: str) -> SegmentationSet:
    items = [(i, root / "mask" / f"{i.stem}.png") for i in sorted((root / "horse").glob("*.jpg"))]
    return SegmentationSet(key, "Weizmann horses", items, lambda p: [load_weizmann_mask(p)],
                           lambda: [MiouScorer((WEIZMANN_N_CLASSES,)), TreeScorer(), ObjectShareScorer()], ["mIoU"])


@dataclass(frozen=True)
class PlotPanel:
    """One panel of ``results.png``: a per-level score against the mean number of segments."""

    metric: str  # a per-level entry of the set's results, e.g. "covering_per_level"
    title: str
    column: int | None = None  # which ground-truth level, where the metric has one value per level of the truth


@dataclass(frozen=True)
class EvaluationSet:
    """A segmentation set as the evaluation knows it. Adding a set is one loader and one entry of
    :data:`EVALUATION_SETS` (:func:`register_evaluation_set`): the command line, the run, the report and the plot all read it from there."""

    name: str  # its ``--only`` name
    key: str  # its key in results.json
    folder: str  # its folder under ``--data``
    load: Callable[[Path, str], SegmentationSet]  # (its folder, key) -> photos, ground truth and scorers
    table: str  # the report's table layout, a key of ``training.evaluation.report.TABLES``
    title: str  # the report's heading
    note: str = ""  # what the table shows, after the heading
    plot: PlotPanel | None = None  # its panel in results.png, if it has one

    def open(self, data: Path) -> SegmentationSet:
        return self.load(data / self.folder, self.key)


# The segmentation sets by ``--only`` name, in the order the run, the report and the plot take them.
EVALUATION_SETS: dict[str, EvaluationSet] = {}


def register_evaluation_set(evaluation_set: EvaluationSet) -> EvaluationSet:
    if evaluation_set.name in EVALUATION_SETS or evaluation_set.name == "recognition":
        raise ValueError(f"an evaluation set named {evaluation_set.name!r} is already registered")
    EVALUATION_SETS[evaluation_set.name] = evaluation_set
    return evaluation_set


register_evaluation_set(EvaluationSet("bsds", "bsds", "bsds500", lambda root, key: bsds_split(root, "val", key), "bsds",
                                      "BSDS500 val", plot=PlotPanel("covering_per_level", "BSDS500 val: covering")))
register_evaluation_set(EvaluationSet("bsds_test", "bsds_test", "bsds500", lambda root, key: bsds_split(root, "test", key),
                                      "bsds", "BSDS500 test"))
register_evaluation_set(EvaluationSet("pascal", "pascal_part", "pascal_part_person", pascal_part_val, "miou",
                                      "Pascal-Part person val", "majority-label mIoU per level",
                                      PlotPanel("miou_per_level", "Pascal-Part: parts mIoU", 2)))
register_evaluation_set(EvaluationSet("horse", "horse", "weizmann_horse", weizmann_horses, "miou", "Weizmann horses",
                                      "majority-label mIoU per level, horse / background",
                                      PlotPanel("miou_per_level", "Weizmann horses: mIoU", 0)))


def recognition_sets(data: Path, photos_dir: Path | None, class_names: Sequence[str],
                     limit: int | None) -> tuple[dict[str, list[LabelledPhoto]], dict[str, str]]:
    """The recognition sets present, and for each set left out, why."""
    sets: dict[str, list[LabelledPhoto]] = {}
    skipped: dict[str, str] = {}
    tiny = data / "tinyimagenet_animals59"
    training_classes: set[int] = set()
    if tiny.is_dir():
        mapping = tinyimagenet_to_imagenet(tiny, class_names)
        training_classes = set(mapping.values())
        sets["tinyimagenet_val"] = tinyimagenet_val_photos(tiny, mapping)[:limit]
    else:
        skipped["tinyimagenet_val"] = f"{tiny} not found"
    caltech = data / "caltech101_160"
    if caltech.is_dir():
        sets["caltech101_test"] = caltech_test_photos(caltech)[:limit]
    else:
        skipped["caltech101_test"] = f"{caltech} not found"
    if photos_dir is None:
        skipped["imagenet_photos"] = "pass --imagenet-photos DIR"
    else:
        # Photos of a class the training data covers (Tiny-ImageNet's animals) would not test
        # recognition beyond it; without the Tiny-ImageNet folder nothing can be excluded.
        sets["imagenet_photos"] = [p for p in imagenet_photos(photos_dir) if p.target not in training_classes][:limit]
    return sets, skipped
