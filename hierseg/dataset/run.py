"""``segment_dataset``: one process's part of a run (``hierseg segment-dataset SRC OUT``).

Every process of a run calls this with the same arguments; each learns its rank from the launcher's
environment (``launch.rank_from_env``: torchrun, srun, a SLURM array, or none), makes or reads the manifest
and the fingerprint, and works through shards (its own first, then leftovers: ``runner.run_shards``).
Processes never talk to each other: the output folder is the only shared state.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import HiersegError
from .fingerprint import check_or_write, run_fingerprint
from .launch import Rank, rank_from_env
from .layout import Layout
from .manifest import Manifest, build_manifest, source_root
from .record import evidence_mode
from .runner import ShardJob, run_shards, shard_order

__all__ = ["RunSettings", "segment_dataset"]


@dataclass
class RunSettings:
    """The options of ``hierseg segment-dataset`` (plain data)."""

    source: str | os.PathLike
    out: str | os.PathLike
    checkpoint: str | None = None
    device: str = "auto"
    # None: 1 on CPU (batching gains nothing there, and mixed batch shapes grow the allocator's memory:
    # 300 photos at batch 16 went 1.34 -> 1.55 GB, at batch 1 stayed at 1.16-1.17 GB), 64 on a GPU.
    batch_size: int | None = None
    shard_size: int = 1000
    workers: int = 1
    evidence: str = "top5"
    segments: bool = False
    stale_after: float = 600.0
    progress: bool = True
    # torch's threads in this process. Float sums depend on the thread count (heights move by ~1e-8,
    # evidence by a float16 step), so a fixed count makes every launch write the same bytes; processes
    # and DataLoader workers, not threads, are how a run uses more cores.
    threads: int = 1


def segment_dataset(settings: RunSettings, rank: Rank | None = None) -> list[dict[str, Any]]:
    """Run this process's part; returns the done records of the shards it wrote.

    Raises:
        HiersegError: bad options, SRC without photos, or OUT holding results of other settings.
    """
    from ..checkpoints import resolve_reference
    from ..segmenter import load_segmenter

    if (settings.batch_size is not None and settings.batch_size < 1) or settings.workers < 0 or settings.threads < 1:
        raise HiersegError("batch size and threads must be >= 1, workers >= 0")
    try:
        top_k = evidence_mode(settings.evidence)
    except ValueError as error:
        raise HiersegError(str(error)) from None
    if not Path(settings.source).exists():
        raise HiersegError(f"{settings.source} is neither a folder of photos nor a text file of paths")
    rank = rank or rank_from_env()
    layout = Layout(Path(settings.out))
    layout.make_folders()
    manifest = _manifest(settings, layout)
    folder, quality = resolve_reference(settings.checkpoint)
    torch.set_num_threads(settings.threads)
    segmenter = load_segmenter(folder, device=_local_device(settings.device), quality=quality)
    fingerprint = run_fingerprint(segmenter, folder, settings.evidence, settings.shard_size)
    run = check_or_write(layout.out, fingerprint, {"class_names": segmenter.class_names,
                                                   "source_root": str(source_root(settings.source))})
    order = shard_order(manifest.n_shards, rank.rank, rank.world)
    remaining = [s for s in order if not layout.is_done(s)]
    bar = _progress_bar(settings, rank, manifest, remaining)
    batch_size = settings.batch_size or (1 if segmenter.device.type == "cpu" else 64)
    job = ShardJob(segmenter, manifest, layout, run["digest"], top_k, batch_size, settings.workers,
                   settings.segments, settings.stale_after, on_photo=bar.update if bar is not None else lambda n: None)
    try:
        return run_shards(job, order)
    finally:
        if bar is not None:
            bar.close()


def _local_device(device: str) -> str:
    """Under torchrun each process of a node takes its own GPU (LOCAL_RANK), unless a device was named."""
    if device in ("auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    return device


def _manifest(settings: RunSettings, layout: Layout) -> Manifest:
    """The run's manifest: read when OUT has one (SRC is then only its root), else made and saved.
    Ranks starting together each build the same one; saving is an atomic replace of identical content."""
    if layout.manifest.exists():
        return Manifest.load(layout.manifest, source_root(settings.source), settings.shard_size)
    manifest = build_manifest(settings.source, settings.shard_size)
    manifest.save(layout.manifest)
    return manifest


def _progress_bar(settings: RunSettings, rank: Rank, manifest: Manifest, remaining: list[int]) -> Any:
    if not settings.progress:
        return None
    from tqdm import tqdm

    # This rank's own share of what is left; leftovers it sweeps up later add to its count.
    own = [s for s in remaining if s % rank.world == rank.rank]
    total = sum(len(manifest.shard(s)) for s in own)
    label = "segmenting" if rank.world == 1 else f"rank {rank.rank}/{rank.world}"
    return tqdm(total=total, desc=label, unit="photo", position=rank.rank if rank.world <= 8 else None,
                dynamic_ncols=True, smoothing=0.1)
