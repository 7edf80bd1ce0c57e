"""Hybrid stem: the pretrained body of EfficientNet-Lite0 (ImageNet-1k), frozen, as CAST's patch embedding.

The ViT paper's hybrids feed a ViT with a CNN's intermediate feature maps; here they feed the superpixel
tokens. The body (``hierseg.model.lite0.Lite0Body``: conv stem and the 7 block groups) is built without
weights: they come from the hierseg checkpoint, or at training start from the distillation teacher
(``training/teacher.py``). The teacher's 1x1 head conv and classifier are not part of the student.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..lite0 import LITE0_CHANNELS, LITE0_STRIDES, Lite0Body
from ..norm import LayerNorm
from ..parts import Nodes, Regions, Stem, StemConfig, StemOutput
from ..pos_embed import sincos_points
from ..segment_tokens import region_adjacency, region_cells

# Token positions: the sin-cos code of stride-8 cells, on the official table's 28-cell scale along the long side.
POSITION_STRIDE = 8
POSITION_GRID = 28


@dataclass(frozen=True)
class LiteStemConfig(StemConfig):
    """The hybrid stem. It runs on any input shape.

    ``img_size``: the side of the square crops the model is trained on (views are served at their
    checkpoint's ``input.size``). ``taps``: the block groups whose maps the tokens read (2: stride 8,
    40 channels; 4: stride 16, 112; 6: stride 32, 320). Positions are a fixed sin-cos code of each
    superpixel's pixels; there is no position table to choose.
    """

    kind: ClassVar[str] = "lite0"
    img_size: int = 224
    taps: tuple[int, ...] = (2, 4, 6)

    def __post_init__(self) -> None:
        object.__setattr__(self, "taps", tuple(int(t) for t in self.taps))
        taps = self.taps
        if not taps or any(t not in range(len(LITE0_CHANNELS)) for t in taps) or list(taps) != sorted(set(taps)):
            raise ValueError(f"stem taps must be increasing block-group indices in 0..6, got {taps}")

    @property
    def region_descriptors(self) -> tuple[int, ...]:
        """Mean colour (3), then the superpixel means of each tapped map."""
        return (3, *(LITE0_CHANNELS[t] for t in self.taps))

    def build(self, embed_dim: int) -> LiteStem:
        return LiteStem(self, embed_dim)

    def format1_key(self, key: str) -> str | None:
        """Format 1 kept the Lite0 body under ``stem.`` (now ``stem.body.``) and a ``cls_pos_embed`` that
        was always zero (this stem gives the cls token no position): dropped."""
        if key == "cls_pos_embed":
            return None
        return "stem.body." + key[len("stem."):] if key.startswith("stem.") else key


class LiteStem(Stem):
    """Superpixel tokens from area-weighted means of colour, the tapped Lite0 maps and positions.

    Every superpixel keeps a token however small it is (each pixel votes for the cell it falls in);
    the tokens also come with their regions (areas, adjacency, descriptors) for region merging.
    Padding (ids absent from an image, -1 pixels of a batch) is kept out of attention, so a batched
    result equals the single-image one.
    """

    def __init__(self, config: LiteStemConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
        self.embed_dim = embed_dim
        self.body = Lite0Body(config.taps)
        width = sum(config.region_descriptors)
        self.token_embed = nn.Sequential(LayerNorm(width), nn.Linear(width, embed_dim))

    @property
    def backbone(self) -> nn.Module:
        return self.body

    def forward(self, image: torch.Tensor, superpixels: torch.Tensor) -> StemOutput:
        """image: (B, 3, H, W) normalised, any H, W; superpixels: (B, H, W) int64 at the image's own
        resolution, -1 on padding."""
        maps = self.body(image)
        batch, _, height, width = image.shape
        # Each tapped map is averaged over the pixels of each superpixel at the map's own resolution
        # (every pixel votes for the cell it falls in), which needs no upsampling of wide maps.
        features, cells = [], None
        for tap, feature_map in zip(self.config.taps, maps[:-1], strict=True):
            cells = region_cells(superpixels, tuple(feature_map.shape[-2:]), LITE0_STRIDES[tap])  # (B, S, P)
            share = cells / cells.sum(-1, keepdim=True).clamp(min=1)
            features.append(share @ feature_map.flatten(2).transpose(1, 2))
        areas = cells.sum(-1)  # (B, S) pixels
        grid = (-(-height // POSITION_STRIDE), -(-width // POSITION_STRIDE))
        fine_share = region_cells(superpixels, grid, POSITION_STRIDE) / areas.clamp(min=1)[..., None]
        # Colour at full resolution (the stride-8 cells would blur it across boundaries).
        labels = superpixels.reshape(batch, -1)
        valid = labels >= 0
        colour = torch.zeros(batch, areas.shape[1], 3, device=image.device, dtype=image.dtype)
        colour.scatter_add_(1, labels.clamp(min=0)[..., None].expand(-1, -1, 3),
                            image.flatten(2).transpose(1, 2) * valid[..., None])
        colour = colour / areas.clamp(min=1)[..., None]
        rows, cols = torch.meshgrid(torch.arange(grid[0], device=image.device), torch.arange(grid[1], device=image.device),
                                    indexing="ij")
        scale = POSITION_GRID / max(grid)
        positions = sincos_points(rows.reshape(-1) * scale, cols.reshape(-1) * scale, self.embed_dim)
        descriptors = torch.cat([colour, *features], dim=-1)
        regions = Regions(areas=areas / valid.sum(1, keepdim=True).clamp(min=1),
                          adjacency=region_adjacency(superpixels, areas.shape[1]), descriptors=descriptors)
        return StemOutput(
            tokens=self.token_embed(descriptors) + fine_share @ positions,
            cls_position=image.new_zeros(1, 1, self.embed_dim),
            nodes=Nodes(padding=regions.areas == 0, regions=regions),
            feature_map=maps[-1],
            # The cells of the last (stride-32) map, where the distillation targets live.
            token_cells=region_cells(superpixels, tuple(maps[-1].shape[-2:]), LITE0_STRIDES[-1]),
        )
