"""The labeller plug-in point: a config per kind (plain data, ``config.json``'s ``labeller``) that builds
its module, and the module that makes a photo's :class:`~hierseg.labeller.evidence.PhotoEvidence`.

A new kind is one file with a ``LabellerConfig`` subclass (its ``kind``, its settings, ``build``) and its
``Labeller``, plus its entry in ``hierseg.labeller.registry.LABELLERS``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from .evidence import PhotoEvidence


@dataclass(frozen=True)
class LabellerConfig(ABC):
    """How evidence is made and combined. Settings every kind has; a kind adds its own.

    ``token_weight``: share of the checkpoint's classifier on its superpixel tokens in a node's logits
    (0: the kind's own field alone; the segmenter then does not compute them). Temperatures calibrate
    node and photo distributions (measured on held-out photos, ``docs/eval/labels``).
    """

    kind: ClassVar[str]
    # Whether the labeller reads the cls token's logits, which only the model's last stage gives
    # (``Segmenter.forward`` otherwise stops where the readout allows).
    reads_cls: ClassVar[bool] = False
    # Measured on held-out photos (docs/eval/labels): on merge-tree nodes the recognizer alone, at this
    # temperature, beats mixing in the superpixel tokens' logits on centre top-5 and horse contrast.
    token_weight: float = 0.0
    node_temperature: float = 0.948
    image_temperature: float = 0.617

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LabellerConfig:
        """This kind's config from a dict; settings it does not have are dropped (``config.json`` files
        written when every kind shared one record hold them all)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def class_names(self, checkpoint_names: Sequence[str]) -> list[str]:
        """The names of the classes this labeller's evidence ranges over; default: the checkpoint's."""
        return list(checkpoint_names)

    @abstractmethod
    def build(self, model: nn.Module, folder: Path | None) -> Labeller:
        """The labeller for ``model`` (a ``CAST``), with weights read from its checkpoint ``folder`` (None:
        not loaded from a folder).

        Raises:
            CheckpointError: a weights file this kind needs is missing or incomplete.
            MissingDependencyError: a package this kind needs is not installed.
        """


class Labeller(nn.Module, ABC):
    """Names every segment and the photo, separately from the grouping. ``config`` may be swapped for
    another of the same kind (``training.evaluation.labels`` scores settings that way)."""

    def __init__(self, config: LabellerConfig) -> None:
        super().__init__()
        self.config = config

    def describe(self) -> dict[str, Any]:
        """What goes in ``Hierarchy.meta['labeller']``."""
        return self.config.to_dict()

    @abstractmethod
    def forward(self, photo: np.ndarray, view: np.ndarray, superpixels: np.ndarray | None = None,
                token_logits: np.ndarray | None = None, stem_map: torch.Tensor | None = None,
                cls_logits: np.ndarray | None = None) -> PhotoEvidence:
        """Evidence for one photo; a kind reads what it needs of the model's output.

        Args:
            photo: (H, W, 3) uint8 at its working size.
            view: (h, w, 3) uint8, the model's view; ``superpixels`` (h, w) ids 0..S-1 on it.
            token_logits: (S, C) the checkpoint's classifier on its superpixel tokens (None when
                ``config.token_weight`` is 0 or the model has no classifier).
            stem_map: (C', >= ceil(h/32), >= ceil(w/32)) the stem's last map of ``view`` (``CASTOutput.stem_map[i]``).
            cls_logits: (C,) the checkpoint's image logits (None when the pass stopped early).
        """
