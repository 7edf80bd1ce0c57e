"""Choose the merge tree's border term (``TreeConfig.border_sigma``, ``border_eps``, ``border_power``) on
training splits only.

    python -m training.tune_tree CHECKPOINT --data ../shared/data [--bsds 40] [--sigma 1 2 3] [--eps 0.05]
        [--power 0.5 1 2]

The model runs once per photo (``Segmenter.prepare`` + ``forward``: the tree's features, areas and
neighbours, and the view the edge map is read on); each setting then only rebuilds the trees. Scored on
BSDS500 *train* (the merge tree as an ultrametric: covering ODS / OIS over the fixed height grid of
``training.metrics.ultrametric``) and on the *dev* halves (the first halves, ``ObjectShareScorer``) of
Weizmann horses and Pascal-Part people (photos where people cover >= 10%): the share of photos with ONE
node of the tree at IoU >= 0.7 with the object, and with one segment of the coarsest display level
when the cut heights are calibrated on the same BSDS train photos (``train_grouping.heights_for_counts``).
Prints one Markdown row per setting, the border term off first. The second halves stay held out.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hierseg import Segmenter, load_segmenter
from hierseg.borders import colour_edges, region_borders
from hierseg.hierarchy.merge_tree import MergeTree, TreeConfig, display_levels, ward_tree
from hierseg.imageio import load_image

from .evaluation.datasets import PEOPLE_MIN_COVER, pascal_part_val, weizmann_horses
from .metrics.ground_truth import load_bsds_ground_truth
from .metrics.objects import WHOLE_IOU, segment_ious, tree_ious
from .metrics.regions import summarize_regions
from .metrics.ultrametric import HEIGHTS, evaluate_tree
from .train_grouping import heights_for_counts



def photo_inputs(segmenter: Segmenter, path: Path) -> dict[str, Any]:
    """What the tree needs of one photo, from one pass of the model (as ``Segmenter._merge_tree`` reads it)."""
    prepared = segmenter.prepare(load_image(path, max_side=None))
    output = segmenter.forward([prepared])
    n = prepared.view.num_superpixels
    areas = output.regions.areas[0, :n].double().numpy()
    with torch.inference_mode():
        features = segmenter.model.tree_features(output)[0, :n].double().numpy()
    edges = np.argwhere(np.triu(output.regions.adjacency[0, :n, :n].numpy(), 1))
    return {"features": features, "areas": areas / areas.sum(), "edges": edges, "view_rgb": prepared.view.rgb,
            "view_superpixels": prepared.view.superpixels, "leaves": prepared.superpixels}


def build_tree(inputs: dict[str, Any], config: TreeConfig, edge_cache: dict[float, np.ndarray]) -> MergeTree:
    border = None
    if config.border_sigma > 0:
        if config.border_sigma not in edge_cache:
            edge_cache[config.border_sigma] = colour_edges(inputs["view_rgb"], config.border_sigma)
        border = region_borders(inputs["view_superpixels"], edge_cache[config.border_sigma])
    return ward_tree(inputs["features"], inputs["areas"], inputs["edges"], config.size_power, config.small_area,
                     border, config.border_eps, config.border_power)


def score(config: TreeConfig, bsds: list[dict[str, Any]], objects: dict[str, list[dict[str, Any]]],
          level_counts: tuple[int, ...]) -> dict[str, float]:
    """BSDS train ultrametric covering, cut heights for ``level_counts``, and whole-object shares on dev."""
    trees = [build_tree(p, config, p["edge_maps"]) for p in bsds]
    evals = [evaluate_tree(p["leaves"], t, p["humans"])[0] for p, t in zip(bsds, trees)]
    summary = summarize_regions(evals, HEIGHTS)
    heights = heights_for_counts(trees, level_counts)
    out = {"covering_ods": summary.cover_ods, "covering_ois": summary.cover_ois, "heights": heights}
    for name, photos in objects.items():
        coarse, anywhere = [], []
        for p in photos:
            tree = build_tree(p, config, p["edge_maps"])
            anywhere.append(tree_ious(p["leaves"], tree.merges, p["mask"]).max() >= WHOLE_IOU)
            top = display_levels(tree, heights, config.min_segments, config.split_chains)[0]
            coarse.append(segment_ious(top[p["leaves"]], p["mask"]).max() >= WHOLE_IOU)
        out[f"{name}_coarse"], out[f"{name}_tree"] = float(np.mean(coarse)), float(np.mean(anywhere))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--bsds", type=int, default=40, help="BSDS500 train photos (the first N)")
    parser.add_argument("--objects", type=int, default=None, help="at most N dev photos per object set")
    parser.add_argument("--sigma", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--eps", type=float, nargs="+", default=[0.05])
    parser.add_argument("--power", type=float, nargs="+", default=[1.0])
    parser.add_argument("--level-counts", type=int, nargs="+", default=[4, 10, 25])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    segmenter = load_segmenter(args.checkpoint, device="cpu")
    segmenter = Segmenter(segmenter.model, segmenter.config, "cpu", labeller=None)
    base = segmenter.config.tree
    if base is None:
        raise SystemExit(f"{args.checkpoint} has no merge tree to tune")
    root = args.data / "bsds500"
    bsds = []
    for path in sorted((root / "images" / "train").glob("*.jpg"))[:args.bsds]:
        humans = load_bsds_ground_truth(root / "groundTruth" / "train" / f"{path.stem}.mat").segmentations
        bsds.append({**photo_inputs(segmenter, path), "humans": humans, "edge_maps": {}})
    objects: dict[str, list[dict[str, Any]]] = {}
    for name, ds, min_cover in (("horses", weizmann_horses(args.data / "weizmann_horse"), 0.0),
                                ("people", pascal_part_val(args.data / "pascal_part_person"), PEOPLE_MIN_COVER)):
        objects[name] = []
        for image, gt in ds.items[: len(ds.items) // 2][: args.objects]:  # the dev half only
            mask = np.asarray(ds.load_gt(gt)[0]) > 0
            if mask.mean() >= min_cover and mask.any():
                objects[name].append({**photo_inputs(segmenter, image), "mask": mask, "edge_maps": {}})
    counts = tuple(args.level_counts)
    print(f"BSDS500 train {len(bsds)} photos; dev horses {len(objects['horses'])}, dev people {len(objects['people'])}; "
          f"cut heights calibrated on the same BSDS photos to {counts} segments")
    print("| sigma | eps | power | BSDS train tree covering ODS / OIS | horses coarsest / tree | people coarsest / tree | cut heights |")
    print("|---|---|---|---|---|---|---|")
    settings = [dataclasses.replace(base, border_sigma=0.0)]
    settings += [dataclasses.replace(base, border_sigma=s, border_eps=e, border_power=p)
                 for s, e, p in itertools.product(args.sigma, args.eps, args.power)]
    for config in settings:
        r = score(config, bsds, objects, counts)
        label = ("off", "—", "—") if config.border_sigma == 0 else (config.border_sigma, config.border_eps, config.border_power)
        print(f"| {label[0]} | {label[1]} | {label[2]} | {r['covering_ods']:.3f} / {r['covering_ois']:.3f} | "
              f"{r['horses_coarse']:.2f} / {r['horses_tree']:.2f} | {r['people_coarse']:.2f} / {r['people_tree']:.2f} | "
              + ", ".join(f"{h:.3g}" for h in r["heights"]) + " |", flush=True)


if __name__ == "__main__":
    main()
