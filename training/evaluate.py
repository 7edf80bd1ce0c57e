"""Score part-whole hierarchies against human ground truth, ours and classic baselines in one table.

    python -m training.evaluate CHECKPOINT --data ../shared/data [--out eval/] [--limit N]
        [--only bsds,bsds_test,pascal,horse,recognition] [--imagenet-photos DIR] [--vit FOLDER] [--refine STEPS]
        [--compare NAME=CHECKPOINT ...] [--matched NAME=CHECKPOINT ...] [--slic-cache DIR]

Full splits by default (``--limit N``: the first N images of every set, for a quick look). The model
is read only through the shipped API, ``load_segmenter(CHECKPOINT)(rgb) -> Hierarchy``.

Segmentation (each set skipped when absent from ``--data``):
* BSDS500 val and test: covering, PRI, VI (ODS and OIS over the levels), boundary P/R/F (ODS/OIS over
  the levels, no interpolation between levels), and the shape of the tree: the share of segments of the
  two coarsest levels that are one 4-connected piece and the share of parent nodes with one child. For a
  method with a merge tree (``Hierarchy.merge_tree``) also the ultrametric covering, PRI and VI: the tree
  cut at one fixed grid of heights, ODS the best height for the set, OIS the best per photo
  (``training.metrics.ultrametric``). A split without its ground truth is scored for counts and shape only.
* Pascal-Part person val: per level, majority-label mIoU against body / upper-lower body / 6 parts.
* Weizmann horses: per level, majority-label mIoU (horse / background).

Methods, scored by the same code: CAST (every hierarchy level, superpixels included); SLIC + RAG
mean-colour merging cut to CAST's segment counts on the same image (a count SLIC cannot reach is
recorded per level, never silently replaced); Felzenszwalb at five scales (its own counts); with
``--vit FOLDER`` the paper's ViT baseline read out by hierarchical k-means at CAST's counts; with
``--refine STEPS`` CAST again after ``Segmenter.refine`` on each image (same images, same segment
counts, no time budget so every image gets STEPS steps), in segmentation and recognition alike; with
``--compare NAME=CHECKPOINT`` another checkpoint at its own counts (e.g. the same weights without the
tree readout); with ``--matched NAME=CHECKPOINT`` another checkpoint's merge tree cut to CAST's counts on
every photo (e.g. the ``merge_tokens`` = 0 ablation at equal granularity). ``--slic-cache DIR`` keeps
SLIC+RAG's merge order per photo, so several runs merge each photo once.
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
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hierseg import Segmenter, load_segmenter
from hierseg.class_names import imagenet_class_names
from training.evaluation.datasets import EVALUATION_SETS, recognition_sets
from training.evaluation.methods import (
    Method,
    SharedForward,
    checkpoint_method,
    felzenszwalb_method,
    refined,
    refined_method,
    slic_rag,
    tree_matched_method,
    vit_method,
)
from training.evaluation.recognition import TEACHER_SIZE, evaluate_recognition, load_teacher
from training.evaluation.report import markdown, plot
from training.evaluation.segmentation import evaluate_segmentation

CLASSIC = ("slic", "felzenszwalb")  # the classic baselines, by their --baselines names


def set_names() -> list[str]:
    """What ``--only`` takes: the registered segmentation sets, then recognition."""
    return [*EVALUATION_SETS, "recognition"]


def parse_only(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(set_names()))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"--only takes a comma-separated subset of {','.join(set_names())}; got {text!r}")
    return chosen


def parse_classic(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(CLASSIC))
    if unknown:
        raise argparse.ArgumentTypeError(f"--baselines takes a comma-separated subset of {','.join(CLASSIC)} (or ''); got {text!r}")
    return chosen


def parse_named(text: str) -> tuple[str, str]:
    """``NAME=CHECKPOINT`` -> (name, checkpoint)."""
    name, sep, checkpoint = text.partition("=")
    if not sep or not name.strip() or not checkpoint.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=CHECKPOINT, got {text!r}")
    return name.strip(), checkpoint.strip()


def run(checkpoint: str | None, data: Path, limit: int | None = None, only: Sequence[str] | None = None,
        device: str = "auto", vit: Path | None = None, imagenet_photos_dir: Path | None = None,
        refine_steps: int | None = None, compare: Sequence[tuple[str, str]] = (),
        matched: Sequence[tuple[str, str]] = (), slic_cache: Path | None = None,
        classic: Sequence[str] = CLASSIC) -> dict[str, Any]:
    """Everything ``only`` asks for (default: every set), as the JSON-able results dict."""
    only = set_names() if only is None else only
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
    # Checkpoints at their own counts run on every set (a set without ground truth still shows their
    # counts and tree shape); the baselines cut to CAST's counts only where there is a truth to score.
    # Compared checkpoints read out the main one's forward pass where that gives their own result, and
    # without a labeller: only their segments are scored, and naming every node costs as much as the tree.
    shared = SharedForward(segmenter)

    def segments_only(path: str) -> Callable[[np.ndarray], Any]:
        other = load_segmenter(path, device=device)
        return shared.readout_with(Segmenter(other.model, other.config, other.device, labeller=None))

    own_counts: dict[str, Method] = {name: checkpoint_method(segments_only(path)) for name, path in compare}
    baselines: dict[str, Method] = {**own_counts, **{name: tree_matched_method(segments_only(path)) for name, path in matched}}
    if "slic" in classic:
        baselines["SLIC+RAG"] = slic_rag(slic_cache)
    if "felzenszwalb" in classic:
        baselines["Felzenszwalb"] = felzenszwalb_method
    if vit is not None:
        baselines["ViT+k-means"] = vit_method(vit)
    if refine_steps is not None:
        baselines[f"CAST refined ({refine_steps} steps)"] = refined_method(segmenter, refine_steps)
    datasets = [s.open(data) for s in EVALUATION_SETS.values() if s.name in only and (data / s.folder).exists()]
    datasets = [ds for ds in datasets if ds.items]  # e.g. a BSDS split whose photos are not there
    results: dict[str, Any] = {
        "checkpoint": str(checkpoint) if checkpoint is not None else "default",
        "limit": limit,
        "compared": {"own_counts": dict(compare), "matched": dict(matched)},
        # Boundary F is reported for CAST and the baselines; the compared checkpoints are region rows.
        "methods": evaluate_segmentation(shared, datasets, baselines, limit, without_ground_truth=set(own_counts),
                                         without_boundaries=[name for name, _ in [*compare, *matched]]),
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
                        help="folder holding " + ", ".join(dict.fromkeys(f"{s.folder}/" for s in EVALUATION_SETS.values()))
                        + ", tinyimagenet_animals59/, caltech101_160/")
    parser.add_argument("--out", type=Path, default=Path("eval"), help="output folder")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per set (default: full splits)")
    parser.add_argument("--only", type=parse_only, default=None, help=f"subset of {','.join(set_names())} (default: all)")
    parser.add_argument("--imagenet-photos", type=Path, default=None,
                        help="folder of ImageNet photos named imagenet_<n>_<class index>.jpg")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--vit", type=Path, default=None, help="a trained ViT baseline folder (training/vit_baseline.py)")
    parser.add_argument("--refine", type=int, default=None, metavar="STEPS",
                        help="also score CAST after STEPS steps of Segmenter.refine on each image")
    parser.add_argument("--compare", type=parse_named, action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="also score another checkpoint at its own counts (repeatable)")
    parser.add_argument("--matched", type=parse_named, action="append", default=[], metavar="NAME=CHECKPOINT",
                        help="also score another checkpoint's merge tree cut to CAST's counts on every photo (repeatable)")
    parser.add_argument("--slic-cache", type=Path, default=None, help="folder keeping SLIC+RAG's merge order per photo")
    parser.add_argument("--baselines", type=parse_classic, default=list(CLASSIC),
                        help=f"classic baselines to run, a subset of {','.join(CLASSIC)} (default: all)")
    args = parser.parse_args(argv)
    results = run(args.checkpoint, args.data, args.limit, args.only, args.device, args.vit, args.imagenet_photos,
                  args.refine, args.compare, args.matched, args.slic_cache, args.baselines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    (args.out / "results.md").write_text(table + "\n")
    plot(results, args.out / "results.png")
    print(table)


if __name__ == "__main__":
    main()
