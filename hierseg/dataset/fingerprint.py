"""The run fingerprint: what makes two runs' trees comparable, stored once in ``OUT/run.json``.

It holds the checkpoint's digest (its config and weight files), the superpixel, input and tree settings,
the labeller, the evidence kept, the shard size and the hierseg version. A later run into the same folder
must give the same fingerprint, or it is refused: one folder never mixes trees made with different settings.
Batch size, device, worker and process counts are not in it: they change speed, not trees.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import HiersegError

__all__ = ["FingerprintMismatch", "checkpoint_digest", "check_or_write", "run_fingerprint"]

RUN_JSON = "run.json"


class FingerprintMismatch(HiersegError):
    """OUT holds results made with other settings."""


def checkpoint_digest(folder: Path) -> str:
    """SHA-256 over the checkpoint folder's config and weight files (names and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix in (".json", ".safetensors"):
            digest.update(path.name.encode())
            with open(path, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def run_fingerprint(segmenter: Any, checkpoint_folder: Path, evidence: str, shard_size: int) -> dict[str, Any]:
    """The settings that decide a run's trees (plain data)."""
    from .. import __version__

    config = segmenter.config
    return {
        "hierseg_version": __version__,
        "checkpoint": {"name": config.name, "sha256": checkpoint_digest(checkpoint_folder)},
        "superpixels": config.superpixels.to_dict(),
        "input": config.input.to_dict(),
        "tree": config.tree.to_dict() if config.tree is not None else None,
        "labeller": segmenter.labeller.describe() if segmenter.labeller is not None else {"kind": "none"},
        "evidence": evidence,
        "shard_size": shard_size,
    }


def digest(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]


def check_or_write(out: Path, fingerprint: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Write ``run.json`` on the first run (atomically: concurrent ranks write the same bytes); later, refuse
    a different fingerprint. Returns the stored document.

    Raises:
        FingerprintMismatch: naming the settings that differ.
    """
    path = out / RUN_JSON
    document = {"fingerprint": fingerprint, "digest": digest(fingerprint), **extra}
    if not path.exists():
        tmp = path.with_name(f"{RUN_JSON}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(document, indent=1))
        try:
            os.link(tmp, path)  # first writer wins; a rank that loses reads the winner's below
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    stored = json.loads(path.read_text())
    if stored["fingerprint"] != fingerprint:
        differ = sorted(k for k in set(fingerprint) | set(stored["fingerprint"])
                        if fingerprint.get(k) != stored["fingerprint"].get(k))
        raise FingerprintMismatch(
            f"{out} holds results made with other settings ({', '.join(differ)} differ; see {path}); "
            "use a new output folder, or the same settings")
    return stored
