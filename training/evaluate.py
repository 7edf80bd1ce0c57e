"""Score part-whole hierarchies against human ground truth, ours and classic baselines in one table.

    python -m training.evaluate CHECKPOINT --data ../shared/data [--out eval/] [--limit N]
        [--only bsds,pascal,horse,recognition] [--imagenet-photos DIR] [--vit FOLDER] [--refine STEPS]

Full splits by default (``--limit N``: the first N images of every set, for a quick look). The model
is read only through the shipped API, ``load_segmenter(CHECKPOINT)(rgb) -> Hierarchy``.

Segmentation (each set skipped when absent from ``--data``):
* BSDS500 val: covering, PRI, VI (ODS and OIS over the levels), boundary P/R/F (ODS/OIS over the
  levels, no interpolation between levels), and the shape of the tree: the share of segments of the
  two coarsest levels that are one 4-connected piece and the share of parent nodes with one child.
* Pascal-Part person val: per level, majority-label mIoU against body / upper-lower body / 6 parts.
* Weizmann horses: per level, majority-label mIoU (horse / background).

Methods, scored by the same code: CAST (every hierarchy level, superpixels included); SLIC + RAG
mean-colour merging cut to CAST's segment counts on the same image (a count SLIC cannot reach is
recorded per level, never silently replaced); Felzenszwalb at five scales (its own counts); with
``--vit FOLDER`` the paper's ViT baseline read out by hierarchical k-means at CAST's counts; with
``--refine STEPS`` CAST again after ``Segmenter.refine`` on each image (same images, same segment
counts, no time budget so every image gets STEPS steps), in segmentation and recognition alike.
Majority-label mIoU rises with the number of segments, so compare at equal counts: every row
reports its mean number of segments.

Recognition (needs the ``train`` extra for the teacher, EfficientNet-Lite0 on the whole image):
Tiny-ImageNet animals val top-1/top-5 (wnids mapped to ImageNet-1k), Caltech-101 test top-1
agreement with the teacher (its classes are not ImageNet's), and with ``--imagenet-photos DIR``
top-1/top-5 on ImageNet photos ``imagenet_<n>_<class>.jpg`` of classes outside the training data.

Writes ``results.json``, ``results.md`` and ``results.png`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from hierseg import load_segmenter
from hierseg.class_names import imagenet_class_names
from hierseg.imageio import load_image
from hierseg.preprocess import normalise, resize_rgb
from hierseg.refine import NO_TIME_BUDGET

from .baselines import felzenszwalb_levels, slic_rag_matched
from .data import tinyimagenet_to_imagenet
from .metrics.boundaries import evaluate_segmentation_boundaries, summarize_boundaries
from .metrics.ground_truth import (
    PASCAL_PART_N_CLASSES,
    WEIZMANN_N_CLASSES,
    load_bsds_ground_truth,
    load_pascal_part_levels,
    load_weizmann_mask,
)
from .metrics.parts import majority_label_confusion, miou_from_confusion
from .metrics.recognition import (
    Classifier,
    LabelledPhoto,
    caltech_test_photos,
    imagenet_photos,
    score_recognition,
    tinyimagenet_val_photos,
)
from .metrics.regions import evaluate_regions, summarize_regions
from .metrics.tree import Fraction, one_piece_segments, parents_from_nested, single_child_parents

DATASETS = ("bsds", "pascal", "horse", "recognition")
FELZENSZWALB_SCALES = (30000.0, 10000.0, 3000.0, 1000.0, 300.0)
SLIC_SUPERPIXELS = 400
# SLIC makes roughly, not exactly, the number of superpixels asked for: ask for some headroom above
# CAST's finest count so that every level can be matched on almost every image.
SLIC_HEADROOM = 1.25
# The shape-of-the-tree statistics look at the coarse segments a user sees first.
COARSE_LEVELS = 2
# EfficientNet-Lite0's native input size; the teacher sees the whole image squashed to it.
TEACHER_SIZE = 224


# --------------------------------------------------------------------------------------------------
# Methods


@dataclass
class Segmentation:
    """One method's levels on one image, coarsest first."""

    label_maps: list[np.ndarray]
    parents: list[np.ndarray] | None  # as Hierarchy.parents; None when the levels are not nested
    requested: list[int] | None = None  # the counts asked for, when the method is cut to CAST's counts


