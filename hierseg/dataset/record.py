"""One photo's stored tree: a ``Hierarchy`` as two webdataset members, and back.

* ``KEY.superpixels.png``: the leaf label map at the photo's working size (the Hierarchy's leaf ids),
  8-bit when every id fits a byte, else 16-bit.
* ``KEY.tree.npz``: the parents of every level, the merge tree (merges, heights, costs), its config and
  cut heights, the superpixel ids, the photo's prediction (float32, exact), and per evidence row (the merge
  tree's nodes, or every level's nodes for a checkpoint with fixed levels) its top-k classes (uint16 ids,
  float16 probabilities); with ``evidence="full"`` every row whole at float16.

Decoding rebuilds the same ``Hierarchy`` without the model: the levels are the stored merge tree cut at the
stored heights (``Hierarchy.recut``'s rule), checked against the stored parents. Precision: label maps,
parents, the merge tree, the cut and the prediction are exact; a row's top-k probabilities are exact (the
Hierarchy holds merge-tree evidence at float16 already), and with top-k evidence the rest of its mass is
spread evenly over the other classes (never above the k-th, so ``top_classes(node, k)`` is unchanged).
"""
from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
from PIL import Image

from ..hierarchy import Hierarchy
from ..hierarchy.merge_tree import MergeTree, TreeConfig

__all__ = ["SUPERPIXELS", "TREE", "decode", "encode", "evidence_mode"]

SUPERPIXELS = "superpixels.png"
TREE = "tree.npz"
RECORD_VERSION = 1
# Fixed member time in the npz: the same tree gives the same bytes, run after run.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def evidence_mode(text: str) -> int | None:
    """``"top5"`` -> 5, ``"full"`` -> None (every class kept). Raises ValueError otherwise."""
    if text == "full":
        return None
    if text.startswith("top") and text[3:].isdigit() and int(text[3:]) >= 1:
        return int(text[3:])
    raise ValueError(f"evidence must be 'topK' (e.g. top5) or 'full', got {text!r}")


def encode(hierarchy: Hierarchy, top_k: int | None) -> dict[str, bytes]:
    """The photo's members (extension -> bytes). ``top_k=None`` keeps the full evidence."""
    leaves = hierarchy.label_maps[-1]
    png = io.BytesIO()
    Image.fromarray(leaves.astype(np.uint8 if leaves.max() <= 255 else np.uint16)).save(png, format="PNG")
    arrays: dict[str, np.ndarray] = {
        "version": np.array(RECORD_VERSION),
        "prediction": hierarchy.prediction,
        "meta_json": np.array(json.dumps(_stable_meta(hierarchy.meta))),
        "n_classes": np.array(hierarchy.n_classes),
    }
    for level in range(1, hierarchy.n_levels):
        arrays[f"parents_{level}"] = hierarchy.parents[level].astype(np.int32)
    arrays["n_levels"] = np.array(hierarchy.n_levels)
    if hierarchy.superpixel_ids is not None:
        arrays["superpixel_ids"] = hierarchy.superpixel_ids.astype(np.int32)
    tree = hierarchy.merge_tree
    if tree is not None:
        arrays.update({"merge_n_leaves": np.array(tree.n_leaves), "merge_merges": tree.merges.astype(np.int32),
                       "merge_heights": tree.heights, "merge_costs": tree.costs,
                       "tree_config_json": np.array(json.dumps(hierarchy.tree_config.to_dict())),
                       "cut_heights": np.array(hierarchy.cut_heights)})
        rows = hierarchy.merge_evidence
    else:
        rows = np.concatenate(hierarchy.evidence)
    arrays.update(_evidence_arrays(rows, top_k))
    return {SUPERPIXELS: png.getvalue(), TREE: _npz_bytes(arrays)}


