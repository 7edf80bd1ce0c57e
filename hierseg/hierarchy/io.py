"""A tree's fields on disk: one NPZ file, or ``tree.json`` plus one lossless PNG label map per level
and the class evidence as ``evidence.npz`` (a JSON list of every node's probability of every class
would be megabytes).

Both formats round-trip exactly (``Hierarchy.load(path)`` after ``h.save(path)`` or
``h.save_pngs(path)`` equals ``h``). This module reads and writes plain fields (``TreeFields``), the
arrays as they are; ``Hierarchy``'s ``save``/``save_pngs``/``load``/``from_pngs`` turn them into a
checked tree. The stored dtype of every evidence array is decided here, once (``stored_evidence``):
float16 where float16 holds the rows exactly (a tree read out of a merge tree, whose evidence a
``Hierarchy`` keeps at float16 precision: half the bytes, nothing lost), float32 otherwise; the
readers give float32 back.

A merge tree (``hierseg.hierarchy.merge_tree``) rides along as optional entries, so files without one
(older ones included) read as before and readers that do not know it skip it: its arrays (merges,
heights, costs) and the evidence of every merge-tree node go into the NPZ file or ``evidence.npz``;
``tree.json`` keeps only ``n_leaves`` and the config. The superpixels' log-evidence (what a union of
segments is pooled from, ``hierseg.hierarchy.union``) rides along with them as ``leaf_log_evidence`` at
float32; a file without it reads as a tree without it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from .merge_tree import MergeTree, TreeConfig

__all__ = ["EVIDENCE_NPZ", "FORMAT_NAME", "FORMAT_VERSION", "TREE_JSON", "TreeFields", "read", "read_pngs", "stored_evidence",
           "write_npz", "write_pngs"]

FORMAT_NAME = "hierseg-hierarchy"
# Version 2 moved the evidence out of tree.json into EVIDENCE_NPZ; version 1 is still read.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
TREE_JSON = "tree.json"
EVIDENCE_NPZ = "evidence.npz"
LEAF_LOG_EVIDENCE = "leaf_log_evidence"
# Ids above this do not fit a 16-bit PNG.
_MAX_PNG_ID = 2**16 - 1


class TreeFields(NamedTuple):
    """The constructor arguments of a ``Hierarchy``, as stored."""

    label_maps: list[np.ndarray]
    parents: list[np.ndarray]
    evidence: list[np.ndarray]
    class_names: list[str]
    prediction: np.ndarray
    meta: dict[str, Any]
    superpixel_ids: np.ndarray | None
    merge_tree: MergeTree | None = None
    tree_config: TreeConfig | None = None
    merge_evidence: np.ndarray | None = None
    leaf_log_evidence: np.ndarray | None = None


def format_tag() -> dict[str, Any]:
    """The keys that mark a ``tree.json`` (and the tree's JSON summary) as this format."""
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION}


def stored_evidence(rows: np.ndarray) -> np.ndarray:
    """Evidence rows as a file holds them: float16 when float16 holds every value exactly, else float32."""
    rows = np.asarray(rows, np.float32)
    half = rows.astype(np.float16)
    return half if np.array_equal(half, rows) else rows


def write_npz(fields: TreeFields, path: str | Path) -> Path:
    """Write everything to one compressed NPZ file; returns the path."""
    arrays: dict[str, np.ndarray] = {
        "format": np.array(FORMAT_NAME),
        "version": np.array(FORMAT_VERSION),
        "n_levels": np.array(len(fields.label_maps)),
        "class_names": np.array(fields.class_names, dtype=str),
        "prediction": fields.prediction,
        "meta_json": np.array(json.dumps(fields.meta)),
    }
    for level, (label_map, parents, evidence) in enumerate(
        zip(fields.label_maps, fields.parents, fields.evidence, strict=True)
    ):
        arrays[f"label_map_{level}"] = label_map
        arrays[f"parents_{level}"] = parents
        arrays[f"evidence_{level}"] = stored_evidence(evidence)
    if fields.superpixel_ids is not None:
        arrays["superpixel_ids"] = fields.superpixel_ids
    if fields.merge_tree is not None:
        arrays.update(_merge_arrays(fields.merge_tree, fields.merge_evidence, fields.leaf_log_evidence))
        arrays["merge_tree_config"] = np.array(json.dumps(fields.tree_config.to_dict()))
    path = Path(path)
    with open(path, "wb") as file:  # a file object keeps numpy from appending ".npz"
        np.savez_compressed(file, **arrays)
    return path


def read(path: str | Path) -> TreeFields:
    """Read what ``write_npz`` (a file) or ``write_pngs`` (a directory) wrote."""
    path = Path(path)
    if path.is_dir():
        return read_pngs(path)
    with np.load(path, allow_pickle=False) as archive:
        if "format" not in archive or "version" not in archive:
            raise ValueError(f"{path} is not a hierseg hierarchy (no format tag)")
        _check_format(str(archive["format"]), int(archive["version"]), path)
        n_levels = int(archive["n_levels"])
        merge = {}
        if "merge_tree_config" in archive:
            merge = _read_merge_arrays(archive, json.loads(str(archive["merge_tree_config"])))
        return TreeFields(
            label_maps=[archive[f"label_map_{level}"] for level in range(n_levels)],
            parents=[archive[f"parents_{level}"] for level in range(n_levels)],
            evidence=[archive[f"evidence_{level}"] for level in range(n_levels)],
            class_names=archive["class_names"].tolist(),
            prediction=archive["prediction"],
            meta=json.loads(str(archive["meta_json"])),
            superpixel_ids=archive["superpixel_ids"] if "superpixel_ids" in archive else None,
            **merge,
        )


