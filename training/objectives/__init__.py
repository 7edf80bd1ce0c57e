"""Training objectives by name: each turns a batch into ``(loss, logs)`` (the interface is in ``base.py``).

None of them sees a mask. The optional *segment-token* term (supervised, distill) scores every
segment of every level with the same classifier as the cls token and pools the per-segment class
scores into an image prediction by a smooth maximum, trained against the image's target; it is what
gives per-segment class evidence a meaning (the app shows ``softmax(classify_tokens(token))`` for
every segment).
"""
from __future__ import annotations

from .base import Batch, Logs, Objective, Run
from .distill import Distill, TeacherLogits
from .hybrid_distill import HybridDistill
from .moco import MoCo, moco_momentum
from .supervised import Supervised

OBJECTIVES: dict[str, type[Objective]] = {cls.name: cls for cls in (Supervised, MoCo, Distill, HybridDistill)}


def objective_class(name: str) -> type[Objective]:
    """The objective registered as ``name`` (a run's ``objective`` key)."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]


__all__ = ["OBJECTIVES", "Batch", "Distill", "HybridDistill", "Logs", "MoCo", "Objective", "Run", "Supervised",
           "TeacherLogits", "moco_momentum", "objective_class"]
