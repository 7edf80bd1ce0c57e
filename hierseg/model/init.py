"""Initial weights of a CAST model, per recipe.

* ``"moco"``: the official MoCo classes (twke18/CAST ``cast_models/cast.py``, after MoCo v3's
  ``vits.py``): every Linear of the encoder (blocks, poolings, classifier) Xavier-uniform, with Q, K
  and V of each ``qkv`` given their own bound sqrt(6 / (dim + dim)); biases zero; the cls token
  N(0, 1e-6). The conv stem, the LayerNorms and the MoCo projector and predictor (built by MoCo v3's
  ``builder.py`` after the encoder) keep PyTorch's defaults.
* ``"deit"``: the official DeiT classes (``cast_models/cast_deit.py`` on timm 0.4.12's
  VisionTransformer): Linears of the blocks and the classifier trunc-normal 0.02 with zero bias,
  the learned position table and the cls token trunc-normal 0.02. The poolings are built after
  timm's initialisation ran, so they keep PyTorch's defaults.
* ``"trunc_normal"``: hierseg's own, trunc-normal 0.02 on every Linear, poolings included, on a
  learned position table and on the cls token (N(0, 1e-6) beside the fixed sin-cos table, as the MoCo
  family). The hybrid (EfficientNet-Lite0 stem) models and the shipped default were trained from it.
* ``"official"``: ``"deit"`` for a learned position table, ``"moco"`` for the fixed sin-cos one.

In all of them the graph poolings' affinity bias is N(0, 0.01), as the official ``Block`` sets it.
``CAST.init_weights`` applies a scheme; this module holds the rules it uses.
"""
from __future__ import annotations

import math
from typing import Iterable

from timm.layers import trunc_normal_
from torch import nn

from .config import CASTConfig

__all__ = ["INIT_SCHEMES", "resolve_init", "timm_vit_init", "xavier_init"]

INIT_SCHEMES = ("official", "moco", "deit", "trunc_normal")


def resolve_init(scheme: str, config: CASTConfig) -> str:
    """The concrete scheme (``moco``, ``deit`` or ``trunc_normal``) that ``scheme`` means for ``config``.

    Raises:
        ValueError: for an unknown scheme, or an official one on an architecture the official code
            does not have (the hybrid stem, region merging, or the other family's position table).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown initialisation {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if scheme == "trunc_normal":
        return scheme
    family = config.stem.official_family
    if family is None or not config.pooling.official:
        raise ValueError(
            f"initialisation {scheme!r} is the official CAST recipe, which has no {config.stem.kind} stem with "
            f"{config.pooling.kind} pooling; use 'trunc_normal'"
        )
    if scheme == "official":
        return family
    if scheme != family:
        raise ValueError(f"the official {scheme} classes have the other position table, not the {family} one")
    return scheme


def xavier_init(model: nn.Module, skip: Iterable[nn.Module] = ()) -> None:
    """MoCo v3's rule on every Linear of ``model`` outside ``skip``: Xavier-uniform, Q, K and V of a
    ``qkv`` each with the bound of its own shape; biases zero."""
    skipped = {id(m) for part in skip for m in part.modules()}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or id(module) in skipped:
            continue
        if name.endswith("qkv"):
            # Q, K and V are three dim x dim maps stacked: each gets the Xavier bound of its own shape.
            bound = math.sqrt(6.0 / (module.weight.shape[0] // 3 + module.weight.shape[1]))
            nn.init.uniform_(module.weight, -bound, bound)
        else:
            nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def timm_vit_init(modules: Iterable[nn.Module]) -> None:
    """timm's ViT rule, module by module: Linear trunc-normal 0.02 with zero bias, LayerNorm 1 and 0."""
    for module in modules:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
