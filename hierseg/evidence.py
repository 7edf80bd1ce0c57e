"""Class evidence: what every segment of the hierarchy says about the checkpoint's classes.

Meaning (also in README): the evidence of a node is ``softmax(head(norm(token)))``, the checkpoint's
own classifier applied to the node's token exactly as it is applied to the cls token for the
image-level prediction. A node's token is its feature after the last transformer blocks that ran on
it (superpixels: stage 1; level-l clusters: stage l+1); the coarsest clusters are never processed by a
block, so theirs is the last pooling's output. The default checkpoint is trained so that each node's
token regresses the teacher's penultimate features averaged over the node's pixels, and its classifier
is the teacher's, so a segment's evidence says what the teacher sees in that segment alone.
"""
from __future__ import annotations

import numpy as np
import torch

from .hierarchy.build import rows_per_superpixel
from .model import CAST, CASTOutput


@torch.no_grad()
def node_evidence(model: CAST, output: CASTOutput, index: int, num_superpixels: int) -> list[np.ndarray]:
    """Per-node class distributions of image ``index`` of a batch, finest level first.

    Entry 0 has one row per superpixel id (``hierseg.hierarchy.build.rows_per_superpixel``, the rule
    that pads the level-1 assignments too); entry l has one row per raw cluster of level l.
    Without a classifier every entry has zero columns.
    """
    tokens = [t[index] for t in model.level_tokens(output)]
    if model.head is None:
        return [np.zeros((len(t) if i else num_superpixels, 0), np.float32) for i, t in enumerate(tokens)]
    rows = [model.classify_tokens(t[None].float())[0].softmax(-1).cpu().numpy() for t in tokens]
    rows[0] = rows_per_superpixel(rows[0], num_superpixels)
    return [r.astype(np.float32) for r in rows]


@torch.no_grad()
def image_prediction(output: CASTOutput, index: int) -> np.ndarray:
    """Image-level class distribution from the cls token (empty without a classifier)."""
    if output.logits is None:
        return np.zeros(0, np.float32)
    return output.logits[index].float().softmax(-1).cpu().numpy().astype(np.float32)