# (rgb, CAST's per-level segment counts on this image) -> levels
Method = Callable[[np.ndarray, Sequence[int]], Segmentation]


def counts_of(levels: Sequence[np.ndarray]) -> list[int]:
    return [int(m.max()) + 1 for m in levels]


def slic_rag_method(rgb: np.ndarray, counts: Sequence[int]) -> Segmentation:
    """SLIC+RAG cut to CAST's counts, one level per CAST level (unreachable counts show in ``counts_of``)."""
    n_superpixels = max(SLIC_SUPERPIXELS, math.ceil(SLIC_HEADROOM * max(counts)))
    matched = slic_rag_matched(rgb, counts, n_superpixels=n_superpixels)
    return Segmentation(matched.label_maps, parents_from_nested(matched.label_maps), list(counts))


def felzenszwalb_method(rgb: np.ndarray, counts: Sequence[int]) -> Segmentation:
    return Segmentation(felzenszwalb_levels(rgb, FELZENSZWALB_SCALES), parents=None)


def vit_method(folder: Path) -> Method:
    from .vit_baseline import load_vit, vit_kmeans_levels

    model = load_vit(folder)

    def method(rgb: np.ndarray, counts: Sequence[int]) -> Segmentation:
        maps = vit_kmeans_levels(model, rgb, list(counts))
        return Segmentation(maps, parents_from_nested(maps), list(counts))

    return method


def refined(segmenter: Any, steps: int) -> Callable[[np.ndarray], Any]:
    """rgb -> the hierarchy after ``steps`` steps of ``Segmenter.refine`` (seed 0, no time budget)."""
    return lambda rgb: segmenter.refine(rgb, steps=steps, seed=0, config=NO_TIME_BUDGET)


def refined_method(segmenter: Any, steps: int) -> Method:
    """CAST after refinement, as a method asked for the unrefined model's counts (a changed count shows)."""
    refine = refined(segmenter, steps)

    def method(rgb: np.ndarray, counts: Sequence[int]) -> Segmentation:
        h = refine(rgb)
        return Segmentation(list(h.label_maps), list(h.parents), list(counts))

    return method


# --------------------------------------------------------------------------------------------------
# Scorers: each accumulates one method's scores on one data set


class Scorer(Protocol):
    def add(self, seg: Segmentation, gt: Any) -> None: ...

    def summary(self) -> dict[str, Any]: ...


@dataclass
class CountScorer:
    """Segments per level, and for matched methods how often a level missed the requested count."""

    produced: list[list[int]] = field(default_factory=list)
    requested: list[list[int]] = field(default_factory=list)

    def add(self, seg: Segmentation, gt: Any) -> None:
        counts = counts_of(seg.label_maps)
        if self.produced and len(counts) != len(self.produced[0]):
            raise ValueError(f"{len(counts)} levels on this image, {len(self.produced[0])} on the first: "
                             "levels must correspond across images to be scored per level")
        if seg.requested is not None and len(seg.requested) != len(counts):
            raise ValueError(f"asked for {len(seg.requested)} levels, got {len(counts)}")
        self.produced.append(counts)
        if seg.requested is not None:
            self.requested.append(list(seg.requested))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"images": len(self.produced),
                               "segments_per_level": np.mean(self.produced, axis=0).tolist()}
        if self.requested:
            produced, requested = np.array(self.produced), np.array(self.requested)
            out["requested_segments_per_level"] = requested.mean(axis=0).tolist()
            out["unmatched_images_per_level"] = (produced != requested).sum(axis=0).tolist()
        return out


