"""How the explorer states a node's classes and calls a segment, in the page and in the API alike.

Labels follow the library's one rule (``hierseg.naming``): the most specific class or WordNet family
whose calibrated probability reaches ``NAME_THRESHOLD``, "uncertain" otherwise. A segment is called by
its label's word, numbered when earlier siblings share it ("dog", "dog (2)"); ids are for the API only.
"""
from __future__ import annotations

from typing import Any
import weakref

from hierseg import naming
from hierseg.hierarchy import ROOT, Hierarchy, Node
from hierseg.naming import NAME_THRESHOLD, Label

from .chains import ChainTree

__all__ = ["NAME_THRESHOLD", "TOP_K", "VOCABULARY_NOTE", "confident_name", "heading", "node_label",
           "segment_name", "top_classes"]

TOP_K = 5
VOCABULARY_NOTE = ("Names come from ImageNet's 1000 classes and their WordNet families, named when "
                   f"they reach {NAME_THRESHOLD:.0%}. There is no \"person\": people come out as what they "
                   "wear (\"lab coat\", \"suit\").")


# Labels by id of their owner (a Hierarchy, or the MergeTree its cuts share), dropped with it (neither is hashable).
_LABELS: dict[int, dict[Node | int, Label]] = {}


def node_label(hierarchy: Hierarchy, node: Node) -> Label:
    """``hierseg.naming.node_label``, computed once per node (every view asks again).

    Every cut of one merge tree (``Hierarchy.recut``) gives a merge-tree node the same evidence, so
    there a label is kept per merge-tree node for all the cuts at once: a granularity move names only
    the segments no earlier cut showed.
    """
    owner: object = hierarchy if hierarchy.merge_tree is None else hierarchy.merge_tree
    key: Node | int = node if owner is hierarchy or node == ROOT else hierarchy.merge_node(node)
    known = _LABELS.get(id(owner))
    if known is None:
        known = _LABELS[id(owner)] = {}
        weakref.finalize(owner, _LABELS.pop, id(owner), None)
    if key not in known:
        known[key] = naming.node_label(hierarchy, node)
    return known[key]


def top_classes(hierarchy: Hierarchy, node: Node, k: int = TOP_K) -> list[tuple[str, float]]:
    """The ``k`` best classes with probabilities rounded to 4 digits, best first."""
    return [(name, round(prob, 4)) for name, prob in hierarchy.top_classes(node, k)]


def confident_name(hierarchy: Hierarchy, node: Node) -> str:
    """The node's name when it is stated (not uncertain), else ''."""
    return node_label(hierarchy, node).name


def heading(hierarchy: Hierarchy, node: Node, k: int = TOP_K) -> dict[str, Any]:
    """A ``gr.Label`` value whose heading is the node's label (never a class the rule does not state),
    above its ``k`` best classes."""
    stated: Label = node_label(hierarchy, node)
    return {"label": stated.text,
            "confidences": [{"label": name, "confidence": prob} for name, prob in top_classes(hierarchy, node, k)]}


def segment_name(hierarchy: Hierarchy, chains: ChainTree, node: Node) -> str:
    """What the page calls ``node``: its label's word, with " (n)" for the n-th sibling sharing it."""
    if node == ROOT:
        return "whole image"
    word = node_label(hierarchy, node).word
    same = [sibling for sibling in chains.siblings(node) if node_label(hierarchy, sibling).word == word]
    rank = same.index(node) + 1
    return word if rank == 1 else f"{word} ({rank})"
