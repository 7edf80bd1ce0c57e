"""The paper's ViT baseline: a plain ViT of CAST's size, trained the same way, read out by k-means.

``PatchViT`` has CAST's width, depth, heads and input size, and as many patch tokens as CAST has
superpixels (patch 16 at 160 px: 100 tokens); it exposes the interface the training objectives use
(``logits``, ``level_tokens``, ``classify_tokens``), so ``training.train`` trains it with the same
recipe, segment-token term included (applied to the patch tokens). Its hierarchy comes from
hierarchical spherical k-means on the last-layer patch tokens (``baselines.kmeans_token_levels``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from hierseg.errors import CheckpointError
from hierseg.model import CASTConfig
from hierseg.preprocess import IMAGENET_MEAN, IMAGENET_STD, normalise
from hierseg.resize import resize_rgb

from .baselines import kmeans_token_levels

PATCH_SIZE = 16


@dataclass
class PatchViTOutput:
    features: torch.Tensor  # (B, C) normalised cls feature
    logits: torch.Tensor | None  # (B, num_classes)
    tokens: torch.Tensor  # (B, N, C) last-layer patch tokens, before the final norm


class PatchViT(nn.Module):
    """timm VisionTransformer sized like a CAST config; superpixels are accepted and ignored."""

    def __init__(self, config: CASTConfig, patch_size: int = PATCH_SIZE) -> None:
        super().__init__()
        self.config = config
        self.patch_size = patch_size
        self.vit = VisionTransformer(
            img_size=config.stem.img_size, patch_size=patch_size, embed_dim=config.embed_dim, depth=sum(config.depths),
            num_heads=config.num_heads, mlp_ratio=config.mlp_ratio, qkv_bias=True, num_classes=config.num_classes,
            drop_path_rate=config.drop_path_rate,
        )

    def no_weight_decay(self) -> set[str]:
        return {"vit.cls_token", "vit.pos_embed"}

    def forward(self, images: torch.Tensor, superpixels: torch.Tensor | None = None) -> PatchViTOutput:
        x = self.vit.blocks(self.vit._pos_embed(self.vit.patch_embed(images)))
        features = self.vit.norm(x[:, 0])
        logits = self.vit.head(features) if self.config.num_classes else None
        return PatchViTOutput(features=features, logits=logits, tokens=x[:, 1:])

    def level_tokens(self, output: PatchViTOutput) -> list[torch.Tensor]:
        # One token level; the first entry stands where CAST's superpixel tokens are (not trained on).
        return [output.tokens, output.tokens]

    def classify_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.vit.head(self.vit.norm(tokens))

    @property
    def grid_size(self) -> int:
        return self.config.stem.img_size // self.patch_size


def save_vit(model: PatchViT, folder: str | Path, provenance: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    meta = {"kind": "patch-vit-baseline", "model": model.config.to_dict(), "patch_size": model.patch_size,
            "provenance": provenance or {}}
    (folder / "config.json").write_text(json.dumps(meta, indent=1) + "\n")
    return folder


def load_vit(folder: str | Path) -> PatchViT:
    """The ViT baseline ``save_vit`` wrote to ``folder``, in eval mode."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "config.json").read_text())
        sizes = meta["model"]
        # Folders written before CAST's stem and pooling configs nested hold the flat layout.
        config = CASTConfig.from_dict(sizes) if isinstance(sizes.get("stem"), dict) else CASTConfig.from_flat(sizes)
        model = PatchViT(config, meta["patch_size"])
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{folder} is not a readable ViT baseline: {exc}") from exc
    return model.eval()


@torch.no_grad()
def vit_kmeans_levels(model: PatchViT, rgb: np.ndarray, segment_counts: list[int]) -> list[np.ndarray]:
    """Label maps (coarsest first) of the ViT baseline on one photo, cut to ``segment_counts``."""
    size = model.config.stem.img_size
    pixels = normalise(resize_rgb(rgb, size, size), IMAGENET_MEAN, IMAGENET_STD)
    tokens = model(pixels[None]).tokens[0]
    g = model.grid_size
    return kmeans_token_levels(tokens.reshape(g, g, -1).numpy(), rgb.shape[:2], segment_counts)
