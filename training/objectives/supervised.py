"""Supervised training on the image labels: DeiT's recipe (label smoothing, mixup/cutmix) for CAST."""
from __future__ import annotations

import torch
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from hierseg.recognition_losses import segment_logits

from .base import Batch, Logs, Objective, Run


class Supervised(Objective):
    """Cross-entropy on the cls logits (+ optionally on the segment-pooled logits).

    Targets are class indices (label smoothing applied here) or, with ``mixup``, the soft target
    distributions timm's ``Mixup`` makes (they already carry the smoothing), scored with soft
    cross-entropy. The segment-token term scores every level's segments with the cls token's
    classifier, pooled into an image prediction by a smooth maximum.
    """

    name = "supervised"
    classifies = True
    uses_labels = True

    def __init__(self, model: nn.Module, label_smoothing: float = 0.1, segment_weight: float = 0.0,
                 mixup: Mixup | None = None) -> None:
        super().__init__()
        self.model = model
        self.segment_weight = segment_weight
        self.mixup = mixup
        self.hard = LabelSmoothingCrossEntropy(label_smoothing) if label_smoothing > 0 else nn.CrossEntropyLoss()
        self.soft = SoftTargetCrossEntropy()

    @classmethod
    def from_config(cls, model: nn.Module, run: Run) -> "Supervised":
        cfg = run.config
        mixup = None
        if cfg["mixup_alpha"] > 0 or cfg["cutmix_alpha"] > 0:
            mixup = Mixup(mixup_alpha=cfg["mixup_alpha"], cutmix_alpha=cfg["cutmix_alpha"],
                          label_smoothing=cfg["label_smoothing"], num_classes=model.config.num_classes)
        return cls(model, cfg["label_smoothing"], cfg["segment_weight"], mixup)

    @property
    def find_unused_parameters(self) -> bool:
        return super().find_unused_parameters and self.segment_weight == 0

    def criterion(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return self.soft(logits, targets) if targets.ndim == 2 else self.hard(logits, targets)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """The first view of every image against its label."""
        images, targets = batch["images"][:, 0], batch["label"]
        if self.mixup is not None:
            images, targets = self.mixup(images, targets)
        out = self.model(images, batch["superpixels"][:, 0])
        loss_image = self.criterion(out.logits, targets)
        logs = {"loss_image": loss_image.detach()}
        loss = loss_image
        if self.segment_weight > 0:
            loss_segments = torch.stack([self.criterion(z, targets) for z in segment_logits(self.model, out)]).mean()
            loss = loss + self.segment_weight * loss_segments
            logs["loss_segments"] = loss_segments.detach()
        if targets.ndim == 1:
            logs["top1"] = (out.logits.argmax(-1) == targets).float().mean()
        return loss, logs
