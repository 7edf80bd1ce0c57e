"""CAST: a ViT on superpixel tokens that pools them level by level (Ke, Mo, Yu, ICLR 2024).

``CAST`` only puts the parts together: a stem (``hierseg.model.parts.Stem``) makes the superpixel
tokens, stages of timm ``Block``s run on each level's tokens, and a pooling
(``hierseg.model.parts.Pooling``) makes the next level's. Which stem and which pooling is the
config's business (``CASTConfig.stem`` / ``.pooling``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.models.vision_transformer import Block
from torch import nn

from .config import CASTConfig
from .heads import classifier_head, mlp_bn
from .init import resolve_init, timm_vit_init, xavier_init
from .norm import LayerNorm
from .parts import Regions


@dataclass
class CASTOutput:
    """Everything one forward pass produces. L = number of levels (4 for every official variant).

    ``stage_tokens[l]`` are the segment tokens after the blocks of stage l: the superpixel tokens for
    l = 0, the level-l clusters after that. ``pooled_tokens[l]`` are pooling l's outputs, the
    tokens of the level-(l+1) clusters before any block has run on them.
    """

    features: torch.Tensor | None  # (B, C) normalised cls feature taken before the last pooling (None: stages cut short)
    logits: torch.Tensor | None  # (B, num_classes) when the model has a classifier
    projection: torch.Tensor | None  # (B, proj_dim) MoCo projector output
    predicted_projection: torch.Tensor | None  # (B, proj_dim) MoCo predictor output (online branch)
    stem_map: torch.Tensor  # (B, C', h, w) the stem's last feature map, channels first
    stage_inputs: torch.Tensor  # (B, 1 + S, C) [cls; superpixel tokens] entering stage 0
    padding_mask: torch.Tensor  # (B, S) True for superpixel tokens that stand for no pixels
    stage_tokens: list[torch.Tensor]  # L x (B, N_l, C)
    stage_cls: list[torch.Tensor]  # L x (B, C) cls after the blocks of stage l
    assignment_logits: list[torch.Tensor]  # L x (B, N_l, K_l)
    centroids: list[torch.Tensor]  # L x (B, K_l) a token standing for each cluster (FPS picks for graph pooling)
    pooled_tokens: list[torch.Tensor]  # L x (B, K_l, C)
    # (B, S, h*w) pixels of each superpixel in each cell of stem_map; None for stems that sample
    # one pixel per cell (``hierseg.model.parts.StemOutput``).
    token_cells: torch.Tensor | None = None
    # The superpixels as regions (areas, adjacency, descriptors), from stems that provide them.
    regions: Regions | None = None


class CAST(nn.Module):
    """Image + superpixel map -> cls feature, class logits and a hierarchy of token assignments."""

    def __init__(self, config: CASTConfig, init: str = "trunc_normal") -> None:
        """Build the model a config describes, initialised by ``init`` (``init_weights``: a training
        recipe picks it; a checkpoint's weights replace it)."""
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.stem = config.stem.build(dim)
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
            config.pooling.build(dim, config.num_heads, config.mlp_ratio, config.stem) for _ in config.depths
        )
        # The merge tree's learned metric (``tree_features``), for poolings that have one.
        self.grouping_head = config.pooling.build_grouping_head(dim)
        self.norm = LayerNorm(dim)
        # ``head.classifier`` gives the logits; ``head.feature`` is the head_width-wide layer before it (or None).
        self.head = classifier_head(dim, config.num_classes, config.head_width) if config.num_classes else None
        self.projector = mlp_bn(dim, config.proj_hidden_dim, config.proj_dim, 3) if config.proj_dim else None
        self.predictor = (
            mlp_bn(config.proj_dim, config.proj_hidden_dim, config.proj_dim, 2)
            if config.predictor and config.proj_dim else None
        )
        self.init_weights(init)
        if config.freeze_last_pool:
            self.pools[-1].requires_grad_(False)

    def init_weights(self, scheme: str) -> None:
        """Initialise in place by ``scheme`` (``hierseg.model.init``: the official MoCo or DeiT classes'
        rules, or hierseg's trunc-normal).

        Raises:
            ValueError: for an unknown scheme or an official one on a non-official architecture.
        """
        scheme = resolve_init(scheme, self.config)
        if scheme == "moco":
            # The projector and predictor are built by MoCo v3 after the encoder: PyTorch's defaults.
            heads = [part for part in (self.projector, self.predictor) if part is not None]
            xavier_init(self, skip=heads)
        elif scheme == "deit":
            # timm's initialisation ran before the official class added its poolings.
            timm_vit_init(module for part in (*self.stages, self.norm, self.head) if part is not None
                          for module in part.modules())
        else:
            timm_vit_init(self.modules())
        self.stem.init_weights()
        self.stem.init_cls_token(self.cls_token)
        for pool in self.pools:
            pool.init_weights()

    def no_weight_decay(self) -> set[str]:
        """Names of the parameters that weight decay leaves alone: the cls token and the stem's own
        (``Stem.no_weight_decay``: position tables)."""
        return {"cls_token", *(f"stem.{name}" for name in self.stem.no_weight_decay())}

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

    def tree_features(self, output: CASTOutput) -> torch.Tensor:
        """(B, S, D) the merge tree's metric on the superpixels, as the first pooling defines it
        (``Pooling.tree_features``) from the regions and an embedding of the stage-0 tokens: the grouping
        head's, or the layer-normalised tokens themselves without a grouping head.

        Raises:
            ValueError: for a pooling that gives no tree (``PoolingConfig.gives_tree``) or an output without regions.
        """
        if output.regions is None:
            raise ValueError("the merge tree needs the superpixels' regions, which this model's stem does not give")
        tokens = output.stage_tokens[0]
        if self.grouping_head is not None:
            embedding = self.grouping_head(tokens)
        else:
            embedding = nn.functional.layer_norm(tokens.float(), tokens.shape[-1:])
        return self.pools[0].tree_features(embedding, output.regions)

    def forward(self, image: torch.Tensor, superpixels: torch.Tensor, clusters: tuple[int, ...] | None = None,
                stages: int | None = None) -> CASTOutput:
        """image: (B, 3, H, W) normalised (the conv stem needs H = W = its img_size); superpixels:
        (B, H', W') int64 ids, -1 on batch padding (the lite0 stem needs them at the image's
        resolution). ``clusters`` overrides the config's.

        ``stages`` < L runs only the blocks of the first ``stages`` stages and no pooling after the last
        of them: the merge tree reads the stage-0 tokens alone, and the rest of the pass is most of the
        transformer's time. The lists then hold ``stages`` entries for the blocks run and none for
        pooling; ``features`` and the heads' outputs are None (the cls feature is read in the last stage).
        """
        clusters = tuple(clusters or self.config.clusters)
        if len(clusters) != len(self.stages):
            raise ValueError(f"need {len(self.stages)} cluster counts, got {clusters}")
        stages = len(self.stages) if stages is None else stages
        if not 1 <= stages <= len(self.stages):
            raise ValueError(f"stages must lie in 1..{len(self.stages)}, got {stages}")
        embedded = self.stem(image, superpixels)
        cls = (self.cls_token + embedded.cls_position).expand(image.shape[0], -1, -1)
        stage_inputs = torch.cat([cls, embedded.tokens], dim=1)
        cls, tokens, nodes = stage_inputs[:, :1], stage_inputs[:, 1:], embedded.nodes
        out = dict(stage_tokens=[], stage_cls=[], assignment_logits=[], centroids=[], pooled_tokens=[])
        features = None
        for level, (stage, pool) in enumerate(zip(self.stages, self.pools, strict=True)):
            x = torch.cat([cls, tokens], dim=1)
            mask = nodes.attention_mask()
            for block in stage:
                x = block(x, attn_mask=mask)
            cls, tokens = x[:, :1], x[:, 1:]
            out["stage_tokens"].append(tokens)
            out["stage_cls"].append(cls[:, 0])
            if level == stages - 1 and stages < len(self.stages):
                break
            if level == len(self.stages) - 1:
                # The classifier reads the cls token before the last pooling, as in the official model.
                features = self.norm(cls[:, 0])
            # Pooling cannot make more clusters than it has tokens (tiny images, tiny superpixel counts).
            pooled = pool(tokens, cls, nodes, min(clusters[level], tokens.shape[1]))
            out["assignment_logits"].append(pooled.logits)
            out["centroids"].append(pooled.centroids)
            out["pooled_tokens"].append(pooled.tokens)
            cls, tokens, nodes = pooled.cls, pooled.tokens, pooled.nodes
        heads = features is not None  # a pass cut short never reads the cls feature
        projection = self.projector(features) if self.projector is not None and heads else None
        return CASTOutput(
            features=features,
            logits=self.head(features) if self.head is not None and heads else None,
            projection=projection,
            predicted_projection=self.predictor(projection) if self.predictor is not None and heads else None,
            stem_map=embedded.feature_map,
            stage_inputs=stage_inputs,
            padding_mask=embedded.nodes.padding,
            token_cells=embedded.token_cells,
            regions=embedded.nodes.regions,
            **out,
        )
