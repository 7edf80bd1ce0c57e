"""Hybrid stem: the pretrained body of EfficientNet-Lite0 (ImageNet-1k), frozen, as CAST's patch embedding.

The ViT paper's hybrids feed a ViT with a CNN's intermediate feature maps; here they feed the superpixel
tokens. The network is timm's ``tf_efficientnet_lite0`` (TF "same" padding, so any input shape works),
built without weights: the weights come from the hierseg checkpoint, or at training start from the
distillation teacher (``training/teacher.py``). Only the body is kept (conv stem and the 7 block
groups); the teacher's 1x1 head conv and classifier are not part of the student.
"""
from __future__ import annotations

import torch
from torch import nn

# Output channels and stride of each of the 7 block groups of EfficientNet-Lite0.
LITE0_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
LITE0_STRIDES = (2, 4, 8, 16, 16, 32, 32)


class LiteStem(nn.Module):
    """Image (B, 3, H, W) in the *teacher's* normalisation -> the maps of the tapped block groups.

    ``taps`` name block groups by index (2: stride 8, 40 channels; 4: stride 16, 112; 6: stride 32,
    320). The stem never trains: its parameters have no gradient and its BatchNorms stay in eval mode.
    """

    def __init__(self, taps: tuple[int, ...]) -> None:
        super().__init__()
        import timm

        if not taps or any(t not in range(len(LITE0_CHANNELS)) for t in taps) or list(taps) != sorted(set(taps)):
            raise ValueError(f"stem taps must be increasing block-group indices in 0..6, got {taps}")
        net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        self.conv_stem, self.bn1 = net.conv_stem, net.bn1
        # All 7 groups always run: the last one is also the distillation teacher's input to its head.
        self.blocks = net.blocks
        self.taps = tuple(taps)
        self.requires_grad_(False)
        self.eval()

    @property
    def channels(self) -> int:
        """Total channels of the tapped maps."""
        return sum(LITE0_CHANNELS[t] for t in self.taps)

    def train(self, mode: bool = True) -> "LiteStem":
        return super().train(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Returns the tapped maps, finest first, then the last group's map (B, 320, H/32, W/32)."""
        x = self.bn1(self.conv_stem(image))
        maps = []
        for i, group in enumerate(self.blocks):
            x = group(x)
            if i in self.taps:
                maps.append(x)
        return [*maps, x]
