"""What "Refine on this photo" costs beside a plain segmentation, in one run; prints a markdown table.

    python benchmarks/refine_latency.py --threads 2     # the 2-core budget of the target

A 512 px photo (skimage's astronaut) through ``Segmenter`` and through ``Segmenter.refine`` at a few
step counts, interleaved so that load from other processes hits both alike; medians. Target: the
default refinement finishes in under 10 s on 2 CPU cores (it stops early at its time budget, which
the table shows as steps done < steps asked).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import date

import torch
from skimage import data

from hierseg import load_segmenter
from hierseg.refine import NO_TIME_BUDGET, RefineConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--steps", default="1,3,6", help="step counts to time, comma separated")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    segmenter = load_segmenter(args.checkpoint, device=args.device)
    photo = data.astronaut()  # 512 x 512
    steps = [int(s) for s in args.steps.split(",")]
    default_steps = RefineConfig().steps
    if default_steps not in steps:
        steps.append(default_steps)
    segmenter(photo)  # warm-up
    plain: list[float] = []
    refined: dict[int, list[float]] = {n: [] for n in steps}
    done: dict[int, int] = {}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        segmenter(photo)
        plain.append(time.perf_counter() - t0)
        for n in steps:
            t0 = time.perf_counter()
            # The default step count runs under the default time budget, as the app runs it.
            h = segmenter.refine(photo, steps=n, config=None if n == default_steps else NO_TIME_BUDGET)
            refined[n].append(time.perf_counter() - t0)
            done[n] = h.meta["refine"]["steps_done"]
    base = statistics.median(plain)
    print(f"# hierseg refine latency, {date.today()}, {platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.device}, 512 px photo, median of {args.repeats}\n")
    print("| run | steps done | seconds | x plain segmentation |")
    print("|---|---|---|---|")
    print(f"| segment | — | {base:.2f} | 1.0 |")
    for n in steps:
        t = statistics.median(refined[n])
        label = f"refine {n} steps" + (" (default, 10 s budget)" if n == default_steps else "")
        print(f"| {label} | {done[n]} | {t:.2f} | {t / base:.1f} |")


if __name__ == "__main__":
    main()
