"""Region merging: graph pooling that only merges neighbouring regions, so every segment is one piece.

The official graph pooling (``official/graph_pool.py``) lets any token join any farthest-point centroid, and
nothing keeps a cluster connected. Here the K segments of a level come from agglomerative merging on
the region adjacency graph (the superpixels' 4-neighbourhood), with Ward's criterion: merging regions
i and j costs ``w_i w_j / (w_i + w_j) * |c_i - c_j|^2`` (w: area, c: mean descriptor), which grows with
size, so small regions are absorbed before big ones are joined (plain mean-distance merging leaves
crumbs for last). Like token merging (ToMe) and agglomerative token clustering, the merge decisions
are hard; gradients reach the model through the area-weighted pooling of the merged tokens.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..parts import Nodes, Pooling, PoolingConfig, PoolOutput, Regions, StemConfig
from .grouping_head import GroupingHead

# Cost added to merging two regions that do not touch: chosen only when no neighbouring pair is left.
_NOT_ADJACENT = 1e12


@dataclass(frozen=True)
class RegionMergingConfig(PoolingConfig):
    """Ward merging of neighbouring regions. It needs the regions (areas, adjacency, descriptors) that
    only some stems provide, with one weight per descriptor group.

    Merge metric weights: ``merge_colour`` on the mean colour, ``merge_taps`` one per stem map (the
    stem's taps), ``merge_tokens`` on the blocks' tokens. ``dropout``: inside ``fc1``.

    ``grouping_dim`` > 0 adds a ``GroupingHead`` of that width on the stage-0 superpixel tokens. Then
    ``merge_tokens`` weighs its embedding in the merge tree's metric (``tree_features``; 0: colour and
    stem only, the ablation) and the poolings read colour and the stem only: they set the transformer's
    token counts, not the tree the user sees.
    """

    kind: ClassVar[str] = "merge"
    gives_tree: ClassVar[bool] = True
    dropout: float = 0.1
    merge_colour: float = 1.0
    merge_taps: tuple[float, ...] = (1.0, 1.0, 0.0)
    merge_tokens: float = 0.0
    grouping_dim: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "merge_taps", tuple(float(w) for w in self.merge_taps))
        if self.grouping_dim < 0:
            raise ValueError(f"grouping_dim must be >= 0, got {self.grouping_dim}")

    def check(self, stem: StemConfig) -> None:
        groups = stem.region_descriptors
        if not groups:
            raise ValueError(
                f"pooling {self.kind!r} cannot follow stem {stem.kind!r}: it merges neighbouring regions by their "
                f"descriptors, which stem {stem.kind!r} does not provide"
            )
        if len(groups) != 1 + len(self.merge_taps):
            raise ValueError(
                f"pooling {self.kind!r} with stem {stem.kind!r}: merge_taps {self.merge_taps} needs one weight per "
                f"stem map ({len(groups) - 1})"
            )

    def build(self, dim: int, num_heads: int, mlp_ratio: float, stem: StemConfig) -> RegionMerging:
        token_weight = 0.0 if self.grouping_dim else self.merge_tokens  # with a head, merge_tokens weighs the tree's
        return RegionMerging(dim, mlp_ratio, self.dropout, stem.region_descriptors,
                             (self.merge_colour, *self.merge_taps), token_weight, self.merge_tokens)

    def build_grouping_head(self, dim: int) -> GroupingHead | None:
        return GroupingHead(dim, self.grouping_dim) if self.grouping_dim else None


def weighted_standardise(x: torch.Tensor, areas: torch.Tensor) -> torch.Tensor:
    """Centre on the area-weighted mean and scale to unit area-weighted total variance, per image.

    x: (B, N, D); areas: (B, N), each image's summing to 1 (0 for padding). Also the grouping head's
    training target (``training.train_grouping``), so that it learns distances as the merge metric reads them.
    """
    mean = (x * areas[..., None]).sum(1, keepdim=True)
    var = ((x - mean).square().sum(-1) * areas).sum(1).clamp(min=1e-12)
    return (x - mean) / var.sqrt()[:, None, None]


@torch.no_grad()
def ward_merge(features: torch.Tensor, areas: torch.Tensor, adjacency: torch.Tensor, num_clusters: int) -> torch.Tensor:
    """Merge neighbouring nodes by Ward's criterion until ``num_clusters`` remain; (B, N) cluster ids.

    features: (B, N, D); areas: (B, N), 0 for padding; adjacency: (B, N, N) bool. Each round merges
    every pair of mutual nearest neighbours (cheapest first, never past ``num_clusters``), which for a
    reducible criterion like Ward's matches merging one pair at a time in most rounds and takes a
    handful of rounds instead of N. Cluster ids are 0..n-1 in order of each cluster's first node;
    padding nodes get id 0 (they carry no area). Images with fewer real nodes keep all of them.
    """
    batch, count, _ = features.shape
    device = features.device
    centre = features.float()
    mass = areas.float().clone()
    active = mass > 0
    index = torch.arange(count, device=device)
    adj = adjacency & active[:, :, None] & active[:, None, :] & (index[:, None] != index[None, :])
    owner = index.expand(batch, count).clone()  # each input node's current cluster representative
    while True:
        need = (active.sum(1) - num_clusters).clamp(min=0)
        if int(need.max()) == 0:
            break
        d2 = torch.cdist(centre, centre).square()
        pair_mass = mass[:, :, None] * mass[:, None, :] / (mass[:, :, None] + mass[:, None, :]).clamp(min=1e-30)
        both = active[:, :, None] & active[:, None, :] & (index[:, None] != index[None, :])
        cost = pair_mass * d2 + torch.where(adj, 0.0, _NOT_ADJACENT)
        cost = torch.where(both, cost, torch.inf)
        best, partner = cost.min(-1)
        mutual = active & torch.isfinite(best) & (partner.gather(1, partner) == index) & (index < partner)
        ranked = torch.where(mutual, best, torch.inf).argsort(1)
        rank = torch.empty_like(ranked).scatter_(1, ranked, index.expand(batch, count))
        take = mutual & (rank < need[:, None])
        # remap[j] = i for every merged pair (j into i); identity elsewhere.
        remap = index.expand(batch, count).clone()
        b, i = take.nonzero(as_tuple=True)
        remap[b, partner[b, i]] = i
        onehot = F.one_hot(remap, count).float()  # (B, N old, N new)
        new_mass = (onehot * mass[..., None]).sum(1)
        centre = onehot.transpose(1, 2) @ (centre * mass[..., None]) / new_mass.clamp(min=1e-30)[..., None]
        mass = new_mass
        active = mass > 0
        linked = onehot.transpose(1, 2) @ adj.float() @ onehot
        adj = (linked > 0) & active[:, :, None] & active[:, None, :] & (index[:, None] != index[None, :])
        owner = remap.gather(1, owner)
    cluster_of_rep = torch.cumsum(active.long(), 1) - 1
    return torch.where(areas > 0, cluster_of_rep.gather(1, owner), 0)


class RegionMerging(Pooling):
    """Merge N region tokens into K neighbouring-region clusters and pool their features.

    Merge metric: Ward's criterion on the concatenation of the standardised region descriptors (colour
    and the stem's feature maps, weighted by ``descriptor_weights``) and, weighted by ``token_weight``,
    the standardised layer-normalised tokens themselves (what the blocks learned from recognition).
    Pooling, as the official module: Z_k = area-weighted mean of fc1(X) over cluster k; next token k =
    fc2(Z_k) + the area-weighted mean of X over cluster k; cls += fc2(fc1(cls)). The logits are the
    one-hot assignment; each cluster's centroid is one of its members (the highest index).
    ``tree_weight`` weighs the grouping embedding in the merge tree's metric (``tree_features``).
    """

    def __init__(self, dim: int, mlp_ratio: float, dropout: float, descriptor_groups: tuple[int, ...],
                 descriptor_weights: tuple[float, ...], token_weight: float, tree_weight: float = 0.0) -> None:
        super().__init__()
        if len(descriptor_groups) != len(descriptor_weights):
            raise ValueError(f"{len(descriptor_groups)} descriptor groups but {len(descriptor_weights)} weights")
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.fc2 = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, dim))
        self.descriptor_groups = tuple(descriptor_groups)
        self.descriptor_weights = tuple(descriptor_weights)
        self.token_weight = token_weight
        self.tree_weight = tree_weight

    def _descriptor_parts(self, regions: Regions) -> list[torch.Tensor]:
        """The standardised descriptor groups, each times the square root of its weight (0: left out)."""
        groups = regions.descriptors.split(self.descriptor_groups, dim=-1)
        return [weight**0.5 * weighted_standardise(group.float(), regions.areas)
                for group, weight in zip(groups, self.descriptor_weights, strict=True) if weight > 0]

    def merge_features(self, tokens: torch.Tensor, regions: Regions) -> torch.Tensor:
        """(B, N, D') features whose squared distances Ward's criterion uses."""
        parts = self._descriptor_parts(regions)
        if self.token_weight > 0:
            normed = F.layer_norm(tokens.detach().float(), tokens.shape[-1:])
            parts.append(self.token_weight**0.5 * weighted_standardise(normed, regions.areas))
        if not parts:
            raise ValueError("region merging needs at least one descriptor or token weight above 0")
        return torch.cat(parts, dim=-1)

    def tree_features(self, embedding: torch.Tensor, regions: Regions) -> torch.Tensor:
        """(B, N, D') the merge tree's metric: the descriptors as in ``merge_features`` and, weighted by
        ``tree_weight`` (``merge_tokens``), the standardised ``embedding`` (B, N, E); scaled to unit total variance per image, so
        that merge costs are fractions of the image's variance and cut heights mean the same on every photo."""
        parts = self._descriptor_parts(regions)
        total = sum(w for w in self.descriptor_weights if w > 0)
        weight = self.tree_weight
        if weight > 0:
            parts.append(weight**0.5 * weighted_standardise(embedding.detach().float(), regions.areas))
            total += weight
        if not parts:
            raise ValueError("the merge tree needs at least one descriptor or embedding weight above 0")
        return torch.cat(parts, dim=-1) / total**0.5

    def forward(self, tokens: torch.Tensor, cls: torch.Tensor, nodes: Nodes, num_clusters: int) -> PoolOutput:
        """tokens: (B, N, C); cls: (B, 1, C); ``nodes.regions``: the N nodes as regions."""
        regions = nodes.regions
        if regions is None:  # RegionMergingConfig.check refuses such stems before a model exists
            raise ValueError("region merging needs the nodes' regions")
        assignment = ward_merge(self.merge_features(tokens, regions), regions.areas, regions.adjacency, num_clusters)
        real = (regions.areas > 0).to(tokens.dtype)
        onehot = F.one_hot(assignment, num_clusters).to(tokens.dtype) * real[..., None]  # (B, N, K)
        weights = onehot * regions.areas.to(tokens.dtype)[..., None]
        mass = weights.sum(1)  # (B, K)
        share = weights / mass.clamp(min=1e-12)[:, None, :]  # columns sum to 1 (0 for empty clusters)

        hidden = self.fc1(torch.cat([cls, tokens], dim=1))
        pooled = share.transpose(1, 2) @ hidden[:, 1:]
        out = self.fc2(torch.cat([hidden[:, :1], pooled], dim=1))
        filled = (mass > 0).to(tokens.dtype)[..., None]
        next_tokens = (out[:, 1:] + share.transpose(1, 2) @ tokens) * filled

        linked = onehot.transpose(1, 2) @ regions.adjacency.to(tokens.dtype) @ onehot
        eye = torch.eye(num_clusters, dtype=torch.bool, device=tokens.device)
        adjacency = (linked > 0) & ~eye
        descriptors = share.transpose(1, 2) @ regions.descriptors.to(tokens.dtype)
        # One member per cluster (the highest index), for inspection only.
        members = torch.arange(tokens.shape[1], device=tokens.device).expand_as(assignment)
        centroids = torch.full((tokens.shape[0], num_clusters), -1, dtype=torch.long, device=tokens.device)
        centroids.scatter_reduce_(1, assignment, torch.where(real > 0, members, -1), reduce="amax")
        merged = Regions(areas=mass, adjacency=adjacency, descriptors=descriptors)
        return PoolOutput(
            tokens=next_tokens,
            cls=cls + out[:, :1],
            logits=onehot,
            centroids=centroids,
            nodes=Nodes(padding=mass == 0, regions=merged),
        )
