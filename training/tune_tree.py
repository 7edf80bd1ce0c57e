"""Choose the merge tree's cost scalars on training splits only: the border term (``TreeConfig.border_sigma``,
``border_eps``, ``border_power``) and the size factor (``size_power``, ``small_area``, ``small_power``).

    python -m training.tune_tree CHECKPOINT --data ../shared/data [--bsds 40] [--sigma 1 2 3] [--eps 0.05]
        [--power 0.5 1 2] [--size-power 0.5 0.7] [--small-area 0.02 0.08] [--small-power 1 1.3]

The model runs once per photo (``Segmenter.prepare`` + ``forward``: the tree's features, areas and
neighbours, and the view the edge map is read on); each setting then only rebuilds the trees. Scored on
BSDS500 *train* (the merge tree as an ultrametric: covering ODS / OIS over the fixed height grid of
``training.metrics.ultrametric``) and on the *dev* halves (the first halves, ``ObjectShareScorer``) of
Weizmann horses and Pascal-Part people (photos where people cover >= 10%): the share of photos with ONE
node of the tree at IoU >= 0.7 with the object, and with one segment of the coarsest display level
when the cut heights are calibrated on the same BSDS train photos (``train_grouping.heights_for_counts``),
and the share of the display levels' parents (BSDS) that have a single child.
With ``--evaluate`` it also prints the reach by one node and by the union of two disjoint nodes, at the
coarsest display level, at any display level and anywhere in the tree (``metrics.objects.object_ious``).
Prints one Markdown row per setting, the border term off first (at the checkpoint's size factor). The second halves stay held out.
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
from hierseg.borders import colour_edges
from hierseg.hierarchy.merge_tree import MergeTree, TreeConfig, display_levels
from hierseg.readout.merge_tree import TreeInputs, merge
from hierseg.imageio import load_image

from .evaluation.datasets import EVALUATION_SETS, PEOPLE_MIN_COVER
from .metrics.ground_truth import load_bsds_ground_truth
from .metrics.objects import QUESTIONS, WHOLE_IOU, object_ious
from .metrics.paired import mcnemar_exact, sign_flip_test
from .metrics.regions import summarize_regions
from .metrics.tree import Fraction, parents_from_nested, single_child_parents
from .metrics.ultrametric import HEIGHTS, evaluate_tree
from .train_grouping import heights_for_counts



def photo_inputs(segmenter: Segmenter, path: Path) -> dict[str, Any]:
    """What the tree needs of one photo, from one pass of the model, and its leaves at the photo's size."""
    prepared = segmenter.prepare(load_image(path, max_side=None))
    output = segmenter.forward([prepared])
    return {"tree": TreeInputs.of(segmenter.model, prepared, output, 0), "leaves": prepared.superpixels}


def build_tree(inputs: dict[str, Any], config: TreeConfig, edge_cache: dict[float, np.ndarray]) -> MergeTree:
    """The photo's tree under ``config``; the edge map is computed once per sigma."""
    edge_map = None
    if config.border_sigma > 0:
        if config.border_sigma not in edge_cache:
            edge_cache[config.border_sigma] = colour_edges(inputs["tree"].view_rgb, config.border_sigma)
        edge_map = edge_cache[config.border_sigma]
    return merge(inputs["tree"], config, edge_map)


def display_single_child(tree: MergeTree, heights: tuple[float, ...], config: TreeConfig) -> Fraction:
    """Parents of the display levels (the leaves the finest) with a single child, over all levels."""
    levels = [*display_levels(tree, heights, config.min_segments, config.split_chains), np.arange(tree.n_leaves)]
    levels = [np.unique(level, return_inverse=True)[1] for level in levels]  # merge-node ids -> 0..k-1
    return sum(single_child_parents(parents_from_nested(levels)), Fraction(0, 0))


def display_object_ious(tree: MergeTree, heights: tuple[float, ...], config: TreeConfig, leaves: np.ndarray,
                        mask: np.ndarray) -> dict[str, float]:
    """``objects.object_ious`` of one photo's tree cut into display levels at ``heights`` (``leaves``: its
    superpixels at the photo's size, ``mask``: the object)."""
    levels = display_levels(tree, heights, config.min_segments, config.split_chains)
    # The display levels as label maps over the photo (merge-node ids; object_ious needs compact ids).
    maps = [np.unique(level, return_inverse=True)[1][leaves] for level in levels] + [leaves]
    return object_ious(maps, mask, tree.merges)


