"""Held-out sets scored at the end of a training run, through the serving preprocessing.

The numbers go into the checkpoint (``metrics``): top-1/top-5 against the labels where the model's
classes are the labels' (the training set's own classes, or Tiny-ImageNet mapped to ImageNet-1k),
and, when the run has a teacher, top-1 agreement with it on the same views, for the cls logits and
for the segment-pooled logits of every level.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from hierseg.class_names import imagenet_class_names
from hierseg.preprocess import InputConfig
from hierseg.recognition_losses import segment_logits
from hierseg.superpixels import SuperpixelConfig
from training.data import SuperpixelImages, eval_view, list_images, tinyimagenet_to_imagenet
from training.metrics.recognition import top_classes
from training.teacher import Teacher


@torch.no_grad()
def evaluate_held_out(model: nn.Module, specs: Sequence[str], data_root: str | Path | None,
                      superpixels: SuperpixelConfig, input_config: InputConfig, class_names: Sequence[str],
                      label_classes: Sequence[str] | None, teacher: Teacher | None, device: torch.device,
                      num_workers: int = 0) -> dict[str, Any]:
    """Score ``model`` on every data spec (``training.data.list_images``) of ``specs``.

    ``class_names`` are the model's classes; ``label_classes`` the classes of the training labels when
    the model learnt to predict them (a held-out set with the same classes is then scored against its
    labels), else None. Returns one entry per spec.
    """
    model.eval()
    imagenet = list(class_names) == imagenet_class_names()
    metrics: dict[str, Any] = {}
    # Views of the whole image keep their aspect ratio under "long_side": one image per batch then.
    per_batch = 64 if input_config.resize == "square" else 1
    for spec in specs:
        images = list_images(spec, data_root)
        dataset = SuperpixelImages(images, eval_view(), superpixels, input_config)
        batches = [[(0, i) for i in range(s, min(s + per_batch, len(images)))] for s in range(0, len(images), per_batch)]
        loader = DataLoader(dataset, batch_sampler=batches, num_workers=num_workers)
        model_top, level_top1, teacher_top1 = [], [], []  # per batch: (B, 5), (B, levels), (B,)
        for batch in tqdm(loader, desc=f"eval {spec}", leave=False):
            x = batch["images"][:, 0].to(device)
            out = model(x, batch["superpixels"][:, 0].to(device))
            model_top.append(top_classes(out.logits.float().cpu().numpy(), 5))
            levels = torch.stack([z.float().cpu() for z in segment_logits(model, out)], dim=1)
            level_top1.append(top_classes(levels.numpy(), 1)[..., 0])
            if teacher is not None:
                teacher_top1.append(top_classes(teacher(x).cpu().numpy(), 1)[:, 0])
        model_top, level_top1 = np.concatenate(model_top), np.concatenate(level_top1)
        result: dict[str, Any] = {"images": len(images)}
        labels = None
        if label_classes is not None and images.classes == list(label_classes):
            labels = images.labels
        elif spec.startswith("tinyimagenet:") and imagenet:
            # Tiny-ImageNet ids -> ImageNet-1k indices; images of unmapped classes are not scored.
            mapping = tinyimagenet_to_imagenet(Path(data_root or "", spec.split(":")[1]), class_names)
            labels = np.array([mapping.get(c, -1) for c in images.classes])[images.labels]
            result["mapped_classes"] = f"{len(mapping)}/{len(images.classes)}"
        if labels is not None:
            scored = labels >= 0
            result["top1"] = float(np.mean((model_top[:, 0] == labels)[scored]))
            result["top5"] = float(np.mean((model_top == labels[:, None]).any(-1)[scored]))
        if teacher is not None:
            teacher_top1 = np.concatenate(teacher_top1)
            result["agree_top1"] = float(np.mean(model_top[:, 0] == teacher_top1))
            result["agree_top1_segments_per_level"] = np.mean(level_top1 == teacher_top1[:, None], axis=0).tolist()
            if labels is not None:
                result["teacher_top1"] = float(np.mean((teacher_top1 == labels)[scored]))
        metrics[spec] = result
    return metrics
