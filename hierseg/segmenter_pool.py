"""Loaded segmenters shared by every session of a process, each checkpoint read (or downloaded) once."""
from __future__ import annotations

import threading
from typing import Any, Callable

__all__ = ["SegmenterPool"]


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

    def loaded(self, name: str) -> bool:
        """Whether ``name`` is already in memory (picking it costs nothing)."""
        with self._lock:
            return name in self._loaded
