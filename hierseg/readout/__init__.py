"""Readouts: how a model's output becomes a ``Hierarchy`` (``base.py``), one file each: fixed levels
from the poolings (``levels.py``), the merge tree (``merge_tree.py``); ``registry.READOUTS`` lists them."""
from .base import Grouping, Readout
from .levels import LevelsReadout
from .merge_tree import MergeTreeReadout
from .registry import READOUTS, build_readout

__all__ = ["READOUTS", "Grouping", "LevelsReadout", "MergeTreeReadout", "Readout", "build_readout"]