def write_pngs(fields: TreeFields, summary: dict[str, Any], directory: str | Path) -> Path:
    """Write ``level_<l>.png`` per level, ``evidence.npz`` and ``tree.json`` into ``directory``; returns it.

    ``summary`` is the tree's JSON summary (``Hierarchy.to_json_dict``, without evidence); the arrays
    come from ``fields``. Each level's evidence goes to ``evidence.npz`` (``level_<l>``,
    ``stored_evidence``), and so do the merge tree's arrays and evidence when there is one; ``tree.json``
    names the file instead. Each PNG holds the node ids losslessly: 8-bit grayscale when every id fits
    in a byte, 16-bit grayscale (``I;16``) otherwise.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    summary = {**summary, "levels": [dict(entry) for entry in summary["levels"]]}  # the caller's stays as it is
    arrays = {f"level_{level}": stored_evidence(rows) for level, rows in enumerate(fields.evidence)}
    if fields.merge_tree is not None:
        arrays.update(_merge_arrays(fields.merge_tree, fields.merge_evidence, fields.leaf_log_evidence))
        summary["merge_tree"] = {"n_leaves": fields.merge_tree.n_leaves, "config": fields.tree_config.to_dict(),
                                 "arrays": EVIDENCE_NPZ}
    with open(directory / EVIDENCE_NPZ, "wb") as file:  # a file object keeps numpy from appending ".npz"
        np.savez_compressed(file, **arrays)
    summary["evidence"] = EVIDENCE_NPZ
    for level, (label_map, entry) in enumerate(zip(fields.label_maps, summary["levels"], strict=True)):
        entry.pop("evidence", None)
        top_id = entry["n_nodes"] - 1
        if top_id > _MAX_PNG_ID:
            raise ValueError(f"level {level} has {top_id + 1} nodes; a 16-bit PNG holds at most {_MAX_PNG_ID + 1}")
        name = f"level_{level}.png"
        Image.fromarray(label_map.astype(np.uint8 if top_id <= 255 else np.uint16)).save(directory / name)
        entry["label_map"] = name
    (directory / TREE_JSON).write_text(json.dumps(summary))
    return directory


def read_pngs(directory: str | Path) -> TreeFields:
    """Read a directory written by ``write_pngs``."""
    directory = Path(directory)
    data = json.loads((directory / TREE_JSON).read_text())
    _check_format(data.get("format"), data.get("version"), directory / TREE_JSON)
    label_maps, parents, evidence = [], [], []
    stored = _read_evidence(directory, data)
    for level, entry in enumerate(data["levels"]):
        if "label_map" not in entry or (stored is None and "evidence" not in entry):
            raise ValueError(f"{directory / TREE_JSON}: level {level} lacks its evidence or label map file name")
        with Image.open(directory / entry["label_map"]) as image:
            label_maps.append(np.asarray(image).astype(np.int32))
        parents.append(np.array([node["parent"] for node in entry["nodes"]] if level else [], np.int32))
        rows = stored[f"level_{level}"] if stored is not None else entry["evidence"]  # version 1: inline
        evidence.append(np.array(rows, np.float32).reshape(entry["n_nodes"], len(data["class_names"])))
    superpixel_ids = data.get("superpixel_ids")
    merge = {}
    if "merge_tree" in data:
        if stored is None:
            raise ValueError(f"{directory / TREE_JSON}: the merge tree's arrays file is missing")
        merge = _read_merge_arrays(stored, data["merge_tree"]["config"])
    return TreeFields(
        label_maps,
        parents,
        evidence,
        data["class_names"],
        np.array(data["prediction"], np.float32),
        data["meta"],
        superpixel_ids=None if superpixel_ids is None else np.array(superpixel_ids, np.int64),
        **merge,
    )


def _merge_arrays(tree: MergeTree, merge_evidence: np.ndarray, leaf_log_evidence: np.ndarray | None) -> dict[str, np.ndarray]:
    """The arrays of a merge tree, its per-node evidence and its leaves' log-evidence (when kept), as stored."""
    arrays = {"merge_tree_n_leaves": np.array(tree.n_leaves), "merge_tree_merges": tree.merges.astype(np.int32),
              "merge_tree_heights": tree.heights, "merge_tree_costs": tree.costs,
              "merge_evidence": stored_evidence(merge_evidence)}
    if leaf_log_evidence is not None:
        arrays[LEAF_LOG_EVIDENCE] = np.asarray(leaf_log_evidence, np.float32)
    return arrays


def _read_merge_arrays(arrays: Any, config: dict[str, Any]) -> dict[str, Any]:
    """``TreeFields``' merge-tree entries from stored arrays (``_merge_arrays``) and the config's dict."""
    tree = MergeTree(int(arrays["merge_tree_n_leaves"]), arrays["merge_tree_merges"], arrays["merge_tree_heights"],
                     arrays["merge_tree_costs"])
    return {"merge_tree": tree, "tree_config": TreeConfig.from_dict(config),
            "merge_evidence": np.asarray(arrays["merge_evidence"]).astype(np.float32),
            "leaf_log_evidence": np.asarray(arrays[LEAF_LOG_EVIDENCE]) if LEAF_LOG_EVIDENCE in arrays else None}


def _read_evidence(directory: Path, data: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The arrays of the evidence file ``tree.json`` names (None for version 1, which holds them inline)."""
    if not isinstance(data.get("evidence"), str):
        return None
    with np.load(directory / data["evidence"], allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _check_format(name: Any, version: Any, source: Path) -> None:
    if name != FORMAT_NAME or version not in READABLE_VERSIONS:
        raise ValueError(f"{source} is not a hierseg hierarchy (format {name!r} version {version!r})")
