"""The readout plug-in point: how one image of a model's batch output becomes a ``Hierarchy``.

A readout groups (``Readout.group``: the model's output -> a tree of the photo's superpixels, no class
evidence yet); the grouping then takes the labeller's evidence of the photo and becomes a ``Hierarchy``
(``Grouping.hierarchy``). The ``Segmenter`` runs the model, calls both and the labeller, and knows no
readout by name: ``hierseg.readout.registry.READOUTS`` lists them, and the first that reads the
checkpoint's config (``Readout.from_checkpoint``) is the one used.

A new readout is one file with a ``Readout`` subclass and its ``Grouping``, plus its entry in ``READOUTS``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from ..checkpoints import CheckpointConfig
    from ..hierarchy import Hierarchy
    from ..hierarchy.merge_tree import MergeTree
    from ..labeller import PhotoEvidence
    from ..model import CAST, CASTOutput
    from ..preprocess import PreparedImage


class Grouping(ABC):
    """One photo's tree before class evidence."""

    @abstractmethod
    def hierarchy(self, photo: PhotoEvidence, class_names: Sequence[str], meta: Callable[[], dict[str, Any]]) -> Hierarchy:
        """The ``Hierarchy`` with ``photo``'s evidence for every node (``hierseg.labeller.NO_EVIDENCE``:
        none). ``meta()`` is called once the evidence is pooled, so that it can time the labeller."""


class Readout(ABC):
    """Model output of one image -> its grouping."""

    # How many of the model's stages the readout reads (``CAST.forward(stages=)``); None: all of them.
    stages: int | None = None

    @classmethod
    @abstractmethod
    def from_checkpoint(cls, config: CheckpointConfig) -> Readout | None:
        """This readout as ``config`` sets it up, or None when the config calls for another one."""

    @abstractmethod
    def group(self, model: CAST, prepared: PreparedImage, output: CASTOutput, index: int) -> Grouping:
        """The grouping of image ``index`` of a batch ``output`` of ``model`` on ``prepared``, at the photo's size."""

    def merge_tree(self, model: CAST, prepared: PreparedImage, output: CASTOutput, index: int) -> MergeTree:
        """The photo's merge tree over its view's superpixels, for readouts that build one.

        Raises:
            ValueError: this readout builds no merge tree.
        """
        raise ValueError("this checkpoint reads out fixed levels: its config has no merge tree")
