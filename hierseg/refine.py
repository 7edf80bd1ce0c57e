"""Refine on this photo: test-time adaptation of a CAST model on one image.

A private copy of the model learns, for a fixed number of steps, to give random crops, flips and
colour changes of the photo the class distribution that the unrefined model gives the whole photo
(self-distillation at the image level, as in CAST's own distillation recipe but with the model as its
own teacher). The objective sees no mask and no label: the cls token's prediction and the predictions
pooled from every level's segment tokens are matched to the whole-photo target. Models without a
classifier (MoCo checkpoints) match their projector output instead, by cosine similarity.

What learns: the transformer blocks, the poolings, the token embedding and the final norm. What stays:
the stem's feature extractor (the hybrid stem's is frozen by design) and the classifier (one photo is
no data to move class boundaries with). The shared model is never touched: frozen modules are shared with the copy by
reference, everything that learns is copied.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .model import CAST, CASTOutput
from .preprocess import InputConfig, View, batch_views, prepare_view
from .recognition_losses import distillation_loss, segment_logits
from .superpixels import SuperpixelConfig

# (steps done, steps planned) after every step
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RefineConfig:
    """How refinement runs; the defaults were chosen on held-out images (docs/evaluation.md, "Refinement on one photo")."""

    steps: int = 6
    views_per_step: int = 8
    lr: float = 1e-4
    crop_scale: tuple[float, float] = (0.35, 1.0)  # crop area as a share of the photo's
    colour_jitter: float = 0.2  # brightness, contrast and saturation factors in 1 +- this
    flip: bool = True  # mirror half of the views
    temperature: float = 1.0
    segment_weight: float = 0.5  # weight of the segment-pooled predictions beside the cls token's
    grad_clip: float = 1.0
    time_budget_s: float | None = 10.0  # stop before a step that would end past it; None: no limit

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"refine steps must be >= 0, got {self.steps}")
        if self.views_per_step < 1:
            raise ValueError(f"refine needs at least one view per step, got {self.views_per_step}")
        low, high = self.crop_scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")


# The default refinement without its time budget: every step asked for runs (the CLI, the API, evaluation).
NO_TIME_BUDGET = RefineConfig(time_budget_s=None)


@dataclass
class RefineReport:
    """What a refinement did; ``Segmenter.refine`` puts it in the hierarchy's meta."""

    steps_planned: int
    steps_done: int = 0
    seed: int = 0
    losses: list[float] = field(default_factory=list)  # mean loss of each step, before its update
    seconds: float = 0.0
    stopped_by_time_budget: bool = False

    def to_dict(self) -> dict:
        return {
            "steps_planned": self.steps_planned,
            "steps_done": self.steps_done,
            "seed": self.seed,
            "losses": [round(v, 5) for v in self.losses],
            "seconds": round(self.seconds, 3),
            "stopped_by_time_budget": self.stopped_by_time_budget,
        }


def frozen_modules(model: CAST) -> list[nn.Module]:
    """What refinement leaves alone: the stem's feature extractor, the classifier, the MoCo heads."""
    parts = (model.stem.backbone, model.head, model.projector, model.predictor)
    return [part for part in parts if part is not None]


def private_copy(model: CAST) -> CAST:
    """A copy of ``model`` whose learning parts are its own; frozen modules are shared, not copied."""
    refined = copy.deepcopy(model, memo={id(module): module for module in frozen_modules(model)})
    for module in frozen_modules(refined):
        module.requires_grad_(False)
    return refined


def learning_parameters(model: CAST) -> list[nn.Parameter]:
    """Every parameter outside the frozen modules."""
    frozen = {id(p) for module in frozen_modules(model) for p in module.parameters()}
    return [p for p in model.parameters() if id(p) not in frozen]


