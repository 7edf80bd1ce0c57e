"""``tokens``: checkpoints with a classifier and no recognizer of their own (official DeiT releases):
the classifier on their superpixel tokens pooled over the node, the cls token for the photo."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .base import Labeller, LabellerConfig
from .evidence import LogitField, PhotoEvidence


@dataclass(frozen=True)
class TokensConfig(LabellerConfig):
    """The checkpoint's own classifier alone, uncalibrated."""

    kind: ClassVar[str] = "tokens"
    reads_cls: ClassVar[bool] = True
    token_weight: float = 1.0
    node_temperature: float = 1.0
    image_temperature: float = 1.0

    def build(self, model: nn.Module, folder: Path | None) -> TokensLabeller:
        return TokensLabeller(self)


class TokensLabeller(Labeller):
    def forward(self, photo: np.ndarray, view: np.ndarray, superpixels: np.ndarray | None = None,
                token_logits: np.ndarray | None = None, stem_map: torch.Tensor | None = None,
                cls_logits: np.ndarray | None = None) -> PhotoEvidence:
        if token_logits is None or superpixels is None or cls_logits is None:
            raise ValueError("the tokens labeller needs token_logits, superpixels and cls_logits")
        tokens = LogitField(np.asarray(superpixels), np.asarray(token_logits, dtype=np.float32))
        return PhotoEvidence([(tokens, 1.0)], np.asarray(cls_logits, np.float32), self.config)
