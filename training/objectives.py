"""Image-level recognition objectives that train CAST: supervised, MoCo-v3 and distillation.

Each objective is an ``nn.Module`` that owns the model (and, for MoCo, its momentum copy) and maps a
batch to ``(loss, logs)``: one forward of the wrapper per step, which is what DistributedDataParallel
expects. ``logs`` holds detached scalars for the log file.

None of them sees a mask. The optional *segment-token* term scores every segment of every level with
the same classifier as the cls token and pools the per-segment class scores into an image prediction by
a smooth maximum, trained against the image's target; it is what gives per-segment class evidence a
meaning (the app shows ``softmax(classify_tokens(token))`` for every segment).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from hierseg.model import CAST, CASTOutput
from hierseg.recognition_losses import distillation_loss, segment_logits, smooth_max

Logs = dict[str, torch.Tensor]


class Supervised(nn.Module):
    """Cross-entropy on the cls logits (+ optionally on the segment-pooled logits).

    Targets are class indices (label smoothing applied here) or, with mixup/cutmix, soft target
    distributions that already carry the smoothing (timm ``Mixup``), scored with soft cross-entropy.
    """

    def __init__(self, model: CAST, label_smoothing: float = 0.1, segment_weight: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.segment_weight = segment_weight
        self.hard = LabelSmoothingCrossEntropy(label_smoothing) if label_smoothing > 0 else nn.CrossEntropyLoss()
        self.soft = SoftTargetCrossEntropy()

    def criterion(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return self.soft(logits, targets) if targets.ndim == 2 else self.hard(logits, targets)

    def forward(self, images: torch.Tensor, superpixels: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        """images (B, 3, S, S), superpixels (B, S, S), targets (B,) int64 or (B, C) probabilities."""
        out = self.model(images, superpixels)
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


class Distill(nn.Module):
    """Match the teacher's softened class distribution with the cls logits and the segment-pooled logits."""

    def __init__(self, model: CAST, temperature: float = 1.0, segment_weight: float = 0.5) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature
        self.segment_weight = segment_weight

    def forward(self, images: torch.Tensor, superpixels: torch.Tensor, teacher_logits: torch.Tensor) -> tuple[torch.Tensor, Logs]:
        """images (B, 3, S, S), superpixels (B, S, S), teacher_logits (B, C)."""
        out = self.model(images, superpixels)
        loss_image = distillation_loss(out.logits, teacher_logits, self.temperature)
        logs = {"loss_image": loss_image.detach()}
        loss = loss_image
        if self.segment_weight > 0:
            per_level = [distillation_loss(z, teacher_logits, self.temperature) for z in segment_logits(self.model, out)]
            loss_segments = torch.stack(per_level).mean()
            loss = loss + self.segment_weight * loss_segments
            logs["loss_segments"] = loss_segments.detach()
        logs["agree_top1"] = (out.logits.argmax(-1) == teacher_logits.argmax(-1)).float().mean()
        return loss, logs


