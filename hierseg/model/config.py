"""Plain-data configuration of a CAST model. Everything a checkpoint needs to rebuild its architecture."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class CASTConfig:
    """Shape of a CAST network (Ke, Mo, Yu, ICLR 2024).

    The stem downsamples by 8, so an ``img_size`` of 224 gives a 28x28 feature grid. ``depths[l]``
    transformer blocks run on the tokens of level ``l`` before graph pooling ``l`` merges them into
    ``clusters[l]`` segments. Cluster counts hold no parameters: the same weights run with any counts.
    """

    embed_dim: int = 384
    depths: tuple[int, ...] = (3, 3, 3, 2)
    num_heads: int = 12
    mlp_ratio: float = 4.0
    clusters: tuple[int, ...] = (64, 32, 16, 8)
    img_size: int = 224
    # "sincos": the MoCo family's fixed 2-D table plus a frozen cls entry (official `pe_token`).
    # "learned": the DeiT family's trainable table whose cls row is added to the cls token.
    pos_embed: str = "sincos"
    num_classes: int = 0  # linear classifier on the cls feature; 0 = none
    proj_dim: int = 0  # MoCo projector output width; 0 = no projector
    proj_hidden_dim: int = 4096
    predictor: bool = False  # MoCo predictor on top of the projector (online branch only)
    drop_path_rate: float = 0.0
    pool_dropout: float = 0.1  # dropout inside graph pooling's fc1, as in the official code
    freeze_last_pool: bool = True  # official classifiers never train pool 4: its output is not used
    # "conv": the official stride-8 conv stem on a square img_size input. "lite0": the frozen body of
    # EfficientNet-Lite0 (a hybrid stem), any input shape; tokens read the block groups in stem_taps.
    stem: str = "conv"
    stem_taps: tuple[int, ...] = (2, 4, 6)
    # "graph": the official soft assignment to farthest-point centroids. "merge": Ward merging of
    # neighbouring regions (segments stay in one piece), on colour (merge_colour), the stem maps
    # (merge_taps, one weight per tap) and the blocks' tokens (merge_tokens).
    pooling: str = "graph"
    merge_colour: float = 1.0
    merge_taps: tuple[float, ...] = (1.0, 1.0, 0.0)
    merge_tokens: float = 0.0
    # > 0: the classifier is Linear(embed_dim, head_width) -> Linear(head_width, num_classes), so the
    # tokens can regress a teacher's penultimate features and reuse its classifier.
    head_width: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "clusters", tuple(int(k) for k in self.clusters))
        object.__setattr__(self, "stem_taps", tuple(int(t) for t in self.stem_taps))
        object.__setattr__(self, "merge_taps", tuple(float(w) for w in self.merge_taps))
        if self.stem not in ("conv", "lite0"):
            raise ValueError(f"stem must be 'conv' or 'lite0', not {self.stem!r}")
        if self.pooling not in ("graph", "merge"):
            raise ValueError(f"pooling must be 'graph' or 'merge', not {self.pooling!r}")
        if self.pooling == "merge" and self.stem != "lite0":
            raise ValueError("pooling 'merge' needs the 'lite0' stem (its regions come from the stem's maps)")
        if self.stem == "lite0" and len(self.merge_taps) != len(self.stem_taps):
            raise ValueError(f"merge_taps {self.merge_taps} needs one weight per stem tap {self.stem_taps}")
        if len(self.depths) != len(self.clusters):
            raise ValueError(f"depths {self.depths} and clusters {self.clusters} must have one entry per level")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.embed_dim % 4:
            raise ValueError("embed_dim must be divisible by 4 for the 2-D sin-cos position table")
        if self.stem == "conv" and self.img_size % 8:
            raise ValueError(f"img_size {self.img_size} must be a multiple of the stem stride 8")
        if self.pos_embed not in ("sincos", "learned"):
            raise ValueError(f"pos_embed must be 'sincos' or 'learned', not {self.pos_embed!r}")
        if any(k < 1 for k in self.clusters):
            raise ValueError(f"cluster counts must be positive: {self.clusters}")

    @property
    def grid_size(self) -> int:
        return self.img_size // 8

    @property
    def num_levels(self) -> int:
        return len(self.clusters)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["depths"] = list(self.depths)
        d["clusters"] = list(self.clusters)
        d["stem_taps"] = list(self.stem_taps)
        d["merge_taps"] = list(self.merge_taps)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CASTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown CAST config keys: {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "CASTConfig":
        return CASTConfig.from_dict({**self.to_dict(), **changes})
