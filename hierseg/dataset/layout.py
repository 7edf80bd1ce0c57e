"""Where a run's files live inside OUT, in one place.

    OUT/run.json                   the run fingerprint, the class names, the source folder (fingerprint.py)
    OUT/manifest.parquet           every input file: key, path, size (manifest.py)
    OUT/shards/shard-NNNNNN.tar    webdataset tar: KEY.superpixels.png, KEY.tree.npz per photo (record.py)
    OUT/index/shard-NNNNNN.parquet one row per input file of the shard (shard.py)
    OUT/segments/shard-NNNNNN.parquet  one row per node, with ``--segments`` (shard.py)
    OUT/done/shard-NNNNNN.json     written last: the shard is complete (its photos, counts, checksum)
    OUT/claims/shard-NNNNNN.claim  the process working on it (claims.py)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout"]


@dataclass(frozen=True)
class Layout:
    out: Path

    @staticmethod
    def shard_name(shard: int) -> str:
        return f"shard-{shard:06d}"

    @property
    def run_json(self) -> Path:
        return self.out / "run.json"

    @property
    def manifest(self) -> Path:
        return self.out / "manifest.parquet"

    def tar(self, shard: int) -> Path:
        return self.out / "shards" / f"{self.shard_name(shard)}.tar"

    def index(self, shard: int) -> Path:
        return self.out / "index" / f"{self.shard_name(shard)}.parquet"

    def segments(self, shard: int) -> Path:
        return self.out / "segments" / f"{self.shard_name(shard)}.parquet"

    def done(self, shard: int) -> Path:
        return self.out / "done" / f"{self.shard_name(shard)}.json"

    def claim(self, shard: int) -> Path:
        return self.out / "claims" / f"{self.shard_name(shard)}.claim"

    def make_folders(self) -> None:
        for name in ("shards", "index", "segments", "done", "claims"):
            (self.out / name).mkdir(parents=True, exist_ok=True)

    def is_done(self, shard: int) -> bool:
        return self.done(shard).exists()
