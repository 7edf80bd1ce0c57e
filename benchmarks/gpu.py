"""End to end on CUDA against the same machine's CPU, side by side in one run, and the trees compared.

    python benchmarks/gpu.py                  # needs CUDA; prints why and exits 0 without it
    python benchmarks/gpu.py --repeats 20 --threads 8
    python benchmarks/gpu.py --device cpu     # the same script CPU against CPU: a check that it runs

The shipped default segments the four example photos (examples/, 512 px and larger; working size as the
app uses it) at batch 1, devices taking turns photo by photo so that other load hits both alike. Where
each stage runs on CUDA: SEEDS superpixels, the Ward merge rounds, the pooling of class evidence over
nodes and the cut are numpy on the host; the model's forward, the merge tree's features and the
labeller's convolutions run on the device, and the readout copies a fixed handful of arrays back per
photo, none per node (tests/test_placement.py). Figures are medians over photos and repeats.

Trees: the CPU's and the device's agree when every level's label map agrees on at least
``PIXEL_AGREEMENT`` of its pixels and the merge-tree evidence within ``EVIDENCE_ATOL`` (probabilities;
the app keeps them at float16); the table also says whether the merge trees are identical. A run
whose trees disagree exits with status 1.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hierseg import Hierarchy, load_segmenter
from hierseg.imageio import load_image

REPO = Path(__file__).resolve().parent.parent
PIXEL_AGREEMENT = 0.995
EVIDENCE_ATOL = 0.01
STAGES = ("preprocess", "model", "labels")


def agreement(reference: Hierarchy, other: Hierarchy) -> dict[str, float | bool]:
    """How far ``other``'s tree is from ``reference``'s: identical merges, the worst level's share of equal
    pixels (levels compared finest first when the counts differ), the largest evidence difference."""
    same_merges = (reference.merge_tree is not None and other.merge_tree is not None
                   and np.array_equal(reference.merge_tree.merges, other.merge_tree.merges))
    levels = min(reference.n_levels, other.n_levels)
    pixels = min(float(np.mean(a == b)) for a, b in zip(reference.label_maps[::-1][:levels], other.label_maps[::-1][:levels]))
    if reference.n_levels != other.n_levels:
        pixels = 0.0
    a, b = reference.merge_evidence, other.merge_evidence
    evidence = float(np.abs(a - b).max()) if a is not None and b is not None and a.shape == b.shape else float("inf")
    ok = pixels >= PIXEL_AGREEMENT and evidence <= EVIDENCE_ATOL
    return {"same_merges": same_merges, "pixels": pixels, "evidence": evidence, "ok": ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="the device compared with the CPU (default cuda)")
    parser.add_argument("--repeats", type=int, default=10, help="timed passes over the photos")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint (default: the shipped one)")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device here (torch.cuda.is_available() is False); nothing measured.")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", args.device]
    segmenters = [load_segmenter(args.checkpoint, device=d) for d in devices]
    photos = [load_image(p) for p in sorted((REPO / "examples").glob("*.jpg"))]
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)

    wall: list[list[float]] = [[] for _ in devices]
    stages: list[dict[str, list[float]]] = [{s: [] for s in (*STAGES, "rest")} for _ in devices]
    trees: list[list[Hierarchy]] = [[] for _ in devices]
    for i in range(args.repeats + 1):  # the first pass warms up (CUDA context, cuDNN plans, caches)
        for photo in photos:
            for k, segmenter in enumerate(segmenters):
                sync()
                t0 = time.perf_counter()
                h = segmenter(photo)
                sync()
                if i == 0:
                    trees[k].append(h)
                    continue
                wall[k].append((time.perf_counter() - t0) * 1e3)
                for s in STAGES:
                    stages[k][s].append(h.meta["timings_ms"].get(s, 0.0))
                stages[k]["rest"].append(wall[k][-1] - sum(stages[k][s][-1] for s in STAGES))

    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(f"# hierseg end to end, CPU against {name}; {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {len(photos)} photos x {args.repeats}")
    print()
    print("| device | preprocess (superpixels) ms | model ms | labels ms | rest (readout, decode) ms | end to end ms | ratio to CPU |")
    print("|---|---|---|---|---|---|---|")
    cpu_total = statistics.median(wall[0])
    for k, device in enumerate(devices):
        med = {s: statistics.median(v) for s, v in stages[k].items()}
        total = statistics.median(wall[k])
        print(f"| {device} | {med['preprocess']:.1f} | {med['model']:.1f} | {med['labels']:.1f} | {med['rest']:.1f} "
              f"| {total:.1f} | {total / cpu_total:.2f} |")
    print()
    print(f"Trees, {devices[1]} against cpu (agree: every level >= {PIXEL_AGREEMENT:.1%} equal pixels, "
          f"evidence within {EVIDENCE_ATOL}):")
    print()
    print("| photo | identical merge tree | worst level, equal pixels | max evidence difference | agree |")
    print("|---|---|---|---|---|")
    all_ok = True
    for path, a, b in zip(sorted((REPO / "examples").glob("*.jpg")), trees[0], trees[1]):
        m = agreement(a, b)
        all_ok &= bool(m["ok"])
        print(f"| {path.name} | {'yes' if m['same_merges'] else 'no'} | {m['pixels']:.2%} | {m['evidence']:.2g} "
              f"| {'yes' if m['ok'] else 'NO'} |")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
