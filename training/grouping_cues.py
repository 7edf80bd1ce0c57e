"""Which cue could hold an object's parts together in the merge tree (issue 23, item 2)? A screen on the dev halves.

    python -m training.grouping_cues CHECKPOINT --data ../shared/data [--objects N] [--weights 1 3] [--held-out]

For every photo of the dev halves of Weizmann horses and Pascal-Part people (photos where people cover >= 10%),
seen through the shipped path (``Segmenter.prepare`` + ``forward``, the checkpoint's ``TreeConfig``), each cue
gives every superpixel a vector:

* ``head``: the checkpoint's grouping embedding (what the tree reads today, with weight ``merge_tokens``);
* ``tokens``: the stage-0 tokens themselves, layer-normalised (the transformer's context over the photo);
* ``teacher``: the distillation teacher's penultimate map on the view x2, averaged per superpixel (the
  grouping head's training target, ``train_grouping``);
* ``occlusion``: the recognizer's own test: the drop of the teacher's top-5 logits when the superpixel's
  segment of the finest display level is greyed out, weighted by their probabilities (one pass per segment);
* ``ground``: the probability that the superpixel is ground by the photo's frame (``hierseg.figure_ground``,
  boundary connectivity at the checkpoint's ``figure_sigma``): no learning and no recognizer, what the
  ``objects`` quality appends;
* ``position``: the superpixel's centroid (a control: objects are compact, so position alone separates
  far pairs);
* ``figure``: the share of the superpixel inside the object's mask: an oracle, the best any learned
  embedding could say, so the ceiling of item 2 within this merge.

Two scores per cue: (1) separation, per photo the AUC that a pair of superpixels straddling the object's
border is farther apart in the cue (standardised as the merge metric standardises) than a pair inside the
object, over touching pairs and over all pairs, averaged over photos; (2) reach: the shipped tree metric with
the cue appended at weight w (as the grouping embedding is appended), the tree rebuilt and cut at the
checkpoint's heights, and the share of photos with ONE node at IoU >= 0.7 at the coarsest display level and
anywhere in the tree, with an exact McNemar test against the shipped tree on the same photos.
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from scipy.stats import rankdata

from hierseg import Segmenter, load_segmenter
from hierseg.figure_ground import background_probability
from hierseg.hierarchy.merge_tree import TreeConfig, display_levels
from hierseg.imageio import load_image
from hierseg.preprocess import normalise
from hierseg.readout.merge_tree import TreeInputs, append_cue, standardise_cue

from .evaluation.datasets import EVALUATION_SETS, PEOPLE_MIN_COVER
from .metrics.objects import WHOLE_IOU, leaf_inside_share
from .metrics.paired import mcnemar_exact
from .teacher import TEACHER_MEAN, TEACHER_STD, Teacher
from .train_grouping import teacher_superpixel_features
from .tune_tree import build_tree, display_object_ious

CUES = ("head", "tokens", "teacher", "occlusion", "ground", "position", "figure")


def separation_auc(far: np.ndarray, near: np.ndarray) -> float:
    """P(a ``far`` distance exceeds a ``near`` one), ties counting half (the Mann-Whitney AUC); NaN if either is empty."""
    if len(far) == 0 or len(near) == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([far, near]))
    return float((ranks[: len(far)].sum() - len(far) * (len(far) + 1) / 2) / (len(far) * len(near)))


def separation(cue: np.ndarray, inputs: TreeInputs, inside: np.ndarray) -> tuple[float, float]:
    """(touching pairs, all pairs) AUC that straddling pairs lie farther apart than pairs inside the object."""
    z = standardise_cue(cue, inputs.areas)
    a, b = inputs.edges[:, 0], inputs.edges[:, 1]
    touching = np.linalg.norm(z[a] - z[b], axis=1)
    straddle, within = inside[a] != inside[b], inside[a] & inside[b]
    ins, outs = np.flatnonzero(inside), np.flatnonzero(~inside)
    upper = np.triu_indices(len(ins), 1)
    within_all = np.linalg.norm(z[ins][:, None] - z[ins][None], axis=-1)[upper]
    straddle_all = np.linalg.norm(z[ins][:, None] - z[outs][None], axis=-1).ravel()
    return separation_auc(touching[straddle], touching[within]), separation_auc(straddle_all, within_all)


def with_cue(inputs: TreeInputs, total_weight: float, cue: np.ndarray, weight: float) -> TreeInputs:
    """The tree's inputs with ``cue`` appended to the metric at ``weight``, exactly as the grouping embedding
    is appended (``RegionMerging.tree_features``: sqrt(weight) x standardised, all over sqrt(total weight)),
    i.e. at ``weight / total_weight`` of the metric's variance (``append_cue``)."""
    if weight <= 0:
        return inputs
    return dataclasses.replace(inputs, features=append_cue(inputs.features, inputs.areas, cue, weight / total_weight))


