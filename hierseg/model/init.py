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
* ``"trunc_normal"``: hierseg's own, trunc-normal 0.02 on every Linear, poolings included. The
  hybrid (EfficientNet-Lite0 stem) models and the shipped default were trained from it.
* ``"official"``: ``"deit"`` for a learned position table, ``"moco"`` for the fixed sin-cos one.

In all of them the graph poolings' affinity bias is N(0, 0.01), as the official ``Block`` sets it.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable

from timm.layers import trunc_normal_
from torch import nn

from .config import CASTConfig
from .graph_pool import GraphPooling

if TYPE_CHECKING:
    from .cast import CAST

__all__ = ["INIT_SCHEMES", "init_weights", "resolve_init"]

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
    if config.stem != "conv" or config.pooling != "graph":
        raise ValueError(
            f"initialisation {scheme!r} is the official CAST recipe, which has no {config.stem} stem with "
            f"{config.pooling} pooling; use 'trunc_normal'"
        )
    family = "deit" if config.pos_embed == "learned" else "moco"
    if scheme == "official":
        return family
    if scheme != family:
        raise ValueError(f"the official {scheme} classes have the other position table, not {config.pos_embed!r}")
    return scheme


def init_weights(model: CAST, scheme: str) -> None:
    """Initialise a freshly built ``model`` in place by ``scheme`` (see the module docstring)."""
    scheme = resolve_init(scheme, model.config)
    if scheme == "moco":
        _moco(model)
    elif scheme == "deit":
        _deit(model)
    else:
        _trunc_normal(model)
    for pool in model.pools:
        if isinstance(pool, GraphPooling):
            nn.init.normal_(pool.affinity.bias, std=0.01)


def _moco(model: CAST) -> None:
    heads = {id(m) for part in (model.projector, model.predictor) if part is not None for m in part.modules()}
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or id(module) in heads:
            continue
        if name.endswith("qkv"):
            # Q, K and V are three dim x dim maps stacked: each gets the Xavier bound of its own shape.
            bound = math.sqrt(6.0 / (module.weight.shape[0] // 3 + module.weight.shape[1]))
            nn.init.uniform_(module.weight, -bound, bound)
        else:
            nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    nn.init.normal_(model.cls_token, std=1e-6)


def _deit(model: CAST) -> None:
    encoder = [*model.stages, model.norm, *([model.head] if model.head is not None else [])]
    _timm_vit_init(module for part in encoder for module in part.modules())
    trunc_normal_(model.pos_embed, std=0.02)
    trunc_normal_(model.cls_pos_embed, std=0.02)
    trunc_normal_(model.cls_token, std=0.02)


def _trunc_normal(model: CAST) -> None:
    _timm_vit_init(model.modules())
    if model.config.stem == "lite0":
        trunc_normal_(model.cls_token, std=0.02)
    elif model.config.pos_embed == "learned":
        trunc_normal_(model.pos_embed, std=0.02)
        trunc_normal_(model.cls_pos_embed, std=0.02)
        trunc_normal_(model.cls_token, std=0.02)
    else:
        nn.init.normal_(model.cls_token, std=1e-6)


def _timm_vit_init(modules: Iterable[nn.Module]) -> None:
    """timm's ViT rule, module by module: Linear trunc-normal 0.02 with zero bias, LayerNorm 1 and 0."""
    for module in modules:
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
