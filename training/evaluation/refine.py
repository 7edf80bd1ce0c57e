"""Refine on this photo, measured: segments and labels before and after ``Segmenter.refine``, photo by photo.

    python -m training.evaluation.refine [CHECKPOINT] --data ../shared/data --out docs/eval/refine
        [--bsds-split test] [--bsds 30] [--imagenet 30] [--steps 6]

Every photo goes through the segmenter three times: as shipped (**before**), through
``Segmenter.refine`` with 0 steps (**control**: the refine path itself, a private copy that does not
learn; any difference it shows is noise of the pipeline, not refinement) and with ``--steps`` steps
(**after**), seed 0 and no time budget, so every photo gets every step (the evaluation's ``refined``).

* BSDS500 (photos spread evenly over the split; the split's ground truth is needed): covering, PRI and
  VI of the display levels (ODS / OIS over the photos scored), the merge tree as an ultrametric (ODS /
  OIS over :data:`training.metrics.ultrametric.HEIGHTS`), and the share of pixel pairs each display
  level regroups (1 - Rand index between before and after).
* ImageNet photos (``imagenet_samples_dev``, one per class, evenly spaced): the photo prediction's
  top-1 / top-5 and the true class's probability; the node under the photo's centre at the two
  coarsest levels: the true class in its top-5, its probability, and the label the app states
  (``hierseg.naming``: right when the named class or family holds the true class, else wrong or
  uncertain) with that label's probability.

Paired tests (``training.metrics.paired``), after against before and control against before: a
sign-flip permutation test on each photo's best-level covering (OIS term) and on the centre nodes'
mean true-class probability; McNemar's exact test on the photo's top-1 and the coarsest centre
node's top-5. Writes ``results.json`` (every photo's numbers) and ``results.md``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hierseg import load_segmenter
from hierseg.imageio import load_image
from hierseg.naming import NAME_THRESHOLD, family_tree
from training.metrics.paired import mcnemar_exact, sign_flip_test
from training.metrics.regions import contingency_table, evaluate_regions, rand_index, summarize_regions
from training.metrics.ultrametric import HEIGHTS, evaluate_tree

from .datasets import bsds_split
from .methods import refined

CENTRE_LEVELS = (0, 1)
VERSIONS = ("before", "control", "after")


def evenly(items: Sequence[Any], n: int) -> list[Any]:
    """``n`` items spread evenly over ``items`` (all of them when there are fewer)."""
    if n >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def versions(segmenter: Any, steps: int) -> dict[str, Callable[[np.ndarray], Any]]:
    return {"before": segmenter, "control": refined(segmenter, 0), "after": refined(segmenter, steps)}


def regrouped(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pixel pairs grouped differently by two label maps of one photo (1 - Rand index)."""
    return 1.0 - rand_index(contingency_table(a, b))


