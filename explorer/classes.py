"""How the explorer states a node's classes and calls a segment, in the page and in the API alike.

Labels follow the library's one rule (``hierseg.naming``): the most specific class, or basic-level
family, whose calibrated probability reaches ``NAME_THRESHOLD``, "uncertain" otherwise. A segment is
called by its label's word, numbered across the whole tree when others share it ("dog", "dog (2)"),
so a name is unique wherever segments are listed together (the table, a column of the tree, the
breadcrumb) and the same segment has the same name in every view; ids are for the API only. A selection
of several segments is stated by the same rule from the evidence of their union (``selection_label``).
"""
from __future__ import annotations

from typing import Any, Sequence
import weakref

from hierseg import naming
from hierseg.hierarchy import ROOT, Hierarchy, Node
from hierseg.naming import NAME_THRESHOLD, Label

from .chains import ChainTree

__all__ = ["NAME_THRESHOLD", "TOP_K", "VOCABULARY_NOTE", "confident_name", "heading", "node_label",
           "segment_name", "segment_names", "selection_heading", "selection_label", "selection_top_classes",
           "top_classes"]

TOP_K = 5
VOCABULARY_NOTE = (f"Names: ImageNet's classes and everyday families (dog, car, clothing...) at {NAME_THRESHOLD:.0%} "
                   "or more. There is no \"person\": people come out as what they wear (\"lab coat\").")


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


def selection_label(hierarchy: Hierarchy, nodes: Sequence[Node]) -> Label:
    """The label of several disjoint segments taken as one region: ``hierseg.naming.label`` of their union's
    evidence (``Hierarchy.union_evidence``); one node's is ``node_label``."""
    if len(nodes) == 1:
        return node_label(hierarchy, nodes[0])
    return naming.label(hierarchy.union_evidence(nodes), hierarchy.class_names)


def selection_top_classes(hierarchy: Hierarchy, nodes: Sequence[Node], k: int = TOP_K) -> list[tuple[str, float]]:
    """``top_classes`` of several disjoint segments taken as one region (their union's evidence)."""
    return _top_classes(hierarchy, hierarchy.union_evidence(nodes), k)


def top_classes(hierarchy: Hierarchy, node: Node, k: int = TOP_K) -> list[tuple[str, float]]:
    """Up to ``k`` best classes at ``naming.MIN_SHOWN`` or more (fewer when fewer are), probabilities rounded
    to 4 digits, best first."""
    return _top_classes(hierarchy, hierarchy.evidence_of(node), k)


def _top_classes(hierarchy: Hierarchy, probs: Any, k: int) -> list[tuple[str, float]]:
    if not hierarchy.n_classes:
        return []
    shown = naming.shown_classes(probs, hierarchy.class_names, k)
    return [(name, round(prob, 4)) for name, prob in shown]


def confident_name(hierarchy: Hierarchy, node: Node) -> str:
    """The node's name when it is stated (not uncertain), else ''."""
    return node_label(hierarchy, node).name


def heading(hierarchy: Hierarchy, node: Node, k: int = TOP_K) -> dict[str, Any]:
    """A ``gr.Label`` value whose heading is the node's label (never a class the rule does not state),
    above the classes that make up its number: a named family's member classes, else the ``k`` best.

    Bars carry their percentage rounded down (the panel shows a whole percent), as the heading does.
    """
    return _heading(hierarchy, node_label(hierarchy, node), hierarchy.evidence_of(node), k)


def selection_heading(hierarchy: Hierarchy, nodes: Sequence[Node], k: int = TOP_K) -> dict[str, Any]:
    """``heading`` of several disjoint segments taken as one region (their union's evidence)."""
    if len(nodes) == 1:
        return heading(hierarchy, nodes[0], k)
    probs = hierarchy.union_evidence(nodes)
    return _heading(hierarchy, naming.label(probs, hierarchy.class_names), probs, k)


def _heading(hierarchy: Hierarchy, stated: Label, probs: Any, k: int) -> dict[str, Any]:
    bars = list(stated.members[:k]) if stated.family else _top_classes(hierarchy, probs, k)
    return {"label": stated.text,
            "confidences": [{"label": name, "confidence": naming.percent(prob) / 100} for name, prob in bars]}


# Names by id of their ChainTree (one per cut), dropped with it.
_NAMES: dict[int, dict[Node, str]] = {}


def segment_names(hierarchy: Hierarchy, chains: ChainTree) -> dict[Node, str]:
    """What the page calls every chain head: its label's word, numbered " (n)" across the whole tree in
    order of level then index (coarse segments keep the bare word); the root is "whole image"."""
    names = _NAMES.get(id(chains))
    if names is None:
        heads = sorted({chains.head(node) for level in range(hierarchy.n_levels) for node in hierarchy.nodes(level)})
        seen: dict[str, int] = {}
        names = {ROOT: "whole image"}
        for head in heads:
            if head == ROOT:
                continue
            word = node_label(hierarchy, head).word
            seen[word] = seen.get(word, 0) + 1
            names[head] = word if seen[word] == 1 else f"{word} ({seen[word]})"
        _NAMES[id(chains)] = names
        weakref.finalize(chains, _NAMES.pop, id(chains), None)
    return names


def segment_name(hierarchy: Hierarchy, chains: ChainTree, node: Node) -> str:
    """What the page calls ``node`` (a chain head): ``segment_names``'s entry."""
    return segment_names(hierarchy, chains)[chains.head(node)]
