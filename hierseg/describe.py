"""JSON descriptions of a session's tree: what the app's ``/segment`` and ``/drill`` endpoints answer.

They walk the collapsed tree, like the views: a node stands for its whole single-child chain
(listed in ``chain``), and its ``children`` are never exactly one.
"""
from __future__ import annotations

from typing import Any

from .hierarchy import ROOT, Node, NodeLike
from .session import Session
from .views import TOP_K, hex_color

__all__ = ["drill_info", "summary"]


def _describe(session: Session, node: Node) -> dict[str, Any]:
    hierarchy = session.hierarchy
    top = hierarchy.top_classes(node, 1)
    name, prob = top[0] if top else ("", 0.0)
    return {
        "node": str(node),
        "top_class": name,
        "probability": round(prob, 4),
        "share": round(hierarchy.area(node) / hierarchy.area(ROOT), 4),
        "bbox": list(hierarchy.bbox(node)),
        "color": hex_color(session, node),
    }


def drill_info(session: Session, node: NodeLike, k: int = TOP_K) -> dict[str, Any]:
    """A node (any node of a chain answers as the chain's head), its path and its children."""
    chains = session.chains
    head = chains.head(node)
    return {
        **_describe(session, head),
        "chain": [str(item) for item in chains.chain(head)],
        "path": [str(item) for item in chains.path(head)],
        "is_leaf": head != ROOT and chains.is_leaf(head),
        "top_classes": [[name, round(prob, 4)] for name, prob in session.hierarchy.top_classes(head, k)],
        "children": [_describe(session, child) for child in chains.children(head)],
    }


def summary(session: Session) -> dict[str, Any]:
    """Overview of a segmentation: checkpoint, size, levels, image prediction, the root and its children,
    and after ``/refine`` what the refinement did."""
    hierarchy = session.hierarchy
    return {
        "checkpoint": session.checkpoint,
        "image_size": list(hierarchy.image_size),
        "levels": [{"level": level, "n_nodes": hierarchy.n_nodes(level)} for level in range(hierarchy.n_levels)],
        "prediction": [[name, round(prob, 4)] for name, prob in hierarchy.top_classes(ROOT, TOP_K)],
        "root": drill_info(session, ROOT),
        "timings_ms": hierarchy.meta.get("timings_ms", {}),
        "version": session.version,
        # what Segmenter.refine did (steps, losses, seconds); absent for a first segmentation
        **({"refine": hierarchy.meta["refine"]} if "refine" in hierarchy.meta else {}),
    }
