"""Loaded segmenters shared by every session of a process, and the heavy call that uses them.

``run_model`` is the only step that may use a GPU. On a ZeroGPU Space (the Space sets
``SPACES_ZERO_GPU=true``) the ``spaces`` package (0.51) has its rules, which this module follows:

- Weights go to ``"cuda"`` in the main process, outside any ``spaces.GPU`` call: there ``spaces``
  emulates CUDA and keeps the tensors on the CPU, packs them when the app launches, and copies them to
  the lent GPU at the start of each call. ``load_for_host`` therefore loads on ``"cuda"`` on ZeroGPU,
  and the app loads the default before ``launch()`` so it is packed once.
- A decorated call runs in a worker forked from the main process; its arguments are pickled to it. The
  pool goes by reference (``SegmenterPool.__reduce__``: the fork holds the same pool, weights already
  placed), so only the checkpoint's name and the photo travel: no weights, no lock. ``run_model`` loads
  the segmenter (maybe downloading it) in the main process before asking for the GPU, so a checkpoint
  picked later in the app is loaded once, off the GPU's clock, and reaches workers forked after it.
- The GPU is held only for ``segment_on_gpu``, for at most ``GPU_SECONDS`` (``spaces.GPU(duration=)``;
  a shorter stated duration gets a lent GPU sooner). It returns CPU numpy data: no CUDA tensor leaves it.

Elsewhere ``spaces.GPU`` returns the function unchanged and the segmenter picks its device itself
(``"auto"``: CUDA when present, else the CPU).
"""
from __future__ import annotations

import itertools
import os
import threading
import weakref
from typing import Any, Callable

import numpy as np

from hierseg import Hierarchy, load_segmenter

try:  # ZeroGPU on Hugging Face Spaces; elsewhere the decorator is a no-op.
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(task: Any = None, **_: Any) -> Any:
        return task if callable(task) else (lambda fn: fn)


__all__ = ["GPU_SECONDS", "SegmenterPool", "load_for_host", "on_zero_gpu", "run_model", "segment_on_gpu"]

# One photo took 0.18 s end to end on an H200 (docs/hosting.md); 20 s leaves room for a worker's first call
# (CUDA start-up, weights copied in) and is a third of ZeroGPU's default 60 s.
GPU_SECONDS = 20
# Live pools by key, so a pickled pool (a ZeroGPU call's argument) unpickles to the forked process's copy.
_POOLS: weakref.WeakValueDictionary[int, SegmenterPool] = weakref.WeakValueDictionary()
_POOL_KEYS = itertools.count()


def on_zero_gpu() -> bool:
    """Whether this process runs on a ZeroGPU Space (read as ``spaces`` reads it)."""
    return os.getenv("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def load_for_host(name: str) -> Any:
    """The segmenter of checkpoint ``name`` on this machine's device: ``"cuda"`` on ZeroGPU (the move
    is emulated until a decorated call), else ``"auto"``.

    Raises:
        CheckpointError: the checkpoint cannot be found, read or downloaded.
    """
    return load_segmenter(name, device="cuda" if on_zero_gpu() else "auto")


class SegmenterPool:
    """Segmenters cached by checkpoint name; ``loader`` maps a name to a segmenter.

    Loading holds a lock: two sessions asking for the same new checkpoint must not download and
    convert it twice.
    """

    def __init__(self, loader: Callable[[str], Any] = load_for_host) -> None:
        self._loader = loader
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._key = next(_POOL_KEYS)
        _POOLS[self._key] = self

    def __reduce__(self) -> tuple[Callable[[int], SegmenterPool], tuple[int]]:
        return _live_pool, (self._key,)

    def get(self, name: str) -> Any:
        """The segmenter of ``name``, loading it on first use.

        Raises:
            CheckpointError: the checkpoint cannot be found, read or downloaded.
        """
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._loader(name)
            return self._loaded[name]


def _live_pool(key: int) -> SegmenterPool:
    return _POOLS[key]


@gpu(duration=GPU_SECONDS)
def segment_on_gpu(pool: SegmenterPool, checkpoint: str, rgb: np.ndarray) -> Hierarchy:
    """The heavy step (superpixels + CAST + readout) on a decoded photo; the GPU is held only here."""
    return pool.get(checkpoint)(rgb)


def run_model(pool: SegmenterPool, checkpoint: str, rgb: np.ndarray) -> Hierarchy:
    """Segment ``rgb`` with ``checkpoint``: loaded here, off the GPU, then run in ``segment_on_gpu``."""
    pool.get(checkpoint)
    return segment_on_gpu(pool, checkpoint, rgb)
