"""Convert official CAST checkpoints (twke18/CAST releases) into hierseg's model and format.

Reads MoCo ``checkpoint_XXXX.pth.tar`` files (online ``base_encoder``; the momentum encoder is
dropped) and DeiT ``best_checkpoint.pth`` files (``model`` or ``model_ema``) with
``torch.load(weights_only=True)``: nothing but tensors, plain containers and ``argparse.Namespace``
is unpickled. Every official tensor is either mapped or listed as deliberately dropped:

    official                         hierseg
    cls_token, norm.*                cls_token, norm.*
    pe_token                         stem.cls_pos_embed
    pos_embed (DeiT: cls row first)  stem.pos_embed (DeiT: the cls row -> stem.cls_pos_embed)
    patch_embed.proj.<i>.*           stem.proj.<i>.*
    blocks<L>.<i>.*                  stages.<L-1>.<i - first block of stage L>.* (COCO files: <i> as is)
    blocks.<i>.*                     dropped (a copy of the stage slices, checked equal)
    pool<L>.pool_block.centroid_fc.* pools.<L-1>.affinity.*
    pool<L>.pool_block.fc1/fc2.*     pools.<L-1>.fc1/fc2.*
    head.* (DeiT, or head.weight/bias) head.*;  head.* (MoCo projector)  projector.*
    predictor.*                      predictor.*
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError
from .model import CAST, CASTConfig
from .model.official import ConvStemConfig

# Unpickling allow-list: the DeiT files store their command line as an argparse.Namespace.
_SAFE_GLOBALS = [argparse.Namespace]
_BLOCK_RE = re.compile(r"^blocks(\d*)\.(\d+)\.(.+)$")
_POOL_RE = re.compile(r"^pool(\d)\.pool_block\.(centroid_fc|fc1|fc2)\.(.+)$")


@dataclass
class ConversionReport:
    """What happened to every official tensor."""

    source: str
    family: str  # "moco", "moco-seg" or "deit"
    mapped: dict[str, str] = field(default_factory=dict)  # official key -> our key
    dropped: dict[str, str] = field(default_factory=dict)  # official key -> why
    missing: list[str] = field(default_factory=list)  # our keys the file did not provide

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for why in self.dropped.values():
            reasons[why] = reasons.get(why, 0) + 1
        lines = [f"{self.source}: {self.family} checkpoint, {len(self.mapped)} tensors mapped, {len(self.dropped)} dropped"]
        lines += [f"  dropped {n}: {why}" for why, n in sorted(reasons.items())]
        if self.missing:
            lines.append(f"  not in the file (left at initialisation): {', '.join(self.missing)}")
        return "\n".join(lines)


def read_official(path: str | Path, use_ema: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """Load an official file safely and return (encoder state dict without prefixes, family)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise CheckpointError(f"cannot read {path} as an official CAST checkpoint: {exc}") from exc
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path} holds a {type(blob).__name__}, not a checkpoint dict")
    if "state_dict" in blob:
        state = blob["state_dict"]
        prefix = "module.base_encoder."
        encoder = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if not encoder:
            raise CheckpointError(f"{path}: no 'module.base_encoder.*' tensors; is this a MoCo CAST checkpoint?")
        encoder.update({k[len("module."):]: v for k, v in state.items() if k.startswith("module.predictor.")})
        for k in state:
            if not (k.startswith(prefix) or k.startswith("module.predictor.")):
                encoder.setdefault(f"__dropped__.{k}", state[k])
        family = "moco" if any(k.startswith("blocks.") for k in encoder) else "moco-seg"
        return encoder, family
    key = "model_ema" if use_ema else "model"
    if key in blob and isinstance(blob[key], dict):
        return dict(blob[key]), "deit"
    raise CheckpointError(f"{path}: expected a 'state_dict' (MoCo) or '{key}' (DeiT) entry, found {sorted(blob)}")


def infer_config(encoder: dict[str, torch.Tensor], family: str, num_heads: int = 12,
                 clusters: tuple[int, ...] = (64, 32, 16, 8)) -> CASTConfig:
    """Architecture from tensor shapes. Heads and cluster counts leave no trace in the weights."""
    if "cls_token" not in encoder:
        raise CheckpointError("no cls_token: not a CAST encoder")
    dim = encoder["cls_token"].shape[-1]
    stage_blocks: dict[int, set[int]] = {}
    for k in encoder:
        m = _BLOCK_RE.match(k)
        if m and m.group(1):
            stage_blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not stage_blocks:
        raise CheckpointError("no blocksL.* entries: cannot tell the stage depths")
    depths = tuple(len(stage_blocks[s]) for s in sorted(stage_blocks))
    cells = encoder["pos_embed"].shape[1] - (1 if family == "deit" else 0)
    grid = int(round(cells**0.5))
    if grid * grid != cells:
        raise CheckpointError(f"pos_embed has {cells} grid rows, not a square grid")
    proj_dim = encoder["head.6.weight"].shape[0] if "head.6.weight" in encoder else 0
    return CASTConfig(
        embed_dim=dim,
        depths=depths,
        num_heads=num_heads,
        clusters=tuple(clusters),
        stem=ConvStemConfig(img_size=grid * 8, pos_embed="learned" if family == "deit" else "sincos"),
        num_classes=encoder["head.weight"].shape[0] if "head.weight" in encoder else 0,
        proj_dim=proj_dim,
        proj_hidden_dim=encoder["head.0.weight"].shape[0] if proj_dim else 4096,
        predictor="predictor.0.weight" in encoder,
    )