@dataclass
class BsdsScorer:
    """Region and boundary metrics against the human segmentations."""

    regions: list = field(default_factory=list)
    boundaries: list = field(default_factory=list)

    def add(self, seg: Segmentation, gt: Any) -> None:
        self.regions.append(evaluate_regions(seg.label_maps, gt.segmentations))
        self.boundaries.append(evaluate_segmentation_boundaries(seg.label_maps, gt.boundaries))

    def summary(self) -> dict[str, Any]:
        regions = summarize_regions(self.regions)
        bounds = summarize_boundaries(self.boundaries, interpolate=False)
        return {
            "covering_per_level": regions.covering.tolist(), "pri_per_level": regions.pri.tolist(),
            "vi_per_level": regions.voi.tolist(), "boundary_f_per_level": bounds.f.tolist(),
            "covering_ods": regions.cover_ods, "covering_ois": regions.cover_ois,
            "covering_ods_level": regions.cover_ods_level,
            "pri_ods": regions.pri_ods, "pri_ois": regions.pri_ois,
            "vi_ods": regions.voi_ods, "vi_ois": regions.voi_ois,
            "boundary_f_ods": bounds.ods.f, "boundary_f_ois": bounds.ois.f,
        }


@dataclass
class TreeScorer:
    """Coarse segments in one 4-connected piece; parent nodes with a single child (nested methods only)."""

    one_piece: list[Fraction] = field(default_factory=list)
    single_child: list[Fraction] = field(default_factory=list)
    nested: bool = True

    def add(self, seg: Segmentation, gt: Any) -> None:
        pieces = [one_piece_segments(m) for m in seg.label_maps[:COARSE_LEVELS]]
        self.one_piece = [a + b for a, b in zip(self.one_piece, pieces)] if self.one_piece else pieces
        if seg.parents is None:
            self.nested = False
            return
        single = single_child_parents(seg.parents)
        self.single_child = [a + b for a, b in zip(self.single_child, single)] if self.single_child else single

    def summary(self) -> dict[str, Any]:
        tree: dict[str, Any] = {
            "one_piece_per_level": [f.value for f in self.one_piece],
            "one_piece_coarse": sum(self.one_piece, Fraction(0, 0)).value,
            "coarse_segments": sum(self.one_piece, Fraction(0, 0)).total,
        }
        if self.nested and self.single_child:
            tree["single_child_per_level"] = [f.value for f in self.single_child]
            tree["single_child"] = sum(self.single_child, Fraction(0, 0)).value
            tree["parent_nodes"] = sum(self.single_child, Fraction(0, 0)).total
        return {"tree": tree}


@dataclass
class MiouScorer:
    """Majority-label mIoU of every level against every ground-truth level, pooled over images."""

    n_classes: Sequence[int]
    confusions: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def add(self, seg: Segmentation, gt: Any) -> None:
        for li, level in enumerate(seg.label_maps):
            for gi, (g, n) in enumerate(zip(gt, self.n_classes)):
                c = majority_label_confusion(level, g, n)
                self.confusions[li, gi] = self.confusions.get((li, gi), 0) + c

    def summary(self) -> dict[str, Any]:
        levels = sorted({li for li, _ in self.confusions})
        return {"miou_per_level": [[miou_from_confusion(self.confusions[li, gi]) for gi in range(len(self.n_classes))]
                                   for li in levels]}


# --------------------------------------------------------------------------------------------------
# Data sets: images + ground-truth loader + the scorers that apply


@dataclass
class Dataset:
    key: str  # results key
    title: str
    items: list[tuple[Path, Path]]  # (image, ground truth)
    load_gt: Callable[[Path], Any]
    scorers: Callable[[], list[Scorer]]
    gt_columns: list[str] = field(default_factory=list)  # names of the ground-truth levels (mIoU sets)


