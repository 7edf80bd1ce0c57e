"""Score part-whole hierarchies against human ground truth, ours and classic baselines in one table.

    python -m training.evaluate CHECKPOINT --data ../shared/data [--out eval/] [--limit N]

Datasets (each skipped when absent):
* BSDS500 val: region metrics (covering, PRI, VI at ODS and OIS over the levels) and boundary
  precision/recall/F (ODS/OIS over the levels, no interpolation between levels).
* Pascal-Part person: per level, majority-label mIoU against the 3 ground-truth levels (body;
  upper/lower body; 6 parts).
* Weizmann horses: per level, majority-label mIoU (horse / background).

Methods, scored by the same code: CAST (every hierarchy level, superpixels included); SLIC + RAG
mean-colour merging cut to exactly CAST's segment counts on the same image; Felzenszwalb at several
scales; with ``--vit FOLDER``, the paper's ViT baseline (a CAST-sized ViT trained by the same recipe,
``training/vit_baseline.py``) read out by hierarchical k-means at CAST's counts. Majority-label mIoU rises with the number of segments, so compare at equal counts: every
row reports its mean number of segments. Writes ``results.json``, ``results.md`` and ``results.png``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from hierseg import load_segmenter
from hierseg.imageio import load_image

from .baselines import felzenszwalb_levels, slic_rag_levels
from .metrics.boundaries import evaluate_segmentation_boundaries, summarize_boundaries
from .metrics.ground_truth import (
    PASCAL_PART_N_CLASSES,
    WEIZMANN_N_CLASSES,
    load_bsds_ground_truth,
    load_pascal_part_levels,
    load_weizmann_mask,
)
from .metrics.parts import majority_label_confusion, miou_from_confusion
from .metrics.regions import evaluate_regions, summarize_regions

LabelMaps = list[np.ndarray]
# A method maps (rgb, CAST's segment counts on this image) to label maps, coarsest first.
Method = Callable[[np.ndarray, Sequence[int]], LabelMaps]
FELZENSZWALB_SCALES = (30000.0, 10000.0, 3000.0, 1000.0, 300.0)
SLIC_SUPERPIXELS = 400


@dataclass
class MethodScores:
    """Per-dataset accumulators of one method."""

    name: str
    bsds_regions: list = field(default_factory=list)
    bsds_boundaries: list = field(default_factory=list)
    bsds_counts: list = field(default_factory=list)
    part_confusions: dict = field(default_factory=dict)  # (level, gt level) -> confusion
    part_counts: list = field(default_factory=list)
    horse_confusions: dict = field(default_factory=dict)
    horse_counts: list = field(default_factory=list)
    seconds: float = 0.0


def counts_of(levels: LabelMaps) -> list[int]:
    return [int(m.max()) + 1 for m in levels]


def slic_rag_method(rgb: np.ndarray, counts: Sequence[int]) -> LabelMaps:
    """SLIC+RAG cut to CAST's counts (deduplicated, capped at what SLIC produced)."""
    wanted = sorted({min(int(c), SLIC_SUPERPIXELS) for c in counts})
    try:
        maps = dict(zip(wanted, slic_rag_levels(rgb, wanted, n_superpixels=SLIC_SUPERPIXELS)))
    except ValueError:
        # SLIC made fewer superpixels than asked, or the region graph cannot merge down that far:
        # fall back to the feasible range and take the nearest available count.
        maps = {}
        for c in wanted:
            for attempt in (c, max(1, c - 10), c + 10):
                try:
                    maps[c] = slic_rag_levels(rgb, [attempt], n_superpixels=SLIC_SUPERPIXELS)[0]
                    break
                except ValueError:
                    continue
    return [maps[min(int(c), SLIC_SUPERPIXELS)] for c in counts if min(int(c), SLIC_SUPERPIXELS) in maps]


def felzenszwalb_method(rgb: np.ndarray, counts: Sequence[int]) -> LabelMaps:
    return felzenszwalb_levels(rgb, FELZENSZWALB_SCALES)


def bsds_items(root: Path, limit: int | None) -> Iterator[tuple[Path, Path]]:
    images = sorted((root / "images" / "val").glob("*.jpg"))[:limit]
    for image in images:
        yield image, root / "groundTruth" / "val" / f"{image.stem}.mat"


def pascal_items(root: Path, limit: int | None) -> Iterator[tuple[Path, Path]]:
    ids = (root / "val_id.txt").read_text().split()
    for i in ids[:limit]:
        if (root / "JPEGImages" / f"{i}.jpg").exists():
            yield root / "JPEGImages" / f"{i}.jpg", root / "gt_masks" / f"{i}.png"


