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
import sys
from pathlib import Path
from typing import Any, Sequence

from hierseg import load_segmenter
from hierseg.class_names import imagenet_class_names
from training.evaluation.datasets import SEGMENTATION_SETS, recognition_sets
from training.evaluation.methods import Method, felzenszwalb_method, refined, refined_method, slic_rag_method, vit_method
from training.evaluation.recognition import TEACHER_SIZE, evaluate_recognition, load_teacher
from training.evaluation.report import markdown, plot
from training.evaluation.segmentation import evaluate_segmentation

DATASETS = ("bsds", "pascal", "horse", "recognition")


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
