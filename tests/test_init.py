"""Initialisation per recipe: the paper's recipes start from the official schemes, the hybrid ones ask for their own."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from hierseg.model import build_cast, resolve_init, variant_config
from training import train

CONFIGS = sorted(p.stem for p in (Path(train.__file__).parent / "configs").glob("*.json"))
# What each recipe must start from: the paper's recipes (and their tiny versions) officially,
# the hybrid ones (and the shipped default's recipe) from hierseg's own trunc-normal.
EXPECTED = {
    "supervised_imagenet": "deit",
    "supervised_tiny": "deit",
    "moco_imagenet": "moco",
    "moco_tiny": "moco",
    "distill_tiny": "moco",
    "distill_default": "trunc_normal",
    "hybrid_tiny": "trunc_normal",
}


@pytest.mark.parametrize("name", CONFIGS)
def test_each_recipe_gets_its_initialisation(name: str) -> None:
    cfg = train.load_config([name])
    if cfg["model"].startswith("vit_baseline:"):
        pytest.skip("the ViT baseline keeps timm's initialisation")
    config = variant_config(cfg["model"], **cfg["model_overrides"])
    assert resolve_init(cfg["init"], config) == EXPECTED[name]


def _linears(module: nn.Module) -> dict[str, nn.Linear]:
    return {name: m for name, m in module.named_modules() if isinstance(m, nn.Linear)}


def _micro(init: str, **overrides) -> nn.Module:
    torch.manual_seed(0)
    return build_cast("cast_micro", init=init, num_classes=10, **overrides)


def test_moco_is_xavier_with_separate_qkv_bounds_and_default_heads() -> None:
    model = _micro("moco", proj_dim=32, proj_hidden_dim=64, predictor=True)
    dim = model.config.embed_dim
    for name, linear in _linears(model).items():
        weight = linear.weight.detach().abs()
        fan_out, fan_in = linear.weight.shape
        if name.startswith(("projector.", "predictor.")):
            bound = 1 / math.sqrt(fan_in)  # PyTorch's default (kaiming-uniform, a = sqrt(5))
        elif name.endswith("qkv"):
            bound = math.sqrt(6 / (dim + dim))  # Q, K, V each dim x dim, not one 3*dim x dim matrix
        else:
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert linear.bias is None or not linear.bias.any(), name
        assert 0.9 * bound < weight.max() <= bound, (name, float(weight.max()), bound)
    assert model.cls_token.abs().max() < 1e-5


def test_deit_leaves_the_poolings_at_pytorch_defaults() -> None:
    model = _micro("deit", pos_embed="learned")
    for name, linear in _linears(model).items():
        weight = linear.weight.detach()
        if name.startswith("pools."):
            bound = 1 / math.sqrt(linear.weight.shape[1])
            assert 0.9 * bound < weight.abs().max() <= bound, name
            assert linear.bias is None or linear.bias.any(), name  # PyTorch draws biases too
        else:
            assert abs(float(weight.std()) - 0.02) < 0.004, name
            assert linear.bias is None or not linear.bias.any(), name
    for table in (model.stem.pos_embed, model.cls_token):
        assert abs(float(table.detach().std()) - 0.02) < 0.006


def test_trunc_normal_is_everywhere_and_official_needs_an_official_architecture() -> None:
    model = _micro("trunc_normal")
    for name, linear in _linears(model).items():
        assert abs(float(linear.weight.detach().std()) - 0.02) < 0.004, name
    for pool in model.pools:
        assert abs(float(pool.affinity.bias.detach().std()) - 0.01) < 0.004
    with pytest.raises(ValueError, match="trunc_normal"):
        build_cast("cast_hybrid_micro", init="official", num_classes=10)
    with pytest.raises(ValueError, match="unknown initialisation"):
        build_cast("cast_micro", init="xavier")


class _Built(Exception):
    """Stops a training run right after its model is built."""


@pytest.mark.parametrize("name, expected", [("supervised_tiny", "official"), ("hybrid_tiny", "trunc_normal")])
def test_training_builds_the_model_with_the_recipes_init(name: str, expected: str, monkeypatch, tmp_path) -> None:
    def build(variant: str, init: str = "trunc_normal", **overrides) -> None:
        raise _Built(init)

    monkeypatch.setattr(train, "build_cast", build)
    for label in ("a", "b"):
        (tmp_path / "train" / label).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "train" / label / "0.png")
    with pytest.raises(_Built) as built:
        train.main([name, f"data_root={tmp_path}", f"out_dir={tmp_path / 'out'}", "train_data=[\"imagefolder:.:train\"]"])
    assert built.value.args == (expected,)
