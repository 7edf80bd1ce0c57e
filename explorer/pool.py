"""Loaded segmenters shared by every session of a process, and the heavy call that uses them.

``run_model`` is the only step that may use a GPU: on a ZeroGPU Space ``spaces.GPU`` lends it one;
elsewhere the decorator does nothing. It returns CPU numpy data.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from hierseg import Hierarchy

try:  # ZeroGPU on Hugging Face Spaces; elsewhere the decorator is a no-op.
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn: Any) -> Any:
        return fn


__all__ = ["SegmenterPool", "run_model"]


class SegmenterPool:
    """Segmenters cached by checkpoint name; ``loader`` maps a name to a segmenter.

    Loading holds a lock: two sessions asking for the same new checkpoint must not download and
    convert it twice.
    """

    def __init__(self, loader: Callable[[str], Any]) -> None:
        self._loader = loader
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        """The segmenter of ``name``, loading it on first use.

        Raises:
            CheckpointError: the checkpoint cannot be found, read or downloaded.
        """
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._loader(name)
            return self._loaded[name]


@gpu
def run_model(pool: SegmenterPool, checkpoint: str, rgb: np.ndarray) -> Hierarchy:
    """The heavy step (superpixels + CAST) on a decoded photo."""
    return pool.get(checkpoint)(rgb)
