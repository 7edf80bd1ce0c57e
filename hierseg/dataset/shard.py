"""Writing one shard: the webdataset tar, the index rows, the optional segment rows, then the done record.

Everything is written under ``*.tmp`` names and renamed into place, the done record last, so a shard is
either complete or redone from scratch by the next run (a killed run leaves only ``*.tmp`` files, which the
next writer of that shard overwrites). Members are added in manifest order with fixed tar metadata, so the
same trees give the same bytes whichever process writes them.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..hierarchy import ROOT, Hierarchy
from ..naming import node_label
from .layout import Layout

__all__ = ["ShardWriter", "index_row", "segment_rows"]

INDEX_COLUMNS = ["key", "path", "size", "shard", "status", "error", "width", "height", "segments_per_level",
                 "label", "coarse_labels"]


def index_row(key: str, path: str, size: int, shard: int, hierarchy: Hierarchy | None = None,
              error: str | None = None) -> dict[str, Any]:
    """One input file's row: its tree's summary, or ``status="error"`` and the reason."""
    row: dict[str, Any] = {"key": key, "path": path, "size": int(size), "shard": shard,
                           "status": "error" if hierarchy is None else "ok", "error": error,
                           "width": None, "height": None, "segments_per_level": None, "label": None, "coarse_labels": None}
    if hierarchy is not None:
        width, height = hierarchy.image_size
        row.update(width=width, height=height,
                   segments_per_level=[hierarchy.n_nodes(level) for level in range(hierarchy.n_levels)],
                   label=node_label(hierarchy, ROOT).text,
                   coarse_labels=[node_label(hierarchy, node).text for node in hierarchy.nodes(0)])
    return row


def segment_rows(key: str, hierarchy: Hierarchy, top_k: int = 5) -> list[dict[str, Any]]:
    """One row per node of every level: level, node, parent, merge node, area, box, top classes."""
    rows = []
    for level in range(hierarchy.n_levels):
        boxes, areas = hierarchy.bboxes(level), hierarchy.areas(level)
        evidence = hierarchy.evidence[level]
        best = np.argsort(-evidence, axis=1, kind="stable")[:, :top_k] if hierarchy.n_classes else None
        for index in range(hierarchy.n_nodes(level)):
            x0, y0, x1, y1 = (int(v) for v in boxes[index])
            rows.append({
                "key": key, "level": level, "node": index,
                "parent": int(hierarchy.parents[level][index]) if level else -1,
                "merge_node": hierarchy.merge_node((level, index)) if hierarchy.merge_tree is not None else -1,
                "area": int(areas[index]), "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                "label": node_label(hierarchy, (level, index)).text,
                "top_classes": [hierarchy.class_names[i] for i in best[index]] if best is not None else [],
                "top_probs": [float(evidence[index, i]) for i in best[index]] if best is not None else [],
            })
    return rows


class ShardWriter:
    """Collects one shard's photos in manifest order; ``commit`` puts the shard in place."""

    def __init__(self, layout: Layout, shard: int, fingerprint_digest: str, keep_segments: bool) -> None:
        self.layout, self.shard, self.digest = layout, shard, fingerprint_digest
        self.keep_segments = keep_segments
        self.tar_path = layout.tar(shard)
        self._tmp_tar = _tmp(self.tar_path)
        self._tar = tarfile.open(self._tmp_tar, "w", format=tarfile.USTAR_FORMAT)
        self.rows: list[dict[str, Any]] = []
        self.segments: list[dict[str, Any]] = []
        self.bytes_per_member: dict[str, int] = {}

    def add(self, row: dict[str, Any], members: dict[str, bytes] | None = None,
            segments: list[dict[str, Any]] | None = None) -> None:
        """One input file: its index row and, for a segmented photo, its members (extension -> bytes)."""
        for extension, data in (members or {}).items():
            info = tarfile.TarInfo(f"{row['key']}.{extension}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            self._tar.addfile(info, io.BytesIO(data))
            self.bytes_per_member[extension] = self.bytes_per_member.get(extension, 0) + len(data)
        self.rows.append(row)
        if self.keep_segments and segments:
            self.segments.extend(segments)

    def commit(self, stats: dict[str, Any]) -> dict[str, Any]:
        """Close the tar and rename everything into place, the done record last; returns that record."""
        self._tar.close()
        _fsync(self._tmp_tar)
        os.replace(self._tmp_tar, self.tar_path)
        _write_parquet(pd.DataFrame(self.rows, columns=INDEX_COLUMNS), self.layout.index(self.shard))
        if self.keep_segments:
            _write_parquet(pd.DataFrame(self.segments), self.layout.segments(self.shard))
        record = {
            "shard": self.shard, "fingerprint": self.digest, "photos": len(self.rows),
            "ok": sum(row["status"] == "ok" for row in self.rows),
            "errors": sum(row["status"] == "error" for row in self.rows),
            "keys": [row["key"] for row in self.rows],
            "tar_bytes": self.tar_path.stat().st_size, "tar_sha256": _sha256(self.tar_path),
            "bytes_per_member": self.bytes_per_member, **stats,
        }
        done = self.layout.done(self.shard)
        tmp = _tmp(done)
        tmp.write_text(json.dumps(record))
        _fsync(tmp)
        os.replace(tmp, done)
        return record

    def abort(self) -> None:
        self._tar.close()
        self._tmp_tar.unlink(missing_ok=True)


def _tmp(path: Path) -> Path:
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = _tmp(path)
    frame.to_parquet(tmp, index=False)
    _fsync(tmp)
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as file:
        os.fsync(file.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
