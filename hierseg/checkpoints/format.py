"""What a checkpoint is on disk, and how an older one is read as the current format.

A checkpoint is a folder: ``model.safetensors`` (the weights) and ``config.json`` (everything
else: the architecture, the superpixel method and its parameters, the input size and
normalisation, the class names, provenance and metrics); a labeller's head, when it has one, sits
beside them as ``labeller.safetensors``. Nothing we ship is a pickle.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from ..errors import CheckpointError
from ..hierarchy.merge_tree import TreeConfig
from ..model import CASTConfig
from ..preprocess import InputConfig
from ..superpixels import SuperpixelConfig

__all__ = ["CONFIG", "FORMAT", "FORMAT_VERSION", "LABELLER_WEIGHTS", "QUALITY_SEPARATOR", "WEIGHTS", "CheckpointConfig",
           "QUALITY_NAME", "upgrade_config", "upgrade_state"]

FORMAT = "hierseg-checkpoint"
# 2: the model config nests its stem and pooling (``CASTConfig``), and the stems own their weights.
# Format 1 (flat model config) still loads: ``upgrade_config`` and ``upgrade_state`` translate it.
FORMAT_VERSION = 2
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
LABELLER_WEIGHTS = "labeller.safetensors"  # hierseg.labeller's head, beside the model's weights
QUALITY_SEPARATOR = "@"  # "default@fine": the checkpoint "default" at its quality "fine"
QUALITY_NAME = r"[A-Za-z0-9_-]+"
QUALITY_SECTIONS = ("input", "superpixels", "tree")


@dataclass
class CheckpointConfig:
    """Everything but the weights."""

    model: CASTConfig
    superpixels: SuperpixelConfig
    class_names: list[str] = field(default_factory=list)
    input: InputConfig | None = None  # None: the official recipe, the whole image squashed to img_size
    name: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    # How nodes and the photo get class evidence (``hierseg.labeller.LabellerConfig``; {}: chosen by the model).
    labeller: dict[str, Any] = field(default_factory=dict)
    # None: the hierarchy is the poolings' levels; else a merge tree per photo cut to display levels
    # (``hierseg.hierarchy.merge_tree``), which needs region merging.
    tree: TreeConfig | None = None
    # Named qualities: overrides of ``input``, ``superpixels`` and ``tree`` that trade time for a better
    # tree with the same weights (e.g. ``{"fine": {"input": {"size": 480}, "tree": {"thresholds": [...]}}}``;
    # the cut heights are in the cost's units, which move with the view). ``with_quality`` applies one.
    qualities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input is None:
            self.input = InputConfig(size=self.model.stem.img_size)
        side = self.model.stem.square_input
        if side is not None and (self.input.resize != "square" or self.input.size != side):
            raise CheckpointError(f"the {self.model.stem.kind} stem needs a square {side} px input, not {self.input}")
        if self.model.num_classes and len(self.class_names) != self.model.num_classes:
            raise CheckpointError(
                f"{len(self.class_names)} class names for a {self.model.num_classes}-way classifier"
            )
        if self.tree is not None and not self.model.pooling.gives_tree:
            raise CheckpointError(f"a merge tree needs region merging (pooling 'merge'), not {self.model.pooling.kind!r}")
        for quality in self.qualities:  # a bad override fails on load, not when a user picks it
            self.with_quality(quality)

    def with_quality(self, quality: str | None) -> "CheckpointConfig":
        """This config with the overrides of ``quality`` applied (None or "": this config), named
        ``NAME@QUALITY``.

        Raises:
            CheckpointError: the checkpoint has no such quality, or its overrides do not make a valid config.
        """
        if not quality:
            return self
        if quality not in self.qualities:
            known = ", ".join(sorted(self.qualities)) or "none"
            raise CheckpointError(f"checkpoint {self.name or '(unnamed)'!r} has no quality {quality!r} (it has: {known})")
        overrides = self.qualities[quality]
        if not re.fullmatch(QUALITY_NAME, quality) or not set(overrides) <= set(QUALITY_SECTIONS):
            raise CheckpointError(f"quality {quality!r}: a name of letters, digits, - or _ overriding only "
                                  f"{', '.join(QUALITY_SECTIONS)}, got {sorted(overrides)}")
        if "tree" in overrides and self.tree is None:
            raise CheckpointError(f"quality {quality!r} overrides the tree of a checkpoint without one")
        sections = {"input": (InputConfig, self.input), "superpixels": (SuperpixelConfig, self.superpixels),
                    "tree": (TreeConfig, self.tree)}
        changed = {}
        try:
            for key, values in overrides.items():
                kind, current = sections[key]
                changed[key] = kind.from_dict({**current.to_dict(), **values})
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"quality {quality!r}: {exc}") from exc
        name = f"{self.name}{QUALITY_SEPARATOR}{quality}" if self.name else ""
        return replace(self, name=name, qualities={}, **changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "model": self.model.to_dict(),
            "superpixels": self.superpixels.to_dict(),
            "input": self.input.to_dict(),
            "class_names": list(self.class_names),
            "provenance": self.provenance,
            "metrics": self.metrics,
            "labeller": self.labeller,
            **({"tree": self.tree.to_dict()} if self.tree is not None else {}),
            **({"qualities": self.qualities} if self.qualities else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CheckpointConfig":
        """Read a config of this format version or an older one (``upgrade_config``)."""
        d = upgrade_config(d)
        try:
            return cls(
                model=CASTConfig.from_dict(d["model"]),
                superpixels=SuperpixelConfig.from_dict(d["superpixels"]),
                class_names=list(d.get("class_names", [])),
                input=InputConfig.from_dict(d["input"]),
                name=d.get("name", ""),
                provenance=d.get("provenance", {}),
                metrics=d.get("metrics", {}),
                labeller=d.get("labeller", {}),
                tree=TreeConfig.from_dict(d["tree"]) if d.get("tree") is not None else None,
                qualities=dict(d.get("qualities", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid checkpoint config: {exc}") from exc


def upgrade_config(d: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint config of any format version this hierseg reads, as the current version.

    Raises:
        CheckpointError: if ``d`` is not a hierseg checkpoint config, or is newer than this hierseg.
    """
    if d.get("format") != FORMAT:
        raise CheckpointError(f"not a hierseg checkpoint config (format={d.get('format')!r})")
    version = d.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format {version} is newer than this hierseg ({FORMAT_VERSION})")
    if version < 2 and isinstance(d.get("model"), dict):
        try:
            model = CASTConfig.from_flat(d["model"]).to_dict()
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid checkpoint config: {exc}") from exc
        d = {**d, "format_version": FORMAT_VERSION, "model": model}
    return d


def upgrade_state(state: dict[str, torch.Tensor], version: int, config: CASTConfig) -> dict[str, torch.Tensor]:
    """Weights saved by checkpoint format ``version`` under the current names.

    Format 1 kept the stems' tensors beside the model's: ``pos_embed``, ``cls_pos_embed`` and
    ``token_embed.*`` now live under ``stem.``, the Lite0 body under ``stem.body.``, and the lite0
    stem's ``cls_pos_embed`` (always zero: that stem gives the cls token no position) is dropped.
    """
    if version >= 2:
        return state
    renamed = {}
    for key, value in state.items():
        key = config.stem.format1_key(key)  # the stem's own renames first (StemConfig.format1_key)
        if key is None:
            continue
        if key in ("pos_embed", "cls_pos_embed") or key.startswith("token_embed."):
            key = "stem." + key
        renamed[key] = value
    return renamed
