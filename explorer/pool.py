"""Loaded segmenters shared by every session of a process, and the two heavy calls that use them.

``run_model`` and ``run_refine`` are the only steps that may use a GPU: on a ZeroGPU Space
``spaces.GPU`` lends them one; elsewhere the decorator does nothing. Both return CPU numpy data.
"""
from __future__ import annotations

import threading
from typing import Any, Callable

import numpy as np

from hierseg import Hierarchy
from hierseg.refine import NO_TIME_BUDGET

try:  # ZeroGPU on Hugging Face Spaces; elsewhere the decorator is a no-op.
    import spaces

    gpu = spaces.GPU
except ImportError:

    def gpu(fn: Any) -> Any:
        return fn


__all__ = ["MAX_REFINE_STEPS", "SegmenterPool", "checked_refine_steps", "run_model", "run_refine"]


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


@gpu
def run_refine(pool: SegmenterPool, checkpoint: str, rgb: np.ndarray, steps: int | None,
               progress: Callable[[int, int], None] | None = None) -> Hierarchy:
    """Test-time adaptation on this photo (a private copy of the model), then its tree.

    ``steps=None``: the default steps under the default time budget (the button); a step count asked
    for (``/refine``, see ``checked_refine_steps``) runs in full.
    """
    config = None if steps is None else NO_TIME_BUDGET
    return pool.get(checkpoint).refine(rgb, steps=steps, progress=progress, config=config)


# An API caller may ask for more steps than the app's default, within reason (each costs about a second on CPU).
MAX_REFINE_STEPS = 50


def checked_refine_steps(steps: float | None) -> int | None:
    """A step count asked for, as ``run_refine`` takes it: None (the default) or a whole number 0..``MAX_REFINE_STEPS``.

    Raises:
        ValueError: not a whole number, or out of range; the message says what is accepted.
    """
    if steps is None:
        return None
    if float(steps) != int(steps):
        raise ValueError(f"steps must be a whole number, not {steps}.")
    if not 0 <= int(steps) <= MAX_REFINE_STEPS:
        raise ValueError(f"Refine takes 0 to {MAX_REFINE_STEPS} steps, not {int(steps)}.")
    return int(steps)
