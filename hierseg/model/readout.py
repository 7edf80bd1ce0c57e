"""Hard part-whole readout of the soft assignments (CAST §1.10)."""
from __future__ import annotations

import numpy as np
import torch


def level_assignments(assignment_logits: list[torch.Tensor], num_superpixels: int) -> list[np.ndarray]:
    """Argmax assignments of one image, finest first, as int64 arrays.

    assignment_logits: L tensors (N_l, K_l) of one image. Entry 0 maps every superpixel id to a level-1
    cluster. Superpixel ids past the last token (they vanished from the feature grid and the batch
    had no larger id) take the last token's cluster, as the official export notebook does.
    """
    assignments = [logits.argmax(dim=-1).cpu().numpy().astype(np.int64) for logits in assignment_logits]
    first = assignments[0]
    if len(first) < num_superpixels:
        first = np.concatenate([first, np.full(num_superpixels - len(first), first[-1], dtype=np.int64)])
    assignments[0] = first[:num_superpixels]
    return assignments


def compose_levels(assignments: list[np.ndarray], superpixels: np.ndarray) -> list[np.ndarray]:
    """Raw cluster id of every pixel at every level, finest first: lab_l = a_l[...a_1[a_0[sp]]]."""
    labels = np.arange(len(assignments[0]))
    maps = []
    for assignment in assignments:
        labels = assignment[labels]
        maps.append(labels[superpixels])
    return maps