def score(config: TreeConfig, bsds: list[dict[str, Any]], objects: dict[str, list[dict[str, Any]]],
          level_counts: tuple[int, ...] | None) -> dict[str, Any]:
    """BSDS ultrametric covering / PRI / VI, the cut heights (calibrated on the same BSDS photos for
    ``level_counts``, or the config's own when None), and the whole-object shares."""
    trees = [build_tree(p, config, p["edge_maps"]) for p in bsds]
    evals = [evaluate_tree(p["leaves"], t, p["humans"])[0] for p, t in zip(bsds, trees)]
    summary = summarize_regions(evals, HEIGHTS)
    heights = heights_for_counts(trees, level_counts) if level_counts is not None else config.thresholds
    # Per photo: the best covering over the heights (OIS), for a paired test between trees.
    best = [(e.cover_count / e.cover_total).max() for e in evals]
    single = sum((display_single_child(t, heights, config) for t in trees), Fraction(0, 0))
    out = {"single_child": single.value, "covering_per_photo": best, "covering_ods": summary.cover_ods, "covering_ois": summary.cover_ois, "pri_ods": summary.pri_ods,
           "pri_ois": summary.pri_ois, "vi_ods": summary.voi_ods, "vi_ois": summary.voi_ois, "heights": heights,
           "display_counts": np.exp(np.mean([np.log([t.count_at(h) for h in heights]) for t in trees], 0)).tolist()}
    for name, photos in objects.items():
        whole: dict[str, list[bool]] = {key: [] for key in QUESTIONS}
        for p in photos:
            tree = build_tree(p, config, p["edge_maps"])
            for key, value in display_object_ious(tree, heights, config, p["leaves"], p["mask"]).items():
                whole[key].append(value >= WHOLE_IOU)
        for key, flags in whole.items():
            out[f"{name}_{key}"] = float(np.mean(flags))
        out[f"{name}_photos"] = whole  # per photo, for paired tests
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
    parser.add_argument("--size-power", type=float, nargs="+", default=None, help="default: the checkpoint's")
    parser.add_argument("--small-area", type=float, nargs="+", default=None, help="default: the checkpoint's")
    parser.add_argument("--small-power", type=float, nargs="+", default=None, help="default: the checkpoint's")
    parser.add_argument("--level-counts", type=int, nargs="+", default=[4, 10, 25])
    parser.add_argument("--evaluate", nargs="+", default=None, metavar="CHECKPOINT",
                        help="no tuning: score these checkpoints' trees at their own cut heights on the held-out data "
                             "(BSDS500 val, the second halves of horses and people), CHECKPOINT's forward pass shared")
    args = parser.parse_args(argv)
    held_out = args.evaluate is not None
    torch.set_num_threads(1)
    segmenter = load_segmenter(args.checkpoint, device="cpu")
    segmenter = Segmenter(segmenter.model, segmenter.config, "cpu", labeller=None)
    base = segmenter.config.tree
    if base is None:
        raise SystemExit(f"{args.checkpoint} has no merge tree to tune")
    root = args.data / "bsds500"
    bsds = []
    split = "val" if held_out else "train"
    for path in sorted((root / "images" / split).glob("*.jpg"))[:args.bsds]:
        humans = load_bsds_ground_truth(root / "groundTruth" / split / f"{path.stem}.mat").segmentations
        bsds.append({**photo_inputs(segmenter, path), "humans": humans, "edge_maps": {}})
    objects: dict[str, list[dict[str, Any]]] = {}
    for name, ds, min_cover in (("horses", EVALUATION_SETS["horse"].open(args.data), 0.0),
                                ("people", EVALUATION_SETS["pascal"].open(args.data), PEOPLE_MIN_COVER)):
        objects[name] = []
        half = ds.items[len(ds.items) // 2:] if held_out else ds.items[: len(ds.items) // 2]  # as ObjectShareScorer splits
        for image, gt in half[: args.objects]:
            mask = np.asarray(ds.load_gt(gt)[0]) > 0
            if mask.mean() >= min_cover and mask.any():
                objects[name].append({**photo_inputs(segmenter, image), "mask": mask, "edge_maps": {}})
    if held_out:
        print(f"held out: BSDS500 val {len(bsds)} photos; horses {len(objects['horses'])}, people {len(objects['people'])} "
              "(second halves); each checkpoint's tree at its own cut heights")
        print("| checkpoint | tree (ultrametric) covering ODS / OIS | PRI ODS / OIS | VI ODS / OIS | display level counts (BSDS val) "
              "| single-child parents (BSDS val) | horses coarsest / tree / bound | people coarsest / tree / bound |")
        print("|---|---|---|---|---|---|---|---|")
        results = []
        for name in args.evaluate:
            r = score(load_segmenter(name, device="cpu").config.tree, bsds, objects, None)
            results.append(r)
            print(f"| {name} | {r['covering_ods']:.3f} / {r['covering_ois']:.3f} | {r['pri_ods']:.3f} / {r['pri_ois']:.3f} | "
                  f"{r['vi_ods']:.3f} / {r['vi_ois']:.3f} | " + ", ".join(f"{c:.1f}" for c in r["display_counts"]) + " | "
                  f"{r['single_child']:.3f} | {r['horses_coarse']:.3f} / {r['horses_tree']:.3f} / {r['horses_bound']:.3f} | "
                  f"{r['people_coarse']:.3f} / {r['people_tree']:.3f} / {r['people_bound']:.3f} |", flush=True)
        control = results[0]  # paired tests of every other checkpoint against the first, photo by photo
        for name, r in zip(args.evaluate[1:], results[1:]):
            d = np.subtract(r["covering_per_photo"], control["covering_per_photo"])
            print(f"\n{name} against {args.evaluate[0]}: BSDS per-photo best covering (OIS) {d.mean():+.3f}, "
                  f"sign-flip p = {sign_flip_test(d):.2g}", end="")
            for obj in ("horses", "people"):
                for key in ("coarse", "tree"):
                    m = mcnemar_exact(control[f"{obj}_photos"][key], r[f"{obj}_photos"][key])
                    print(f"; {obj} {key}: {m.gained} gained, {m.lost} lost, McNemar exact p = {m.p:.2g}", end="")
            print()
        print("\nReach: share of held-out photos where ONE node (1) or the union of at most TWO disjoint nodes (2) covers "
              "the object at IoU >= 0.7, at the coarsest display level, at any display level, anywhere in the merge tree "
              "(objects.object_ious)")
        print("| checkpoint | set | photos | coarsest 1 / 2 | display levels 1 / 2 | tree 1 / 2 | bound |")
        print("|---|---|---|---|---|---|---|")
        for name, r in zip(args.evaluate, results):
            for obj in ("horses", "people"):
                pairs = " | ".join(f"{r[f'{obj}_{key}']:.3f} / {r[f'{obj}_{key}_2']:.3f}" for key in ("coarse", "levels", "tree"))
                print(f"| {name} | {obj} | {len(objects[obj])} | {pairs} | {r[f'{obj}_bound']:.3f} |")
        # Paired, photo by photo: two nodes against one (the control) on the same trees.
        for name, r in zip(args.evaluate, results):
            tests = []
            for obj, key in itertools.product(("horses", "people"), ("coarse", "levels", "tree")):
                m = mcnemar_exact(r[f"{obj}_photos"][key], r[f"{obj}_photos"][f"{key}_2"])
                tests.append(f"{obj} {key}: {m.gained} gained, {m.lost} lost, McNemar exact p = {m.p:.2g}")
            print(f"\n{name}, two nodes against one: " + "; ".join(tests))
        return
    counts = tuple(args.level_counts)
    print(f"BSDS500 train {len(bsds)} photos; dev horses {len(objects['horses'])}, dev people {len(objects['people'])}; "
          f"cut heights calibrated on the same BSDS photos to {counts} segments")
    print("| sigma | eps | power | size power | small area | small power | BSDS train tree covering ODS / OIS | PRI / VI ODS "
          "| single-child parents | horses coarsest / tree | people coarsest / tree | cut heights |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    size_powers = args.size_power or [base.size_power]
    small_areas = args.small_area or [base.small_area]
    small_powers = args.small_power or [base.small_power]
    settings = [dataclasses.replace(base, border_sigma=0.0)]
    settings += [dataclasses.replace(base, border_sigma=s, border_eps=e, border_power=p, size_power=q, small_area=a,
                                     small_power=c)
                 for s, e, p, q, a, c in itertools.product(args.sigma, args.eps, args.power, size_powers, small_areas,
                                                           small_powers)]
    for config in settings:
        r = score(config, bsds, objects, counts)
        label = ("off", "—", "—") if config.border_sigma == 0 else (config.border_sigma, config.border_eps, config.border_power)
        print(f"| {label[0]} | {label[1]} | {label[2]} | {config.size_power} | {config.small_area} | {config.small_power} | "
              f"{r['covering_ods']:.3f} / {r['covering_ois']:.3f} | {r['pri_ods']:.3f} / {r['vi_ods']:.3f} | {r['single_child']:.3f} | "
              f"{r['horses_coarse']:.2f} / {r['horses_tree']:.2f} | {r['people_coarse']:.2f} / {r['people_tree']:.2f} | "
              + ", ".join(f"{h:.3g}" for h in r["heights"]) + " |", flush=True)


if __name__ == "__main__":
    main()
