"""Named CAST variants with their default configuration (timm-style registry)."""
from __future__ import annotations

from typing import Any

from .cast import CAST
from .config import CASTConfig
from .hybrid import LiteStemConfig, RegionMergingConfig
from .official import ConvStemConfig

_VARIANTS: dict[str, CASTConfig] = {}


def register_variant(name: str, config: CASTConfig) -> None:
    """Make ``config`` buildable by ``name``; names are unique."""
    if name in _VARIANTS:
        raise ValueError(f"variant {name!r} is already registered")
    _VARIANTS[name] = config


def list_variants() -> list[str]:
    """Registered variant names, sorted."""
    return sorted(_VARIANTS)


def variant_config(name: str, **overrides: Any) -> CASTConfig:
    """The config of a registered variant with ``overrides`` applied: ``CASTConfig`` fields, whole part
    configs, or the flat names of part settings (``stem="lite0"``, ``img_size=64``, ``merge_tokens=0.5``;
    see ``CASTConfig.replace``)."""
    if name not in _VARIANTS:
        raise KeyError(f"unknown CAST variant {name!r}; known: {', '.join(list_variants())}")
    return _VARIANTS[name].replace(**overrides) if overrides else _VARIANTS[name]


def build_cast(name: str, init: str = "trunc_normal", **overrides: Any) -> CAST:
    """Build a registered variant, e.g. ``build_cast("cast_small", num_classes=1000, init="official")``;
    ``init`` is a ``hierseg.model.init`` scheme, ``overrides`` as ``variant_config``'s.

    Raises:
        ValueError: for a stem and pooling that cannot work together (naming both), or any invalid setting.
    """
    return CAST(variant_config(name, **overrides), init=init)


# Official shapes (paper and twke18/CAST): stride-8 conv stem, 12 heads, MLP ratio 4, 11 or 15 blocks in 4 stages.
register_variant("cast_small", CASTConfig(embed_dim=384, depths=(3, 3, 3, 2)))
register_variant("cast_small_deep", CASTConfig(embed_dim=384, depths=(6, 3, 3, 3)))
register_variant("cast_base", CASTConfig(embed_dim=768, depths=(3, 3, 3, 2)))
register_variant("cast_base_deep", CASTConfig(embed_dim=768, depths=(6, 3, 3, 3)))
# Small variants we train on CPUs: fewer, narrower blocks, the same token flow.
register_variant("cast_tiny", CASTConfig(embed_dim=192, depths=(2, 2, 2, 2), num_heads=6, clusters=(32, 16, 8, 4),
                                         stem=ConvStemConfig(img_size=160)))
register_variant("cast_micro", CASTConfig(embed_dim=48, depths=(2, 1, 1, 1), num_heads=12, clusters=(16, 8, 4, 2)))
# Hybrid: the frozen EfficientNet-Lite0 body as the stem, Ward region merging as the pooling, a head
# that regresses the teacher's 1280-d features before its classifier.
register_variant("cast_hybrid_tiny", CASTConfig(
    embed_dim=192, depths=(2, 2, 2, 2), num_heads=6, clusters=(32, 16, 8, 4), head_width=1280, freeze_last_pool=False,
    stem=LiteStemConfig(img_size=224, taps=(2, 4, 6)), pooling=RegionMergingConfig()))
register_variant("cast_hybrid_micro", CASTConfig(
    embed_dim=48, depths=(1, 1, 1, 1), num_heads=4, clusters=(16, 8, 4, 2), head_width=1280, freeze_last_pool=False,
    stem=LiteStemConfig(img_size=64, taps=(2, 4, 6)), pooling=RegionMergingConfig()))