class HybridDistill(nn.Module):
    """Distillation for the hybrid-stem model, with the teacher seeing exactly the student's view.

    The student's stem *is* the teacher's frozen body, so the teacher's output on the same view costs
    only its head: ``teacher.head_map`` turns the body's last map into the 1280-d penultimate map T,
    whose mean is the teacher's image feature and whose classifier gives its logits. Three terms:

    * KL(teacher || student) on the image logits (the cls token), at ``temperature``;
    * the cls token's 1280-d feature (``head[0]``) regresses the teacher's image feature;
    * dense: every node's token at every level regresses the area-weighted mean of T over the node's
      pixels, so a segment's evidence (the teacher's classifier on its feature) says what the teacher
      sees in that segment alone, for all 1000 classes.

    Regression losses are mean squared errors relative to the mean square of the target.
    """

    def __init__(self, model: CAST, teacher: nn.Module, temperature: float = 1.0, feature_weight: float = 1.0,
                 dense_weight: float = 1.0) -> None:
        super().__init__()
        if not isinstance(model.head, nn.Sequential):
            raise ValueError("hybrid distillation needs a model with head_width > 0 (a feature layer and a classifier)")
        self.model = model
        self.teacher = teacher
        self.temperature = temperature
        self.feature_weight = feature_weight
        self.dense_weight = dense_weight

    def forward(self, images: torch.Tensor, superpixels: torch.Tensor, _unused: torch.Tensor | None = None) -> tuple[torch.Tensor, Logs]:
        """images (B, 3, h, w) in the teacher's normalisation; superpixels (B, h, w) int64."""
        out = self.model(images, superpixels)
        teacher_map = self.teacher.head_map(out.stem)  # (B, 1280, h/32, w/32)
        teacher_feature = teacher_map.mean((2, 3))
        teacher_logits = self.teacher.net.classifier(teacher_feature)
        student_feature = self.model.head[0](out.features)
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
        for tokens, target, area in zip(self.model.level_tokens(out), targets, areas):
            real = area > 0
            predicted = self.model.head[0](self.model.norm(tokens))
            losses.append(relative_mse(predicted[real], target[real]))
        return torch.stack(losses).mean()


def relative_mse(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (predicted.float() - target).square().mean() / target.square().mean().clamp(min=1e-8)


@torch.no_grad()
def node_targets(out: CASTOutput, dense: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Area-weighted means of a dense map (B, D, h, w) on the stem's last grid over every node of every level.

    Returns per level (B, N_l, D) means and (B, N_l) areas in pixels (0 for padding nodes).
    """
    if out.token_cells is None or out.cell_grid is None:
        raise ValueError("node targets need the hybrid stem's token cells")
    if tuple(dense.shape[-2:]) != tuple(out.cell_grid):
        raise ValueError(f"dense map {tuple(dense.shape[-2:])} does not match the token cells' grid {out.cell_grid}")
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


@torch.no_grad()
def gather_from_all(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` over all processes along dim 0 (no gradient; identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def moco_momentum(step: int, total_steps: int, base: float) -> float:
    """MoCo-v3's schedule: from ``base`` at step 0 to 1 at the end along a half cosine."""
    return 1.0 - 0.5 * (1.0 + math.cos(math.pi * step / total_steps)) * (1.0 - base)


class MoCo(nn.Module):
    """MoCo-v3: online model (projector + predictor) against a momentum copy (projector only).

    Loss = ctr(q1, k2) + ctr(q2, k1), with ctr the InfoNCE of each query against the keys of the whole
    global batch (all-gathered; the positive of local query i sits at i + rank * local batch), scaled
    by 2T as in the official code.
    """

    def __init__(self, model: CAST, temperature: float = 0.2) -> None:
        super().__init__()
        if model.predictor is None:
            raise ValueError("MoCo needs a model with a projector and a predictor (proj_dim > 0, predictor=True)")
        self.model = model
        self.momentum_model = copy.deepcopy(model)
        self.momentum_model.predictor = None
        self.momentum_model.requires_grad_(False)
        self.temperature = temperature

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
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        labels = torch.arange(q.shape[0], device=q.device) + q.shape[0] * rank
        return F.cross_entropy(logits, labels) * (2 * self.temperature)

    def forward(self, images: torch.Tensor, superpixels: torch.Tensor, momentum: float) -> tuple[torch.Tensor, Logs]:
        """images (B, 2, 3, S, S) and superpixels (B, 2, S, S): two views; ``momentum`` for this step."""
        q1 = self.model(images[:, 0], superpixels[:, 0]).prediction
        q2 = self.model(images[:, 1], superpixels[:, 1]).prediction
        with torch.no_grad():
            self.update_momentum(momentum)
            k1 = self.momentum_model(images[:, 0], superpixels[:, 0]).projection
            k2 = self.momentum_model(images[:, 1], superpixels[:, 1]).projection
        loss = self.contrastive(q1, k2) + self.contrastive(q2, k1)
        return loss, {"loss_moco": loss.detach()}
