"""Image-level recognition losses, shared by training (``training/objectives/``) and ``refine``.

None of them sees a mask: they compare whole-image class distributions, either the cls token's or the
one pooled from the segment tokens of a level.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .model import CAST, CASTOutput


def smooth_max(token_logits: torch.Tensor) -> torch.Tensor:
    """(B, N, C) per-token class logits -> (B, C): logsumexp over tokens minus log N.

    Between the mean and the max of the tokens' logits: the image is called "dog" when some segments
    are very dog-like, without forcing every segment (sky, grass) to be.
    """
    return torch.logsumexp(token_logits, dim=1) - math.log(token_logits.shape[1])


def segment_logits(model: CAST, output: CASTOutput) -> list[torch.Tensor]:
    """Image-level logits (B, C) pooled from the segment tokens of every level above the superpixels."""
    return [smooth_max(model.classify_tokens(tokens)) for tokens in model.level_tokens(output)[1:]]


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of the distributions softened by ``temperature``, times T^2 (Hinton et al.)."""
    t = temperature
    log_p_student = F.log_softmax(student_logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / t, dim=-1)
    return F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * t * t
