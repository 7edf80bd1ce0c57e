"""CAST model: one nn.Module per file, assembled in ``cast.py``; variants in ``registry.py``."""
from .cast import CAST, CASTOutput
from .config import CASTConfig
from .fps import farthest_point_sample
from .graph_pool import GraphPooling
from .init import INIT_SCHEMES, init_weights, resolve_init
from .readout import compose, hierarchy_from_assignments, level_assignments
from .registry import build_cast, list_variants, register_variant, variant_config

__all__ = [
    "CAST",
    "CASTConfig",
    "CASTOutput",
    "INIT_SCHEMES",
    "GraphPooling",
    "build_cast",
    "compose",
    "farthest_point_sample",
    "hierarchy_from_assignments",
    "init_weights",
    "level_assignments",
    "list_variants",
    "register_variant",
    "resolve_init",
    "variant_config",
]
