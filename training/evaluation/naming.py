"""How often the names the app states are right, and how many segments read "uncertain", per kind of photo.

    python -m training.evaluation.naming collect --data ../shared/data --cache /tmp/naming_evidence.npz
    python -m training.evaluation.naming report --cache /tmp/naming_evidence.npz --out docs/eval/naming

``collect`` runs the model once per photo and keeps what naming needs (slow: the model); ``report``
names the kept evidence under each candidate threshold and family list (fast: numpy).

Photos the model never saw, of three kinds, each split in two halves by sorted file name (even
positions: dev, odd: test). The threshold is chosen on dev and every figure is reported on test.

* **object-centred** (``imagenet_samples_dev``, one photo per ImageNet class, ``labels.tsv``): the
  segment under the photo's centre pixel at levels 0, 1 and 2, and the whole photo. A name is right
  when the photo's class lies under it (the class itself, or a family holding it).
* **people** (``pascal_part_person`` val, with person masks): segments of levels 0-2 covering at least
  2% of the photo with at least half their pixels on a person. ImageNet has no "person", so a name
  is right when every class it stands for is something a person is or wears (``WORN``: under WordNet's
  person, clothing, headdress, footwear or mask).
* **scenes** (``bsds500`` val): segments of levels 0-2 covering at least 2% of the photo. BSDS500
  has no class labels, so only the share that reads uncertain is measured, and the names stated are
  listed (most frequent first) for a person to judge.

The threshold is the one of ``CANDIDATE_THRESHOLDS`` (all at least 0.5, so a stated name is a
majority claim and unique) whose names on the dev half of the two labelled kinds are most often
right net of wrong (right - wrong, uncertain counting 0): a name is worth stating when it is more
likely right than wrong.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

LEVELS = (0, 1, 2)
MIN_SHARE = 0.02
CANDIDATE_THRESHOLDS = (0.5, 0.55, 0.6, 0.7)
KINDS = ("object-centred", "people", "scenes")
# What a person is or wears (WordNet 3.0 ids): a segment on a person named by one of these is right.
WORN = {"n00007846": "person", "n03051540": "clothing", "n03502509": "headdress", "n03380867": "footwear",
        "n03724870": "mask"}


def _photos(data: Path) -> list[tuple[str, Path, int, Path | None]]:
    """(kind, photo, ImageNet class or -1, person mask or None) for every photo, sorted per kind."""
    out: list[tuple[str, Path, int, Path | None]] = []
    imagenet = data / "imagenet_samples_dev"
    for row in sorted((imagenet / "labels.tsv").read_text().splitlines()[1:]):
        name, target = row.split("\t")
        out.append(("object-centred", imagenet / name, int(target), None))
    people = data / "pascal_part_person"
    for stem in sorted((people / "val_id.txt").read_text().split()):
        out.append(("people", people / "JPEGImages" / f"{stem}.jpg", -1, people / "gt_masks" / f"{stem}.png"))
    for path in sorted((data / "bsds500" / "images" / "val").glob("*.jpg")):
        out.append(("scenes", path, -1, None))
    return out


def collect(checkpoint: str | None, data: Path, cache: Path, every: dict[str, int] | None = None) -> None:
    """Run the model on every photo (every N-th of a kind, by ``every``) and keep each scored segment's class
    distribution (float16)."""
    from hierseg import load_segmenter
    from hierseg.imageio import load_image

    segmenter = load_segmenter(checkpoint, device="cpu")
    rows: dict[str, list[Any]] = {k: [] for k in ("kind", "photo", "target", "role", "level", "share", "on_person")}
    evidence = []
    t0 = time.perf_counter()
    # The kinds interleaved, and the cache rewritten as it grows: a run stopped early still has all three.
    per_kind = [[p for p in _photos(data) if p[0] == kind][:: (every or {}).get(kind, 1)] for kind in KINDS]
    photos = [item for group in itertools.zip_longest(*per_kind) for item in group if item is not None]
    for n, (kind, path, target, mask_path) in enumerate(photos):
        tree = segmenter(load_image(path))
        height, width = tree.shape
        mask = None
        if mask_path is not None:
            mask = np.asarray(Image.open(mask_path).resize((width, height), Image.NEAREST)) > 0

        def keep(role: str, level: int, probs: np.ndarray, share: float, on_person: float) -> None:
            for key, value in zip(rows, (kind, path.name, target, role, level, share, on_person)):
                rows[key].append(value)
            evidence.append(np.asarray(probs, np.float16))

        keep("photo", -1, tree.prediction, 1.0, float(mask.mean()) if mask is not None else -1.0)
        for level in LEVELS[: tree.leaf_level]:  # never the superpixels
            label_map = tree.label_maps[level]
            area = np.bincount(label_map.ravel(), minlength=tree.n_nodes(level))
            on = (np.bincount(label_map.ravel(), weights=mask.ravel(), minlength=len(area)) / np.maximum(area, 1)
                  if mask is not None else np.full(len(area), -1.0))
            centre = int(label_map[height // 2, width // 2])
            for index in range(tree.n_nodes(level)):
                share = area[index] / label_map.size
                if kind == "object-centred":
                    if index == centre:
                        keep("centre", level, tree.evidence[level][index], share, -1.0)
                elif share >= MIN_SHARE:
                    keep("segment", level, tree.evidence[level][index], share, float(on[index]))
        if n % 15 == 14 or n == len(photos) - 1:
            _save(cache, evidence, rows, segmenter.config.name)
            print(f"{n + 1}/{len(photos)} photos, {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"kept {len(evidence)} segments of {len(set(rows['photo']))} photos in {cache}")


def _save(cache: Path, evidence: list[np.ndarray], rows: dict[str, list[Any]], checkpoint: str) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_name(cache.stem + ".partial.npz")
    np.savez_compressed(partial, evidence=np.stack(evidence), checkpoint=checkpoint,
                        **{k: np.asarray(v) for k, v in rows.items()})
    partial.replace(cache)


# ---------------------------------------------------------------------------------------------- report
def _previous_rule(tree: Any, evidence: np.ndarray, threshold: float) -> np.ndarray:
    """The control: the rule before issue 24 (any WordNet synset over under a quarter of the classes, reached by
    walking down from the root while a child holds ``threshold``), as synset ids (-1: uncertain)."""
    mass = tree.mass(evidence.astype(np.float64))
    children: dict[int, list[int]] = {}
    for synset, parent in enumerate(tree.parent):
        if parent >= 0:
            children.setdefault(int(parent), []).append(synset)
    out = np.full(len(evidence), -1)
    for row in range(len(evidence)):
        node = tree.root
        while node in children:
            best = max(children[node], key=lambda c: mass[row, c])
            if mass[row, best] < threshold:
                break
            node = best
        if mass[row, node] >= threshold and tree.size[node] < 0.25 * tree.num_classes:
            out[row] = node
    return out


def _rule(tree: Any, evidence: np.ndarray, threshold: float) -> np.ndarray:
    """``ClassHierarchy.name`` for every row, as synset ids (-1: uncertain)."""
    return np.array([tree.name(p, threshold).synset for p in evidence.astype(np.float64)])


def _judge(tree: Any, named: np.ndarray, data: dict[str, np.ndarray]) -> np.ndarray:
    """Per row: 1 right, 0 wrong, -1 uncertain or not judged (no label to judge by)."""
    worn = [tree.wnids.index(w) for w in WORN]
    worn_class = tree._under[:, worn].any(axis=1)  # noqa: SLF001  (a class a person is or wears)
    out = np.full(len(named), -1)
    for row, synset in enumerate(named):
        if synset < 0:
            continue
        kind = data["kind"][row]
        if kind == "object-centred":
            out[row] = int(tree.is_under(int(synset), int(data["target"][row])))
        elif kind == "people" and data["role"][row] == "segment" and data["on_person"][row] >= 0.5:
            out[row] = int(worn_class[tree.members(int(synset))].all())
    return out


def _figures(tree: Any, named: np.ndarray, judged: np.ndarray, data: dict[str, np.ndarray], rows: np.ndarray,
             upper: set[int]) -> dict[str, Any]:
    scored = rows & (judged >= 0)
    return {"segments": int(rows.sum()),
            "uncertain": round(float((named[rows] < 0).mean()), 3) if rows.any() else None,
            "named_judged": int(scored.sum()),
            "right": round(float(judged[scored].mean()), 3) if scored.any() else None,
            "upper_category_names": int(np.isin(named[rows], list(upper)).sum())}


def _bootstrap(photos: np.ndarray, a: np.ndarray, b: np.ndarray, draws: int = 2000) -> tuple[float, float, float]:
    """Right-rate difference a - b over judged rows, resampling photos: (difference, 95% low, one-sided p of <= 0)."""
    rng = np.random.default_rng(0)
    names = np.unique(photos)
    index = {name: np.flatnonzero(photos == name) for name in names}
    def rate(judged: np.ndarray, rows: np.ndarray) -> float:
        picked = judged[rows]
        picked = picked[picked >= 0]
        return float(picked.mean()) if len(picked) else 0.0
    everything = np.arange(len(photos))
    diffs = []
    for _ in range(draws):
        rows = np.concatenate([index[name] for name in rng.choice(names, len(names))])
        diffs.append(rate(a, rows) - rate(b, rows))
    diffs = np.array(diffs)
    return rate(a, everything) - rate(b, everything), float(np.quantile(diffs, 0.025)), float((diffs <= 0).mean())


def report(cache: Path, out: Path) -> dict[str, Any]:
    """Choose the threshold on the dev half, then every figure on the test half, beside the previous rule."""
    from hierseg.class_hierarchy import imagenet_hierarchy
    from hierseg.naming import short_name

    tree = imagenet_hierarchy()
    stored = np.load(cache)
    data = {key: stored[key] for key in ("kind", "photo", "target", "role", "level", "share", "on_person")}
    evidence = stored["evidence"]
    upper = {tree.wnids.index(w) for w in json.loads(
        (Path(__file__).resolve().parents[2] / "hierseg" / "data" / "name_families.json").read_text())["never"]}
    # Halves by the photo's position in its kind's sorted list.
    half = np.zeros(len(evidence), bool)
    for kind in KINDS:
        photos = sorted(set(data["photo"][data["kind"] == kind]))
        test = {name for i, name in enumerate(photos) if i % 2}
        half |= (data["kind"] == kind) & np.isin(data["photo"], list(test))
    dev, test = ~half, half
    choice = {}
    for threshold in CANDIDATE_THRESHOLDS:
        judged = _judge(tree, _rule(tree, evidence, threshold), data)
        choice[threshold] = int((judged[dev] == 1).sum() - (judged[dev] == 0).sum())
    threshold = max(choice, key=lambda t: (choice[t], -t))
    named = _rule(tree, evidence, threshold)
    judged = _judge(tree, named, data)
    before = _previous_rule(tree, evidence, 0.5)
    judged_before = _judge(tree, before, data)
    by_kind: dict[str, Any] = {}
    for kind in KINDS:
        of_kind = data["kind"] == kind
        roles = ["centre", "photo"] if kind == "object-centred" else ["segment"]
        for role in roles:
            rows = test & of_kind & (data["role"] == role)
            key = f"{kind} ({'the segment under the centre, levels 0-2' if role == 'centre' else 'whole photo' if role == 'photo' else 'segments of levels 0-2, >= 2% of the photo'})"
            by_kind[key] = {"now": _figures(tree, named, judged, data, rows, upper),
                            "previous rule": _figures(tree, before, judged_before, data, rows, upper),
                            "photos": int(len(set(data["photo"][rows])))}
    labelled = test & (data["role"] != "photo")
    difference, low, p_value = _bootstrap(data["photo"][labelled], judged[labelled], judged_before[labelled])
    words = Counter(short_name(tree.families.get(int(s), tree.names[int(s)])) for s in named[test & (data["kind"] == "scenes")] if s >= 0)
    results = {"checkpoint": str(stored["checkpoint"]), "threshold": threshold,
               "dev_score_by_threshold": {str(t): v for t, v in choice.items()},
               "families": len(tree.families), "test": by_kind,
               "right_rate_now_minus_previous": {"difference": round(difference, 3), "bootstrap_95_low": round(low, 3),
                                                 "p_one_sided": round(p_value, 4)},
               "scene_names": words.most_common(25),
               "photos": {kind: int(len(set(data["photo"][data["kind"] == kind]))) for kind in KINDS}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(_markdown(results))
    print(_markdown(results))
    return results


def _markdown(results: dict[str, Any]) -> str:
    lines = [f"# Segment names on held-out photos ({results['checkpoint']})", "",
             f"Threshold chosen on the dev half: **{results['threshold']}** (right minus wrong names on dev: "
             + ", ".join(f"{t}: {v}" for t, v in results["dev_score_by_threshold"].items()) + f"); "
             f"{results['families']} basic-level families. Photos collected: "
             + ", ".join(f"{k} {v}" for k, v in results["photos"].items()) + ". Figures below: the test half.", "",
             "| photos (test half) | rule | segments | uncertain | named and judged | right | upper-category names |",
             "|---|---|---|---|---|---|---|"]
    for key, figures in results["test"].items():
        for rule in ("now", "previous rule"):
            f = figures[rule]
            right = "-" if f["right"] is None else f"{f['right']:.0%}"
            lines.append(f"| {key}, {figures['photos']} photos | {rule} | {f['segments']} | {f['uncertain']:.0%} | "
                         f"{f['named_judged']} | {right} | {f['upper_category_names']} |")
    d = results["right_rate_now_minus_previous"]
    lines += ["", f"Right-rate of judged names, now minus previous rule (object-centred and people segments): "
              f"{d['difference']:+.3f}, bootstrap over photos 95% lower bound {d['bootstrap_95_low']:+.3f}, "
              f"one-sided p = {d['p_one_sided'] if d['p_one_sided'] > 0 else '< 0.0005 (none of 2000 draws)'}.", "",
              "Scenes have no class labels; the names stated on their test half, most frequent first: "
              + ", ".join(f"{w} ({n})" for w, n in results["scene_names"]) + ".", "",
              "Definitions: `training/evaluation/naming.py`.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["collect", "report"])
    parser.add_argument("checkpoint", nargs="?", default=None)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/naming_evidence.npz"))
    parser.add_argument("--out", type=Path, default=Path("docs/eval/naming"))
    parser.add_argument("--every", default="", metavar="KIND=N,...",
                        help="collect every N-th photo of a kind only, e.g. object-centred=3,people=3")
    args = parser.parse_args()
    if args.step == "collect":
        every = {kind: int(n) for kind, n in (item.split("=") for item in args.every.split(",") if item)}
        collect(args.checkpoint, args.data, args.cache, every)
    else:
        report(args.cache, args.out)


if __name__ == "__main__":
    main()
