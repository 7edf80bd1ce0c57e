"""hierseg's hybrid parts: the frozen EfficientNet-Lite0 body as the stem, Ward merging of neighbouring regions,
the grouping head whose embedding the merge tree reads."""
from .grouping_head import GroupingHead
from .lite_stem import LiteStem, LiteStemConfig
from .region_merge import RegionMerging, RegionMergingConfig, ward_merge

__all__ = ["GroupingHead", "LiteStem", "LiteStemConfig", "RegionMerging", "RegionMergingConfig", "ward_merge"]
