"""Latency of CAST against a plain ViT, side by side in one run; prints a markdown table.

    python benchmarks/latency.py                 # CPU (all threads), and CUDA when present
    python benchmarks/latency.py --threads 2     # the 2-core budget of the targets

Rows: superpixels (SEEDS, as configured), model forward, class evidence (the labeller), the rest of
the readout, end to end (a photo through ``Segmenter``), and re-cutting a merge tree (``Hierarchy.recut``, the
app's granularity slider); ``--checkpoint`` repeated compares checkpoints side by side. ``cast_small`` and timm's ``vit_small_patch16_224`` run at 224 px on the
same random batch; figures are medians. Targets: cast_small forward <= 0.75x ViT-S; the default
checkpoint end to end <= 150 ms per photo on 2 cores.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

import numpy as np
import timm
import torch
from skimage import data

from hierseg import load_segmenter
from hierseg.model import build_cast
from hierseg.superpixels import SEEDS_MOCO, compute_superpixels


def median_ms(fn, repeats: int, warmup: int = 2, sync=lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def bench_models(device: torch.device, batch: int, repeats: int) -> tuple[float, float]:
    cast = build_cast("cast_small", num_classes=1000).to(device).eval()
    vit = timm.create_model("vit_small_patch16_224", pretrained=False, num_classes=1000).to(device).eval()
    image = torch.randn(batch, 3, 224, 224, device=device)
    photo = data.astronaut()[::2, ::2].copy()
    sp = torch.from_numpy(compute_superpixels(np.ascontiguousarray(photo[:224, :224]), SEEDS_MOCO)).long()
    sp = sp[None].expand(batch, -1, -1).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    # Interleave the two models so that load from other processes hits both alike.
    t_cast, t_vit = [], []
    with torch.inference_mode():
        for _ in range(repeats):
            t_cast.append(median_ms(lambda: cast(image, sp), 1, warmup=1, sync=sync))
            t_vit.append(median_ms(lambda: vit(image), 1, warmup=1, sync=sync))
    return statistics.median(t_cast), statistics.median(t_vit)


def bench_pipelines(checkpoints: list[str | None], device: str, repeats: int) -> list[dict[str, float]]:
    """Median stage timings of each checkpoint on one 512 px photo; the checkpoints take turns photo by photo
    so that load from other processes hits them alike. A checkpoint with a merge tree also gets ``recut``:
    the median time to re-cut its tree at another height (what the app's granularity slider calls)."""
    segmenters = [load_segmenter(c, device=device) for c in checkpoints]
    photo = data.astronaut()  # 512x512 RGB
    timings: list[list[dict[str, float]]] = [[] for _ in segmenters]
    totals: list[list[float]] = [[] for _ in segmenters]
    recuts: list[list[float]] = [[] for _ in segmenters]
    for i in range(repeats + 2):
        for k, segmenter in enumerate(segmenters):
            t0 = time.perf_counter()
            h = segmenter(photo)
            if i < 2:
                continue
            totals[k].append((time.perf_counter() - t0) * 1e3)
            timings[k].append(h.meta["timings_ms"])
            if h.merge_tree is not None:
                low, high = h.height_range()
                height = float(np.geomspace(low, high, repeats)[i - 2])
                t0 = time.perf_counter()
                h.recut(height)
                recuts[k].append((time.perf_counter() - t0) * 1e3)
    rows = []
    for k, (checkpoint, segmenter) in enumerate(zip(checkpoints, segmenters)):
        row = {key: statistics.median(t[key] for t in timings[k]) for key in timings[k][0]}
        row["end to end"] = statistics.median(totals[k])
        row["recut"] = statistics.median(recuts[k]) if recuts[k] else float("nan")
        row["name"] = checkpoint or segmenter.config.name
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--checkpoint", action="append", default=None,
                        help="checkpoint for the end-to-end rows, repeatable to compare side by side (default: shipped)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    cpu_name = platform.processor() or platform.machine()
    print(f"# hierseg latency, {date.today()}, {cpu_name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print()
    print("| device | batch | cast_small forward ms | vit_small_patch16_224 forward ms | ratio CAST/ViT |")
    print("|---|---|---|---|---|")
    for device in devices:
        for batch in (1, 32):
            repeats = args.repeats if batch == 1 else max(3, args.repeats // 3)
            t_cast, t_vit = bench_models(device, batch, repeats)
            print(f"| {device.type} | {batch} | {t_cast:.1f} | {t_vit:.1f} | {t_cast / t_vit:.2f} |")
    print()
    print("| device | checkpoint | decode | preprocess (resize, superpixels) | model | labels | readout (rest) "
          "| end to end (ms, 512x512 photo) | ratio to the first | recut (ms) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for device in devices:
        rows = bench_pipelines(args.checkpoint or [None], device.type, args.repeats)
        for row in rows:
            row.setdefault("labels", 0.0)
            row["readout"] = row["end to end"] - row["decode"] - row["preprocess"] - row["model"] - row["labels"]
            cells = " | ".join(f"{row[k]:.1f}" for k in ("decode", "preprocess", "model", "labels", "readout", "end to end"))
            ratio = row["end to end"] / rows[0]["end to end"]
            recut = "—" if np.isnan(row["recut"]) else f"{row['recut']:.1f}"
            print(f"| {device.type} | {row['name']} | {cells} | {ratio:.2f} | {recut} |")


if __name__ == "__main__":
    main()
