"""MoCo-v3 self-supervision: two views of each image, an online model against its momentum copy."""
from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from training.distributed import gather_from_all, process_rank

from .base import Batch, Logs, Objective, Run


def moco_momentum(step: int, total_steps: int, base: float) -> float:
    """MoCo-v3's schedule: from ``base`` at step 0 to 1 at the end along a half cosine."""
    return 1.0 - 0.5 * (1.0 + math.cos(math.pi * step / total_steps)) * (1.0 - base)


class MoCo(Objective):
    """MoCo-v3: online model (projector + predictor) against a momentum copy (projector only).

    Loss = ctr(q1, k2) + ctr(q2, k1), with ctr the InfoNCE of each query against the keys of the whole
    global batch (all-gathered; the positive of local query i sits at i + rank * local batch), scaled
    by 2T as in the official code. The momentum follows :func:`moco_momentum` from ``base_momentum``.
    """

    name = "moco"

    def __init__(self, model: nn.Module, temperature: float = 0.2, base_momentum: float = 0.99) -> None:
        super().__init__()
        if model.predictor is None:
            raise ValueError("MoCo needs a model with a projector and a predictor (proj_dim > 0, predictor=True)")
        self.model = model
        self.momentum_model = copy.deepcopy(model)
        self.momentum_model.predictor = None
        self.momentum_model.requires_grad_(False)
        self.temperature = temperature
        self.base_momentum = base_momentum
        self.momentum = base_momentum

    @classmethod
    def from_config(cls, model: nn.Module, run: Run) -> "MoCo":
        return cls(model, run.config["moco_temperature"], run.config["moco_momentum"])

    def schedule(self, step: int, total_steps: int) -> dict[str, float]:
        self.momentum = moco_momentum(step, total_steps, self.base_momentum)
        return {"momentum": self.momentum}

    @torch.no_grad()
    def update_momentum(self, m: float) -> None:
        """EMA of the online parameters (the momentum copy's BN statistics stay its own, as officially)."""
        online = dict(self.model.named_parameters())
        for name, p in self.momentum_model.named_parameters():
            p.mul_(m).add_(online[name].detach(), alpha=1.0 - m)

    def contrastive(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q = F.normalize(q.float(), dim=1)
        k = gather_from_all(F.normalize(k.float(), dim=1))
        logits = q @ k.t() / self.temperature
        labels = torch.arange(q.shape[0], device=q.device) + q.shape[0] * process_rank()
        return F.cross_entropy(logits, labels) * (2 * self.temperature)

    def forward(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """Two views of every image; the momentum copy takes this step's update before it computes the keys."""
        images, superpixels = batch["images"], batch["superpixels"]
        q1 = self.model(images[:, 0], superpixels[:, 0]).predicted_projection
        q2 = self.model(images[:, 1], superpixels[:, 1]).predicted_projection
        with torch.no_grad():
            self.update_momentum(self.momentum)
            k1 = self.momentum_model(images[:, 0], superpixels[:, 0]).projection
            k2 = self.momentum_model(images[:, 1], superpixels[:, 1]).projection
        loss = self.contrastive(q1, k2) + self.contrastive(q2, k1)
        return loss, {"loss_moco": loss.detach()}