def score_bsds(segmenter: Any, items: Sequence[tuple[Path, Path]], load_gt: Callable[[Path], Any], steps: int) -> dict[str, Any]:
    photos: list[dict[str, Any]] = []
    evals: dict[str, list] = {v: [] for v in VERSIONS}
    trees: dict[str, list] = {v: [] for v in VERSIONS}
    run = versions(segmenter, steps)
    for image, truth in items:
        rgb, gt = load_image(image, max_side=None), load_gt(truth)
        record: dict[str, Any] = {"photo": image.stem}
        trees_of: dict[str, Any] = {}
        for name, call in run.items():
            t0 = time.perf_counter()
            h = call(rgb)
            record[f"seconds_{name}"] = time.perf_counter() - t0
            trees_of[name] = h
            ev = evaluate_regions(list(h.label_maps), gt.segmentations)
            evals[name].append(ev)
            record[f"counts_{name}"] = [int(m.max()) + 1 for m in h.label_maps]
            record[f"covering_best_{name}"] = float((ev.cover_count / ev.cover_total).max())
            if h.merge_tree is not None:
                um, _ = evaluate_tree(h.label_maps[-1], h.merge_tree, gt.segmentations)
                trees[name].append(um)
                record[f"ultrametric_covering_best_{name}"] = float((um.cover_count / um.cover_total).max())
        before, after = trees_of["before"], trees_of["after"]
        record["regrouped_per_level"] = [regrouped(a, b) for a, b in zip(before.label_maps[:-1], after.label_maps[:-1])]
        record["control_identical"] = all(np.array_equal(a, b) for a, b in
                                          zip(before.label_maps, trees_of["control"].label_maps))
        photos.append(record)
        print(f"bsds {image.stem}: best covering {record['covering_best_before']:.3f} -> {record['covering_best_after']:.3f} "
              f"({record['seconds_after']:.0f} s)", flush=True)
    out: dict[str, Any] = {"photos": photos}
    for name in VERSIONS:
        s = summarize_regions(evals[name])
        out[name] = {"covering_ods": s.cover_ods, "covering_ois": s.cover_ois, "pri_ods": s.pri_ods, "pri_ois": s.pri_ois,
                     "vi_ods": s.voi_ods, "vi_ois": s.voi_ois}
        if trees[name]:
            u = summarize_regions(trees[name], HEIGHTS)
            out[name].update({"ultrametric_covering_ods": u.cover_ods, "ultrametric_covering_ois": u.cover_ois})
    for name in ("after", "control"):
        diff = [p[f"covering_best_{name}"] - p["covering_best_before"] for p in photos]
        out[f"test_{name}"] = {"mean_difference": float(np.mean(diff)), "photos_up": int(np.sum(np.array(diff) > 0)),
                               "photos_down": int(np.sum(np.array(diff) < 0)), "p_sign_flip": sign_flip_test(diff)}
        if all(f"ultrametric_covering_best_{name}" in p for p in photos):
            udiff = [p[f"ultrametric_covering_best_{name}"] - p["ultrametric_covering_best_before"] for p in photos]
            out[f"test_{name}"].update({"ultrametric_mean_difference": float(np.mean(udiff)),
                                        "ultrametric_p_sign_flip": sign_flip_test(udiff)})
    return out


def stated_label(probs: np.ndarray, class_names: Sequence[str], target: int) -> tuple[str, float]:
    """('right' | 'wrong' | 'uncertain', the stated name's probability or the top class's) by the app's rule."""
    tree = family_tree(class_names)
    if tree is None:
        return ("right" if int(probs.argmax()) == target else "wrong") if probs.max() >= NAME_THRESHOLD else "uncertain", \
            float(probs.max())
    synset, mass = tree.name(probs, NAME_THRESHOLD)
    if synset < 0:
        return "uncertain", float(probs.max())
    return ("right" if tree.is_under(synset, target) else "wrong"), float(mass)


