"""The part-whole tree of one image (numpy only): ``Hierarchy`` and its nodes.

``node`` names a node, ``tree`` holds the class and its queries, ``checks`` the invariants every tree satisfies,
``build`` the readout from per-level argmax assignments or a merge tree's cut (the one place that
composes levels and renumbers nodes), ``merge_tree`` the photo's Ward merge tree cut by cost (any
granularity: ``Hierarchy.recut``), ``io`` the NPZ and PNG + JSON files, ``frozen`` the read-only metadata.
"""
from .node import ROOT, Node, NodeLike
from .tree import Hierarchy

__all__ = ["Hierarchy", "Node", "NodeLike", "ROOT"]
