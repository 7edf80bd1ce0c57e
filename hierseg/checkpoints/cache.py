"""The conversion cache: official CAST files (``.pth``/``.pth.tar``) converted once to checkpoint folders.

Converted folders live under ``cache_dir()`` (``$HIERSEG_CACHE``, else ``~/.cache/hierseg``), one per
source file, named by a key (``hub.release_key`` for a Hub file, the file's stem for a local one).
"""
from __future__ import annotations

import os
from pathlib import Path

from ..preprocess import InputConfig
from ..superpixels import SuperpixelConfig
from .format import CONFIG, CheckpointConfig
from .io import save_checkpoint

__all__ = ["cache_dir", "convert_file", "convert_to_cache"]


def cache_dir() -> Path:
    """Where converted checkpoints are kept: ``$HIERSEG_CACHE``, else ``~/.cache/hierseg``."""
    return Path(os.environ.get("HIERSEG_CACHE", Path.home() / ".cache" / "hierseg"))


def convert_to_cache(path: Path, key: str, source: str | None = None) -> Path:
    """The cached checkpoint folder ``key``, converted from ``path`` the first time it is asked for."""
    folder = cache_dir() / key
    if not (folder / CONFIG).is_file():
        convert_file(path, folder, source=source)
    return folder


def convert_file(src: str | Path, dst: str | Path, num_heads: int = 12, clusters: tuple[int, ...] = (64, 32, 16, 8),
                 use_ema: bool = False, source: str | None = None) -> tuple[Path, str]:
    """Convert an official ``.pth``/``.pth.tar`` to a hierseg checkpoint folder. Returns (folder, report)."""
    from ..class_names import imagenet_class_names
    from ..convert import convert_official, official_metadata

    model, report = convert_official(src, num_heads=num_heads, clusters=clusters, use_ema=use_ema)
    meta = official_metadata(report.family)
    names = imagenet_class_names() if model.config.num_classes == 1000 else [f"class {i}" for i in range(model.config.num_classes)]
    config = CheckpointConfig(
        model=model.config,
        superpixels=SuperpixelConfig.from_dict(meta["superpixels"]),
        class_names=names,
        input=InputConfig(size=model.config.stem.img_size, mean=tuple(meta["mean"]), std=tuple(meta["std"])),
        name=Path(dst).name,
        provenance={
            "converted_from": source or str(src),
            "family": report.family,
            "ema": use_ema,
            "tensors_mapped": len(report.mapped),
            "tensors_dropped": len(report.dropped),
            "not_in_file": report.missing,
        },
    )
    return save_checkpoint(model, config, dst), report.summary()
