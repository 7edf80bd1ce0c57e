"""The labeller kinds by name, and the labeller a checkpoint calls for."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from .base import Labeller, LabellerConfig
from .pypi_lite0 import PypiLite0Config
from .teacher_head import TeacherHeadConfig
from .tokens import TokensConfig

LABELLERS: dict[str, type[LabellerConfig]] = {c.kind: c for c in (TeacherHeadConfig, TokensConfig, PypiLite0Config)}


def labeller_config(settings: dict[str, Any]) -> LabellerConfig:
    """The config a ``config.json`` ``labeller`` entry describes (its ``kind`` picks the class).

    Raises:
        ValueError: for a missing or unknown kind.
    """
    kind = settings.get("kind")
    if kind not in LABELLERS:
        raise ValueError(f"labeller kind must be one of {', '.join(map(repr, LABELLERS))}, not {kind!r}")
    return LABELLERS[kind].from_dict(settings)


def build_labeller(model: nn.Module, folder: str | Path | None, settings: dict[str, Any] | None) -> Labeller:
    """The labeller a checkpoint calls for: the kind ``settings`` (the config's ``labeller`` entry)
    names; without one, ``tokens`` for a model with a classifier, else ``pypi-lite0``.

    Raises:
        MissingDependencyError: a package the kind needs is not installed.
        CheckpointError: a weights file the kind needs is missing or incomplete.
        ValueError: an unknown kind.
    """
    if settings:
        config = labeller_config(settings)
    else:
        config = TokensConfig() if getattr(model, "head", None) is not None else PypiLite0Config()
    return config.build(model, Path(folder) if folder is not None else None)
