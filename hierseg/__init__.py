"""hierseg: part-whole image hierarchies from CAST (Ke, Mo, Yu, ICLR 2024).

    from hierseg import load_segmenter
    segmenter = load_segmenter()          # the shipped default checkpoint
    h = segmenter("photo.jpg")            # a Hierarchy
    h.label_maps[0]                       # coarsest segmentation, (H, W) ids 0..n-1
"""
from .errors import CheckpointError, HiersegError, ImageLoadError, MissingDependencyError
from .hierarchy import Hierarchy, Node
from .segmenter import Segmenter, load_segmenter

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Hierarchy",
    "HiersegError",
    "ImageLoadError",
    "MissingDependencyError",
    "Node",
    "Segmenter",
    "load_segmenter",
]
