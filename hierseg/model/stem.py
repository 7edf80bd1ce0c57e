"""Convolutional stem: image (B, 3, H, W) -> features (B, H/8, W/8, C), channels last."""
from __future__ import annotations

import torch
from torch import nn


class ConvStem(nn.Module):
    """Four 3x3 conv-BN-ReLU layers (strides 2, 2, 2, 1; widths C/8, C/4, C/2, C) and a 1x1 conv.

    The layer indices inside ``proj`` (convs 0/3/6/9, BNs 1/4/7/10, 1x1 conv 12) follow the official
    ``patch_embed.proj`` Sequential, so converted checkpoints map index for index.
    """

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        widths = [3, embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim]
        layers: list[nn.Module] = []
        for i, stride in enumerate((2, 2, 2, 1)):
            layers += [
                nn.Conv2d(widths[i], widths[i + 1], 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(inplace=True),
            ]
        layers.append(nn.Conv2d(embed_dim, embed_dim, 1))
        self.proj = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, 3, H, W) normalised RGB -> (B, H/8, W/8, C)."""
        return self.proj(image).permute(0, 2, 3, 1)
