"""How the explorer states a node's classes, in the page and in the API alike.

Every class is given with its probability; a top class under ``UNCERTAIN_BELOW`` is said to be
uncertain instead of being stated as what the segment is.
"""
from __future__ import annotations

from hierseg.hierarchy import Hierarchy, Node

__all__ = ["TOP_K", "UNCERTAIN_BELOW", "class_label", "confident_name", "short_name", "top_class", "top_classes"]

TOP_K = 5
# Below this a segment's top class is not stated: 10 % is already far above chance for 1000 classes,
# but a person reading "goldfish" on a wheel takes it as the model's claim.
UNCERTAIN_BELOW = 0.10


def short_name(name: str) -> str:
    """The first synonym of an ImageNet-style name ("tabby, tabby cat" -> "tabby")."""
    return name.split(",")[0].strip()


def top_class(hierarchy: Hierarchy, node: Node) -> tuple[str, float]:
    """``(name, probability)`` of the node's best class; ``("", 0.0)`` without a classifier."""
    top = hierarchy.top_classes(node, 1)
    return top[0] if top else ("", 0.0)


def top_classes(hierarchy: Hierarchy, node: Node, k: int = TOP_K) -> list[tuple[str, float]]:
    """The ``k`` best classes with probabilities rounded to 4 digits, best first."""
    return [(name, round(prob, 4)) for name, prob in hierarchy.top_classes(node, k)]


def class_label(name: str, probability: float, threshold: float = UNCERTAIN_BELOW) -> str:
    """A class name with its probability, or "uncertain" when the evidence is too weak to state it."""
    if not name:
        return "no classifier"
    if probability < threshold:
        return f"uncertain ({short_name(name)} {probability:.0%})"
    return f"{short_name(name)} {probability:.0%}"


def confident_name(hierarchy: Hierarchy, node: Node) -> str:
    """The short top class of ``node`` when it is stated (not uncertain), else ''."""
    name, probability = top_class(hierarchy, node)
    return short_name(name) if name and probability >= UNCERTAIN_BELOW else ""
