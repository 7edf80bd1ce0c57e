"""The page's checkpoint list: which checkpoints to offer, how each is labelled, and why releases are missing.

Local checkpoints (``$HIERSEG_CHECKPOINT``, the folders in ``checkpoint_roots()``) are always
listed, each followed by its named qualities (``NAME@QUALITY``, e.g. ``default@fine``). An official release is listed as it is when it is on this machine already, with its
download size when the Hub answers, and left out when the Hub cannot be reached (offline it could
only fail); ``unlisted_note`` then says so under the list.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hierseg.checkpoints import (
    CONFIG, OFFICIAL_RELEASES, QUALITY_SEPARATOR, cache_dir, checkpoint_roots, hub, local_names, read_config,
    resolve_checkpoint, split_quality,
)
from hierseg.errors import CheckpointError

__all__ = ["HUB_UNREACHABLE", "available_checkpoints", "checkpoint_label", "checkpoint_qualities", "offered_checkpoints", "release_download_size",
           "release_is_local", "unlisted_note"]

HUB_UNREACHABLE = "Hub unreachable: official releases need a download; only local checkpoints are listed."


def available_checkpoints() -> list[str]:
    """Every checkpoint name to offer: ``$HIERSEG_CHECKPOINT``, the folders holding a ``config.json``
    in ``checkpoint_roots()``, then the official releases; no duplicates."""
    local = []
    if os.environ.get("HIERSEG_CHECKPOINT"):
        local.append(os.environ["HIERSEG_CHECKPOINT"])
    local.extend(local_names(checkpoint_roots()))
    names = [variant for name in local for variant in (name, *checkpoint_qualities(name))]
    names.extend(OFFICIAL_RELEASES)
    return list(dict.fromkeys(names))  # first occurrence kept


def checkpoint_qualities(name: str) -> list[str]:
    """``NAME@QUALITY`` for each named quality of a local checkpoint (none for one that cannot be read)."""
    try:
        config = read_config(resolve_checkpoint(name))
    except CheckpointError:
        return []
    return [f"{name}{QUALITY_SEPARATOR}{quality}" for quality in config.qualities]


def checkpoint_label(name: str) -> str:
    """How a checkpoint is named in a list: a folder by its last component, anything else as is; a
    quality after it (``default · fine``)."""
    base, quality = split_quality(name)
    path = Path(base)
    label = path.name if path.is_dir() else base
    return f"{label} · {quality}" if quality else label


def release_is_local(name: str) -> bool:
    """Whether an official release is on this machine already (converted, or in the Hub's download cache)."""
    repo, filename = OFFICIAL_RELEASES[name]
    return (cache_dir() / hub.release_key(repo, filename) / CONFIG).is_file() or hub.in_hub_cache(repo, filename)


def release_download_size(name: str, timeout: float = 3.0) -> int | None:
    """Bytes to download for an official release, as the Hub states them within ``timeout`` seconds (None: no answer)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    repo, filename = OFFICIAL_RELEASES[name]
    try:
        return get_hf_file_metadata(hf_hub_url(repo, filename), timeout=timeout).size
    except Exception:  # noqa: BLE001  (any failure only means the size is not known)
        return None


def offered_checkpoints(names: list[str], timeout: float = 3.0) -> dict[str, str]:
    """The checkpoints a list should offer, name -> label, in the order of ``names``.

    Local checkpoints and official releases already on this machine (``release_is_local``) are
    named as they are. A release that needs a download is labelled with its size when the Hub
    answers within ``timeout`` seconds (one bounded check, then the sizes asked in parallel), and
    left out when it does not: offline it could only fail.
    """
    remote = [name for name in names if name in OFFICIAL_RELEASES and not release_is_local(name)]
    sizes: dict[str, int | None] = {}
    if remote and hub.hub_reachable(timeout):
        with ThreadPoolExecutor(max_workers=len(remote)) as pool:
            sizes = dict(zip(remote, pool.map(lambda name: release_download_size(name, timeout), remote)))
    offered = {}
    for name in names:
        if name not in remote:
            offered[name] = checkpoint_label(name)
        elif name in sizes:
            size = sizes[name]
            offered[name] = f"{name} (download, {size / 1e6:.0f} MB)" if size else f"{name} (download)"
    return offered


def unlisted_note(names: list[str], offered: dict[str, str]) -> str:
    """The line shown under the list when official releases among ``names`` were left out (only for an
    unreachable Hub, ``offered_checkpoints``); empty when nothing is missing."""
    missing = [name for name in names if name in OFFICIAL_RELEASES and name not in offered]
    return HUB_UNREACHABLE if missing else ""
