"""The part-whole tree of one image (numpy only): ``Hierarchy`` and its nodes.

``node`` names a node, ``tree`` holds the class and its queries, ``checks`` the invariants every tree satisfies,
``build`` the readout from per-level argmax assignments (the one place that composes levels and
renumbers nodes), ``io`` the NPZ and PNG + JSON files, ``frozen`` the read-only metadata.
"""
from .node import ROOT, Node, NodeLike
from .tree import Hierarchy

__all__ = ["Hierarchy", "Node", "NodeLike", "ROOT"]