def decode(members: dict[str, bytes], class_names: list[str]) -> Hierarchy:
    """The ``Hierarchy`` of a photo's members (what ``encode`` wrote)."""
    with Image.open(io.BytesIO(members[SUPERPIXELS])) as image:
        leaves = np.asarray(image).astype(np.int32)
    with np.load(io.BytesIO(members[TREE]), allow_pickle=False) as archive:
        stored = {name: archive[name] for name in archive.files}
    if int(stored["version"]) != RECORD_VERSION:
        raise ValueError(f"tree record version {int(stored['version'])}; this hierseg reads {RECORD_VERSION}")
    n_levels, n_classes = int(stored["n_levels"]), int(stored["n_classes"])
    if n_classes != len(class_names):
        raise ValueError(f"the record has {n_classes} classes, the run's class list {len(class_names)}")
    rows = _dense_rows(stored, n_classes)
    parents = [np.zeros(0, np.int32)] + [stored[f"parents_{level}"] for level in range(1, n_levels)]
    meta = json.loads(str(stored["meta_json"]))
    superpixel_ids = stored.get("superpixel_ids")
    if "merge_merges" in stored:
        tree = MergeTree(int(stored["merge_n_leaves"]), stored["merge_merges"], stored["merge_heights"], stored["merge_costs"])
        config = TreeConfig.from_dict(json.loads(str(stored["tree_config_json"])))
        hierarchy = Hierarchy.cut_from(leaves, tree, config, rows, class_names, stored["prediction"], meta, superpixel_ids)
        if hierarchy.n_levels != n_levels or any(not np.array_equal(a, b) for a, b in zip(hierarchy.parents, parents)):
            raise ValueError("the stored merge tree's cut does not give the stored parents (a corrupt record?)")
        return hierarchy
    label_maps = [leaves]
    for level in range(n_levels - 1, 0, -1):  # a level's map is the finer map through its parents
        label_maps.insert(0, parents[level][label_maps[0]])
    sizes = np.cumsum([0] + [int(m.max()) + 1 for m in label_maps])
    evidence = [rows[a:b] for a, b in zip(sizes[:-1], sizes[1:])]
    return Hierarchy(label_maps, parents, evidence, class_names, stored["prediction"], meta, superpixel_ids)


def _stable_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The tree's metadata without timings (they differ run to run; the run log keeps them)."""
    return {key: value for key, value in meta.items() if key != "timings_ms"}


def _evidence_arrays(rows: np.ndarray, top_k: int | None) -> dict[str, np.ndarray]:
    rows = np.asarray(rows, np.float32)
    if top_k is None or top_k >= rows.shape[1]:
        return {"evidence_full": rows.astype(np.float16)}
    # Best first, ties by class id, as Hierarchy.top_classes orders them.
    ids = np.argsort(-rows, axis=1, kind="stable")[:, :top_k]
    return {"top_ids": ids.astype(np.uint16), "top_probs": np.take_along_axis(rows, ids, 1).astype(np.float16)}


def _dense_rows(stored: dict[str, np.ndarray], n_classes: int) -> np.ndarray:
    """(n_rows, C) float32 at float16 precision: full rows, or top-k with the rest spread evenly."""
    if "evidence_full" in stored:
        return stored["evidence_full"].astype(np.float32)
    ids, probs = stored["top_ids"].astype(np.int64), stored["top_probs"].astype(np.float32)
    if n_classes == 0:
        return np.zeros((len(ids), 0), np.float32)
    rest = n_classes - ids.shape[1]
    fill = (np.clip(1.0 - probs.sum(1, keepdims=True), 0.0, None) / max(rest, 1)).astype(np.float16)
    # The spread stays below the k-th probability (the classes left out hold at most that much each, and
    # a tie would let a low class id overtake it in top_classes): at most the float16 just under it.
    below_kth = np.nextafter(probs[:, -1:].astype(np.float16), np.float16(0))
    rows = np.repeat(np.minimum(fill, below_kth).astype(np.float32), n_classes, axis=1)
    np.put_along_axis(rows, ids, probs, 1)
    return rows


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``np.savez_compressed`` with fixed member times, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()