def bsds_dataset(root: Path) -> Dataset:
    images = sorted((root / "images" / "val").glob("*.jpg"))
    return Dataset("bsds", "BSDS500 val", [(i, root / "groundTruth" / "val" / f"{i.stem}.mat") for i in images],
                   load_bsds_ground_truth, lambda: [BsdsScorer(), TreeScorer()])


def pascal_dataset(root: Path) -> Dataset:
    ids = (root / "val_id.txt").read_text().split()
    items = [(root / "JPEGImages" / f"{i}.jpg", root / "gt_masks" / f"{i}.png") for i in ids
             if (root / "JPEGImages" / f"{i}.jpg").exists()]
    return Dataset("pascal_part", "Pascal-Part person val", items, load_pascal_part_levels,
                   lambda: [MiouScorer(PASCAL_PART_N_CLASSES)], ["body", "upper/lower", "parts"])


def horse_dataset(root: Path) -> Dataset:
    items = [(i, root / "mask" / f"{i.stem}.png") for i in sorted((root / "horse").glob("*.jpg"))]
    return Dataset("horse", "Weizmann horses", items, lambda p: [load_weizmann_mask(p)],
                   lambda: [MiouScorer((WEIZMANN_N_CLASSES,))], ["mIoU"])


SEGMENTATION_SETS: dict[str, tuple[str, Callable[[Path], Dataset]]] = {
    "bsds": ("bsds500", bsds_dataset),
    "pascal": ("pascal_part_person", pascal_dataset),
    "horse": ("weizmann_horse", horse_dataset),
}


def evaluate_segmentation(segmenter: Callable[[np.ndarray], Any], datasets: Sequence[Dataset],
                          baselines: dict[str, Method], limit: int | None) -> dict[str, dict[str, Any]]:
    """Every method on every data set through one loop: results[method][dataset key] plus timings."""
    names = ["CAST", *baselines]
    results: dict[str, dict[str, Any]] = {name: {} for name in names}
    seconds = dict.fromkeys(names, 0.0)
    images = 0
    for ds in datasets:
        scorers = {name: [CountScorer(), *ds.scorers()] for name in names}
        for image, gt_path in tqdm(ds.items[:limit], desc=ds.title):
            rgb, gt = load_image(image, max_side=None), ds.load_gt(gt_path)
            t0 = time.perf_counter()
            h = segmenter(rgb)
            seconds["CAST"] += time.perf_counter() - t0
            outputs = {"CAST": Segmentation(list(h.label_maps), list(h.parents))}
            counts = counts_of(h.label_maps)
            for name, method in baselines.items():
                t0 = time.perf_counter()
                outputs[name] = method(rgb, counts)
                seconds[name] += time.perf_counter() - t0
            for name, seg in outputs.items():
                for scorer in scorers[name]:
                    scorer.add(seg, gt)
            images += 1
        if not ds.items[:limit]:
            continue
        for name in names:
            merged: dict[str, Any] = {}
            for scorer in scorers[name]:
                merged.update(scorer.summary())
            results[name][ds.key] = merged
    for name in names:
        results[name]["seconds_per_image"] = seconds[name] / images if images else None
    return results


# --------------------------------------------------------------------------------------------------
# Recognition


class WholeImageTeacher:
    """The distillation teacher on the whole image squashed to ``size``: rgb -> (1000,) logits."""

    def __init__(self, size: int = TEACHER_SIZE) -> None:
        from .teacher import Teacher

        self.size = size
        # Inputs are plain [0, 1] pixels: mean 0, std 1 in the teacher's terms.
        self.net = Teacher((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)).eval()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = normalise(resize_rgb(rgb, self.size, self.size), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))[None]
        return self.net(x)[0].numpy()


def load_teacher() -> Classifier:
    """The teacher, or a clear error naming the extra to install."""
    try:
        return WholeImageTeacher()
    except ImportError as error:
        raise ImportError(f"recognition evaluation needs the teacher ({error.name}): pip install -e '.[train]'") from error


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


