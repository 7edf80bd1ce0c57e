"""The deterministic list of a run's photos, made once per output folder, and its fixed shards.

SRC is a folder (searched recursively for image files) or a text file of paths (one a line, relative
paths taken from the file's folder; blank lines and ``#`` comments skipped). Rows are sorted by the path
relative to the root (never the file system's listing order), each with its size in bytes and a stable
``key`` (a hash of the relative path: webdataset keys must hold no dot). Shard ``s`` holds rows
``s * shard_size`` up to the next shard. The manifest is written to ``OUT/manifest.parquet`` on the first
run and read back on every later one, so photos added to SRC afterwards are not picked up by that folder.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import HiersegError

__all__ = ["IMAGE_EXTENSIONS", "Manifest", "build_manifest", "source_root"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


@dataclass(frozen=True)
class Manifest:
    """``rows``: a DataFrame with ``key``, ``path`` (relative to ``root``) and ``size``, sorted by path."""

    root: Path
    rows: pd.DataFrame
    shard_size: int

    @property
    def n_shards(self) -> int:
        return -(-len(self.rows) // self.shard_size)

    def shard(self, shard: int) -> pd.DataFrame:
        """The rows of one shard (manifest order)."""
        if not 0 <= shard < self.n_shards:
            raise ValueError(f"shard {shard} is outside 0..{self.n_shards - 1}")
        return self.rows.iloc[shard * self.shard_size:(shard + 1) * self.shard_size]

    def absolute(self, relative: str) -> Path:
        return self.root / relative

    def save(self, path: Path) -> None:
        table = self.rows.copy()
        table.attrs = {}
        tmp = path.with_name(path.name + ".tmp")
        table.to_parquet(tmp, index=False)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, root: Path, shard_size: int) -> Manifest:
        return cls(root, pd.read_parquet(path), shard_size)


def source_root(source: str | os.PathLike) -> Path:
    """The folder manifest paths are relative to: SRC itself, or the folder of a list file."""
    source = Path(source).resolve()
    return source if source.is_dir() else source.parent


def photo_key(relative: str) -> str:
    """A stable webdataset key for a relative path (16 hex digits of its SHA-1)."""
    return hashlib.sha1(relative.encode("utf-8")).hexdigest()[:16]


def build_manifest(source: str | os.PathLike, shard_size: int) -> Manifest:
    """List SRC's photos (see the module's docstring).

    Raises:
        HiersegError: SRC missing, or no photo found.
    """
    source = Path(source)
    if shard_size < 1:
        raise HiersegError(f"shard size must be at least 1, got {shard_size}")
    root = source_root(source)
    if source.is_dir():
        relative = [p.relative_to(root).as_posix() for p in root.rglob("*")
                    if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    elif source.is_file():
        lines = [line.strip() for line in source.read_text().splitlines()]
        relative = [_relative(Path(line), root) for line in lines if line and not line.startswith("#")]
    else:
        raise HiersegError(f"{source} is neither a folder of photos nor a text file of paths")
    relative = sorted(set(relative))
    if not relative:
        raise HiersegError(f"no photos in {source} (extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    # A listed path that is missing stays in the manifest (size -1) and becomes an error row.
    sizes = [_size(root / r) for r in relative]
    rows = pd.DataFrame({"key": [photo_key(r) for r in relative], "path": relative, "size": sizes})
    if rows["key"].duplicated().any():  # 64-bit hash: a collision would need ~4e9 photos
        raise HiersegError("two photo paths hash to the same key")
    return Manifest(root, rows, shard_size)


def _relative(path: Path, root: Path) -> str:
    path = path if path.is_absolute() else root / path
    path = Path(os.path.normpath(path))
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()  # outside the list's folder: kept absolute (root / absolute == absolute)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
