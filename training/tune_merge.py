"""Choose the region-merging weights, view size and superpixel count on *training* splits only.

    python -m training.tune_merge CHECKPOINT --data ../shared/data [--images 40]

Region merging has no trained parameters of its own: its metric weighs colour, the stem's maps and the
blocks' tokens (``merge_colour``, ``merge_taps``, ``merge_tokens``). This script scores settings
through the shipped ``Segmenter`` on BSDS500 *train* (segmentation covering, best level) and
Pascal-Part person *train* (mean over the three ground-truth levels of the best level's majority-label
mIoU), so the evaluation splits stay unseen. It prints one row per setting.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path

import numpy as np

from hierseg import Segmenter, load_segmenter
from hierseg.imageio import load_image

from .metrics.ground_truth import load_bsds_ground_truth, load_pascal_part_levels
from .metrics.parts import majority_label_miou
from .metrics.regions import segmentation_covering

PASCAL_PART_N_CLASSES = (2, 3, 7)


def with_settings(segmenter: Segmenter, size: int, n_segments: int, colour: float, taps: tuple[float, ...],
                  tokens: float) -> Segmenter:
    """A Segmenter sharing the weights, with other merge weights, view size and superpixel count."""
    model_config = segmenter.config.model.replace(merge_colour=colour, merge_taps=list(taps), merge_tokens=tokens)
    config = dataclasses.replace(
        segmenter.config, model=model_config, input=dataclasses.replace(segmenter.config.input, size=size),
        superpixels=dataclasses.replace(segmenter.config.superpixels, n_segments=n_segments))
    tuned = Segmenter(segmenter.model, config, device=segmenter.device)
    for pool in tuned.model.pools:
        pool.descriptor_weights, pool.token_weight = (colour, *taps), tokens
    return tuned


def score(segmenter: Segmenter, data: Path, images: int) -> tuple[float, float]:
    bsds = data / "bsds500"
    covering = []
    for path in sorted((bsds / "images" / "train").glob("*.jpg"))[:images]:
        humans = load_bsds_ground_truth(bsds / "groundTruth" / "train" / f"{path.stem}.mat").segmentations
        maps = segmenter(load_image(path, max_side=None)).label_maps
        covering.append([segmentation_covering(m, humans) for m in maps])
    pascal = data / "pascal_part_person"
    parts = []
    for i in (pascal / "train_id.txt").read_text().split()[:images]:
        truth = load_pascal_part_levels(pascal / "gt_masks" / f"{i}.png")
        maps = segmenter(load_image(pascal / "JPEGImages" / f"{i}.jpg", max_side=None)).label_maps[:-1]
        parts.append([[majority_label_miou(m, g, n) for m in maps] for g, n in zip(truth, PASCAL_PART_N_CLASSES)])
    per_truth_best = np.mean(parts, axis=0).max(axis=1)  # best level for each ground-truth level
    return float(np.mean(covering, axis=0).max()), float(per_truth_best.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[320])
    parser.add_argument("--segments", type=int, nargs="+", default=[196])
    parser.add_argument("--colour", type=float, nargs="+", default=[1.0])
    parser.add_argument("--taps", type=str, nargs="+", default=["1,1,0"], help="comma-separated weights per stem tap")
    parser.add_argument("--tokens", type=float, nargs="+", default=[0.0])
    args = parser.parse_args()
    base = load_segmenter(args.checkpoint, device="cpu")
    print("| view size | superpixels | colour | taps | tokens | BSDS train covering (best level) | Pascal-Part train mIoU |")
    print("|---|---|---|---|---|---|---|")
    for size, n, colour, taps, tokens in itertools.product(args.sizes, args.segments, args.colour, args.taps, args.tokens):
        weights = tuple(float(w) for w in taps.split(","))
        cover, miou = score(with_settings(base, size, n, colour, weights, tokens), args.data, args.images)
        print(f"| {size} | {n} | {colour} | {taps} | {tokens} | {cover:.3f} | {miou:.3f} |", flush=True)


if __name__ == "__main__":
    main()
