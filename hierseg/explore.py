"""Drill-down exploration of a ``Hierarchy``: the state machine and view data behind the web app.

Everything here is pure (numpy, PIL and the standard library; no gradio), so the app only wires
widgets to these functions and the logic is unit-testable. An ``ExploreState`` holds one segmented
image and the current selection; every way of selecting a node (a click on the photo, on the tree,
on the breadcrumb or the table, the Up button, the API) goes through ``drill_to``, so the photo,
the tree and the evidence always describe the same node.

Node ids in the tree are ``str(Node)``; the whole-image root is ``"-1:0"``.
"""
from __future__ import annotations

import html
import json
import os
import tempfile
import threading
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from .checkpoints import CONFIG, OFFICIAL_RELEASES, REPO_CHECKPOINTS
from .hierarchy import ROOT, Hierarchy, Node, NodeLike
from .render import node_color, render_level, render_node

__all__ = [
    "DISPLAY_MAX_SIDE",
    "ExploreState",
    "SegmenterPool",
    "View",
    "available_checkpoints",
    "breadcrumb_html",
    "click_to_node",
    "drill_info",
    "drill_to",
    "evidence_table",
    "export_zip",
    "display_size",
    "go_up",
    "level_choices",
    "new_state",
    "overlay",
    "set_level",
    "summary",
    "top_class_dict",
    "tree_click_target",
    "tree_figure",
    "tree_json",
    "view",
]

# The photo is shown at most this large: PNG-encoding a 2048 px overlay on every click would cost
# more than the click itself, and a browser panel never shows more pixels than this anyway.
DISPLAY_MAX_SIDE = 1024
TOP_K = 5
ROOT_ID = str(ROOT)
ROOT_COLOR = "#d9d9d9"
# Rings shown by the sunburst: the node in the centre, its children and grandchildren.
TREE_DEPTH = 3
# Width of the node outline ``render_node`` draws (2 * radius + 1 px) plus one pixel of margin.
_OUTLINE_MARGIN = 2


@dataclass(frozen=True)
class ExploreState:
    """One session's segmented image and what is selected in it (CPU numpy data only).

    Attributes:
        hierarchy: the tree of the image.
        rgb: the (H, W, 3) uint8 working image the hierarchy refers to.
        selected: the node whose parts are shown.
        level: the level whose segments are coloured inside ``selected``; defaults to its children.
        checkpoint: the name of the checkpoint that produced the hierarchy.
    """

    hierarchy: Hierarchy
    rgb: np.ndarray
    selected: Node = ROOT
    level: int = 0
    checkpoint: str = ""


def new_state(hierarchy: Hierarchy, rgb: np.ndarray, checkpoint: str = "") -> ExploreState:
    """A fresh state with the whole image selected and its coarsest segments shown."""
    if rgb.shape[:2] != hierarchy.shape:
        raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]}, hierarchy is {hierarchy.image_size}")
    return ExploreState(hierarchy, rgb, ROOT, 0, checkpoint)


def _parts_level(hierarchy: Hierarchy, node: Node) -> int:
    """The level shown by default for ``node``: its children's, or its own for a superpixel."""
    return min(node.level + 1, hierarchy.leaf_level)


def drill_to(state: ExploreState, node: NodeLike) -> ExploreState:
    """Select ``node`` (a ``Node``, ``(level, index)`` or ``"level:index"``) and show its children.

    Raises:
        ValueError: if the node is not in the hierarchy.
    """
    target = state.hierarchy.node(node)
    return replace(state, selected=target, level=_parts_level(state.hierarchy, target))


def go_up(state: ExploreState) -> ExploreState:
    """Select the parent of the selection; the root stays selected."""
    if state.selected == ROOT:
        return state
    return drill_to(state, state.hierarchy.parent(state.selected))


def set_level(state: ExploreState, level: int) -> ExploreState:
    """Colour the segments of ``level`` inside the selection (finer than the selection, or its own for a leaf)."""
    lowest = _parts_level(state.hierarchy, state.selected)
    if not lowest <= level <= state.hierarchy.leaf_level:
        raise ValueError(f"level {level} is outside {lowest}..{state.hierarchy.leaf_level} for node {state.selected}")
    return replace(state, level=int(level))


