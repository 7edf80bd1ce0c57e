"""End-to-end latency of the shipped default at several git revisions, side by side in one run.

    python benchmarks/revisions.py 928cc1c 4f67d80 WORKTREE --threads 2 [--rounds 5 --repeats 5]

Each revision is exported (``git archive``) to a temporary folder with its own code and its own
``checkpoints/default``; ``WORKTREE`` is the working tree as it is. Rounds take turns between the
revisions, one fresh process each (``PYTHONPATH`` set to the revision's folder, so its ``hierseg`` is
imported), so load from other processes hits every revision alike. A process loads the default, warms
up on the 512x512 astronaut photo, then times ``segmenter(photo)`` ``--repeats`` times. Prints a
markdown table of medians over all rounds and each revision's ratio to the first one: on a shared
machine the ratio is the figure to trust, not the milliseconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
import torch
torch.set_num_threads(int(sys.argv[1]))
from skimage import data
from hierseg import load_segmenter
segmenter = load_segmenter(None, device="cpu")
photo = data.astronaut()
for _ in range(2):
    segmenter(photo)
times = []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    h = segmenter(photo)
    times.append((time.perf_counter() - t0) * 1e3)
print(json.dumps({"ms": times, "levels": [h.n_nodes(level) for level in range(h.n_levels)]}))
"""


def export(revision: str, into: Path) -> Path:
    """The revision's files in ``into/revision`` (the working tree itself for ``WORKTREE``)."""
    if revision == "WORKTREE":
        return REPO
    folder = into / revision
    folder.mkdir()
    archive = into / f"{revision}.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), revision], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    return folder


def run_once(folder: Path, threads: int, repeats: int) -> dict:
    env = {"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin", "HOME": str(Path.home()),
           **{name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(repeats)], cwd=folder, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revisions", nargs="+", help="git revisions, or WORKTREE for the working tree")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folders = {rev: export(rev, Path(tmp)) for rev in args.revisions}
        times: dict[str, list[float]] = {rev: [] for rev in args.revisions}
        levels: dict[str, list[int]] = {}
        for _ in range(args.rounds):
            for rev in args.revisions:
                result = run_once(folders[rev], args.threads, args.repeats)
                times[rev] += result["ms"]
                levels[rev] = result["levels"]
    first = statistics.median(times[args.revisions[0]])
    print(f"# end to end, default checkpoint, 512x512 astronaut, {args.threads} threads, "
          f"{args.rounds} rounds x {args.repeats} photos per revision, revisions taking turns")
    print()
    print("| revision | segments per level (astronaut) | median ms | ratio to the first |")
    print("|---|---|---|---|")
    for rev in args.revisions:
        median = statistics.median(times[rev])
        print(f"| {rev} | {', '.join(map(str, levels[rev]))} | {median:.1f} | {median / first:.2f} |")


if __name__ == "__main__":
    main()
