"""Grouping head: the superpixel tokens -> an embedding whose distances say which regions belong together.

Trained by recognition only (``training/train_grouping.py``): within each photo, the area-weighted Gram
matrix of the standardised embedding of the superpixels matches that of the distillation teacher's
penultimate features seen on the view upsampled x2, so superpixels the recognizer takes for the same
thing come close and those it tells apart go apart. No mask is involved. The merge tree
(``hierseg.hierarchy.merge_tree``) reads the embedding with the weight ``RegionMergingConfig.merge_tokens``
(``RegionMerging.tree_features``).
"""
from __future__ import annotations

import torch
from torch import nn


class GroupingHead(nn.Module):
    """LayerNorm -> Linear -> GELU -> Linear: tokens (..., C) -> grouping embedding (..., dim)."""

    def __init__(self, width: int, dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.net(tokens)