def click_to_node(state: ExploreState, x: float, y: float, shown_size: tuple[int, int]) -> Node:
    """The node a click at pixel ``(x, y)`` of the overlay picks; ``shown_size`` is the overlay's (W, H).

    Inside the selection it is the coloured segment under the pointer (the level being shown);
    in the dimmed area outside it is the node of the selection's own level there, so a click
    beside the selection moves to its neighbour at the same granularity.
    """
    hierarchy = state.hierarchy
    width, height = hierarchy.image_size
    # Scale from the display grid to the label-map grid (they differ when the overlay was shrunk).
    col = min(max(int(x * width / shown_size[0]), 0), width - 1)
    row = min(max(int(y * height / shown_size[1]), 0), height - 1)
    if state.selected == ROOT or hierarchy.node_at(state.selected.level, col, row) == state.selected:
        return hierarchy.node_at(state.level, col, row)
    return hierarchy.node_at(state.selected.level, col, row)


def tree_click_target(state: ExploreState, node_id: str) -> Node:
    """The node a click on the sunburst selects.

    The centre of the sunburst is the selected node (its parent for a superpixel); clicking the
    selected node goes up a level, as plotly's own zoom-out does.
    """
    node = state.hierarchy.node(node_id)
    if node == state.selected and node != ROOT:
        return state.hierarchy.parent(node)
    return node


# ---------------------------------------------------------------------- views
@dataclass(frozen=True)
class View:
    """Everything the app shows for one state."""

    overlay: np.ndarray  # (h, w, 3) uint8, at most DISPLAY_MAX_SIDE on the long side
    tree: str  # plotly figure as JSON: {"data": [...], "layout": {...}}
    evidence: dict[str, float]  # top classes of the selection
    prediction: dict[str, float]  # top classes of the whole image
    table_headers: list[str]
    table_rows: list[list[Any]]
    breadcrumb: str  # HTML
    levels: list[tuple[str, int]]  # level choices (label, value)
    level: int


def view(state: ExploreState) -> View:
    """All the view data of ``state``."""
    headers, rows = evidence_table(state)
    hierarchy = state.hierarchy
    return View(
        overlay=overlay(state),
        tree=tree_json(hierarchy, state.selected),
        evidence=top_class_dict(hierarchy, state.selected),
        prediction=top_class_dict(hierarchy, ROOT),
        table_headers=headers,
        table_rows=rows,
        breadcrumb=breadcrumb_html(hierarchy, state.selected),
        levels=level_choices(state),
        level=state.level,
    )


