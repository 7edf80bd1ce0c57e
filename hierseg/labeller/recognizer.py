"""Evidence from EfficientNet-Lite0's head: the recognizer both Lite0 kinds share.

The head (1x1 conv 320 -> 1280, BatchNorm, ReLU6) gives the 1280-d penultimate feature of every cell
of the body's last map (stride 32) and its 1000-way classifier is linear, so the classifier on a node's
mean feature is the mean of the cells' logits weighted by the node's pixels in each cell: the cells are
a logit field (``LogitField.from_grid``). The cells also "see" a horse from the grass beside it; the
superpixel tokens, mixed in by ``token_weight``, are more local. The photo's prediction is the
recognizer on two views, the whole view (the cells' global average) and the standard 224 px centre
crop, logits averaged, over ``image_temperature``.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..model.lite0 import LITE0_MEAN, LITE0_STD, LITE0_STRIDE, Lite0Head
from ..preprocess import normalise
from .base import Labeller, LabellerConfig
from .evidence import LogitField, PhotoEvidence


@dataclass(frozen=True)
class RecognizerConfig(LabellerConfig):
    """Settings of the Lite0 kinds: the photo's second view is the central ``crop_size`` square of the
    photo resized to ``crop_resize`` on its short side (bicubic), as ImageNet evaluation takes it."""

    crop_size: int = 224
    crop_resize: int = 256


def centre_crop(rgb: np.ndarray, size: int, resize: int) -> np.ndarray:
    """The usual ImageNet evaluation view: short side to ``resize`` (bicubic), the central ``size`` square."""
    height, width = rgb.shape[:2]
    scale = resize / min(height, width)
    image = Image.fromarray(rgb).resize((max(size, round(width * scale)), max(size, round(height * scale))), Image.BICUBIC)
    x0, y0 = (image.width - size) // 2, (image.height - size) // 2
    return np.asarray(image.crop((x0, y0, x0 + size, y0 + size)))


class RecognizerLabeller(Labeller):
    """Lite0's head on the cells of a last map of the photo, plus the centre crop for the photo.

    ``body`` maps (B, 3, H, W) in Lite0's scaling to its maps, the last one (B, 320, H/32, W/32)
    (``Lite0Body``); ``head`` is Lite0's head. A kind says which map of which view the cells come from.
    """

    def __init__(self, config: RecognizerConfig, body: nn.Module, head: Lite0Head) -> None:
        super().__init__(config)
        self.body, self.head = body, head

    def last_map(self, rgb: np.ndarray) -> torch.Tensor:
        """(1, 320, ceil(h/32), ceil(w/32)) the body's last map of an (h, w, 3) uint8 image."""
        x = normalise(rgb, LITE0_MEAN, LITE0_STD)[None].to(next(self.head.parameters()).device)
        return self.body(x)[-1]

    @abstractmethod
    def cell_view(self, photo: np.ndarray, view: np.ndarray, stem_map: torch.Tensor | None
                  ) -> tuple[np.ndarray, torch.Tensor]:
        """(the view the cells tile, (320, >= ceil(h/32), >= ceil(w/32)) its last map)."""

    @torch.inference_mode()
    def forward(self, photo: np.ndarray, view: np.ndarray, superpixels: np.ndarray | None = None,
                token_logits: np.ndarray | None = None, stem_map: torch.Tensor | None = None,
                cls_logits: np.ndarray | None = None) -> PhotoEvidence:
        view, last_map = self.cell_view(photo, view, stem_map)
        grid = (-(-view.shape[0] // LITE0_STRIDE), -(-view.shape[1] // LITE0_STRIDE))
        cell_logits = self.head(last_map[None, :, : grid[0], : grid[1]])[0].float().cpu().numpy()
        cells = LogitField.from_grid(cell_logits, view.shape[:2])
        crop = self.head(self.last_map(centre_crop(photo, self.config.crop_size, self.config.crop_resize)))
        # The global average feature's logits are the mean of the cells' logits (the classifier is linear).
        n_classes = cell_logits.shape[-1]
        image_logits = (cells.logits.mean(0) + crop.float().cpu().numpy().reshape(-1, n_classes).mean(0)) / 2
        fields = [(cells, 1.0)]
        if token_logits is not None and superpixels is not None and self.config.token_weight:
            w = self.config.token_weight
            tokens = LogitField(np.asarray(superpixels), np.asarray(token_logits, dtype=np.float32))
            fields = [(cells, 1.0 - w), (tokens, w)]
        return PhotoEvidence(fields, image_logits.astype(np.float32), self.config)
