"""Recognition through the segmenter, with the teacher on the whole photo beside it."""
from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from hierseg.preprocess import normalise
from hierseg.resize import resize_rgb
from training.metrics.recognition import Classifier, LabelledPhoto, score_recognition

# EfficientNet-Lite0's native input size; the teacher sees the whole image squashed to it.
TEACHER_SIZE = 224


class WholeImageTeacher:
    """The distillation teacher on the whole image squashed to ``size``: rgb -> (1000,) logits."""

    def __init__(self, size: int = TEACHER_SIZE) -> None:
        from training.teacher import Teacher

        self.size = size
        # Inputs are plain [0, 1] pixels: mean 0, std 1 in the teacher's terms.
        self.net = Teacher((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)).eval()

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = normalise(resize_rgb(rgb, self.size, self.size), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))[None]
        return self.net(x)[0].numpy()


def load_teacher() -> Classifier:
    """The teacher, or a clear error naming the extra to install."""
    try:
        return WholeImageTeacher()
    except ImportError as error:
        raise ImportError(f"recognition evaluation needs the teacher ({error.name}): pip install -e '.[train]'") from error


def evaluate_recognition(segmenter: Callable[[np.ndarray], Any], teacher: Classifier, sets: dict[str, list[LabelledPhoto]],
                         class_names: Sequence[str], label: str = "") -> dict[str, Any]:
    """Every set scored; each entry also has the segmenter's seconds per image."""
    results = {}
    for name, photos in sets.items():
        seconds = [0.0]

        def timed(rgb: np.ndarray) -> Any:
            t0 = time.perf_counter()
            h = segmenter(rgb)
            seconds[0] += time.perf_counter() - t0
            return h

        results[name] = score_recognition(photos, timed, teacher, class_names, progress=f"recognition: {name}{label}")
        results[name]["seconds_per_image"] = seconds[0] / len(photos)
    return results
