"""Files a person takes away from the explorer, named after the photo and the node, never a temp name.

* the photo as shown (``chelsea-0-1.png``, the overlay's own download);
* the selection's bundle: its mask (``-mask.png``), its RGBA cut-out (``-cutout.png``), the whole
  tree as COCO RLE (``chelsea-coco.json``) and ``chelsea-tree.zip`` (the API's ``/export``).

The files are the library's (``hierseg.export``), which decides what they hold; this module names them.

Each file is written into a folder of its own under ``Downloads.root``, so two sessions' files of
the same name never collide.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from hierseg.export import export_coco, export_cutout, export_mask, export_tree_zip
from hierseg.hierarchy import ROOT, Node, NodeLike

from .session import Session

__all__ = ["Downloads", "download_name"]


def download_name(photo: str, node: NodeLike | list[NodeLike] | None = None, suffix: str = "", ext: str = "png") -> str:
    """``<photo's stem>[-<level>-<index>][-<suffix>].<ext>``; the root gets no node part (``chelsea-tree.zip``);
    a selection of several nodes joins theirs with ``_`` (``chelsea-1-2_1-5-mask.png``)."""
    if isinstance(node, list):
        nodes = [Node.parse(n) if isinstance(n, str) else Node(*n) for n in node]
        return download_name(photo, None, "_".join(f"{n.level}-{n.index}" for n in nodes if n != ROOT)
                             + (f"-{suffix}" if suffix else ""), ext)
    base, photo_ext = os.path.splitext(photo or "photo")
    if photo_ext[1:].isalnum():  # the photo's file name: its extension is not part of what it is called
        photo = base
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in (photo or "photo")) or "photo"
    parts = [stem]
    if node is not None:
        node = Node.parse(node) if isinstance(node, str) else Node(*node)
        if node != ROOT:
            parts.append(f"{node.level}-{node.index}")
    if suffix:
        parts.append(suffix)
    return "-".join(parts) + "." + ext


class Downloads:
    """Where the app writes what it serves for download (a folder it serves and sweeps)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        """A new file called ``name`` in a folder of its own."""
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def shown_photo(self, session: Session, image: np.ndarray) -> Path:
        """The photo as the session shows it, saved under the photo's and the selection's name."""
        path = self.path(download_name(session.name, session.selected))
        # compress_level=1: a quarter of the default's encode time for ~20 % more bytes.
        Image.fromarray(image).save(path, compress_level=1)
        return path

    def tree_zip(self, session: Session) -> Path:
        """``<photo>-tree.zip`` of the session's tree (``hierseg.export.export_tree_zip``)."""
        return export_tree_zip(session.hierarchy, self.path(download_name(session.name, None, "tree", "zip")))

    def selection_bundle(self, session: Session) -> list[Path]:
        """The selection's mask and cut-out (of all its members as one region), the tree as COCO RLE and the
        label-map zip.

        The COCO file names a node's category only where the page states its class (``hierseg.naming``).
        """
        node = session.members if session.also else session.selected
        name, hierarchy = session.name, session.hierarchy
        return [
            export_mask(hierarchy, node, self.path(download_name(name, node, "mask"))),
            export_cutout(hierarchy, session.rgb, node, self.path(download_name(name, node, "cutout"))),
            export_coco(hierarchy, self.path(download_name(name, None, "coco", "json")), name),
            self.tree_zip(session),
        ]