def evaluate_recognition(segmenter: Callable[[np.ndarray], Any], teacher: Classifier, sets: dict[str, list[LabelledPhoto]],
                         class_names: Sequence[str], label: str = "") -> dict[str, Any]:
    """Every set scored; each entry also has the segmenter's seconds per image."""
    results = {}
    for name, photos in sets.items():
        seconds = [0.0]

        def timed(rgb: np.ndarray) -> Any:
            t0 = time.perf_counter()
            h = segmenter(rgb)
            seconds[0] += time.perf_counter() - t0
            return h

        results[name] = score_recognition(photos, timed, teacher, class_names, progress=f"recognition: {name}{label}")
        results[name]["seconds_per_image"] = seconds[0] / len(photos)
    return results


# --------------------------------------------------------------------------------------------------
# Reports


def _fmt(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def _segments(entry: dict[str, Any], level: int) -> str:
    """Mean segments at a level; for a matched method also the requested count when they differ."""
    got = entry["segments_per_level"][level]
    text = f"{got:.1f}"
    if "requested_segments_per_level" in entry and entry["unmatched_images_per_level"][level]:
        text += f" (asked {entry['requested_segments_per_level'][level]:.1f}, " \
                f"missed on {entry['unmatched_images_per_level'][level]}/{entry['images']} images)"
    return text


def _level_rows(methods: dict[str, Any], key: str, cells: Callable[[dict[str, Any], int], list[str]]) -> list[str]:
    """Rows grouped by level: CAST beside the methods cut to its counts, then methods with their own counts."""
    present = {name: m[key] for name, m in methods.items() if key in m}
    matched = [n for n, e in present.items() if n == "CAST" or "requested_segments_per_level" in e]
    own = [n for n in present if n not in matched]
    rows = []
    width = max((len(present[n]["segments_per_level"]) for n in matched), default=0)
    for level in range(width):
        for name in matched:
            rows.append(f"| {name} | {level} | {_segments(present[name], level)} | " + " | ".join(cells(present[name], level)) + " |")
    for name in own:
        for level in range(len(present[name]["segments_per_level"])):
            rows.append(f"| {name} | {level} | {_segments(present[name], level)} | " + " | ".join(cells(present[name], level)) + " |")
    return rows


def markdown(results: dict[str, Any]) -> str:
    methods = results["methods"]
    lines = [f"Checkpoint `{results['checkpoint']}`; images per set: {results['limit'] or 'full split'}.", ""]
    if any("bsds" in m for m in methods.values()):
        n = next(m["bsds"]["images"] for m in methods.values() if "bsds" in m)
        lines += [f"**BSDS500 val** ({n} images; ODS / OIS over the levels; covering and PRI higher is better, VI lower)", "",
                  "| method | segments per level | covering | PRI | VI | boundary F |", "|---|---|---|---|---|---|"]
        for name, m in methods.items():
            if "bsds" in m:
                b = m["bsds"]
                counts = ", ".join(f"{c:.0f}" for c in b["segments_per_level"])
                lines.append(f"| {name} | {counts} | {b['covering_ods']:.3f} / {b['covering_ois']:.3f} | "
                             f"{b['pri_ods']:.3f} / {b['pri_ois']:.3f} | {b['vi_ods']:.3f} / {b['vi_ois']:.3f} | "
                             f"{b['boundary_f_ods']:.3f} / {b['boundary_f_ois']:.3f} |")
        lines += ["", "BSDS500 val per level:", "", "| method | level | segments | covering | PRI | VI | boundary F |",
                  "|---|---|---|---|---|---|---|"]
        lines += _level_rows(methods, "bsds", lambda e, l: [_fmt(e[k][l]) for k in
                                                             ("covering_per_level", "pri_per_level", "vi_per_level", "boundary_f_per_level")])
        lines += ["", f"Shape of the tree on BSDS500 val: coarse segments (levels 0-{COARSE_LEVELS - 1}) that are one "
                  "4-connected piece; parent nodes (levels 0..L-2) with exactly one child (nested methods only).", "",
                  "| method | one piece, per level | one piece, coarse levels | single-child parents, per level | single-child parents |",
                  "|---|---|---|---|---|"]
        for name, m in methods.items():
            if "bsds" in m:
                t = m["bsds"]["tree"]
                per = ", ".join(_fmt(v) for v in t["one_piece_per_level"])
                single = ", ".join(_fmt(v) for v in t.get("single_child_per_level", [])) or "—"
                lines.append(f"| {name} | {per} | {_fmt(t['one_piece_coarse'])} of {t['coarse_segments']} | {single} | "
                             + (f"{_fmt(t['single_child'])} of {t['parent_nodes']}" if "single_child" in t else "—") + " |")
        lines.append("")
    for key, title in (("pascal_part", "**Pascal-Part person val** (majority-label mIoU per level)"),
                       ("horse", "**Weizmann horses** (majority-label mIoU per level, horse / background)")):
        if not any(key in m for m in methods.values()):
            continue
        columns = results["gt_columns"][key]
        n = next(m[key]["images"] for m in methods.values() if key in m)
        lines += [f"{title}, {n} images", "", "| method | level | segments | " + " | ".join(columns) + " |",
                  "|---" * (3 + len(columns)) + "|"]
        lines += _level_rows(methods, key, lambda e, l: [_fmt(v) for v in e["miou_per_level"][l]])
        lines.append("")
    recognition = results.get("recognition")
    if recognition:
        lines += ["**Recognition** through the segmenter (`h.prediction`), the teacher (EfficientNet-Lite0, whole image "
                  f"at {TEACHER_SIZE} px) beside it", "",
                  "| set | images | top-1 | teacher top-1 | top-5 | teacher top-5 | top-1 = teacher's | teacher's top-1 in top-5 |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, r in recognition.get("sets", {}).items():
            lines.append(f"| {name} | {r['images']} | {_fmt(r['model_top1'])} | {_fmt(r['teacher_top1'])} | "
                         f"{_fmt(r['model_top5'])} | {_fmt(r['teacher_top5'])} | {_fmt(r['agree_top1'])} | "
                         f"{_fmt(r['teacher_top1_in_model_top5'])} |")
        refined_sets = recognition.get("refined", {}).get("sets", {})
        for name, r in refined_sets.items():
            lines.append(f"| {name}, refined {recognition['refined']['steps']} steps | {r['images']} | {_fmt(r['model_top1'])} | "
                         f"{_fmt(r['teacher_top1'])} | {_fmt(r['model_top5'])} | {_fmt(r['teacher_top5'])} | "
                         f"{_fmt(r['agree_top1'])} | {_fmt(r['teacher_top1_in_model_top5'])} |")
        if refined_sets:
            lines.append("\nSeconds per image, " + "; ".join(
                f"{name}: {recognition['sets'][name]['seconds_per_image']:.2f} before, {r['seconds_per_image']:.2f} refined"
                for name, r in refined_sets.items()) + ".")
        for name, why in recognition.get("skipped", {}).items():
            lines.append(f"\n{name}: not evaluated ({why}).")
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Per-level score against number of segments, one line per method, one panel per data set present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(key, metric, title, column) for key, metric, title, column in
              [("bsds", "covering_per_level", "BSDS500 val: covering", None),
               ("pascal_part", "miou_per_level", "Pascal-Part: parts mIoU", 2),
               ("horse", "miou_per_level", "Weizmann horses: mIoU", 0)]
              if any(key in m for m in results["methods"].values())]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.2), squeeze=False)
    for ax, (key, metric, title, column) in zip(axes[0], panels):
        for name, m in results["methods"].items():
            if key in m:
                y = [row[column] for row in m[key][metric]] if column is not None else m[key][metric]
                ax.plot(m[key]["segments_per_level"], y, marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("segments per image (mean)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# Command line


def parse_only(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(DATASETS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"--only takes a comma-separated subset of {','.join(DATASETS)}; got {text!r}")
    return chosen


def run(checkpoint: str | None, data: Path, limit: int | None = None, only: Sequence[str] = DATASETS,
        device: str = "auto", vit: Path | None = None, imagenet_photos_dir: Path | None = None,
        refine_steps: int | None = None) -> dict[str, Any]:
    """Everything ``only`` asks for, as the JSON-able results dict."""
    # The teacher first: a missing extra should fail in a second, not after the segmentation sets.
    teacher = None
    skipped_recognition = None
    if "recognition" in only:
        try:
            teacher = load_teacher()
        except ImportError as error:
            if list(only) == ["recognition"]:
                raise SystemExit(str(error)) from error
            skipped_recognition = str(error)
            print(f"skipping recognition: {error}", file=sys.stderr)
    segmenter = load_segmenter(checkpoint, device=device)
    class_names = imagenet_class_names()
    if teacher is not None and list(segmenter.class_names) != class_names:
        # Labels and the teacher speak ImageNet-1k: another vocabulary (or none, MoCo) cannot be scored.
        reason = f"the checkpoint has {len(segmenter.class_names)} classes, not the ImageNet-1k classes"
        if list(only) == ["recognition"]:
            raise SystemExit(f"recognition evaluation: {reason}")
        teacher, skipped_recognition = None, reason
    baselines: dict[str, Method] = {"SLIC+RAG": slic_rag_method, "Felzenszwalb": felzenszwalb_method}
    if vit is not None:
        baselines["ViT+k-means"] = vit_method(vit)
    if refine_steps is not None:
        baselines[f"CAST refined ({refine_steps} steps)"] = refined_method(segmenter, refine_steps)
    datasets = [factory(data / folder) for key, (folder, factory) in SEGMENTATION_SETS.items()
                if key in only and (data / folder).exists()]
    results: dict[str, Any] = {
        "checkpoint": str(checkpoint) if checkpoint is not None else "default",
        "limit": limit,
        "methods": evaluate_segmentation(segmenter, datasets, baselines, limit),
        "gt_columns": {ds.key: ds.gt_columns for ds in datasets if ds.gt_columns},
    }
    if teacher is not None:
        sets, skipped = recognition_sets(data, imagenet_photos_dir, class_names, limit)
        results["recognition"] = {"teacher_size": TEACHER_SIZE, "sets": evaluate_recognition(segmenter, teacher, sets, class_names),
                                  "skipped": skipped}
        if refine_steps is not None:
            results["recognition"]["refined"] = {
                "steps": refine_steps,
                "sets": evaluate_recognition(refined(segmenter, refine_steps), teacher, sets, class_names, ", refined"),
            }
    elif skipped_recognition is not None:
        results["recognition"] = {"sets": {}, "skipped": {"all": skipped_recognition}}
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default=None, help="checkpoint name or path (default: shipped)")
    parser.add_argument("--data", type=Path, required=True,
                        help="folder holding bsds500/, pascal_part_person/, weizmann_horse/, tinyimagenet_animals59/, caltech101_160/")
    parser.add_argument("--out", type=Path, default=Path("eval"), help="output folder")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per set (default: full splits)")
    parser.add_argument("--only", type=parse_only, default=list(DATASETS), help=f"subset of {','.join(DATASETS)}")
    parser.add_argument("--imagenet-photos", type=Path, default=None,
                        help="folder of ImageNet photos named imagenet_<n>_<class index>.jpg")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--vit", type=Path, default=None, help="a trained ViT baseline folder (training/vit_baseline.py)")
    parser.add_argument("--refine", type=int, default=None, metavar="STEPS",
                        help="also score CAST after STEPS steps of Segmenter.refine on each image")
    args = parser.parse_args(argv)
    results = run(args.checkpoint, args.data, args.limit, args.only, args.device, args.vit, args.imagenet_photos,
                  args.refine)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    (args.out / "results.md").write_text(table + "\n")
    plot(results, args.out / "results.png")
    print(table)


if __name__ == "__main__":
    main()
