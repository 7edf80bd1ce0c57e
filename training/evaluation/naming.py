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