def augmented_view(rgb: np.ndarray, input_config: InputConfig, superpixels: SuperpixelConfig,
                   config: RefineConfig, rng: np.random.Generator) -> View:
    """A random square crop of the photo, maybe mirrored and recoloured, through the one preprocessing path.

    Square views of the checkpoint's size stack into one batch without padding.
    """
    height, width = rgb.shape[:2]
    area = rng.uniform(*config.crop_scale) * height * width
    side = int(np.clip(round(math.sqrt(area)), 1, min(height, width)))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = rgb[top:top + side, left:left + side]
    if config.flip and rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = jitter_colour(crop, config.colour_jitter, rng)
    return prepare_view(np.ascontiguousarray(crop), replace(input_config, resize="square"), superpixels)


def jitter_colour(rgb: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor drawn from [1 - strength, 1 + strength]."""
    if strength <= 0:
        return rgb
    brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, size=3)
    x = rgb.astype(np.float32) * brightness
    x = (x - x.mean()) * contrast + x.mean()
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - grey[..., None]) * saturation + grey[..., None]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def image_target(output: CASTOutput) -> torch.Tensor:
    """What the model says about the whole photo: class logits, or the projector output without a classifier."""
    if output.logits is not None:
        return output.logits.detach()
    if output.projection is None:
        raise ValueError("refine needs a model with a classifier or a MoCo projector")
    return output.projection.detach()


def refine_loss(model: CAST, output: CASTOutput, target: torch.Tensor, config: RefineConfig) -> torch.Tensor:
    """Image-level agreement of every view with the whole-photo target (target: (1, D))."""
    target = target.expand(len(output.features), -1)
    if output.logits is None:  # MoCo: the predictor (or projector) of a view against the photo's projection
        view = output.predicted_projection if output.predicted_projection is not None else output.projection
        return (1 - F.cosine_similarity(view.float(), target.float(), dim=-1)).mean()
    loss = distillation_loss(output.logits, target, config.temperature)
    if config.segment_weight > 0:
        levels = [distillation_loss(z, target, config.temperature) for z in segment_logits(model, output)]
        loss = loss + config.segment_weight * torch.stack(levels).mean()
    return loss


def refine_model(model: CAST, rgb: np.ndarray, view: View, input_config: InputConfig, superpixels: SuperpixelConfig,
                 config: RefineConfig = RefineConfig(), seed: int = 0,
                 progress: Progress | None = None) -> tuple[CAST, RefineReport]:
    """Adapt a private copy of ``model`` to one photo; ``model`` itself is left bit for bit as it was.

    rgb: (H, W, 3) uint8, the photo the crops are cut from; view: its whole-photo view (the target).
    Deterministic for a given ``seed`` (on one device with the same thread count). Returns the adapted
    copy in eval mode and what was done.
    """
    start = time.perf_counter()
    device = next(model.parameters()).device
    refined = private_copy(model).eval()  # eval: no dropout, BatchNorm statistics stay as trained
    report = RefineReport(steps_planned=config.steps, seed=seed)
    pixels, labels = batch_views([view])
    with torch.no_grad():
        target = image_target(refined(pixels.to(device), labels.to(device)))
    learning = learning_parameters(refined)
    optimiser = torch.optim.AdamW(learning, lr=config.lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    for step in range(config.steps):
        elapsed = time.perf_counter() - start
        if config.time_budget_s is not None and step and elapsed * (step + 1) / step > config.time_budget_s:
            report.stopped_by_time_budget = True
            break
        views = [augmented_view(rgb, input_config, superpixels, config, rng) for _ in range(config.views_per_step)]
        pixels, labels = batch_views(views)
        with torch.enable_grad():
            loss = refine_loss(refined, refined(pixels.to(device), labels.to(device)), target, config)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(learning, config.grad_clip)
            optimiser.step()
        report.losses.append(float(loss.detach()))
        report.steps_done = step + 1
        if progress is not None:
            progress(report.steps_done, config.steps)
    report.seconds = time.perf_counter() - start
    return refined.eval(), report
