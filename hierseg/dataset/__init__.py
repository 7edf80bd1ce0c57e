"""Segment a whole data set: sharded, many processes, resumable, compact, browsable (docs/dataset.md).

``manifest`` lists the photos and cuts fixed shards, ``launch`` says which rank a process is, ``claims``
hands shards out, ``fingerprint`` keeps one folder to one set of settings, ``record`` encodes a tree as
webdataset members, ``shard`` writes a shard atomically, ``runner`` is the per-process pipeline, ``run`` ties
them into ``segment_dataset``, ``results`` reads them back (``open_results``), ``exporters`` writes COCO
and Hugging Face parquet. Needs pandas and pyarrow (``pip install 'hierseg[dataset]'``).
"""
from ..errors import MissingDependencyError

try:
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401
except ImportError as error:
    raise MissingDependencyError(f"hierseg.dataset needs pandas and pyarrow ({error}): pip install 'hierseg[dataset]'") from None

from .results import DatasetResults, open_results  # noqa: E402
from .run import RunSettings, segment_dataset  # noqa: E402

__all__ = ["DatasetResults", "RunSettings", "open_results", "segment_dataset"]
