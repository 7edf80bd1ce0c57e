"""A run's trees in formats other tools read: COCO JSON with compressed RLE, and Hugging Face parquet.

* ``export_coco_dataset``: one COCO document for many photos. Every node of every level is an annotation
  (``hierseg.export.export_coco``'s: ``bbox``, ``area``, ``category_id`` and the ``hierseg`` field with
  ``node``, ``level``, ``parent``, ``label``, ``top_classes``), its mask as *compressed* RLE (the string form
  ``pycocotools.mask.decode`` reads), ``file_name`` the photo's path relative to the source folder.
* ``export_hf_parquet``: one row per segmented photo for ``datasets.load_dataset("parquet", ...)``: the key,
  path, size, labels, the superpixel map as an ``Image`` feature and the tree record as bytes
  (``hierseg.dataset.record.decode`` reads it back), with the features in the schema's ``huggingface``
  metadata as ``datasets`` writes them.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..export import export_coco
from . import record
from .results import DatasetResults

__all__ = ["compress_counts", "decompress_counts", "export_coco_dataset", "export_hf_parquet"]


def compress_counts(counts: Sequence[int]) -> str:
    """COCO's compressed RLE string of run lengths: each count less the one two before it (from the
    third on), in 5-bit groups, low first, 0x20 marking "more", offset by 48 into printable ASCII."""
    chars = []
    for i, value in enumerate(counts):
        value = int(value) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            group = value & 0x1F
            value >>= 5  # arithmetic: a negative difference ends in -1
            more = value != -1 if group & 0x10 else value != 0
            chars.append(chr((group | (0x20 if more else 0)) + 48))
    return "".join(chars)


def decompress_counts(text: str) -> list[int]:
    """Inverse of ``compress_counts``."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            group = ord(text[position]) - 48
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            position, shift = position + 1, shift + 5
            if not more and group & 0x10:
                value |= -1 << shift
        counts.append(value + (counts[-2] if len(counts) > 2 else 0))
    return counts


def export_coco_dataset(results: DatasetResults, path: str | os.PathLike, keys: Iterable[str] | None = None,
                        top_k: int = 3) -> Path:
    """Write the photos ``keys`` (default: every segmented one) as one COCO JSON file; returns its path."""
    index = results.index.set_index("key")
    keys = list(index[index["status"] == "ok"].index) if keys is None else list(keys)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    categories: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        single = Path(scratch) / "one.json"
        for image_id, key in enumerate(keys, start=1):
            tree = results.hierarchy(key)
            export_coco(tree, single, file_name=str(index.loc[key, "path"]), top_k=top_k)
            document = json.loads(single.read_text())
            categories = categories or document["categories"]
            images.append({**document["images"][0], "id": image_id, "hierseg_key": key})
            for annotation in document["annotations"]:
                annotation["segmentation"]["counts"] = compress_counts(annotation["segmentation"]["counts"])
                annotations.append({**annotation, "id": len(annotations) + 1, "image_id": image_id})
    path = Path(path)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories},
                               separators=(",", ":")))
    return path


def export_hf_parquet(results: DatasetResults, path: str | os.PathLike, keys: Iterable[str] | None = None) -> Path:
    """Write the photos ``keys`` (default: every segmented one) as a Hugging Face ``datasets`` parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    index = results.index.set_index("key")
    keys = list(index[index["status"] == "ok"].index) if keys is None else list(keys)
    columns: dict[str, list[Any]] = {name: [] for name in ("key", "path", "width", "height", "label", "coarse_labels",
                                                            "segments_per_level", "superpixels", "tree")}
    for key in keys:
        row = index.loc[key]
        members = results.members(key)
        columns["key"].append(key)
        columns["path"].append(str(row["path"]))
        columns["width"].append(int(row["width"]))
        columns["height"].append(int(row["height"]))
        columns["label"].append(str(row["label"]))
        columns["coarse_labels"].append([str(v) for v in row["coarse_labels"]])
        columns["segments_per_level"].append([int(v) for v in row["segments_per_level"]])
        columns["superpixels"].append({"bytes": members[record.SUPERPIXELS], "path": f"{key}.{record.SUPERPIXELS}"})
        columns["tree"].append(members[record.TREE])
    features = {
        "key": {"dtype": "string", "_type": "Value"}, "path": {"dtype": "string", "_type": "Value"},
        "width": {"dtype": "int64", "_type": "Value"}, "height": {"dtype": "int64", "_type": "Value"},
        "label": {"dtype": "string", "_type": "Value"},
        "coarse_labels": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
        "segments_per_level": {"feature": {"dtype": "int64", "_type": "Value"}, "_type": "Sequence"},
        "superpixels": {"_type": "Image"}, "tree": {"dtype": "binary", "_type": "Value"},
    }
    schema = pa.schema([
        ("key", pa.string()), ("path", pa.string()), ("width", pa.int64()), ("height", pa.int64()),
        ("label", pa.string()), ("coarse_labels", pa.list_(pa.string())), ("segments_per_level", pa.list_(pa.int64())),
        ("superpixels", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("tree", pa.binary()),
    ], metadata={"huggingface": json.dumps({"info": {"features": features}})})
    path = Path(path)
    pq.write_table(pa.table(columns, schema=schema), path)
    return path
