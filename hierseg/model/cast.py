"""CAST: a ViT on superpixel tokens that graph-pools them level by level (Ke, Mo, Yu, ICLR 2024)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from .config import CASTConfig
from .graph_pool import GraphPooling
from .heads import mlp_bn
from .pos_embed import sincos_2d
from .segment_tokens import segment_mean, superpixels_on_grid
from .stem import ConvStem

LayerNorm = partial(nn.LayerNorm, eps=1e-6)


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
    stem: torch.Tensor  # (B, g, g, C) conv stem features
    stage_inputs: torch.Tensor  # (B, 1 + S, C) [cls; superpixel tokens] entering stage 0
    padding_mask: torch.Tensor  # (B, S) True for superpixel ids absent from the feature grid
    stage_tokens: list[torch.Tensor]  # L x (B, N_l, C)
    stage_cls: list[torch.Tensor]  # L x (B, C) cls after the blocks of stage l
    assignment_logits: list[torch.Tensor]  # L x (B, N_l, K_l)
    centroids: list[torch.Tensor]  # L x (B, K_l) farthest point sampling picks
    pooled_tokens: list[torch.Tensor]  # L x (B, K_l, C)


class CAST(nn.Module):
    """Image + superpixel map -> cls feature, class logits and a hierarchy of soft token assignments."""

    def __init__(self, config: CASTConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.stem = ConvStem(dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        grid_cells = config.grid_size**2
        if config.pos_embed == "sincos":
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
        self.pools = nn.ModuleList(
            GraphPooling(dim, config.num_heads, config.mlp_ratio, config.pool_dropout) for _ in config.depths
        )
        self.norm = LayerNorm(dim)
        self.head = nn.Linear(dim, config.num_classes) if config.num_classes else None
        self.projector = mlp_bn(dim, config.proj_hidden_dim, config.proj_dim, 3) if config.proj_dim else None
        self.predictor = (
            mlp_bn(config.proj_dim, config.proj_hidden_dim, config.proj_dim, 2)
            if config.predictor and config.proj_dim else None
        )
        self._init_weights()
        if config.freeze_last_pool:
            self.pools[-1].requires_grad_(False)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.config.pos_embed == "learned":
            trunc_normal_(self.pos_embed, std=0.02)
            trunc_normal_(self.cls_pos_embed, std=0.02)
            trunc_normal_(self.cls_token, std=0.02)
        else:
            nn.init.normal_(self.cls_token, std=1e-6)
        for pool in self.pools:
            nn.init.normal_(pool.affinity.bias, std=0.01)

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

    def forward(self, image: torch.Tensor, superpixels: torch.Tensor, clusters: tuple[int, ...] | None = None) -> CASTOutput:
        """image: (B, 3, img_size, img_size); superpixels: (B, H', W') int64. ``clusters`` overrides the config."""
        clusters = tuple(clusters or self.config.clusters)
        if len(clusters) != len(self.stages):
            raise ValueError(f"need {len(self.stages)} cluster counts, got {clusters}")
        stem, stage_inputs, padding = self.embed(image, superpixels)
        cls, tokens = stage_inputs[:, :1], stage_inputs[:, 1:]
        mask: torch.Tensor | None = padding
        out = dict(stage_tokens=[], stage_cls=[], assignment_logits=[], centroids=[], pooled_tokens=[])
        features = None
        for level, (stage, pool) in enumerate(zip(self.stages, self.pools)):
            x = stage(torch.cat([cls, tokens], dim=1))
            cls, tokens = x[:, :1], x[:, 1:]
            if level == len(self.stages) - 1:
                # The classifier reads the cls token before the last pooling, as in the official model.
                features = self.norm(cls[:, 0])
            # Pooling cannot make more clusters than it has tokens (tiny images, tiny superpixel counts).
            pooled = pool(tokens, cls, min(clusters[level], tokens.shape[1]), mask)
            out["stage_tokens"].append(tokens)
            out["stage_cls"].append(cls[:, 0])
            out["assignment_logits"].append(pooled.logits)
            out["centroids"].append(pooled.centroids)
            out["pooled_tokens"].append(pooled.tokens)
            cls, tokens, mask = pooled.cls, pooled.tokens, None
        projection = self.projector(features) if self.projector is not None else None
        return CASTOutput(
            features=features,
            logits=self.head(features) if self.head is not None else None,
            projection=projection,
            prediction=self.predictor(projection) if self.predictor is not None else None,
            stem=stem,
            stage_inputs=stage_inputs,
            padding_mask=padding,
            **out,
        )
