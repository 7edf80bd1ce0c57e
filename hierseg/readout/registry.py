"""The readouts, in the order they are offered a checkpoint config; the last reads any."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Readout
from .levels import LevelsReadout
from .merge_tree import MergeTreeReadout

if TYPE_CHECKING:
    from ..checkpoints import CheckpointConfig

READOUTS: tuple[type[Readout], ...] = (MergeTreeReadout, LevelsReadout)


def build_readout(config: CheckpointConfig) -> Readout:
    """The readout a checkpoint config calls for: the first of ``READOUTS`` that reads it."""
    for kind in READOUTS:
        readout = kind.from_checkpoint(config)
        if readout is not None:
            return readout
    raise ValueError(f"no readout reads checkpoint {config.name!r}")  # LevelsReadout reads every config
