"""The official CAST stem: a stride-8 conv stem on a square image, superpixel means of its cells and of a
position table (twke18/CAST ``ConvStem`` and ``cast.py``'s segment tokens)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from timm.layers import trunc_normal_
from torch import nn

from ..parts import Nodes, Stem, StemConfig, StemOutput
from ..pos_embed import sincos_2d
from ..segment_tokens import segment_mean, superpixels_on_grid

STRIDE = 8
POSITION_TABLES = ("sincos", "learned")


@dataclass(frozen=True)
class ConvStemConfig(StemConfig):
    """The official stem.

    ``img_size``: the side of the square input; the feature grid and the position table have
    ``img_size / 8`` cells a side. ``pos_embed``: "sincos", the MoCo family's fixed 2-D table plus a
    frozen cls entry (official ``pe_token``), or "learned", the DeiT family's trainable table whose
    cls row is added to the cls token.
    """

    kind: ClassVar[str] = "conv"
    img_size: int = 224
    pos_embed: str = "sincos"

    def __post_init__(self) -> None:
        if self.img_size % STRIDE:
            raise ValueError(f"img_size {self.img_size} must be a multiple of the stem stride {STRIDE}")
        if self.pos_embed not in POSITION_TABLES:
            raise ValueError(f"pos_embed must be 'sincos' or 'learned', not {self.pos_embed!r}")

    @property
    def grid_size(self) -> int:
        return self.img_size // STRIDE

    @property
    def square_input(self) -> int:
        return self.img_size

    @property
    def official_family(self) -> str:
        return "deit" if self.pos_embed == "learned" else "moco"

    def build(self, embed_dim: int) -> ConvStem:
        return ConvStem(self, embed_dim)


class ConvStem(Stem):
    """Image (B, 3, img_size, img_size) -> the mean of the stem's cells and positions over each superpixel.

    ``proj``: four 3x3 conv-BN-ReLU layers (strides 2, 2, 2, 1; widths C/8, C/4, C/2, C) and a 1x1
    conv; its layer indices (convs 0/3/6/9, BNs 1/4/7/10, 1x1 conv 12) follow the official
    ``patch_embed.proj`` Sequential, so converted checkpoints map index for index. The superpixel
    map is sampled at the top-left pixel of each cell, as the official code does; ids that own no
    such pixel become padding tokens (all zero), and padding takes part in attention as there.
    """

    def __init__(self, config: ConvStemConfig, embed_dim: int) -> None:
        super().__init__()
        self.config = config
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
        if config.pos_embed == "sincos":
            self.register_buffer("pos_embed", sincos_2d(config.grid_size, embed_dim))
            self.register_buffer("cls_pos_embed", torch.zeros(1, 1, embed_dim))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, config.grid_size**2, embed_dim))
            self.cls_pos_embed = nn.Parameter(torch.zeros(1, 1, embed_dim))

    @property
    def backbone(self) -> nn.Module:
        return self.proj

    def init_weights(self) -> None:
        if isinstance(self.pos_embed, nn.Parameter):
            trunc_normal_(self.pos_embed, std=0.02)
            trunc_normal_(self.cls_pos_embed, std=0.02)

    def init_cls_token(self, cls_token: nn.Parameter) -> None:
        """N(0, 1e-6) beside the fixed sin-cos table, as the official MoCo classes; timm's rule beside a learned one."""
        if self.config.official_family == "moco":
            nn.init.normal_(cls_token, std=1e-6)
        else:
            super().init_cls_token(cls_token)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_pos_embed"}

    def forward(self, image: torch.Tensor, superpixels: torch.Tensor) -> StemOutput:
        """image: (B, 3, img_size, img_size) normalised; superpixels: (B, H', W') int64 at any resolution."""
        feature_map = self.proj(image)
        batch, dim, g, _ = feature_map.shape
        if g != self.config.grid_size:
            raise ValueError(f"image gives a {g}x{g} grid; this model expects img_size {self.config.img_size}")
        labels = superpixels_on_grid(superpixels, g).reshape(batch, -1)
        count = int(labels.max()) + 1
        cells = feature_map.permute(0, 2, 3, 1).reshape(batch, -1, dim)  # row-major, as the position table
        tokens, cell_counts = segment_mean(cells, labels, count)
        positions, _ = segment_mean(self.pos_embed.to(cells.dtype), labels, count)
        return StemOutput(
            tokens=tokens + positions,
            cls_position=self.cls_pos_embed,
            nodes=Nodes(padding=cell_counts == 0, padding_attends=True),
            feature_map=feature_map,
        )
