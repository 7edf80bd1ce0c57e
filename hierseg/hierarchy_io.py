"""A ``Hierarchy`` on disk and as JSON: one NPZ file, or ``tree.json`` plus one lossless PNG per level.

Both formats round-trip exactly (``load(save(h)) == h``); ``to_json_dict`` is also the tree's
summary without pixels. ``Hierarchy.save``/``save_pngs``/``load``/``from_pngs``/``to_json_dict``
call these functions.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .hierarchy import ROOT, Hierarchy, Node

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "TREE_JSON", "load", "load_pngs", "save_npz", "save_pngs", "to_json_dict"]

FORMAT_NAME = "hierseg-hierarchy"
FORMAT_VERSION = 1
TREE_JSON = "tree.json"
# Ids above this do not fit a 16-bit PNG.
_MAX_PNG_ID = 2**16 - 1


def to_json_dict(hierarchy: Hierarchy, top_k: int = 5, include_evidence: bool = False) -> dict[str, Any]:
    """The tree as JSON-able data (no pixels).

    Per level: ``level``, ``n_nodes`` and ``nodes``, each node with ``id``, ``node`` ("l:i"),
    ``parent`` (id at the level above; null at level 0, whose parent is the root), ``area``,
    ``bbox`` ``[x0, y0, x1, y1]`` (end-exclusive) and ``top_classes`` ``[[name, prob], ...]``.
    With ``include_evidence`` each level also carries its full ``evidence`` rows, which
    ``load_pngs`` needs for an exact round trip.
    """
    levels = []
    for level in range(hierarchy.n_levels):
        areas, boxes = hierarchy.areas(level).tolist(), hierarchy.bboxes(level).tolist()
        nodes = [
            {
                "id": index,
                "node": str(Node(level, index)),
                "parent": int(hierarchy.parents[level][index]) if level else None,
                "area": area,
                "bbox": bbox,
                "top_classes": [[name, prob] for name, prob in hierarchy.top_classes(Node(level, index), top_k)],
            }
            for index, (area, bbox) in enumerate(zip(areas, boxes))
        ]
        entry: dict[str, Any] = {"level": level, "n_nodes": hierarchy.n_nodes(level), "nodes": nodes}
        if include_evidence:
            # float32 -> Python float is exact, and so is the way back: the round trip is lossless.
            entry["evidence"] = hierarchy.evidence[level].tolist()
        levels.append(entry)
    data: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "image_size": list(hierarchy.image_size),
        "class_names": list(hierarchy.class_names),
        "prediction": hierarchy.prediction.tolist(),
        "top_classes": [[name, prob] for name, prob in hierarchy.top_classes(ROOT, top_k)],
        "meta": json.loads(json.dumps(hierarchy.meta)),  # a plain copy: callers may edit what they get
        "levels": levels,
    }
    if hierarchy.superpixel_ids is not None:
        data["superpixel_ids"] = hierarchy.superpixel_ids.tolist()
    return data


def save_npz(hierarchy: Hierarchy, path: str | Path) -> Path:
    """Write everything to one compressed NPZ file; returns the path."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT_NAME),
        "version": np.array(FORMAT_VERSION),
        "n_levels": np.array(hierarchy.n_levels),
        "class_names": np.array(hierarchy.class_names, dtype=str),
        "prediction": hierarchy.prediction,
        "meta_json": np.array(json.dumps(hierarchy.meta)),
    }
    for level in range(hierarchy.n_levels):
        arrays[f"label_map_{level}"] = hierarchy.label_maps[level]
        arrays[f"parents_{level}"] = hierarchy.parents[level]
        arrays[f"evidence_{level}"] = hierarchy.evidence[level]
    if hierarchy.superpixel_ids is not None:
        arrays["superpixel_ids"] = hierarchy.superpixel_ids
    path = Path(path)
    with open(path, "wb") as file:  # a file object keeps numpy from appending ".npz"
        np.savez_compressed(file, **arrays)
    return path


def load(path: str | Path) -> Hierarchy:
    """Read a hierarchy written by ``save_npz`` (a file) or ``save_pngs`` (a directory)."""
    path = Path(path)
    if path.is_dir():
        return load_pngs(path)
    with np.load(path, allow_pickle=False) as archive:
        if "format" not in archive or "version" not in archive:
            raise ValueError(f"{path} is not a hierseg hierarchy (no format tag)")
        _check_format(str(archive["format"]), int(archive["version"]), path)
        n_levels = int(archive["n_levels"])
        return Hierarchy(
            label_maps=[archive[f"label_map_{level}"] for level in range(n_levels)],
            parents=[archive[f"parents_{level}"] for level in range(n_levels)],
            evidence=[archive[f"evidence_{level}"] for level in range(n_levels)],
            class_names=archive["class_names"].tolist(),
            prediction=archive["prediction"],
            meta=json.loads(str(archive["meta_json"])),
            superpixel_ids=archive["superpixel_ids"] if "superpixel_ids" in archive else None,
        )


def save_pngs(hierarchy: Hierarchy, directory: str | Path, top_k: int = 5) -> Path:
    """Write ``level_<l>.png`` per level plus ``tree.json`` into ``directory``; returns it.

    Each PNG holds the node ids losslessly: 8-bit grayscale when every id fits in a byte,
    16-bit grayscale (``I;16``) otherwise. ``tree.json`` is ``to_json_dict`` with the full
    evidence and the PNG file name of each level, enough for ``load_pngs`` to rebuild an equal
    hierarchy.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = to_json_dict(hierarchy, top_k=top_k, include_evidence=True)
    for level, label_map in enumerate(hierarchy.label_maps):
        top_id = hierarchy.n_nodes(level) - 1
        if top_id > _MAX_PNG_ID:
            raise ValueError(f"level {level} has {top_id + 1} nodes; a 16-bit PNG holds at most {_MAX_PNG_ID + 1}")
        name = f"level_{level}.png"
        Image.fromarray(label_map.astype(np.uint8 if top_id <= 255 else np.uint16)).save(directory / name)
        data["levels"][level]["label_map"] = name
    (directory / TREE_JSON).write_text(json.dumps(data))
    return directory


def load_pngs(directory: str | Path) -> Hierarchy:
    """Read a directory written by ``save_pngs``."""
    directory = Path(directory)
    data = json.loads((directory / TREE_JSON).read_text())
    _check_format(data.get("format"), data.get("version"), directory / TREE_JSON)
    label_maps, parents, evidence = [], [], []
    for level, entry in enumerate(data["levels"]):
        if "evidence" not in entry or "label_map" not in entry:
            raise ValueError(f"{directory / TREE_JSON}: level {level} lacks its evidence or label map file name")
        with Image.open(directory / entry["label_map"]) as image:
            label_maps.append(np.asarray(image).astype(np.int32))
        parents.append(np.array([node["parent"] for node in entry["nodes"]] if level else [], np.int32))
        evidence.append(np.array(entry["evidence"], np.float32).reshape(entry["n_nodes"], len(data["class_names"])))
    superpixel_ids = data.get("superpixel_ids")
    return Hierarchy(
        label_maps,
        parents,
        evidence,
        data["class_names"],
        np.array(data["prediction"], np.float32),
        data["meta"],
        superpixel_ids=None if superpixel_ids is None else np.array(superpixel_ids, np.int64),
    )


def _check_format(name: Any, version: Any, source: Path) -> None:
    if name != FORMAT_NAME or version != FORMAT_VERSION:
        raise ValueError(f"{source} is not a hierseg hierarchy (format {name!r} version {version!r})")
