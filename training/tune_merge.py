"""Choose the region-merging weights, view size and superpixel count on *training* splits only.

    python -m training.tune_merge CHECKPOINT --data ../shared/data [--images 40]

Region merging has no trained parameters of its own: its metric weighs colour, the stem's maps and the
blocks' tokens (``merge_colour``, ``merge_taps``, ``merge_tokens``). This script scores settings
through the shipped ``Segmenter`` on BSDS500 *train* (segmentation covering and boundary F at the
best level), the only training split here with masks, so the evaluation splits stay unseen. It prints
one row per setting.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path

import numpy as np

from hierseg import Segmenter, load_segmenter
from hierseg.imageio import load_image

from .metrics.boundaries import evaluate_segmentation_boundaries, summarize_boundaries
from .metrics.ground_truth import load_bsds_ground_truth
from .metrics.regions import segmentation_covering


def with_settings(segmenter: Segmenter, size: int, n_segments: int, colour: float, taps: tuple[float, ...],
                  tokens: float) -> Segmenter:
    """A Segmenter sharing the weights, with other merge weights, view size and superpixel count."""
    model_config = segmenter.config.model.replace(merge_colour=colour, merge_taps=list(taps), merge_tokens=tokens)
    config = dataclasses.replace(
        segmenter.config, model=model_config, input=dataclasses.replace(segmenter.config.input, size=size),
        superpixels=dataclasses.replace(segmenter.config.superpixels, n_segments=n_segments))
    tuned = Segmenter(segmenter.model, config, device=segmenter.device, labeller=segmenter.labeller)
    for pool in tuned.model.pools:
        pool.descriptor_weights, pool.token_weight = (colour, *taps), tokens
    return tuned


def score(segmenter: Segmenter, data: Path, images: int) -> tuple[float, float]:
    """BSDS500 train: mean covering and boundary F of the best level (ODS over the levels)."""
    bsds = data / "bsds500"
    covering, boundary = [], []
    for path in sorted((bsds / "images" / "train").glob("*.jpg"))[:images]:
        truth = load_bsds_ground_truth(bsds / "groundTruth" / "train" / f"{path.stem}.mat")
        maps = segmenter(load_image(path, max_side=None)).label_maps
        covering.append([segmentation_covering(m, truth.segmentations) for m in maps])
        boundary.append(evaluate_segmentation_boundaries(maps, truth.boundaries))
    best_f = summarize_boundaries(boundary, interpolate=False).ods.f
    return float(np.mean(covering, axis=0).max()), float(best_f)


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
    print("| view size | superpixels | colour | taps | tokens | BSDS train covering (best level) | BSDS train boundary F (best level) |")
    print("|---|---|---|---|---|---|---|")
    for size, n, colour, taps, tokens in itertools.product(args.sizes, args.segments, args.colour, args.taps, args.tokens):
        weights = tuple(float(w) for w in taps.split(","))
        cover, f = score(with_settings(base, size, n, colour, weights, tokens), args.data, args.images)
        print(f"| {size} | {n} | {colour} | {taps} | {tokens} | {cover:.3f} | {f:.3f} |", flush=True)


if __name__ == "__main__":
    main()
