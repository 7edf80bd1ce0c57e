"""JSON descriptions of a session's tree: what the app's ``/segment``, ``/granularity``, ``/drill`` and
``/select`` endpoints answer.

They walk the collapsed tree, like the views: a node stands for its whole single-child chain
(listed in ``chain``), and its ``children`` are never exactly one. Node ids name levels, and a
level depends on where the tree is cut, so every answer states the cut (``granularity``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from hierseg.hierarchy import ROOT, Node, NodeLike

from .classes import TOP_K, node_label, segment_name, selection_label, selection_top_classes, top_classes
from .display import canvas, node_hex
from .session import Session

__all__ = ["drill_info", "granularity", "selection_info", "summary"]


def _describe(session: Session, node: Node, colours: list[np.ndarray]) -> dict[str, Any]:
    hierarchy = session.hierarchy
    stated = node_label(hierarchy, node)
    return {
        "node": str(node),
        "name": segment_name(hierarchy, session.chains, node),  # what the page calls it
        "label": stated.text,  # the page's label: the named class or family, or "uncertain (...)"
        # A named family's classes that make up its number (the panel's bars); [] when a class or nothing is named.
        "members": [[name, round(prob, 4)] for name, prob in stated.members],
        "top_class": stated.guess,
        "probability": round(stated.guess_probability, 4),
        "share": round(hierarchy.area(node) / hierarchy.area(ROOT), 4),
        "bbox": list(hierarchy.bbox(node)),
        "color": node_hex(colours, node),
    }


def granularity(session: Session) -> dict[str, Any] | None:
    """Where the levels are cut: the coarsest level's merge height, every merged level's, and the range the
    coarsest may take (``/granularity``); None for a tree with fixed levels (no merge tree)."""
    if session.height is None:
        return None
    low, high = session.source.height_range()
    return {"coarsest_height": session.height, "cut_heights": list(session.hierarchy.cut_heights),
            "height_range": [low, high]}


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
        "granularity": granularity(session),
    }


def selection_info(session: Session, k: int = TOP_K) -> dict[str, Any]:
    """The selected segments taken as one region (``/select``): their ids and names, the union's label,
    classes and share of the image (``Hierarchy.union_evidence``)."""
    hierarchy, members = session.hierarchy, session.members
    stated = selection_label(hierarchy, members)
    area = sum(hierarchy.area(node) for node in members)
    return {
        "nodes": [str(node) for node in members],
        "names": [segment_name(hierarchy, session.chains, node) for node in members],
        "label": stated.text,
        "members": [[name, round(prob, 4)] for name, prob in stated.members],
        "top_class": stated.guess,
        "probability": round(stated.guess_probability, 4),
        "top_classes": [[name, prob] for name, prob in selection_top_classes(hierarchy, members, k)],
        "share": round(area / hierarchy.area(ROOT), 4),
        "granularity": granularity(session),
    }


def summary(session: Session) -> dict[str, Any]:
    """Overview of a segmentation: checkpoint, size, levels and where they are cut, the selection, image
    prediction, the root and its children."""
    hierarchy = session.hierarchy
    return {
        "checkpoint": session.checkpoint,
        "image_size": list(hierarchy.image_size),
        "levels": [{"level": level, "n_nodes": hierarchy.n_nodes(level)} for level in range(hierarchy.n_levels)],
        "granularity": granularity(session),
        "selected": str(session.selected),
        "prediction": [[name, prob] for name, prob in top_classes(hierarchy, ROOT, TOP_K)],
        "prediction_label": node_label(hierarchy, ROOT).text,
        "root": drill_info(session, ROOT),
        "timings_ms": hierarchy.meta.get("timings_ms", {}),
    }
