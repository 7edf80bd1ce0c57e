"""JSON descriptions of a session's tree: what the app's ``/segment``, ``/refine`` and ``/drill`` endpoints answer.

They walk the collapsed tree, like the views: a node stands for its whole single-child chain
(listed in ``chain``), and its ``children`` are never exactly one.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hierseg.hierarchy import ROOT, Node, NodeLike

from .classes import TOP_K, node_label, segment_name, top_classes
from .display import canvas, node_hex
from .session import Session

__all__ = ["drill_info", "summary"]


def _describe(session: Session, node: Node, colours: list[np.ndarray]) -> dict[str, Any]:
    hierarchy = session.hierarchy
    stated = node_label(hierarchy, node)
    return {
        "node": str(node),
        "name": segment_name(hierarchy, session.chains, node),  # what the page calls it
        "label": stated.text,  # the page's label: the named class or family, or "uncertain (...)"
        "top_class": stated.guess,
        "probability": round(stated.guess_probability, 4),
        "share": round(hierarchy.area(node) / hierarchy.area(ROOT), 4),
        "bbox": list(hierarchy.bbox(node)),
        "color": node_hex(colours, node),
    }


def drill_info(session: Session, node: NodeLike, k: int = TOP_K) -> dict[str, Any]:
    """A node (any node of a chain answers as the chain's head), its path and its children."""
    chains, colours = session.chains, canvas(session.chains, session.rgb).colours
    head = chains.head(node)
    return {
        **_describe(session, head, colours),
        "chain": [str(item) for item in chains.chain(head)],
        "path": [str(item) for item in chains.path(head)],
        "is_leaf": head != ROOT and chains.is_leaf(head),
        "top_classes": [[name, prob] for name, prob in top_classes(session.hierarchy, head, k)],
        "children": [_describe(session, child, colours) for child in chains.children(head)],
    }


def summary(session: Session) -> dict[str, Any]:
    """Overview of a segmentation: checkpoint, size, levels, image prediction, the root and its children,
    and after ``/refine`` what the refinement did."""
    hierarchy = session.hierarchy
    return {
        "checkpoint": session.checkpoint,
        "image_size": list(hierarchy.image_size),
        "levels": [{"level": level, "n_nodes": hierarchy.n_nodes(level)} for level in range(hierarchy.n_levels)],
        "prediction": [[name, prob] for name, prob in top_classes(hierarchy, ROOT, TOP_K)],
        "prediction_label": node_label(hierarchy, ROOT).text,
        "root": drill_info(session, ROOT),
        "timings_ms": hierarchy.meta.get("timings_ms", {}),
        "version": session.version,
        # what Segmenter.refine did (steps, losses, seconds); absent for a first segmentation
        **({"refine": hierarchy.meta["refine"]} if "refine" in hierarchy.meta else {}),
    }