def horse_items(root: Path, limit: int | None) -> Iterator[tuple[Path, Path]]:
    for image in sorted((root / "horse").glob("*.jpg"))[:limit]:
        yield image, root / "mask" / f"{image.stem}.png"


def run(checkpoint: str | None, data: Path, limit: int | None, device: str = "auto", vit: Path | None = None) -> dict:
    segmenter = load_segmenter(checkpoint, device=device)
    baselines: dict[str, Method] = {"SLIC+RAG": slic_rag_method, "Felzenszwalb": felzenszwalb_method}
    if vit is not None:
        from .vit_baseline import load_vit, vit_kmeans_levels

        vit_model = load_vit(vit)
        baselines["ViT+k-means"] = lambda rgb, counts: vit_kmeans_levels(vit_model, rgb, list(counts))
    scores = {name: MethodScores(name) for name in ["CAST", *baselines]}

    def all_levels(rgb: np.ndarray) -> dict[str, LabelMaps]:
        t0 = time.perf_counter()
        ours = segmenter(rgb).label_maps
        scores["CAST"].seconds += time.perf_counter() - t0
        out = {"CAST": ours}
        for name, method in baselines.items():
            t0 = time.perf_counter()
            out[name] = method(rgb, counts_of(ours))
            scores[name].seconds += time.perf_counter() - t0
        return out

    if (data / "bsds500").exists():
        for image, gt_path in tqdm(list(bsds_items(data / "bsds500", limit)), desc="BSDS500 val"):
            gt = load_bsds_ground_truth(gt_path)
            for name, levels in all_levels(load_image(image, max_side=None)).items():
                scores[name].bsds_regions.append(evaluate_regions(levels, gt.segmentations))
                scores[name].bsds_boundaries.append(evaluate_segmentation_boundaries(levels, gt.boundaries))
                scores[name].bsds_counts.append(counts_of(levels))
    if (data / "pascal_part_person").exists():
        for image, gt_path in tqdm(list(pascal_items(data / "pascal_part_person", limit)), desc="Pascal-Part"):
            gts = load_pascal_part_levels(gt_path)
            for name, levels in all_levels(load_image(image, max_side=None)).items():
                s = scores[name]
                s.part_counts.append(counts_of(levels))
                for li, level in enumerate(levels):
                    for gi, (g, n) in enumerate(zip(gts, PASCAL_PART_N_CLASSES)):
                        c = majority_label_confusion(level, g, n)
                        s.part_confusions[li, gi] = s.part_confusions.get((li, gi), 0) + c
    if (data / "weizmann_horse").exists():
        for image, gt_path in tqdm(list(horse_items(data / "weizmann_horse", limit)), desc="Weizmann horses"):
            mask = load_weizmann_mask(gt_path)
            for name, levels in all_levels(load_image(image, max_side=None)).items():
                s = scores[name]
                s.horse_counts.append(counts_of(levels))
                for li, level in enumerate(levels):
                    c = majority_label_confusion(level, mask, WEIZMANN_N_CLASSES)
                    s.horse_confusions[li] = s.horse_confusions.get(li, 0) + c
    return summarize(scores, segmenter.config.name)


def _mean_counts(counts: list[list[int]]) -> list[float]:
    width = min(len(c) for c in counts)
    return [float(np.mean([c[i] for c in counts])) for i in range(width)]


def summarize(scores: dict[str, MethodScores], checkpoint: str) -> dict:
    results: dict = {"checkpoint": checkpoint, "methods": {}}
    for name, s in scores.items():
        r: dict = {"seconds_per_image": None}
        n_images = len(s.bsds_counts) + len(s.part_counts) + len(s.horse_counts)
        if n_images:
            r["seconds_per_image"] = s.seconds / n_images
        if s.bsds_regions:
            width = min(len(e.pri) for e in s.bsds_regions)
            regions = summarize_regions([_trim_regions(e, width) for e in s.bsds_regions])
            bounds = summarize_boundaries([_trim_bounds(e, width) for e in s.bsds_boundaries], interpolate=False)
            r["bsds"] = {
                "images": len(s.bsds_regions),
                "segments_per_level": _mean_counts(s.bsds_counts),
                "covering_per_level": regions.covering.tolist(),
                "covering_ods": regions.cover_ods, "covering_ois": regions.cover_ois,
                "pri_ods": regions.pri_ods, "pri_ois": regions.pri_ois,
                "vi_ods": regions.voi_ods, "vi_ois": regions.voi_ois,
                "boundary_f_ods": bounds.ods.f, "boundary_f_ois": bounds.ois.f,
                "boundary_f_per_level": bounds.f.tolist(),
            }
        if s.part_confusions:
            levels = sorted({li for li, _ in s.part_confusions})
            r["pascal_part"] = {
                "images": len(s.part_counts),
                "segments_per_level": _mean_counts(s.part_counts),
                "miou_per_level": [[miou_from_confusion(s.part_confusions[li, gi]) for gi in range(3)] for li in levels],
            }
        if s.horse_confusions:
            r["horse"] = {
                "images": len(s.horse_counts),
                "segments_per_level": _mean_counts(s.horse_counts),
                "miou_per_level": [miou_from_confusion(s.horse_confusions[li]) for li in sorted(s.horse_confusions)],
            }
        results["methods"][name] = r
    return results


