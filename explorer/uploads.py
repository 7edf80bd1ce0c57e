"""A file a person gave the app: where the server keeps it, the name they know it by, a digest of its bytes.

An ``Upload`` is read once per event: its digest tells a repeated file from a new one before any
decoding, and every message about it names the person's file, not the server's temp copy.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hierseg import ImageLoadError
from hierseg.imageio import load_image

__all__ = ["Upload", "read_upload"]


@dataclass(frozen=True)
class Upload:
    """An uploaded file: ``path`` on the server, ``name`` as the person named it, ``key`` the SHA-1 of its bytes."""

    path: str
    name: str
    key: str

    def decode(self) -> np.ndarray:
        """The photo's pixels (``hierseg.imageio.load_image``: EXIF, 16 bit, CMYK...).

        Raises:
            ImageLoadError: not a usable image; the message names ``name``.
        """
        try:
            return load_image(self.path)
        except ImageLoadError as exc:
            # The library names the file it was given: the server's copy, whose name the person never saw.
            raise ImageLoadError(str(exc).replace(f"'{self.path}'", f"'{self.name}'")) from exc


def read_upload(value: dict[str, Any] | None) -> Upload | None:
    """The file of a ``gr.Image(type="filepath")`` value taken unprocessed, digested; None when there is none."""
    if not value or not value.get("path"):
        return None
    path = str(value["path"])
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return Upload(path, value.get("orig_name") or Path(path).name, digest.hexdigest())
