"""Files a person takes away from the explorer, named after the photo and the node, never a temp name.

* the photo as shown (``chelsea-0-1.png``, the overlay's own download);
* the selection's bundle: its mask (``-mask.png``), its RGBA cut-out (``-cutout.png``), the whole
  tree as COCO RLE (``chelsea-coco.json``) and ``chelsea-tree.zip``;
* ``export_zip``: ``tree.json``, ``evidence.npz`` and one lossless PNG label map per level; unzipped,
  it loads back exactly with ``Hierarchy.load(folder)`` (the API's ``/export``).

Each file is written into a folder of its own under ``Downloads.root``, so two sessions' files of
the same name never collide.
"""
from __future__ import annotations

import os
import tempfile
import uuid
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from hierseg.export import export_coco, export_cutout, export_mask
from hierseg.hierarchy import ROOT, Hierarchy, Node, NodeLike
from hierseg.hierarchy.io import EVIDENCE_NPZ

from .session import Session

__all__ = ["Downloads", "download_name", "export_zip", "halve_evidence"]


def download_name(photo: str, node: NodeLike | None = None, suffix: str = "", ext: str = "png") -> str:
    """``<photo's stem>[-<level>-<index>][-<suffix>].<ext>``; the root gets no node part (``chelsea-tree.zip``)."""
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


def export_zip(hierarchy: Hierarchy, path: str | os.PathLike) -> Path:
    """Write ``Hierarchy.save_pngs``'s folder (``tree.json``, ``evidence.npz``, every level's ``level_<l>.png``,
    lossless, 0 = coarsest) into one zip, its evidence made smaller where that loses nothing (``halve_evidence``)."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        folder = hierarchy.save_pngs(tmp)
        halve_evidence(folder / EVIDENCE_NPZ)
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(folder.iterdir()):
                # The PNGs and evidence.npz are already deflated; compressing them again only costs time.
                method = zipfile.ZIP_DEFLATED if file.suffix == ".json" else zipfile.ZIP_STORED
                archive.write(file, file.name, compress_type=method)
    return path


def halve_evidence(path: str | os.PathLike) -> Path:
    """Rewrite an ``evidence.npz`` (``save_pngs``') compressed, with each level's evidence (``level_<l>``) as float16
    wherever float16 holds that level exactly; returns the path.

    A tree read out of a merge tree holds its evidence at float16 precision (its rows are merge-tree rows,
    which ``Hierarchy`` keeps at float16), so for it this halves the evidence's raw bytes and loses nothing
    (a 481x321 photo's ``evidence.npz``: 803 KB to 724 KB); any other level's evidence stays float32. The reader casts level evidence to float32 (``hierseg.hierarchy.io.read_pngs``,
    format version 2 and before), so the file loads back to the same tree and keeps its format version.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    for name, array in arrays.items():
        if name.startswith("level_") and array.dtype == np.float32:
            half = array.astype(np.float16)
            if np.array_equal(half.astype(np.float32), array):
                arrays[name] = half
    with open(path, "wb") as file:  # a file object keeps numpy from appending ".npz"
        np.savez_compressed(file, **arrays)
    return path


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
        """``<photo>-tree.zip`` of the session's tree (``export_zip``)."""
        return export_zip(session.hierarchy, self.path(download_name(session.name, None, "tree", "zip")))

    def selection_bundle(self, session: Session) -> list[Path]:
        """The selection's mask and cut-out, the tree as COCO RLE and the label-map zip.

        The COCO file names a node's category only where the page states its class (``hierseg.naming``).
        """
        node, name, hierarchy = session.selected, session.name, session.hierarchy
        return [
            export_mask(hierarchy, node, self.path(download_name(name, node, "mask"))),
            export_cutout(hierarchy, session.rgb, node, self.path(download_name(name, node, "cutout"))),
            export_coco(hierarchy, self.path(download_name(name, None, "coco", "json")), name),
            self.tree_zip(session),
        ]
