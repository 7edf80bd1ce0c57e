"""CAST model: one nn.Module per file, assembled in ``cast.py``; variants in ``registry.py``.

Stems and poolings are plug-ins (``parts.py``): the official ones in ``official/``, the hybrid ones
in ``hybrid/``, listed by kind in ``config.py``. EfficientNet-Lite0 (the hybrid stem's body, the
labeller's recognizer, the distillation teacher) is built in ``lite0.py`` alone.
"""
from .cast import CAST, CASTOutput
from .config import FLAT_NAMES, POOLINGS, STEMS, CASTConfig
from .init import INIT_SCHEMES, resolve_init
from .registry import build_cast, list_variants, register_variant, variant_config

__all__ = [
    "CAST",
    "CASTConfig",
    "CASTOutput",
    "FLAT_NAMES",
    "INIT_SCHEMES",
    "POOLINGS",
    "STEMS",
    "build_cast",
    "list_variants",
    "register_variant",
    "resolve_init",
    "variant_config",
]
