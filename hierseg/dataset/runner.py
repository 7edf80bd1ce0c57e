"""One process of ``hierseg segment-dataset``: claim shards, segment their photos, write them.

Inside a process the work is a pipeline with bounded queues, so memory stays flat whatever the data set's
size: a torch ``DataLoader`` whose workers decode photos and compute superpixels (``Segmenter.prepare``,
``prefetch`` batches ahead each), the network on same-shape groups of a batch (``Segmenter.forward``, as
``segment_batch`` groups them), the readout (merge tree, cuts, the labeller's pooling) here, and a writer
thread that encodes and appends each tree (``record.encode``, zlib and PNG release the GIL) behind a queue of
at most two batches. A photo that cannot be read or segmented becomes an error row; the shard still completes.
"""
from __future__ import annotations

import os
import queue
import resource
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import DataLoader, Dataset

from ..errors import HiersegError
from ..hierarchy import Hierarchy
from ..preprocess import same_shape_groups
from ..segmenter import PreparedImage, Segmenter
from . import record
from .claims import try_claim
from .layout import Layout
from .manifest import Manifest
from .shard import ShardWriter, index_row, segment_rows

__all__ = ["PhotoDataset", "ShardJob", "process_shard", "shard_order"]


@dataclass
class Loaded:
    """What a DataLoader worker hands over for one photo: the prepared image, or why there is none."""

    row: dict[str, Any]
    prepared: PreparedImage | None
    error: str | None


class PhotoDataset(Dataset):
    """The photos of one shard, decoded and prepared (superpixels) in DataLoader workers."""

    def __init__(self, rows: list[dict[str, Any]], root: Path, segmenter: Segmenter) -> None:
        self.rows, self.root, self.segmenter = rows, root, segmenter

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Loaded:
        row = self.rows[index]
        try:
            return Loaded(row, self.segmenter.prepare(self.root / row["path"]), None)
        except Exception as error:  # any unreadable file is a row with its reason, never a crash
            return Loaded(row, None, _reason(error))


def _reason(error: BaseException) -> str:
    return str(error) if isinstance(error, HiersegError) else f"{type(error).__name__}: {error}"


@dataclass
class ShardJob:
    """What every shard of a run shares."""

    segmenter: Segmenter
    manifest: Manifest
    layout: Layout
    fingerprint_digest: str
    top_k: int | None
    batch_size: int = 16
    workers: int = 1
    keep_segments: bool = False
    stale_after: float = 600.0
    on_photo: Callable[[int], None] = field(default=lambda n: None)


def shard_order(n_shards: int, rank: int, world: int) -> list[int]:
    """A rank's own shards (``shard % world == rank``) first, then everyone else's from the next rank on,
    so idle ranks sweep up leftovers starting at different places."""
    own = list(range(rank, n_shards, world))
    others = [s for r in range(1, world) for s in range((rank + r) % world, n_shards, world)]
    return own + others


def run_shards(job: ShardJob, order: list[int]) -> list[dict[str, Any]]:
    """Process every shard of ``order`` that is neither done nor held by a live process; returns done records."""
    records = []
    for shard in order:
        if job.layout.is_done(shard):
            continue
        claim = try_claim(job.layout.claim(shard), job.stale_after)
        if claim is None:
            continue
        try:
            if not job.layout.is_done(shard):  # done between our check and our claim
                records.append(process_shard(job, shard, claim.touch))
        finally:
            claim.release()
    return records