def overlay(state: ExploreState, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """The photo with the selection's parts (at ``state.level``) coloured and the rest dimmed."""
    hierarchy, node, level = state.hierarchy, state.selected, state.level
    if node == ROOT:
        return _fit(render_level(state.rgb, hierarchy.label_maps[level]), max_side)
    out = render_node(state.rgb, hierarchy, node)
    if level > _parts_level(hierarchy, node):
        # Finer parts than the children: recolour the inside of the node, keeping its thick outline.
        x0, y0, x1, y1 = hierarchy.bbox(node)
        box = np.s_[y0:y1, x0:x1]
        inside = hierarchy.label_maps[node.level][box] == node.index
        parts = render_level(state.rgb[box], hierarchy.label_maps[level][box])
        interior = _erode(inside, _OUTLINE_MARGIN)
        region = out[box]
        region[interior] = parts[interior]
    return _fit(out, max_side)


def _erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square erosion by shifted ANDs; pixels within ``radius`` of the mask's edge or the array's edge drop out."""
    eroded = mask.copy()
    height, width = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = np.zeros_like(mask)
            shifted[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = mask[
                max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
            ]
            eroded &= shifted
    return eroded


def display_size(image_size: tuple[int, int], max_side: int = DISPLAY_MAX_SIDE) -> tuple[int, int]:
    """(W, H) at which an image of ``image_size`` (W, H) is shown: shrunk to ``max_side``, never enlarged."""
    width, height = image_size
    if max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(rgb: np.ndarray, max_side: int) -> np.ndarray:
    size = display_size((rgb.shape[1], rgb.shape[0]), max_side)
    if size == (rgb.shape[1], rgb.shape[0]):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _short_name(name: str) -> str:
    """The first synonym of an ImageNet-style name ("tabby, tabby cat" -> "tabby")."""
    return name.split(",")[0].strip()


def _top(hierarchy: Hierarchy, node: Node) -> tuple[str, float]:
    """The most probable class of ``node`` and its probability; ("", 0.0) without a classifier."""
    top = hierarchy.top_classes(node, 1)
    return (top[0][0], top[0][1]) if top else ("", 0.0)


def _label(hierarchy: Hierarchy, node: Node) -> str:
    if node == ROOT:
        return "image"
    name, _ = _top(hierarchy, node)
    return _short_name(name) or str(node)


def top_class_dict(hierarchy: Hierarchy, node: NodeLike, k: int = TOP_K) -> dict[str, float]:
    """``{class name: probability}`` of the ``k`` best classes, as ``gr.Label`` takes it."""
    return {name: round(prob, 4) for name, prob in hierarchy.top_classes(node, k)}


def tree_figure(hierarchy: Hierarchy, selected: NodeLike = ROOT) -> dict[str, Any]:
    """A plotly sunburst of the whole tree, zoomed on the selection, coloured like the overlay.

    Sector ids are node ids (``"l:i"``, root ``"-1:0"``), sizes are pixel areas, colours come from
    ``node_color`` and the hover text names the top class. The figure is centred on the selected
    node (its parent for a superpixel, so that the superpixel stays visible) and outlines it.
    """
    selected = hierarchy.node(selected)
    total = float(hierarchy.area(ROOT))
    ids, parents, labels, values, colors, custom, widths, lines = [], [], [], [], [], [], [], []
    for level in range(ROOT.level, hierarchy.n_levels):
        for node in hierarchy.nodes(level):
            name, prob = _top(hierarchy, node)
            area = hierarchy.area(node)
            ids.append(str(node))
            parents.append("" if node == ROOT else str(hierarchy.parent(node)))
            labels.append(_label(hierarchy, node))
            values.append(area)
            colors.append(ROOT_COLOR if node == ROOT else _hex(node_color(node)))
            custom.append([str(node), name or "no classifier", round(prob, 4), round(area / total, 4)])
            widths.append(4 if node == selected else 1)
            lines.append("#111111" if node == selected else "#ffffff")
    centre = hierarchy.parent(selected) if selected != ROOT and hierarchy.is_leaf(selected) else selected
    trace = {
        "type": "sunburst",
        "ids": ids,
        "parents": parents,
        "labels": labels,
        "values": values,
        "branchvalues": "total",
        "level": str(centre),
        "maxdepth": TREE_DEPTH,
        "customdata": custom,
        "marker": {"colors": colors, "line": {"width": widths, "color": lines}},
        "insidetextorientation": "radial",
        "hovertemplate": "<b>%{customdata[0]}</b> %{customdata[1]}<br>"
        "p = %{customdata[2]:.2f} · %{customdata[3]:.1%} of the image<extra></extra>",
        "sort": False,
    }
    layout = {
        "margin": {"l": 4, "r": 4, "t": 4, "b": 4},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "uniformtext": {"minsize": 9, "mode": "hide"},
        "font": {"size": 12},
    }
    return {"data": [trace], "layout": layout}


def tree_json(hierarchy: Hierarchy, selected: NodeLike = ROOT) -> str:
    """``tree_figure`` as compact JSON, the value the app's tree panel draws."""
    return json.dumps(tree_figure(hierarchy, selected), separators=(",", ":"))


def breadcrumb_html(hierarchy: Hierarchy, selected: NodeLike) -> str:
    """The root-to-selection path as HTML; every ancestor is a button carrying ``data-node``."""
    path = hierarchy.path(selected)
    parts = []
    for node in path:
        text = html.escape("whole image" if node == ROOT else f"{node} · {_label(hierarchy, node)}")
        swatch = "" if node == ROOT else f'<span class="swatch" style="background:{_hex(node_color(node))}"></span>'
        if node == path[-1]:
            parts.append(f'<span class="crumb current">{swatch}{text}</span>')
        else:
            parts.append(f'<button class="crumb" data-node="{node}">{swatch}{text}</button>')
    return '<nav class="crumbs">' + ' <span class="sep">›</span> '.join(parts) + "</nav>"


def level_choices(state: ExploreState) -> list[tuple[str, int]]:
    """The levels that can be coloured inside the selection, as ``(label, level)`` pairs."""
    hierarchy = state.hierarchy
    choices = []
    for level in range(_parts_level(hierarchy, state.selected), hierarchy.n_levels):
        inside = _nodes_inside(hierarchy, state.selected, level)
        kind = " superpixels" if level == hierarchy.leaf_level else ""
        choices.append((f"level {level}: {len(inside)}{kind or ' parts'}", level))
    return choices


def _nodes_inside(hierarchy: Hierarchy, node: Node, level: int) -> list[Node]:
    """The nodes of ``level`` (at or below ``node``'s) that lie inside ``node``, in id order."""
    if node == ROOT:
        return hierarchy.nodes(level)
    nodes = [node]
    for _ in range(level - node.level):
        nodes = [child for parent in nodes for child in hierarchy.children(parent)]
    return nodes


def evidence_table(state: ExploreState) -> tuple[list[str], list[list[Any]]]:
    """One row per segment of the shown level inside the selection: id, top class, probability, share of the image."""
    hierarchy = state.hierarchy
    total = hierarchy.area(ROOT)
    rows = []
    for node in _nodes_inside(hierarchy, state.selected, state.level):
        name, prob = _top(hierarchy, node)
        rows.append([str(node), name, round(prob, 3), round(100.0 * hierarchy.area(node) / total, 2)])
    return ["node", "top class", "probability", "% of image"], rows


def drill_info(hierarchy: Hierarchy, node: NodeLike, k: int = TOP_K) -> dict[str, Any]:
    """JSON-able description of a node and its children (what the ``/drill`` endpoint returns)."""
    node = hierarchy.node(node)
    total = hierarchy.area(ROOT)

    def describe(item: Node) -> dict[str, Any]:
        name, prob = _top(hierarchy, item)
        return {
            "node": str(item),
            "top_class": name,
            "probability": round(prob, 4),
            "share": round(hierarchy.area(item) / total, 4),
            "bbox": list(hierarchy.bbox(item)),
            "color": ROOT_COLOR if item == ROOT else _hex(node_color(item)),
        }

    return {
        **describe(node),
        "path": [str(item) for item in hierarchy.path(node)],
        "is_leaf": node != ROOT and hierarchy.is_leaf(node),
        "top_classes": [[name, round(prob, 4)] for name, prob in hierarchy.top_classes(node, k)],
        "children": [describe(child) for child in hierarchy.children(node)],
    }


def summary(state: ExploreState) -> dict[str, Any]:
    """JSON-able overview of a segmentation (what the ``/segment`` endpoint returns)."""
    hierarchy = state.hierarchy
    return {
        "checkpoint": state.checkpoint,
        "image_size": list(hierarchy.image_size),
        "levels": [{"level": level, "n_nodes": hierarchy.n_nodes(level)} for level in range(hierarchy.n_levels)],
        "prediction": [[name, round(prob, 4)] for name, prob in hierarchy.top_classes(ROOT, TOP_K)],
        "root": drill_info(hierarchy, ROOT),
        "timings_ms": hierarchy.meta.get("timings_ms", {}),
    }


def export_zip(hierarchy: Hierarchy, path: str | os.PathLike) -> Path:
    """Write the tree (``tree.json``) and every level's label map (``level_<l>.png``, lossless) into one zip.

    The unzipped folder loads back with ``Hierarchy.load(folder)``.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        folder = hierarchy.save_pngs(tmp)
        with zipfile.ZipFile(path, "w") as archive:
            for file in sorted(folder.iterdir()):
                # PNGs are already deflated; compressing them again only costs time.
                method = zipfile.ZIP_DEFLATED if file.suffix == ".json" else zipfile.ZIP_STORED
                archive.write(file, file.name, compress_type=method)
    return path


# ---------------------------------------------------------------------- checkpoints
def available_checkpoints() -> list[str]:
    """Checkpoint names the app offers: ``$HIERSEG_CHECKPOINT``, local folders, then the official releases."""
    names = []
    if os.environ.get("HIERSEG_CHECKPOINT"):
        names.append(os.environ["HIERSEG_CHECKPOINT"])
    roots = [Path(os.environ["HIERSEG_CHECKPOINTS"])] if os.environ.get("HIERSEG_CHECKPOINTS") else []
    for root in [*roots, REPO_CHECKPOINTS]:
        if root.is_dir():
            names.extend(sorted(p.name for p in root.iterdir() if (p / CONFIG).is_file()))
    names.extend(OFFICIAL_RELEASES)
    return list(dict.fromkeys(names))  # de-duplicated, first occurrence kept


class SegmenterPool:
    """Loaded segmenters cached by name, so each checkpoint is read (or downloaded) once per process.

    ``loader`` maps a name to a segmenter. Loading holds a lock: two sessions asking
    for the same new checkpoint must not download and convert it twice.
    """

    def __init__(self, loader: Callable[[str], Any]) -> None:
        self._loader = loader
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        """The segmenter of ``name``, loading it on first use.

        Raises:
            CheckpointError: the checkpoint cannot be found, read or downloaded.
        """
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._loader(name)
            return self._loaded[name]
