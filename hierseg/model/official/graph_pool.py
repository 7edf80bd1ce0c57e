"""Graph pooling: merge N segment tokens into K coarser segments (twke18/CAST ``cast_models/graph_pool.py``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from timm.layers import Attention
from torch import nn

from ..norm import LayerNorm
from ..parts import Nodes, Pooling, PoolingConfig, PoolOutput, StemConfig
from .fps import farthest_point_sample

# Official temperature of the cosine assignment logits (5 = 1 / 0.2).
ASSIGNMENT_SCALE = 5.0


class AffinityBlock(nn.Module):
    """Features that decide which centroid a token joins: an attention-only block, centred over tokens.

    H = X + MHSA(LN(X)); H <- H - mean_tokens(H) + b.  Official key name: ``centroid_fc``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm = LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
        self.bias = nn.Parameter(torch.empty(dim).normal_(std=0.01))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, N, C) -> (B, N, C)."""
        h = tokens + self.attn(self.norm(tokens))
        return h - h.mean(dim=1, keepdim=True) + self.bias


@dataclass(frozen=True)
class GraphPoolingConfig(PoolingConfig):
    """The official pooling. It reads only the tokens and their padding, so it runs after any stem.

    ``dropout``: inside ``fc1``, as in the official code.
    """

    kind: ClassVar[str] = "graph"
    official: ClassVar[bool] = True
    dropout: float = 0.1

    def build(self, dim: int, num_heads: int, mlp_ratio: float, stem: StemConfig) -> GraphPooling:
        return GraphPooling(dim, num_heads, mlp_ratio, self.dropout)


class GraphPooling(Pooling):
    """Soft-assign N tokens to K farthest-point-sampled centroids and pool their features.

    1. Centroids: farthest point sampling on the raw tokens (padding replaced by the valid mean,
       which is prepended and taken as the first pick, then dropped).
    2. Logits A = 5 cos(H_i, H_s(k)) on affinity features H; P = softmax_k(A).
    3. Z_k = sum_i P_ik fc1(X)_i / sum_i P_ik; next token k = fc2(Z_k) + X_s(k); cls += fc2(fc1(cls)).

    The returned logits are A (before the softmax) and the centroids the FPS picks; every cluster is
    a real token, so the next level has no padding.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.1) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.affinity = AffinityBlock(dim, num_heads)
        # The official fc1/fc2 use LayerNorm's default eps (1e-5), unlike the blocks (1e-6); parity needs it.
        self.fc1 = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.fc2 = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, dim))

    def init_weights(self) -> None:
        """The affinity bias is N(0, 0.01) in every scheme, as the official ``Block`` sets it."""
        nn.init.normal_(self.affinity.bias, std=0.01)

    def forward(self, tokens: torch.Tensor, cls: torch.Tensor, nodes: Nodes, num_clusters: int) -> PoolOutput:
        """tokens: (B, N, C); cls: (B, 1, C); ``nodes.padding`` marks the empty tokens FPS must not pick."""
        count = tokens.shape[1]
        if num_clusters > count:
            raise ValueError(f"cannot pool {count} tokens into {num_clusters} clusters")
        centroids = self._sample_centroids(tokens, num_clusters, nodes.padding)

        affinity = F.normalize(self.affinity(tokens), dim=-1)
        picked = torch.gather(affinity, 1, centroids[..., None].expand(-1, -1, affinity.shape[-1]))
        logits = ASSIGNMENT_SCALE * affinity @ picked.transpose(1, 2)
        weights = logits.softmax(dim=-1)

        hidden = self.fc1(torch.cat([cls, tokens], dim=1))
        pooled = weights.transpose(1, 2) @ hidden[:, 1:] / weights.sum(dim=1)[..., None]
        out = self.fc2(torch.cat([hidden[:, :1], pooled], dim=1))
        residual = torch.gather(tokens, 1, centroids[..., None].expand(-1, -1, tokens.shape[-1]))
        return PoolOutput(tokens=out[:, 1:] + residual, cls=cls + out[:, :1], logits=logits, centroids=centroids,
                          nodes=Nodes(padding=None))

    @staticmethod
    def _sample_centroids(tokens: torch.Tensor, num_clusters: int, padding_mask: torch.Tensor | None) -> torch.Tensor:
        points = tokens.detach().double()
        if padding_mask is None:
            mean = points.mean(dim=1, keepdim=True)
        else:
            valid = (~padding_mask).double()[..., None]
            mean = (points * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp(min=1)
            # Padded tokens sit on the mean, i.e. on the first pick, so they are never chosen.
            points = torch.where(padding_mask[..., None], mean, points)
        picks = farthest_point_sample(torch.cat([mean, points], dim=1), num_clusters + 1)
        return picks[:, 1:] - 1