@torch.no_grad()
def occlusion_importance(teacher: Teacher, inputs: TreeInputs, segments: np.ndarray, mean: tuple[float, ...],
                         std: tuple[float, ...]) -> np.ndarray:
    """(S, 1) the teacher's top-5 logit drop, probability-weighted, when each superpixel's segment
    (``segments``: segment per superpixel) is greyed out on the view."""
    ids, index = np.unique(segments, return_inverse=True)
    region = torch.from_numpy(index[inputs.view_superpixels])
    view = normalise(inputs.view_rgb, mean, std)
    batch = view[None].repeat(len(ids) + 1, 1, 1, 1)
    for k in range(len(ids)):
        batch[k + 1][:, region == k] = 0.0  # 0 is mid-grey in the model's normalisation
    logits = torch.cat([teacher(batch[i:i + 16]) for i in range(0, len(batch), 16)])
    top = logits[0].topk(5).indices
    drop = (logits[0, top][None] - logits[1:, top]).clamp(min=0)
    return (drop @ torch.softmax(logits[0], 0)[top]).numpy()[index][:, None]


def photo_cues(segmenter: Segmenter, teacher: Teacher, path: Path, mask: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    """Tree inputs, leaves and every cue of one photo, from one pass of the model."""
    prepared = segmenter.prepare(load_image(path, max_side=None))
    output = segmenter.forward([prepared])
    inputs = TreeInputs.of(segmenter.model, prepared, output, 0)
    n = len(inputs.areas)
    tokens = output.stage_tokens[0][0, :n].float()
    config, edge_maps = segmenter.config.tree, {}
    photo = {"tree": inputs, "leaves": prepared.superpixels, "mask": mask, "edge_maps": edge_maps,
             "inside": leaf_inside_share(prepared.superpixels, mask, n) > 0.5}
    makers: dict[str, Callable[[], np.ndarray]] = {
        "head": lambda: segmenter.model.grouping_head(tokens).double().numpy(),
        "tokens": lambda: torch.nn.functional.layer_norm(tokens, tokens.shape[-1:]).double().numpy(),
        "teacher": lambda: teacher_superpixel_features(segmenter, teacher, prepared.view, 2)[:n].numpy(),
        "occlusion": lambda: occlusion_importance(
            teacher, inputs, display_levels(build_tree(photo, config, edge_maps), config.thresholds,
                                            config.min_segments, config.split_chains)[-1],
            segmenter.config.input.mean, segmenter.config.input.std),
        "ground": lambda: background_probability(inputs.view_rgb, inputs.view_superpixels, inputs.edges,
                                                 config.figure_sigma)[:, None],
        "position": lambda: _centroids(inputs.view_superpixels, n),
        "figure": lambda: leaf_inside_share(prepared.superpixels, mask, n)[:, None],
    }
    with torch.no_grad():
        photo["cues"] = {name: makers[name]() for name in names}
    return photo


def _centroids(superpixels: np.ndarray, n: int) -> np.ndarray:
    rows, cols = np.indices(superpixels.shape)
    count = np.maximum(np.bincount(superpixels.ravel(), minlength=n), 1)
    return np.stack([np.bincount(superpixels.ravel(), rows.ravel(), n), np.bincount(superpixels.ravel(), cols.ravel(), n)], 1) / count[:, None]


def reach(photo: dict[str, Any], config: TreeConfig, inputs: TreeInputs) -> tuple[bool, bool]:
    """(coarsest display level, anywhere in the tree): one node at IoU >= 0.7 with the photo's object."""
    tree = build_tree({"tree": inputs}, config, photo["edge_maps"])
    ious = display_object_ious(tree, config.thresholds, config, photo["leaves"], photo["mask"])
    return ious["coarse"] >= WHOLE_IOU, ious["tree"] >= WHOLE_IOU


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--objects", type=int, default=None, help="at most N photos per object set")
    parser.add_argument("--cues", nargs="+", default=list(CUES), choices=CUES)
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 3.0], help="weights of the appended cue")
    parser.add_argument("--held-out", action="store_true", help="the second halves instead of the dev halves")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    loaded = load_segmenter(args.checkpoint, device="cpu")
    segmenter = Segmenter(loaded.model, loaded.config, "cpu", labeller=None)
    config, pool = segmenter.config.tree, segmenter.model.pools[0]
    if config is None or segmenter.model.grouping_head is None:
        raise SystemExit(f"{args.checkpoint} has no grouping head and merge tree to screen against")
    total_weight = sum(w for w in pool.descriptor_weights if w > 0) + pool.tree_weight
    teacher = Teacher(TEACHER_MEAN, TEACHER_STD)
    sets = {}
    for name, key, min_cover in (("horses", "horse", 0.0), ("people", "pascal", PEOPLE_MIN_COVER)):
        ds = EVALUATION_SETS[key].open(args.data)
        half = ds.items[len(ds.items) // 2:] if args.held_out else ds.items[: len(ds.items) // 2]
        photos = []
        for image, gt in half:
            mask = np.asarray(ds.load_gt(gt)[0]) > 0
            if mask.mean() >= min_cover and mask.any():
                photos.append(photo_cues(segmenter, teacher, image, mask, tuple(args.cues)))
            if args.objects is not None and len(photos) >= args.objects:
                break
        sets[name] = photos
    print(f"{'held-out' if args.held_out else 'dev'} halves: horses {len(sets['horses'])}, people {len(sets['people'])} photos; "
          f"{args.checkpoint}'s metric (total weight {total_weight:g}) and cut heights")
    print("| cue | weight | horses AUC touching / all pairs | people AUC touching / all pairs "
          "| horses coarsest / anywhere | people coarsest / anywhere | McNemar against the shipped tree |")
    print("|---|---|---|---|---|---|---|")
    shipped = {name: [reach(p, config, p["tree"]) for p in photos] for name, photos in sets.items()}
    row = {name: np.mean(flags, 0) for name, flags in shipped.items()}
    print(f"| shipped tree | | | | {row['horses'][0]:.3f} / {row['horses'][1]:.3f} | {row['people'][0]:.3f} / {row['people'][1]:.3f} | |")
    for cue in args.cues:
        auc = {name: np.nanmean([separation(p["cues"][cue], p["tree"], p["inside"]) for p in photos], 0)
               for name, photos in sets.items()}
        for weight in args.weights:
            flags = {name: [reach(p, config, with_cue(p["tree"], total_weight, p["cues"][cue], weight)) for p in photos]
                     for name, photos in sets.items()}
            tests = []
            for name in sets:
                for k, where in enumerate(("coarsest", "anywhere")):
                    m = mcnemar_exact([f[k] for f in shipped[name]], [f[k] for f in flags[name]])
                    tests.append(f"{name} {where} +{m.gained}/-{m.lost} p={m.p:.2g}")
            row = {name: np.mean(f, 0) for name, f in flags.items()}
            print(f"| {cue} | {weight:g} | {auc['horses'][0]:.3f} / {auc['horses'][1]:.3f} | {auc['people'][0]:.3f} / "
                  f"{auc['people'][1]:.3f} | {row['horses'][0]:.3f} / {row['horses'][1]:.3f} | "
                  f"{row['people'][0]:.3f} / {row['people'][1]:.3f} | {'; '.join(tests)} |", flush=True)


if __name__ == "__main__":
    main()