def process_shard(job: ShardJob, shard: int, heartbeat: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Segment one shard's photos and commit it (see ``shard.ShardWriter``); returns its done record."""
    _remove_leftovers(job.layout, shard)
    rows = job.manifest.shard(shard).to_dict("records")
    loader = DataLoader(PhotoDataset(rows, job.manifest.root, job.segmenter), batch_size=job.batch_size,
                        num_workers=job.workers, collate_fn=list, prefetch_factor=2 if job.workers else None)
    writer = ShardWriter(job.layout, shard, job.fingerprint_digest, job.keep_segments)
    stage_ms: dict[str, float] = defaultdict(float)
    pending: queue.Queue = queue.Queue(maxsize=2 * job.batch_size)
    failure: list[BaseException] = []
    thread = threading.Thread(target=_write_loop, args=(pending, writer, job, shard, stage_ms, failure), daemon=True)
    thread.start()
    started, wall_start = time.perf_counter(), time.time()
    try:
        wait = time.perf_counter()
        for batch in loader:
            stage_ms["wait_for_loader"] += (time.perf_counter() - wait) * 1e3
            for item, tree, error in _segment(job.segmenter, batch, stage_ms):
                if failure:
                    raise failure[0]
                pending.put((item.row, tree, error))
            heartbeat()
            wait = time.perf_counter()
        pending.put(None)
        thread.join()
        if failure:
            raise failure[0]
    except BaseException:
        if thread.is_alive():
            pending.put(None)
            thread.join()
        writer.abort()
        raise
    stats = {"seconds": time.perf_counter() - started, "started": wall_start, "finished": time.time(),
             "stage_ms": dict(stage_ms), "batch_size": job.batch_size, "workers": job.workers,
             "device": str(job.segmenter.device),
             # This process's memory after the shard, and its peak so far.
             "rss_mb": _rss_mb(), "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    return writer.commit(stats)


def _segment(segmenter: Segmenter, batch: list[Loaded], stage_ms: dict[str, float]) -> list[tuple[Loaded, Hierarchy | None, str | None]]:
    """Trees of a batch in its order: the network on groups of one view shape, then each photo's readout."""
    results: dict[int, tuple[Loaded, Hierarchy | None, str | None]] = {}
    loaded = []
    for i, item in enumerate(batch):
        if item.prepared is None:
            results[i] = (item, None, item.error)
            continue
        for stage, ms in item.prepared.timings_ms.items():
            stage_ms[stage] += ms
        loaded.append(i)
    for rows in same_shape_groups([batch[i].prepared.view for i in loaded]):
        group = [loaded[r] for r in rows]
        t0 = time.perf_counter()
        try:
            output = segmenter.forward([batch[i].prepared for i in group])
        except Exception as error:
            for i in group:
                results[i] = (batch[i], None, _reason(error))
            continue
        t1 = time.perf_counter()
        stage_ms["model"] += (t1 - t0) * 1e3
        for row, i in enumerate(group):
            item = batch[i]
            try:
                results[i] = (item, segmenter.readout(item.prepared, output, row, meta=segmenter.meta(item.prepared)), None)
            except Exception as error:
                results[i] = (item, None, _reason(error))
        stage_ms["readout"] += (time.perf_counter() - t1) * 1e3
    return [results[i] for i in range(len(batch))]


def _write_loop(pending: queue.Queue, writer: ShardWriter, job: ShardJob, shard: int, stage_ms: dict[str, float],
                failure: list[BaseException]) -> None:
    """The writer thread: encode each tree, append it and its rows to the shard, in order."""
    try:
        while (item := pending.get()) is not None:
            row, tree, error = item
            t0 = time.perf_counter()
            index = index_row(row["key"], row["path"], row["size"], shard, tree, error)
            if tree is None:
                writer.add(index)
            else:
                members = record.encode(tree, job.top_k)
                segments = segment_rows(row["key"], tree) if job.keep_segments else None
                writer.add(index, members, segments)
            stage_ms["encode_write"] += (time.perf_counter() - t0) * 1e3
            job.on_photo(1)
    except BaseException as error:  # handed to the main thread, which stops the shard
        failure.append(error)
        while pending.get() is not None:  # keep the producer from blocking on a full queue
            pass


def _rss_mb() -> float | None:
    """Resident memory now (Linux), None elsewhere."""
    try:
        with open("/proc/self/statm") as file:
            return round(int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def _remove_leftovers(layout: Layout, shard: int) -> None:
    """The ``*.tmp`` files a killed writer of this shard left (we hold its claim: nobody else writes them)."""
    name = layout.shard_name(shard)
    for folder in ("shards", "index", "segments", "done"):
        for path in (layout.out / folder).glob(f"{name}.*.tmp"):
            path.unlink(missing_ok=True)