def score_imagenet(segmenter: Any, rows: Sequence[tuple[Path, int]], steps: int) -> dict[str, Any]:
    photos: list[dict[str, Any]] = []
    run = versions(segmenter, steps)
    for path, target in rows:
        rgb = load_image(path, max_side=None)
        record: dict[str, Any] = {"photo": path.name, "target": target}
        for name, call in run.items():
            t0 = time.perf_counter()
            h = call(rgb)
            record[f"seconds_{name}"] = time.perf_counter() - t0
            p = np.asarray(h.prediction, np.float64)
            record[f"top1_{name}"] = int(p.argmax()) == target
            record[f"top5_{name}"] = bool(target in np.argsort(-p)[:5])
            record[f"p_true_{name}"] = float(p[target])
            height, width = h.shape
            nodes = [np.asarray(h.evidence[level][h.label_maps[level][height // 2, width // 2]], np.float64)
                     for level in CENTRE_LEVELS]
            record[f"centre5_{name}"] = [bool(target in np.argsort(-q)[:5]) for q in nodes]
            record[f"centre_p_true_{name}"] = [float(q[target]) for q in nodes]
            record[f"centre_label_{name}"] = [stated_label(q, h.class_names, target) for q in nodes]
        photos.append(record)
        print(f"imagenet {path.name}: centre p(true) {np.mean(record['centre_p_true_before']):.3f} -> "
              f"{np.mean(record['centre_p_true_after']):.3f} ({record['seconds_after']:.0f} s)", flush=True)
    out: dict[str, Any] = {"photos": photos}
    for name in VERSIONS:
        labels = [lab for p in photos for lab, _ in p[f"centre_label_{name}"]]
        wrong_conf = [conf for p in photos for (lab, conf) in p[f"centre_label_{name}"] if lab == "wrong"]
        out[name] = {"top1": float(np.mean([p[f"top1_{name}"] for p in photos])),
                     "top5": float(np.mean([p[f"top5_{name}"] for p in photos])),
                     "centre5": float(np.mean([c for p in photos for c in p[f"centre5_{name}"]])),
                     "centre_p_true": float(np.mean([c for p in photos for c in p[f"centre_p_true_{name}"]])),
                     "centre_labels": {k: labels.count(k) for k in ("right", "wrong", "uncertain")},
                     "centre_wrong_label_mean_probability": float(np.mean(wrong_conf)) if wrong_conf else None}
    for name in ("after", "control"):
        out[f"test_{name}"] = imagenet_tests(photos, name)
    return out


def imagenet_tests(photos: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """Paired tests of version ``name`` against before, over the photos' records."""
    diff = [np.mean(p[f"centre_p_true_{name}"]) - np.mean(p["centre_p_true_before"]) for p in photos]
    top1 = mcnemar_exact([p["top1_before"] for p in photos], [p[f"top1_{name}"] for p in photos])
    centre = mcnemar_exact([p["centre5_before"][0] for p in photos], [p[f"centre5_{name}"][0] for p in photos])
    out: dict[str, Any] = {"centre_p_true_mean_difference": float(np.mean(diff)), "centre_p_true_p_sign_flip": sign_flip_test(diff),
                           "top1_lost_gained_p": [top1.lost, top1.gained, top1.p],
                           "centre5_level0_lost_gained_p": [centre.lost, centre.gained, centre.p]}
    for level in range(len(CENTRE_LEVELS)):  # the stated label right, per level (McNemar)
        right = mcnemar_exact([p["centre_label_before"][level][0] == "right" for p in photos],
                              [p[f"centre_label_{name}"][level][0] == "right" for p in photos])
        out[f"centre_label_right_level{level}_lost_gained_p"] = [right.lost, right.gained, right.p]
    return out


def markdown(results: dict[str, Any]) -> str:
    steps = results["steps"]
    lines = [f"`Segmenter.refine` ({steps} steps, seed 0, no time budget) on checkpoint `{results['checkpoint']}`, "
             "photos the model never saw; before = as shipped, control = the refine path with 0 steps, after = "
             f"{steps} steps. Command: `{results['command']}`.", ""]
    b = results.get("bsds")
    if b:
        n = len(b["photos"])
        lines += [f"**BSDS500 {results['bsds_split']}** ({n} photos spread over the split)", "",
                  "| | covering ODS / OIS | PRI ODS / OIS | VI ODS / OIS | ultrametric covering ODS / OIS |", "|---|---|---|---|---|"]
        for name in VERSIONS:
            r = b[name]
            um = (f"{r['ultrametric_covering_ods']:.3f} / {r['ultrametric_covering_ois']:.3f}"
                  if "ultrametric_covering_ods" in r else "—")
            lines.append(f"| {name} | {r['covering_ods']:.3f} / {r['covering_ois']:.3f} | {r['pri_ods']:.3f} / {r['pri_ois']:.3f} | "
                         f"{r['vi_ods']:.3f} / {r['vi_ois']:.3f} | {um} |")
        moved = np.array([p["regrouped_per_level"] for p in b["photos"]])
        lines += ["", "Per-photo best-level covering (the OIS term), paired sign-flip test:", "",
                  "| comparison | mean difference | photos up / down | p | ultrametric: mean difference, p |", "|---|---|---|---|---|"]
        for name in ("after", "control"):
            t = b[f"test_{name}"]
            um = (f"{t['ultrametric_mean_difference']:+.4f}, p = {t['ultrametric_p_sign_flip']:.3g}"
                  if "ultrametric_mean_difference" in t else "—")
            lines.append(f"| {name} - before | {t['mean_difference']:+.4f} | {t['photos_up']} / {t['photos_down']} | "
                         f"{t['p_sign_flip']:.3g} | {um} |")
        lines += ["", "Pixel pairs regrouped by refinement, per merged display level (mean over photos): "
                  + ", ".join(f"{v:.1%}" for v in moved.mean(axis=0)) + "; photos with any change: "
                  f"{int((moved.max(axis=1) > 0).sum())} of {n}; control identical to before on "
                  f"{sum(p['control_identical'] for p in b['photos'])} of {n}. Seconds per photo: before "
                  f"{np.median([p['seconds_before'] for p in b['photos']]):.1f}, after "
                  f"{np.median([p['seconds_after'] for p in b['photos']]):.1f} (medians, shared loaded core).", ""]
    m = results.get("imagenet")
    if m:
        n = len(m["photos"])
        lines += [f"**ImageNet photos** (`imagenet_samples_dev`, {n} photos of {n} classes, evenly spaced)", "",
                  "| | photo top-1 | photo top-5 | centre node top-5 (levels 0-1) | centre node p(true class) | "
                  "centre labels right / wrong / uncertain | mean probability of wrong labels |", "|---|---|---|---|---|---|---|"]
        for name in VERSIONS:
            r = m[name]
            c = r["centre_labels"]
            wrong = "—" if r["centre_wrong_label_mean_probability"] is None else f"{r['centre_wrong_label_mean_probability']:.3f}"
            lines.append(f"| {name} | {r['top1']:.1%} | {r['top5']:.1%} | {r['centre5']:.1%} | {r['centre_p_true']:.4f} | "
                         f"{c['right']} / {c['wrong']} / {c['uncertain']} | {wrong} |")
        lines += ["", "| comparison | centre p(true): mean difference, sign-flip p | photo top-1 lost / gained, McNemar p | "
                  "centre top-5 (level 0) lost / gained, McNemar p | stated centre label right, lost / gained, McNemar p (level 0; level 1) |",
                  "|---|---|---|---|---|"]
        for name in ("after", "control"):
            t = m[f"test_{name}"]
            a, c = t["top1_lost_gained_p"], t["centre5_level0_lost_gained_p"]
            labels = "; ".join(f"{x[0]} / {x[1]}, p = {x[2]:.3g}" for x in
                               (t.get(f"centre_label_right_level{level}_lost_gained_p") for level in range(len(CENTRE_LEVELS))) if x)
            lines.append(f"| {name} - before | {t['centre_p_true_mean_difference']:+.4f}, p = {t['centre_p_true_p_sign_flip']:.3g} | "
                         f"{a[0]} / {a[1]}, p = {a[2]:.3g} | {c[0]} / {c[1]}, p = {c[2]:.3g} | {labels or '—'} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", default=None)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("eval/refine"))
    parser.add_argument("--bsds-split", default="test", help="BSDS500 split (its ground truth must be present)")
    parser.add_argument("--bsds", type=int, default=30, help="BSDS500 photos (0: none)")
    parser.add_argument("--imagenet", type=int, default=30, help="ImageNet photos (0: none)")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args(argv)
    segmenter = load_segmenter(args.checkpoint)
    results: dict[str, Any] = {"checkpoint": args.checkpoint or "default", "steps": args.steps, "bsds_split": args.bsds_split,
                               "command": "python -m training.evaluation.refine " + " ".join(argv if argv is not None else __import__("sys").argv[1:])}
    if args.bsds:
        ds = bsds_split(args.data / "bsds500", args.bsds_split)
        if not ds.has_ground_truth:
            raise SystemExit(f"BSDS500 {args.bsds_split} has no ground truth under {args.data / 'bsds500'}; pick another --bsds-split")
        results["bsds"] = score_bsds(segmenter, evenly(ds.items, args.bsds), ds.load_gt, args.steps)
    if args.imagenet:
        folder = args.data / "imagenet_samples_dev"
        rows = [(folder / r.split("\t")[0], int(r.split("\t")[1])) for r in (folder / "labels.tsv").read_text().splitlines()[1:]]
        results["imagenet"] = score_imagenet(segmenter, evenly(rows, args.imagenet), args.steps)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
