"""Class evidence measured through ``Segmenter`` on photos the model never saw.

    python -m training.evaluation.labels [CHECKPOINT] --data ../shared/data --out docs/eval/labels [--every N]

* ImageNet photos (``imagenet_samples_dev``, one per class, ``labels.tsv``): the image prediction's
  top-1/top-5, and ``centre5``: the true class in the top-5 of the node under the photo's centre pixel
  (H//2, W//2) at the two coarsest levels.
* Weizmann horses: horse segments are nodes of the two coarsest levels covering >= 5% of the photo with
  >= 50% of their pixels on the horse mask; ``horse5`` is the share with 'sorrel' (ImageNet-1k's only
  horse) in their top-5. Over (photo, level) pairs with a horse and a background segment (< 50% on the
  horse): ``contrast`` is the share where the horse segments' mean 'sorrel' probability is above the
  background segments' mean (issue 15's definition), ``contrast_every`` the stricter share where every
  horse segment is above every background segment.
* Calibration: expected calibration error (15 bins) of the image prediction's and the centre nodes' top-1.

``--every N`` scores every N-th photo of each set (a quick look); the default scores all.
``--labeller key=value,...`` (repeatable) scores other labeller settings side by side: each photo goes
through the model once and every setting labels the same tree through ``Segmenter.readout``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image

from hierseg import load_segmenter
from hierseg.imageio import load_image
from hierseg.labeller import LabellerConfig, labeller_config

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


def labelled_trees(segmenter, path: Path, settings: list[LabellerConfig]) -> Iterator[tuple[int, Any]]:
    """(setting index, Hierarchy) of one photo for every labeller setting: one forward pass, one readout each."""
    prepared = segmenter.prepare(load_image(path))
    output = segmenter.forward([prepared])
    for i, config in enumerate(settings):
        segmenter.labeller.config = config
        yield i, segmenter.readout(prepared, output, 0)


def score_imagenet(segmenter, folder: Path, settings: list[LabellerConfig], every: int = 1) -> list[dict[str, Any]]:
    rows = (folder / "labels.tsv").read_text().splitlines()[1:][::every]
    scores = [{k: [] for k in ("top1", "top5", "centre", "image_conf", "node_conf", "node_right")} for _ in settings]
    for row in rows:
        name, target = row.split("\t")[0], int(row.split("\t")[1])
        for i, h in labelled_trees(segmenter, folder / name, settings):
            s = scores[i]
            s["top1"].append(int(h.prediction.argmax()) == target)
            s["top5"].append(in_top(h.prediction, target, 5))
            s["image_conf"].append(float(h.prediction.max()))
            height, width = h.shape
            for level in LEVELS:
                p = h.evidence[level][h.label_maps[level][height // 2, width // 2]]
                s["centre"].append(in_top(p, target, 5))
                s["node_conf"].append(float(p.max()))
                s["node_right"].append(int(p.argmax()) == target)
    return [{"n_photos": len(rows), "top1": float(np.mean(s["top1"])), "top5": float(np.mean(s["top5"])),
             "centre5": float(np.mean(s["centre"])),
             "ece_image": expected_calibration_error(np.array(s["image_conf"]), np.array(s["top1"], float)),
             "ece_centre_nodes": expected_calibration_error(np.array(s["node_conf"]), np.array(s["node_right"], float))}
            for s in scores]


def score_horses(segmenter, folder: Path, settings: list[LabellerConfig], every: int = 1) -> list[dict[str, Any]]:
    sorrel = segmenter.class_names.index("sorrel")
    scores = [{"hits": [], "pairs": 0, "mean_above": 0, "every_above": 0} for _ in settings]
    for path in sorted((folder / "horse").glob("*.jpg"))[::every]:
        mask_image = Image.open(folder / "mask" / f"{path.stem}.png")
        for i, h in labelled_trees(segmenter, path, settings):
            s = scores[i]
            mask = np.asarray(mask_image.resize(h.shape[::-1], Image.NEAREST)) > 0
            for level in LEVELS:
                label_map = h.label_maps[level]
                area = np.bincount(label_map.ravel(), minlength=h.n_nodes(level))
                on = np.bincount(label_map.ravel(), weights=mask.ravel(), minlength=h.n_nodes(level)) / np.maximum(area, 1)
                horse = (area / label_map.size >= 0.05) & (on >= 0.5)
                background = on < 0.5
                s["hits"] += [in_top(h.evidence[level][j], sorrel, 5) for j in np.flatnonzero(horse)]
                support = h.evidence[level][:, sorrel]
                if horse.any() and background.any():
                    s["pairs"] += 1
                    s["mean_above"] += int(support[horse].mean() > support[background].mean())
                    s["every_above"] += int(support[horse].min() > support[background].max())
    return [{"n_horse_segments": len(s["hits"]), "horse5": float(np.mean(s["hits"])) if s["hits"] else float("nan"),
             "n_contrast_pairs": s["pairs"],
             "contrast": s["mean_above"] / s["pairs"] if s["pairs"] else float("nan"),
             "contrast_every": s["every_above"] / s["pairs"] if s["pairs"] else float("nan")}
            for s in scores]


def setting_name(config: LabellerConfig, shipped: LabellerConfig) -> str:
    """What differs from the shipped setting, e.g. ``token_weight=0, node_temperature=0.948``."""
    changed = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
               for k, v in config.to_dict().items() if v != shipped.to_dict().get(k)]
    return ", ".join(changed) or "shipped"


def parse_setting(text: str, base: LabellerConfig) -> LabellerConfig:
    """``key=value,...`` over ``base`` (numbers as floats, ``kind`` as text)."""
    values: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        if key.strip() not in base.to_dict():
            raise SystemExit(f"unknown labeller setting {key!r}; known: {', '.join(base.to_dict())}")
        values[key.strip()] = value.strip() if key.strip() == "kind" else float(value)
    return labeller_config({**base.to_dict(), **values})  # a kind is a class: rebuild, not replace


def markdown(results: dict[str, Any]) -> str:
    subset = f", every {results['every']}th photo" if results["every"] > 1 else ""
    command = ("`python -m training.evaluation.labels --data ../shared/data --out docs/eval/labels"
               + "".join(f" --labeller {s}" for s in results["compared"])
               + (f" --every {results['every']}`" if results["every"] > 1 else "`"))
    lines = [f"# Class evidence through `Segmenter` ({results['checkpoint']}, labeller `{results['labeller']['kind']}`{subset})",
             "", command, "",
             "| labeller setting | ImageNet photos | top-1 | top-5 | centre node top-5 (2 coarsest levels) | ECE photo | ECE centre nodes |",
             "|---|---|---|---|---|---|---|"]
    for row in results["settings"]:
        im = row["imagenet"]
        lines.append(f"| {row['name']} | {im['n_photos']} | {im['top1']:.1%} | {im['top5']:.1%} | {im['centre5']:.1%} "
                     f"| {im['ece_image']:.3f} | {im['ece_centre_nodes']:.3f} |")
    lines += ["", "| labeller setting | horse segments | sorrel in top-5 | contrast pairs | horse mean > background mean "
                  "| every horse segment > every background segment |", "|---|---|---|---|---|---|"]
    for row in results["settings"]:
        horse = row["horse"]
        lines.append(f"| {row['name']} | {horse['n_horse_segments']} | {horse['horse5']:.1%} | {horse['n_contrast_pairs']} "
                     f"| {horse['contrast']:.1%} | {horse['contrast_every']:.1%} |")
    lines += ["", "Definitions in `training/evaluation/labels.py`; reliability of the calibrated evidence: `reliability.png`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default=None)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("docs/eval/labels"))
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--labeller", action="append", default=[], metavar="KEY=VALUE,...",
                        help="another labeller setting to score beside the shipped one (repeatable)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    segmenter = load_segmenter(args.checkpoint, device=args.device)
    if segmenter.labeller is None:
        raise SystemExit("this checkpoint has no labeller: nothing to score")
    shipped = segmenter.labeller.config
    settings = [shipped] + [parse_setting(text, shipped) for text in args.labeller]
    t0 = time.perf_counter()
    imagenet = score_imagenet(segmenter, args.data / "imagenet_samples_dev", settings, args.every)
    horse = score_horses(segmenter, args.data / "weizmann_horse", settings, args.every)
    segmenter.labeller.config = shipped
    results = {"checkpoint": segmenter.config.name, "labeller": shipped.to_dict(), "every": args.every,
               "compared": args.labeller,
               "settings": [{"name": setting_name(c, shipped), "labeller": c.to_dict(), "imagenet": i, "horse": h}
                            for c, i, h in zip(settings, imagenet, horse)],
               "seconds": round(time.perf_counter() - t0, 1)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