def map_official(encoder: dict[str, torch.Tensor], family: str, config: CASTConfig,
                 source: str = "") -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Rename official tensors to our keys. Returns (our state dict, report)."""
    report = ConversionReport(source=source, family=family)
    ours: dict[str, torch.Tensor] = {}
    # Global block index -> (stage, index within stage). Stage slices keep global indices in the
    # classification files and restart at 0 in the COCO segmentation files.
    starts = [sum(config.depths[:s]) for s in range(len(config.depths))]

    def put(official: str, key: str, value: torch.Tensor) -> None:
        ours[key] = value
        report.mapped[official] = key

    for k, v in encoder.items():
        if k.startswith("__dropped__."):
            report.dropped[k[len("__dropped__."):]] = "momentum encoder and training state (not needed for inference)"
            continue
        if k in ("cls_token", "norm.weight", "norm.bias"):
            put(k, k, v)
        elif k == "pe_token":
            put(k, "stem.cls_pos_embed", v)
        elif k == "pos_embed":
            if family == "deit":
                put(k, "stem.cls_pos_embed", v[:, :1])
                ours["stem.pos_embed"] = v[:, 1:]
            else:
                put(k, "stem.pos_embed", v)
        elif k.startswith("patch_embed.proj."):
            put(k, "stem.proj." + k[len("patch_embed.proj."):], v)
        elif m := _BLOCK_RE.match(k):
            stage_tag, index, rest = m.group(1), int(m.group(2)), m.group(3)
            if not stage_tag:
                report.dropped[k] = "duplicate of the stage-sliced blocksL.* entry"
                continue
            stage = int(stage_tag) - 1
            local = index if family == "moco-seg" else index - starts[stage]
            if not 0 <= local < config.depths[stage]:
                raise CheckpointError(f"{k}: block index {index} does not fit stage depths {config.depths}")
            put(k, f"stages.{stage}.{local}.{rest}", v)
        elif m := _POOL_RE.match(k):
            part = {"centroid_fc": "affinity"}.get(m.group(2), m.group(2))
            put(k, f"pools.{int(m.group(1)) - 1}.{part}.{m.group(3)}", v)
        elif k.startswith("head."):
            put(k, ("head." if family == "deit" or k in ("head.weight", "head.bias") else "projector.") + k[5:], v)
        elif k.startswith("predictor."):
            put(k, k, v)
        elif k.startswith("block_fusion."):
            report.dropped[k] = "segmentation fusion layer (not part of the classification model)"
        else:
            raise CheckpointError(f"unexpected official tensor {k!r} {tuple(v.shape)}")
    _check_duplicates(encoder, ours, starts, family, report)
    return ours, report


def _check_duplicates(encoder: dict[str, torch.Tensor], ours: dict[str, torch.Tensor], starts: list[int],
                      family: str, report: ConversionReport) -> None:
    """The flat ``blocks.i`` copies must equal the stage slices we kept; a mismatch means a broken file."""
    for k, why in report.dropped.items():
        if not why.startswith("duplicate"):
            continue
        m = _BLOCK_RE.match(k)
        index, rest = int(m.group(2)), m.group(3)
        stage = max(s for s, start in enumerate(starts) if start <= index)
        kept = ours.get(f"stages.{stage}.{index - starts[stage]}.{rest}")
        if kept is None or not torch.equal(kept, encoder[k]):
            raise CheckpointError(f"{k} differs from its stage copy: the checkpoint is inconsistent")


def convert_official(path: str | Path, num_heads: int = 12, clusters: tuple[int, ...] = (64, 32, 16, 8),
                     use_ema: bool = False) -> tuple[CAST, ConversionReport]:
    """Build our model from an official file and load every mapped tensor strictly."""
    encoder, family = read_official(path, use_ema=use_ema)
    config = infer_config(encoder, family, num_heads=num_heads, clusters=clusters)
    state, report = map_official(encoder, family, config, source=str(path))
    model = CAST(config)
    expected = model.state_dict()
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise CheckpointError(f"official tensors with no place in the model: {unexpected[:5]}")
    for key, value in state.items():
        if expected[key].shape != value.shape:
            raise CheckpointError(f"{key}: checkpoint shape {tuple(value.shape)} != model {tuple(expected[key].shape)}")
    # Keys the file cannot provide: COCO files have no final norm; MoCo files no classifier.
    report.missing = sorted(k for k in set(expected) - set(state) if not k.endswith("num_batches_tracked"))
    model.load_state_dict(state, strict=False)
    return model, report


def official_metadata(family: str) -> dict[str, Any]:
    """Superpixels and input normalisation the official recipes used for each family: the family's
    SEEDS settings (``hierseg.superpixels``) and ImageNet's mean and std, as both official pipelines."""
    from .preprocess import IMAGENET_MEAN, IMAGENET_STD
    from .superpixels import SEEDS_DEIT, SEEDS_MOCO

    return {
        "superpixels": (SEEDS_DEIT if family == "deit" else SEEDS_MOCO).to_dict(),
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
    }
