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

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "clusters", tuple(int(k) for k in self.clusters))
        if len(self.depths) != len(self.clusters):
            raise ValueError(f"depths {self.depths} and clusters {self.clusters} must have one entry per level")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.embed_dim % 4:
            raise ValueError("embed_dim must be divisible by 4 for the 2-D sin-cos position table")
        if self.img_size % 8:
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