def _trim_regions(e, width):
    """Keep the first ``width`` levels (methods may return one level fewer on a degenerate image)."""
    return type(e)(**{k: (v[:width] if isinstance(v, np.ndarray) else v) for k, v in e.__dict__.items()})


def _trim_bounds(e, width):
    return type(e)(**{k: v[:width] for k, v in e.__dict__.items()})


def _level_table(methods: dict, key: str, title: str, columns: list[str]) -> list[str]:
    """Markdown rows (method, level, segments, mIoU per ground-truth level) of one part/object dataset."""
    if not any(key in m for m in methods.values()):
        return []
    lines = [title, "", "| method | level | segments | " + " | ".join(columns) + " |", "|---" * (3 + len(columns)) + "|"]
    for name, m in methods.items():
        if key in m:
            for level, (count, scores) in enumerate(zip(m[key]["segments_per_level"], m[key]["miou_per_level"])):
                scores = scores if isinstance(scores, list) else [scores]
                lines.append(f"| {name} | {level} | {count:.1f} | " + " | ".join(f"{v:.3f}" for v in scores) + " |")
    return lines + [""]


def markdown(results: dict) -> str:
    methods = results["methods"]
    lines = [f"Checkpoint `{results['checkpoint']}`.", ""]
    if any("bsds" in m for m in methods.values()):
        lines += ["**BSDS500 val** (ODS / OIS over the levels; covering and PRI higher is better, VI lower)", "",
                  "| method | segments per level | covering | PRI | VI | boundary F |", "|---|---|---|---|---|---|"]
        for name, m in methods.items():
            if "bsds" in m:
                b = m["bsds"]
                counts = ", ".join(f"{c:.0f}" for c in b["segments_per_level"])
                lines.append(f"| {name} | {counts} | {b['covering_ods']:.3f} / {b['covering_ois']:.3f} | "
                             f"{b['pri_ods']:.3f} / {b['pri_ois']:.3f} | {b['vi_ods']:.3f} / {b['vi_ois']:.3f} | "
                             f"{b['boundary_f_ods']:.3f} / {b['boundary_f_ois']:.3f} |")
        lines += ["", "BSDS500 covering per level (segments → covering):", ""]
        for name, m in methods.items():
            if "bsds" in m:
                b = m["bsds"]
                pairs = ", ".join(f"{c:.0f} → {v:.3f}" for c, v in zip(b["segments_per_level"], b["covering_per_level"]))
                lines.append(f"- {name}: {pairs}")
        lines.append("")
    lines += _level_table(methods, "pascal_part", "**Pascal-Part person** (majority-label mIoU per level, against "
                          "body / upper-lower body / 6 parts)", ["body", "upper/lower", "parts"])
    lines += _level_table(methods, "horse", "**Weizmann horses** (majority-label mIoU per level, horse / background)",
                          ["mIoU"])
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """Per-level score against number of segments, one line per method, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("bsds", "covering_per_level", "BSDS500 val: covering", None),
              ("pascal_part", "miou_per_level", "Pascal-Part: parts mIoU", 2),
              ("horse", "miou_per_level", "Weizmann horses: mIoU", None)]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.2))
    for ax, (key, metric, title, column) in zip(axes, panels):
        for name, m in results["methods"].items():
            if key not in m:
                continue
            y = m[key][metric]
            y = [row[column] for row in y] if column is not None else y
            ax.plot(m[key]["segments_per_level"][:len(y)], y, marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("segments per image (mean)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default=None, help="checkpoint name or path (default: shipped)")
    parser.add_argument("--data", type=Path, required=True, help="folder holding bsds500/, pascal_part_person/, weizmann_horse/")
    parser.add_argument("--out", type=Path, default=Path("eval"), help="output folder")
    parser.add_argument("--limit", type=int, default=None, help="at most this many images per dataset")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--vit", type=Path, default=None, help="a trained ViT baseline folder (training/vit_baseline.py)")
    args = parser.parse_args(argv)
    results = run(args.checkpoint, args.data, args.limit, args.device, args.vit)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    (args.out / "results.md").write_text(table + "\n")
    plot(results, args.out / "results.png")
    print(table)


if __name__ == "__main__":
    main()
