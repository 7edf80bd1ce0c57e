"""The interface between the training loop and what it optimises.

An objective is an ``nn.Module`` that owns the model (and whatever else the loss needs: a momentum
copy, a teacher) and turns one batch into ``(loss, logs)``. The loop calls it once per step, wrapped
in DistributedDataParallel under DDP, and never asks which objective it is: everything an objective
needs from the run it takes in ``from_config``, and everything that changes with the step it takes
in ``schedule``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from training.data import SuperpixelImages
from training.distributed import Processes
from training.teacher import Teacher

# What the training DataLoader yields: ``images`` (B, V, 3, h, w) float, V views of each image;
# ``superpixels`` (B, V, h, w) int64; ``label`` (B,) int64; ``index`` (B,) into the training set.
Batch = dict[str, torch.Tensor]
# Detached scalars for the log file, averaged over processes by the loop.
Logs = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Run:
    """What an objective may take from the run it is built for, besides the model."""

    config: dict[str, Any]  # the run's configuration (training.config.DEFAULTS and its overrides)
    images: SuperpixelImages  # the training set; its input_config is the student's normalisation
    processes: Processes
    out_dir: Path


class Objective(nn.Module):
    """One batch -> ``(loss, logs)``. Subclasses set ``name`` and implement ``from_config`` and ``forward``."""

    name: ClassVar[str]
    # The model gets a classifier over the run's class names (the run sets num_classes before building it).
    classifies: ClassVar[bool] = False
    # Targets are the training set's labels, so held-out accuracy against labels means something.
    uses_labels: ClassVar[bool] = False

    model: nn.Module

    @classmethod
    def from_config(cls, model: nn.Module, run: Run) -> "Objective":
        """The objective a run's config describes, set up on ``model``."""
        raise NotImplementedError

    def schedule(self, step: int, total_steps: int) -> dict[str, float]:
        """Set what depends on the step before ``forward``; returns those values for the log."""
        return {}

    def teacher_network(self) -> Teacher | None:
        """The network the model learns from, if any (held-out evaluation reports agreement with it)."""
        return None

    @property
    def find_unused_parameters(self) -> bool:
        """Whether some trainable parameter may get no gradient (DDP must then look for them).

        The last pooling feeds only the segment tokens of the coarsest level: only a segment-token
        term reaches it, unless the model freezes it.
        """
        return not self.model.config.freeze_last_pool

    def forward(self, batch: Batch) -> tuple[torch.Tensor, Logs]:
        raise NotImplementedError
