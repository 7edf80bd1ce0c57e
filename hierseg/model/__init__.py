"""CAST model: one nn.Module per file, assembled in ``cast.py``; variants in ``registry.py``."""
from .cast import CAST, CASTOutput
from .config import CASTConfig
from .fps import farthest_point_sample
from .graph_pool import GraphPooling
from .readout import compose, hierarchy_from_assignments, level_assignments
from .registry import build_cast, list_variants, register_variant, variant_config

__all__ = [
    "CAST",
    "CASTConfig",
    "CASTOutput",
    "GraphPooling",
    "build_cast",
    "compose",
    "farthest_point_sample",
    "hierarchy_from_assignments",
    "level_assignments",
    "list_variants",
    "register_variant",
    "variant_config",
]
