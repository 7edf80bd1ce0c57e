"""CAST: a ViT on superpixel tokens that graph-pools them level by level (Ke, Mo, Yu, ICLR 2024)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.models.vision_transformer import Block
from torch import nn

from .config import CASTConfig
from .graph_pool import GraphPooling
from .heads import mlp_bn
from .init import init_weights
from .lite_stem import LITE0_CHANNELS, LITE0_STRIDES, LiteStem
from .norm import LayerNorm
from .pos_embed import sincos_2d, sincos_points
from .region_merge import RegionMerging, Regions
from .segment_tokens import region_adjacency, region_cells, segment_mean, superpixels_on_grid
from .stem import ConvStem

# The official position table's grid; the hybrid stem's cells are placed on the same 28-cell scale.
POSITION_GRID = 28
STRIDE = 8


@dataclass
class CASTOutput:
    """Everything one forward pass produces. L = number of levels (4 for every official variant).

    ``stage_tokens[l]`` are the segment tokens after the blocks of stage l: the superpixel tokens for
    l = 0, the level-l clusters after that. ``pooled_tokens[l]`` are graph pooling l's outputs, the
    tokens of the level-(l+1) clusters before any block has run on them.
    """

    features: torch.Tensor  # (B, C) normalised cls feature taken before the last pooling
    logits: torch.Tensor | None  # (B, num_classes) when the model has a classifier
    projection: torch.Tensor | None  # (B, proj_dim) MoCo projector output
    prediction: torch.Tensor | None  # (B, proj_dim) MoCo predictor output
    stem: torch.Tensor  # (B, g, g, C) conv stem features; hybrid stem: its last map (B, 320, H/32, W/32)
    stage_inputs: torch.Tensor  # (B, 1 + S, C) [cls; superpixel tokens] entering stage 0
    padding_mask: torch.Tensor  # (B, S) True for superpixel ids absent from the feature grid
    stage_tokens: list[torch.Tensor]  # L x (B, N_l, C)
    stage_cls: list[torch.Tensor]  # L x (B, C) cls after the blocks of stage l
    assignment_logits: list[torch.Tensor]  # L x (B, N_l, K_l)
    centroids: list[torch.Tensor]  # L x (B, K_l) farthest point sampling picks
    pooled_tokens: list[torch.Tensor]  # L x (B, K_l, C)
    # Hybrid stem only: pixels of each superpixel in each cell of the stem's last map (B, S, h*w), and that grid.
    token_cells: torch.Tensor | None = None
    cell_grid: tuple[int, int] | None = None


class CAST(nn.Module):
    """Image + superpixel map -> cls feature, class logits and a hierarchy of soft token assignments."""

    def __init__(self, config: CASTConfig, init: str = "trunc_normal") -> None:
        """Build the model a config describes, initialised by ``init`` (``hierseg.model.init``: a
        training recipe picks it; a checkpoint's weights replace it)."""
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if config.stem == "lite0":
            self.stem = LiteStem(config.stem_taps)
            # RGB means + the tapped maps, each superpixel-averaged, become one token.
            self.token_embed = nn.Sequential(LayerNorm(3 + self.stem.channels), nn.Linear(3 + self.stem.channels, dim))
        else:
            self.stem = ConvStem(dim)
        grid_cells = config.grid_size**2
        if config.stem == "lite0":  # positions are computed for each input's own grid
            self.register_buffer("cls_pos_embed", torch.zeros(1, 1, dim))
        elif config.pos_embed == "sincos":
            self.register_buffer("pos_embed", sincos_2d(config.grid_size, dim))
            self.register_buffer("cls_pos_embed", torch.zeros(1, 1, dim))
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, grid_cells, dim))
            self.cls_pos_embed = nn.Parameter(torch.zeros(1, 1, dim))

        total = sum(config.depths)
        drop_path = [config.drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear, as in timm
        self.stages = nn.ModuleList()
        start = 0
        for depth in config.depths:
            blocks = [
                Block(dim, config.num_heads, config.mlp_ratio, qkv_bias=True, drop_path=drop_path[start + i],
                      norm_layer=LayerNorm)
                for i in range(depth)
            ]
            self.stages.append(nn.Sequential(*blocks))
            start += depth
        if config.pooling == "merge":
            groups = (3, *(LITE0_CHANNELS[t] for t in config.stem_taps))
            self.pools = nn.ModuleList(
                RegionMerging(dim, config.mlp_ratio, config.pool_dropout, groups, (config.merge_colour, *config.merge_taps),
                              config.merge_tokens)
                for _ in config.depths
            )
        else:
            self.pools = nn.ModuleList(
                GraphPooling(dim, config.num_heads, config.mlp_ratio, config.pool_dropout) for _ in config.depths
            )
        self.norm = LayerNorm(dim)
        if not config.num_classes:
            self.head = None
        elif config.head_width:
            self.head = nn.Sequential(nn.Linear(dim, config.head_width), nn.Linear(config.head_width, config.num_classes))
        else:
            self.head = nn.Linear(dim, config.num_classes)
        self.projector = mlp_bn(dim, config.proj_hidden_dim, config.proj_dim, 3) if config.proj_dim else None
        self.predictor = (
            mlp_bn(config.proj_dim, config.proj_hidden_dim, config.proj_dim, 2)
            if config.predictor and config.proj_dim else None
        )
        init_weights(self, init)
        if config.freeze_last_pool:
            self.pools[-1].requires_grad_(False)

    @property
    def clusters(self) -> tuple[int, ...]:
        return self.config.clusters

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "pos_embed", "cls_pos_embed"}

    def classify_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """The classifier applied to segment tokens (B, N, C) -> (B, N, num_classes), as it is to the cls token."""
        if self.head is None:
            raise ValueError("this model has no classifier head")
        return self.head(self.norm(tokens))

    def level_tokens(self, output: CASTOutput) -> list[torch.Tensor]:
        """The token of every node, finest first: superpixels, then each level's clusters.

        A node's token is taken after the last blocks that processed it; the coarsest clusters are
        never processed by a block, so theirs is the last pooling's output.
        """
        return [*output.stage_tokens, output.pooled_tokens[-1]]

    def embed(self, image: torch.Tensor, superpixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Superpixel tokens: segment means of the stem features and of the position table.

        image: (B, 3, H, W) normalised, H = W = img_size. superpixels: (B, H', W') int64 label maps at
        any resolution (ids 0..S-1). Returns (stem (B,g,g,C), [cls; tokens] (B,1+S,C), padding (B,S))
        where S = 1 + the largest id that survives on the grid, over the whole batch.
        """
        stem = self.stem(image)
        batch, g, _, dim = stem.shape
        if g != self.config.grid_size:
            raise ValueError(f"image gives a {g}x{g} grid; this model expects img_size {self.config.img_size}")
        labels = superpixels_on_grid(superpixels, g).reshape(batch, -1)
        count = int(labels.max()) + 1
        tokens, cells = segment_mean(stem.reshape(batch, -1, dim), labels, count)
        positions, _ = segment_mean(self.pos_embed.to(stem.dtype), labels, count)
        cls = (self.cls_token + self.cls_pos_embed).expand(batch, -1, -1)
        return stem, torch.cat([cls, tokens + positions], dim=1), cells == 0

    def embed_regions(self, image: torch.Tensor, superpixels: torch.Tensor) -> tuple[
            list[torch.Tensor], torch.Tensor, Regions, torch.Tensor]:
        """Hybrid-stem superpixel tokens: area-weighted means of colour, stem maps and positions.

        image: (B, 3, H, W) normalised, any H, W; superpixels: (B, H, W) int64 at the image's own
        resolution, -1 on padding. Returns (stem maps, [cls; tokens] (B, 1+S, C), the superpixels as
        Regions, their pixel counts in each cell of the last stem map (B, S, h*w)).
        """
        maps = self.stem(image)
        batch, _, height, width = image.shape
        # Each tapped map is averaged over the pixels of each superpixel at the map's own resolution
        # (every pixel votes for the cell it falls in), which needs no upsampling of wide maps.
        features, cells = [], None
        for tap, feature_map in zip(self.config.stem_taps, maps[:-1]):
            cells = region_cells(superpixels, tuple(feature_map.shape[-2:]), LITE0_STRIDES[tap])  # (B, S, P)
            share = cells / cells.sum(-1, keepdim=True).clamp(min=1)
            features.append(share @ feature_map.flatten(2).transpose(1, 2))
        areas = cells.sum(-1)  # (B, S) pixels
        # Positions: the sin-cos code of stride-8 cells, on the official 28-cell scale along the long side.
        grid = (-(-height // STRIDE), -(-width // STRIDE))
        fine_share = region_cells(superpixels, grid, STRIDE) / areas.clamp(min=1)[..., None]
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
        positions = sincos_points(rows.reshape(-1) * scale, cols.reshape(-1) * scale, self.config.embed_dim)
        descriptors = torch.cat([colour, *features], dim=-1)
        tokens = self.token_embed(descriptors) + fine_share @ positions
        cls = (self.cls_token + self.cls_pos_embed).expand(batch, -1, -1)
        regions = Regions(areas=areas / valid.sum(1, keepdim=True).clamp(min=1),
                          adjacency=region_adjacency(superpixels, areas.shape[1]), descriptors=descriptors)
        # The cells of the stem's last (stride-32) map, where the distillation targets live.
        last = region_cells(superpixels, tuple(maps[-1].shape[-2:]), LITE0_STRIDES[-1])
        return maps, torch.cat([cls, tokens], dim=1), regions, last

    def forward(self, image: torch.Tensor, superpixels: torch.Tensor, clusters: tuple[int, ...] | None = None) -> CASTOutput:
        """image: (B, 3, img_size, img_size), or any shape for the hybrid stem; superpixels: (B, H', W')
        int64 (the hybrid stem needs them at the image's resolution). ``clusters`` overrides the config."""
        clusters = tuple(clusters or self.config.clusters)
        if len(clusters) != len(self.stages):
            raise ValueError(f"need {len(self.stages)} cluster counts, got {clusters}")
        regions, cells, grid = None, None, None
        if self.config.stem == "lite0":
            maps, stage_inputs, regions, cells = self.embed_regions(image, superpixels)
            stem, padding = maps[-1], regions.areas == 0
            grid = (stem.shape[-2], stem.shape[-1])
        else:
            stem, stage_inputs, padding = self.embed(image, superpixels)
        cls, tokens = stage_inputs[:, :1], stage_inputs[:, 1:]
        mask: torch.Tensor | None = padding
        out = dict(stage_tokens=[], stage_cls=[], assignment_logits=[], centroids=[], pooled_tokens=[])
        features = None
        for level, (stage, pool) in enumerate(zip(self.stages, self.pools)):
            x = torch.cat([cls, tokens], dim=1)
            if regions is None:
                x = stage(x)  # official: padding tokens take part in attention
            else:
                # Padding never takes part, so a batched result equals the single-image one.
                attend = torch.cat([torch.ones_like(mask[:, :1]), ~mask], dim=1)[:, None, None, :]
                for block in stage:
                    x = block(x, attn_mask=attend)
            cls, tokens = x[:, :1], x[:, 1:]
            if level == len(self.stages) - 1:
                # The classifier reads the cls token before the last pooling, as in the official model.
                features = self.norm(cls[:, 0])
            # Pooling cannot make more clusters than it has tokens (tiny images, tiny superpixel counts).
            count = min(clusters[level], tokens.shape[1])
            if regions is None:
                pooled = pool(tokens, cls, count, mask)
                mask = None
            else:
                pooled = pool(tokens, cls, regions, count)
                regions = pooled.regions
                mask = regions.areas == 0
            out["stage_tokens"].append(tokens)
            out["stage_cls"].append(cls[:, 0])
            out["assignment_logits"].append(pooled.logits)
            out["centroids"].append(pooled.centroids)
            out["pooled_tokens"].append(pooled.tokens)
            cls, tokens = pooled.cls, pooled.tokens
        projection = self.projector(features) if self.projector is not None else None
        return CASTOutput(
            features=features,
            logits=self.head(features) if self.head is not None else None,
            projection=projection,
            prediction=self.predictor(projection) if self.predictor is not None else None,
            stem=stem,
            stage_inputs=stage_inputs,
            padding_mask=padding,
            token_cells=cells,
            cell_grid=grid,
            **out,
        )
