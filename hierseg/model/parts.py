"""The two plug-in points of CAST and the records that flow between them.

A **stem** turns an image and its superpixel map into one token per superpixel (``Stem``); a
**pooling** turns the tokens of one level into those of the next, coarser one (``Pooling``). Each
comes with a frozen config dataclass (``StemConfig`` / ``PoolingConfig``) that is plain data,
nested in ``CASTConfig`` under ``stem`` and ``pooling`` with its ``kind``, and builds its module.
The official parts live in ``hierseg.model.official``, the hybrid ones in ``hierseg.model.hybrid``;
``hierseg.model.config`` lists them by kind.

What a pooling needs from a stem is checked when the config is made (``PoolingConfig.check``), so a
pair that cannot work is refused before any weight exists.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

import torch
from timm.layers import trunc_normal_
from torch import nn

__all__ = ["Nodes", "PoolOutput", "Pooling", "PoolingConfig", "Regions", "Stem", "StemConfig", "StemOutput"]


@dataclass
class Regions:
    """The nodes of one level as image regions. N nodes per image; padding nodes have area 0."""

    areas: torch.Tensor  # (B, N) fraction of the image
    adjacency: torch.Tensor  # (B, N, N) bool, symmetric, False on the diagonal
    descriptors: torch.Tensor  # (B, N, D) area-weighted means of low-level features, in StemConfig.region_descriptors groups


@dataclass
class Nodes:
    """What a level knows about its tokens besides their features."""

    padding: torch.Tensor | None  # (B, N) bool, True for tokens that stand for no pixels; None: every token is real
    regions: Regions | None = None  # the nodes' geometry, from stems that provide it
    # The official model lets padding tokens take part in attention (parity needs it); elsewhere they are masked out.
    padding_attends: bool = False

    def attention_mask(self) -> torch.Tensor | None:
        """(B, 1, 1, 1 + N) bool over [cls; tokens], True where attention may look; None: everywhere."""
        if self.padding is None or self.padding_attends:
            return None
        keep = torch.cat([torch.ones_like(self.padding[:, :1]), ~self.padding], dim=1)
        return keep[:, None, None, :]


@dataclass
class StemOutput:
    """One token per superpixel id (S = 1 + the largest id in the batch) and what the stem saw."""

    tokens: torch.Tensor  # (B, S, C) superpixel tokens, positions included
    cls_position: torch.Tensor  # (1, 1, C) added to the cls token
    nodes: Nodes  # padding (every stem gives it: ids absent from an image) and, maybe, regions
    feature_map: torch.Tensor  # (B, C', h, w) the stem's last feature map, channels first
    # (B, S, h*w) how many pixels of each superpixel fall in each cell of feature_map; None when
    # the stem samples the map at one pixel per cell (the official conv stem).
    token_cells: torch.Tensor | None = None


@dataclass
class PoolOutput:
    """One pooling step: N tokens of a level in, K tokens of the next level out."""

    tokens: torch.Tensor  # (B, K, C) next-level tokens
    cls: torch.Tensor  # (B, 1, C) updated cls token
    logits: torch.Tensor  # (B, N, K) assignment logits of the input tokens (argmax = cluster)
    centroids: torch.Tensor  # (B, K) int64 index of one input token standing for each cluster (-1: none)
    nodes: Nodes  # the K clusters


class _PartConfig:
    """Shared by stem and pooling configs: a ``kind`` and plain-data round trips."""

    kind: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        d = {"kind": self.kind}
        for name, value in asdict(self).items():  # type: ignore[call-overload]
            d[name] = list(value) if isinstance(value, tuple) else value
        return d

    @classmethod
    def field_names(cls) -> set[str]:
        return {f.name for f in fields(cls)}  # type: ignore[arg-type]


class StemConfig(_PartConfig, ABC):
    """Base of the stems' configs (frozen dataclasses with a ``kind``)."""

    img_size: int  # each stem documents what it means for it

    @property
    def region_descriptors(self) -> tuple[int, ...]:
        """Widths of the descriptor groups in the ``Regions`` this stem provides; () when it gives none."""
        return ()

    @property
    def square_input(self) -> int | None:
        """The side of the square input this stem needs; None: it runs on any shape."""
        return None

    @property
    def official_family(self) -> str | None:
        """``"moco"`` or ``"deit"`` when this is an official CAST stem, with that family's position table."""
        return None

    def format1_key(self, key: str) -> str | None:
        """The current name of a weight that checkpoint format 1 saved as ``key``, for the renames this stem
        needs besides the shared ones (``hierseg.checkpoints.upgrade_state``); None: the weight is dropped."""
        return key

    @abstractmethod
    def build(self, embed_dim: int) -> Stem:
        """The stem module this config describes."""


class PoolingConfig(_PartConfig, ABC):
    """Base of the poolings' configs (frozen dataclasses with a ``kind``)."""

    dropout: float
    official: ClassVar[bool] = False  # the official CAST pooling
    # Whether the pooling defines a merge tree's metric (``Pooling.tree_features``), so that a checkpoint
    # may read out a merge tree (``hierseg.readout.merge_tree``).
    gives_tree: ClassVar[bool] = False

    def check(self, stem: StemConfig) -> None:
        """Raise ``ValueError`` naming both parts if this pooling cannot run on what ``stem`` provides."""

    @abstractmethod
    def build(self, dim: int, num_heads: int, mlp_ratio: float, stem: StemConfig) -> Pooling:
        """One pooling module (CAST builds one per level) for ``dim``-wide tokens after ``stem``."""

    def build_grouping_head(self, dim: int) -> nn.Module | None:
        """A head on the ``dim``-wide superpixel tokens whose embedding a merge tree reads; None: none."""
        return None


class Stem(nn.Module, ABC):
    """Image + superpixel map -> one token per superpixel (``StemOutput``)."""

    @property
    @abstractmethod
    def backbone(self) -> nn.Module:
        """The image feature extractor: pretrained or official weights that refinement leaves alone."""

    def init_weights(self) -> None:
        """Initialise learned position tables (trunc-normal 0.02, as timm); stems without one do nothing."""

    def init_cls_token(self, cls_token: nn.Parameter) -> None:
        """Initialise the cls token that enters beside this stem's tokens: trunc-normal 0.02, as timm."""
        trunc_normal_(cls_token, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Names (under the stem) of parameters weight decay leaves alone, e.g. position tables; default none."""
        return set()

    @abstractmethod
    def forward(self, image: torch.Tensor, superpixels: torch.Tensor) -> StemOutput:
        """image: (B, 3, H, W) normalised; superpixels: (B, H', W') int64 ids, -1 on batch padding."""


class Pooling(nn.Module, ABC):
    """Tokens of one level -> tokens of the next (``PoolOutput``)."""

    def init_weights(self) -> None:
        """Draw the parameters every initialisation scheme gives this pooling its own way; default: none."""

    def tree_features(self, embedding: torch.Tensor, regions: Regions) -> torch.Tensor:
        """(B, N, D') the merge tree's metric on N nodes: their ``regions`` and a learned ``embedding``
        (B, N, E) of their tokens. Poolings that give no tree (``PoolingConfig.gives_tree``) raise ValueError."""
        raise ValueError(f"the merge tree needs a pooling that gives one (pooling 'merge'), not {type(self).__name__}")

    @abstractmethod
    def forward(self, tokens: torch.Tensor, cls: torch.Tensor, nodes: Nodes, num_clusters: int) -> PoolOutput:
        """tokens: (B, N, C); cls: (B, 1, C); nodes: the N tokens' padding and geometry; K = num_clusters <= N."""
