"""Reading a run's results without the model: ``open_results(OUT)``.

``.index`` is one row per input file in manifest order (``key``, ``path``, ``status``: ok, error, or
pending for photos of shards not yet done, plus the summary columns of ``shard.index_row``);
``.hierarchy(key)`` rebuilds the photo's ``Hierarchy`` from its shard (``record.decode``), which
``Hierarchy.recut`` re-cuts at any granularity. ``.segments()`` reads the per-node parquet when the run kept it.
"""
from __future__ import annotations

import json
import os
import tarfile
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import HiersegError
from ..hierarchy import Hierarchy
from . import record
from .layout import Layout
from .manifest import Manifest
from .shard import INDEX_COLUMNS

__all__ = ["DatasetResults", "open_results"]

# Open shard tars kept for random access (a browser clicking around a few shards).
_OPEN_SHARDS = 8


class DatasetResults:
    """A run's output folder, read-only."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.layout = Layout(Path(out))
        if not self.layout.run_json.exists() or not self.layout.manifest.exists():
            raise HiersegError(f"{out} holds no segment-dataset run (no run.json and manifest.parquet)")
        self.run = json.loads(self.layout.run_json.read_text())
        self.class_names: list[str] = self.run["class_names"]
        shard_size = int(self.run["fingerprint"]["shard_size"])
        self.manifest = Manifest.load(self.layout.manifest, Path(self.run["source_root"]), shard_size)
        self._tars: OrderedDict[int, tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]] = OrderedDict()

    @cached_property
    def index(self) -> pd.DataFrame:
        """One row per input file, manifest order; photos of unfinished shards have ``status="pending"``."""
        done = [s for s in range(self.manifest.n_shards) if self.layout.is_done(s)]
        parts = [pd.read_parquet(self.layout.index(s)) for s in done]
        stored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=INDEX_COLUMNS)
        rows = self.manifest.rows.copy()
        rows["shard"] = rows.index // self.manifest.shard_size
        merged = rows.merge(stored.drop(columns=["path", "size", "shard"], errors="ignore"), on="key", how="left")
        merged["status"] = merged["status"].fillna("pending")
        return merged

    @cached_property
    def _by_key(self) -> pd.DataFrame:
        return self.index.set_index("key")

    def status(self) -> dict[str, Any]:
        """Counts: shards done, photos ok / error / pending, bytes written, shards being worked on."""
        counts = self.index["status"].value_counts()
        done = [s for s in range(self.manifest.n_shards) if self.layout.is_done(s)]
        records = [json.loads(self.layout.done(s).read_text()) for s in done]
        claims = sorted(p.stem for p in (self.layout.out / "claims").glob("*.claim"))
        ok = int(counts.get("ok", 0))
        stored = sum(r["tar_bytes"] for r in records)
        return {"shards": self.manifest.n_shards, "shards_done": len(done), "photos": len(self.index),
                "ok": ok, "error": int(counts.get("error", 0)), "pending": int(counts.get("pending", 0)),
                "tar_bytes": stored, "bytes_per_photo": round(stored / ok) if ok else None,
                "working_on": claims, "fingerprint": self.run["digest"]}

    def hierarchy(self, key: str) -> Hierarchy:
        """The stored tree of photo ``key``.

        Raises:
            KeyError: no such key, or the photo is an error row or not segmented yet.
        """
        return record.decode(self.members(key), self.class_names)

    def path(self, key: str) -> str:
        """The photo's path relative to the source folder (absolute when it lies outside it)."""
        return str(self._by_key.loc[key, "path"])

    def members(self, key: str) -> dict[str, bytes]:
        """The photo's stored files (extension -> bytes), as in its shard's tar.

        Raises:
            KeyError: as ``hierarchy``.
        """
        if key not in self._by_key.index:
            raise KeyError(f"no photo with key {key!r}")
        row = self._by_key.loc[key]
        if row["status"] != "ok":
            raise KeyError(f"photo {key!r} ({row['path']}) has status {row['status']}"
                           + (f": {row['error']}" if row["status"] == "error" else ""))
        tar, members = self._open(int(row["shard"]))
        data = {}
        for extension in (record.SUPERPIXELS, record.TREE):
            with tar.extractfile(members[f"{key}.{extension}"]) as file:
                data[extension] = file.read()
        return data

    def segments(self) -> pd.DataFrame:
        """Every node of every segmented photo (runs made with ``--segments``)."""
        paths = [self.layout.segments(s) for s in range(self.manifest.n_shards) if self.layout.is_done(s)]
        paths = [p for p in paths if p.exists()]
        if not paths:
            raise HiersegError(f"{self.layout.out} has no segment tables: run segment-dataset with --segments")
        return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)

    def _open(self, shard: int) -> tuple[tarfile.TarFile, dict[str, tarfile.TarInfo]]:
        if shard in self._tars:
            self._tars.move_to_end(shard)
            return self._tars[shard]
        tar = tarfile.open(self.layout.tar(shard), "r")
        entry = (tar, {member.name: member for member in tar.getmembers()})
        self._tars[shard] = entry
        if len(self._tars) > _OPEN_SHARDS:
            self._tars.popitem(last=False)[1][0].close()
        return entry

    def close(self) -> None:
        for tar, _ in self._tars.values():
            tar.close()
        self._tars.clear()

    def __enter__(self) -> DatasetResults:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_results(out: str | os.PathLike) -> DatasetResults:
    """The results in ``out`` (see the module's docstring)."""
    return DatasetResults(out)
