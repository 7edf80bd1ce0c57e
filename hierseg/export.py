"""One segment's mask and cut-out, and the whole tree as COCO RLE or as one zip, written from a ``Hierarchy``.

(The tree itself is saved by ``Hierarchy.save`` / ``save_pngs``, which decide the files' dtypes.)

* ``export_mask`` / ``export_cutout``: the selected segment (or a list of disjoint segments, taken as one
  region: ``Hierarchy.union_mask``) as a black-and-white PNG and as an RGBA PNG of the photo cropped to
  its box, transparent outside it (full working resolution).
* ``export_coco``: every node of every level as a COCO-style annotation with an uncompressed RLE
  (``{"size": [h, w], "counts": [...]}``, column-major, starting with a background run: what
  ``pycocotools.mask.frPyObjects`` reads).
* ``export_tree_zip``: ``save_pngs``' folder (``tree.json``, ``evidence.npz``, one lossless PNG label
  map per level) as one zip; unzipped, it loads back exactly with ``Hierarchy.load(folder)``.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from .hierarchy import Hierarchy, NodeLike
from .labels import run_lengths
from .naming import node_label

# One node, or a list of disjoint nodes taken as one region.
Selection = Union[NodeLike, list[NodeLike]]

__all__ = ["Selection", "coco_rle", "decode_coco_rle", "export_coco", "export_cutout", "export_mask", "export_tree_zip",
           "selection_mask"]


def selection_mask(hierarchy: Hierarchy, node: Selection) -> np.ndarray:
    """(H, W) bool mask of one node, or of the union of a list of disjoint nodes."""
    return hierarchy.union_mask(node) if isinstance(node, list) else hierarchy.mask(node)


def export_mask(hierarchy: Hierarchy, node: Selection, path: str | os.PathLike) -> Path:
    """The node's (or the listed nodes' union's) mask at the working resolution: white inside, black outside
    (8-bit greyscale PNG)."""
    path = Path(path)
    Image.fromarray(selection_mask(hierarchy, node).astype(np.uint8) * 255, "L").save(path)
    return path


def export_cutout(hierarchy: Hierarchy, rgb: np.ndarray, node: Selection, path: str | os.PathLike) -> Path:
    """The photo inside the node's (or the listed nodes' union's) box as RGBA, alpha 255 on it and 0 elsewhere."""
    if rgb.shape[:2] != hierarchy.shape:
        raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]}, hierarchy is {hierarchy.image_size}")
    mask = selection_mask(hierarchy, node)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    x0, y0, x1, y1 = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
    alpha = mask[y0:y1, x0:x1].astype(np.uint8) * 255
    rgba = np.dstack([rgb[y0:y1, x0:x1], alpha])
    path = Path(path)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def coco_rle(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed COCO RLE of a bool mask: run lengths in column-major order, first run background."""
    inside, lengths = run_lengths(np.asarray(mask, bool).ravel(order="F"))
    counts = lengths.tolist()
    if inside.size and inside[0]:
        counts = [0, *counts]  # COCO runs start with background
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def decode_coco_rle(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of ``coco_rle``."""
    height, width = rle["size"]
    values = np.arange(len(rle["counts"])) % 2 == 1
    flat = np.repeat(values, rle["counts"])
    return flat.reshape((width, height)).T


def export_coco(hierarchy: Hierarchy, path: str | os.PathLike, file_name: str = "", top_k: int = 3) -> Path:
    """The whole tree as COCO-style JSON: one annotation per node of every level.

    Each annotation has ``segmentation`` (RLE), ``area``, ``bbox`` ``[x, y, w, h]``, ``category_id``
    and ``hierseg`` (``node``, ``level``, ``parent``, ``label``, ``top_classes``) so the tree can be rebuilt.
    Names follow ``hierseg.naming``, as everywhere: ``category_id`` is the named class, 1-based, and 0
    (none) when the node is uncertain, named by a WordNet family (``label`` says which), or without a
    classifier. ``file_name`` is the photo's, extension included, as COCO tools look it up.
    """
    width, height = hierarchy.image_size
    annotations = []
    for level in range(hierarchy.n_levels):
        for node in hierarchy.nodes(level):
            x0, y0, x1, y1 = hierarchy.bbox(node)
            top = hierarchy.top_classes(node, top_k)
            # The named class's index (names can repeat: ImageNet has two "crane"s), -1 when none.
            stated = node_label(hierarchy, node)
            annotations.append({
                "id": len(annotations) + 1,
                "image_id": 1,
                "segmentation": coco_rle(hierarchy.mask(node)),
                "area": hierarchy.area(node),
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": 0,
                "category_id": stated.class_index + 1,
                "hierseg": {
                    "node": str(node),
                    "level": level,
                    "parent": str(hierarchy.parent(node)),
                    "label": stated.text,
                    "top_classes": [[name, round(prob, 4)] for name, prob in top],
                },
            })
    document = {
        "images": [{"id": 1, "width": width, "height": height, "file_name": file_name}],
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(hierarchy.class_names)],
        "annotations": annotations,
    }
    path = Path(path)
    path.write_text(json.dumps(document, separators=(",", ":")))
    return path


def export_tree_zip(hierarchy: Hierarchy, path: str | os.PathLike) -> Path:
    """``Hierarchy.save_pngs``' folder (``tree.json``, ``evidence.npz``, every level's ``level_<l>.png``,
    lossless, 0 = coarsest) as one zip; returns the path."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        folder = hierarchy.save_pngs(tmp)
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(folder.iterdir()):
                # The PNGs and evidence.npz are already deflated; compressing them again only costs time.
                method = zipfile.ZIP_DEFLATED if file.suffix == ".json" else zipfile.ZIP_STORED
                archive.write(file, file.name, compress_type=method)
    return path
