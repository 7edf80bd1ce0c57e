"""Photos/s and bytes/photo: today's per-photo loop against ``hierseg segment-dataset`` (1 and 2 processes).

    python benchmarks/dataset_throughput.py [--photos DIR] [--n 40] [--batch-size 8] [--workers 1]

The same photos (the first N of DIR, default BSDS500 val) go through:
  * the per-photo loop a user has today (``hierseg segment``: ``segmenter(path)`` then ``save_pngs``), in
    this process with torch's default threads, and again with one torch thread (segment-dataset's default);
  * ``hierseg segment-dataset`` as one process;
  * ``torchrun --standalone --nproc_per_node=2 -m hierseg segment-dataset`` (two processes).
Throughput counts photos over the time from the first shard's start to the last shard's end (model loading
excluded, as in the loop); the command's wall time is printed too. Per-stage times are ms of each stage per
photo summed over processes (decode and superpixels run in DataLoader workers). Ratios are from one run on
one machine, side by side; a shared machine moves them all.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def per_photo_loop(paths: list[Path], out: Path, threads: int | None = None) -> dict:
    import torch

    from hierseg import load_segmenter

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    segmenter = load_segmenter(device="cpu")
    segmenter(paths[0])  # warm-up, as the dataset runs' first batch is inside their timing but after loading
    stages: dict[str, float] = {}
    start = time.perf_counter()
    for i, path in enumerate(paths):
        tree = segmenter(path)
        t0 = time.perf_counter()
        tree.save_pngs(out / f"{i:05d}")
        for stage, ms in {**tree.meta["timings_ms"], "encode_write": (time.perf_counter() - t0) * 1e3}.items():
            stages[stage] = stages.get(stage, 0.0) + ms
    seconds = time.perf_counter() - start
    torch.set_num_threads(before)
    return {"photos": len(paths), "seconds": seconds, "wall": seconds, "bytes": folder_bytes(out) / len(paths),
            "stages": {k: v / len(paths) for k, v in stages.items()}, "rss_mb": None}


def dataset_run(command: list[str], out: Path, env: dict[str, str]) -> dict:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    done = [json.loads(p.read_text()) for p in sorted((out / "done").glob("*.json"))]
    photos = sum(d["ok"] for d in done)
    seconds = max(d["finished"] for d in done) - min(d["started"] for d in done)
    stages: dict[str, float] = {}
    for d in done:
        for stage, ms in d["stage_ms"].items():
            stages[stage] = stages.get(stage, 0.0) + ms
    return {"photos": photos, "seconds": seconds, "wall": wall, "bytes": sum(d["tar_bytes"] for d in done) / photos,
            "stages": {k: v / photos for k, v in stages.items()}, "rss_mb": max(d["max_rss_mb"] for d in done),
            # Peak RSS of the writing process after each shard, in finishing order: flat when memory is bounded.
            "rss_by_shard": [d["max_rss_mb"] for d in sorted(done, key=lambda d: d["finished"])]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "data" / "bsds500" / "images" / "val")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--shard-size", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    paths = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.n]
    if not paths:
        sys.exit(f"no photos in {args.photos}")
    scratch = Path(tempfile.mkdtemp(prefix="hierseg-bench-"))
    listing = scratch / "photos.txt"
    listing.write_text("\n".join(str(p) for p in paths))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    common = ["segment-dataset", str(listing), "--device", "cpu", "--batch-size", str(args.batch_size),
              "--shard-size", str(args.shard_size), "--workers", str(args.workers), "--quiet"]
    rows = {}
    try:
        (scratch / "loop").mkdir()
        rows["per-photo loop (hierseg segment)"] = per_photo_loop(paths, scratch / "loop")
        (scratch / "loop1").mkdir()
        rows["per-photo loop, 1 torch thread"] = per_photo_loop(paths, scratch / "loop1", threads=1)
        one = scratch / "one"
        rows["segment-dataset, 1 process"] = dataset_run([sys.executable, "-m", "hierseg", *common[:2], str(one), *common[2:]], one, env)
        two = scratch / "two"
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "hierseg"]
        rows["segment-dataset, torchrun 2 processes"] = dataset_run([*torchrun, *common[:2], str(two), *common[2:]], two, env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = rows["per-photo loop (hierseg segment)"]["photos"] / rows["per-photo loop (hierseg segment)"]["seconds"]
    print(f"{len(paths)} photos from {args.photos}, {os.cpu_count()} CPU cores, batch {args.batch_size}, "
          f"{args.workers} DataLoader worker(s) per process, load average {os.getloadavg()[0]:.1f}")
    print("| run | photos/s | x loop | wall s (with loading) | KB/photo | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, row in rows.items():
        rate = row["photos"] / row["seconds"]
        rss = "" if row["rss_mb"] is None else f"{row['rss_mb']:.0f}"
        print(f"| {name} | {rate:.2f} | {rate / base:.2f} | {row['wall']:.1f} | {row['bytes'] / 1024:.1f} | {rss} |")
    for name, row in rows.items():
        if row.get("rss_by_shard"):
            print(f"{name}: peak RSS MB after each shard, in finishing order: {row['rss_by_shard']}")
    stages = sorted({s for row in rows.values() for s in row["stages"]})
    print("\nms per photo by stage (summed over processes; in segment-dataset decode/preprocess run in DataLoader workers)")
    print("| run | " + " | ".join(stages) + " |")
    print("|---|" + "---|" * len(stages))
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row['stages'].get(s, 0):.1f}" for s in stages) + " |")


if __name__ == "__main__":
    main()
