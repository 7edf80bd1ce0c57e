"""Distillation from the teacher's class distribution (EfficientNet-Lite0, ``training/teacher.py``)."""
from __future__ import annotations

import torch
from torch import nn

from hierseg.recognition_losses import distillation_loss, segment_logits
from training.data import ResizedImages
from training.teacher import Teacher, cached_teacher_logits

from .base import Batch, Logs, Objective, Run

TEACHER_SOURCES = ("cache", "online")


class TeacherLogits:
    """The teacher's logits for a batch: looked up among those of the un-augmented images, or computed
    on the student's first view when ``cached`` is None.

    Not a module on purpose: the teacher is frozen and rebuilt from its published weights, so it is
    neither trained nor saved with the training state.
    """

    def __init__(self, teacher: Teacher, cached: torch.Tensor | None = None) -> None:
        self.teacher = teacher
        self.cached = cached  # (N, 1000) float32 on the CPU, row i for training image i

    def __call__(self, batch: Batch) -> torch.Tensor:
        images = batch["images"][:, 0]
        if self.cached is None:
            return self.teacher(images)
        return self.cached[batch["index"].cpu()].to(images.device)


class Distill(Objective):
    """Match the teacher's softened class distribution with the cls logits and the segment-pooled logits."""

    name = "distill"
    classifies = True

    def __init__(self, model: nn.Module, teacher_logits: TeacherLogits, temperature: float = 1.0,
                 segment_weight: float = 0.5) -> None:
        super().__init__()
        self.model = model
        self.teacher_logits = teacher_logits
        self.temperature = temperature
        self.segment_weight = segment_weight

    @classmethod
    def from_config(cls, model: nn.Module, run: Run) -> "Distill":
        """The teacher reads the student's normalisation; with ``teacher=cache`` its logits of every
        un-augmented training image (at ``teacher_size``) are computed once, by the main process, and
        kept as a file that every process reads."""
        cfg = run.config
        if cfg["teacher"] not in TEACHER_SOURCES:
            raise ValueError(f"teacher must be one of {', '.join(TEACHER_SOURCES)}, not {cfg['teacher']!r}")
        normalisation = run.images.input_config
        teacher = Teacher(normalisation.mean, normalisation.std).to(run.processes.device)
        cached = None
        if cfg["teacher"] == "cache":
            size = cfg["teacher_size"] or model.config.stem.img_size
            cached = run.processes.main_first(lambda: cached_teacher_logits(
                teacher, ResizedImages(run.images, size), run.images.images.ids, size,
                cfg["teacher_cache_dir"] or run.out_dir, num_workers=cfg["num_workers"]))
        return cls(model, TeacherLogits(teacher, cached), cfg["distill_temperature"], cfg["segment_weight"])

    def teacher_network(self) -> Teacher:
        return self.teacher_logits.teacher

    @property
    def find_unused_parameters(self) -> bool:
        return super().find_unused_parameters and self.segment_weight == 0

    def forward(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        """The first view of every image against the teacher's logits."""
        target = self.teacher_logits(batch)
        out = self.model(batch["images"][:, 0], batch["superpixels"][:, 0])
        loss_image = distillation_loss(out.logits, target, self.temperature)
        logs = {"loss_image": loss_image.detach()}
        loss = loss_image
        if self.segment_weight > 0:
            per_level = [distillation_loss(z, target, self.temperature) for z in segment_logits(self.model, out)]
            loss_segments = torch.stack(per_level).mean()
            loss = loss + self.segment_weight * loss_segments
            logs["loss_segments"] = loss_segments.detach()
        logs["agree_top1"] = (out.logits.argmax(-1) == target.argmax(-1)).float().mean()
        return loss, logs
