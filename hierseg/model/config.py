"""Plain-data configuration of a CAST model. Everything a checkpoint needs to rebuild its architecture.

The stem and the pooling are plug-ins (``hierseg.model.parts``); their configs nest under ``stem``
and ``pooling``, each with its ``kind``. ``STEMS`` and ``POOLINGS`` list the kinds there are.
Checkpoint format 1 and ``build_cast``'s keyword overrides name the parts' settings flat
(``stem="lite0"``, ``img_size=64``, ``merge_tokens=0.5``, ...): ``FLAT_NAMES`` says where each one
nests, ``CASTConfig.replace`` accepts them and ``CASTConfig.from_flat`` reads a format-1 dict.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .hybrid.lite_stem import LiteStemConfig
from .hybrid.region_merge import RegionMergingConfig
from .official.graph_pool import GraphPoolingConfig
from .official.stem import ConvStemConfig
from .parts import PoolingConfig, StemConfig

__all__ = ["CASTConfig", "FLAT_NAMES", "POOLINGS", "STEMS"]

STEMS: dict[str, type[StemConfig]] = {c.kind: c for c in (ConvStemConfig, LiteStemConfig)}
POOLINGS: dict[str, type[PoolingConfig]] = {c.kind: c for c in (GraphPoolingConfig, RegionMergingConfig)}
_PARTS = {"stem": STEMS, "pooling": POOLINGS}
# Flat name of a part's setting -> (part, its name there).
FLAT_NAMES: dict[str, tuple[str, str]] = {
    "stem": ("stem", "kind"),
    "img_size": ("stem", "img_size"),
    "pos_embed": ("stem", "pos_embed"),
    "stem_taps": ("stem", "taps"),
    "pooling": ("pooling", "kind"),
    "pool_dropout": ("pooling", "dropout"),
    "merge_colour": ("pooling", "merge_colour"),
    "merge_taps": ("pooling", "merge_taps"),
    "merge_tokens": ("pooling", "merge_tokens"),
    "grouping_dim": ("pooling", "grouping_dim"),
}


@dataclass(frozen=True)
class CASTConfig:
    """Shape of a CAST network (Ke, Mo, Yu, ICLR 2024).

    The stem makes one token per superpixel; ``depths[l]`` transformer blocks run on the tokens of
    level ``l`` before pooling ``l`` merges them into ``clusters[l]`` segments. Cluster counts hold
    no parameters: the same weights run with any counts.
    """

    embed_dim: int = 384
    depths: tuple[int, ...] = (3, 3, 3, 2)
    num_heads: int = 12
    mlp_ratio: float = 4.0
    clusters: tuple[int, ...] = (64, 32, 16, 8)
    num_classes: int = 0  # linear classifier on the cls feature; 0 = none
    proj_dim: int = 0  # MoCo projector output width; 0 = no projector
    proj_hidden_dim: int = 4096
    predictor: bool = False  # MoCo predictor on top of the projector (online branch only)
    drop_path_rate: float = 0.0
    freeze_last_pool: bool = True  # official classifiers never train pool 4: its output is not used
    # > 0: the classifier is Linear(embed_dim, head_width) -> Linear(head_width, num_classes), so the
    # tokens can regress a teacher's penultimate features and reuse its classifier.
    head_width: int = 0
    stem: StemConfig = ConvStemConfig()  # makes the superpixel tokens: STEMS
    pooling: PoolingConfig = GraphPoolingConfig()  # makes each next level's tokens, one module per level: POOLINGS

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "clusters", tuple(int(k) for k in self.clusters))
        if len(self.depths) != len(self.clusters):
            raise ValueError(f"depths {self.depths} and clusters {self.clusters} must have one entry per level")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")
        if self.embed_dim % 4:
            raise ValueError("embed_dim must be divisible by 4 for the 2-D sin-cos position code")
        if any(k < 1 for k in self.clusters):
            raise ValueError(f"cluster counts must be positive: {self.clusters}")
        self.pooling.check(self.stem)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        d["depths"], d["clusters"] = list(self.depths), list(self.clusters)
        d["stem"], d["pooling"] = self.stem.to_dict(), self.pooling.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CASTConfig:
        """Inverse of ``to_dict``. Raises ValueError on unknown keys, kinds or settings."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown CAST config keys: {sorted(unknown)}")
        parts = {name: _part(name, d[name]) for name in _PARTS if name in d}
        return cls(**{**d, **parts})

    @classmethod
    def from_flat(cls, d: dict[str, Any]) -> CASTConfig:
        """A config from the flat layout of checkpoint format 1, every part's setting at the top level.

        There, settings of the kinds not chosen had no effect, and neither had ``pos_embed`` with the
        lite0 stem (it always placed tokens by its own sin-cos code): they are dropped.
        """
        parts = {name: {"kind": d.get(name, default.kind)}
                 for name, default in (("stem", ConvStemConfig), ("pooling", GraphPoolingConfig))}
        top = {}
        for key, value in d.items():
            if key not in FLAT_NAMES:
                top[key] = value
                continue
            part, name = FLAT_NAMES[key]
            kind = _PARTS[part].get(parts[part]["kind"])
            if name != "kind" and kind is not None and name in kind.field_names():
                parts[part][name] = value
        return cls.from_dict({**top, **parts})

    def replace(self, **changes: Any) -> CASTConfig:
        """A copy with ``changes``: fields, whole part configs, or flat names of part settings (``FLAT_NAMES``).

        A new ``stem``/``pooling`` kind starts from its defaults and keeps the settings it shares with the
        old kind (e.g. ``img_size``); a setting the resulting kind does not have is refused (ValueError).
        """
        d = self.to_dict()
        settings = []
        for key, value in changes.items():
            if isinstance(value, (StemConfig, PoolingConfig)):
                d[key] = value.to_dict()
            elif key in FLAT_NAMES:
                settings.append((*FLAT_NAMES[key], value))
            elif key in d:
                d[key] = value
            else:
                raise ValueError(f"unknown CAST config key {key!r}")
        for part, name, value in sorted(settings, key=lambda s: s[1] != "kind"):  # kinds first
            if name == "kind" and value != d[part]["kind"]:
                kept = _PARTS[part][value].field_names() if value in _PARTS[part] else set()
                d[part] = {"kind": value, **{k: v for k, v in d[part].items() if k in kept}}
            else:
                d[part][name] = value
        return CASTConfig.from_dict(d)


def _part(name: str, value: Any) -> StemConfig | PoolingConfig:
    """The config of part ``name`` ("stem" or "pooling") from its dict with a ``kind``."""
    if isinstance(value, (StemConfig, PoolingConfig)):
        return value
    kinds = _PARTS[name]
    settings = dict(value)
    kind = settings.pop("kind", None)
    if kind not in kinds:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, kinds))}, not {kind!r}")
    unknown = set(settings) - kinds[kind].field_names()
    if unknown:
        raise ValueError(
            f"{name} {kind!r} has no setting {', '.join(map(repr, sorted(unknown)))} "
            f"(its settings: {', '.join(sorted(kinds[kind].field_names()))})"
        )
    return kinds[kind](**settings)
