"""hierseg's hybrid parts: the frozen EfficientNet-Lite0 body as the stem, Ward merging of neighbouring regions."""
from .lite_stem import LiteStem, LiteStemConfig
from .region_merge import RegionMerging, RegionMergingConfig, ward_merge

__all__ = ["LiteStem", "LiteStemConfig", "RegionMerging", "RegionMergingConfig", "ward_merge"]
