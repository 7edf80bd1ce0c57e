"""Class vocabularies that ship with our dependencies (nothing is downloaded)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k class names in index order, as torchvision ships them."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
