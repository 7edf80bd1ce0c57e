"""Distillation for the hybrid-stem model, whose stem is the teacher's own body."""
from __future__ import annotations

import torch
from torch import nn

from hierseg.model import CASTOutput
from hierseg.recognition_losses import distillation_loss
from training.teacher import Teacher

from .base import Batch, Logs, Objective, Run


class HybridDistill(Objective):
    """Distillation for the hybrid-stem model, with the teacher seeing exactly the student's view.

    Setting up copies the teacher's body into the student's stem and the teacher's classifier into the
    classifier behind the student's 1280-d feature layer (``head.classifier``), frozen. So the teacher's output
    on the same view costs only its head: ``teacher.head_map`` turns the body's last map into the
    1280-d penultimate map T, whose mean is the teacher's image feature and whose classifier gives
    its logits. Three terms:

    * KL(teacher || student) on the image logits (the cls token), at ``temperature``;
    * the cls token's 1280-d feature (``head.feature``) regresses the teacher's image feature;
    * dense: every node's token at every level regresses the area-weighted mean of T over the node's
      pixels, so a segment's evidence (the teacher's classifier on its feature) says what the teacher
      sees in that segment alone, for all 1000 classes.

    Regression losses are mean squared errors relative to the mean square of the target.
    """

    name = "hybrid_distill"
    classifies = True

    def __init__(self, model: nn.Module, teacher: Teacher, temperature: float = 1.0, feature_weight: float = 1.0,
                 dense_weight: float = 1.0) -> None:
        super().__init__()
        if model.head is None or model.head.feature is None:
            raise ValueError("hybrid distillation needs a model with head_width > 0 (a feature layer and a classifier)")
        # On --resume the saved state overwrites both with the same tensors.
        model.stem.backbone.load_state_dict(teacher.body_state_dict())
        model.head.classifier.load_state_dict(teacher.net.classifier.state_dict())
        model.head.classifier.requires_grad_(False)
        self.model = model
        self.teacher = teacher
        self.temperature = temperature
        self.feature_weight = feature_weight
        self.dense_weight = dense_weight

    @classmethod
    def from_config(cls, model: nn.Module, run: Run) -> "HybridDistill":
        cfg = run.config
        normalisation = run.images.input_config
        return cls(model, Teacher(normalisation.mean, normalisation.std), cfg["distill_temperature"],
                   cfg["feature_weight"], cfg["dense_weight"])

    def teacher_network(self) -> Teacher:
        return self.teacher

    def forward(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """The first view of every image, in the teacher's normalisation."""
        out = self.model(batch["images"][:, 0], batch["superpixels"][:, 0])
        teacher_map = self.teacher.head_map(out.stem_map)  # (B, 1280, h/32, w/32)
        teacher_feature = teacher_map.mean((2, 3))
        teacher_logits = self.teacher.net.classifier(teacher_feature)
        student_feature = self.model.head.feature(out.features)
        loss_image = distillation_loss(out.logits, teacher_logits, self.temperature)
        loss_feature = relative_mse(student_feature, teacher_feature)
        loss_dense = self.dense_loss(out, teacher_map)
        loss = loss_image + self.feature_weight * loss_feature + self.dense_weight * loss_dense
        logs = {"loss_image": loss_image.detach(), "loss_feature": loss_feature.detach(), "loss_dense": loss_dense.detach(),
                "agree_top1": (out.logits.argmax(-1) == teacher_logits.argmax(-1)).float().mean()}
        return loss, logs

    def dense_loss(self, out: CASTOutput, teacher_map: torch.Tensor) -> torch.Tensor:
        targets, areas = node_targets(out, teacher_map)
        losses = []
        for tokens, target, area in zip(self.model.level_tokens(out), targets, areas, strict=True):
            real = area > 0
            predicted = self.model.head.feature(self.model.norm(tokens))
            losses.append(relative_mse(predicted[real], target[real]))
        return torch.stack(losses).mean()


def relative_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (predicted.float() - target).square().mean() / target.square().mean().clamp(min=1e-8)


@torch.no_grad()
def node_targets(out: CASTOutput, dense: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Area-weighted means of a dense map (B, D, h, w) on the stem's last grid over every node of every level.

    Returns per level (B, N_l, D) means and (B, N_l) areas in pixels (0 for padding nodes).
    """
    if out.token_cells is None:
        raise ValueError("node targets need the hybrid stem's token cells")
    grid_shape = tuple(out.stem_map.shape[-2:])
    if tuple(dense.shape[-2:]) != grid_shape:
        raise ValueError(f"dense map {tuple(dense.shape[-2:])} does not match the token cells' grid {grid_shape}")
    grid = dense.float().flatten(2).transpose(1, 2)  # (B, P, D)
    area = out.token_cells.sum(-1)
    mean = out.token_cells @ grid / area.clamp(min=1)[..., None]
    targets, areas = [mean], [area]
    for assignment in out.assignment_logits:
        weights = assignment.float() * area[..., None]  # one-hot rows times node areas
        area = weights.sum(1)
        mean = weights.transpose(1, 2) @ mean / area.clamp(min=1e-6)[..., None]
        targets.append(mean)
        areas.append(area)
    return targets, areas
