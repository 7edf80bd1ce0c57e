"""Class evidence measured through ``Segmenter`` on photos the model never saw.

    python -m training.evaluation.labels [CHECKPOINT] --data ../shared/data --out docs/eval/labels [--every N]

* ImageNet photos (``imagenet_samples_dev``, one per class, ``labels.tsv``): the image prediction's
  top-1/top-5, and ``centre5``: the true class in the top-5 of the node under the photo's centre pixel
  (H//2, W//2) at the two coarsest levels.
* Weizmann horses: horse segments are nodes of the two coarsest levels covering >= 5% of the photo with
  >= 50% of their pixels on the horse mask; ``horse5`` is the share with 'sorrel' (ImageNet-1k's only
  horse) in their top-5. ``contrast``: over (photo, level) pairs with a horse and a background segment
  (< 50% on the horse), the share where every horse segment gives 'sorrel' more probability than every
  background segment.
* Calibration: expected calibration error (15 bins) of the image prediction's and the centre nodes' top-1.

``--every N`` scores every N-th photo of each set (a quick look); the default scores all.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from hierseg import load_segmenter
from hierseg.imageio import load_image

LEVELS = (0, 1)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(total)


def in_top(p: np.ndarray, target: int, k: int) -> bool:
    return bool(target in np.argsort(-p)[:k])


def score_imagenet(segmenter, folder: Path, every: int = 1) -> dict[str, Any]:
    rows = (folder / "labels.tsv").read_text().splitlines()[1:][::every]
    top1, top5, centre, image_conf, node_conf, node_right = [], [], [], [], [], []
    for row in rows:
        name, target = row.split("\t")[0], int(row.split("\t")[1])
        h = segmenter(load_image(folder / name))
        top1.append(int(h.prediction.argmax()) == target)
        top5.append(in_top(h.prediction, target, 5))
        image_conf.append(float(h.prediction.max()))
        height, width = h.shape
        for level in LEVELS:
            p = h.evidence[level][h.label_maps[level][height // 2, width // 2]]
            centre.append(in_top(p, target, 5))
            node_conf.append(float(p.max()))
            node_right.append(int(p.argmax()) == target)
    return {"n_photos": len(rows), "top1": float(np.mean(top1)), "top5": float(np.mean(top5)),
            "centre5": float(np.mean(centre)),
            "ece_image": expected_calibration_error(np.array(image_conf), np.array(top1, float)),
            "ece_centre_nodes": expected_calibration_error(np.array(node_conf), np.array(node_right, float))}


def score_horses(segmenter, folder: Path, every: int = 1) -> dict[str, Any]:
    sorrel = segmenter.class_names.index("sorrel")
    hits, pairs, good = [], 0, 0
    for path in sorted((folder / "horse").glob("*.jpg"))[::every]:
        h = segmenter(load_image(path))
        mask = np.asarray(Image.open(folder / "mask" / f"{path.stem}.png").resize(h.shape[::-1], Image.NEAREST)) > 0
        for level in LEVELS:
            label_map = h.label_maps[level]
            area = np.bincount(label_map.ravel(), minlength=h.n_nodes(level))
            on = np.bincount(label_map.ravel(), weights=mask.ravel(), minlength=h.n_nodes(level)) / np.maximum(area, 1)
            horse = (area / label_map.size >= 0.05) & (on >= 0.5)
            background = on < 0.5
            hits += [in_top(h.evidence[level][i], sorrel, 5) for i in np.flatnonzero(horse)]
            support = h.evidence[level][:, sorrel]
            if horse.any() and background.any():
                pairs += 1
                good += int(support[horse].min() > support[background].max())
    return {"n_horse_segments": len(hits), "horse5": float(np.mean(hits)) if hits else float("nan"),
            "n_contrast_pairs": pairs, "contrast": good / pairs if pairs else float("nan")}


def markdown(results: dict[str, Any]) -> str:
    im, horse = results["imagenet"], results["horse"]
    subset = f", every {results['every']}th photo" if results["every"] > 1 else ""
    return "\n".join([
        f"# Class evidence through `Segmenter` ({results['checkpoint']}, labeller `{results['labeller']['kind']}`{subset})",
        "",
        "`python -m training.evaluation.labels --data ../shared/data --out docs/eval/labels"
        + (f" --every {results['every']}`" if results["every"] > 1 else "`"),
        "",
        "| ImageNet photos | top-1 | top-5 | centre node top-5 (2 coarsest levels) | ECE photo | ECE centre nodes |",
        "|---|---|---|---|---|---|",
        f"| {im['n_photos']} | {im['top1']:.1%} | {im['top5']:.1%} | {im['centre5']:.1%} | {im['ece_image']:.3f} | {im['ece_centre_nodes']:.3f} |",
        "",
        "| Weizmann horses | horse segments | sorrel in top-5 | contrast pairs | every horse segment > every background segment |",
        "|---|---|---|---|---|",
        f"| | {horse['n_horse_segments']} | {horse['horse5']:.1%} | {horse['n_contrast_pairs']} | {horse['contrast']:.1%} |",
        "",
        "Definitions in `training/evaluation/labels.py`; reliability of the calibrated evidence: `reliability.png`.",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default=None)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/eval/labels"))
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    segmenter = load_segmenter(args.checkpoint, device=args.device)
    t0 = time.perf_counter()
    results = {"checkpoint": segmenter.config.name, "labeller": segmenter.labeller.describe() if segmenter.labeller else None,
               "every": args.every,
               "imagenet": score_imagenet(segmenter, args.data / "imagenet_samples_dev", args.every),
               "horse": score_horses(segmenter, args.data / "weizmann_horse", args.every)}
    results["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
